//! The monthly process-health report (过程健康度报告): one self-contained HTML file with an SVG
//! radar per rep on the playbook's dimensions (drawn with plotters), team averages, key-question
//! coverage, competitor statistics, and who was assigned what.

use super::{REP_COLOUR, TEAM_COLOUR, escape, radar_svg};
use crate::store::{MonthData, RepProfile};
use std::fmt::Write;

fn score(v: Option<f64>) -> String {
    v.map_or_else(|| "–".to_owned(), |s| format!("{s:.0}"))
}

/// The dimensions (id, name) in the order the reps' profiles first list them.
fn dimensions(data: &MonthData) -> Vec<(String, String)> {
    let mut out: Vec<(String, String)> = Vec::new();
    for rep in &data.reps {
        for d in &rep.dimensions {
            if !out.iter().any(|(id, _)| *id == d.id) {
                out.push((d.id.clone(), d.name.clone()));
            }
        }
    }
    out
}

fn averages(rep: &RepProfile, dims: &[(String, String)]) -> Vec<Option<f64>> {
    dims.iter()
        .map(|(id, _)| {
            rep.dimensions
                .iter()
                .find(|d| d.id == *id)
                .and_then(|d| d.average)
        })
        .collect()
}

/// The whole report as one HTML document.
pub fn month_html(data: &MonthData) -> String {
    let dims = dimensions(data);
    let labels: Vec<String> = dims.iter().map(|(_, name)| name.clone()).collect();
    let per_rep: Vec<Vec<Option<f64>>> = data.reps.iter().map(|r| averages(r, &dims)).collect();
    let team: Vec<Option<f64>> = (0..dims.len())
        .map(|k| {
            let v: Vec<f64> = per_rep.iter().filter_map(|r| r[k]).collect();
            (!v.is_empty()).then(|| v.iter().sum::<f64>() / v.len() as f64)
        })
        .collect();

    let mut h = String::new();
    let title = format!("过程健康度报告 · process health · {}", data.month);
    let _ = write!(
        h,
        "<!DOCTYPE html>\n<html lang=\"zh\"><head><meta charset=\"utf-8\"><title>{}</title>\n<style>\
body{{font-family:sans-serif;margin:24px;color:#222}} table{{border-collapse:collapse;margin:8px 0 20px}}\
td,th{{border:1px solid #ccc;padding:4px 10px;text-align:left}} th{{background:#f4f4f4}}\
.reps{{display:flex;flex-wrap:wrap;gap:16px}} .rep{{border:1px solid #ddd;padding:8px;width:380px}}\
.fail{{color:#b00}} .legend span{{display:inline-block;width:12px;height:12px;margin:0 4px 0 12px}}\
</style></head><body>\n<h1>{}</h1>\n<p>Tenant <b>{}</b>: {} calls, {} reps; mean key-question coverage {}.</p>\n",
        escape(&title),
        escape(&title),
        escape(&data.tenant),
        data.calls,
        data.reps.len(),
        data.coverage_percent
            .map_or("–".into(), |c| format!("{c:.0} %"))
    );

    h.push_str("<h2>Team averages</h2>\n<table><tr><th>dimension</th><th>team</th>");
    for rep in &data.reps {
        let _ = write!(h, "<th>{}</th>", escape(&rep.rep_id));
    }
    h.push_str("</tr>\n");
    for (k, (_, name)) in dims.iter().enumerate() {
        let _ = write!(
            h,
            "<tr><td>{}</td><td>{}</td>",
            escape(name),
            score(team[k])
        );
        for r in &per_rep {
            let _ = write!(h, "<td>{}</td>", score(r[k]));
        }
        h.push_str("</tr>\n");
    }
    h.push_str("</table>\n");

    h.push_str(&format!(
        "<h2>Reps</h2>\n<p class=\"legend\"><span style=\"background:rgb{:?}\"></span>rep average\
<span style=\"background:rgb{:?}\"></span>team average</p>\n<div class=\"reps\">\n",
        (REP_COLOUR.0, REP_COLOUR.1, REP_COLOUR.2),
        (TEAM_COLOUR.0, TEAM_COLOUR.1, TEAM_COLOUR.2)
    ));
    for (rep, values) in data.reps.iter().zip(&per_rep) {
        let _ = write!(
            h,
            "<div class=\"rep\"><h3>{}</h3><p>{} calls{}</p>\n{}\n",
            escape(&rep.rep_id),
            rep.calls,
            rep.suspension.as_ref().map_or(String::new(), |s| format!(
                " · <b class=\"fail\">suspended until {}</b>",
                s.ends_at.format("%Y-%m-%d %H:%M UTC")
            )),
            radar_svg(&labels, values, &team)
        );
        if !rep.open_assignments.is_empty() {
            h.push_str("<p>Open coaching:</p><ul>");
            for a in &rep.open_assignments {
                let _ = write!(h, "<li>{}</li>", escape(&a.pack));
            }
            h.push_str("</ul>");
        }
        h.push_str("</div>\n");
    }
    h.push_str("</div>\n");

    h.push_str("<h2>Competitors</h2>\n<table><tr><th>competitor</th><th>mentions</th><th>answered by the agent</th></tr>\n");
    for c in &data.competitors {
        let _ = writeln!(
            h,
            "<tr><td>{}</td><td>{}</td><td>{} ({:.0} %)</td></tr>",
            escape(&c.competitor),
            c.mentions,
            c.answered,
            100.0 * c.answered as f64 / c.mentions.max(1) as f64
        );
    }
    h.push_str("</table>\n<h2>Coaching assigned this month</h2>\n<table><tr><th>rep</th><th>pack</th><th>why</th><th>calls</th><th>status</th></tr>\n");
    for a in &data.assignments {
        let _ = writeln!(
            h,
            "<tr><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>",
            escape(&a.rep_id),
            escape(&a.pack),
            escape(&a.reason),
            escape(&a.evidence_calls.join(", ")),
            escape(&a.status)
        );
    }
    h.push_str("</table>\n<h2>Suspensions (能力熔断)</h2>\n<table><tr><th>rep</th><th>why</th><th>calls</th><th>until</th><th>status</th></tr>\n");
    for s in &data.suspensions {
        let _ = writeln!(
            h,
            "<tr><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>",
            escape(&s.rep_id),
            escape(&s.reason),
            escape(&s.calls.join(", ")),
            s.ends_at.format("%Y-%m-%d %H:%M UTC"),
            escape(&s.status)
        );
    }
    h.push_str("</table>\n</body></html>\n");
    h
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_radar_has_an_axis_label_per_dimension() {
        let labels: Vec<String> = [
            "需求挖掘深度 / needs discovery",
            "方案匹配精度",
            "风险预判",
            "竞品应对",
            "异议处理",
            "客户情绪管理",
        ]
        .iter()
        .map(|s| s.to_string())
        .collect();
        let svg = radar_svg(
            &labels,
            &[
                Some(80.0),
                Some(60.0),
                None,
                Some(100.0),
                Some(40.0),
                Some(70.0),
            ],
            &[Some(70.0); 6],
        );
        assert!(svg.starts_with("<svg"), "{svg}");
        for label in ["需求挖掘深度", "方案匹配精度", "客户情绪管理"] {
            assert!(svg.contains(label), "{label} in {svg}");
        }
        assert!(svg.contains("<polygon"), "the rep's area is filled");
    }
}
