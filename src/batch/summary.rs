//! What a batch shows its user: progress while it runs, and the summary table at the end.

use super::Outcome;
use super::outputs::coverage;
use crate::analysis::Analysis;
use indicatif::{ProgressBar, ProgressStyle};
use std::collections::BTreeMap;
use std::io::IsTerminal;
use std::time::{Duration, Instant};

/// What the batch did, for the table at the end.
#[derive(Debug, Default)]
pub struct Summary {
    pub calls: usize,
    pub skipped: usize,
    pub failed: Vec<(String, String)>,
    pub audio_ms: u64,
    pub wall: Duration,
    coverage: Vec<f64>,
    pub mentions: BTreeMap<String, usize>,
    /// Per rep and dimension, the scores of the rep's calls.
    rep_scores: BTreeMap<String, BTreeMap<String, Vec<f64>>>,
    thresholds: BTreeMap<String, f32>,
}

impl Summary {
    pub(super) fn add(&mut self, a: &Analysis) {
        self.calls += 1;
        self.audio_ms += a.duration_ms;
        self.coverage.extend(coverage(a));
        for m in &a.competitor_mentions {
            *self.mentions.entry(m.competitor.clone()).or_default() += 1;
        }
        if let Some(rep) = &a.rep_id {
            for d in &a.scorecard.dimensions {
                if let Some(s) = d.score {
                    let rep = self.rep_scores.entry(rep.clone()).or_default();
                    rep.entry(d.id.clone()).or_default().push(s);
                }
                self.thresholds.insert(d.id.clone(), d.pass_threshold);
            }
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
}

impl std::fmt::Display for Summary {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let hours = self.audio_ms as f64 / 3_600_000.0;
        let rtf = if self.audio_ms > 0 {
            self.wall.as_secs_f64() * 1000.0 / self.audio_ms as f64
        } else {
            0.0
        };
        writeln!(f, "calls scored        {}", self.calls)?;
        writeln!(f, "already scored      {} (skipped)", self.skipped)?;
        writeln!(f, "failed              {}", self.failed.len())?;
        writeln!(
            f,
            "audio               {hours:.2} h in {:.0} s (real-time factor {rtf:.3})",
            self.wall.as_secs_f64()
        )?;
        match self.average_coverage() {
            Some(c) => writeln!(f, "average coverage    {c:.1} %")?,
            None => writeln!(f, "average coverage    -")?,
        }
        if self.mentions.is_empty() {
            writeln!(f, "competitor mentions none")?;
        } else {
            writeln!(f, "competitor mentions")?;
            for (c, n) in &self.mentions {
                writeln!(f, "  {c:<24} {n}")?;
            }
        }
        let below = self.reps_below_threshold();
        if below.is_empty() {
            writeln!(f, "reps below threshold none")?;
        } else {
            writeln!(f, "reps below threshold")?;
            for (rep, dims) in below {
                let dims: Vec<String> = dims.iter().map(|(d, s)| format!("{d} {s:.0}")).collect();
                writeln!(f, "  {rep:<24} {}", dims.join(", "))?;
            }
        }
        for (file, error) in &self.failed {
            writeln!(f, "FAILED {file}: {error}")?;
        }
        Ok(())
    }
}

/// Files done / total, audio hours, real-time factor and ETA: a bar on a terminal, a line per
/// call otherwise.
pub(super) struct Progress {
    bar: Option<ProgressBar>,
    total: usize,
    done: usize,
    audio_ms: u64,
    started: Instant,
}

impl Progress {
    pub(super) fn new(total: usize) -> Self {
        let bar = std::io::stderr().is_terminal().then(|| {
            let bar = ProgressBar::new(total as u64);
            bar.set_style(
                ProgressStyle::with_template("{bar:30} {pos}/{len} calls · {msg} · ETA {eta}")
                    .expect("a valid template"),
            );
            bar
        });
        Self {
            bar,
            total,
            done: 0,
            audio_ms: 0,
            started: Instant::now(),
        }
    }

    pub(super) fn call_done(&mut self, o: &Outcome) {
        self.done += 1;
        self.audio_ms += o.analysis.as_ref().map_or(0, |a| a.duration_ms);
        let elapsed = self.started.elapsed().as_secs_f64();
        let rtf = elapsed * 1000.0 / self.audio_ms.max(1) as f64;
        let stats = format!(
            "{:.2} h audio · RTF {rtf:.3}",
            self.audio_ms as f64 / 3_600_000.0
        );
        match &self.bar {
            Some(bar) => {
                bar.set_message(stats);
                bar.inc(1);
            }
            None => {
                let left = self.total - self.done;
                let eta = elapsed / self.done as f64 * left as f64;
                let status = match &o.error {
                    Some(e) => format!("FAILED: {e}"),
                    None => "ok".into(),
                };
                eprintln!(
                    "[{}/{}] {}: {status} · {stats} · ETA {eta:.0} s",
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
