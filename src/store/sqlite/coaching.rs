//! Coaching state: assignments and suspensions. `after_call` reads what coaching needs to know
//! of a rep, asks `coaching::plan` what to do, and persists the plan with its events.

use super::outbox::emit;
use super::{json_list, parse_ts, ts};
use crate::analysis::playbook::Playbook;
use crate::coaching::{self, CallOutcome, RepState};
use crate::store::{Assignment, Event, EventKind, StoreError, Suspension};
use chrono::{DateTime, Utc};
use rusqlite::{Connection, OptionalExtension, Transaction, params};
use serde_json::json;
use std::collections::{BTreeMap, BTreeSet};

pub(super) fn active_suspension(
    conn: &Connection,
    tenant: &str,
    rep_id: &str,
) -> Result<Option<Suspension>, StoreError> {
    Ok(conn
        .query_row(
            &format!(
                "SELECT {SUSPENSION_COLUMNS} FROM suspensions
                 WHERE tenant = ?1 AND rep_id = ?2 AND status = 'active'"
            ),
            params![tenant, rep_id],
            suspension_row,
        )
        .optional()?)
}

pub(super) const SUSPENSION_COLUMNS: &str =
    "id, rep_id, reason, calls, started_at, ends_at, status";

pub(super) fn suspension_row(r: &rusqlite::Row<'_>) -> rusqlite::Result<Suspension> {
    suspension_from(r, 0)
}

/// A suspension from the `SUSPENSION_COLUMNS` starting at column `at`.
fn suspension_from(r: &rusqlite::Row<'_>, at: usize) -> rusqlite::Result<Suspension> {
    Ok(Suspension {
        id: r.get(at)?,
        rep_id: r.get(at + 1)?,
        reason: r.get(at + 2)?,
        calls: json_list(r.get(at + 3)?)?,
        started_at: parse_ts(r.get(at + 4)?)?,
        ends_at: parse_ts(r.get(at + 5)?)?,
        status: r.get(at + 6)?,
    })
}

pub(super) const ASSIGNMENT_COLUMNS: &str =
    "id, rep_id, dimension, pack, reason, evidence_calls, status, created_at";

pub(super) fn assignment_row(r: &rusqlite::Row<'_>) -> rusqlite::Result<Assignment> {
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

/// What coaching needs to know of a rep, read inside the recording transaction.
fn rep_state(tx: &Transaction<'_>, tenant: &str, rep: &str) -> Result<RepState, StoreError> {
    let open_assignments: BTreeSet<String> = tx
        .prepare(
            "SELECT dimension FROM assignments
             WHERE tenant = ?1 AND rep_id = ?2 AND status = 'open'",
        )?
        .query_map(params![tenant, rep], |r| r.get(0))?
        .collect::<Result<_, _>>()?;
    let last_run: Option<String> = tx
        .query_row(
            "SELECT calls FROM suspensions WHERE tenant = ?1 AND rep_id = ?2
             ORDER BY id DESC LIMIT 1",
            params![tenant, rep],
            |r| r.get(0),
        )
        .optional()?;
    Ok(RepState {
        history: history(tx, tenant, rep)?,
        open_assignments,
        suspended: active_suspension(tx, tenant, rep)?.is_some(),
        last_suspension_call: last_run
            .map(json_list)
            .transpose()?
            .and_then(|calls| calls.last().cloned()),
    })
}

/// Runs coaching for the rep of a call just written, and persists its plan; the events go to
/// `events`.
pub(super) fn after_call(
    tx: &Transaction<'_>,
    tenant: &str,
    rep: &str,
    playbook: &Playbook,
    now: DateTime<Utc>,
    events: &mut Vec<Event>,
) -> Result<(Vec<Assignment>, Option<Suspension>), StoreError> {
    tx.execute(
        "INSERT OR IGNORE INTO reps (tenant, rep_id, created_at) VALUES (?1, ?2, ?3)",
        params![tenant, rep, ts(now)],
    )?;
    let plan = coaching::plan(playbook, &rep_state(tx, tenant, rep)?, now);
    let mut assignments = Vec::new();
    for due in plan.assignments {
        tx.execute(
            "INSERT INTO assignments (tenant, rep_id, dimension, pack, reason, evidence_calls,
             status, created_at) VALUES (?1, ?2, ?3, ?4, ?5, ?6, 'open', ?7)",
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
            rep_id: rep.to_owned(),
            dimension: due.dimension,
            pack: due.pack,
            reason: due.reason,
            evidence_calls: due.evidence_calls,
            status: "open".into(),
            created_at: now,
        };
        let payload = serde_json::to_value(&assignment)?;
        events.push(emit(tx, tenant, EventKind::CoachingAssigned, payload, now)?);
        assignments.push(assignment);
    }
    let suspension = match plan.suspension {
        None => None,
        Some(s) => {
            tx.execute(
                "INSERT INTO suspensions (tenant, rep_id, reason, calls, started_at, ends_at,
                 status) VALUES (?1, ?2, ?3, ?4, ?5, ?6, 'active')",
                params![
                    tenant,
                    rep,
                    s.reason,
                    serde_json::to_string(&s.calls)?,
                    ts(now),
                    ts(s.ends_at)
                ],
            )?;
            let s = Suspension {
                id: tx.last_insert_rowid(),
                rep_id: rep.to_owned(),
                reason: s.reason,
                calls: s.calls,
                started_at: now,
                ends_at: s.ends_at,
                status: "active".into(),
            };
            let payload = serde_json::to_value(&s)?;
            events.push(emit(tx, tenant, EventKind::RepSuspended, payload, now)?);
            Some(s)
        }
    };
    Ok((assignments, suspension))
}

pub(super) fn complete_training(
    conn: &mut Connection,
    tenant: &str,
    rep_id: &str,
    now: DateTime<Utc>,
) -> Result<Option<Event>, StoreError> {
    let tx = conn.transaction()?;
    let Some(s) = active_suspension(&tx, tenant, rep_id)? else {
        return Ok(None);
    };
    let event = end_suspension(&tx, tenant, &s, "completed", now)?;
    tx.commit()?;
    Ok(Some(event))
}

pub(super) fn expire_suspensions(
    conn: &mut Connection,
    now: DateTime<Utc>,
) -> Result<Vec<Event>, StoreError> {
    let tx = conn.transaction()?;
    let due: Vec<(String, Suspension)> = tx
        .prepare(
            "SELECT tenant, id, rep_id, reason, calls, started_at, ends_at, status
             FROM suspensions WHERE status = 'active' AND ends_at <= ?1",
        )?
        .query_map(params![ts(now)], |r| {
            Ok((r.get(0)?, suspension_from(r, 1)?))
        })?
        .collect::<Result<_, _>>()?;
    let mut events = Vec::new();
    for (tenant, s) in due {
        events.push(end_suspension(&tx, &tenant, &s, "expired", now)?);
    }
    tx.commit()?;
    Ok(events)
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
        EventKind::RepReinstated,
        json!({"rep_id": s.rep_id, "suspension_id": s.id, "how": how, "at": ts(now)}),
        now,
    )
}
