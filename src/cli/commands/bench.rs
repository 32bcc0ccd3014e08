//! `callqa bench …`: callqa measured against a peer, side by side in one run.

use crate::cli::args::{BenchCommand, BenchWhat, ModelArgs, PeerArgs, WhisperArgs};
use anyhow::{Context, Result};
use callqa::bench::{self, PeerConfig};
use callqa::service::engines;
use std::ffi::OsString;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

pub fn run(c: BenchCommand) -> Result<ExitCode> {
    let bench = Bench {
        models: c.models,
        whisper: c.whisper,
    };
    let cores = engines::cores();
    match c.what {
        BenchWhat::Stream {
            clients,
            pace,
            chunk_ms,
            eval,
        } => bench.stream(&eval, clients, pace, chunk_ms)?,
        BenchWhat::Asr {
            files,
            beam_size,
            peer,
        } => bench.asr(files, beam_size, &peer)?,
        BenchWhat::Throughput(b) => {
            bench.throughput(b.files, b.jobs.unwrap_or(cores), &b.playbook)?
        }
        BenchWhat::Speakers(b) => bench.speakers(b.files, b.jobs.unwrap_or(cores), &b.playbook)?,
        BenchWhat::All { peer, eval } => {
            println!("== batch: callqa against faster-whisper");
            bench.asr(Vec::new(), 1, &peer)?;
            println!("\n== throughput: analyze --jobs {cores}");
            bench.throughput(Vec::new(), cores, Path::new("examples/playbook.toml"))?;
            println!("\n== speaker separation: analyze --jobs {cores}, mono calls");
            bench.speakers(Vec::new(), cores, Path::new("examples/playbook.toml"))?;
            println!("\n== streaming latency and memory");
            bench.stream(&eval, vec![1, 2, 4], 1.0, 100)?;
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// What every scenario needs: the model choice and the Whisper pool's shape.
struct Bench {
    models: ModelArgs,
    whisper: WhisperArgs,
}

impl Bench {
    /// The options that choose the models, for the callqa processes a bench starts.
    fn forwarded(&self) -> Vec<OsString> {
        let mut out = self.models.forwarded();
        out.extend(self.whisper.forwarded());
        out
    }

    fn stream(&self, eval: &Path, clients: Vec<usize>, pace: f64, chunk_ms: u64) -> Result<()> {
        let opts = bench::stream::Options {
            clients,
            pace,
            chunk_ms,
        };
        Ok(bench::stream::run(&self.forwarded(), eval, &opts)?)
    }

    fn asr(&self, files: Vec<PathBuf>, beam_size: usize, peer: &PeerArgs) -> Result<()> {
        let files = or_default_files(files)?;
        let pool = self.whisper.pool();
        let threads = pool.states * pool.threads_per_state;
        let peer = PeerConfig {
            python: peer.peer_venv.join("bin/python"),
            runner: PathBuf::from(env!("CARGO_MANIFEST_DIR"))
                .join("benches/peer/faster_whisper_run.py"),
            model: peer.peer_model.clone(),
            threads,
        };
        eprintln!("faster-whisper: int8, beam {beam_size}, VAD on, {threads} threads");
        let theirs = bench::run_peer(&peer, &files, beam_size)?;
        eprintln!(
            "callqa: {} state(s) x {} thread(s), beam {beam_size}",
            pool.states, pool.threads_per_state
        );
        let engines = engines::transcription(&self.models.dir(), &self.whisper.choice(), &pool)?;
        let ours = bench::run_callqa(&engines, &files, beam_size)?;
        Ok(bench::report(&files, &ours, &theirs)?)
    }

    /// The batch's wall time with mono calls split by speaker and without.
    fn speakers(&self, files: Vec<PathBuf>, jobs: usize, playbook: &Path) -> Result<()> {
        let files = or_default_files(files)?;
        let mut wall = Vec::new();
        for (name, options) in [
            ("not split (--max-speakers 0)", &["--max-speakers", "0"][..]),
            ("split by speaker (default)", &[][..]),
        ] {
            let t = bench::throughput(&self.forwarded(), &files, playbook, jobs, options)?;
            println!(
                "{name:<30} {} calls, {:.1} min of audio in {:.1} s",
                t.calls,
                t.audio_s / 60.0,
                t.wall_s
            );
            wall.push(t.wall_s);
        }
        println!(
            "speaker separation adds {:.1} % to the batch's wall time (target: at most 15 %)",
            100.0 * (wall[1] / wall[0] - 1.0)
        );
        Ok(())
    }

    fn throughput(&self, files: Vec<PathBuf>, jobs: usize, playbook: &Path) -> Result<()> {
        let files = or_default_files(files)?;
        let t = bench::throughput(&self.forwarded(), &files, playbook, jobs, &[])?;
        println!(
            "{} calls, {:.1} min of audio scored in {:.1} s with --jobs {jobs}: {:.0} audio hours per hour (RTF {:.3})",
            t.calls,
            t.audio_s / 60.0,
            t.wall_s,
            t.audio_hours_per_hour(),
            t.wall_s / t.audio_s.max(1e-9)
        );
        Ok(())
    }
}

/// The files given, or the shared tadhack calls.
fn or_default_files(files: Vec<PathBuf>) -> Result<Vec<PathBuf>> {
    if !files.is_empty() {
        return Ok(files);
    }
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../shared/eval/transcripts/en_vcon_tadhack_synthetic");
    let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)
        .with_context(|| format!("{}", dir.display()))?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|e| e == "mp3"))
        .collect();
    files.sort();
    Ok(files)
}
