//! Role accuracy on mono calls whose reference says who spoke each paragraph: the transcript's
//! words are aligned to the reference's (edit distance), and each aligned word is right when its
//! turn's role is the role of the paragraph it aligns to. Counted in speech time (the words'
//! durations), as the share of speech whose role is right; UNKNOWN counts as wrong. A turn that
//! holds words of both roles' paragraphs spans a speaker change.

use super::{Context, Result, normalize_for_scoring};
use crate::audio::channels::Role;
use crate::transcript::Turn;
use serde::Serialize;
use std::collections::HashMap;
use std::path::Path;

#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize)]
pub struct RoleScore {
    /// Speech time of the words aligned to the reference.
    pub speech_ms: u64,
    /// Of which the turn's role is the paragraph's.
    pub right_ms: u64,
    /// Of which the turn's role is UNKNOWN.
    pub unknown_ms: u64,
    pub turns: usize,
    /// Turns holding words of both an agent's and a customer's paragraph.
    pub spanning: usize,
}

impl RoleScore {
    pub fn accuracy(&self) -> f64 {
        self.right_ms as f64 / self.speech_ms.max(1) as f64
    }

    pub fn add(&mut self, o: &RoleScore) {
        self.speech_ms += o.speech_ms;
        self.right_ms += o.right_ms;
        self.unknown_ms += o.unknown_ms;
        self.turns += o.turns;
        self.spanning += o.spanning;
    }
}

impl std::fmt::Display for RoleScore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "role accuracy {:.1} % of {:.1} s of speech ({:.1} % unknown); {} of {} turns span a speaker change",
            100.0 * self.accuracy(),
            self.speech_ms as f64 / 1000.0,
            100.0 * self.unknown_ms as f64 / self.speech_ms.max(1) as f64,
            self.spanning,
            self.turns
        )
    }
}

/// Scores a transcript's roles against the reference paragraphs and their roles.
pub fn score_roles(reference: &[(Role, String)], turns: &[Turn]) -> RoleScore {
    let tokens = |text: &str| -> Vec<String> {
        normalize_for_scoring(text)
            .split_whitespace()
            .map(str::to_owned)
            .collect()
    };
    let reference: Vec<(String, Role)> = reference
        .iter()
        .flat_map(|(role, text)| tokens(text).into_iter().map(move |t| (t, *role)))
        .collect();
    // Each hypothesis token with its turn and its share of the word's time.
    let mut hypothesis: Vec<(String, usize, u64)> = Vec::new();
    for (i, t) in turns.iter().enumerate() {
        let words: Vec<(&str, u64)> = if t.words.is_empty() {
            vec![(t.text.as_str(), t.end_ms - t.start_ms)]
        } else {
            t.words
                .iter()
                .map(|w| (w.text.as_str(), w.end_ms - w.start_ms))
                .collect()
        };
        for (text, ms) in words {
            let toks = tokens(text);
            let share = ms / toks.len().max(1) as u64;
            hypothesis.extend(toks.into_iter().map(|tok| (tok, i, share)));
        }
    }
    let mut score = RoleScore {
        turns: turns.len(),
        ..RoleScore::default()
    };
    let mut roles_in_turn: HashMap<usize, [bool; 2]> = HashMap::new();
    for (h, r) in align(&hypothesis, &reference) {
        let (_, turn, ms) = hypothesis[h];
        let want = reference[r].1;
        let got = turns[turn].role;
        score.speech_ms += ms;
        if got == want {
            score.right_ms += ms;
        }
        if got == Role::Unknown {
            score.unknown_ms += ms;
        }
        roles_in_turn.entry(turn).or_default()[usize::from(want == Role::Customer)] = true;
    }
    score.spanning = roles_in_turn.values().filter(|r| r[0] && r[1]).count();
    score
}

/// Pairs of (hypothesis, reference) token indices aligned by a least-edit alignment
/// (matches and substitutions).
fn align(hyp: &[(String, usize, u64)], reference: &[(String, Role)]) -> Vec<(usize, usize)> {
    let (n, m) = (hyp.len(), reference.len());
    let mut d = vec![0u32; (n + 1) * (m + 1)];
    let at = |i: usize, j: usize| i * (m + 1) + j;
    for i in 0..=n {
        d[at(i, 0)] = i as u32;
    }
    for j in 0..=m {
        d[at(0, j)] = j as u32;
    }
    for i in 1..=n {
        for j in 1..=m {
            let sub = u32::from(hyp[i - 1].0 != reference[j - 1].0);
            d[at(i, j)] = (d[at(i - 1, j - 1)] + sub)
                .min(d[at(i - 1, j)] + 1)
                .min(d[at(i, j - 1)] + 1);
        }
    }
    let (mut i, mut j) = (n, m);
    let mut pairs = Vec::new();
    while i > 0 && j > 0 {
        let sub = u32::from(hyp[i - 1].0 != reference[j - 1].0);
        if d[at(i, j)] == d[at(i - 1, j - 1)] + sub {
            pairs.push((i - 1, j - 1));
            i -= 1;
            j -= 1;
        } else if d[at(i, j)] == d[at(i - 1, j)] + 1 {
            i -= 1;
        } else {
            j -= 1;
        }
    }
    pairs.reverse();
    pairs
}

/// The hand labels of the tadhack calls: call (8 characters) → one role per paragraph.
pub fn read_role_labels(path: &Path) -> Result<HashMap<String, Vec<Role>>> {
    let text = std::fs::read_to_string(path)
        .with_context(|| format!("{}: cannot read", path.display()))?;
    let mut labels = HashMap::new();
    for line in text
        .lines()
        .filter(|l| !l.starts_with('#') && !l.trim().is_empty())
    {
        let (call, roles) = line
            .split_once('\t')
            .with_context(|| format!("{}: not `call<TAB>roles`: {line}", path.display()))?;
        let roles = roles
            .trim()
            .chars()
            .map(|c| match c {
                'A' => Ok(Role::Agent),
                'C' => Ok(Role::Customer),
                other => Err(other),
            })
            .collect::<std::result::Result<Vec<_>, char>>()
            .ok()
            .with_context(|| format!("{}: roles are A or C: {line}", path.display()))?;
        labels.insert(call.to_owned(), roles);
    }
    Ok(labels)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::asr::Word;

    fn turn(role: Role, words: &[(&str, u64)]) -> Turn {
        let start = words[0].1;
        Turn {
            words: words
                .iter()
                .map(|&(text, start_ms)| Word {
                    text: text.into(),
                    start_ms,
                    end_ms: start_ms + 100,
                    probability: 1.0,
                })
                .collect(),
            ..Turn::text(role, start, start + 100 * words.len() as u64, String::new())
        }
    }

    #[test]
    fn words_take_the_role_of_the_paragraph_they_align_to() {
        let reference = vec![
            (Role::Agent, "Thank you for calling.".to_owned()),
            (Role::Customer, "Hi, I'm Ann.".to_owned()),
        ];
        let turns = vec![
            turn(Role::Agent, &[("Thank", 0), ("you", 100), ("for", 200)]),
            turn(Role::Customer, &[("calling.", 300), ("Hi,", 400)]),
            turn(Role::Unknown, &[("I'm", 500), ("Anne.", 600)]),
        ];
        let s = score_roles(&reference, &turns);
        assert_eq!((s.speech_ms, s.right_ms, s.unknown_ms), (700, 400, 200));
        assert_eq!((s.turns, s.spanning), (3, 1));
    }
}
