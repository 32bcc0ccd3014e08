//! Requests accepted but not yet analysed: kept until their analysis is recorded.

use super::ts;
use crate::store::{PendingCall, StoreError};
use chrono::{DateTime, Utc};
use rusqlite::{Connection, params};

/// Keeps a request for `owner`; false when another owner holds the call already.
pub(super) fn put(
    conn: &Connection,
    tenant: &str,
    call_id: &str,
    request: &[u8],
    owner: &str,
    now: DateTime<Utc>,
) -> Result<bool, StoreError> {
    let added = conn.execute(
        "INSERT INTO pending_calls (tenant, call_id, request, received_at, owner)
         VALUES (?1, ?2, ?3, ?4, ?5) ON CONFLICT (tenant, call_id) DO NOTHING",
        params![tenant, call_id, request, ts(now), owner],
    )?;
    Ok(added == 1)
}

pub(super) fn all(conn: &Connection) -> Result<Vec<PendingCall>, StoreError> {
    let rows = conn
        .prepare("SELECT tenant, call_id, request, owner FROM pending_calls ORDER BY received_at")?
        .query_map([], |r| {
            Ok(PendingCall {
                tenant: r.get(0)?,
                call_id: r.get(1)?,
                request: r.get(2)?,
                owner: r.get(3)?,
            })
        })?
        .collect::<Result<_, _>>()?;
    Ok(rows)
}

pub(super) fn remove(
    conn: &Connection,
    tenant: &str,
    call_id: &str,
    owner: &str,
) -> Result<(), StoreError> {
    conn.execute(
        "DELETE FROM pending_calls WHERE tenant = ?1 AND call_id = ?2 AND owner = ?3",
        params![tenant, call_id, owner],
    )?;
    Ok(())
}
