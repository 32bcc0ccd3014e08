//! The batch's outputs: JSON lines and CSV rows written call by call (so that an interrupted run
//! resumes where it stopped), and the redacted copies of the recordings.

use super::{BatchError, Outcome};
use crate::analysis::Analysis;
use crate::analysis::playbook::Playbook;
use crate::audio::StreamDecoder;
use crate::audio::channels::Role;
use crate::audio::mask::AudioMask;
use std::collections::{BTreeMap, HashMap};
use std::io::{BufRead, Write};
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

/// The calls of the JSONL output already scored under this playbook revision, by content hash.
/// A line cut short by a kill, an error row, or a call of another revision does not count.
pub(super) fn already_done(
    jsonl: Option<&Path>,
    revision: &str,
) -> Result<HashMap<String, Outcome>, BatchError> {
    let mut done = HashMap::new();
    let Some(path) = jsonl.filter(|p| p.exists()) else {
        return Ok(done);
    };
    let file = std::fs::File::open(path).map_err(BatchError::output(path))?;
    for line in std::io::BufReader::new(file).lines() {
        let line = line.map_err(BatchError::output(path))?;
        let Ok(o) = serde_json::from_str::<Outcome>(&line) else {
            continue;
        };
        if let Some(a) = &o.analysis
            && a.playbook_revision == revision
            && let Some(h) = a.content_hash.clone()
        {
            done.entry(h).or_insert(o);
        }
    }
    Ok(done)
}

/// An Analysis without its word timings, the bulk of it, for the report.
pub(super) fn slim(mut a: Analysis) -> Analysis {
    for t in &mut a.turns {
        t.words = Vec::new();
    }
    a
}

/// The JSONL output: one line per call, the whole batch in every run. The calls of earlier runs
/// are written first (to a new file that replaces the old one at once, so a kill loses
/// nothing), then each call as it finishes. A call that failed before and is tried again has
/// one line, its new one.
pub(super) struct JsonlOut {
    file: std::fs::File,
    path: PathBuf,
}

impl JsonlOut {
    pub(super) fn create(path: &Path, earlier: &[Outcome]) -> Result<Self, BatchError> {
        let staged = path.with_extension("jsonl.partial");
        {
            let file = std::fs::File::create(&staged).map_err(BatchError::output(path))?;
            let mut w = std::io::BufWriter::new(file);
            for o in earlier {
                write_line(&mut w, o, path)?;
            }
            w.flush().map_err(BatchError::output(path))?;
        }
        std::fs::rename(&staged, path).map_err(BatchError::output(path))?;
        let file = std::fs::OpenOptions::new()
            .append(true)
            .open(path)
            .map_err(BatchError::output(path))?;
        Ok(Self {
            file,
            path: path.to_owned(),
        })
    }

    pub(super) fn write(&mut self, o: &Outcome) -> Result<(), BatchError> {
        write_line(&mut self.file, o, &self.path)?;
        self.file.flush().map_err(BatchError::output(&self.path))
    }
}

fn write_line(w: &mut impl Write, o: &Outcome, path: &Path) -> Result<(), BatchError> {
    let line = serde_json::to_string(o).map_err(|e| BatchError::Output {
        path: path.to_owned(),
        source: Box::new(e),
    })?;
    writeln!(w, "{line}").map_err(BatchError::output(path))
}

/// The CSV output: one row per call of the batch, earlier runs' calls included, written afresh
/// each run. It starts with a byte-order mark, so that Excel reads Chinese names right.
pub(super) struct CsvOut {
    writer: csv::Writer<std::fs::File>,
    path: PathBuf,
    dimensions: Vec<String>,
}

impl CsvOut {
    pub(super) fn create(path: &Path, playbook: &Playbook) -> Result<Self, BatchError> {
        let mut file = std::fs::File::create(path).map_err(BatchError::output(path))?;
        file.write_all("\u{feff}".as_bytes())
            .map_err(BatchError::output(path))?;
        let mut out = Self {
            writer: csv::Writer::from_writer(file),
            path: path.into(),
            dimensions: playbook.dimensions.iter().map(|d| d.id.clone()).collect(),
        };
        {
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
        let overall = o.analysis.as_ref().map(|a| &a.overall);
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
                    n(overall.and_then(|o| o.score)),
                    overall
                        .and_then(|o| o.passed)
                        .map_or(String::new(), |p| if p { "pass" } else { "fail" }.into()),
                ]);
                for id in &self.dimensions {
                    let score = a.scorecard.dimensions.iter().find(|d| &d.id == id);
                    row.push(n(score.and_then(|d| d.score)));
                }
                row.push(String::new());
            }
            None => {
                row.push(o.rep_id.clone().unwrap_or_default());
                row.extend(std::iter::repeat_n(
                    String::new(),
                    7 + self.dimensions.len(),
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
