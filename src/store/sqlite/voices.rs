//! Reps' voiceprints: enrolled from a file, or learned from the agent channel of their stereo
//! calls (a running mean weighted by speech time, which an enrolled voice is not replaced by).

use super::{StoreError, ts};
use crate::store::{RepVoice, VoiceSource};
use chrono::{DateTime, Utc};
use rusqlite::{Connection, OptionalExtension, params};

fn to_blob(v: &[f32]) -> Vec<u8> {
    v.iter().flat_map(|x| x.to_le_bytes()).collect()
}

fn from_blob(b: &[u8]) -> Vec<f32> {
    b.chunks_exact(4)
        .map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]]))
        .collect()
}

pub(super) fn get(
    conn: &Connection,
    tenant: &str,
    rep: &str,
) -> Result<Option<RepVoice>, StoreError> {
    Ok(conn
        .query_row(
            "SELECT voiceprint, speech_ms, source FROM rep_voiceprints
             WHERE tenant = ?1 AND rep_id = ?2",
            params![tenant, rep],
            |r| {
                let blob: Vec<u8> = r.get(0)?;
                let source: String = r.get(2)?;
                Ok(RepVoice {
                    voiceprint: from_blob(&blob),
                    speech_ms: r.get::<_, i64>(1)? as u64,
                    source: if source == "enrolled" {
                        VoiceSource::Enrolled
                    } else {
                        VoiceSource::Learned
                    },
                })
            },
        )
        .optional()?)
}

/// Keeps a voiceprint: an enrolled one replaces whatever was there; a learned one joins the
/// learned mean, and is ignored where a voice was enrolled.
pub(super) fn put(
    conn: &Connection,
    tenant: &str,
    rep: &str,
    voice: &RepVoice,
    now: DateTime<Utc>,
) -> Result<(), StoreError> {
    let kept = match (voice.source, get(conn, tenant, rep)?) {
        (VoiceSource::Learned, Some(old)) if old.source == VoiceSource::Enrolled => return Ok(()),
        (VoiceSource::Learned, Some(old)) if old.voiceprint.len() == voice.voiceprint.len() => {
            let (w0, w1) = (old.speech_ms as f32, voice.speech_ms as f32);
            let mut mean: Vec<f32> = old
                .voiceprint
                .iter()
                .zip(&voice.voiceprint)
                .map(|(a, b)| (a * w0 + b * w1) / (w0 + w1).max(1.0))
                .collect();
            let norm = mean.iter().map(|x| x * x).sum::<f32>().sqrt().max(1e-12);
            mean.iter_mut().for_each(|x| *x /= norm);
            RepVoice {
                voiceprint: mean,
                speech_ms: old.speech_ms + voice.speech_ms,
                source: VoiceSource::Learned,
            }
        }
        _ => voice.clone(),
    };
    conn.execute(
        "INSERT INTO rep_voiceprints (tenant, rep_id, voiceprint, speech_ms, source, updated_at)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6)
         ON CONFLICT (tenant, rep_id) DO UPDATE SET voiceprint = ?3, speech_ms = ?4,
             source = ?5, updated_at = ?6",
        params![
            tenant,
            rep,
            to_blob(&kept.voiceprint),
            kept.speech_ms as i64,
            kept.source.as_str(),
            ts(now)
        ],
    )?;
    Ok(())
}

pub(super) fn forget(conn: &Connection, tenant: &str, rep: &str) -> Result<bool, StoreError> {
    Ok(conn.execute(
        "DELETE FROM rep_voiceprints WHERE tenant = ?1 AND rep_id = ?2",
        params![tenant, rep],
    )? > 0)
}
