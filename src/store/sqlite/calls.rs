//! Calls and their analyses: written together, replacing an earlier analysis of the same call.

use super::{parse_ts, ts};
use crate::analysis::Analysis;
use crate::analysis::competitors::AgentResponse;
use crate::store::{AnalysisRow, CallIdentity, ListQuery, StoreError};
use crate::transcript::Turn;
use chrono::{DateTime, Utc};
use rusqlite::{Connection, OptionalExtension, Transaction, params};

pub(super) fn role_name(role: crate::audio::channels::Role) -> String {
    serde_json::to_value(role)
        .ok()
        .and_then(|v| v.as_str().map(str::to_owned))
        .unwrap_or_default()
}

/// Writes the call and its analysis (and its unredacted turns, when kept), replacing an earlier
/// analysis of the same call. True when the call is new.
pub(super) fn write(
    tx: &Transaction<'_>,
    tenant: &str,
    a: &Analysis,
    now: DateTime<Utc>,
) -> Result<bool, StoreError> {
    let competitor_raised = a
        .competitor_mentions
        .iter()
        .any(|m| m.agent_response != AgentResponse::NotApplicable);
    let known: Option<i64> = tx
        .query_row(
            "SELECT seq FROM calls WHERE tenant = ?1 AND call_id = ?2",
            params![tenant, a.call_id],
            |r| r.get(0),
        )
        .optional()?;
    if known.is_some() {
        for table in [
            "turns",
            "analyses",
            "dimension_scores",
            "competitor_mentions",
        ] {
            tx.execute(
                &format!("DELETE FROM {table} WHERE tenant = ?1 AND call_id = ?2"),
                params![tenant, a.call_id],
            )?;
        }
    }
    // A new call takes the next seq; a known one keeps its seq and counts one more analysis.
    tx.execute(
        "INSERT INTO calls (tenant, call_id, seq, rep_id, customer_id, call_date, language,
         duration_ms, competitor_raised, analyses, received_at, analysed_at)
         VALUES (?1, ?2, (SELECT COALESCE(MAX(seq), 0) + 1 FROM calls WHERE tenant = ?1),
         ?3, ?4, ?5, ?6, ?7, ?8, 1, ?9, ?9)
         ON CONFLICT (tenant, call_id) DO UPDATE SET rep_id = excluded.rep_id,
         customer_id = excluded.customer_id, call_date = excluded.call_date,
         language = excluded.language, duration_ms = excluded.duration_ms,
         competitor_raised = excluded.competitor_raised, analyses = calls.analyses + 1,
         analysed_at = excluded.analysed_at",
        params![
            tenant,
            a.call_id,
            a.rep_id,
            a.customer_id,
            a.call_date.to_string(),
            a.language,
            a.duration_ms as i64,
            competitor_raised,
            ts(now)
        ],
    )?;
    for (i, t) in a.turns.iter().enumerate() {
        tx.execute(
            "INSERT INTO turns (tenant, call_id, turn, role, start_ms, end_ms, text)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
            params![
                tenant,
                a.call_id,
                i as i64,
                role_name(t.role),
                t.start_ms as i64,
                t.end_ms as i64,
                t.text
            ],
        )?;
    }
    let questions = &a.key_questions.questions;
    tx.execute(
        "INSERT INTO analyses (tenant, call_id, playbook, playbook_revision, coverage_percent,
         analysis, created_at, content_hash, score) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)",
        params![
            tenant,
            a.call_id,
            a.playbook,
            a.playbook_revision,
            (!questions.is_empty() && !a.turns.is_empty()).then_some(a.key_questions.percent),
            serde_json::to_string(a)?,
            ts(now),
            a.content_hash,
            a.overall.score
        ],
    )?;
    tx.execute(
        "DELETE FROM pending_calls WHERE tenant = ?1 AND call_id = ?2",
        params![tenant, a.call_id],
    )?;
    for d in &a.scorecard.dimensions {
        tx.execute(
            "INSERT INTO dimension_scores (tenant, call_id, rep_id, dimension, name, score, passed)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
            params![tenant, a.call_id, a.rep_id, d.id, d.name, d.score, d.passed],
        )?;
    }
    for (i, m) in a.competitor_mentions.iter().enumerate() {
        tx.execute(
            "INSERT INTO competitor_mentions (tenant, call_id, idx, competitor, role, turn, time_ms,
             agent_response) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
            params![
                tenant,
                a.call_id,
                i as i64,
                m.competitor,
                role_name(m.role),
                m.turn as i64,
                m.time_ms as i64,
                serde_json::to_value(m.agent_response)?.as_str().unwrap_or_default()
            ],
        )?;
    }
    match &a.original_turns {
        Some(turns) => tx.execute(
            "INSERT OR REPLACE INTO original_transcripts (tenant, call_id, turns)
             VALUES (?1, ?2, ?3)",
            params![tenant, a.call_id, serde_json::to_string(turns)?],
        )?,
        None => tx.execute(
            "DELETE FROM original_transcripts WHERE tenant = ?1 AND call_id = ?2",
            params![tenant, a.call_id],
        )?,
    };
    Ok(known.is_none())
}

/// The JSON column that `sql` selects for one call (parameters: tenant, call id), if any.
fn call_json<T: serde::de::DeserializeOwned>(
    conn: &Connection,
    sql: &str,
    tenant: &str,
    call_id: &str,
) -> Result<Option<T>, StoreError> {
    let text: Option<String> = conn
        .query_row(sql, params![tenant, call_id], |r| r.get(0))
        .optional()?;
    Ok(text.map(|t| serde_json::from_str(&t)).transpose()?)
}

pub(super) fn analysis(
    conn: &Connection,
    tenant: &str,
    call_id: &str,
) -> Result<Analysis, StoreError> {
    call_json(
        conn,
        "SELECT analysis FROM analyses WHERE tenant = ?1 AND call_id = ?2",
        tenant,
        call_id,
    )?
    .ok_or_else(|| StoreError::NotFound(format!("call {call_id}")))
}

pub(super) fn original_turns(
    conn: &Connection,
    tenant: &str,
    call_id: &str,
) -> Result<Vec<Turn>, StoreError> {
    call_json(
        conn,
        "SELECT turns FROM original_transcripts WHERE tenant = ?1 AND call_id = ?2",
        tenant,
        call_id,
    )?
    .ok_or_else(|| StoreError::NotFound(format!("an unredacted transcript of call {call_id}")))
}

pub(super) fn identity(
    conn: &Connection,
    tenant: &str,
    call_id: &str,
) -> Result<Option<CallIdentity>, StoreError> {
    Ok(conn
        .query_row(
            "SELECT content_hash, playbook_revision FROM analyses
             WHERE tenant = ?1 AND call_id = ?2",
            params![tenant, call_id],
            |r| {
                Ok(CallIdentity {
                    content_hash: r.get(0)?,
                    playbook_revision: r.get(1)?,
                })
            },
        )
        .optional()?)
}

pub(super) fn list(
    conn: &Connection,
    tenant: &str,
    q: &ListQuery,
) -> Result<Vec<AnalysisRow>, StoreError> {
    let rows = conn
        .prepare(
            "SELECT c.seq, c.call_id, c.rep_id, c.customer_id, c.call_date, c.duration_ms,
             a.playbook_revision, a.coverage_percent, a.score, c.analysed_at, a.playbook
             FROM calls c JOIN analyses a USING (tenant, call_id)
             WHERE c.tenant = ?1 AND c.seq < ?2
             AND (?3 IS NULL OR c.rep_id = ?3) AND (?4 IS NULL OR c.customer_id = ?4)
             AND (?5 IS NULL OR c.call_date >= ?5) AND (?6 IS NULL OR c.call_date <= ?6)
             AND (?7 IS NULL OR a.score >= ?7) AND (?8 IS NULL OR a.score <= ?8)
             ORDER BY c.seq DESC LIMIT ?9",
        )?
        .query_map(
            params![
                tenant,
                q.before_seq.unwrap_or(i64::MAX),
                q.rep_id,
                q.customer_id,
                q.from_date.map(|d| d.to_string()),
                q.to_date.map(|d| d.to_string()),
                q.min_score,
                q.max_score,
                q.limit as i64
            ],
            |r| {
                Ok(AnalysisRow {
                    seq: r.get(0)?,
                    call_id: r.get(1)?,
                    rep_id: r.get(2)?,
                    customer_id: r.get(3)?,
                    call_date: r.get::<_, String>(4)?.parse().unwrap_or_default(),
                    duration_ms: r.get::<_, i64>(5)? as u64,
                    playbook_revision: r.get(6)?,
                    coverage_percent: r.get(7)?,
                    score: r.get(8)?,
                    analysed_at: parse_ts(r.get(9)?)?,
                    playbook: r.get(10)?,
                })
            },
        )?
        .collect::<Result<_, _>>()?;
    Ok(rows)
}
