//! Customer dissatisfaction on real JD.com customer-service chats (`uss_jddc`, evaluation only):
//! every labelled customer turn (0 dissatisfied, 1 neutral, 2 satisfied) scored by the emotion
//! head's frustration. The threshold is chosen on the first half of the dialogues and measured on
//! the second, with the ranking's ROC-AUC, which no threshold changes.

use super::crosswoz::calibrate;
use super::{Context, Prf, Result};
use crate::analysis::emotion::EmotionHead;
use crate::text::embed::Embedder;
use serde::Deserialize;
use std::path::Path;

#[derive(Deserialize)]
struct Dialogue {
    turns: Vec<ChatTurn>,
}

#[derive(Deserialize)]
struct ChatTurn {
    user: String,
    sat: Option<u8>,
}

/// A labelled customer turn: dissatisfied or not, and the frustration the head gives it.
pub type Scored = (bool, f32);

/// Scores the labelled customer turns of each dialogue of `jsonl`.
pub fn score(
    jsonl: &Path,
    embedder: &mut Embedder,
    head: &mut EmotionHead,
) -> Result<Vec<Vec<Scored>>> {
    let text = std::fs::read_to_string(jsonl).with_context(|| jsonl.display().to_string())?;
    let mut out = Vec::new();
    for (i, line) in text.lines().enumerate() {
        let d: Dialogue =
            serde_json::from_str(line).with_context(|| format!("{}:{}", jsonl.display(), i + 1))?;
        let mut scored = Vec::new();
        for t in d.turns {
            let Some(sat) = t.sat else { continue };
            let frustration = head.score_text(embedder, &t.user)?.frustration;
            scored.push((sat == 0, frustration));
        }
        out.push(scored);
    }
    Ok(out)
}

/// P/R/F1 of "frustration ≥ threshold" as dissatisfied.
pub fn at(turns: &[Scored], threshold: f32) -> Prf {
    let mut prf = Prf::default();
    for &(dissatisfied, frustration) in turns {
        prf.count(frustration >= threshold, dissatisfied);
    }
    prf
}

/// The probability that a dissatisfied turn scores above a turn that is not (ties count half).
pub fn roc_auc(turns: &[Scored]) -> f64 {
    let mut sorted: Vec<&Scored> = turns.iter().collect();
    sorted.sort_by(|a, b| a.1.total_cmp(&b.1));
    // Sum of the positives' ranks (1-based, tied scores sharing their mean rank).
    let (mut rank_sum, mut positives, mut i) = (0.0, 0usize, 0);
    while i < sorted.len() {
        let j = (i..sorted.len())
            .find(|&j| sorted[j].1 != sorted[i].1)
            .unwrap_or(sorted.len());
        let mean_rank = (i + 1 + j) as f64 / 2.0;
        for s in &sorted[i..j] {
            if s.0 {
                rank_sum += mean_rank;
                positives += 1;
            }
        }
        i = j;
    }
    let negatives = sorted.len() - positives;
    if positives == 0 || negatives == 0 {
        return f64::NAN;
    }
    (rank_sum - (positives * (positives + 1)) as f64 / 2.0) / (positives * negatives) as f64
}

/// The threshold with the best F1 on `calibration`.
pub fn calibrated(calibration: &[Scored]) -> f32 {
    calibrate(calibration, 0.0, at)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn auc_counts_ordered_pairs_and_halves_ties() {
        assert_eq!(roc_auc(&[(false, 0.1), (true, 0.9)]), 1.0);
        assert_eq!(roc_auc(&[(true, 0.1), (false, 0.9)]), 0.0);
        assert_eq!(roc_auc(&[(true, 0.5), (false, 0.5)]), 0.5);
        let auc = roc_auc(&[(false, 0.1), (true, 0.4), (false, 0.6), (true, 0.8)]);
        assert!((auc - 0.75).abs() < 1e-12, "{auc}");
    }
}
