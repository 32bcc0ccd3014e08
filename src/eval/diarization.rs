//! The diarization error rate, as NIST's md-eval scores it: missed speech, false alarm and
//! speaker confusion over reference speech time, overlap scored, a 0.25 s collar around every
//! reference boundary left out, and hypothesis speakers mapped one to one onto reference
//! speakers so as to agree the most.

use super::error::{EvalError, Result};
use serde::Serialize;

/// Scoring resolution.
const STEP_MS: u64 = 10;
pub const COLLAR_MS: u64 = 250;

/// A speaker's stretch of talk, by label.
#[derive(Debug, Clone, PartialEq)]
pub struct Span {
    pub speaker: String,
    pub start_ms: u64,
    pub end_ms: u64,
}

/// Reads `SPEAKER file 1 start duration <NA> <NA> name <NA> <NA>` lines.
pub fn parse_rttm(text: &str) -> Result<Vec<Span>> {
    let mut out = Vec::new();
    for (i, line) in text.lines().enumerate() {
        let f: Vec<&str> = line.split_whitespace().collect();
        if f.first() != Some(&"SPEAKER") {
            continue;
        }
        let secs = |s: Option<&&str>| s.and_then(|v| v.parse::<f64>().ok());
        let (Some(start), Some(dur), Some(name)) = (secs(f.get(3)), secs(f.get(4)), f.get(7))
        else {
            return Err(EvalError::Data(format!("RTTM line {}: {line:?}", i + 1)));
        };
        out.push(Span {
            speaker: (*name).to_owned(),
            start_ms: (start * 1000.0).round() as u64,
            end_ms: ((start + dur) * 1000.0).round() as u64,
        });
    }
    Ok(out)
}

/// Times in ms, summed over the scored parts of one or more recordings.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize)]
pub struct Der {
    pub reference_ms: u64,
    pub missed_ms: u64,
    pub false_alarm_ms: u64,
    pub confusion_ms: u64,
}

impl Der {
    pub fn rate(&self) -> f64 {
        (self.missed_ms + self.false_alarm_ms + self.confusion_ms) as f64
            / self.reference_ms.max(1) as f64
    }

    pub fn add(&mut self, o: &Der) {
        self.reference_ms += o.reference_ms;
        self.missed_ms += o.missed_ms;
        self.false_alarm_ms += o.false_alarm_ms;
        self.confusion_ms += o.confusion_ms;
    }
}

/// Who talks in each step, as indices into `names`.
fn grid(spans: &[Span], names: &[String], steps: usize) -> Vec<Vec<usize>> {
    let mut g = vec![Vec::new(); steps];
    for s in spans {
        let who = names.iter().position(|n| *n == s.speaker).expect("named");
        let (a, b) = (
            (s.start_ms / STEP_MS) as usize,
            (s.end_ms / STEP_MS) as usize,
        );
        for step in g.iter_mut().take(b.min(steps)).skip(a) {
            if !step.contains(&who) {
                step.push(who);
            }
        }
    }
    g
}

fn names(spans: &[Span]) -> Vec<String> {
    let mut n: Vec<String> = Vec::new();
    for s in spans {
        if !n.contains(&s.speaker) {
            n.push(s.speaker.clone());
        }
    }
    n
}

/// The DER of a hypothesis against a reference, with a collar of `collar_ms` each side of every
/// reference boundary.
pub fn der(reference: &[Span], hypothesis: &[Span], collar_ms: u64) -> Der {
    let end = reference
        .iter()
        .chain(hypothesis)
        .map(|s| s.end_ms)
        .max()
        .unwrap_or(0);
    let steps = (end / STEP_MS + 1) as usize;
    let (rn, hn) = (names(reference), names(hypothesis));
    let (r, h) = (grid(reference, &rn, steps), grid(hypothesis, &hn, steps));
    let mut scored = vec![true; steps];
    for s in reference {
        for edge in [s.start_ms, s.end_ms] {
            let a = edge.saturating_sub(collar_ms) / STEP_MS;
            let b = ((edge + collar_ms) / STEP_MS).min(steps as u64);
            scored[a as usize..b as usize].fill(false);
        }
    }
    // Agreement of each (hypothesis, reference) pair over the scored steps.
    let mut agree = vec![vec![0u64; rn.len()]; hn.len()];
    for t in (0..steps).filter(|&t| scored[t]) {
        for &hs in &h[t] {
            for &rs in &r[t] {
                agree[hs][rs] += 1;
            }
        }
    }
    let mapping = best_mapping(&agree, rn.len());
    let mut out = Der::default();
    for t in (0..steps).filter(|&t| scored[t]) {
        let (nr, nh) = (r[t].len() as u64, h[t].len() as u64);
        let correct = h[t]
            .iter()
            .filter(|&&hs| mapping[hs].is_some_and(|rs| r[t].contains(&rs)))
            .count() as u64;
        out.reference_ms += nr * STEP_MS;
        out.missed_ms += nr.saturating_sub(nh) * STEP_MS;
        out.false_alarm_ms += nh.saturating_sub(nr) * STEP_MS;
        out.confusion_ms += (nr.min(nh) - correct.min(nr.min(nh))) * STEP_MS;
    }
    out
}

/// Hypothesis speaker → reference speaker, one to one, maximising the agreement (an exhaustive
/// search: calls have a handful of speakers).
fn best_mapping(agree: &[Vec<u64>], n_ref: usize) -> Vec<Option<usize>> {
    fn search(
        i: usize,
        agree: &[Vec<u64>],
        used: &mut Vec<bool>,
        current: &mut Vec<Option<usize>>,
        best: &mut (u64, Vec<Option<usize>>),
        total: u64,
    ) {
        if i == agree.len() {
            if total >= best.0 {
                *best = (total, current.clone());
            }
            return;
        }
        current.push(None);
        search(i + 1, agree, used, current, best, total);
        current.pop();
        for r in 0..used.len() {
            if !used[r] {
                used[r] = true;
                current.push(Some(r));
                search(i + 1, agree, used, current, best, total + agree[i][r]);
                current.pop();
                used[r] = false;
            }
        }
    }
    let mut best = (0, vec![None; agree.len()]);
    search(
        0,
        agree,
        &mut vec![false; n_ref],
        &mut Vec::new(),
        &mut best,
        0,
    );
    best.1
}

#[cfg(test)]
mod tests {
    use super::*;

    fn span(who: &str, a: u64, b: u64) -> Span {
        Span {
            speaker: who.into(),
            start_ms: a,
            end_ms: b,
        }
    }

    #[test]
    fn rttm_lines_are_read() {
        let r = parse_rttm("SPEAKER sample 1 6.690 0.430 <NA> <NA> speaker90 <NA> <NA>\n").unwrap();
        assert_eq!(r, vec![span("speaker90", 6_690, 7_120)]);
        assert!(parse_rttm("SPEAKER x 1 oops").is_err());
    }

    #[test]
    fn the_rate_counts_each_kind_of_error() {
        let reference = vec![span("a", 0, 10_000), span("b", 10_000, 20_000)];
        // The same turns under other names: no error.
        let same = vec![span("x", 0, 10_000), span("y", 10_000, 20_000)];
        assert_eq!(der(&reference, &same, COLLAR_MS).rate(), 0.0);
        // Nothing found: all missed.
        let none = der(&reference, &[], COLLAR_MS);
        assert_eq!(none.missed_ms, none.reference_ms);
        // One speaker for both: half confused.
        let one = der(&reference, &[span("x", 0, 20_000)], 0);
        assert!((one.rate() - 0.5).abs() < 0.01, "{one:?}");
        assert_eq!(one.confusion_ms, 10_000);
        // A 0.3 s shift costs only what falls outside the collar.
        let shifted = vec![span("x", 0, 10_300), span("y", 10_300, 20_000)];
        let s = der(&reference, &shifted, COLLAR_MS);
        assert!(s.confusion_ms <= 60 && s.rate() < 0.01, "{s:?}");
        // Talk where the reference has none is a false alarm.
        let extra = der(
            &reference,
            &[span("x", 0, 10_000), span("y", 10_000, 25_000)],
            0,
        );
        assert_eq!(extra.false_alarm_ms, 5_000);
    }
}
