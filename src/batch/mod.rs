//! Batch scoring for QA leads: every recording of a folder scored against a playbook, several at
//! once, with JSONL and CSV outputs written call by call, so that an interrupted run resumes
//! where it stopped; a progress bar, and a summary at the end. One bad file is reported and the
//! batch goes on.

pub mod inputs;
pub mod report;

use crate::analysis::playbook::Playbook;
use crate::analysis::{Analysis, CallInfo};
use crate::asr::Language;
use crate::audio::StreamDecoder;
use crate::audio::channels::Role;
use crate::audio::mask::AudioMask;
use crate::engines::AnalyserPool;
use crate::pipeline::Engines;
use crate::store::{Store, StoreError};
use indicatif::{ProgressBar, ProgressStyle};
use inputs::CallMeta;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use std::collections::{BTreeMap, HashSet};
use std::io::{BufRead, IsTerminal, Write};
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::time::{Duration, Instant};

#[derive(Debug, thiserror::Error)]
pub enum BatchError {
    #[error("{0}: {1}")]
    Output(PathBuf, String),
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// One call's result: a line of the JSONL output.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Outcome {
    pub file: String,
    pub call_id: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub analysis: Option<Analysis>,
}

/// The stereo roles for "the agent is on channel N".
pub fn channel_roles(agent_channel: Option<usize>) -> Result<Vec<Role>, String> {
    match agent_channel {
        None => Ok(Vec::new()),
        Some(0) => Ok(vec![Role::Agent, Role::Customer]),
        Some(1) => Ok(vec![Role::Customer, Role::Agent]),
        Some(n) => Err(format!(
            "agent channel {n}: a stereo call has channels 0 and 1"
        )),
    }
}

/// The sha256 of a file: the call's content hash, which says whether it was already scored.
pub fn file_hash(path: &Path) -> std::io::Result<String> {
    let mut hasher = Sha256::new();
    std::io::copy(&mut std::fs::File::open(path)?, &mut hasher)?;
    Ok(hex::encode(hasher.finalize()))
}

/// Transcribes and analyses one recording.
pub fn analyse_file(
    engines: &Engines,
    analysers: &AnalyserPool,
    playbook: &Playbook,
    language: Language,
    path: &Path,
    meta: &CallMeta,
    content_hash: String,
) -> Result<Analysis, String> {
    let opts = playbook.call_options(language, channel_roles(meta.agent_channel)?);
    let decoder = StreamDecoder::from_file(path).map_err(|e| e.to_string())?;
    let started = Instant::now();
    let transcript = engines
        .transcribe(decoder, &opts)
        .map_err(|e| e.to_string())?;
    let call_id = meta.call_id.clone().unwrap_or_default();
    let info = CallInfo {
        rep_id: meta.rep_id.clone(),
        customer_id: meta.customer_id.clone(),
        call_date: meta
            .call_date
            .unwrap_or_else(|| chrono::Local::now().date_naive()),
        content_hash: Some(content_hash),
        ..CallInfo::of_transcript(call_id, &transcript, started.elapsed().as_millis() as u64)
    };
    analysers
        .with(|a| a.run(playbook, info, transcript.turns))
        .map_err(|e| e.to_string())
}

/// How a batch runs and where it writes.
pub struct Options {
    pub jobs: usize,
    /// Score again calls that already have a result.
    pub force: bool,
    pub jsonl: Option<PathBuf>,
    pub csv: Option<PathBuf>,
    /// The HTML report, over every call of the batch (with `jsonl`, those of earlier,
    /// interrupted runs too).
    pub report: Option<PathBuf>,
    /// A folder for a copy of each recording with its redacted PII masked (`CALL_ID.wav`).
    pub redacted_audio: Option<(PathBuf, AudioMask)>,
}

/// Writes `DIR/CALL_ID.wav`: the recording with the spans the analysis redacted masked.
pub fn write_redacted_audio(
    recording: &Path,
    analysis: &Analysis,
    (dir, mask): &(PathBuf, AudioMask),
) -> Result<PathBuf, BatchError> {
    let out = dir.join(format!("{}.wav", analysis.call_id));
    let fail = |e: String| BatchError::Output(out.clone(), e);
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
fn already_done(
    jsonl: Option<&Path>,
    revision: &str,
) -> Result<(HashSet<String>, Vec<report::Call>), BatchError> {
    let (mut done, mut calls) = (HashSet::new(), Vec::new());
    let Some(path) = jsonl.filter(|p| p.exists()) else {
        return Ok((done, calls));
    };
    let file =
        std::fs::File::open(path).map_err(|e| BatchError::Output(path.into(), e.to_string()))?;
    for line in std::io::BufReader::new(file).lines() {
        let line = line.map_err(|e| BatchError::Output(path.into(), e.to_string()))?;
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
fn slim(mut a: Analysis) -> Analysis {
    for t in &mut a.turns {
        t.words = Vec::new();
    }
    a
}

/// Opens an output for appending (a resumed run adds to it), or afresh with `--force`.
fn open_output(path: &Path, fresh: bool) -> Result<(std::fs::File, bool), BatchError> {
    let err = |e: std::io::Error| BatchError::Output(path.into(), e.to_string());
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
struct CsvOut {
    writer: csv::Writer<std::fs::File>,
    path: PathBuf,
    dimensions: Vec<String>,
}

impl CsvOut {
    fn open(path: &Path, fresh: bool, playbook: &Playbook) -> Result<Self, BatchError> {
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
        let err = |e: String| BatchError::Output(self.path.clone(), e);
        self.writer
            .write_record(row)
            .map_err(|e| err(e.to_string()))?;
        self.writer.flush().map_err(|e| err(e.to_string()))
    }

    fn row(&mut self, o: &Outcome) -> Result<(), BatchError> {
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
fn coverage(a: &Analysis) -> Option<f64> {
    (!a.key_questions.questions.is_empty() && !a.turns.is_empty())
        .then_some(a.key_questions.percent)
}

fn peak_frustration(a: &Analysis) -> Option<f32> {
    let customer = a.emotion.role(Role::Customer)?;
    customer.peak_frustration.as_ref().map(|m| m.score)
}

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
    fn add(&mut self, a: &Analysis) {
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
struct Progress {
    bar: Option<ProgressBar>,
    total: usize,
    done: usize,
    audio_ms: u64,
    started: Instant,
}

impl Progress {
    fn new(total: usize) -> Self {
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

    fn call_done(&mut self, o: &Outcome) {
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

    fn finish(&self) {
        if let Some(bar) = &self.bar {
            bar.finish_and_clear();
        }
    }
}

/// Scores one recording (its path, metadata and content hash): here, or by a running service.
pub type Analyse<'a> = dyn Fn(&Path, &CallMeta, String) -> Result<Analysis, String> + Sync + 'a;

/// Scores `files` (with their metadata) with `opts.jobs` calls at once. Each finished call is
/// written to the outputs (and the store) at once, in the order calls finish.
pub fn run(
    analyse: &Analyse<'_>,
    playbook: &Playbook,
    files: Vec<(PathBuf, CallMeta)>,
    opts: &Options,
    store: Option<(&dyn Store, &str)>,
) -> Result<Summary, BatchError> {
    let started = Instant::now();
    let mut summary = Summary::default();
    let (mut done, mut calls) = if opts.force {
        Default::default()
    } else {
        already_done(opts.jsonl.as_deref(), &playbook.revision)?
    };
    if opts.report.is_none() {
        calls.clear();
    }
    let mut jsonl = opts
        .jsonl
        .as_deref()
        .map(|p| open_output(p, opts.force).map(|(f, _)| (f, p.to_owned())))
        .transpose()?;
    let mut csv = opts
        .csv
        .as_deref()
        .map(|p| CsvOut::open(p, opts.force, playbook))
        .transpose()?;

    // Which calls are left: a call whose audio was already scored under this revision (in
    // the output or the store) is skipped.
    let mut todo = Vec::new();
    let mut early = Vec::new();
    for (path, meta) in files {
        let call_id = meta.call_id.clone().unwrap_or_default();
        let hash = match file_hash(&path) {
            Ok(h) => h,
            Err(e) => {
                early.push(Outcome {
                    file: path.display().to_string(),
                    call_id,
                    error: Some(format!("cannot read: {e}")),
                    analysis: None,
                });
                continue;
            }
        };
        let in_store = match (&store, opts.force) {
            (Some((s, tenant)), false) => s
                .identity(tenant, &call_id)?
                .is_some_and(|(h, rev)| h.as_deref() == Some(&hash) && rev == playbook.revision),
            _ => false,
        };
        if !done.insert(hash.clone()) || in_store {
            summary.skipped += 1;
            continue;
        }
        todo.push((path, meta, hash));
    }

    let mut progress = Progress::new(todo.len() + early.len());
    let mut record = |o: Outcome, summary: &mut Summary| -> Result<(), BatchError> {
        if let Some((file, path)) = &mut jsonl {
            let line = serde_json::to_string(&o)
                .map_err(|e| BatchError::Output(path.clone(), e.to_string()))?;
            writeln!(file, "{line}")
                .and_then(|_| file.flush())
                .map_err(|e| BatchError::Output(path.clone(), e.to_string()))?;
        }
        if let Some(csv) = &mut csv {
            csv.row(&o)?;
        }
        match &o.analysis {
            Some(a) => {
                if let Some(audio) = &opts.redacted_audio {
                    write_redacted_audio(Path::new(&o.file), a, audio)?;
                }
                if let Some((s, tenant)) = &store {
                    s.record(tenant, a, playbook, chrono::Utc::now())?;
                }
                summary.add(a);
                if opts.report.is_some() {
                    calls.push(report::Call {
                        file: o.file.clone(),
                        analysis: slim(a.clone()),
                    });
                }
            }
            None => summary
                .failed
                .push((o.file.clone(), o.error.clone().unwrap_or_default())),
        }
        progress.call_done(&o);
        Ok(())
    };
    for o in early {
        record(o, &mut summary)?;
    }

    let queue = Mutex::new(todo.into_iter());
    let (tx, rx) = std::sync::mpsc::channel::<Outcome>();
    let written = std::thread::scope(|scope| -> Result<(), BatchError> {
        for _ in 0..opts.jobs.max(1) {
            let (queue, tx) = (&queue, tx.clone());
            scope.spawn(move || {
                loop {
                    let next = queue.lock().ok().and_then(|mut q| q.next());
                    let Some((path, meta, hash)) = next else {
                        return;
                    };
                    let result = analyse(&path, &meta, hash);
                    let (analysis, error) = match result {
                        Ok(a) => (Some(a), None),
                        Err(e) => (None, Some(e)),
                    };
                    let outcome = Outcome {
                        file: path.display().to_string(),
                        call_id: meta.call_id.clone().unwrap_or_default(),
                        error,
                        analysis,
                    };
                    if tx.send(outcome).is_err() {
                        return; // the writer stopped on an error
                    }
                }
            });
        }
        drop(tx);
        for outcome in rx.iter() {
            if let Err(e) = record(outcome, &mut summary) {
                // Stop the workers: nothing could be written.
                if let Ok(mut q) = queue.lock() {
                    q.by_ref().for_each(drop);
                }
                return Err(e);
            }
        }
        Ok(())
    });
    progress.finish();
    written?;
    if let Some(path) = &opts.report {
        std::fs::write(path, report::html(&calls, &summary.failed))
            .map_err(|e| BatchError::Output(path.clone(), e.to_string()))?;
    }
    summary.wall = started.elapsed();
    Ok(summary)
}

/// Scores recordings on a running `callqa serve` through `AnalyzeCall`, retrying while it is
/// busy or still loading.
pub struct Remote {
    runtime: tokio::runtime::Runtime,
    client: crate::proto::call_qa_client::CallQaClient<tonic::transport::Channel>,
    api_key: Option<String>,
    /// The playbook's name on the service.
    playbook: String,
}

impl Remote {
    pub fn connect(addr: &str, api_key: Option<String>, playbook: String) -> Result<Self, String> {
        let runtime = tokio::runtime::Runtime::new().map_err(|e| e.to_string())?;
        let url = if addr.contains("://") {
            addr.to_owned()
        } else {
            format!("http://{addr}")
        };
        let channel = runtime
            .block_on(
                tonic::transport::Endpoint::from_shared(url)
                    .map_err(|e| e.to_string())?
                    .connect(),
            )
            .map_err(|e| format!("cannot connect to {addr}: {e}"))?;
        let client = crate::proto::call_qa_client::CallQaClient::new(channel)
            .max_decoding_message_size(crate::server::MAX_MESSAGE_BYTES)
            .max_encoding_message_size(crate::server::MAX_MESSAGE_BYTES);
        Ok(Self {
            runtime,
            client,
            api_key,
            playbook,
        })
    }

    pub fn analyse(
        &self,
        language: Language,
        revision: &str,
        path: &Path,
        meta: &CallMeta,
    ) -> Result<Analysis, String> {
        use crate::proto;
        let roles = channel_roles(meta.agent_channel)?;
        let request = proto::AnalyzeCallRequest {
            audio: std::fs::read(path).map_err(|e| format!("cannot read: {e}"))?,
            call_id: meta.call_id.clone().unwrap_or_default(),
            rep_id: meta.rep_id.clone().unwrap_or_default(),
            customer_id: meta.customer_id.clone().unwrap_or_default(),
            channel_roles: roles
                .into_iter()
                .map(crate::server::convert::role)
                .collect(),
            language: match language {
                Language::Auto => proto::Language::Auto,
                Language::Zh => proto::Language::Zh,
                Language::En => proto::Language::En,
            } as i32,
            playbook: self.playbook.clone(),
            call_date: meta.call_date.map(|d| d.to_string()).unwrap_or_default(),
            ..Default::default()
        };
        let mut busy = Duration::from_millis(200);
        let reply = loop {
            let mut req = tonic::Request::new(request.clone());
            if let Some(key) = &self.api_key {
                let value = format!("Bearer {key}")
                    .parse()
                    .map_err(|_| "the API key is not a valid header value".to_owned())?;
                req.metadata_mut().insert("authorization", value);
            }
            match self.runtime.block_on(self.client.clone().analyze_call(req)) {
                Ok(r) => break r.into_inner(),
                // Busy or loading: wait, up to a minute between tries.
                Err(s)
                    if matches!(
                        s.code(),
                        tonic::Code::ResourceExhausted | tonic::Code::Unavailable
                    ) && busy < Duration::from_secs(60) =>
                {
                    std::thread::sleep(busy);
                    busy *= 2;
                }
                Err(s) => return Err(format!("{:?}: {}", s.code(), s.message())),
            }
        };
        let analysis = crate::server::convert::analysis_from(reply).map_err(|e| e.to_string())?;
        if analysis.playbook_revision != revision {
            return Err(format!(
                "the service's playbook {:?} is revision {}, the local file {revision}",
                self.playbook, analysis.playbook_revision
            ));
        }
        Ok(analysis)
    }
}
