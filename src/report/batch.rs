//! The batch's HTML report, one self-contained file: the distribution of call scores, key-question
//! coverage per rep (a heatmap), competitor mentions over time, a radar per rep, and the
//! lowest-scoring calls with the evidence behind their failed dimensions. Charts are SVG drawn
//! with plotters.

use super::{escape, radar_svg};
use crate::analysis::Analysis;
use plotters::prelude::*;
use std::collections::BTreeMap;
use std::fmt::Write;

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

/// A link that opens the recording at a moment (a media fragment, `#t=SECONDS`).
fn audio_link(file: &str, time_ms: u64) -> String {
    let audio = std::fs::canonicalize(file).unwrap_or_else(|_| file.into());
    let path = audio
        .display()
        .to_string()
        .replace('%', "%25")
        .replace(' ', "%20");
    format!("file://{path}#t={:.1}", time_ms as f64 / 1000.0)
}

fn rep_calls<'a>(calls: &'a [Call], rep: &'a str) -> impl Iterator<Item = &'a Call> + 'a {
    calls
        .iter()
        .filter(move |c| c.analysis.rep_id.as_deref() == Some(rep))
}

/// The whole report.
pub fn html(calls: &[Call], failed: &[(String, String)]) -> String {
    let scores: Vec<f64> = calls
        .iter()
        .filter_map(|c| c.analysis.scorecard.overall())
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
    let labels: Vec<String> = dims.iter().map(|(_, n)| n.clone()).collect();
    let team: Vec<Option<f64>> = dims
        .iter()
        .map(|(id, _)| average(&mut calls.iter(), id))
        .collect();

    let mut h = String::new();
    let _ = write!(
        h,
        "<!DOCTYPE html>\n<html lang=\"zh\"><head><meta charset=\"utf-8\"><title>callqa batch report</title>\n<style>\
body{{font-family:sans-serif;margin:24px;color:#222}} table{{border-collapse:collapse;margin:8px 0 20px}}\
td,th{{border:1px solid #ccc;padding:4px 10px;text-align:left;vertical-align:top}} th{{background:#f4f4f4}}\
.reps{{display:flex;flex-wrap:wrap;gap:16px}} .rep{{border:1px solid #ddd;padding:8px;width:380px}}\
.fail{{color:#b00}}</style></head><body>\n<h1>Call quality · batch report</h1>\n\
<p>{} calls scored, {} failed; {:.2} h of audio; mean score {}.</p>\n",
        calls.len(),
        failed.len(),
        calls.iter().map(|c| c.analysis.duration_ms).sum::<u64>() as f64 / 3_600_000.0,
        if scores.is_empty() {
            "–".to_owned()
        } else {
            format!("{:.1}", scores.iter().sum::<f64>() / scores.len() as f64)
        }
    );
    let _ = write!(h, "<h2>Call scores</h2>\n{}\n", score_histogram(&scores));
    let _ = write!(
        h,
        "<h2>Key-question coverage by rep</h2>\n<p>The share of each rep's calls in which the question was asked as the playbook requires.</p>\n{}\n",
        coverage_heatmap(&questions, &reps, &share)
    );
    h.push_str("<h2>Competitor mentions over time</h2>\n");
    if by_day.is_empty() {
        h.push_str("<p>No competitor was mentioned.</p>\n");
    } else {
        h.push_str(&mentions_over_time(&by_day));
    }
    h.push_str("<h2>Reps</h2>\n<div class=\"reps\">\n");
    for rep in &reps {
        let values: Vec<Option<f64>> = dims
            .iter()
            .map(|(id, _)| average(&mut rep_calls(calls, rep), id))
            .collect();
        let _ = write!(
            h,
            "<div class=\"rep\"><h3>{}</h3><p>{} calls</p>\n{}</div>\n",
            escape(rep),
            rep_calls(calls, rep).count(),
            radar_svg(&labels, &values, &team)
        );
    }
    h.push_str("</div>\n<h2>Lowest-scoring calls</h2>\n<table><tr><th>call</th><th>rep</th><th>score</th><th>failed dimensions and their evidence</th></tr>\n");
    let mut ranked: Vec<&Call> = calls
        .iter()
        .filter(|c| c.analysis.scorecard.overall().is_some())
        .collect();
    let score = |c: &&Call| c.analysis.scorecard.overall().unwrap_or(0.0);
    ranked.sort_by(|a, b| score(a).total_cmp(&score(b)));
    for c in ranked.into_iter().take(LOWEST) {
        let a = &c.analysis;
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
                escape(&d.name),
                d.score.unwrap_or(0.0)
            );
            for s in &d.signals {
                let _ = write!(evidence, "<li>{}", escape(&s.detail));
                for e in &s.evidence {
                    let _ = write!(
                        evidence,
                        " · <a href=\"{}\">{:.0}:{:02}</a> “{}”",
                        escape(&audio_link(&c.file, e.time_ms)),
                        e.time_ms / 60_000,
                        e.time_ms / 1000 % 60,
                        escape(&e.text)
                    );
                }
                evidence.push_str("</li>");
            }
            evidence.push_str("</ul>");
        }
        let _ = writeln!(
            h,
            "<tr><td><a href=\"{}\">{}</a></td><td>{}</td><td class=\"fail\">{:.0}</td><td>{}</td></tr>",
            escape(&audio_link(&c.file, 0)),
            escape(&a.call_id),
            escape(a.rep_id.as_deref().unwrap_or("–")),
            a.scorecard.overall().unwrap_or(0.0),
            evidence
        );
    }
    h.push_str("</table>\n");
    if !failed.is_empty() {
        h.push_str("<h2>Files that failed</h2>\n<table><tr><th>file</th><th>error</th></tr>\n");
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
