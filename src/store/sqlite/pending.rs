//! Requests accepted but not yet analysed: kept until their analysis is recorded.

use super::ts;
use crate::store::{PendingCall, StoreError};
use chrono::{DateTime, Utc};
use rusqlite::{Connection, params};

pub(super) fn put(
    conn: &Connection,
    tenant: &str,
    call_id: &str,
    request: &[u8],
    now: DateTime<Utc>,
) -> Result<(), StoreError> {
    conn.execute(
        "INSERT OR REPLACE INTO pending_calls (tenant, call_id, request, received_at)
         VALUES (?1, ?2, ?3, ?4)",
        params![tenant, call_id, request, ts(now)],
    )?;
    Ok(())
}

pub(super) fn all(conn: &Connection) -> Result<Vec<PendingCall>, StoreError> {
    let rows = conn
        .prepare("SELECT tenant, call_id, request FROM pending_calls ORDER BY received_at")?
        .query_map([], |r| {
            Ok(PendingCall {
                tenant: r.get(0)?,
                call_id: r.get(1)?,
                request: r.get(2)?,
            })
        })?
        .collect::<Result<_, _>>()?;
    Ok(rows)
}

pub(super) fn remove(conn: &Connection, tenant: &str, call_id: &str) -> Result<(), StoreError> {
    conn.execute(
        "DELETE FROM pending_calls WHERE tenant = ?1 AND call_id = ?2",
        params![tenant, call_id],
    )?;
    Ok(())
}
