//! Webhook delivery state: each endpoint's cursor in each tenant's events, and the deliveries
//! that failed every attempt (to be replayed on demand).

use super::outbox::event_row;
use super::{parse_ts, ts};
use crate::store::{Event, StoreError, WebhookFailure};
use chrono::Utc;
use rusqlite::{Connection, OptionalExtension, params};

pub(super) fn cursor(conn: &Connection, endpoint: &str, tenant: &str) -> Result<i64, StoreError> {
    Ok(conn
        .query_row(
            "SELECT last_seq FROM webhook_cursors WHERE endpoint = ?1 AND tenant = ?2",
            params![endpoint, tenant],
            |r| r.get(0),
        )
        .optional()?
        .unwrap_or(0))
}

pub(super) fn set_cursor(
    conn: &Connection,
    endpoint: &str,
    tenant: &str,
    seq: i64,
) -> Result<(), StoreError> {
    conn.execute(
        "INSERT INTO webhook_cursors (endpoint, tenant, last_seq) VALUES (?1, ?2, ?3)
         ON CONFLICT (endpoint, tenant) DO UPDATE SET last_seq = excluded.last_seq",
        params![endpoint, tenant, seq],
    )?;
    Ok(())
}

pub(super) fn failed(
    conn: &Connection,
    endpoint: &str,
    tenant: &str,
    event: &Event,
    error: &str,
) -> Result<(), StoreError> {
    conn.execute(
        "INSERT INTO webhook_failures (endpoint, tenant, event_seq, last_error, failed_at,
         status) VALUES (?1, ?2, (SELECT seq FROM events WHERE tenant = ?2 AND tseq = ?3), ?4,
         ?5, 'failed')",
        params![endpoint, tenant, event.seq, error, ts(Utc::now())],
    )?;
    Ok(())
}

pub(super) fn failures(conn: &Connection, tenant: &str) -> Result<Vec<WebhookFailure>, StoreError> {
    let rows = conn
        .prepare(
            "SELECT f.id, f.endpoint, e.tseq, e.id, e.kind, f.last_error, f.failed_at,
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
}

pub(super) fn replay(
    conn: &Connection,
    tenant: &str,
    id: Option<i64>,
) -> Result<usize, StoreError> {
    Ok(conn.execute(
        "UPDATE webhook_failures SET status = 'replay'
         WHERE tenant = ?1 AND status = 'failed' AND (?2 IS NULL OR id = ?2)",
        params![tenant, id],
    )?)
}

pub(super) fn replays(
    conn: &Connection,
    endpoint: &str,
    tenant: &str,
) -> Result<Vec<(i64, Event)>, StoreError> {
    let rows = conn
        .prepare(
            "SELECT f.id, e.tseq, e.id, e.tenant, e.kind, e.payload, e.created_at
             FROM webhook_failures f JOIN events e ON e.seq = f.event_seq
             WHERE f.endpoint = ?1 AND f.tenant = ?2 AND f.status = 'replay'
             ORDER BY f.id",
        )?
        .query_map(params![endpoint, tenant], |r| {
            Ok((r.get(0)?, event_row(r, 1)?))
        })?
        .collect::<Result<_, _>>()?;
    Ok(rows)
}

pub(super) fn replayed(conn: &Connection, id: i64, error: Option<&str>) -> Result<(), StoreError> {
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
}
