//! The option groups that several commands share.

use callqa::audio::vad::VadParams;
use callqa::models::ModelDir;
use callqa::transcript::Direction;
use chrono::NaiveDate;
use clap::Args;
use std::path::PathBuf;

/// Where the models are.
#[derive(Args, Clone, Debug)]
pub struct ModelArgs {
    /// Where models are installed.
    #[arg(long, env = "CALLQA_MODEL_DIR", default_value_os_t = ModelDir::default_path(), global = true, help_heading = "Models")]
    pub model_dir: PathBuf,
    /// The ONNX Runtime library to load (default: the one `models install` put in the model
    /// folder).
    #[arg(
        long,
        env = "CALLQA_ONNXRUNTIME_LIB",
        global = true,
        help_heading = "Models"
    )]
    pub onnxruntime_lib: Option<PathBuf>,
}

/// Which Whisper model transcribes, and how the cores are shared.
#[derive(Args, Clone, Debug)]
pub struct WhisperArgs {
    /// Whisper model: `base`, `base-q8`, `tiny.en` (installed), or the path of any whisper.cpp
    /// GGML file.
    #[arg(
        long,
        alias = "model",
        env = "CALLQA_WHISPER_MODEL",
        default_value = "base",
        global = true,
        help_heading = "Whisper"
    )]
    pub whisper_model: String,
    /// Whisper decoding states: windows decoded at once (default: the number of cores).
    #[arg(
        long,
        env = "CALLQA_WHISPER_STATES",
        global = true,
        help_heading = "Whisper"
    )]
    pub whisper_states: Option<usize>,
    /// Threads per Whisper decode (default: cores / states).
    #[arg(long, env = "CALLQA_THREADS", global = true, help_heading = "Whisper")]
    pub threads: Option<usize>,
    /// Word times from whisper.cpp's token timestamps instead of DTW alignment: about 14 %
    /// faster, but word times drift across pauses.
    #[arg(long, env = "CALLQA_NO_DTW", global = true, help_heading = "Whisper")]
    pub no_dtw: bool,
}

/// Voice-activity thresholds (Silero VAD).
#[derive(Args, Clone, Debug)]
pub struct VadArgs {
    /// Speech probability that starts speech.
    #[arg(long, env = "CALLQA_VAD_THRESHOLD", default_value_t = VadParams::default().threshold, help_heading = "Voice activity")]
    pub vad_threshold: f32,
    /// Silence that ends a speech segment (ms).
    #[arg(long, env = "CALLQA_VAD_MIN_SILENCE_MS", default_value_t = VadParams::default().min_silence_ms, help_heading = "Voice activity")]
    pub vad_min_silence_ms: u32,
    /// Audio kept around each speech segment (ms).
    #[arg(long, env = "CALLQA_VAD_PAD_MS", default_value_t = VadParams::default().speech_pad_ms, help_heading = "Voice activity")]
    pub vad_pad_ms: u32,
}

/// Where calls, scores, coaching and events are kept, and whose they are.
#[derive(Args, Clone, Debug)]
pub struct StoreArgs {
    /// The SQLite store (created and migrated on first use; default:
    /// ~/.local/share/callqa/callqa.db).
    #[arg(long, env = "CALLQA_STORE", global = true, help_heading = "Store")]
    pub store: Option<PathBuf>,
    /// The tenant the data belongs to.
    #[arg(
        long,
        env = "CALLQA_TENANT",
        default_value = "default",
        global = true,
        help_heading = "Store"
    )]
    pub tenant: String,
}

/// How a mono recording is split by voice.
#[derive(Args, Clone, Debug)]
pub struct SpeakerArgs {
    /// The most speakers a mono recording is split into (0: do not split; the turns stay
    /// UNKNOWN and nothing that needs roles is scored).
    #[arg(long, env = "CALLQA_MAX_SPEAKERS", default_value_t = 2, value_parser = clap::value_parser!(u8).range(0..=8))]
    pub max_speakers: u8,
}

/// What is known of a call besides its audio or text.
#[derive(Args, Clone, Debug, Default)]
pub struct CallArgs {
    /// The call's id (one call only; default: derived from the content, its sha256).
    #[arg(long, env = "CALLQA_CALL_ID")]
    pub call_id: Option<String>,
    /// The rep (sales agent) who made the call: coaching and reports follow them.
    #[arg(long, env = "CALLQA_REP_ID")]
    pub rep_id: Option<String>,
    /// The customer spoken to.
    #[arg(long, env = "CALLQA_CUSTOMER_ID")]
    pub customer_id: Option<String>,
    /// The call's date (YYYY-MM-DD), for commitments like "下周三" (default: the day the
    /// recording was made, else today, UTC).
    #[arg(long, env = "CALLQA_CALL_DATE")]
    pub call_date: Option<NaiveDate>,
    /// Who placed the call; on a mono recording it helps tell the agent (who answers an
    /// inbound call) from the customer.
    #[arg(long, env = "CALLQA_DIRECTION", value_enum, default_value_t = Direction::Unknown)]
    pub direction: Direction,
}
