//! What a batch shows its user: progress while it runs, and the summary table at the end, in
//! Chinese or English. Columns are aligned by display width, so Chinese names line up.

use super::Outcome;
use super::outputs::coverage;
use crate::analysis::Analysis;
use crate::analysis::scorecard::ROLES_UNKNOWN;
use crate::report::Lang;
use indicatif::{ProgressBar, ProgressStyle};
use std::collections::BTreeMap;
use std::io::IsTerminal;
use std::time::{Duration, Instant};
use unicode_width::UnicodeWidthStr;

/// What the batch did, for the table at the end. It covers every call of the batch: those
/// scored now and those scored by an earlier run.
#[derive(Debug, Default)]
pub struct Summary {
    pub calls: usize,
    pub skipped: usize,
    pub failed: Vec<(String, String)>,
    /// Audio scored in this run.
    pub audio_ms: u64,
    pub wall: Duration,
    coverage: Vec<f64>,
    pub mentions: BTreeMap<String, usize>,
    /// Per rep and dimension, the scores of the rep's calls.
    rep_scores: BTreeMap<String, BTreeMap<String, Vec<f64>>>,
    thresholds: BTreeMap<String, f32>,
    /// Calls with no rep id, and how many of them failed a dimension.
    without_rep: usize,
    without_rep_failing: usize,
}

impl Summary {
    /// A call scored in this run.
    pub(super) fn add(&mut self, a: &Analysis) {
        self.calls += 1;
        self.audio_ms += a.duration_ms;
        self.judge(a);
    }

    /// A call scored by an earlier run: not scored again, but part of the batch.
    pub(super) fn add_earlier(&mut self, a: &Analysis) {
        self.skipped += 1;
        self.judge(a);
    }

    fn judge(&mut self, a: &Analysis) {
        self.coverage.extend(coverage(a));
        for m in &a.competitor_mentions {
            *self.mentions.entry(m.competitor.clone()).or_default() += 1;
        }
        let Some(rep) = &a.rep_id else {
            self.without_rep += 1;
            self.without_rep_failing += usize::from(a.overall.passed == Some(false));
            return;
        };
        for d in &a.scorecard.dimensions {
            if let Some(s) = d.score {
                let rep = self.rep_scores.entry(rep.clone()).or_default();
                rep.entry(d.id.clone()).or_default().push(s);
            }
            self.thresholds.insert(d.id.clone(), d.pass_threshold);
        }
    }

    pub fn average_coverage(&self) -> Option<f64> {
        (!self.coverage.is_empty())
            .then(|| self.coverage.iter().sum::<f64>() / self.coverage.len() as f64)
    }

    /// Reps whose average on some dimension is below its pass threshold, with those dimensions.
    pub fn reps_below_threshold(&self) -> Vec<(String, Vec<(String, f64)>)> {
        let mut out = Vec::new();
        for (rep, dims) in &self.rep_scores {
            let below: Vec<(String, f64)> = dims
                .iter()
                .map(|(d, s)| (d.clone(), s.iter().sum::<f64>() / s.len() as f64))
                .filter(|(d, avg)| self.thresholds.get(d).is_some_and(|&t| *avg < f64::from(t)))
                .collect();
            if !below.is_empty() {
                out.push((rep.clone(), below));
            }
        }
        out
    }

    /// The table, in `lang`.
    pub fn render(&self, lang: Lang) -> String {
        let t = |zh: &'static str, en: &'static str| lang.pick(zh, en);
        let mut rows: Vec<(String, String)> = Vec::new();
        let mut row = |label: &str, value: String| rows.push((label.to_owned(), value));
        let hours = self.audio_ms as f64 / 3_600_000.0;
        let rtf = self.wall.as_secs_f64() * 1000.0 / self.audio_ms.max(1) as f64;
        row(t("本次评分通话", "calls scored"), self.calls.to_string());
        row(
            t("此前已评分", "already scored"),
            format!(
                "{} {}",
                self.skipped,
                t("(跳过，计入下方统计)", "(skipped; counted below)")
            ),
        );
        row(t("失败", "failed"), self.failed.len().to_string());
        row(
            t("音频", "audio"),
            format!(
                "{hours:.2} h {} {:.0} s ({} {rtf:.3})",
                t("用时", "in"),
                self.wall.as_secs_f64(),
                t("实时率", "real-time factor")
            ),
        );
        row(
            t("平均覆盖率", "average coverage"),
            self.average_coverage().map_or_else(
                || t("无可评估的关键问题", "no key questions to judge").into(),
                |c| format!("{c:.1} %"),
            ),
        );
        let mut out = table(&rows);
        let header = |out: &mut String, label: &str, empty: Option<String>| match empty {
            Some(none) => out.push_str(&format!("{label}  {none}\n")),
            None => out.push_str(&format!("{label}\n")),
        };
        let none = t("无", "none").to_owned();
        header(
            &mut out,
            t("竞品提及", "competitor mentions"),
            self.mentions.is_empty().then(|| none.clone()),
        );
        let mentions: Vec<(String, String)> = self
            .mentions
            .iter()
            .map(|(c, n)| (format!("  {c}"), n.to_string()))
            .collect();
        out.push_str(&table(&mentions));
        let below = self.reps_below_threshold();
        let reps_known = !self.rep_scores.is_empty();
        let empty = match (below.is_empty(), reps_known) {
            (true, true) => Some(none),
            (true, false) => Some(
                match lang {
                    Lang::Zh => "无销售代表编号（用 --rep-id、--meta 或 --name-pattern 指定）",
                    Lang::En => "no rep ids known (give --rep-id, --meta or --name-pattern)",
                }
                .to_owned(),
            ),
            (false, _) => None,
        };
        header(
            &mut out,
            t("低于阈值的销售代表", "reps below threshold"),
            empty,
        );
        let reps: Vec<(String, String)> = below
            .iter()
            .map(|(rep, dims)| {
                let dims: Vec<String> = dims.iter().map(|(d, s)| format!("{d} {s:.0}")).collect();
                (format!("  {rep}"), dims.join(", "))
            })
            .collect();
        out.push_str(&table(&reps));
        if self.without_rep > 0 {
            out.push_str(&match lang {
                Lang::Zh => format!(
                    "无销售代表编号的通话  {} 个，其中 {} 个未通过某一维度\n",
                    self.without_rep, self.without_rep_failing
                ),
                Lang::En => format!(
                    "calls with no rep id  {}, of which {} fail a dimension\n",
                    self.without_rep, self.without_rep_failing
                ),
            });
        }
        for (file, error) in &self.failed {
            out.push_str(&format!("{} {file}: {error}\n", t("失败", "FAILED")));
        }
        out
    }
}

/// Two columns, the first padded to its widest cell by display width.
fn table(rows: &[(String, String)]) -> String {
    let width = rows.iter().map(|(l, _)| l.width()).max().unwrap_or(0);
    rows.iter()
        .map(|(l, v)| format!("{l}{}  {v}\n", " ".repeat(width - l.width())))
        .collect()
}

/// Calls done / total, audio hours, real-time factor and an ETA from the bytes of audio left:
/// a bar on a terminal, a line per call otherwise.
pub(super) struct Progress {
    bar: Option<ProgressBar>,
    total: usize,
    done: usize,
    total_bytes: u64,
    done_bytes: u64,
    audio_ms: u64,
    started: Instant,
    lang: Lang,
}

impl Progress {
    pub(super) fn new(total: usize, total_bytes: u64, lang: Lang) -> Self {
        let bar = std::io::stderr().is_terminal().then(|| {
            let bar = ProgressBar::new(total as u64);
            let template = match lang {
                Lang::Zh => "{bar:30} {pos}/{len} 通 · {msg}",
                Lang::En => "{bar:30} {pos}/{len} calls · {msg}",
            };
            bar.set_style(ProgressStyle::with_template(template).expect("a valid template"));
            bar
        });
        Self {
            bar,
            total,
            done: 0,
            total_bytes,
            done_bytes: 0,
            audio_ms: 0,
            started: Instant::now(),
            lang,
        }
    }

    /// A call finished; `bytes` of recording were behind it. The time left is estimated from
    /// the bytes of recordings left, not the calls: calls differ in length by a hundred times.
    pub(super) fn call_done(&mut self, o: &Outcome, bytes: u64) {
        self.done += 1;
        self.done_bytes += bytes;
        self.audio_ms += o.analysis.as_ref().map_or(0, |a| a.duration_ms);
        let elapsed = self.started.elapsed().as_secs_f64();
        let rtf = elapsed * 1000.0 / self.audio_ms.max(1) as f64;
        let left = self.total_bytes.saturating_sub(self.done_bytes) as f64;
        let eta = elapsed * left / self.done_bytes.max(1) as f64;
        let t = |zh: &'static str, en: &'static str| self.lang.pick(zh, en);
        let stats = format!(
            "{:.2} h {} · RTF {rtf:.3} · {} {eta:.0} s",
            self.audio_ms as f64 / 3_600_000.0,
            t("音频", "audio"),
            t("预计剩余", "ETA")
        );
        match &self.bar {
            Some(bar) => {
                bar.set_message(stats);
                bar.inc(1);
            }
            None => {
                let status = match (&o.error, o.analysis.as_ref().map(|a| &a.overall)) {
                    (Some(e), _) => format!("{}: {e}", t("失败", "FAILED")),
                    (None, Some(overall)) => match (overall.score, overall.passed) {
                        (Some(s), Some(p)) => format!(
                            "{} {s:.1} ({})",
                            t("得分", "score"),
                            if p {
                                t("通过", "pass")
                            } else {
                                t("未通过", "fail")
                            }
                        ),
                        _ if overall.not_judged.as_deref() == Some(ROLES_UNKNOWN) => {
                            t("未评分：角色未知", "not judged: roles unknown").into()
                        }
                        _ => t("未评分", "not judged").into(),
                    },
                    (None, None) => String::new(),
                };
                eprintln!(
                    "[{}/{}] {}: {status} · {stats}",
                    self.done, self.total, o.file
                );
            }
        }
    }

    pub(super) fn finish(&self) {
        if let Some(bar) = &self.bar {
            bar.finish_and_clear();
        }
    }
}
