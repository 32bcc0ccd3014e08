//! Accuracy metrics and the `callqa eval asr` command: word error rate (English) and character
//! error rate (Chinese) after the usual normalisation. The analysers' evaluations on CrossWOZ
//! are in `crosswoz`.

pub mod crosswoz;
pub mod diarization;
pub mod dissatisfaction;
pub mod error;
pub mod mixes;
pub mod pii;
pub mod roles;
pub mod train;
pub mod vcon;

use crate::asr::Language;
use crate::asr::guards::is_cjk;
use crate::audio::StreamDecoder;
pub use crate::text::edit_distance;
use crate::transcript::{CallOptions, Engines};
pub use error::{Context, EvalError, Result};
use serde::Serialize;
use std::path::{Path, PathBuf};
use std::time::Instant;

const EN_DIGITS: [&str; 10] = [
    "zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine",
];
const ZH_DIGITS: [char; 10] = ['零', '一', '二', '三', '四', '五', '六', '七', '八', '九'];

/// Whether a reference is Chinese (scored by characters) or not (scored by words).
pub fn is_chinese(text: &str) -> bool {
    text.chars().any(is_cjk)
}

/// The usual normalisation before scoring: Traditional → Simplified, lower case, punctuation
/// removed, and digits spelled out one by one (English words or Chinese numerals), so that
/// "4015" and "four zero one five" compare equal whichever side wrote digits.
pub fn normalize_for_scoring(text: &str) -> String {
    let simplified = fast2s::convert(text);
    let chinese = is_chinese(&simplified);
    let mut out = String::with_capacity(simplified.len());
    for c in simplified.chars() {
        if let Some(d) = c.to_digit(10).filter(|_| c.is_ascii_digit()) {
            if chinese {
                out.push(ZH_DIGITS[d as usize]);
            } else {
                out.push(' ');
                out.push_str(EN_DIGITS[d as usize]);
                out.push(' ');
            }
        } else if c.is_alphanumeric() || c == '\'' {
            out.extend(c.to_lowercase());
        } else {
            out.push(' ');
        }
    }
    out
}

/// Errors and reference length, so that rates can be pooled over a corpus.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct ErrorCount {
    pub errors: usize,
    pub reference_len: usize,
}

impl ErrorCount {
    pub fn rate(&self) -> f64 {
        self.errors as f64 / self.reference_len.max(1) as f64
    }
}

impl std::ops::Add for ErrorCount {
    type Output = ErrorCount;
    fn add(self, other: ErrorCount) -> ErrorCount {
        ErrorCount {
            errors: self.errors + other.errors,
            reference_len: self.reference_len + other.reference_len,
        }
    }
}

pub fn word_errors(reference: &str, hypothesis: &str) -> ErrorCount {
    let words = |s: &str| -> Vec<String> {
        normalize_for_scoring(s)
            .split_whitespace()
            .map(str::to_owned)
            .collect()
    };
    let (r, h) = (words(reference), words(hypothesis));
    ErrorCount {
        errors: edit_distance(&r, &h),
        reference_len: r.len(),
    }
}

pub fn char_errors(reference: &str, hypothesis: &str) -> ErrorCount {
    let chars = |s: &str| -> Vec<char> {
        normalize_for_scoring(s)
            .chars()
            .filter(|c| !c.is_whitespace())
            .collect()
    };
    let (r, h) = (chars(reference), chars(hypothesis));
    ErrorCount {
        errors: edit_distance(&r, &h),
        reference_len: r.len(),
    }
}

/// One scored file.
#[derive(Debug, Clone, Serialize)]
pub struct FileScore {
    pub file: PathBuf,
    pub language: String,
    pub metric: &'static str,
    pub count: ErrorCount,
    pub rate: f64,
    pub audio_seconds: f64,
    pub seconds: f64,
    pub hypothesis: String,
    pub reference: String,
}

#[derive(Debug, Clone, Default, Serialize)]
pub struct AsrReport {
    pub files: Vec<FileScore>,
    pub skipped: Vec<(PathBuf, String)>,
}

impl AsrReport {
    fn total(&self, metric: &str) -> Option<(ErrorCount, f64, f64)> {
        let rows: Vec<_> = self.files.iter().filter(|f| f.metric == metric).collect();
        (!rows.is_empty()).then(|| {
            let count = rows.iter().fold(ErrorCount::default(), |a, f| a + f.count);
            (
                count,
                rows.iter().map(|f| f.seconds).sum(),
                rows.iter().map(|f| f.audio_seconds).sum(),
            )
        })
    }

    pub fn print(&self, json: bool) {
        if json {
            for f in &self.files {
                println!("{}", serde_json::to_string(f).expect("serialisable"));
            }
        } else {
            println!(
                "{:<60} {:>4} {:>7} {:>8} {:>8}",
                "file", "lang", "rate", "audio s", "wall s"
            );
            for f in &self.files {
                let name = f.file.display().to_string();
                let name = if name.len() > 60 {
                    format!("…{}", &name[name.len() - 59..])
                } else {
                    name
                };
                println!(
                    "{name:<60} {:>4} {:>6.1}% {:>8.2} {:>8.2}",
                    f.language,
                    f.rate * 100.0,
                    f.audio_seconds,
                    f.seconds
                );
            }
        }
        for metric in ["wer", "cer"] {
            if let Some((count, wall, audio)) = self.total(metric) {
                let summary = serde_json::json!({
                    "metric": metric, "errors": count.errors, "reference_len": count.reference_len,
                    "rate": count.rate(), "wall_seconds": wall, "audio_seconds": audio,
                    "real_time_factor": wall / audio.max(1e-9),
                });
                if json {
                    println!("{summary}");
                } else {
                    println!(
                        "overall {}: {:.2}% ({} errors / {}), {:.1} s audio in {:.1} s (RTF {:.3})",
                        metric.to_uppercase(),
                        count.rate() * 100.0,
                        count.errors,
                        count.reference_len,
                        audio,
                        wall,
                        wall / audio.max(1e-9)
                    );
                }
            }
        }
        for (file, why) in &self.skipped {
            eprintln!("skipped {}: {why}", file.display());
        }
    }
}

/// Reads (audio path, reference) rows of a REFERENCE.tsv. Paths are resolved against the
/// manifest's folder and then each of its parents.
pub fn read_manifest(manifest: &Path) -> Result<Vec<(PathBuf, String)>> {
    let text = std::fs::read_to_string(manifest)
        .with_context(|| format!("{}: cannot read", manifest.display()))?;
    let base = manifest.parent().unwrap_or(Path::new("."));
    let mut rows = Vec::new();
    for (i, line) in text.lines().enumerate().skip(1) {
        let cols: Vec<&str> = line.split('\t').collect();
        if cols.len() < 3 || cols[0].trim().is_empty() {
            continue;
        }
        let path = base
            .ancestors()
            .map(|dir| dir.join(cols[0]))
            .find(|p| p.is_file())
            .with_context(|| {
                format!(
                    "{}:{}: audio {} not found",
                    manifest.display(),
                    i + 1,
                    cols[0]
                )
            })?;
        rows.push((path, cols[2].to_owned()));
    }
    Ok(rows)
}

/// Transcribes every file of a manifest and scores it.
pub fn evaluate_asr(engines: &Engines, manifest: &Path, base: &CallOptions) -> Result<AsrReport> {
    let mut report = AsrReport::default();
    for (file, reference) in read_manifest(manifest)? {
        let zh = is_chinese(&reference);
        if zh && !engines.whisper.is_multilingual() {
            report
                .skipped
                .push((file, "Chinese reference, English-only model".into()));
            continue;
        }
        let opts = CallOptions {
            language: if zh { Language::Zh } else { Language::En },
            ..base.clone()
        };
        let started = Instant::now();
        let decoder =
            StreamDecoder::from_file(&file).with_context(|| file.display().to_string())?;
        let transcript = engines
            .transcribe(decoder, &opts)
            .with_context(|| file.display().to_string())?;
        let seconds = started.elapsed().as_secs_f64();
        let hypothesis = transcript
            .turns
            .iter()
            .map(|t| t.text.as_str())
            .collect::<Vec<_>>()
            .join(if zh { "" } else { " " });
        let (metric, count) = if zh {
            ("cer", char_errors(&reference, &hypothesis))
        } else {
            ("wer", word_errors(&reference, &hypothesis))
        };
        report.files.push(FileScore {
            file,
            language: if zh { "zh" } else { "en" }.into(),
            metric,
            count,
            rate: count.rate(),
            audio_seconds: transcript.duration_ms as f64 / 1000.0,
            seconds,
            hypothesis,
            reference,
        });
    }
    Ok(report)
}

/// Precision / recall / F1 over labelled decisions.
#[derive(Debug, Clone, Copy, Default, Serialize)]
pub struct Prf {
    pub true_positives: usize,
    pub false_positives: usize,
    pub false_negatives: usize,
}

impl Prf {
    pub fn count(&mut self, predicted: bool, labelled: bool) {
        match (predicted, labelled) {
            (true, true) => self.true_positives += 1,
            (true, false) => self.false_positives += 1,
            (false, true) => self.false_negatives += 1,
            (false, false) => {}
        }
    }
    pub fn precision(&self) -> f64 {
        self.true_positives as f64 / (self.true_positives + self.false_positives).max(1) as f64
    }
    pub fn recall(&self) -> f64 {
        self.true_positives as f64 / (self.true_positives + self.false_negatives).max(1) as f64
    }
    pub fn f1(&self) -> f64 {
        let (p, r) = (self.precision(), self.recall());
        if p + r == 0.0 {
            0.0
        } else {
            2.0 * p * r / (p + r)
        }
    }
}

impl std::fmt::Display for Prf {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "P {:.3} R {:.3} F1 {:.3}",
            self.precision(),
            self.recall(),
            self.f1()
        )
    }
}

/// Perfunctory tone on the engagement replies the head never trained on (not engaging =
/// perfunctory): the text head alone, and with the cues the reply's words carry.
pub fn evaluate_perfunctory(
    data: &Path,
    embedder: &mut crate::text::embed::Embedder,
    head: &mut crate::analysis::emotion::EmotionHead,
) -> Result<PerfunctoryEval> {
    use crate::analysis::emotion::{CLASSES, combine, reply_cues};
    let rows = train::engagement_evaluation(data)?;
    let texts: Vec<&str> = rows.iter().map(|r| r.text.as_str()).collect();
    let scores = head.classify(&train::embed_all(embedder, &texts)?)?;
    let perfunctory = CLASSES
        .iter()
        .position(|c| *c == "perfunctory")
        .expect("a class");
    let mut out = PerfunctoryEval {
        replies: rows.len(),
        perfunctory: rows.iter().filter(|r| r.class == perfunctory).count(),
        with_cues: rows
            .iter()
            .filter(|r| !reply_cues(&r.text).is_empty())
            .count(),
        text_only: Prf::default(),
        text_and_cues: Prf::default(),
    };
    for (row, s) in rows.iter().zip(scores) {
        let labelled = row.class == perfunctory;
        out.text_only.count(s.argmax() == perfunctory, labelled);
        let combined = combine(s, &reply_cues(&row.text));
        out.text_and_cues
            .count(combined.argmax() == perfunctory, labelled);
    }
    Ok(out)
}

#[derive(Debug, Serialize)]
pub struct PerfunctoryEval {
    pub replies: usize,
    pub perfunctory: usize,
    /// Replies with a backchannel-only or short-reply cue.
    pub with_cues: usize,
    pub text_only: Prf,
    pub text_and_cues: Prf,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wer_ignores_case_and_punctuation() {
        let e = word_errors("And so, my fellow Americans.", "and so my fellow americans");
        assert_eq!(e.errors, 0);
        assert_eq!(
            word_errors("a b c d", "a x c"),
            ErrorCount {
                errors: 2,
                reference_len: 4
            }
        );
    }

    #[test]
    fn numerals_compare_equal_written_either_way() {
        assert_eq!(
            word_errors("call four zero one five now", "Call 4015 now.").errors,
            0
        );
        assert_eq!(char_errors("二零一六年", "2016年").errors, 0);
    }

    #[test]
    fn cer_counts_simplified_characters() {
        assert_eq!(
            char_errors("广州市房地产", "廣州是房地產。"),
            ErrorCount {
                errors: 1,
                reference_len: 6
            }
        );
    }
}
