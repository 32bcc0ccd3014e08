//! The batch's outputs: JSON lines and CSV rows written call by call (so that an interrupted run
//! resumes where it stopped), and the redacted copies of the recordings.

use super::{BatchError, Outcome, report};
use crate::analysis::Analysis;
use crate::analysis::playbook::Playbook;
use crate::audio::StreamDecoder;
use crate::audio::channels::Role;
use crate::audio::mask::AudioMask;
use std::collections::{BTreeMap, HashSet};
use std::io::BufRead;
use std::path::{Path, PathBuf};

/// Writes `DIR/CALL_ID.wav`: the recording with the spans the analysis redacted masked.
pub fn write_redacted_audio(
    recording: &Path,
    analysis: &Analysis,
    (dir, mask): &(PathBuf, AudioMask),
) -> Result<PathBuf, BatchError> {
    let out = dir.join(format!("{}.wav", analysis.call_id));
    let fail = |e: String| BatchError::Output {
        path: out.clone(),
        source: e.into(),
    };
    std::fs::create_dir_all(dir).map_err(|e| fail(e.to_string()))?;
    let spans: Vec<(u64, u64)> = analysis
        .redactions
        .iter()
        .map(|r| (r.start_ms, r.end_ms))
        .collect();
    let decoder = StreamDecoder::from_file(recording).map_err(|e| fail(e.to_string()))?;
    let mut file =
        std::io::BufWriter::new(std::fs::File::create(&out).map_err(|e| fail(e.to_string()))?);
    crate::audio::mask::write_masked_wav(decoder, &spans, *mask, &mut file)
        .map_err(|e| fail(e.to_string()))?;
    Ok(out)
}

/// The calls of the JSONL output already scored under this playbook revision: their content
/// hashes, and the calls themselves (for the report).
pub(super) fn already_done(
    jsonl: Option<&Path>,
    revision: &str,
) -> Result<(HashSet<String>, Vec<report::Call>), BatchError> {
    let (mut done, mut calls) = (HashSet::new(), Vec::new());
    let Some(path) = jsonl.filter(|p| p.exists()) else {
        return Ok((done, calls));
    };
    let file = std::fs::File::open(path).map_err(BatchError::output(path))?;
    for line in std::io::BufReader::new(file).lines() {
        let line = line.map_err(BatchError::output(path))?;
        // A line cut short by a kill is simply not done.
        let Ok(Outcome {
            analysis: Some(a),
            file,
            ..
        }) = serde_json::from_str::<Outcome>(&line)
        else {
            continue;
        };
        if a.playbook_revision == revision
            && let Some(h) = &a.content_hash
            && done.insert(h.clone())
        {
            calls.push(report::Call {
                file,
                analysis: slim(a),
            });
        }
    }
    Ok((done, calls))
}

/// An Analysis without its word timings, the bulk of it, for the report.
pub(super) fn slim(mut a: Analysis) -> Analysis {
    for t in &mut a.turns {
        t.words = Vec::new();
    }
    a
}

/// Opens an output for appending (a resumed run adds to it), or afresh with `--force`.
pub(super) fn open_output(path: &Path, fresh: bool) -> Result<(std::fs::File, bool), BatchError> {
    let err = BatchError::output(path);
    let had_rows = !fresh && std::fs::metadata(path).is_ok_and(|m| m.len() > 0);
    let file = std::fs::OpenOptions::new()
        .create(true)
        .append(!fresh)
        .write(true)
        .truncate(fresh)
        .open(path)
        .map_err(err)?;
    Ok((file, had_rows))
}

/// The CSV output: one row per call.
pub(super) struct CsvOut {
    writer: csv::Writer<std::fs::File>,
    path: PathBuf,
    dimensions: Vec<String>,
}

impl CsvOut {
    pub(super) fn open(path: &Path, fresh: bool, playbook: &Playbook) -> Result<Self, BatchError> {
        let (file, had_rows) = open_output(path, fresh)?;
        let mut out = Self {
            writer: csv::Writer::from_writer(file),
            path: path.into(),
            dimensions: playbook.dimensions.iter().map(|d| d.id.clone()).collect(),
        };
        if !had_rows {
            let mut header: Vec<String> = [
                "file",
                "call_id",
                "rep_id",
                "duration_s",
                "language",
                "coverage_percent",
                "competitor_mentions",
                "peak_frustration",
                "score",
                "passed",
            ]
            .map(String::from)
            .to_vec();
            header.extend(out.dimensions.clone());
            header.push("error".into());
            out.write(&header)?;
        }
        Ok(out)
    }

    fn write(&mut self, row: &[String]) -> Result<(), BatchError> {
        let err = |e: String| BatchError::Output {
            path: self.path.clone(),
            source: e.into(),
        };
        self.writer
            .write_record(row)
            .map_err(|e| err(e.to_string()))?;
        self.writer.flush().map_err(|e| err(e.to_string()))
    }

    pub(super) fn row(&mut self, o: &Outcome) -> Result<(), BatchError> {
        let mut row = vec![o.file.clone(), o.call_id.clone()];
        let n = |v: Option<f64>| v.map_or(String::new(), |v| format!("{v:.1}"));
        match &o.analysis {
            Some(a) => {
                let mut mentions: BTreeMap<&str, usize> = BTreeMap::new();
                for m in &a.competitor_mentions {
                    *mentions.entry(&m.competitor).or_default() += 1;
                }
                row.extend([
                    a.rep_id.clone().unwrap_or_default(),
                    format!("{:.1}", a.duration_ms as f64 / 1000.0),
                    a.language.clone(),
                    n(coverage(a)),
                    mentions
                        .iter()
                        .map(|(c, k)| format!("{c}:{k}"))
                        .collect::<Vec<_>>()
                        .join(";"),
                    peak_frustration(a).map_or(String::new(), |p| format!("{p:.2}")),
                    n(a.scorecard.overall()),
                    a.scorecard
                        .passed()
                        .map_or(String::new(), |p| if p { "pass" } else { "fail" }.into()),
                ]);
                for id in &self.dimensions {
                    let score = a.scorecard.dimensions.iter().find(|d| &d.id == id);
                    row.push(n(score.and_then(|d| d.score)));
                }
                row.push(String::new());
            }
            None => {
                row.extend(std::iter::repeat_n(
                    String::new(),
                    8 + self.dimensions.len(),
                ));
                row.push(o.error.clone().unwrap_or_default());
            }
        }
        self.write(&row)
    }
}

/// Key-question coverage, when the call had questions to cover and speech to cover them in.
pub(super) fn coverage(a: &Analysis) -> Option<f64> {
    (!a.key_questions.questions.is_empty() && !a.turns.is_empty())
        .then_some(a.key_questions.percent)
}

fn peak_frustration(a: &Analysis) -> Option<f32> {
    let customer = a.emotion.role(Role::Customer)?;
    customer.peak_frustration.as_ref().map(|m| m.score)
}
