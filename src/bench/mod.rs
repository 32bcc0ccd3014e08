//! `callqa bench asr`: callqa and faster-whisper side by side, in one run, on the same files.
//! `callqa bench throughput`: audio hours scored per wall-clock hour by `analyze --jobs N`.
//! `callqa bench stream` (in `stream`): alert latency and memory of concurrent live calls.
//! `callqa bench all`: the three, one after the other.
//!
//! The peer runs in its own Python virtual environment (benches/peer/setup.sh), with the same
//! Whisper base weights (CTranslate2, int8), the same beam size, VAD on and the same thread
//! count. Both load their model once, outside the timings; each file's wall time covers decode,
//! resample, VAD and transcription.

pub mod stream;

use crate::asr::Language;
use crate::audio::StreamDecoder;
use crate::eval::error::bail;
use crate::eval::vcon::vcon_reference;
use crate::eval::{Context, Result};
use crate::eval::{ErrorCount, word_errors};
use crate::transcript::{CallOptions, Engines};
use std::ffi::OsString;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Instant;

/// One engine's result on one file.
#[derive(Debug, Clone)]
pub struct Run {
    pub seconds: f64,
    pub text: String,
}

pub struct PeerConfig {
    pub python: PathBuf,
    pub runner: PathBuf,
    pub model: PathBuf,
    pub threads: usize,
}

/// Runs faster-whisper over all files in one process (model loaded once).
pub fn run_peer(peer: &PeerConfig, files: &[PathBuf], beam_size: usize) -> Result<Vec<Run>> {
    let out = Command::new(&peer.python)
        .arg(&peer.runner)
        .args(["--model"])
        .arg(&peer.model)
        .args([
            "--threads",
            &peer.threads.to_string(),
            "--beam-size",
            &beam_size.to_string(),
        ])
        .args(["--language", "en", "--vad"])
        .args(files)
        .output()
        .with_context(|| format!("cannot run {}", peer.python.display()))?;
    if !out.status.success() {
        bail!(
            "faster-whisper failed: {}",
            String::from_utf8_lossy(&out.stderr).trim()
        );
    }
    let stdout = String::from_utf8_lossy(&out.stdout);
    let runs: Vec<Run> = stdout
        .lines()
        .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
        .map(|v| Run {
            seconds: v["seconds"].as_f64().unwrap_or(0.0),
            text: v["text"].as_str().unwrap_or("").to_owned(),
        })
        .collect();
    if runs.len() != files.len() {
        bail!(
            "faster-whisper returned {} results for {} files",
            runs.len(),
            files.len()
        );
    }
    Ok(runs)
}

pub fn run_callqa(
    engines: &Engines,
    files: &[PathBuf],
    beam_size: usize,
) -> Result<Vec<(Run, f64)>> {
    let opts = CallOptions {
        language: Language::En,
        beam_size,
        ..CallOptions::default()
    };
    files
        .iter()
        .map(|f| {
            let started = Instant::now();
            let decoder = StreamDecoder::from_file(f).with_context(|| f.display().to_string())?;
            let t = engines
                .transcribe(decoder, &opts)
                .with_context(|| f.display().to_string())?;
            let text = t
                .turns
                .iter()
                .map(|t| t.text.as_str())
                .collect::<Vec<_>>()
                .join(" ");
            Ok((
                Run {
                    seconds: started.elapsed().as_secs_f64(),
                    text,
                },
                t.duration_ms as f64 / 1000.0,
            ))
        })
        .collect()
}

/// Prints the side-by-side table and totals.
pub fn report(files: &[PathBuf], ours: &[(Run, f64)], peer: &[Run]) -> Result<()> {
    println!(
        "{:<42} {:>7} {:>9} {:>9} {:>7} {:>8} {:>8}",
        "file", "audio s", "callqa s", "peer s", "ratio", "WER cqa", "WER peer"
    );
    let (mut audio, mut t_ours, mut t_peer) = (0.0, 0.0, 0.0);
    let (mut e_ours, mut e_peer) = (ErrorCount::default(), ErrorCount::default());
    for ((file, (o, secs)), p) in files.iter().zip(ours).zip(peer) {
        let vcon = file.with_extension("vcon.json");
        let reference = vcon_reference(&vcon)?;
        let (wo, wp) = (
            word_errors(&reference, &o.text),
            word_errors(&reference, &p.text),
        );
        let name = file
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        println!(
            "{:<42} {:>7.1} {:>9.2} {:>9.2} {:>7.2} {:>7.1}% {:>7.1}%",
            name,
            secs,
            o.seconds,
            p.seconds,
            o.seconds / p.seconds.max(1e-9),
            wo.rate() * 100.0,
            wp.rate() * 100.0
        );
        audio += secs;
        t_ours += o.seconds;
        t_peer += p.seconds;
        e_ours = e_ours + wo;
        e_peer = e_peer + wp;
    }
    println!(
        "total: {audio:.1} s audio; callqa {t_ours:.2} s (RTF {:.3}, WER {:.2}%), faster-whisper {t_peer:.2} s (RTF {:.3}, WER {:.2}%); ratio callqa/peer {:.2}",
        t_ours / audio,
        e_ours.rate() * 100.0,
        t_peer / audio,
        e_peer.rate() * 100.0,
        t_ours / t_peer.max(1e-9)
    );
    Ok(())
}

/// What `analyze --jobs N` did over a set of recordings.
pub struct Throughput {
    pub calls: usize,
    pub audio_s: f64,
    pub wall_s: f64,
}

impl Throughput {
    /// Audio hours per wall-clock hour.
    pub fn audio_hours_per_hour(&self) -> f64 {
        self.audio_s / self.wall_s.max(1e-9)
    }
}

/// Runs `callqa analyze` over `files` as a QA lead would (in a child process, with a store and
/// outputs of its own, `--force` so that nothing is skipped). The wall time includes start-up
/// and loading the models.
/// `model_options`: the options that choose the models (`--model-dir`, `--whisper-model`, …).
pub fn throughput(
    model_options: &[OsString],
    files: &[PathBuf],
    playbook: &Path,
    jobs: usize,
    call_options: &[&str],
) -> Result<Throughput> {
    let dir = std::env::temp_dir().join(format!("callqa-bench-batch-{}", std::process::id()));
    std::fs::create_dir_all(&dir).context(dir.display())?;
    let csv = dir.join("calls.csv");
    let started = Instant::now();
    let status = Command::new(std::env::current_exe()?)
        .arg("analyze")
        .args(model_options)
        .args(files)
        .arg("--playbook")
        .arg(playbook)
        .args(["--language", "en", "--jobs", &jobs.to_string(), "--force"])
        .args(call_options)
        .arg("--csv")
        .arg(&csv)
        .arg("--store")
        .arg(dir.join("store.db"))
        .env("CALLQA_LOG", "warn")
        .stdout(std::process::Stdio::null())
        .status()
        .context("cannot run callqa analyze")?;
    let wall_s = started.elapsed().as_secs_f64();
    let rows = read_durations(&csv);
    let _ = std::fs::remove_dir_all(&dir);
    if !status.success() {
        bail!("callqa analyze failed ({status})");
    }
    let durations = rows?;
    Ok(Throughput {
        calls: durations.len(),
        audio_s: durations.iter().sum(),
        wall_s,
    })
}

/// The `duration_s` column of a batch CSV.
fn read_durations(csv: &Path) -> Result<Vec<f64>> {
    let mut reader = csv::Reader::from_path(csv).with_context(|| csv.display().to_string())?;
    let column = reader
        .headers()
        .context(csv.display())?
        .iter()
        .position(|h| h == "duration_s")
        .context("no duration_s column")?;
    reader
        .records()
        .map(|r| {
            let r = r.context(csv.display())?;
            r.get(column)
                .unwrap_or("0")
                .parse::<f64>()
                .context("duration_s")
        })
        .collect()
}
