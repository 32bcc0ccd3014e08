//! The diarization error rate, as NIST's md-eval scores it: missed speech, false alarm and
//! speaker confusion over reference speech time, overlap scored, a 0.25 s collar around every
//! reference boundary left out, and hypothesis speakers mapped one to one onto reference
//! speakers so as to agree the most.

use super::error::{Context, EvalError, Result};
use super::roles::{RoleScore, read_role_labels, score_roles};
use super::vcon::vcon_reference;
use crate::audio::StreamDecoder;
use crate::audio::channels::Role;
use crate::speakers::{Diarization, SpeakerModels};
use crate::transcript::{CallOptions, Engines, RoleHints, Turn};
use serde::Serialize;
use std::path::Path;

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

impl std::fmt::Display for Der {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let pct = |ms: u64| 100.0 * ms as f64 / self.reference_ms.max(1) as f64;
        write!(
            f,
            "DER {:.1} % (missed {:.1} %, false alarm {:.1} %, confusion {:.1} %) of {:.1} s",
            100.0 * self.rate(),
            pct(self.missed_ms),
            pct(self.false_alarm_ms),
            pct(self.confusion_ms),
            self.reference_ms as f64 / 1000.0
        )
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

/// A diarization's turns as spans labelled `S1`, `S2`, …
pub fn spans(d: &Diarization) -> Vec<Span> {
    d.turns
        .iter()
        .map(|t| Span {
            speaker: crate::transcript::speakers::label(t.speaker),
            start_ms: t.start_ms,
            end_ms: t.end_ms,
        })
        .collect()
}

/// 16 kHz audio as a telephone line carries it: band-limited, 8 kHz, G.711 μ-law, and back to
/// 16 kHz as callqa would read such a recording.
pub fn telephone(audio: &[f32]) -> Result<Vec<f32>> {
    // Half-band low-pass (windowed sinc, cut at 3.8 kHz), then every other sample.
    const TAPS: usize = 63;
    let half = (TAPS / 2) as isize;
    let cutoff = 3_800.0 / 16_000.0;
    let kernel: Vec<f32> = (0..TAPS as isize)
        .map(|i| {
            let x = (i - half) as f32;
            let sinc = if x == 0.0 {
                2.0 * cutoff
            } else {
                (2.0 * std::f32::consts::PI * cutoff * x).sin() / (std::f32::consts::PI * x)
            };
            let hann =
                0.5 - 0.5 * (2.0 * std::f32::consts::PI * i as f32 / (TAPS - 1) as f32).cos();
            sinc * hann
        })
        .collect();
    let narrow: Vec<f32> = (0..audio.len() as isize)
        .step_by(2)
        .map(|n| {
            kernel
                .iter()
                .enumerate()
                .filter_map(|(k, c)| {
                    let i = n + k as isize - half;
                    (0..audio.len() as isize)
                        .contains(&i)
                        .then(|| c * audio[i as usize])
                })
                .sum::<f32>()
        })
        .map(mulaw_round_trip)
        .collect();
    crate::audio::resample::to_16k(&narrow, 8_000)
        .map_err(|e| EvalError::Data(format!("resampling: {e}")))
}

/// A sample through G.711 μ-law (8 bits) and back.
fn mulaw_round_trip(x: f32) -> f32 {
    const MU: f32 = 255.0;
    let x = x.clamp(-1.0, 1.0);
    let y = x.signum() * (1.0 + MU * x.abs()).ln() / (1.0 + MU).ln();
    let code = (y * 127.0).round() / 127.0;
    code.signum() * ((1.0 + MU).powf(code.abs()) - 1.0) / MU
}

/// DER of the shared pyannote sample, as recorded (16 kHz) and through a telephone line.
pub fn evaluate_sample(
    models: &SpeakerModels,
    wav: &Path,
    rttm: &Path,
) -> Result<Vec<(&'static str, Der)>> {
    let bytes = std::fs::read(wav).with_context(|| format!("{}: cannot read", wav.display()))?;
    let (_, audio) = crate::audio::load_16k_mono(bytes)?;
    let text = std::fs::read_to_string(rttm)
        .with_context(|| format!("{}: cannot read", rttm.display()))?;
    let reference = parse_rttm(&text)?;
    let mut out = Vec::new();
    for (condition, audio) in [
        ("16 kHz", audio.clone()),
        ("8 kHz μ-law", telephone(&audio)?),
    ] {
        let d = models.diarize(&audio, 2)?;
        out.push((condition, der(&reference, &spans(&d), COLLAR_MS)));
    }
    Ok(out)
}

/// Role accuracy on the tadhack calls (mono), against the hand labels of their paragraphs.
pub fn evaluate_roles(
    engines: &Engines,
    calls: &Path,
    labels: &Path,
    opts: &CallOptions,
) -> Result<Vec<(String, RoleScore)>> {
    let labels = read_role_labels(labels)?;
    let mut names: Vec<&String> = labels.keys().collect();
    names.sort();
    let mut out = Vec::new();
    for call in names {
        let vcon = std::fs::read_dir(calls)?
            .filter_map(|e| e.ok().map(|e| e.path()))
            .find(|p| {
                p.file_name()
                    .and_then(|n| n.to_str())
                    .is_some_and(|n| n.starts_with(call.as_str()) && n.ends_with(".vcon.json"))
            })
            .with_context(|| format!("{}: no vCon for call {call}", calls.display()))?;
        let paragraphs: Vec<String> = vcon_reference(&vcon)?.lines().map(str::to_owned).collect();
        let roles = &labels[call];
        if roles.len() != paragraphs.len() {
            return Err(EvalError::Data(format!(
                "call {call}: {} labels for {} paragraphs",
                roles.len(),
                paragraphs.len()
            )));
        }
        let audio = vcon.with_file_name(
            vcon.file_name()
                .and_then(|n| n.to_str())
                .unwrap_or_default()
                .replace(".vcon.json", ".mp3"),
        );
        let transcript = engines.transcribe(StreamDecoder::from_file(&audio)?, opts)?;
        let reference: Vec<(Role, String)> = roles.iter().copied().zip(paragraphs).collect();
        out.push((call.clone(), score_roles(&reference, &transcript.turns)));
    }
    Ok(out)
}

/// DER per conversation mixed from the shared recordings (`mixes`), as mixed (16 kHz) and through
/// a telephone line.
pub fn evaluate_mixes(models: &SpeakerModels, eval: &Path) -> Result<Vec<(String, Der, Der)>> {
    let mut out = Vec::new();
    for m in super::mixes::shared_mixes(eval)? {
        let mut ders = Vec::new();
        for audio in [m.mono.clone(), telephone(&m.mono)?] {
            let d = models.diarize(&audio, 2)?;
            ders.push(der(&m.reference, &spans(&d), COLLAR_MS));
        }
        out.push((m.name, ders[0], ders[1]));
    }
    Ok(out)
}

/// Role accuracy by voiceprint on stereo calls mixed down to mono: for each mixed conversation
/// (its first voice the rep), the rep's voice is learned from the rep's own channel of another
/// conversation of the same pair (another cut of the same recordings), and each speaker of the
/// mono mix gets the role `roles::decide` gives it by that voiceprint alone (no words). Returns
/// per conversation the share of the speech found whose role is right (UNKNOWN is wrong); speech
/// not found is the DER's business.
pub fn evaluate_voice_roles(
    models: &SpeakerModels,
    eval: &Path,
) -> Result<Vec<(String, RoleTime)>> {
    let mixes = super::mixes::shared_mixes(eval)?;
    let pair = |name: &str| name.split('#').next().unwrap_or_default().to_owned();
    let mut out = Vec::new();
    for m in &mixes {
        let teacher = mixes
            .iter()
            .find(|t| pair(&t.name) == pair(&m.name) && t.name != m.name)
            .with_context(|| format!("no second conversation of {}", m.name))?;
        let rep = models.voice(&teacher.tracks[0])?;
        let d = models.diarize(&m.mono, 2)?;
        let mut turns: Vec<Turn> = d
            .turns
            .iter()
            .map(|t| Turn {
                speaker: Some(crate::transcript::speakers::label(t.speaker)),
                ..Turn::text(Role::Unknown, t.start_ms, t.end_ms, String::new())
            })
            .collect();
        let hints = RoleHints {
            rep_voiceprint: rep.map(|v| v.voiceprint),
            ..RoleHints::default()
        };
        crate::transcript::roles::decide(&mut turns, &d.voiceprints, &hints);
        out.push((m.name.clone(), role_time(&m.reference, &turns)));
    }
    Ok(out)
}

/// Role accuracy on a 10 ms grid, away from the reference's boundaries (the DER's collar):
/// each reference speaker's speech (the first speaker the agent) is found where some turn
/// covers it, and right where a turn of its role does.
fn role_time(reference: &[Span], turns: &[Turn]) -> RoleTime {
    let agent = reference.first().map(|s| s.speaker.as_str());
    let mut bounds: Vec<u64> = reference
        .iter()
        .flat_map(|r| [r.start_ms, r.end_ms])
        .collect();
    bounds.sort_unstable();
    let near_bound = |t: u64| {
        let i = bounds.partition_point(|&b| b < t.saturating_sub(COLLAR_MS));
        bounds.get(i).is_some_and(|&b| b <= t + COLLAR_MS)
    };
    let mut score = RoleTime::default();
    for r in reference {
        let want = if Some(r.speaker.as_str()) == agent {
            Role::Agent
        } else {
            Role::Customer
        };
        for t in (r.start_ms..r.end_ms).step_by(STEP_MS as usize) {
            if near_bound(t) {
                continue;
            }
            score.reference_ms += STEP_MS;
            let covering = || turns.iter().filter(|x| x.start_ms <= t && t < x.end_ms);
            if covering().next().is_some() {
                score.speech_ms += STEP_MS;
                if covering().all(|x| x.role == Role::Unknown) {
                    score.unknown_ms += STEP_MS;
                }
            }
            if covering().any(|x| x.role == want) {
                score.right_ms += STEP_MS;
            }
        }
    }
    score
}

/// Reference speech time, the part of it found, and the part found whose role is right.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize)]
pub struct RoleTime {
    pub reference_ms: u64,
    pub speech_ms: u64,
    pub right_ms: u64,
    /// Found, but said by a speaker whose role was left UNKNOWN.
    pub unknown_ms: u64,
}

impl RoleTime {
    pub fn accuracy(&self) -> f64 {
        self.right_ms.min(self.speech_ms) as f64 / self.speech_ms.max(1) as f64
    }

    pub fn add(&mut self, o: &RoleTime) {
        self.reference_ms += o.reference_ms;
        self.speech_ms += o.speech_ms;
        self.right_ms += o.right_ms.min(o.speech_ms);
        self.unknown_ms += o.unknown_ms;
    }
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
