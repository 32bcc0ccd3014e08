//! The durable store: calls, turns, analyses, reps, per-dimension score history, coaching
//! assignments, suspensions, and the events outbox. Every row carries its tenant, and every
//! query names one.
//!
//! `Store` is what the rest of the service uses; SQLite (one file, WAL) is the embedded
//! default, and a PostgreSQL implementation can follow the same trait. Recording a call writes
//! its analysis, asks coaching for its plan, persists it and writes the events in one
//! transaction: a crash leaves either all of it or none. Reads return typed values.

mod sqlite;

pub use sqlite::SqliteStore;

use crate::analysis::Analysis;
use crate::analysis::playbook::Playbook;
use crate::transcript::Turn;
use chrono::{DateTime, NaiveDate, Utc};
use serde::{Deserialize, Serialize};
use serde_json::Value;

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("store: {0}")]
    Sqlite(#[from] rusqlite::Error),
    #[error("store: {0}")]
    Json(#[from] serde_json::Error),
    #[error("store {path}: {detail}")]
    Open { path: String, detail: String },
    #[error("store: the database is at schema version {found}, newer than this build ({known})")]
    TooNew { found: i64, known: i64 },
    #[error("{0} not found")]
    NotFound(String),
    #[error("no store at {0} (analyze records calls there; or name another with --store)")]
    Missing(String),
    #[error("store: unknown event kind {0:?}")]
    UnknownEventKind(String),
}

/// Times as every output shows them: RFC 3339, UTC, to the millisecond.
fn millis<S: serde::Serializer>(t: &DateTime<Utc>, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_str(&t.to_rfc3339_opts(chrono::SecondsFormat::Millis, true))
}

/// The catalogue of events the outbox carries.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum EventKind {
    #[serde(rename = "analysis.completed")]
    AnalysisCompleted,
    #[serde(rename = "competitor.mentioned")]
    CompetitorMentioned,
    #[serde(rename = "emotion.alert")]
    EmotionAlert,
    #[serde(rename = "coaching.assigned")]
    CoachingAssigned,
    #[serde(rename = "rep.suspended")]
    RepSuspended,
    #[serde(rename = "rep.reinstated")]
    RepReinstated,
}

impl EventKind {
    pub const ALL: [EventKind; 6] = [
        EventKind::AnalysisCompleted,
        EventKind::CompetitorMentioned,
        EventKind::EmotionAlert,
        EventKind::CoachingAssigned,
        EventKind::RepSuspended,
        EventKind::RepReinstated,
    ];

    /// The name on the wire: `analysis.completed`, `rep.suspended`, …
    pub fn as_str(self) -> &'static str {
        match self {
            EventKind::AnalysisCompleted => "analysis.completed",
            EventKind::CompetitorMentioned => "competitor.mentioned",
            EventKind::EmotionAlert => "emotion.alert",
            EventKind::CoachingAssigned => "coaching.assigned",
            EventKind::RepSuspended => "rep.suspended",
            EventKind::RepReinstated => "rep.reinstated",
        }
    }

    pub fn parse(name: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|k| k.as_str() == name)
    }
}

impl std::fmt::Display for EventKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One event of the outbox. `id` is stable (consumers deduplicate on it); `seq` orders a tenant's
/// events and is the cursor to resume from. The payload is the JSON that webhooks carry.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct Event {
    pub seq: i64,
    pub id: String,
    pub tenant: String,
    pub kind: EventKind,
    #[serde(serialize_with = "millis")]
    pub created_at: DateTime<Utc>,
    pub payload: Value,
}

/// What recording a call did.
#[derive(Debug, Clone, Serialize)]
pub struct Recorded {
    /// False when the call id was known: its earlier analysis was replaced.
    pub new_call: bool,
    pub assignments: Vec<Assignment>,
    pub suspension: Option<Suspension>,
    pub events: Vec<Event>,
}

#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct Assignment {
    pub id: i64,
    pub rep_id: String,
    pub dimension: String,
    pub pack: String,
    pub reason: String,
    pub evidence_calls: Vec<String>,
    /// `open` or `completed`.
    pub status: String,
    #[serde(serialize_with = "millis")]
    pub created_at: DateTime<Utc>,
}

#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct Suspension {
    pub id: i64,
    pub rep_id: String,
    pub reason: String,
    pub calls: Vec<String>,
    #[serde(serialize_with = "millis")]
    pub started_at: DateTime<Utc>,
    #[serde(serialize_with = "millis")]
    pub ends_at: DateTime<Utc>,
    /// `active`, `completed` (training done) or `expired`.
    pub status: String,
}

/// How a rep's voiceprint came to be.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum VoiceSource {
    /// From a recording of the rep alone (`callqa reps enroll`).
    Enrolled,
    /// From the agent channel of the rep's stereo calls.
    Learned,
}

impl VoiceSource {
    pub fn as_str(self) -> &'static str {
        match self {
            VoiceSource::Enrolled => "enrolled",
            VoiceSource::Learned => "learned",
        }
    }
}

/// A rep's voiceprint and how much speech it was made from.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct RepVoice {
    pub voiceprint: Vec<f32>,
    pub speech_ms: u64,
    pub source: VoiceSource,
}

/// A rep's six-dimension profile.
#[derive(Debug, Clone, Serialize)]
pub struct RepProfile {
    pub tenant: String,
    pub rep_id: String,
    /// The playbook the profile is over: its dimensions are that playbook's.
    pub playbook: Option<String>,
    /// The revisions of that playbook the calls were scored under.
    pub revisions: Vec<String>,
    /// The rep's calls under other playbooks, not counted here.
    pub other_playbooks: Vec<String>,
    pub calls: usize,
    /// Per dimension: the average over all calls that judged it (the radar), and per call in order
    /// (the trend).
    pub dimensions: Vec<DimensionHistory>,
    pub open_assignments: Vec<Assignment>,
    pub suspension: Option<Suspension>,
}

#[derive(Debug, Clone, Serialize)]
pub struct DimensionHistory {
    pub id: String,
    pub name: String,
    pub average: Option<f64>,
    pub trend: Vec<TrendPoint>,
}

#[derive(Debug, Clone, Serialize)]
pub struct TrendPoint {
    pub call_id: String,
    pub call_date: NaiveDate,
    pub score: f64,
    pub passed: bool,
}

/// Everything the monthly process-health report shows.
#[derive(Debug, Clone, Serialize)]
pub struct MonthData {
    pub tenant: String,
    /// YYYY-MM.
    pub month: String,
    /// The playbook the report is over, and the revisions of it that the calls were scored under.
    pub playbook: Option<String>,
    pub revisions: Vec<String>,
    /// Playbooks of other calls of the month, not counted here.
    pub other_playbooks: Vec<String>,
    pub calls: usize,
    pub reps: Vec<RepProfile>,
    /// Mean key-question coverage over the month's calls, 0–100.
    pub coverage_percent: Option<f64>,
    /// Competitor → (mentions, mentions the agent answered).
    pub competitors: Vec<CompetitorStat>,
    pub assignments: Vec<Assignment>,
    pub suspensions: Vec<Suspension>,
}

#[derive(Debug, Clone, Serialize)]
pub struct CompetitorStat {
    pub competitor: String,
    pub mentions: usize,
    pub answered: usize,
}

/// A webhook delivery that failed every attempt.
#[derive(Debug, Clone, Serialize)]
pub struct WebhookFailure {
    pub id: i64,
    pub endpoint: String,
    pub event_seq: i64,
    pub event_id: String,
    pub kind: String,
    pub last_error: String,
    #[serde(serialize_with = "millis")]
    pub failed_at: DateTime<Utc>,
    /// `failed`, or `replay` (to be sent again).
    pub status: String,
}

/// Filters and a page of `Store::list`.
#[derive(Debug, Clone, Default)]
pub struct ListQuery {
    /// Only calls that arrived before this one (the page cursor).
    pub before_seq: Option<i64>,
    pub rep_id: Option<String>,
    pub customer_id: Option<String>,
    pub from_date: Option<NaiveDate>,
    pub to_date: Option<NaiveDate>,
    pub min_score: Option<f64>,
    pub max_score: Option<f64>,
    pub limit: usize,
}

#[derive(Debug, Clone, Serialize)]
pub struct AnalysisRow {
    pub seq: i64,
    pub call_id: String,
    /// The name of the playbook the call was scored under.
    pub playbook: String,
    pub rep_id: Option<String>,
    pub customer_id: Option<String>,
    pub call_date: NaiveDate,
    pub duration_ms: u64,
    pub playbook_revision: String,
    pub coverage_percent: Option<f64>,
    /// The mean of the dimension scores judged.
    pub score: Option<f64>,
    #[serde(serialize_with = "millis")]
    pub analysed_at: DateTime<Utc>,
}

/// What a stored call was analysed from and under which rules: a repeated request with the same
/// audio and playbook revision needs no new analysis.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CallIdentity {
    pub content_hash: Option<String>,
    pub playbook_revision: String,
}

/// A request accepted but not yet analysed, kept so that a crash loses nothing.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PendingCall {
    pub tenant: String,
    pub call_id: String,
    /// The request as received (the API's encoding).
    pub request: Vec<u8>,
    /// The request (or start-up) that holds it.
    pub owner: String,
}

/// Calls, analyses and coaching; pending work; the events outbox and its webhook cursors. Every
/// method names the tenant whose data it touches, except the few that serve every tenant
/// (`expire_suspensions`, `pending`).
pub trait Store: Send + Sync {
    // --- calls and their analyses
    /// Records an analysis (replacing an earlier one of the same call id: scores never count
    /// twice), runs coaching for the call's rep, and writes the events; all or nothing.
    fn record(
        &self,
        tenant: &str,
        analysis: &Analysis,
        playbook: &Playbook,
        now: DateTime<Utc>,
    ) -> Result<Recorded, StoreError>;

    /// The stored Analysis of a call.
    fn analysis(&self, tenant: &str, call_id: &str) -> Result<Analysis, StoreError>;

    // --- reps' voices
    /// The rep's voiceprint, enrolled or learned, if there is one.
    fn voiceprint(&self, tenant: &str, rep_id: &str) -> Result<Option<RepVoice>, StoreError>;

    /// Keeps a rep's voiceprint: an enrolled one replaces what was there, a learned one joins
    /// the learned mean (and never replaces an enrolled one).
    fn put_voiceprint(
        &self,
        tenant: &str,
        rep_id: &str,
        voice: &RepVoice,
        now: DateTime<Utc>,
    ) -> Result<(), StoreError>;

    /// Deletes a rep's voiceprint (it is biometric data); whether there was one.
    fn forget_voiceprint(&self, tenant: &str, rep_id: &str) -> Result<bool, StoreError>;

    /// A call's turns before PII redaction, if its playbook kept them.
    fn original_turns(&self, tenant: &str, call_id: &str) -> Result<Vec<Turn>, StoreError>;

    /// The content hash and playbook revision of a call's stored analysis, if there is one.
    fn identity(&self, tenant: &str, call_id: &str) -> Result<Option<CallIdentity>, StoreError>;

    /// A tenant's analysed calls, newest first.
    fn list(&self, tenant: &str, query: &ListQuery) -> Result<Vec<AnalysisRow>, StoreError>;

    // --- coaching and reports

    /// Ends a rep's active suspension because the training camp was completed.
    fn complete_training(
        &self,
        tenant: &str,
        rep_id: &str,
        now: DateTime<Utc>,
    ) -> Result<Option<Event>, StoreError>;

    /// Ends every suspension whose time is up (all tenants), with a `rep.reinstated` event each.
    fn expire_suspensions(&self, now: DateTime<Utc>) -> Result<Vec<Event>, StoreError>;

    /// A rep's profile over one playbook's calls: `playbook`, else the playbook of the rep's
    /// latest call (a dimension is a playbook's: two playbooks' dimensions never mix).
    fn rep_profile(
        &self,
        tenant: &str,
        rep_id: &str,
        playbook: Option<&str>,
    ) -> Result<RepProfile, StoreError>;

    /// The month's report over one playbook's calls (as `rep_profile` chooses it); `month` is
    /// the first day of the month.
    fn month(
        &self,
        tenant: &str,
        month: NaiveDate,
        playbook: Option<&str>,
    ) -> Result<MonthData, StoreError>;

    // --- pending work

    /// Keeps an accepted request for `owner` until its analysis is recorded (which removes it).
    /// False, and nothing kept, when another owner holds a request of that call already.
    fn put_pending(
        &self,
        tenant: &str,
        call_id: &str,
        request: &[u8],
        owner: &str,
        now: DateTime<Utc>,
    ) -> Result<bool, StoreError>;

    /// Every pending request, oldest first.
    fn pending(&self) -> Result<Vec<PendingCall>, StoreError>;

    /// Forgets a pending request that cannot be analysed (it was answered with an error); only
    /// its owner may.
    fn drop_pending(&self, tenant: &str, call_id: &str, owner: &str) -> Result<(), StoreError>;

    // --- the outbox and its webhooks

    /// A tenant's events after the cursor `after_seq`, oldest first.
    fn events_after(
        &self,
        tenant: &str,
        after_seq: i64,
        limit: usize,
    ) -> Result<Vec<Event>, StoreError>;

    /// Where a webhook endpoint is in a tenant's events (0: nothing sent yet).
    fn webhook_cursor(&self, endpoint: &str, tenant: &str) -> Result<i64, StoreError>;
    fn set_webhook_cursor(&self, endpoint: &str, tenant: &str, seq: i64) -> Result<(), StoreError>;
    /// An event that failed every attempt to an endpoint.
    fn webhook_failed(
        &self,
        endpoint: &str,
        tenant: &str,
        event: &Event,
        error: &str,
    ) -> Result<(), StoreError>;
    /// The failed deliveries not yet delivered, oldest first.
    fn webhook_failures(&self, tenant: &str) -> Result<Vec<WebhookFailure>, StoreError>;
    /// Marks failed deliveries (one, or all of the tenant's) to be sent again; returns how many.
    fn replay_webhooks(&self, tenant: &str, id: Option<i64>) -> Result<usize, StoreError>;
    /// The deliveries marked for replay to an endpoint: (failure id, event).
    fn webhook_replays(
        &self,
        endpoint: &str,
        tenant: &str,
    ) -> Result<Vec<(i64, Event)>, StoreError>;
    /// The outcome of a replay: delivered, or failed again with this error.
    fn webhook_replayed(&self, id: i64, error: Option<&str>) -> Result<(), StoreError>;
}

/// The Analysis exactly as the store gives it back (through its JSON text), so that a reply made
/// now and one read later carry the same floats.
pub fn as_stored(analysis: &Analysis) -> Result<Analysis, StoreError> {
    Ok(serde_json::from_str(&serde_json::to_string(analysis)?)?)
}
