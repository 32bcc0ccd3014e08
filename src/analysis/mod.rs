//! Call analysis over a role-attributed transcript: the playbook's rules (talk metrics,
//! key-question coverage, competitor mentions, emotion, the three-part summary) and the
//! scorecard built from them. Every judgement points at the turns behind it.

pub mod competitors;
pub mod emotion;
pub mod playbook;
pub mod questions;
pub mod scorecard;
pub mod summary;
pub mod talk;

use crate::redact::{self, RedactedSpan};
use crate::speakers::VoiceSample;
use crate::text::embed::{EmbedError, Embedder};
use crate::transcript::Turn;
use chrono::NaiveDate;
use playbook::Playbook;
use serde::{Deserialize, Serialize};

/// What is known about a call besides its turns.
#[derive(Debug, Clone, Default)]
pub struct CallInfo {
    pub call_id: String,
    pub rep_id: Option<String>,
    pub customer_id: Option<String>,
    /// Anchors relative dates such as 下周三 in commitments.
    pub call_date: NaiveDate,
    pub language: String,
    pub duration_ms: u64,
    /// Why the transcript is empty, when it is (e.g. no speech found by VAD).
    pub note: Option<String>,
    /// sha256 of the recording, when there is one.
    pub content_hash: Option<String>,
    /// How long transcription took, when the turns came from audio.
    pub transcription_ms: Option<u64>,
    /// The agent's voice, from the agent channel of a stereo call with a rep.
    pub agent_voice: Option<VoiceSample>,
}

/// The whole judgement of one call. Turn indices in every section point into `turns`.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Analysis {
    pub call_id: String,
    pub rep_id: Option<String>,
    pub customer_id: Option<String>,
    pub call_date: NaiveDate,
    pub language: String,
    pub duration_ms: u64,
    pub playbook: String,
    /// The content hash of the playbook used, so that old scores stay interpretable.
    pub playbook_revision: String,
    /// Set when a section is empty for a reason the reader should know.
    pub note: Option<String>,
    pub turns: Vec<Turn>,
    pub talk: talk::TalkMetrics,
    pub key_questions: questions::Coverage,
    pub competitor_mentions: Vec<competitors::Mention>,
    pub emotion: emotion::EmotionReport,
    pub summary: summary::Summary,
    pub scorecard: scorecard::Scorecard,
    /// The call as a whole, from the scorecard (see `scorecard::Overall`).
    #[serde(default)]
    pub overall: scorecard::Overall,
    /// sha256 of the recording, when the analysis came from one.
    pub content_hash: Option<String>,
    pub timings: Timings,
    /// PII masked in the turns before any analyser read them.
    #[serde(default)]
    pub redactions: Vec<RedactedSpan>,
    /// The turns before redaction, when the playbook keeps them: for the store alone, never
    /// serialised with the Analysis.
    #[serde(skip)]
    pub original_turns: Option<Vec<Turn>>,
    /// The agent's voice heard on a stereo call, for the store to learn the rep's voiceprint
    /// from; never serialised.
    #[serde(skip)]
    pub agent_voice: Option<VoiceSample>,
}

/// Where the time went, per stage.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
pub struct Timings {
    /// Decode, VAD and Whisper (absent for text transcripts).
    pub transcription_ms: Option<u64>,
    /// Every analyser and the scorecard.
    pub analysis_ms: u64,
    /// Processing time over call time, transcription and analysis together.
    pub real_time_factor: Option<f64>,
}

/// Runs every analyser of the playbook over a call's turns (in time order).
pub fn analyse(
    playbook: &Playbook,
    info: CallInfo,
    turns: Vec<Turn>,
    embedder: &mut Embedder,
    emotion_head: &mut emotion::EmotionHead,
) -> Result<Analysis, EmbedError> {
    let started = std::time::Instant::now();
    let mut turns = turns;
    let original = playbook.redaction.keep_original.then(|| turns.clone());
    let redactions = redact::redact(&mut turns, &playbook.redaction);
    let original_turns = original.filter(|_| !redactions.is_empty());
    let key_questions =
        questions::QuestionMatcher::new(playbook, embedder)?.coverage(&turns, embedder)?;
    let emotion = emotion::analyse(&turns, &playbook.emotion, emotion_head, embedder)?;
    let summary = summary::summarise(&turns, info.call_date, embedder)?;
    let why = if turns.is_empty() {
        Some("the call has no speech, so there is nothing to judge")
    } else if crate::transcript::roles_unknown(&turns) {
        Some(
            "roles unknown: who is the agent and who the customer could not be told from this \
             recording (mono, and no sure evidence in the voices or the words), so nothing that \
             depends on who spoke is scored",
        )
    } else {
        None
    };
    let note = match (info.note, why) {
        // A rescored call's note already says it.
        (Some(n), Some(w)) if !turns.is_empty() && !n.contains(w) => Some(format!("{n}; {w}")),
        (Some(n), _) => Some(n),
        (None, w) => w.map(str::to_owned),
    };
    let mut analysis = Analysis {
        call_id: info.call_id,
        rep_id: info.rep_id,
        customer_id: info.customer_id,
        call_date: info.call_date,
        language: info.language,
        duration_ms: info.duration_ms,
        playbook: playbook.name.clone(),
        playbook_revision: playbook.revision.clone(),
        note,
        talk: talk::talk_metrics(&turns, info.duration_ms),
        key_questions,
        competitor_mentions: competitors::CompetitorMatcher::new(playbook).mentions(&turns),
        emotion,
        summary,
        scorecard: scorecard::Scorecard::default(),
        overall: scorecard::Overall::default(),
        content_hash: info.content_hash,
        timings: Timings::default(),
        turns,
        redactions,
        original_turns,
        agent_voice: info.agent_voice,
    };
    analysis.scorecard = scorecard::score(playbook, &analysis);
    analysis.overall = analysis.scorecard.overall(&analysis);
    let analysis_ms = started.elapsed().as_millis() as u64;
    let total = info.transcription_ms.unwrap_or(0) + analysis_ms;
    analysis.timings = Timings {
        transcription_ms: info.transcription_ms,
        analysis_ms,
        real_time_factor: (info.duration_ms > 0).then(|| total as f64 / info.duration_ms as f64),
    };
    Ok(analysis)
}
