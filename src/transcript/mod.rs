//! The transcript: who said what, and when. These types sit below every analyser, the store and
//! the API; `session` makes them from audio, `turns` joins segments into turns.

mod recording;
pub mod roles;
pub mod session;
pub mod speakers;
pub mod turns;

pub use crate::asr::Word;
pub use roles::{Direction, MIN_ROLE_CONFIDENCE, RoleHints, SpeakerRole, roles_unknown};
pub use session::{
    CallOptions, CallSession, Engines, LIVE_WINDOW_MS, Packing, SessionEnd, SharedProsody,
    TrackPlan, TranscribeError, WindowMsg,
};
pub use turns::{TURN_JOIN_GAP_MS, append_segment};

use crate::audio::channels::{Layout, Role};
use crate::audio::prosody::Prosody;
use serde::{Deserialize, Serialize};

/// How a turn's role was decided.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RoleSource {
    /// The channel the speech was recorded on (configured or the stereo default), or the role
    /// given with a text transcript.
    Channel,
    /// The speaker's voice matched the rep's enrolled voiceprint (mono recordings).
    Voiceprint,
    /// What the speaker said: introductions, offers of help, enquiries (mono recordings).
    #[serde(alias = "heuristic")]
    Content,
    /// Not known.
    #[default]
    #[serde(alias = "none")]
    Unknown,
}

/// One speaker's stretch of talk. As JSON (one per line) it is also the text-transcript format
/// of `callqa playbook test`, where only role, start_ms, end_ms and text are required.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Turn {
    pub role: Role,
    #[serde(default)]
    pub role_source: RoleSource,
    /// How sure the role is (0–1), when it was decided from the voice or the words.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub role_confidence: Option<f32>,
    /// Who speaks, on a recording whose speakers were told apart by their voices: `S1`, `S2`, …
    /// in order of first speech.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub speaker: Option<String>,
    /// The recorded channel, for per-channel layouts.
    #[serde(default)]
    pub channel: Option<usize>,
    pub start_ms: u64,
    pub end_ms: u64,
    pub text: String,
    #[serde(default)]
    pub words: Vec<Word>,
    #[serde(default)]
    pub avg_logprob: f32,
    /// Loudness and pitch of the turn, when it came from audio.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub prosody: Option<Prosody>,
}

impl Turn {
    /// A turn known only by its text (a text transcript, a test): no words, prosody or channel.
    pub fn text(role: Role, start_ms: u64, end_ms: u64, text: String) -> Self {
        Self {
            role,
            role_source: RoleSource::default(),
            role_confidence: None,
            speaker: None,
            channel: None,
            start_ms,
            end_ms,
            text,
            words: Vec::new(),
            avg_logprob: 0.0,
            prosody: None,
        }
    }

    /// The time of a character offset in the text, interpolated across the turn (for sentences
    /// inside a turn that carries no word times).
    pub fn time_at(&self, char_offset: usize) -> u64 {
        let n_chars = self.text.chars().count().max(1) as u64;
        self.start_ms + self.end_ms.saturating_sub(self.start_ms) * char_offset as u64 / n_chars
    }
}

#[derive(Debug, Clone, Serialize)]
pub struct CallTranscript {
    pub language: String,
    pub duration_ms: u64,
    pub sample_rate: u32,
    pub channels: usize,
    pub layout: Layout,
    /// Speech found by VAD, summed over tracks.
    pub speech_ms: u64,
    /// Whisper windows decoded.
    pub windows: usize,
    pub turns: Vec<Turn>,
    /// The speakers told apart by their voices (mono recordings), with the role each was given.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub speakers: Vec<SpeakerRole>,
    /// The agent's voice, from the agent channel of a stereo call whose rep's voice is to be
    /// learned.
    #[serde(skip)]
    pub agent_voice: Option<crate::speakers::VoiceSample>,
    /// What had to be repaired in the recording's header to read it, if anything.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub repaired: Option<String>,
}

impl CallTranscript {
    /// What the reader of an Analysis should know of the transcript: why it has no turns, when
    /// it has none, and what was repaired to read the recording.
    pub fn note(&self) -> Option<String> {
        let empty = match (self.turns.is_empty(), self.speech_ms) {
            (false, _) => None,
            (true, 0) => Some("no speech was found in the recording"),
            (true, _) => {
                Some("the speech found was transcribed to nothing (noise or hallucination removed)")
            }
        };
        let notes: Vec<&str> = empty.into_iter().chain(self.repaired.as_deref()).collect();
        (!notes.is_empty()).then(|| notes.join("; "))
    }
}
