//! The embedded store: one SQLite file in WAL mode, synchronous writes, schema migrations by
//! `user_version`.

use super::{
    AnalysisRow, Assignment, CompetitorStat, DimensionHistory, Event, ListQuery, MonthData,
    RepProfile, Store, StoreError, Suspension, TrendPoint, WebhookFailure,
};
use crate::analysis::Analysis;
use crate::analysis::competitors::AgentResponse;
use crate::analysis::playbook::Playbook;
use crate::coaching::{self, CallOutcome};
use chrono::{DateTime, Duration, NaiveDate, Utc};
use rusqlite::{Connection, OptionalExtension, Transaction, params};
use serde_json::{Value, json};
use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;
use std::sync::Mutex;

/// Each entry upgrades the schema by one version; never edit one that has shipped.
const MIGRATIONS: &[&str] = &[
    r#"
CREATE TABLE tenants (
    id TEXT PRIMARY KEY,
    created_at TEXT NOT NULL
);
CREATE TABLE reps (
    tenant TEXT NOT NULL REFERENCES tenants(id),
    rep_id TEXT NOT NULL,
    created_at TEXT NOT NULL,
    PRIMARY KEY (tenant, rep_id)
);
CREATE TABLE calls (
    tenant TEXT NOT NULL REFERENCES tenants(id),
    call_id TEXT NOT NULL,
    seq INTEGER NOT NULL,                -- order of first arrival within the tenant
    rep_id TEXT,
    customer_id TEXT,
    call_date TEXT NOT NULL,
    language TEXT NOT NULL,
    duration_ms INTEGER NOT NULL,
    competitor_raised INTEGER NOT NULL,  -- the customer raised a competitor
    analyses INTEGER NOT NULL,           -- how many times analysed
    received_at TEXT NOT NULL,
    analysed_at TEXT NOT NULL,
    PRIMARY KEY (tenant, call_id)
);
CREATE INDEX calls_by_rep ON calls (tenant, rep_id, call_date, seq);
CREATE TABLE turns (
    tenant TEXT NOT NULL,
    call_id TEXT NOT NULL,
    turn INTEGER NOT NULL,
    role TEXT NOT NULL,
    start_ms INTEGER NOT NULL,
    end_ms INTEGER NOT NULL,
    text TEXT NOT NULL,
    PRIMARY KEY (tenant, call_id, turn),
    FOREIGN KEY (tenant, call_id) REFERENCES calls(tenant, call_id)
);
CREATE TABLE analyses (
    tenant TEXT NOT NULL,
    call_id TEXT NOT NULL,
    playbook TEXT NOT NULL,
    playbook_revision TEXT NOT NULL,
    coverage_percent REAL,
    analysis TEXT NOT NULL,              -- the Analysis as JSON
    created_at TEXT NOT NULL,
    PRIMARY KEY (tenant, call_id),
    FOREIGN KEY (tenant, call_id) REFERENCES calls(tenant, call_id)
);
CREATE TABLE dimension_scores (
    tenant TEXT NOT NULL,
    call_id TEXT NOT NULL,
    rep_id TEXT,
    dimension TEXT NOT NULL,
    name TEXT NOT NULL,
    score REAL,                          -- NULL: not judged on this call
    passed INTEGER,
    PRIMARY KEY (tenant, call_id, dimension),
    FOREIGN KEY (tenant, call_id) REFERENCES calls(tenant, call_id)
);
CREATE TABLE competitor_mentions (
    tenant TEXT NOT NULL,
    call_id TEXT NOT NULL,
    idx INTEGER NOT NULL,
    competitor TEXT NOT NULL,
    role TEXT NOT NULL,
    turn INTEGER NOT NULL,
    time_ms INTEGER NOT NULL,
    agent_response TEXT NOT NULL,
    PRIMARY KEY (tenant, call_id, idx),
    FOREIGN KEY (tenant, call_id) REFERENCES calls(tenant, call_id)
);
CREATE TABLE assignments (
    id INTEGER PRIMARY KEY,
    tenant TEXT NOT NULL REFERENCES tenants(id),
    rep_id TEXT NOT NULL,
    dimension TEXT NOT NULL,
    pack TEXT NOT NULL,
    reason TEXT NOT NULL,
    evidence_calls TEXT NOT NULL,        -- JSON list of call ids
    status TEXT NOT NULL,                -- open | completed
    created_at TEXT NOT NULL,
    completed_at TEXT
);
CREATE INDEX assignments_by_rep ON assignments (tenant, rep_id, status);
CREATE TABLE suspensions (
    id INTEGER PRIMARY KEY,
    tenant TEXT NOT NULL REFERENCES tenants(id),
    rep_id TEXT NOT NULL,
    reason TEXT NOT NULL,
    calls TEXT NOT NULL,                 -- JSON list of the failed calls
    started_at TEXT NOT NULL,
    ends_at TEXT NOT NULL,
    status TEXT NOT NULL,                -- active | completed | expired
    ended_at TEXT
);
CREATE INDEX suspensions_by_rep ON suspensions (tenant, rep_id, status);
CREATE TABLE events (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    id TEXT NOT NULL UNIQUE,
    tenant TEXT NOT NULL REFERENCES tenants(id),
    kind TEXT NOT NULL,
    payload TEXT NOT NULL,
    created_at TEXT NOT NULL
);
CREATE INDEX events_by_tenant ON events (tenant, seq);
"#,
    r#"
-- Calls accepted but not yet analysed: the request is kept until its analysis is recorded, so
-- that work cut short by a crash is done again at start.
CREATE TABLE pending_calls (
    tenant TEXT NOT NULL,
    call_id TEXT NOT NULL,
    request BLOB NOT NULL,
    received_at TEXT NOT NULL,
    PRIMARY KEY (tenant, call_id)
);
ALTER TABLE analyses ADD COLUMN content_hash TEXT;
ALTER TABLE analyses ADD COLUMN score REAL;   -- mean of the dimension scores judged
"#,
    r#"
-- Webhook delivery: each endpoint's position in each tenant's events, and the events that
-- failed every attempt (status failed), are to be sent again (replay), or were (delivered).
CREATE TABLE webhook_cursors (
    endpoint TEXT NOT NULL,
    tenant TEXT NOT NULL,
    last_seq INTEGER NOT NULL,
    PRIMARY KEY (endpoint, tenant)
);
CREATE TABLE webhook_failures (
    id INTEGER PRIMARY KEY,
    endpoint TEXT NOT NULL,
    tenant TEXT NOT NULL,
    event_seq INTEGER NOT NULL REFERENCES events(seq),
    last_error TEXT NOT NULL,
    failed_at TEXT NOT NULL,
    status TEXT NOT NULL
);
"#,
    r#"
-- The turns of a call before PII redaction, kept only when its playbook says so
-- (redaction.keep_original), and read only with an API key that has the pii permission.
CREATE TABLE original_transcripts (
    tenant TEXT NOT NULL,
    call_id TEXT NOT NULL,
    turns TEXT NOT NULL,
    PRIMARY KEY (tenant, call_id)
);
"#,
];

pub struct SqliteStore {
    conn: Mutex<Connection>,
}

fn ts(t: DateTime<Utc>) -> String {
    t.to_rfc3339_opts(chrono::SecondsFormat::Millis, true)
}

fn parse_ts(s: String) -> rusqlite::Result<DateTime<Utc>> {
    DateTime::parse_from_rfc3339(&s)
        .map(|t| t.with_timezone(&Utc))
        .map_err(|e| {
            rusqlite::Error::FromSqlConversionFailure(0, rusqlite::types::Type::Text, e.into())
        })
}

fn json_list(s: String) -> rusqlite::Result<Vec<String>> {
    serde_json::from_str(&s).map_err(|e| {
        rusqlite::Error::FromSqlConversionFailure(0, rusqlite::types::Type::Text, e.into())
    })
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
        let conn = Connection::open(path)?;
        Self::init(conn)
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
        let version: i64 = conn.query_row("PRAGMA user_version", [], |r| r.get(0))?;
        let known = MIGRATIONS.len() as i64;
        if version > known {
            return Err(StoreError::TooNew {
                found: version,
                known,
            });
        }
        for (i, sql) in MIGRATIONS.iter().enumerate().skip(version as usize) {
            let tx = conn.transaction()?;
            tx.execute_batch(sql)?;
            tx.pragma_update(None, "user_version", i as i64 + 1)?;
            tx.commit()?;
        }
        Ok(Self {
            conn: Mutex::new(conn),
        })
    }

    /// The JSON column that `sql` selects for one call (parameters: tenant, call id), if any.
    fn call_json(
        &self,
        sql: &str,
        tenant: &str,
        call_id: &str,
    ) -> Result<Option<Value>, StoreError> {
        self.with(|conn| {
            let text: Option<String> = conn
                .query_row(sql, params![tenant, call_id], |r| r.get(0))
                .optional()?;
            Ok(text.map(|t| serde_json::from_str(&t)).transpose()?)
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

/// Appends an event to the outbox; its id is random and stays with it for every delivery.
fn emit(
    tx: &Transaction<'_>,
    tenant: &str,
    kind: &str,
    payload: Value,
    now: DateTime<Utc>,
) -> Result<Event, StoreError> {
    let id: String = tx.query_row("SELECT 'evt_' || lower(hex(randomblob(16)))", [], |r| {
        r.get(0)
    })?;
    tx.execute(
        "INSERT INTO events (id, tenant, kind, payload, created_at) VALUES (?1, ?2, ?3, ?4, ?5)",
        params![id, tenant, kind, payload.to_string(), ts(now)],
    )?;
    Ok(Event {
        seq: tx.last_insert_rowid(),
        id,
        tenant: tenant.to_owned(),
        kind: kind.to_owned(),
        created_at: now,
        payload,
    })
}

fn active_suspension(
    conn: &Connection,
    tenant: &str,
    rep_id: &str,
) -> Result<Option<Suspension>, StoreError> {
    Ok(conn
        .query_row(
            "SELECT id, rep_id, reason, calls, started_at, ends_at, status FROM suspensions
             WHERE tenant = ?1 AND rep_id = ?2 AND status = 'active'",
            params![tenant, rep_id],
            suspension_row,
        )
        .optional()?)
}

fn suspension_row(r: &rusqlite::Row<'_>) -> rusqlite::Result<Suspension> {
    Ok(Suspension {
        id: r.get(0)?,
        rep_id: r.get(1)?,
        reason: r.get(2)?,
        calls: json_list(r.get(3)?)?,
        started_at: parse_ts(r.get(4)?)?,
        ends_at: parse_ts(r.get(5)?)?,
        status: r.get(6)?,
    })
}

const ASSIGNMENT_COLUMNS: &str =
    "id, rep_id, dimension, pack, reason, evidence_calls, status, created_at";

fn assignment_row(r: &rusqlite::Row<'_>) -> rusqlite::Result<Assignment> {
    Ok(Assignment {
        id: r.get(0)?,
        rep_id: r.get(1)?,
        dimension: r.get(2)?,
        pack: r.get(3)?,
        reason: r.get(4)?,
        evidence_calls: json_list(r.get(5)?)?,
        status: r.get(6)?,
        created_at: parse_ts(r.get(7)?)?,
    })
}

/// A rep's calls in call order, with their dimension results.
fn history(conn: &Connection, tenant: &str, rep_id: &str) -> Result<Vec<CallOutcome>, StoreError> {
    let mut calls: Vec<CallOutcome> = conn
        .prepare(
            "SELECT call_id, competitor_raised FROM calls WHERE tenant = ?1 AND rep_id = ?2
             ORDER BY call_date, seq",
        )?
        .query_map(params![tenant, rep_id], |r| {
            Ok(CallOutcome {
                call_id: r.get(0)?,
                dimensions: BTreeMap::new(),
                competitor_raised: r.get(1)?,
            })
        })?
        .collect::<Result<_, _>>()?;
    let mut stmt = conn.prepare(
        "SELECT call_id, dimension, score, passed FROM dimension_scores
         WHERE tenant = ?1 AND rep_id = ?2",
    )?;
    let rows = stmt.query_map(params![tenant, rep_id], |r| {
        Ok((
            r.get::<_, String>(0)?,
            r.get::<_, String>(1)?,
            r.get::<_, Option<f64>>(2)?,
            r.get::<_, Option<bool>>(3)?,
        ))
    })?;
    let index: BTreeMap<String, usize> = calls
        .iter()
        .enumerate()
        .map(|(i, c)| (c.call_id.clone(), i))
        .collect();
    for row in rows {
        let (call, dim, score, passed) = row?;
        if let Some(&i) = index.get(&call) {
            calls[i].dimensions.insert(dim, (score, passed));
        }
    }
    Ok(calls)
}

fn role_name(role: crate::audio::channels::Role) -> String {
    serde_json::to_value(role)
        .ok()
        .and_then(|v| v.as_str().map(str::to_owned))
        .unwrap_or_default()
}

/// Writes the call and its analysis, replacing an earlier analysis of the same call.
fn write_call(
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
            a.scorecard.overall()
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
    Ok(known.is_none())
}

/// The events an analysis itself raises.
fn analysis_events(
    tx: &Transaction<'_>,
    tenant: &str,
    a: &Analysis,
    now: DateTime<Utc>,
) -> Result<Vec<Event>, StoreError> {
    let call = json!({"call_id": a.call_id, "rep_id": a.rep_id, "customer_id": a.customer_id});
    let with_call = |mut v: Value| {
        if let (Some(o), Some(c)) = (v.as_object_mut(), call.as_object()) {
            o.extend(c.clone());
        }
        v
    };
    let mut out = vec![emit(
        tx,
        tenant,
        "analysis.completed",
        with_call(json!({
            "call_date": a.call_date, "playbook_revision": a.playbook_revision, "note": a.note,
            "coverage_percent": a.key_questions.percent, "summary": a.summary,
            "scorecard": a.scorecard.dimensions.iter()
                .map(|d| json!({"id": d.id, "score": d.score, "passed": d.passed}))
                .collect::<Vec<_>>(),
        })),
        now,
    )?];
    for m in &a.competitor_mentions {
        out.push(emit(
            tx,
            tenant,
            "competitor.mentioned",
            with_call(serde_json::to_value(m)?),
            now,
        )?);
    }
    for alert in &a.emotion.alerts {
        out.push(emit(
            tx,
            tenant,
            "emotion.alert",
            with_call(serde_json::to_value(alert)?),
            now,
        )?);
    }
    Ok(out)
}

impl Store for SqliteStore {
    fn record(
        &self,
        tenant: &str,
        a: &Analysis,
        playbook: &Playbook,
        now: DateTime<Utc>,
    ) -> Result<super::Recorded, StoreError> {
        self.with(|conn| {
            let tx = conn.transaction()?;
            tx.execute(
                "INSERT OR IGNORE INTO tenants (id, created_at) VALUES (?1, ?2)",
                params![tenant, ts(now)],
            )?;
            let new_call = write_call(&tx, tenant, a, now)?;
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
            let mut events = analysis_events(&tx, tenant, a, now)?;
            let mut assignments = Vec::new();
            let mut suspension = None;
            if let Some(rep) = &a.rep_id {
                tx.execute(
                    "INSERT OR IGNORE INTO reps (tenant, rep_id, created_at) VALUES (?1, ?2, ?3)",
                    params![tenant, rep, ts(now)],
                )?;
                let history = history(&tx, tenant, rep)?;
                let open: BTreeSet<String> = tx
                    .prepare(
                        "SELECT dimension FROM assignments
                         WHERE tenant = ?1 AND rep_id = ?2 AND status = 'open'",
                    )?
                    .query_map(params![tenant, rep], |r| r.get(0))?
                    .collect::<Result<_, _>>()?;
                for due in coaching::due_assignments(playbook, &history, &open) {
                    tx.execute(
                        "INSERT INTO assignments (tenant, rep_id, dimension, pack, reason,
                         evidence_calls, status, created_at) VALUES (?1, ?2, ?3, ?4, ?5, ?6, 'open', ?7)",
                        params![
                            tenant,
                            rep,
                            due.dimension,
                            due.pack,
                            due.reason,
                            serde_json::to_string(&due.evidence_calls)?,
                            ts(now)
                        ],
                    )?;
                    let assignment = Assignment {
                        id: tx.last_insert_rowid(),
                        rep_id: rep.clone(),
                        dimension: due.dimension,
                        pack: due.pack,
                        reason: due.reason,
                        evidence_calls: due.evidence_calls,
                        status: "open".into(),
                        created_at: now,
                    };
                    events.push(emit(&tx, tenant, "coaching.assigned", serde_json::to_value(&assignment)?, now)?);
                    assignments.push(assignment);
                }
                if active_suspension(&tx, tenant, rep)?.is_none() {
                    let last_run: Option<String> = tx
                        .query_row(
                            "SELECT calls FROM suspensions WHERE tenant = ?1 AND rep_id = ?2
                             ORDER BY id DESC LIMIT 1",
                            params![tenant, rep],
                            |r| r.get(0),
                        )
                        .optional()?;
                    let after = last_run
                        .map(json_list)
                        .transpose()?
                        .and_then(|calls| calls.last().cloned());
                    if let Some(calls) = coaching::breaker_trips(playbook, &history, after.as_deref()) {
                        let cb = &playbook.coaching.circuit_breaker;
                        let ends_at = now + Duration::hours(i64::from(cb.training_hours));
                        let reason = format!(
                            "{} failed in {} consecutive calls with a competitor: independent follow-up of new opportunities suspended; training camp of {} h",
                            cb.dimension,
                            calls.len(),
                            cb.training_hours
                        );
                        tx.execute(
                            "INSERT INTO suspensions (tenant, rep_id, reason, calls, started_at, ends_at,
                             status) VALUES (?1, ?2, ?3, ?4, ?5, ?6, 'active')",
                            params![tenant, rep, reason, serde_json::to_string(&calls)?, ts(now), ts(ends_at)],
                        )?;
                        let s = Suspension {
                            id: tx.last_insert_rowid(),
                            rep_id: rep.clone(),
                            reason,
                            calls,
                            started_at: now,
                            ends_at,
                            status: "active".into(),
                        };
                        events.push(emit(&tx, tenant, "rep.suspended", serde_json::to_value(&s)?, now)?);
                        suspension = Some(s);
                    }
                }
            }
            tx.commit()?;
            Ok(super::Recorded {
                new_call,
                assignments,
                suspension,
                events,
            })
        })
    }

    fn complete_training(
        &self,
        tenant: &str,
        rep_id: &str,
        now: DateTime<Utc>,
    ) -> Result<Option<Event>, StoreError> {
        self.with(|conn| {
            let tx = conn.transaction()?;
            let Some(s) = active_suspension(&tx, tenant, rep_id)? else {
                return Ok(None);
            };
            let event = end_suspension(&tx, tenant, &s, "completed", now)?;
            tx.commit()?;
            Ok(Some(event))
        })
    }

    fn expire_suspensions(&self, now: DateTime<Utc>) -> Result<Vec<Event>, StoreError> {
        self.with(|conn| {
            let tx = conn.transaction()?;
            let due: Vec<(String, Suspension)> = tx
                .prepare(
                    "SELECT tenant, id, rep_id, reason, calls, started_at, ends_at, status
                     FROM suspensions WHERE status = 'active' AND ends_at <= ?1",
                )?
                .query_map(params![ts(now)], |r| {
                    let tenant: String = r.get(0)?;
                    Ok((
                        tenant,
                        Suspension {
                            id: r.get(1)?,
                            rep_id: r.get(2)?,
                            reason: r.get(3)?,
                            calls: json_list(r.get(4)?)?,
                            started_at: parse_ts(r.get(5)?)?,
                            ends_at: parse_ts(r.get(6)?)?,
                            status: r.get(7)?,
                        },
                    ))
                })?
                .collect::<Result<_, _>>()?;
            let mut events = Vec::new();
            for (tenant, s) in due {
                events.push(end_suspension(&tx, &tenant, &s, "expired", now)?);
            }
            tx.commit()?;
            Ok(events)
        })
    }

    fn analysis(&self, tenant: &str, call_id: &str) -> Result<Value, StoreError> {
        self.call_json(
            "SELECT analysis FROM analyses WHERE tenant = ?1 AND call_id = ?2",
            tenant,
            call_id,
        )?
        .ok_or_else(|| StoreError::NotFound(format!("call {call_id}")))
    }

    fn original_turns(&self, tenant: &str, call_id: &str) -> Result<Value, StoreError> {
        self.call_json(
            "SELECT turns FROM original_transcripts WHERE tenant = ?1 AND call_id = ?2",
            tenant,
            call_id,
        )?
        .ok_or_else(|| StoreError::NotFound(format!("an unredacted transcript of call {call_id}")))
    }

    fn rep_profile(&self, tenant: &str, rep_id: &str) -> Result<RepProfile, StoreError> {
        self.with(|conn| {
            let known: bool = conn.query_row(
                "SELECT EXISTS (SELECT 1 FROM reps WHERE tenant = ?1 AND rep_id = ?2)",
                params![tenant, rep_id],
                |r| r.get(0),
            )?;
            if !known {
                return Err(StoreError::NotFound(format!("rep {rep_id}")));
            }
            profile(conn, tenant, rep_id, None)
        })
    }

    fn month(&self, tenant: &str, month: NaiveDate) -> Result<MonthData, StoreError> {
        let next = month
            .checked_add_months(chrono::Months::new(1))
            .unwrap_or(month);
        let (from, to) = (month.to_string(), next.to_string());
        self.with(|conn| {
            let calls: i64 = conn.query_row(
                "SELECT COUNT(*) FROM calls WHERE tenant = ?1 AND call_date >= ?2 AND call_date < ?3",
                params![tenant, from, to],
                |r| r.get(0),
            )?;
            let reps: Vec<String> = conn
                .prepare(
                    "SELECT DISTINCT rep_id FROM calls WHERE tenant = ?1 AND rep_id IS NOT NULL
                     AND call_date >= ?2 AND call_date < ?3 ORDER BY rep_id",
                )?
                .query_map(params![tenant, from, to], |r| r.get(0))?
                .collect::<Result<_, _>>()?;
            let reps = reps
                .iter()
                .map(|rep| profile(conn, tenant, rep, Some((&from, &to))))
                .collect::<Result<Vec<_>, _>>()?;
            let coverage_percent: Option<f64> = conn.query_row(
                "SELECT AVG(a.coverage_percent) FROM analyses a JOIN calls c USING (tenant, call_id)
                 WHERE a.tenant = ?1 AND c.call_date >= ?2 AND c.call_date < ?3",
                params![tenant, from, to],
                |r| r.get(0),
            )?;
            let competitors = conn
                .prepare(
                    "SELECT m.competitor, COUNT(*),
                     SUM(m.agent_response IN ('comparison', 'value'))
                     FROM competitor_mentions m JOIN calls c USING (tenant, call_id)
                     WHERE m.tenant = ?1 AND c.call_date >= ?2 AND c.call_date < ?3
                     GROUP BY m.competitor ORDER BY COUNT(*) DESC, m.competitor",
                )?
                .query_map(params![tenant, from, to], |r| {
                    Ok(CompetitorStat {
                        competitor: r.get(0)?,
                        mentions: r.get::<_, i64>(1)? as usize,
                        answered: r.get::<_, i64>(2)? as usize,
                    })
                })?
                .collect::<Result<_, _>>()?;
            let (start, end) = (format!("{from}T00:00:00"), format!("{to}T00:00:00"));
            let assignments = conn
                .prepare(&format!(
                    "SELECT {ASSIGNMENT_COLUMNS} FROM assignments
                     WHERE tenant = ?1 AND created_at >= ?2 AND created_at < ?3 ORDER BY id"
                ))?
                .query_map(params![tenant, start, end], assignment_row)?
                .collect::<Result<_, _>>()?;
            let suspensions = conn
                .prepare(
                    "SELECT id, rep_id, reason, calls, started_at, ends_at, status FROM suspensions
                     WHERE tenant = ?1 AND started_at >= ?2 AND started_at < ?3 ORDER BY id",
                )?
                .query_map(params![tenant, start, end], suspension_row)?
                .collect::<Result<_, _>>()?;
            Ok(MonthData {
                tenant: tenant.to_owned(),
                month: month.format("%Y-%m").to_string(),
                calls: calls as usize,
                reps,
                coverage_percent,
                competitors,
                assignments,
                suspensions,
            })
        })
    }

    fn identity(
        &self,
        tenant: &str,
        call_id: &str,
    ) -> Result<Option<(Option<String>, String)>, StoreError> {
        self.with(|conn| {
            Ok(conn
                .query_row(
                    "SELECT content_hash, playbook_revision FROM analyses
                     WHERE tenant = ?1 AND call_id = ?2",
                    params![tenant, call_id],
                    |r| Ok((r.get(0)?, r.get(1)?)),
                )
                .optional()?)
        })
    }

    fn list(&self, tenant: &str, q: &ListQuery) -> Result<Vec<AnalysisRow>, StoreError> {
        self.with(|conn| {
            let rows = conn
                .prepare(
                    "SELECT c.seq, c.call_id, c.rep_id, c.customer_id, c.call_date, c.duration_ms,
                     a.playbook_revision, a.coverage_percent, a.score, c.analysed_at
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
                        })
                    },
                )?
                .collect::<Result<_, _>>()?;
            Ok(rows)
        })
    }

    fn put_pending(
        &self,
        tenant: &str,
        call_id: &str,
        request: &[u8],
        now: DateTime<Utc>,
    ) -> Result<(), StoreError> {
        self.with(|conn| {
            conn.execute(
                "INSERT OR REPLACE INTO pending_calls (tenant, call_id, request, received_at)
                 VALUES (?1, ?2, ?3, ?4)",
                params![tenant, call_id, request, ts(now)],
            )?;
            Ok(())
        })
    }

    fn pending(&self) -> Result<Vec<(String, String, Vec<u8>)>, StoreError> {
        self.with(|conn| {
            let rows = conn
                .prepare("SELECT tenant, call_id, request FROM pending_calls ORDER BY received_at")?
                .query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))?
                .collect::<Result<_, _>>()?;
            Ok(rows)
        })
    }

    fn drop_pending(&self, tenant: &str, call_id: &str) -> Result<(), StoreError> {
        self.with(|conn| {
            conn.execute(
                "DELETE FROM pending_calls WHERE tenant = ?1 AND call_id = ?2",
                params![tenant, call_id],
            )?;
            Ok(())
        })
    }

    fn webhook_cursor(&self, endpoint: &str, tenant: &str) -> Result<i64, StoreError> {
        self.with(|conn| {
            Ok(conn
                .query_row(
                    "SELECT last_seq FROM webhook_cursors WHERE endpoint = ?1 AND tenant = ?2",
                    params![endpoint, tenant],
                    |r| r.get(0),
                )
                .optional()?
                .unwrap_or(0))
        })
    }

    fn set_webhook_cursor(&self, endpoint: &str, tenant: &str, seq: i64) -> Result<(), StoreError> {
        self.with(|conn| {
            conn.execute(
                "INSERT INTO webhook_cursors (endpoint, tenant, last_seq) VALUES (?1, ?2, ?3)
                 ON CONFLICT (endpoint, tenant) DO UPDATE SET last_seq = excluded.last_seq",
                params![endpoint, tenant, seq],
            )?;
            Ok(())
        })
    }

    fn webhook_failed(
        &self,
        endpoint: &str,
        tenant: &str,
        event: &Event,
        error: &str,
    ) -> Result<(), StoreError> {
        self.with(|conn| {
            conn.execute(
                "INSERT INTO webhook_failures (endpoint, tenant, event_seq, last_error, failed_at,
                 status) VALUES (?1, ?2, ?3, ?4, ?5, 'failed')",
                params![endpoint, tenant, event.seq, error, ts(Utc::now())],
            )?;
            Ok(())
        })
    }

    fn webhook_failures(&self, tenant: &str) -> Result<Vec<WebhookFailure>, StoreError> {
        self.with(|conn| {
            let rows = conn
                .prepare(
                    "SELECT f.id, f.endpoint, e.seq, e.id, e.kind, f.last_error, f.failed_at,
                     f.status FROM webhook_failures f JOIN events e ON e.seq = f.event_seq
                     WHERE f.tenant = ?1 AND f.status != 'delivered' ORDER BY f.id",
                )?
                .query_map(params![tenant], |r| {
                    Ok(WebhookFailure {
                        id: r.get(0)?,
                        endpoint: r.get(1)?,
                        event_seq: r.get(2)?,
                        event_id: r.get(3)?,
                        kind: r.get(4)?,
                        last_error: r.get(5)?,
                        failed_at: parse_ts(r.get(6)?)?,
                        status: r.get(7)?,
                    })
                })?
                .collect::<Result<_, _>>()?;
            Ok(rows)
        })
    }

    fn replay_webhooks(&self, tenant: &str, id: Option<i64>) -> Result<usize, StoreError> {
        self.with(|conn| {
            Ok(conn.execute(
                "UPDATE webhook_failures SET status = 'replay'
                 WHERE tenant = ?1 AND status = 'failed' AND (?2 IS NULL OR id = ?2)",
                params![tenant, id],
            )?)
        })
    }

    fn webhook_replays(
        &self,
        endpoint: &str,
        tenant: &str,
    ) -> Result<Vec<(i64, Event)>, StoreError> {
        self.with(|conn| {
            let rows = conn
                .prepare(
                    "SELECT f.id, e.seq, e.id, e.tenant, e.kind, e.payload, e.created_at
                     FROM webhook_failures f JOIN events e ON e.seq = f.event_seq
                     WHERE f.endpoint = ?1 AND f.tenant = ?2 AND f.status = 'replay'
                     ORDER BY f.id",
                )?
                .query_map(params![endpoint, tenant], |r| {
                    Ok((r.get(0)?, event_row(r, 1)?))
                })?
                .collect::<Result<_, _>>()?;
            Ok(rows)
        })
    }

    fn webhook_replayed(&self, id: i64, error: Option<&str>) -> Result<(), StoreError> {
        self.with(|conn| {
            match error {
                None => conn.execute(
                    "UPDATE webhook_failures SET status = 'delivered' WHERE id = ?1",
                    params![id],
                )?,
                Some(e) => conn.execute(
                    "UPDATE webhook_failures SET status = 'failed', last_error = ?2, failed_at = ?3
                     WHERE id = ?1",
                    params![id, e, ts(Utc::now())],
                )?,
            };
            Ok(())
        })
    }

    fn events_after(
        &self,
        tenant: &str,
        after_seq: i64,
        limit: usize,
    ) -> Result<Vec<Event>, StoreError> {
        self.with(|conn| {
            let events = conn
                .prepare(
                    "SELECT seq, id, tenant, kind, payload, created_at FROM events
                     WHERE tenant = ?1 AND seq > ?2 ORDER BY seq LIMIT ?3",
                )?
                .query_map(params![tenant, after_seq, limit as i64], |r| {
                    event_row(r, 0)
                })?
                .collect::<Result<_, _>>()?;
            Ok(events)
        })
    }
}

/// An event from columns seq, id, tenant, kind, payload, created_at starting at `at`.
fn event_row(r: &rusqlite::Row<'_>, at: usize) -> rusqlite::Result<Event> {
    Ok(Event {
        seq: r.get(at)?,
        id: r.get(at + 1)?,
        tenant: r.get(at + 2)?,
        kind: r.get(at + 3)?,
        payload: serde_json::from_str(&r.get::<_, String>(at + 4)?).map_err(|e| {
            rusqlite::Error::FromSqlConversionFailure(at + 4, rusqlite::types::Type::Text, e.into())
        })?,
        created_at: parse_ts(r.get(at + 5)?)?,
    })
}

fn end_suspension(
    tx: &Transaction<'_>,
    tenant: &str,
    s: &Suspension,
    how: &str,
    now: DateTime<Utc>,
) -> Result<Event, StoreError> {
    tx.execute(
        "UPDATE suspensions SET status = ?2, ended_at = ?3 WHERE id = ?1",
        params![s.id, how, ts(now)],
    )?;
    emit(
        tx,
        tenant,
        "rep.reinstated",
        json!({"rep_id": s.rep_id, "suspension_id": s.id, "how": how, "at": ts(now)}),
        now,
    )
}

/// A rep's profile; with a date range, over the calls in it.
fn profile(
    conn: &Connection,
    tenant: &str,
    rep_id: &str,
    range: Option<(&str, &str)>,
) -> Result<RepProfile, StoreError> {
    let (from, to) = range.unwrap_or(("0000-01-01", "9999-12-31"));
    let mut stmt = conn.prepare(
        "SELECT d.dimension, d.name, d.score, d.passed, c.call_id, c.call_date
         FROM dimension_scores d JOIN calls c USING (tenant, call_id)
         WHERE d.tenant = ?1 AND c.rep_id = ?2 AND c.call_date >= ?3 AND c.call_date < ?4
         ORDER BY c.call_date, c.seq, d.rowid",
    )?;
    let rows = stmt.query_map(params![tenant, rep_id, from, to], |r| {
        Ok((
            r.get::<_, String>(0)?,
            r.get::<_, String>(1)?,
            r.get::<_, Option<f64>>(2)?,
            r.get::<_, Option<bool>>(3)?,
            r.get::<_, String>(4)?,
            r.get::<_, String>(5)?,
        ))
    })?;
    let mut dimensions: Vec<DimensionHistory> = Vec::new();
    let mut calls = BTreeSet::new();
    for row in rows {
        let (id, name, score, passed, call_id, date) = row?;
        calls.insert(call_id.clone());
        let i = match dimensions.iter().position(|d| d.id == id) {
            Some(i) => i,
            None => {
                dimensions.push(DimensionHistory {
                    id,
                    name,
                    average: None,
                    trend: Vec::new(),
                });
                dimensions.len() - 1
            }
        };
        if let (Some(score), Some(passed)) = (score, passed) {
            dimensions[i].trend.push(TrendPoint {
                call_id,
                call_date: date.parse().unwrap_or_default(),
                score,
                passed,
            });
        }
    }
    for d in &mut dimensions {
        let n = d.trend.len();
        d.average = (n > 0).then(|| d.trend.iter().map(|p| p.score).sum::<f64>() / n as f64);
    }
    let open_assignments = conn
        .prepare(&format!(
            "SELECT {ASSIGNMENT_COLUMNS} FROM assignments
             WHERE tenant = ?1 AND rep_id = ?2 AND status = 'open' ORDER BY id"
        ))?
        .query_map(params![tenant, rep_id], assignment_row)?
        .collect::<Result<_, _>>()?;
    Ok(RepProfile {
        tenant: tenant.to_owned(),
        rep_id: rep_id.to_owned(),
        calls: calls.len(),
        dimensions,
        open_assignments,
        suspension: active_suspension(conn, tenant, rep_id)?,
    })
}
