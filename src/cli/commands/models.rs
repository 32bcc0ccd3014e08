//! `callqa models install | list`.

use crate::cli::args::{ModelsAction, ModelsCommand};
use anyhow::{Result, bail};
use callqa::asr::pool::PoolConfig;
use callqa::models::{self, FileState, InstallOutcome, ModelDir};
use callqa::service::engines::{self, WhisperChoice};
use callqa::text::embed::Encoder;
use std::process::ExitCode;

pub fn run(c: ModelsCommand) -> Result<ExitCode> {
    let dir = c.models.dir();
    match c.action {
        ModelsAction::Install { python } => {
            let started = std::time::Instant::now();
            let report = models::install(&dir, &python, &mut |line| eprintln!("{line}"))?;
            for (id, outcome) in report {
                let what = match outcome {
                    InstallOutcome::AlreadyInstalled => "already installed",
                    InstallOutcome::Installed => "installed",
                };
                println!("{id}: {what}");
            }
            println!(
                "models are in {} ({:.1} s)",
                dir.path.display(),
                started.elapsed().as_secs_f64()
            );
            Ok(ExitCode::SUCCESS)
        }
        ModelsAction::List => list(&dir),
    }
}

/// Tries to open a model with the engine that will use it.
fn loads(dir: &ModelDir, id: &str) -> Result<()> {
    match id {
        id if id.starts_with("whisper-") => {
            let one = PoolConfig {
                states: 1,
                threads_per_state: 1,
                queue: 1,
                dtw: false,
            };
            let choice = WhisperChoice::parse(id.trim_start_matches("whisper-"));
            engines::whisper(dir, &choice, &one).map(drop)?
        }
        "sentence-encoder" => engines::sentence_encoder(dir, Encoder::Use).map(drop)?,
        "e5-small" => engines::sentence_encoder(dir, Encoder::E5).map(drop)?,
        "silero-vad" => engines::vad(dir).map(drop)?,
        "speaker-segmentation" | "speaker-encoder" => engines::speaker_models(dir).map(drop)?,
        "onnxruntime" => callqa::onnx::environment(&dir.onnxruntime_lib()).map(drop)?,
        other => bail!("unknown model {other}"),
    }
    Ok(())
}

fn list(dir: &ModelDir) -> Result<ExitCode> {
    let manifest = models::manifest();
    let mut all_ok = true;
    for spec in &manifest.model {
        println!("{}: {}", spec.id, spec.description);
        let mut seen = Vec::new();
        for input in &spec.inputs {
            if seen.contains(&&input.package) {
                continue;
            }
            seen.push(&input.package);
            let pkg = manifest
                .package(&input.package)
                .expect("checked by a unit test");
            println!(
                "  from      {}=={} (licence: {})",
                pkg.name, pkg.version, pkg.licence
            );
        }
        let status = models::file_status(dir, spec)?;
        let installed = status.iter().all(|s| s.state == FileState::Ok);
        for s in &status {
            let state = match &s.state {
                FileState::Ok => "ok",
                FileState::Missing => "missing",
                FileState::Mismatch { .. } => "DAMAGED (digest differs from the manifest)",
            };
            let size = s.size.map_or("-".into(), |n| format!("{n} bytes"));
            println!("  file      {} [{state}] {size}", s.path.display());
            if let Some(sha) = &s.sha256 {
                println!("  sha256    {sha}");
            }
        }
        let load = if installed {
            loads(dir, &spec.id).map_err(|e| format!("{e:#}"))
        } else {
            Err("not installed".into())
        };
        match &load {
            Ok(()) => println!("  installed yes, loads yes"),
            Err(e) => println!(
                "  installed {}, loads no: {e}",
                if installed { "yes" } else { "no" }
            ),
        }
        all_ok &= load.is_ok();
    }
    Ok(if all_ok {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    })
}
