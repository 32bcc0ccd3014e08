//! Segments into turns: one channel's consecutive segments are one turn.

use super::Turn;
use crate::asr::guards::is_cjk;

/// Segments of one speaker closer than this are one turn.
pub const TURN_JOIN_GAP_MS: u64 = 1_000;

/// Text that starts with a Chinese character or full-width punctuation: joined without a space.
fn is_cjk_text(s: &str) -> bool {
    s.chars()
        .next()
        .is_some_and(|c| is_cjk(c) || "，。？！".contains(c))
}

/// Orders segments by time across channels, and joins one channel's consecutive segments into a
/// turn while nobody else speaks in between. On a mono track without speakers every segment
/// stays its own turn: who speaks is not known there (see `speakers::by_speaker`).
pub(crate) fn join_turns(mut segments: Vec<Turn>) -> Vec<Turn> {
    segments.sort_by_key(|t| (t.start_ms, t.channel));
    let mut turns: Vec<Turn> = Vec::new();
    for seg in segments {
        match turns.last_mut() {
            // Only channel-attributed speech is known to be one speaker; mono segments stay apart.
            Some(last)
                if last.channel.is_some()
                    && last.channel == seg.channel
                    && last.role == seg.role
                    && seg.start_ms <= last.end_ms + TURN_JOIN_GAP_MS =>
            {
                append_segment(last, seg)
            }
            _ => turns.push(seg),
        }
    }
    turns
}

/// Adds the next segment of the same speaker to a turn.
pub fn append_segment(last: &mut Turn, seg: Turn) {
    let (n_last, n_seg) = (
        last.words.len().max(1) as f32,
        seg.words.len().max(1) as f32,
    );
    last.avg_logprob = (last.avg_logprob * n_last + seg.avg_logprob * n_seg) / (n_last + n_seg);
    if !(is_cjk_text(&seg.text) || last.text.ends_with(|c: char| "，。？！".contains(c))) {
        last.text.push(' ');
    }
    last.text.push_str(&seg.text);
    last.end_ms = last.end_ms.max(seg.end_ms);
    last.words.extend(seg.words);
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::audio::channels::Role;
    use crate::transcript::RoleSource;

    fn turn(channel: usize, role: Role, start: u64, end: u64, text: &str) -> Turn {
        Turn {
            role,
            role_source: RoleSource::Channel,
            role_confidence: None,
            speaker: None,
            channel: Some(channel),
            start_ms: start,
            end_ms: end,
            text: text.into(),
            words: vec![],
            avg_logprob: -0.2,
            prosody: None,
        }
    }

    #[test]
    fn turns_interleave_by_time_and_join_within_a_speaker() {
        let segs = vec![
            turn(1, Role::Customer, 5_000, 7_000, "多少钱？"),
            turn(0, Role::Agent, 0, 2_000, "您好，"),
            turn(0, Role::Agent, 2_500, 4_000, "这里是销售部。"),
            turn(0, Role::Agent, 8_000, 9_000, "一万元。"),
        ];
        let t = join_turns(segs);
        assert_eq!(t.len(), 3);
        assert_eq!(
            (t[0].role, t[0].start_ms, t[0].end_ms),
            (Role::Agent, 0, 4_000)
        );
        assert_eq!(t[0].text, "您好，这里是销售部。");
        assert_eq!(t[1].role, Role::Customer);
        assert_eq!(t[2].text, "一万元。");
    }
}
