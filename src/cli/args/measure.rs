//! The measurement commands' options: `eval`, `train` and `bench`.

use super::{ModelArgs, VadArgs, WhisperArgs};
use callqa::text::embed::Encoder;
use clap::{Args, Subcommand};
use std::path::PathBuf;

const CROSSWOZ: &str = "../shared/eval/transcripts/zh_crosswoz/test.json.zip";
const TADHACK: &str = "../shared/eval/transcripts/en_vcon_tadhack_synthetic";
const PYANNOTE_SAMPLE: &str = "../shared/eval/diarization/pyannote_sample";

#[derive(Args)]
pub struct EvalCommand {
    #[command(subcommand)]
    pub what: EvalWhat,
    #[command(flatten)]
    pub models: ModelArgs,
}

#[derive(Subcommand)]
pub enum EvalWhat {
    /// WER (English) / CER (Chinese) against a REFERENCE.tsv (columns: path, utt_id,
    /// reference_text, …; paths relative to the manifest's folder or one of its parents).
    Asr {
        /// The REFERENCE.tsv.
        #[arg(long, env = "CALLQA_MANIFEST")]
        manifest: PathBuf,
        /// Beam size (1 = greedy).
        #[arg(long, env = "CALLQA_BEAM_SIZE", default_value_t = 1)]
        beam_size: usize,
        /// JSON lines (one per file, then the totals) instead of a table.
        #[arg(long, env = "CALLQA_JSON")]
        json: bool,
        #[command(flatten)]
        vad: VadArgs,
        #[command(flatten)]
        whisper: WhisperArgs,
    },
    /// Speakers on mono audio: the diarization error rate (missed speech, false alarm, speaker
    /// confusion; 0.25 s collar, overlap scored) of the shared pyannote sample, recorded and
    /// through a telephone line (8 kHz μ-law); and on the tadhack calls, the share of speech
    /// whose role is right and the turns that span a speaker change, against hand labels.
    Diarization {
        /// The pyannote sample's folder (sample.wav, sample.rttm).
        #[arg(long, env = "CALLQA_DIARIZATION_SAMPLE", default_value = PYANNOTE_SAMPLE)]
        sample: PathBuf,
        /// The tadhack calls (mp3 and vCon files).
        #[arg(long, env = "CALLQA_TADHACK", default_value = TADHACK)]
        tadhack: PathBuf,
        /// Who speaks each paragraph of the tadhack calls.
        #[arg(
            long,
            env = "CALLQA_ROLE_LABELS",
            default_value = "tests/fixtures/speakers/tadhack_roles.tsv"
        )]
        labels: PathBuf,
        #[command(flatten)]
        whisper: WhisperArgs,
    },
    /// Key-question detection on CrossWOZ (the user `Request` acts are the labels): calibrates the
    /// similarity threshold on the first half of the dialogues, reports precision/recall on the rest.
    Questions(CrosswozArgs),
    /// PII detection (precision / recall per class): CrossWOZ's phone acts as labels, as written
    /// and with the numbers spoken in Chinese digits; the tadhack call transcripts with hand
    /// labels (spoken English numbers, e-mail addresses, names).
    Pii {
        /// CrossWOZ `test.json` or the zip holding it.
        #[arg(long, env = "CALLQA_CROSSWOZ", default_value = CROSSWOZ)]
        crosswoz: PathBuf,
        /// The tadhack calls (vCon files).
        #[arg(long, env = "CALLQA_TADHACK", default_value = TADHACK)]
        tadhack: PathBuf,
        /// The hand labels of the tadhack calls.
        #[arg(
            long,
            env = "CALLQA_PII_LABELS",
            default_value = "tests/fixtures/pii/tadhack_labels.tsv"
        )]
        labels: PathBuf,
        /// Print each prediction that matched no label.
        #[arg(long, env = "CALLQA_SHOW_ERRORS")]
        show_errors: bool,
    },
    /// Competitor mentions on CrossWOZ: every entity name is a competitor, the acts that carry a
    /// name are the labels; scored as written and with a homophone in every name.
    Competitors(CrosswozArgs),
    /// Perfunctory tone on the engagement set's replies it did not train on: the text head alone,
    /// and with the cues a reply's words carry (backchannel-only, short).
    Emotion {
        /// The emotion data (../shared/emotion).
        #[arg(long, env = "CALLQA_EMOTION_DATA", default_value = "../shared/emotion")]
        data: PathBuf,
    },
    /// Customer dissatisfaction on real JD.com customer-service chats (uss_jddc): the emotion
    /// head's frustration per labelled customer turn; threshold on the first half, F1 and
    /// ROC-AUC on the rest.
    Dissatisfaction {
        /// uss_jddc's dialogues, one JSON object per line.
        #[arg(
            long,
            env = "CALLQA_JDDC",
            default_value = "../shared/eval_more/uss_jddc/jddc_dev.jsonl"
        )]
        jddc: PathBuf,
    },
    /// Summary needs on CrossWOZ: user turns with constraint `Inform` acts are the labels;
    /// calibrates on the first half, reports the shipped summary on the rest.
    Needs(CrosswozArgs),
}

#[derive(Args)]
pub struct CrosswozArgs {
    /// CrossWOZ `test.json` or the zip holding it.
    #[arg(long, env = "CALLQA_CROSSWOZ", default_value = CROSSWOZ)]
    pub crosswoz: PathBuf,
    /// Use only the first N dialogues.
    #[arg(long, env = "CALLQA_LIMIT")]
    pub limit: Option<usize>,
    /// The sentence encoder to measure: use (Universal Sentence Encoder) or e5.
    #[arg(long, env = "CALLQA_ENCODER", default_value = "use")]
    pub encoder: Encoder,
}

#[derive(Args)]
pub struct TrainCommand {
    #[command(subcommand)]
    pub what: TrainWhat,
    #[command(flatten)]
    pub models: ModelArgs,
}

#[derive(Subcommand)]
pub enum TrainWhat {
    /// Multinomial logistic regression over the sentence embeddings; prints held-out metrics.
    Emotion {
        /// The emotion data (../shared/emotion).
        #[arg(long, env = "CALLQA_EMOTION_DATA", default_value = "../shared/emotion")]
        data: PathBuf,
        /// Where the head is written.
        #[arg(
            long,
            env = "CALLQA_HEAD_OUT",
            default_value = "models/emotion_head.onnx"
        )]
        out: PathBuf,
        /// Passes over the training data.
        #[arg(long, env = "CALLQA_EPOCHS", default_value_t = 400)]
        epochs: usize,
    },
}

#[derive(Args)]
pub struct BenchCommand {
    #[command(subcommand)]
    pub what: BenchWhat,
    #[command(flatten)]
    pub whisper: WhisperArgs,
    #[command(flatten)]
    pub models: ModelArgs,
}

#[derive(Subcommand)]
pub enum BenchWhat {
    /// K concurrent StreamCall clients, each sending a real two-speaker call at real-time pace
    /// to `callqa serve` in a process of its own: competitor-alert and final-turn latency
    /// (p50 / p95 / max) and the service's peak resident size.
    Stream {
        /// The values of K, run one after the other.
        #[arg(
            long,
            env = "CALLQA_BENCH_CLIENTS",
            value_delimiter = ',',
            default_value = "1,2,4"
        )]
        clients: Vec<usize>,
        /// Times real time (1: as a live call).
        #[arg(long, env = "CALLQA_BENCH_PACE", default_value_t = 1.0)]
        pace: f64,
        /// Audio per stream message (ms).
        #[arg(long, env = "CALLQA_BENCH_CHUNK_MS", default_value_t = 100)]
        chunk_ms: u64,
        /// The shared evaluation data (for pyannote's sample conversation).
        #[arg(long, env = "CALLQA_EVAL_DIR", default_value = "../shared/eval")]
        eval: PathBuf,
    },
    /// callqa vs faster-whisper (int8, same base weights, same beam, VAD on, same threads) on
    /// recordings with `.vcon.json` references beside them. Set the peer up first with
    /// `bash benches/peer/setup.sh`.
    Asr {
        /// Recordings (default: ../shared/eval/transcripts/en_vcon_tadhack_synthetic/*.mp3).
        files: Vec<PathBuf>,
        /// Beam size (1 = greedy), for both.
        #[arg(long, env = "CALLQA_BEAM_SIZE", default_value_t = 1)]
        beam_size: usize,
        #[command(flatten)]
        peer: PeerArgs,
    },
    /// Audio hours scored per wall-clock hour by `callqa analyze --jobs N`, run as a user
    /// runs it (model loading included).
    Throughput(BatchBenchArgs),
    /// The batch with mono calls split by speaker against the same batch not split: the wall
    /// time speaker separation adds.
    Speakers(BatchBenchArgs),
    /// Every scenario with its defaults: asr (against faster-whisper), throughput, speakers, stream.
    All {
        #[command(flatten)]
        peer: PeerArgs,
        /// The shared evaluation data.
        #[arg(long, env = "CALLQA_EVAL_DIR", default_value = "../shared/eval")]
        eval: PathBuf,
    },
}

/// Where `benches/peer/setup.sh` put the faster-whisper peer.
#[derive(Args, Clone, Debug)]
pub struct PeerArgs {
    /// The peer's Python virtual environment.
    #[arg(long, env = "CALLQA_PEER_VENV", default_value = "target/peer-venv")]
    pub peer_venv: PathBuf,
    /// The peer's model (CTranslate2, the same base weights).
    #[arg(
        long,
        env = "CALLQA_PEER_MODEL",
        default_value = "target/peer-models/whisper-base-ct2"
    )]
    pub peer_model: PathBuf,
}

/// A batch of recordings scored by `callqa analyze`, as a bench runs it.
#[derive(Args)]
pub struct BatchBenchArgs {
    /// Recordings (default: ../shared/eval/transcripts/en_vcon_tadhack_synthetic/*.mp3).
    pub files: Vec<PathBuf>,
    /// Calls at once (default: the number of cores).
    #[arg(long, env = "CALLQA_JOBS")]
    pub jobs: Option<usize>,
    /// The playbook the calls are scored against.
    #[arg(
        long,
        env = "CALLQA_PLAYBOOK",
        default_value = "examples/playbook.toml"
    )]
    pub playbook: PathBuf,
}
