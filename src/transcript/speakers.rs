//! Segments of a mono recording into speaker turns: every word goes to the speaker talking when
//! it was said (moved to the nearest end of a sentence), a segment is cut where its words change
//! speaker, and one speaker's consecutive pieces are joined into a turn. So a turn holds one
//! speaker's words.

use super::Turn;
use super::turns::{TURN_JOIN_GAP_MS, append_segment};
use crate::speakers::Diarization;

/// The label of speaker `k` (0-based): `S1`, `S2`, …
pub fn label(k: usize) -> String {
    format!("S{}", k + 1)
}

/// Cuts and labels a mono recording's segments by who speaks, and joins them into turns.
pub fn by_speaker(mut segments: Vec<Turn>, d: &Diarization) -> Vec<Turn> {
    segments.sort_by_key(|t| t.start_ms);
    let mut speakers: Vec<Vec<Option<usize>>> = segments
        .iter()
        .map(|seg| {
            seg.words
                .iter()
                .map(|w| speaker_at(d, w.start_ms, w.end_ms))
                .collect()
        })
        .collect();
    snap_to_sentences(&segments, &mut speakers);
    let mut turns: Vec<Turn> = Vec::new();
    for (seg, speakers) in segments.into_iter().zip(speakers) {
        let whole = speaker_at(d, seg.start_ms, seg.end_ms);
        for piece in split(seg, &speakers, whole) {
            match turns.last_mut() {
                Some(last)
                    if last.speaker == piece.speaker
                        && piece.start_ms <= last.end_ms + TURN_JOIN_GAP_MS =>
                {
                    append_segment(last, piece)
                }
                _ => turns.push(piece),
            }
        }
    }
    turns
}

/// How many words a change of speaker may move to land on the end of a sentence.
const SNAP_WORDS: usize = 3;

/// People take turns at the end of a sentence, and word times are a little late or early: a
/// change of speaker within SNAP_WORDS of a sentence's end (its punctuation, or the end of a
/// segment) moves there.
fn snap_to_sentences(segments: &[Turn], speakers: &mut [Vec<Option<usize>>]) {
    let at: Vec<(usize, usize)> = speakers
        .iter()
        .enumerate()
        .flat_map(|(s, w)| (0..w.len()).map(move |i| (s, i)))
        .collect();
    let ends_sentence = |k: usize| {
        let (s, i) = at[k];
        i + 1 == segments[s].words.len()
            || segments[s].words[i]
                .text
                .ends_with(['.', '?', '!', '。', '？', '！'])
    };
    let mut flat: Vec<Option<usize>> = at.iter().map(|&(s, i)| speakers[s][i]).collect();
    let mut k = 1;
    while k < flat.len() {
        if flat[k] != flat[k - 1] {
            let (before, after) = (flat[k - 1], flat[k]);
            // A cut before word c, after a sentence's end, with only these two speakers between.
            let cut = (k.saturating_sub(SNAP_WORDS).max(1)..=(k + SNAP_WORDS).min(flat.len() - 1))
                .filter(|&c| ends_sentence(c - 1))
                .filter(|&c| {
                    let (lo, hi) = (c.min(k), c.max(k));
                    flat[lo..hi]
                        .iter()
                        .all(|&x| x == if c < k { before } else { after })
                })
                .min_by_key(|&c| c.abs_diff(k));
            if let Some(c) = cut {
                let (lo, hi, who) = if c < k { (c, k, after) } else { (k, c, before) };
                flat[lo..hi].iter_mut().for_each(|x| *x = who);
                k = k.max(c);
            }
        }
        k += 1;
    }
    for (&(s, i), x) in at.iter().zip(flat) {
        speakers[s][i] = x;
    }
}

/// Who speaks over [start, end): the one who talks most there, else the nearest talker.
fn speaker_at(d: &Diarization, start_ms: u64, end_ms: u64) -> Option<usize> {
    d.speaker_of(start_ms, end_ms)
        .or_else(|| d.nearest_speaker((start_ms + end_ms) / 2))
}

/// One segment as runs of one speaker's words (`speakers`, one per word; a segment without
/// words is `whole`'s).
fn split(seg: Turn, speakers: &[Option<usize>], whole: Option<usize>) -> Vec<Turn> {
    let first = speakers.first().copied().unwrap_or(whole);
    if speakers.iter().all(|&s| s == first) {
        return vec![Turn {
            speaker: first.map(label),
            ..seg
        }];
    }
    // Each word as a piece of the segment, joined to its speaker's piece as segments are.
    let n = seg.words.len();
    let template = Turn {
        words: Vec::new(),
        text: String::new(),
        ..seg.clone()
    };
    let mut pieces: Vec<Turn> = Vec::new();
    for (i, (word, speaker)) in seg.words.iter().zip(speakers).enumerate() {
        let piece = Turn {
            speaker: speaker.map(label),
            start_ms: if i == 0 { seg.start_ms } else { word.start_ms },
            end_ms: if i + 1 == n { seg.end_ms } else { word.end_ms },
            text: word.text.clone(),
            words: vec![word.clone()],
            ..template.clone()
        };
        match pieces.last_mut() {
            Some(p) if p.speaker == piece.speaker => append_segment(p, piece),
            _ => pieces.push(piece),
        }
    }
    pieces
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::asr::Word;
    use crate::audio::channels::Role;
    use crate::speakers::SpeakerTurn;

    fn word(text: &str, start_ms: u64, end_ms: u64) -> Word {
        Word {
            text: text.into(),
            start_ms,
            end_ms,
            probability: 0.9,
        }
    }

    fn diarization() -> Diarization {
        let t = |speaker, start_ms, end_ms| SpeakerTurn {
            speaker,
            start_ms,
            end_ms,
        };
        Diarization {
            speakers: 2,
            turns: vec![t(0, 0, 2_000), t(1, 2_100, 4_000), t(0, 4_500, 6_000)],
            voiceprints: Vec::new(),
        }
    }

    #[test]
    fn a_segment_is_cut_where_the_speaker_changes() {
        let seg = Turn {
            words: vec![
                word("Thank", 100, 400),
                word("you.", 400, 900),
                word("Hi,", 2_200, 2_500),
                word("Daniel.", 2_500, 3_000),
            ],
            ..Turn::text(Role::Unknown, 0, 3_100, "Thank you. Hi, Daniel.".into())
        };
        let later = Turn::text(Role::Unknown, 4_600, 5_000, "好的。".into());
        let turns = by_speaker(vec![later, seg], &diarization());
        let got: Vec<_> = turns
            .iter()
            .map(|t| (t.speaker.as_deref(), t.text.as_str(), t.start_ms, t.end_ms))
            .collect();
        assert_eq!(
            got,
            vec![
                (Some("S1"), "Thank you.", 0, 900),
                (Some("S2"), "Hi, Daniel.", 2_200, 3_100),
                (Some("S1"), "好的。", 4_600, 5_000),
            ]
        );
        assert_eq!(turns[1].words.len(), 2);
    }

    #[test]
    fn a_change_of_speaker_moves_to_the_end_of_a_sentence() {
        // "impressed." ends the first speaker's sentence but its time falls in the second's turn.
        let seg = Turn {
            words: vec![
                word("quite", 1_500, 1_900),
                word("impressed.", 2_050, 2_400),
                word("Thank", 2_500, 2_700),
                word("you.", 2_700, 3_000),
            ],
            ..Turn::text(
                Role::Unknown,
                1_500,
                3_000,
                "quite impressed. Thank you.".into(),
            )
        };
        let turns = by_speaker(vec![seg], &diarization());
        let got: Vec<_> = turns
            .iter()
            .map(|t| (t.speaker.as_deref(), t.text.as_str()))
            .collect();
        assert_eq!(
            got,
            vec![(Some("S1"), "quite impressed."), (Some("S2"), "Thank you.")]
        );
    }

    #[test]
    fn one_speakers_pieces_join_into_a_turn() {
        let a = Turn::text(Role::Unknown, 0, 800, "您好，".into());
        let b = Turn::text(Role::Unknown, 1_000, 1_900, "这里是星云软件。".into());
        let turns = by_speaker(vec![a, b], &diarization());
        assert_eq!(turns.len(), 1);
        assert_eq!(turns[0].text, "您好，这里是星云软件。");
    }
}
