//! The service layer: one inspection path from a call to its Analysis. A recording, a live
//! stream or text turns, with what the caller knows of the call, become an Analysis through
//! `Inspector`; the CLI (one file, a batch, `playbook test`) and every gRPC method
//! (`AnalyzeCall`, `StreamCall`, `TestPlaybook`, `Transcribe`) call it and only translate.
//!
//! The defaults are decided here, once: the call id is the caller's, else the sha256 of the
//! content; the call date is the caller's, else the day the recording was made (when its file
//! says), else the UTC day it was received. Work runs under a permit: past the concurrency limit
//! a caller is refused at once, and should back off rather than queue without bound.

pub mod engines;
pub mod live;

use crate::analysis::playbook::{Playbook, PlaybookError};
use crate::analysis::{Analysis, CallInfo};
use crate::audio::{DecodeError, StreamDecoder};
use crate::redact::{self, Redaction};
use crate::store::{self, Recorded, Store, StoreError, VoiceSource};
use crate::text::embed::EmbedError;
use crate::transcript::{CallOptions, CallTranscript, Engines, RoleHints, TranscribeError, Turn};
use chrono::{DateTime, NaiveDate, Utc};
use engines::Analysers;
use live::{LiveAudio, LiveEvent};
use sha2::{Digest, Sha256};
use std::path::Path;
use std::sync::Arc;
use std::time::Instant;
use tokio::sync::{OwnedSemaphorePermit, Semaphore};
use tokio_util::sync::CancellationToken;

/// Errors of the service layer. The gRPC server maps them to status codes in one place
/// (`From<ServiceError> for tonic::Status`); the CLI prints them.
#[derive(Debug, thiserror::Error)]
pub enum ServiceError {
    #[error("models are still loading")]
    NotReady,
    #[error("too many calls in progress ({0} allowed); retry later")]
    Overloaded(usize),
    /// Another request is working on the same call.
    #[error("{0}")]
    Busy(String),
    #[error("{0}")]
    DeadlineExceeded(String),
    #[error("audio: {0}")]
    BadAudio(#[from] DecodeError),
    #[error(transparent)]
    Transcribe(#[from] TranscribeError),
    #[error("analysers: {0}")]
    Analysis(#[from] EmbedError),
    #[error("{0}")]
    InvalidArgument(String),
    #[error("{0}")]
    NotFound(String),
    #[error("{0}")]
    Unauthenticated(String),
    #[error("{0}")]
    PermissionDenied(String),
    #[error(transparent)]
    Playbook(#[from] PlaybookError),
    #[error(transparent)]
    Store(StoreError),
    #[error("cancelled")]
    Cancelled,
    #[error("a worker failed: {0}")]
    Worker(String),
}

impl From<StoreError> for ServiceError {
    fn from(e: StoreError) -> Self {
        match e {
            StoreError::NotFound(what) => ServiceError::NotFound(what),
            other => ServiceError::Store(other),
        }
    }
}

/// The models an inspection uses: the transcription engines (none for text alone) and the
/// analysers.
pub struct Models {
    pub engines: Option<Engines>,
    pub analysers: Analysers,
}

impl Models {
    /// For text transcripts: no Whisper, no VAD.
    pub fn text_only(analysers: Analysers) -> Self {
        Self {
            engines: None,
            analysers,
        }
    }
}

/// A recording as received: its bytes, their sha256, and when it was made, if its file says.
pub struct Recording {
    pub bytes: Vec<u8>,
    pub content_hash: String,
    pub recorded_at: Option<DateTime<Utc>>,
}

impl Recording {
    pub fn new(bytes: Vec<u8>) -> Self {
        Self {
            content_hash: sha256_hex(&bytes),
            bytes,
            recorded_at: None,
        }
    }

    /// Reads a recording's file once: its bytes, their hash, and its modification time.
    pub fn read(path: &Path) -> std::io::Result<Self> {
        let bytes = std::fs::read(path)?;
        let recorded_at = std::fs::metadata(path)
            .and_then(|m| m.modified())
            .ok()
            .map(DateTime::<Utc>::from);
        Ok(Self {
            recorded_at,
            ..Self::new(bytes)
        })
    }
}

pub fn sha256_hex(bytes: &[u8]) -> String {
    hex::encode(Sha256::digest(bytes))
}

/// What the caller knows of a call besides its content. What is missing takes the defaults.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct CallMeta {
    pub call_id: Option<String>,
    pub rep_id: Option<String>,
    pub customer_id: Option<String>,
    pub call_date: Option<NaiveDate>,
}

fn non_empty(s: Option<String>) -> Option<String> {
    s.filter(|s| !s.is_empty())
}

impl CallMeta {
    /// The call id: the caller's, else the content's sha256.
    pub fn call_id_or(&self, content_hash: &str) -> String {
        non_empty(self.call_id.clone()).unwrap_or_else(|| content_hash.to_owned())
    }

    /// The call's identity with the defaults applied (see the module's comment).
    fn info(self, content_hash: String, recorded_at: Option<DateTime<Utc>>) -> CallInfo {
        CallInfo {
            call_id: self.call_id_or(&content_hash),
            rep_id: non_empty(self.rep_id),
            customer_id: non_empty(self.customer_id),
            call_date: self
                .call_date
                .unwrap_or_else(|| recorded_at.unwrap_or_else(Utc::now).date_naive()),
            content_hash: Some(content_hash),
            ..CallInfo::default()
        }
    }
}

/// Leave to run one call; the slot frees when it is dropped.
pub struct Permit(#[allow(dead_code)] OwnedSemaphorePermit);

/// The one inspection path. Cheap to share (`Arc<Inspector>`) between threads and requests.
pub struct Inspector {
    models: Models,
    slots: Arc<Semaphore>,
    max_concurrent: usize,
}

impl Inspector {
    /// `max_concurrent`: calls (recordings, streams, text tests) that may run at once.
    pub fn new(models: Models, max_concurrent: usize) -> Self {
        Self {
            models,
            slots: Arc::new(Semaphore::new(max_concurrent)),
            max_concurrent,
        }
    }

    /// The transcription engines; `NotReady` for an inspector opened for text alone.
    pub fn engines(&self) -> Result<&Engines, ServiceError> {
        self.models.engines.as_ref().ok_or(ServiceError::NotReady)
    }

    /// A slot for one call, or `Overloaded` at once when every slot is taken.
    pub fn permit(&self) -> Result<Permit, ServiceError> {
        self.slots
            .clone()
            .try_acquire_owned()
            .map(Permit)
            .map_err(|_| ServiceError::Overloaded(self.max_concurrent))
    }

    /// Calls running now.
    pub fn in_progress(&self) -> usize {
        self.max_concurrent - self.slots.available_permits()
    }

    /// Whether a call would be refused now.
    pub fn is_full(&self) -> bool {
        self.slots.available_permits() == 0
    }

    pub fn max_concurrent(&self) -> usize {
        self.max_concurrent
    }

    /// A recording's transcript, redacted as `redaction` says.
    pub fn transcribe(
        &self,
        _permit: &Permit,
        audio: Vec<u8>,
        opts: &CallOptions,
        redaction: &Redaction,
    ) -> Result<CallTranscript, ServiceError> {
        let mut transcript = self
            .engines()?
            .transcribe(StreamDecoder::from_bytes(audio)?, opts)?;
        redact::redact(&mut transcript.turns, redaction);
        Ok(transcript)
    }

    /// A recording → its Analysis. The playbook's competitor names prime Whisper.
    pub fn recording(
        &self,
        _permit: &Permit,
        playbook: &Playbook,
        recording: Recording,
        meta: CallMeta,
        opts: &CallOptions,
    ) -> Result<Analysis, ServiceError> {
        let opts = with_hotwords(opts, playbook);
        let started = Instant::now();
        let decoder = StreamDecoder::from_bytes(recording.bytes)?;
        let transcript = self.engines()?.transcribe(decoder, &opts)?;
        let info = CallInfo {
            transcription_ms: Some(started.elapsed().as_millis() as u64),
            ..transcript_info(
                &transcript,
                meta.info(recording.content_hash, recording.recorded_at),
            )
        };
        self.analyse(playbook, info, transcript.turns, &opts.cancel)
    }

    /// A live call → its Analysis: `emit` gets each live event with the call time received so
    /// far, and returns false when nobody listens any more (the call is then cancelled).
    /// `Cancelled` when `opts.cancel` fires first.
    pub fn stream(
        &self,
        _permit: &Permit,
        playbook: &Playbook,
        audio: LiveAudio,
        meta: CallMeta,
        opts: &CallOptions,
        emit: impl FnMut(LiveEvent, u64) -> bool + Send,
    ) -> Result<Analysis, ServiceError> {
        let opts = with_hotwords(opts, playbook);
        let engines = self.engines()?;
        let analysers = &self.models.analysers;
        let finished = live::run(engines, analysers, playbook, &opts, audio, emit)?;
        if finished.bytes == 0 {
            // As AnalyzeCall refuses empty audio: a stream that carried none stores nothing.
            return Err(ServiceError::InvalidArgument(
                "audio: the stream carried no audio; nothing was stored".into(),
            ));
        }
        let info = CallInfo {
            transcription_ms: Some(finished.transcription_ms),
            ..transcript_info(&finished.transcript, meta.info(finished.content_hash, None))
        };
        self.analyse(playbook, info, finished.transcript.turns, &opts.cancel)
    }

    /// Text turns (in time order) → their Analysis, with no audio. `cancel` stops it between
    /// two texts.
    pub fn text(
        &self,
        _permit: &Permit,
        playbook: &Playbook,
        turns: Vec<Turn>,
        meta: CallMeta,
        cancel: &CancellationToken,
    ) -> Result<Analysis, ServiceError> {
        let content: Vec<(&str, u64, u64, &str)> = turns
            .iter()
            .map(|t| (t.role.as_str(), t.start_ms, t.end_ms, t.text.as_str()))
            .collect();
        let hash = sha256_hex(&serde_json::to_vec(&content).unwrap_or_default());
        // The hash names the call when the caller did not; `content_hash` is a recording's.
        let info = CallInfo {
            duration_ms: turns.iter().map(|t| t.end_ms).max().unwrap_or(0),
            content_hash: None,
            ..meta.info(hash, None)
        };
        self.analyse(playbook, info, turns, cancel)
    }

    /// Runs the analysers and counts the call in the metrics. The Analysis comes back as the
    /// store would give it, so that a reply now and a read later are identical.
    fn analyse(
        &self,
        playbook: &Playbook,
        info: CallInfo,
        turns: Vec<Turn>,
        cancel: &CancellationToken,
    ) -> Result<Analysis, ServiceError> {
        let analysis = self
            .models
            .analysers
            .for_call(cancel)?
            .run(playbook, info, turns)?;
        crate::metrics::metrics().analysed(&analysis.timings);
        let mut stored = store::as_stored(&analysis)?;
        // Kept for the store alone: not part of the Analysis' JSON.
        stored.original_turns = analysis.original_turns;
        stored.agent_voice = analysis.agent_voice;
        Ok(stored)
    }
}

/// A call scored again: its scores before and after.
#[derive(Debug, Clone)]
pub struct Rescored {
    pub call_id: String,
    pub old_score: Option<f64>,
    pub old_revision: String,
    pub analysis: Analysis,
}

/// Which stored calls to score again.
#[derive(Debug, Clone, Default)]
pub struct Rescore {
    /// These calls; else the calls scored under a playbook of the new one's name, of `rep_id`
    /// and dated from `since`, when given.
    pub call_ids: Vec<String>,
    pub rep_id: Option<String>,
    pub since: Option<NaiveDate>,
}

impl Inspector {
    /// Scores stored calls again under `playbook`, from their stored transcripts (the turns
    /// before redaction when the store kept them, so that a new redaction policy applies), and
    /// records each with its coaching. Nothing is transcribed again.
    pub fn rescore(
        &self,
        _permit: &Permit,
        store: &dyn Store,
        tenant: &str,
        playbook: &Playbook,
        which: &Rescore,
        cancel: &CancellationToken,
    ) -> Result<Vec<Rescored>, ServiceError> {
        let ids = if which.call_ids.is_empty() {
            let query = store::ListQuery {
                rep_id: which.rep_id.clone(),
                from_date: which.since,
                limit: usize::MAX >> 1,
                ..Default::default()
            };
            let mut rows = store.list(tenant, &query)?;
            rows.reverse(); // oldest first: coaching sees the calls in their order
            rows.into_iter()
                .filter(|r| r.playbook == playbook.name)
                .map(|r| r.call_id)
                .collect()
        } else {
            which.call_ids.clone()
        };
        let mut out = Vec::new();
        for call_id in ids {
            if cancel.is_cancelled() {
                return Err(ServiceError::Cancelled);
            }
            let old = store.analysis(tenant, &call_id)?;
            let turns = match store.original_turns(tenant, &call_id) {
                Ok(original) => original,
                Err(StoreError::NotFound(_)) => old.turns.clone(),
                Err(e) => return Err(e.into()),
            };
            let info = CallInfo {
                call_id: old.call_id.clone(),
                rep_id: old.rep_id.clone(),
                customer_id: old.customer_id.clone(),
                call_date: old.call_date,
                language: old.language.clone(),
                duration_ms: old.duration_ms,
                note: old.note.clone(),
                content_hash: old.content_hash.clone(),
                transcription_ms: old.timings.transcription_ms,
                agent_voice: None,
            };
            let analysis = self.analyse(playbook, info, turns, cancel)?;
            record(store, tenant, &analysis, playbook)?;
            out.push(Rescored {
                call_id,
                old_score: old.overall.score,
                old_revision: old.playbook_revision,
                analysis,
            });
        }
        Ok(out)
    }
}

/// Records an Analysis in a tenant's store, with the coaching that follows; suspensions whose
/// time is up end first, so that the circuit breaker sees the rep as they are now.
pub fn record(
    store: &dyn Store,
    tenant: &str,
    analysis: &Analysis,
    playbook: &Playbook,
) -> Result<Recorded, StoreError> {
    let now = Utc::now();
    store.expire_suspensions(now)?;
    store.record(tenant, analysis, playbook, now)
}

/// The call's options with what the store knows of the rep's voice: their voiceprint, to tell
/// them on a mono call, and whether a stereo call should teach it (unless one was enrolled).
pub fn with_rep_voice(
    store: &dyn Store,
    tenant: &str,
    rep_id: Option<&str>,
    opts: CallOptions,
) -> Result<CallOptions, ServiceError> {
    let Some(rep) = rep_id.filter(|r| !r.is_empty()) else {
        return Ok(opts);
    };
    let voice = store.voiceprint(tenant, rep)?;
    Ok(CallOptions {
        learn_agent_voice: voice
            .as_ref()
            .is_none_or(|v| v.source != VoiceSource::Enrolled),
        roles: RoleHints {
            rep_voiceprint: voice.map(|v| v.voiceprint),
            ..opts.roles
        },
        ..opts
    })
}

/// What the transcript tells of the call, added to what the caller said.
fn transcript_info(transcript: &CallTranscript, info: CallInfo) -> CallInfo {
    CallInfo {
        language: transcript.language.clone(),
        duration_ms: transcript.duration_ms,
        note: transcript.note(),
        agent_voice: transcript.agent_voice.clone(),
        ..info
    }
}

/// The call's options with the playbook's competitor names and aliases as hotwords.
fn with_hotwords(opts: &CallOptions, playbook: &Playbook) -> CallOptions {
    CallOptions {
        hotwords: playbook.hotwords(),
        ..opts.clone()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_are_decided_once() {
        let recorded = DateTime::parse_from_rfc3339("2026-03-04T23:30:00-02:00")
            .unwrap()
            .with_timezone(&Utc);
        let info = CallMeta::default().info("abc".into(), Some(recorded));
        assert_eq!(info.call_id, "abc", "the content's hash");
        assert_eq!(
            info.call_date.to_string(),
            "2026-03-05",
            "the UTC day it was made"
        );
        let info = CallMeta::default().info("abc".into(), None);
        assert_eq!(
            info.call_date,
            Utc::now().date_naive(),
            "the UTC day received"
        );
        let given = CallMeta {
            call_id: Some("c-1".into()),
            rep_id: Some(String::new()),
            call_date: NaiveDate::from_ymd_opt(2026, 1, 2),
            ..CallMeta::default()
        };
        let info = given.info("abc".into(), Some(recorded));
        assert_eq!(
            (
                info.call_id.as_str(),
                info.rep_id,
                info.call_date.to_string()
            ),
            ("c-1", None, "2026-01-02".to_owned())
        );
    }
}
