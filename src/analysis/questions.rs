//! Key-question coverage (关键话术覆盖率): was each playbook question asked, by the right side, in
//! time, and how often. Matching is semantic (multilingual sentence embeddings: other wording or
//! the other language still matches), with a lexical fallback for what the embedding misses.

use super::playbook::{KeyQuestion, Playbook};
use crate::asr::guards::is_cjk;
use crate::audio::channels::Role;
use crate::text::embed::{EmbedError, Embedder, cosine};
use crate::transcript::Turn;
use serde::{Deserialize, Serialize};
use std::collections::HashSet;

/// Cosine similarity a sentence needs to count as a question, unless the playbook sets its own.
/// Calibrated by `callqa eval questions` on the first half of CrossWOZ's test dialogues (the
/// threshold with the best F1), and measured on the second half: see the README.
pub const DEFAULT_THRESHOLD: f32 = 0.58;
/// Share of a phrasing's character bigrams (Chinese) or words (English) that a sentence must
/// contain to match lexically.
pub const LEXICAL_THRESHOLD: f32 = 0.75;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum MatchKind {
    Semantic,
    Lexical,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct QuestionMatch {
    pub turn: usize,
    pub role: Role,
    pub time_ms: u64,
    pub sentence: String,
    pub score: f32,
    pub how: MatchKind,
    /// Counted towards the question: by the right side and inside its time window.
    pub counts: bool,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct QuestionResult {
    pub id: String,
    pub asked: bool,
    /// Matches that count (出现频次).
    pub count: usize,
    pub satisfied: bool,
    pub matches: Vec<QuestionMatch>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Coverage {
    /// Satisfied questions / all questions, in percent (100 when the playbook has none).
    pub percent: f64,
    pub questions: Vec<QuestionResult>,
}

/// Sentence-like pieces of a turn, with their char offsets: split at sentence and clause
/// punctuation, so that "好的，电话告诉我一下" yields the request on its own.
pub fn sentences(text: &str) -> Vec<(usize, String)> {
    let mut out = Vec::new();
    let mut current = String::new();
    let mut start = 0;
    // Keeps a piece that has at least two letters or characters.
    let mut flush = |current: &mut String, start: usize| {
        let piece = current.trim();
        if piece.chars().filter(|c| c.is_alphanumeric()).count() >= 2 {
            out.push((start, piece.to_owned()));
        }
        current.clear();
    };
    let chars: Vec<char> = text.chars().collect();
    for (i, &c) in chars.iter().enumerate() {
        // An English full stop ends a sentence; a decimal point (3.5) does not.
        let full_stop = c == '.' && chars.get(i + 1).is_none_or(|n| n.is_whitespace());
        if full_stop || "。？！?!；;，,\n".contains(c) {
            if c == '？' || c == '?' {
                current.push(c);
            }
            flush(&mut current, start);
            start = i + 1;
        } else {
            current.push(c);
        }
    }
    flush(&mut current, start);
    out
}

/// Character bigrams of the Chinese text, or lower-case words otherwise.
fn lexical_units(text: &str) -> HashSet<String> {
    let chars: Vec<char> = text.chars().filter(|c| c.is_alphanumeric()).collect();
    if chars.iter().any(|&c| is_cjk(c)) {
        chars.windows(2).map(|w| w.iter().collect()).collect()
    } else {
        text.split(|c: char| !c.is_alphanumeric())
            .filter(|w| w.len() > 2)
            .map(str::to_lowercase)
            .collect()
    }
}

struct Prepared {
    embeddings: Vec<Vec<f32>>,
    lexical: Vec<HashSet<String>>,
    threshold: f32,
}

/// A playbook's key questions, with their phrasings embedded once.
pub struct QuestionMatcher<'p> {
    questions: Vec<(&'p KeyQuestion, Prepared)>,
}

impl<'p> QuestionMatcher<'p> {
    pub fn new(playbook: &'p Playbook, embedder: &mut Embedder) -> Result<Self, EmbedError> {
        let mut questions = Vec::new();
        for q in &playbook.key_questions {
            let phrasings: Vec<&String> = q
                .phrasings
                .iter()
                .filter(|p| !p.trim().is_empty())
                .collect();
            let embeddings = phrasings
                .iter()
                .map(|p| embedder.embed(p))
                .collect::<Result<_, _>>()?;
            let lexical = phrasings.iter().map(|p| lexical_units(p)).collect();
            questions.push((
                q,
                Prepared {
                    embeddings,
                    lexical,
                    threshold: q.threshold.unwrap_or(DEFAULT_THRESHOLD),
                },
            ));
        }
        Ok(Self { questions })
    }

    /// The best cosine similarity of a sentence's embedding to each question's phrasings.
    pub fn semantic_scores(&self, embedding: &[f32]) -> Vec<f32> {
        self.questions
            .iter()
            .map(|(_, p)| {
                p.embeddings
                    .iter()
                    .map(|e| cosine(e, embedding))
                    .fold(f32::MIN, f32::max)
            })
            .collect()
    }

    /// The best score of a sentence (given its embedding) against each question, if it matches.
    pub fn match_sentence(
        &self,
        embedding: &[f32],
        sentence: &str,
    ) -> Vec<Option<(f32, MatchKind)>> {
        let units = lexical_units(sentence);
        self.questions
            .iter()
            .map(|(_, p)| {
                let semantic = p
                    .embeddings
                    .iter()
                    .map(|e| cosine(e, embedding))
                    .fold(f32::MIN, f32::max);
                if semantic >= p.threshold {
                    return Some((semantic, MatchKind::Semantic));
                }
                let lexical = p
                    .lexical
                    .iter()
                    .filter(|l| !l.is_empty())
                    .map(|l| l.intersection(&units).count() as f32 / l.len() as f32)
                    .fold(0.0, f32::max);
                (lexical >= LEXICAL_THRESHOLD).then_some((lexical, MatchKind::Lexical))
            })
            .collect()
    }

    pub fn questions(&self) -> impl Iterator<Item = &'p KeyQuestion> + '_ {
        self.questions.iter().map(|(q, _)| *q)
    }

    /// For each sentence of `turn` that counts towards a question (right side, in time), that
    /// question's index: a call in progress is scored turn by turn with it.
    pub fn counted_in(
        &self,
        turn: &Turn,
        embedder: &mut Embedder,
    ) -> Result<Vec<usize>, EmbedError> {
        let mut counted = Vec::new();
        for (offset, sentence) in sentences(&turn.text) {
            let embedding = embedder.embed(&sentence)?;
            let time_ms = turn.time_at(offset) as f64;
            for (qi, m) in self
                .match_sentence(&embedding, &sentence)
                .into_iter()
                .enumerate()
            {
                let q = self.questions[qi].0;
                if m.is_some()
                    && q.asked_by.covers(turn.role)
                    && q.within_minutes.is_none_or(|m| time_ms <= m * 60_000.0)
                {
                    counted.push(qi);
                }
            }
        }
        Ok(counted)
    }

    /// Coverage of the questions over a call.
    pub fn coverage(
        &self,
        turns: &[Turn],
        embedder: &mut Embedder,
    ) -> Result<Coverage, EmbedError> {
        let mut results: Vec<QuestionResult> = self
            .questions
            .iter()
            .map(|(q, _)| QuestionResult {
                id: q.id.clone(),
                asked: false,
                count: 0,
                satisfied: false,
                matches: Vec::new(),
            })
            .collect();
        for (t, turn) in turns.iter().enumerate() {
            for (offset, sentence) in sentences(&turn.text) {
                let embedding = embedder.embed(&sentence)?;
                for (qi, m) in self
                    .match_sentence(&embedding, &sentence)
                    .into_iter()
                    .enumerate()
                {
                    let Some((score, how)) = m else { continue };
                    let q = self.questions[qi].0;
                    let time_ms = turn.time_at(offset);
                    let right_side = q.asked_by.covers(turn.role);
                    let in_time = q
                        .within_minutes
                        .is_none_or(|m| (time_ms as f64) <= m * 60_000.0);
                    let r = &mut results[qi];
                    r.asked = true;
                    r.count += usize::from(right_side && in_time);
                    r.matches.push(QuestionMatch {
                        turn: t,
                        role: turn.role,
                        time_ms,
                        sentence: sentence.clone(),
                        score,
                        how,
                        counts: right_side && in_time,
                    });
                }
            }
        }
        for (r, (q, _)) in results.iter_mut().zip(&self.questions) {
            r.satisfied = r.count >= q.min_count as usize;
        }
        let satisfied = results.iter().filter(|r| r.satisfied).count();
        let percent = if results.is_empty() {
            100.0
        } else {
            satisfied as f64 * 100.0 / results.len() as f64
        };
        Ok(Coverage {
            percent,
            questions: results,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn turns_split_into_sentences_and_clauses() {
        let s = sentences("好的，电话和地址告诉我一下。那营业时间呢？OK. It costs 3.5k");
        let texts: Vec<&str> = s.iter().map(|(_, t)| t.as_str()).collect();
        assert_eq!(
            texts,
            vec![
                "好的",
                "电话和地址告诉我一下",
                "那营业时间呢？",
                "OK",
                "It costs 3.5k"
            ]
        );
        assert_eq!(s[1].0, 3);
    }

    #[test]
    fn lexical_units_are_bigrams_for_chinese_and_words_for_english() {
        let zh = lexical_units("电话号码");
        assert!(zh.contains("电话") && zh.contains("号码") && zh.len() == 3);
        let en = lexical_units("What is the phone number?");
        assert!(en.contains("phone") && en.contains("the") && !en.contains("is"));
    }
}
