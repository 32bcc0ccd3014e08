//! Reads for reports: a rep's profile (radar and trend), and the month.

use super::coaching::{
    ASSIGNMENT_COLUMNS, SUSPENSION_COLUMNS, active_suspension, assignment_row, suspension_row,
};
use crate::store::{
    CompetitorStat, DimensionHistory, MonthData, RepProfile, StoreError, TrendPoint,
};
use chrono::NaiveDate;
use rusqlite::{Connection, params};
use std::collections::BTreeSet;

/// The playbooks of a scope's calls, the most recent first: (name, revisions).
fn playbooks(
    conn: &Connection,
    tenant: &str,
    rep_id: Option<&str>,
    (from, to): (&str, &str),
) -> Result<Vec<(String, Vec<String>)>, StoreError> {
    let rows: Vec<(String, String)> = conn
        .prepare(
            "SELECT a.playbook, a.playbook_revision FROM analyses a JOIN calls c
             USING (tenant, call_id) WHERE a.tenant = ?1 AND (?2 IS NULL OR c.rep_id = ?2)
             AND c.call_date >= ?3 AND c.call_date < ?4
             GROUP BY a.playbook, a.playbook_revision ORDER BY MAX(c.call_date) DESC, MAX(c.seq) DESC",
        )?
        .query_map(params![tenant, rep_id, from, to], |r| Ok((r.get(0)?, r.get(1)?)))?
        .collect::<Result<_, _>>()?;
    let mut out: Vec<(String, Vec<String>)> = Vec::new();
    for (name, revision) in rows {
        match out.iter_mut().find(|(n, _)| *n == name) {
            Some((_, revisions)) => revisions.push(revision),
            None => out.push((name, vec![revision])),
        }
    }
    Ok(out)
}

/// The playbook a report is over, its revisions, and the other playbooks of the scope.
type Chosen = (Option<String>, Vec<String>, Vec<String>);

fn choose(all: Vec<(String, Vec<String>)>, wanted: Option<&str>) -> Result<Chosen, StoreError> {
    let names: Vec<String> = all.iter().map(|(n, _)| n.clone()).collect();
    let pick = match wanted {
        Some(w) => Some(all.iter().position(|(n, _)| n == w).ok_or_else(|| {
            StoreError::NotFound(format!(
                "playbook {w:?} in these calls (they have: {})",
                names.join("; ")
            ))
        })?),
        None => (!all.is_empty()).then_some(0),
    };
    Ok(match pick {
        Some(i) => {
            let (name, mut revisions) = all[i].clone();
            revisions.sort();
            let others = names.into_iter().filter(|n| *n != name).collect();
            (Some(name), revisions, others)
        }
        None => (None, Vec::new(), Vec::new()),
    })
}

pub(super) fn rep_profile(
    conn: &Connection,
    tenant: &str,
    rep_id: &str,
    playbook: Option<&str>,
) -> Result<RepProfile, StoreError> {
    let known: bool = conn.query_row(
        "SELECT EXISTS (SELECT 1 FROM reps WHERE tenant = ?1 AND rep_id = ?2)",
        params![tenant, rep_id],
        |r| r.get(0),
    )?;
    if !known {
        return Err(StoreError::NotFound(format!("rep {rep_id}")));
    }
    let all = playbooks(conn, tenant, Some(rep_id), ALL_TIME)?;
    profile(conn, tenant, rep_id, ALL_TIME, choose(all, playbook)?)
}

/// Every call date.
const ALL_TIME: (&str, &str) = ("0000-01-01", "9999-12-31");

pub(super) fn month(
    conn: &Connection,
    tenant: &str,
    month: NaiveDate,
    playbook: Option<&str>,
) -> Result<MonthData, StoreError> {
    let next = month
        .checked_add_months(chrono::Months::new(1))
        .unwrap_or(month);
    let (from, to) = (month.to_string(), next.to_string());
    let chosen = choose(playbooks(conn, tenant, None, (&from, &to))?, playbook)?;
    // Every count below is over the chosen playbook's calls of the month.
    let name = chosen.0.clone();
    let in_scope = "FROM calls c JOIN analyses a USING (tenant, call_id)
         WHERE c.tenant = ?1 AND c.call_date >= ?2 AND c.call_date < ?3 AND a.playbook IS ?4";
    let calls: i64 = conn.query_row(
        &format!("SELECT COUNT(*) {in_scope}"),
        params![tenant, from, to, name],
        |r| r.get(0),
    )?;
    let reps: Vec<String> = conn
        .prepare(&format!(
            "SELECT DISTINCT c.rep_id {in_scope} AND c.rep_id IS NOT NULL ORDER BY c.rep_id"
        ))?
        .query_map(params![tenant, from, to, name], |r| r.get(0))?
        .collect::<Result<_, _>>()?;
    let reps = reps
        .iter()
        .map(|rep| profile(conn, tenant, rep, (&from, &to), chosen.clone()))
        .collect::<Result<Vec<_>, _>>()?;
    let coverage_percent: Option<f64> = conn.query_row(
        &format!("SELECT AVG(a.coverage_percent) {in_scope}"),
        params![tenant, from, to, name],
        |r| r.get(0),
    )?;
    let competitors = conn
        .prepare(
            "SELECT m.competitor, COUNT(*),
             SUM(m.agent_response IN ('comparison', 'value'))
             FROM competitor_mentions m JOIN calls c USING (tenant, call_id)
             JOIN analyses a USING (tenant, call_id)
             WHERE m.tenant = ?1 AND c.call_date >= ?2 AND c.call_date < ?3 AND a.playbook IS ?4
             GROUP BY m.competitor ORDER BY COUNT(*) DESC, m.competitor",
        )?
        .query_map(params![tenant, from, to, name], |r| {
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
        .prepare(&format!(
            "SELECT {SUSPENSION_COLUMNS} FROM suspensions
             WHERE tenant = ?1 AND started_at >= ?2 AND started_at < ?3 ORDER BY id"
        ))?
        .query_map(params![tenant, start, end], suspension_row)?
        .collect::<Result<_, _>>()?;
    let (playbook, revisions, other_playbooks) = chosen;
    Ok(MonthData {
        tenant: tenant.to_owned(),
        month: month.format("%Y-%m").to_string(),
        playbook,
        revisions,
        other_playbooks,
        calls: calls as usize,
        reps,
        coverage_percent,
        competitors,
        assignments,
        suspensions,
    })
}

/// A rep's profile over the chosen playbook's calls in a date range.
fn profile(
    conn: &Connection,
    tenant: &str,
    rep_id: &str,
    (from, to): (&str, &str),
    (playbook, revisions, other_playbooks): Chosen,
) -> Result<RepProfile, StoreError> {
    let mut stmt = conn.prepare(
        "SELECT d.dimension, d.name, d.score, d.passed, c.call_id, c.call_date
         FROM dimension_scores d JOIN calls c USING (tenant, call_id)
         JOIN analyses a USING (tenant, call_id)
         WHERE d.tenant = ?1 AND c.rep_id = ?2 AND c.call_date >= ?3 AND c.call_date < ?4
         AND a.playbook IS ?5
         ORDER BY c.call_date, c.seq, d.rowid",
    )?;
    let rows = stmt.query_map(params![tenant, rep_id, from, to, playbook], |r| {
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
        playbook,
        revisions,
        other_playbooks,
        calls: calls.len(),
        dimensions,
        open_assignments,
        suspension: active_suspension(conn, tenant, rep_id)?,
    })
}
