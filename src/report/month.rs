//! The monthly process-health report (过程健康度报告): one self-contained HTML file with an SVG
//! radar per rep on the playbook's dimensions (drawn with plotters), team averages, key-question
//! coverage, competitor statistics, and who was assigned what.

use super::{Lang, REP_COLOUR, TEAM_COLOUR, escape, radar_svg};
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

/// A table, or "none" when it has no rows.
fn table(h: &mut String, lang: Lang, headers: &[&str], rows: Vec<Vec<String>>) {
    if rows.is_empty() {
        let _ = writeln!(h, "<p>{}</p>", lang.pick("无。", "None."));
        return;
    }
    h.push_str("<table><tr>");
    for c in headers {
        let _ = write!(h, "<th>{}</th>", escape(c));
    }
    h.push_str("</tr>\n");
    for row in rows {
        h.push_str("<tr>");
        for cell in row {
            let _ = write!(h, "<td>{cell}</td>");
        }
        h.push_str("</tr>\n");
    }
    h.push_str("</table>\n");
}

/// The whole report as one HTML document, in `lang`.
pub fn month_html(data: &MonthData, lang: Lang) -> String {
    let t = |zh: &'static str, en: &'static str| lang.pick(zh, en);
    let dims = dimensions(data);
    let labels: Vec<String> = dims
        .iter()
        .map(|(_, name)| lang.name(name).to_owned())
        .collect();
    let per_rep: Vec<Vec<Option<f64>>> = data.reps.iter().map(|r| averages(r, &dims)).collect();
    let team: Vec<Option<f64>> = (0..dims.len())
        .map(|k| {
            let v: Vec<f64> = per_rep.iter().filter_map(|r| r[k]).collect();
            (!v.is_empty()).then(|| v.iter().sum::<f64>() / v.len() as f64)
        })
        .collect();

    let mut h = String::new();
    let title = format!(
        "{} · {}",
        t("过程健康度报告", "Process health report"),
        data.month
    );
    let coverage = data
        .coverage_percent
        .map_or("–".into(), |c| format!("{c:.0} %"));
    let playbook = data
        .playbook
        .as_deref()
        .map_or_else(|| t("无", "none").to_owned(), |p| lang.name(p).to_owned());
    let intro = match lang {
        Lang::Zh => format!(
            "租户 <b>{}</b>：话术「{}」（版本 {}），{} 通通话，{} 位销售代表；关键问题平均覆盖率 {coverage}。",
            escape(&data.tenant),
            escape(&playbook),
            escape(&data.revisions.join("、")),
            data.calls,
            data.reps.len()
        ),
        Lang::En => format!(
            "Tenant <b>{}</b>, playbook “{}” (revisions {}): {}, {}; mean key-question coverage {coverage}.",
            escape(&data.tenant),
            escape(&playbook),
            escape(&data.revisions.join(", ")),
            lang.count(data.calls, "call", "calls"),
            lang.count(data.reps.len(), "rep", "reps")
        ),
    };
    let _ = write!(
        h,
        "<!DOCTYPE html>\n<html lang=\"{}\"><head><meta charset=\"utf-8\"><title>{}</title>\n<style>\
body{{font-family:sans-serif;margin:24px;color:#222}} table{{border-collapse:collapse;margin:8px 0 20px}}\
td,th{{border:1px solid #ccc;padding:4px 10px;text-align:left}} th{{background:#f4f4f4}}\
.reps{{display:flex;flex-wrap:wrap;gap:16px}} .rep{{border:1px solid #ddd;padding:8px;width:380px}}\
.fail{{color:#b00}} .legend span{{display:inline-block;width:12px;height:12px;margin:0 4px 0 12px}}\
</style></head><body>\n<h1>{}</h1>\n<p>{intro}</p>\n",
        lang.code(),
        escape(&title),
        escape(&title),
    );
    if !data.other_playbooks.is_empty() {
        let _ = writeln!(
            h,
            "<p>{}: {}</p>",
            t(
                "本月其他话术的通话不计入本报告",
                "Calls under other playbooks are not counted here"
            ),
            escape(&data.other_playbooks.join("; "))
        );
    }

    let _ = writeln!(h, "<h2>{}</h2>", t("团队平均", "Team averages"));
    let mut headers = vec![t("维度", "dimension"), t("团队", "team")];
    headers.extend(data.reps.iter().map(|r| r.rep_id.as_str()));
    let rows = dims
        .iter()
        .enumerate()
        .map(|(k, (_, name))| {
            let mut row = vec![escape(lang.name(name)), score(team[k])];
            row.extend(per_rep.iter().map(|r| score(r[k])));
            row
        })
        .collect();
    table(&mut h, lang, &headers, rows);

    let _ = writeln!(h, "<h2>{}</h2>", t("销售代表", "Reps"));
    if data.reps.is_empty() {
        let _ = writeln!(
            h,
            "<p>{}</p>",
            t(
                "无：本月的通话没有销售代表编号。",
                "None: the month's calls carry no rep id."
            )
        );
    } else {
        let _ = writeln!(
            h,
            "<p class=\"legend\"><span style=\"background:rgb{:?}\"></span>{}\
<span style=\"background:rgb{:?}\"></span>{}</p>",
            (REP_COLOUR.0, REP_COLOUR.1, REP_COLOUR.2),
            t("该销售代表平均", "rep average"),
            (TEAM_COLOUR.0, TEAM_COLOUR.1, TEAM_COLOUR.2),
            t("团队平均", "team average")
        );
    }
    h.push_str("<div class=\"reps\">\n");
    for (rep, values) in data.reps.iter().zip(&per_rep) {
        let calls = match lang {
            Lang::Zh => format!("{} 通", rep.calls),
            Lang::En => lang.count(rep.calls, "call", "calls"),
        };
        let suspended = rep.suspension.as_ref().map_or(String::new(), |s| {
            format!(
                " · <b class=\"fail\">{} {}</b>",
                t("暂停至", "suspended until"),
                s.ends_at.format("%Y-%m-%d %H:%M UTC")
            )
        });
        let _ = write!(
            h,
            "<div class=\"rep\"><h3>{}</h3><p>{calls}{suspended}</p>\n{}\n",
            escape(&rep.rep_id),
            radar_svg(&labels, values, &team)
        );
        if !rep.open_assignments.is_empty() {
            let _ = write!(h, "<p>{}</p><ul>", t("进行中的辅导：", "Open coaching:"));
            for a in &rep.open_assignments {
                let _ = write!(h, "<li>{}</li>", escape(&a.pack));
            }
            h.push_str("</ul>");
        }
        h.push_str("</div>\n");
    }
    h.push_str("</div>\n");

    let _ = writeln!(h, "<h2>{}</h2>", t("竞品", "Competitors"));
    let rows = data
        .competitors
        .iter()
        .map(|c| {
            vec![
                escape(&c.competitor),
                c.mentions.to_string(),
                format!(
                    "{} ({:.0} %)",
                    c.answered,
                    100.0 * c.answered as f64 / c.mentions.max(1) as f64
                ),
            ]
        })
        .collect();
    table(
        &mut h,
        lang,
        &[
            t("竞品", "competitor"),
            t("提及次数", "mentions"),
            t("销售已应对", "answered by the agent"),
        ],
        rows,
    );
    let _ = writeln!(
        h,
        "<h2>{}</h2>",
        t("本月的辅导分配", "Coaching assigned this month")
    );
    let rows = data
        .assignments
        .iter()
        .map(|a| {
            vec![
                escape(&a.rep_id),
                escape(&a.pack),
                escape(&a.reason),
                escape(&a.evidence_calls.join(", ")),
                escape(&a.status),
            ]
        })
        .collect();
    table(
        &mut h,
        lang,
        &[
            t("销售代表", "rep"),
            t("辅导包", "pack"),
            t("原因", "why"),
            t("通话", "calls"),
            t("状态", "status"),
        ],
        rows,
    );
    let _ = writeln!(
        h,
        "<h2>{}</h2>",
        t("能力熔断（暂停）", "Suspensions (能力熔断)")
    );
    let rows = data
        .suspensions
        .iter()
        .map(|s| {
            vec![
                escape(&s.rep_id),
                escape(&s.reason),
                escape(&s.calls.join(", ")),
                s.ends_at.format("%Y-%m-%d %H:%M UTC").to_string(),
                escape(&s.status),
            ]
        })
        .collect();
    table(
        &mut h,
        lang,
        &[
            t("销售代表", "rep"),
            t("原因", "why"),
            t("通话", "calls"),
            t("截至", "until"),
            t("状态", "status"),
        ],
        rows,
    );
    h.push_str("</body></html>\n");
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
