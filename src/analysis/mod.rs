//! Call analysis over a role-attributed transcript. So far: the playbook, talk metrics,
//! competitor mentions, key-question coverage, text emotion and the extractive summary; prosody
//! and the scorecard come next.

pub mod competitors;
pub mod emotion;
pub mod playbook;
pub mod questions;
pub mod summary;
pub mod talk;
pub mod train;

use crate::pipeline::Turn;
use crate::text::embed::{EmbedError, Embedder};
use playbook::Playbook;
use serde::Serialize;

/// The rules of one playbook run over one transcript.
#[derive(Debug, Clone, Serialize)]
pub struct RuleReport {
    pub playbook: String,
    pub playbook_revision: String,
    pub talk: talk::TalkMetrics,
    pub key_questions: questions::Coverage,
    pub competitor_mentions: Vec<competitors::Mention>,
    /// From the text only, so far (prosody from the audio is still to come).
    pub emotion: emotion::EmotionReport,
    pub summary: summary::Summary,
}

pub fn run_rules(
    playbook: &Playbook,
    turns: &[Turn],
    call_ms: u64,
    call_date: chrono::NaiveDate,
    embedder: &mut Embedder,
    emotion_head: &mut emotion::EmotionHead,
) -> Result<RuleReport, EmbedError> {
    let key_questions =
        questions::QuestionMatcher::new(playbook, embedder)?.coverage(turns, embedder)?;
    let emotion = emotion::analyse(turns, &playbook.emotion, emotion_head, embedder)?;
    let summary = summary::summarise(turns, call_date, embedder)?;
    Ok(RuleReport {
        playbook: playbook.name.clone(),
        playbook_revision: playbook.revision.clone(),
        talk: talk::talk_metrics(turns, call_ms),
        key_questions,
        competitor_mentions: competitors::CompetitorMatcher::new(playbook).mentions(turns),
        emotion,
        summary,
    })
}
