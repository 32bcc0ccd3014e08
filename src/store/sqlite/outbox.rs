//! The events outbox: appended in the transaction that causes them, read by cursor.

use super::ts;
use crate::analysis::Analysis;
use crate::store::{Event, EventKind, StoreError};
use chrono::{DateTime, Utc};
use rusqlite::{Connection, Transaction, params};
use serde_json::{Value, json};

/// Appends an event to the outbox; its id is random and stays with it for every delivery.
pub(super) fn emit(
    tx: &Transaction<'_>,
    tenant: &str,
    kind: EventKind,
    payload: Value,
    now: DateTime<Utc>,
) -> Result<Event, StoreError> {
    let id: String = tx.query_row("SELECT 'evt_' || lower(hex(randomblob(16)))", [], |r| {
        r.get(0)
    })?;
    // The tenant's own sequence: no gaps from other tenants' events.
    let seq: i64 = tx.query_row(
        "INSERT INTO events (id, tenant, kind, payload, created_at, tseq)
         VALUES (?1, ?2, ?3, ?4, ?5,
                 (SELECT COALESCE(MAX(tseq), 0) + 1 FROM events WHERE tenant = ?2))
         RETURNING tseq",
        params![id, tenant, kind.as_str(), payload.to_string(), ts(now)],
        |r| r.get(0),
    )?;
    Ok(Event {
        seq,
        id,
        tenant: tenant.to_owned(),
        kind,
        created_at: now,
        payload,
    })
}

/// The events an analysis itself raises.
pub(super) fn analysis_events(
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
        EventKind::AnalysisCompleted,
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
            EventKind::CompetitorMentioned,
            with_call(serde_json::to_value(m)?),
            now,
        )?);
    }
    for alert in &a.emotion.alerts {
        out.push(emit(
            tx,
            tenant,
            EventKind::EmotionAlert,
            with_call(serde_json::to_value(alert)?),
            now,
        )?);
    }
    Ok(out)
}

pub(super) fn events_after(
    conn: &Connection,
    tenant: &str,
    after_seq: i64,
    limit: usize,
) -> Result<Vec<Event>, StoreError> {
    let events = conn
        .prepare(
            "SELECT tseq, id, tenant, kind, payload, created_at FROM events
             WHERE tenant = ?1 AND tseq > ?2 ORDER BY tseq LIMIT ?3",
        )?
        .query_map(params![tenant, after_seq, limit as i64], |r| {
            event_row(r, 0)
        })?
        .collect::<Result<_, _>>()?;
    Ok(events)
}

/// An event from columns tseq, id, tenant, kind, payload, created_at starting at `at`.
pub(super) fn event_row(r: &rusqlite::Row<'_>, at: usize) -> rusqlite::Result<Event> {
    Ok(Event {
        seq: r.get(at)?,
        id: r.get(at + 1)?,
        tenant: r.get(at + 2)?,
        kind: {
            let name: String = r.get(at + 3)?;
            EventKind::parse(&name).ok_or_else(|| {
                super::conversion_error(at + 3, StoreError::UnknownEventKind(name))
            })?
        },
        payload: serde_json::from_str(&r.get::<_, String>(at + 4)?)
            .map_err(|e| super::conversion_error(at + 4, e))?,
        created_at: super::parse_ts(r.get(at + 5)?)?,
    })
}
