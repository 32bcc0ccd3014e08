//! Call analysis over a role-attributed transcript. So far: the playbook, talk metrics,
//! competitor mentions and key-question coverage; emotion, the summary and the scorecard come next.

pub mod competitors;
pub mod playbook;
pub mod questions;
pub mod talk;

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
}

pub fn run_rules(
    playbook: &Playbook,
    turns: &[Turn],
    call_ms: u64,
    embedder: &mut Embedder,
) -> Result<RuleReport, EmbedError> {
    let key_questions =
        questions::QuestionMatcher::new(playbook, embedder)?.coverage(turns, embedder)?;
    Ok(RuleReport {
        playbook: playbook.name.clone(),
        playbook_revision: playbook.revision.clone(),
        talk: talk::talk_metrics(turns, call_ms),
        key_questions,
        competitor_mentions: competitors::CompetitorMatcher::new(playbook).mentions(turns),
    })
}
