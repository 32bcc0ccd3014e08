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

pub(super) fn rep_profile(
    conn: &Connection,
    tenant: &str,
    rep_id: &str,
) -> Result<RepProfile, StoreError> {
    let known: bool = conn.query_row(
        "SELECT EXISTS (SELECT 1 FROM reps WHERE tenant = ?1 AND rep_id = ?2)",
        params![tenant, rep_id],
        |r| r.get(0),
    )?;
    if !known {
        return Err(StoreError::NotFound(format!("rep {rep_id}")));
    }
    profile(conn, tenant, rep_id, None)
}

pub(super) fn month(
    conn: &Connection,
    tenant: &str,
    month: NaiveDate,
) -> Result<MonthData, StoreError> {
    let next = month
        .checked_add_months(chrono::Months::new(1))
        .unwrap_or(month);
    let (from, to) = (month.to_string(), next.to_string());
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
        .prepare(&format!(
            "SELECT {SUSPENSION_COLUMNS} FROM suspensions
             WHERE tenant = ?1 AND started_at >= ?2 AND started_at < ?3 ORDER BY id"
        ))?
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
