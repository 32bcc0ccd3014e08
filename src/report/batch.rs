//! The batch's HTML report, one self-contained file: the distribution of call scores, key-question
//! coverage per rep (a heatmap), competitor mentions over time, a radar per rep, and the
//! lowest-scoring calls with the evidence behind their failed dimensions. Charts are SVG drawn
//! with plotters.

use super::{Lang, REP_COLOUR, TEAM_COLOUR, escape, radar_svg};
use crate::analysis::Analysis;
use plotters::prelude::*;
use std::collections::BTreeMap;
use std::fmt::Write;
use std::path::Path;

/// Calls listed as the lowest-scoring.
const LOWEST: usize = 10;
const BAR: RGBColor = RGBColor(31, 119, 180);

/// A scored call, as the report needs it: the Analysis and its recording.
pub struct Call {
    pub file: String,
    pub analysis: Analysis,
}

type Chart<'a> = DrawingArea<SVGBackend<'a>, plotters::coord::Shift>;
type Drawn = Result<(), DrawingAreaErrorKind<std::io::Error>>;

fn svg(size: (u32, u32), draw: impl FnOnce(&Chart<'_>) -> Drawn) -> String {
    let mut out = String::new();
    {
        let root = SVGBackend::with_string(&mut out, size).into_drawing_area();
        if let Err(e) = root.fill(&WHITE).and_then(|_| draw(&root)) {
            tracing::warn!("drawing a chart: {e}");
        }
        let _ = root.present();
    }
    out
}

/// Calls per 10-point score band.
fn score_histogram(scores: &[f64]) -> String {
    let mut bins = [0u32; 10];
    for s in scores {
        bins[((s / 10.0) as usize).min(9)] += 1;
    }
    let top = bins.iter().copied().max().unwrap_or(0).max(1);
    svg((640, 300), |root| {
        let mut chart = ChartBuilder::on(root)
            .margin(12)
            .x_label_area_size(36)
            .y_label_area_size(40)
            .build_cartesian_2d((0u32..100u32).step(10).into_segmented(), 0u32..top + 1)?;
        chart
            .configure_mesh()
            .x_desc("call score")
            .y_desc("calls")
            .disable_x_mesh()
            .draw()?;
        chart.draw_series(
            Histogram::vertical(&chart)
                .style(BAR.filled())
                .margin(2)
                .data(bins.iter().enumerate().map(|(i, &n)| (i as u32 * 10, n))),
        )?;
        Ok(())
    })
}

/// One cell per key question and rep: the share of the rep's calls where it was satisfied.
fn coverage_heatmap(questions: &[String], reps: &[String], share: &[Vec<Option<f64>>]) -> String {
    let cell = (90, 28);
    let left = 170;
    let width = left + cell.0 * reps.len().max(1) as i32 + 20;
    let height = 40 + cell.1 * questions.len().max(1) as i32 + 10;
    svg((width as u32, height as u32), |root| {
        let text = ("sans-serif", 13).into_font();
        for (c, rep) in reps.iter().enumerate() {
            let x = left + cell.0 * c as i32 + 6;
            root.draw(&Text::new(rep.clone(), (x, 14), text.clone()))?;
        }
        for (r, q) in questions.iter().enumerate() {
            let y = 36 + cell.1 * r as i32;
            root.draw(&Text::new(q.clone(), (6, y + 8), text.clone()))?;
            for c in 0..reps.len() {
                let x = left + cell.0 * c as i32;
                let value = share.get(r).and_then(|row| row.get(c)).copied().flatten();
                // White (0 %) to green (100 %); grey when the rep had no call to judge.
                let colour = match value {
                    Some(v) => RGBColor(
                        (255.0 - 200.0 * v) as u8,
                        (255.0 - 80.0 * v) as u8,
                        (255.0 - 200.0 * v) as u8,
                    ),
                    None => RGBColor(230, 230, 230),
                };
                root.draw(&Rectangle::new(
                    [(x, y), (x + cell.0 - 2, y + cell.1 - 2)],
                    colour.filled(),
                ))?;
                let label = value.map_or("–".to_owned(), |v| format!("{:.0} %", v * 100.0));
                root.draw(&Text::new(label, (x + 28, y + 8), text.clone()))?;
            }
        }
        Ok(())
    })
}

/// Mentions per call date, one line per competitor.
fn mentions_over_time(by_day: &BTreeMap<String, BTreeMap<chrono::NaiveDate, u32>>) -> String {
    let days: Vec<chrono::NaiveDate> = by_day
        .values()
        .flat_map(|d| d.keys().copied())
        .collect::<std::collections::BTreeSet<_>>()
        .into_iter()
        .collect();
    let Some(&first) = days.first() else {
        return String::new();
    };
    // Days since the first call date: plotters draws numbers, the labels show dates.
    let day = |d: chrono::NaiveDate| (d - first).num_days();
    let span = days.last().map_or(1, |&d| day(d)).max(1);
    let top = by_day
        .values()
        .flat_map(|d| d.values().copied())
        .max()
        .unwrap_or(1);
    svg((640, 300), |root| {
        let mut chart = ChartBuilder::on(root)
            .margin(12)
            .x_label_area_size(36)
            .y_label_area_size(40)
            .build_cartesian_2d(0i64..span, 0u32..top + 1)?;
        chart
            .configure_mesh()
            .x_desc("call date")
            .y_desc("mentions")
            .x_label_formatter(&|&d| {
                (first + chrono::Days::new(d as u64))
                    .format("%m-%d")
                    .to_string()
            })
            .draw()?;
        for (i, (competitor, counts)) in by_day.iter().enumerate() {
            let colour = Palette99::pick(i).to_rgba();
            chart
                .draw_series(LineSeries::new(
                    counts.iter().map(|(&d, &n)| (day(d), n)),
                    colour.stroke_width(2),
                ))?
                .label(competitor.clone())
                .legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 16, y)], colour));
            chart.draw_series(
                counts
                    .iter()
                    .map(|(&d, &n)| Circle::new((day(d), n), 3, colour.filled())),
            )?;
        }
        chart
            .configure_series_labels()
            .background_style(WHITE.mix(0.8))
            .border_style(BLACK)
            .draw()?;
        Ok(())
    })
}

/// The recording's path relative to the report's folder, as a URL path: a report shared with its
/// recordings (the same tree) keeps its links.
fn audio_href(file: &str, report: &Path) -> String {
    let base = report
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    let abs = |p: &Path| std::fs::canonicalize(p).unwrap_or_else(|_| p.to_owned());
    let (target, base) = (abs(Path::new(file)), abs(base));
    let common = target
        .components()
        .zip(base.components())
        .take_while(|(a, b)| a == b)
        .count();
    let mut rel = std::path::PathBuf::new();
    for _ in base.components().skip(common) {
        rel.push("..");
    }
    for c in target.components().skip(common) {
        rel.push(c);
    }
    rel.display()
        .to_string()
        .replace('%', "%25")
        .replace(' ', "%20")
        .replace('#', "%23")
}

/// A link that plays the recording from a moment in the page's player (and, without scripts,
/// opens it there: a media fragment, `#t=SECONDS`).
fn play_link(href: &str, time_ms: u64, text: &str) -> String {
    let t = time_ms as f64 / 1000.0;
    format!(
        "<a class=\"play\" href=\"{}#t={t:.1}\" data-src=\"{}\" data-t=\"{t:.1}\">{}</a>",
        escape(href),
        escape(href),
        escape(text)
    )
}

/// The player every evidence link plays in.
const PLAYER: &str = "<div class=\"player\"><audio id=\"player\" controls preload=\"none\"></audio> <span id=\"playing\"></span></div>\n\
<script>document.addEventListener('click',function(e){var a=e.target.closest('a.play');if(!a)return;\
e.preventDefault();var p=document.getElementById('player');var src=a.getAttribute('data-src');\
if(p.getAttribute('src')!==src){p.setAttribute('src',src);}\
var t=parseFloat(a.getAttribute('data-t'));var go=function(){p.currentTime=t;p.play();};\
if(p.readyState>0){go();}else{p.addEventListener('loadedmetadata',go,{once:true});p.load();}\
document.getElementById('playing').textContent=a.textContent;});</script>\n";

fn rep_calls<'a>(calls: &'a [Call], rep: &'a str) -> impl Iterator<Item = &'a Call> + 'a {
    calls
        .iter()
        .filter(move |c| c.analysis.rep_id.as_deref() == Some(rep))
}

/// The whole report, in `lang`; `report` is where it will be written (links are relative to it).
pub fn html(calls: &[Call], failed: &[(String, String)], report: &Path, lang: Lang) -> String {
    let t = |zh: &'static str, en: &'static str| lang.pick(zh, en);
    let scores: Vec<f64> = calls
        .iter()
        .filter_map(|c| c.analysis.overall.score)
        .collect();
    let mut reps: Vec<String> = calls
        .iter()
        .filter_map(|c| c.analysis.rep_id.clone())
        .collect();
    reps.sort();
    reps.dedup();

    // Key questions (in playbook order) × reps.
    let questions: Vec<String> = calls
        .first()
        .map(|c| {
            c.analysis
                .key_questions
                .questions
                .iter()
                .map(|q| q.id.clone())
                .collect()
        })
        .unwrap_or_default();
    let share: Vec<Vec<Option<f64>>> = questions
        .iter()
        .map(|q| {
            reps.iter()
                .map(|rep| {
                    let judged: Vec<bool> = rep_calls(calls, rep)
                        .filter(|c| !c.analysis.turns.is_empty())
                        .filter_map(|c| {
                            let r = c
                                .analysis
                                .key_questions
                                .questions
                                .iter()
                                .find(|r| &r.id == q)?;
                            Some(r.satisfied)
                        })
                        .collect();
                    (!judged.is_empty())
                        .then(|| judged.iter().filter(|&&s| s).count() as f64 / judged.len() as f64)
                })
                .collect()
        })
        .collect();

    let mut by_day: BTreeMap<String, BTreeMap<chrono::NaiveDate, u32>> = BTreeMap::new();
    for c in calls {
        for m in &c.analysis.competitor_mentions {
            *by_day
                .entry(m.competitor.clone())
                .or_default()
                .entry(c.analysis.call_date)
                .or_default() += 1;
        }
    }

    // The radar: each rep's average per dimension over the team's.
    let dims: Vec<(String, String)> = calls
        .first()
        .map(|c| {
            c.analysis
                .scorecard
                .dimensions
                .iter()
                .map(|d| (d.id.clone(), d.name.clone()))
                .collect()
        })
        .unwrap_or_default();
    let average = |calls: &mut dyn Iterator<Item = &Call>, id: &str| -> Option<f64> {
        let v: Vec<f64> = calls
            .filter_map(|c| {
                c.analysis
                    .scorecard
                    .dimensions
                    .iter()
                    .find(|d| d.id == id)?
                    .score
            })
            .collect();
        (!v.is_empty()).then(|| v.iter().sum::<f64>() / v.len() as f64)
    };
    let labels: Vec<String> = dims.iter().map(|(_, n)| lang.name(n).to_owned()).collect();
    let team: Vec<Option<f64>> = dims
        .iter()
        .map(|(id, _)| average(&mut calls.iter(), id))
        .collect();

    let mut h = String::new();
    let mean = if scores.is_empty() {
        "–".to_owned()
    } else {
        format!("{:.1}", scores.iter().sum::<f64>() / scores.len() as f64)
    };
    let hours = calls.iter().map(|c| c.analysis.duration_ms).sum::<u64>() as f64 / 3_600_000.0;
    let intro = match lang {
        Lang::Zh => format!(
            "已评分 {} 通，失败 {} 个文件；音频 {hours:.2} 小时；平均得分 {mean}（得分：各维度得分的平均值）。",
            calls.len(),
            failed.len()
        ),
        Lang::En => format!(
            "{} scored, {} failed; {hours:.2} h of audio; mean score {mean} (a call's score is the mean of its dimension scores).",
            lang.count(calls.len(), "call", "calls"),
            lang.count(failed.len(), "file", "files"),
        ),
    };
    let _ = write!(
        h,
        "<!DOCTYPE html>\n<html lang=\"{}\"><head><meta charset=\"utf-8\"><title>{}</title>\n<style>\
body{{font-family:sans-serif;margin:24px;color:#222}} table{{border-collapse:collapse;margin:8px 0 20px}}\
td,th{{border:1px solid #ccc;padding:4px 10px;text-align:left;vertical-align:top}} th{{background:#f4f4f4}}\
.reps{{display:flex;flex-wrap:wrap;gap:16px}} .rep{{border:1px solid #ddd;padding:8px;width:380px}}\
.fail{{color:#b00}} .player{{position:sticky;top:0;background:#fff;padding:6px 0;border-bottom:1px solid #ddd}}\
.legend span{{display:inline-block;width:12px;height:12px;margin:0 4px 0 12px}}</style></head><body>\n\
<h1>{}</h1>\n{PLAYER}<p>{}</p>\n",
        lang.code(),
        t("通话质检 · 批量报告", "Call quality · batch report"),
        t("通话质检 · 批量报告", "Call quality · batch report"),
        escape(&intro)
    );
    let _ = write!(
        h,
        "<h2>{}</h2>\n{}\n",
        t("通话得分分布", "Call scores"),
        score_histogram(&scores)
    );
    let _ = write!(
        h,
        "<h2>{}</h2>\n<p>{}</p>\n{}\n",
        t("各销售代表的关键问题覆盖率", "Key-question coverage by rep"),
        t(
            "每个销售代表的通话中，按话术要求问到该问题的比例。",
            "The share of each rep's calls in which the question was asked as the playbook requires."
        ),
        coverage_heatmap(&questions, &reps, &share)
    );
    let _ = writeln!(
        h,
        "<h2>{}</h2>",
        t("竞品提及趋势", "Competitor mentions over time")
    );
    if by_day.is_empty() {
        let _ = writeln!(
            h,
            "<p>{}</p>",
            t(
                "无：没有通话提到竞品。",
                "None: no call mentioned a competitor."
            )
        );
    } else {
        h.push_str(&mentions_over_time(&by_day));
    }
    let _ = writeln!(h, "<h2>{}</h2>", t("销售代表", "Reps"));
    if reps.is_empty() {
        let _ = writeln!(
            h,
            "<p>{}</p>",
            t(
                "无：通话没有销售代表编号（用 --rep-id、--meta 或 --name-pattern 指定）。",
                "None: the calls carry no rep id (give --rep-id, --meta or --name-pattern)."
            )
        );
    } else {
        let _ = writeln!(
            h,
            "<p class=\"legend\"><span style=\"background:rgb({},{},{})\"></span>{}<span style=\"background:rgb({},{},{})\"></span>{}</p>",
            REP_COLOUR.0,
            REP_COLOUR.1,
            REP_COLOUR.2,
            t("该销售代表", "this rep"),
            TEAM_COLOUR.0,
            TEAM_COLOUR.1,
            TEAM_COLOUR.2,
            t("团队平均", "team average")
        );
    }
    h.push_str("<div class=\"reps\">\n");
    for rep in &reps {
        let values: Vec<Option<f64>> = dims
            .iter()
            .map(|(id, _)| average(&mut rep_calls(calls, rep), id))
            .collect();
        let n = rep_calls(calls, rep).count();
        let _ = write!(
            h,
            "<div class=\"rep\"><h3>{}</h3><p>{}</p>\n{}</div>\n",
            escape(rep),
            match lang {
                Lang::Zh => format!("{n} 通"),
                Lang::En => lang.count(n, "call", "calls"),
            },
            radar_svg(&labels, &values, &team)
        );
    }
    let _ = writeln!(
        h,
        "</div>\n<h2>{}</h2>\n<table><tr><th>{}</th><th>{}</th><th>{}</th><th>{}</th></tr>",
        t("得分最低的通话", "Lowest-scoring calls"),
        t("通话", "call"),
        t("销售代表", "rep"),
        t("得分", "score"),
        t(
            "未通过的维度及证据（点击播放）",
            "failed dimensions and their evidence (click to play)"
        )
    );
    let mut ranked: Vec<&Call> = calls
        .iter()
        .filter(|c| c.analysis.overall.score.is_some())
        .collect();
    let score = |c: &&Call| c.analysis.overall.score.unwrap_or(0.0);
    ranked.sort_by(|a, b| score(a).total_cmp(&score(b)));
    for c in ranked.into_iter().take(LOWEST) {
        let a = &c.analysis;
        let href = audio_href(&c.file, report);
        let mut evidence = String::new();
        for d in a
            .scorecard
            .dimensions
            .iter()
            .filter(|d| d.passed == Some(false))
        {
            let _ = write!(
                evidence,
                "<b>{}</b> {:.0}<ul>",
                escape(lang.name(&d.name)),
                d.score.unwrap_or(0.0)
            );
            for s in &d.signals {
                let _ = write!(evidence, "<li>{}", escape(&s.detail));
                for e in &s.evidence {
                    let at = format!("{:.0}:{:02}", e.time_ms / 60_000, e.time_ms / 1000 % 60);
                    let _ = write!(
                        evidence,
                        " · {} “{}”",
                        play_link(&href, e.time_ms, &at),
                        escape(&e.text)
                    );
                }
                evidence.push_str("</li>");
            }
            evidence.push_str("</ul>");
        }
        let _ = writeln!(
            h,
            "<tr><td>{}</td><td>{}</td><td class=\"fail\">{:.0}</td><td>{}</td></tr>",
            play_link(&href, 0, &a.call_id),
            escape(a.rep_id.as_deref().unwrap_or("–")),
            a.overall.score.unwrap_or(0.0),
            evidence
        );
    }
    h.push_str("</table>\n");
    let _ = writeln!(h, "<h2>{}</h2>", t("失败的文件", "Files that failed"));
    if failed.is_empty() {
        let _ = writeln!(h, "<p>{}</p>", t("无。", "None."));
    } else {
        let _ = writeln!(
            h,
            "<table><tr><th>{}</th><th>{}</th></tr>",
            t("文件", "file"),
            t("错误", "error")
        );
        for (file, error) in failed {
            let _ = writeln!(
                h,
                "<tr><td>{}</td><td>{}</td></tr>",
                escape(file),
                escape(error)
            );
        }
        h.push_str("</table>\n");
    }
    h.push_str("</body></html>\n");
    h
}
