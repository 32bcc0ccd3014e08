//! The embedded store: one SQLite file in WAL mode, synchronous writes, schema migrations by
//! `user_version`. One file per aggregate: `calls` (calls and analyses), `coaching`
//! (assignments and suspensions), `outbox` (events), `webhooks` (delivery cursors and failures),
//! `pending` (accepted work), `reports` (profiles and the month).

mod calls;
mod coaching;
mod migrations;
mod outbox;
mod pending;
mod reports;
mod voices;
mod webhooks;

use super::{
    AnalysisRow, CallIdentity, Event, ListQuery, MonthData, PendingCall, Recorded, RepProfile,
    RepVoice, Store, StoreError, VoiceSource, WebhookFailure,
};
use crate::analysis::Analysis;
use crate::analysis::playbook::Playbook;
use crate::transcript::Turn;
use chrono::{DateTime, NaiveDate, Utc};
use rusqlite::{Connection, params};
use std::path::Path;
use std::sync::Mutex;

pub struct SqliteStore {
    conn: Mutex<Connection>,
}

fn ts(t: DateTime<Utc>) -> String {
    t.to_rfc3339_opts(chrono::SecondsFormat::Millis, true)
}

fn conversion_error(
    column: usize,
    e: impl std::error::Error + Send + Sync + 'static,
) -> rusqlite::Error {
    rusqlite::Error::FromSqlConversionFailure(column, rusqlite::types::Type::Text, Box::new(e))
}

fn parse_ts(s: String) -> rusqlite::Result<DateTime<Utc>> {
    DateTime::parse_from_rfc3339(&s)
        .map(|t| t.with_timezone(&Utc))
        .map_err(|e| conversion_error(0, e))
}

fn json_list(s: String) -> rusqlite::Result<Vec<String>> {
    serde_json::from_str(&s).map_err(|e| conversion_error(0, e))
}

/// Makes `path` readable and writable by its owner alone (0600), creating it if need be: the
/// store holds transcripts, and unredacted ones when a playbook keeps them.
///
/// An existing file is only chmod-ed, never opened: closing any descriptor of a file drops every
/// POSIX lock this process holds on it, and SQLite's locks on the database and its -shm are what
/// keep another process from resetting the shared WAL index under a live connection.
fn private_file(path: &Path, create: bool) -> Result<(), StoreError> {
    use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
    let fail = |e: std::io::Error| StoreError::Open {
        path: path.display().to_string(),
        detail: e.to_string(),
    };
    if !path.exists() {
        if !create {
            return Ok(());
        }
        std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .mode(0o600)
            .open(path)
            .map_err(fail)?;
    }
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600)).map_err(fail)
}

impl SqliteStore {
    /// Opens (creating if needed) and migrates the database at `path`.
    pub fn open(path: &Path) -> Result<Self, StoreError> {
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            std::fs::create_dir_all(dir).map_err(|e| StoreError::Open {
                path: path.display().to_string(),
                detail: e.to_string(),
            })?;
        }
        private_file(path, true)?;
        // SQLite gives its -wal and -shm files the database's mode; older ones may not have it.
        for suffix in ["-wal", "-shm"] {
            let mut side = path.as_os_str().to_owned();
            side.push(suffix);
            private_file(Path::new(&side), false)?;
        }
        Self::init(Connection::open(path)?)
    }

    /// Opens a store that must exist already: a command that only reads never creates one.
    pub fn open_existing(path: &Path) -> Result<Self, StoreError> {
        if !path.is_file() {
            return Err(StoreError::Missing(path.display().to_string()));
        }
        Self::open(path)
    }

    /// A private in-memory database (tests).
    pub fn in_memory() -> Result<Self, StoreError> {
        Self::init(Connection::open_in_memory()?)
    }

    fn init(mut conn: Connection) -> Result<Self, StoreError> {
        conn.busy_timeout(std::time::Duration::from_secs(10))?;
        // WAL: readers never block the writer; FULL: a committed call survives a crash.
        conn.pragma_update(None, "journal_mode", "WAL")?;
        conn.pragma_update(None, "synchronous", "FULL")?;
        conn.pragma_update(None, "foreign_keys", true)?;
        migrations::migrate(&mut conn)?;
        Ok(Self {
            conn: Mutex::new(conn),
        })
    }

    fn with<T>(
        &self,
        f: impl FnOnce(&mut Connection) -> Result<T, StoreError>,
    ) -> Result<T, StoreError> {
        // A panic while holding the lock leaves no half transaction (it rolled back on drop).
        let mut conn = self.conn.lock().unwrap_or_else(|e| e.into_inner());
        f(&mut conn)
    }
}

impl Store for SqliteStore {
    fn record(
        &self,
        tenant: &str,
        a: &Analysis,
        playbook: &Playbook,
        now: DateTime<Utc>,
    ) -> Result<Recorded, StoreError> {
        self.with(|conn| {
            let tx = conn.transaction()?;
            tx.execute(
                "INSERT OR IGNORE INTO tenants (id, created_at) VALUES (?1, ?2)",
                params![tenant, ts(now)],
            )?;
            let new_call = calls::write(&tx, tenant, a, now)?;
            let mut events = outbox::analysis_events(&tx, tenant, a, now)?;
            if let (Some(rep), Some(voice)) = (&a.rep_id, &a.agent_voice) {
                let learned = RepVoice {
                    voiceprint: voice.voiceprint.clone(),
                    speech_ms: voice.speech_ms,
                    source: VoiceSource::Learned,
                };
                voices::put(&tx, tenant, rep, &learned, now)?;
            }
            let (assignments, suspension) = match &a.rep_id {
                Some(rep) => coaching::after_call(&tx, tenant, rep, playbook, now, &mut events)?,
                None => (Vec::new(), None),
            };
            tx.commit()?;
            Ok(Recorded {
                new_call,
                assignments,
                suspension,
                events,
            })
        })
    }

    fn analysis(&self, tenant: &str, call_id: &str) -> Result<Analysis, StoreError> {
        self.with(|conn| calls::analysis(conn, tenant, call_id))
    }

    fn voiceprint(&self, tenant: &str, rep_id: &str) -> Result<Option<RepVoice>, StoreError> {
        self.with(|conn| voices::get(conn, tenant, rep_id))
    }

    fn put_voiceprint(
        &self,
        tenant: &str,
        rep_id: &str,
        voice: &RepVoice,
        now: DateTime<Utc>,
    ) -> Result<(), StoreError> {
        self.with(|conn| voices::put(conn, tenant, rep_id, voice, now))
    }

    fn forget_voiceprint(&self, tenant: &str, rep_id: &str) -> Result<bool, StoreError> {
        self.with(|conn| voices::forget(conn, tenant, rep_id))
    }

    fn original_turns(&self, tenant: &str, call_id: &str) -> Result<Vec<Turn>, StoreError> {
        self.with(|conn| calls::original_turns(conn, tenant, call_id))
    }

    fn identity(&self, tenant: &str, call_id: &str) -> Result<Option<CallIdentity>, StoreError> {
        self.with(|conn| calls::identity(conn, tenant, call_id))
    }

    fn list(&self, tenant: &str, query: &ListQuery) -> Result<Vec<AnalysisRow>, StoreError> {
        self.with(|conn| calls::list(conn, tenant, query))
    }

    fn complete_training(
        &self,
        tenant: &str,
        rep_id: &str,
        now: DateTime<Utc>,
    ) -> Result<Option<Event>, StoreError> {
        self.with(|conn| coaching::complete_training(conn, tenant, rep_id, now))
    }

    fn expire_suspensions(&self, now: DateTime<Utc>) -> Result<Vec<Event>, StoreError> {
        self.with(|conn| coaching::expire_suspensions(conn, now))
    }

    fn rep_profile(
        &self,
        tenant: &str,
        rep_id: &str,
        playbook: Option<&str>,
    ) -> Result<RepProfile, StoreError> {
        self.with(|conn| reports::rep_profile(conn, tenant, rep_id, playbook))
    }

    fn month(
        &self,
        tenant: &str,
        month: NaiveDate,
        playbook: Option<&str>,
    ) -> Result<MonthData, StoreError> {
        self.with(|conn| reports::month(conn, tenant, month, playbook))
    }

    fn put_pending(
        &self,
        tenant: &str,
        call_id: &str,
        request: &[u8],
        owner: &str,
        now: DateTime<Utc>,
    ) -> Result<bool, StoreError> {
        self.with(|conn| pending::put(conn, tenant, call_id, request, owner, now))
    }

    fn pending(&self) -> Result<Vec<PendingCall>, StoreError> {
        self.with(|conn| pending::all(conn))
    }

    fn drop_pending(&self, tenant: &str, call_id: &str, owner: &str) -> Result<(), StoreError> {
        self.with(|conn| pending::remove(conn, tenant, call_id, owner))
    }

    fn events_after(
        &self,
        tenant: &str,
        after_seq: i64,
        limit: usize,
    ) -> Result<Vec<Event>, StoreError> {
        self.with(|conn| outbox::events_after(conn, tenant, after_seq, limit))
    }

    fn webhook_cursor(&self, endpoint: &str, tenant: &str) -> Result<i64, StoreError> {
        self.with(|conn| webhooks::cursor(conn, endpoint, tenant))
    }

    fn set_webhook_cursor(&self, endpoint: &str, tenant: &str, seq: i64) -> Result<(), StoreError> {
        self.with(|conn| webhooks::set_cursor(conn, endpoint, tenant, seq))
    }

    fn webhook_failed(
        &self,
        endpoint: &str,
        tenant: &str,
        event: &Event,
        error: &str,
    ) -> Result<(), StoreError> {
        self.with(|conn| webhooks::failed(conn, endpoint, tenant, event, error))
    }

    fn webhook_failures(&self, tenant: &str) -> Result<Vec<WebhookFailure>, StoreError> {
        self.with(|conn| webhooks::failures(conn, tenant))
    }

    fn replay_webhooks(&self, tenant: &str, id: Option<i64>) -> Result<usize, StoreError> {
        self.with(|conn| webhooks::replay(conn, tenant, id))
    }

    fn webhook_replays(
        &self,
        endpoint: &str,
        tenant: &str,
    ) -> Result<Vec<(i64, Event)>, StoreError> {
        self.with(|conn| webhooks::replays(conn, endpoint, tenant))
    }

    fn webhook_replayed(&self, id: i64, error: Option<&str>) -> Result<(), StoreError> {
        self.with(|conn| webhooks::replayed(conn, id, error))
    }
}
