//! The schema, one migration per version (SQLite's `user_version`).

use super::super::StoreError;
use rusqlite::Connection;

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
    r#"
-- Who holds a pending call: the request that accepted it (or the start-up that resumes it).
-- Only the holder removes it, so a second request with the same call id cannot lose the first.
ALTER TABLE pending_calls ADD COLUMN owner TEXT NOT NULL DEFAULT '';
"#,
    r#"
-- Events are numbered per tenant (tseq), so that no tenant sees gaps left by another's events
-- or can count them. The global rowid (seq) stays the internal key.
ALTER TABLE events ADD COLUMN tseq INTEGER;
UPDATE events SET tseq = (SELECT COUNT(*) FROM events e WHERE e.tenant = events.tenant
                          AND e.seq <= events.seq);
CREATE UNIQUE INDEX events_by_tenant_seq ON events (tenant, tseq);
-- Webhook cursors held global numbers: now they hold the tenant's.
UPDATE webhook_cursors SET last_seq = (SELECT COALESCE(MAX(e.tseq), 0) FROM events e
                                       WHERE e.tenant = webhook_cursors.tenant
                                       AND e.seq <= webhook_cursors.last_seq);
"#,
    r#"
-- Reps' voiceprints (256 little-endian f32), to tell the rep on their mono calls: enrolled from
-- a file, or learned from their stereo calls.
CREATE TABLE rep_voiceprints (
    tenant TEXT NOT NULL,
    rep_id TEXT NOT NULL,
    voiceprint BLOB NOT NULL,
    speech_ms INTEGER NOT NULL,
    source TEXT NOT NULL,
    updated_at TEXT NOT NULL,
    PRIMARY KEY (tenant, rep_id)
);
"#,
];

/// Brings the database to the newest schema, one transaction per version.
pub(super) fn migrate(conn: &mut Connection) -> Result<(), StoreError> {
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
    Ok(())
}
