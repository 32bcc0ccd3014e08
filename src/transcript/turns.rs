//! Segments into turns: one speaker's consecutive segments are one turn, and on mono audio the
//! side a turn's words clearly belong to is guessed.

use super::{RoleSource, Turn};
use crate::asr::guards::is_cjk;
use crate::audio::channels::Role;

/// Segments of one speaker closer than this are one turn.
pub const TURN_JOIN_GAP_MS: u64 = 1_000;

/// Text that starts with a Chinese character or full-width punctuation: joined without a space.
fn is_cjk_text(s: &str) -> bool {
    s.chars()
        .next()
        .is_some_and(|c| is_cjk(c) || "，。？！".contains(c))
}

/// Orders segments by time across channels, and joins one channel's consecutive segments into a
/// turn while nobody else speaks in between. On a mono track every segment stays its own turn:
/// who speaks is not known there.
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

/// Phrases an agent uses to open or run a sales call, and a customer to explain why they call.
const AGENT_CUES: &[&str] = &[
    "这里是",
    "我是",
    "我们公司",
    "我们的产品",
    "请问您",
    "请问你",
    "您好，我",
    "感谢您的来电",
    "有什么可以帮您",
    "this is",
    "thank you for calling",
    "thanks for calling",
    "how can i help",
    "how may i help",
    "my name is",
    "i'm calling from",
    "calling from",
];
const CUSTOMER_CUES: &[&str] = &[
    "我想了解",
    "我想咨询",
    "我想问一下",
    "你们的价格",
    "太贵",
    "我们公司现在用",
    "i'm calling about",
    "i have a question",
    "i'd like to know",
    "too expensive",
    "we're currently using",
];

/// Mono recordings carry no speaker information. Where a turn's words clearly belong to one side
/// (an agent's self-introduction, a customer's enquiry), label it, marked as a heuristic; the
/// rest stay UNKNOWN.
pub fn infer_mono_roles(turns: &mut [Turn]) {
    for t in turns.iter_mut() {
        let lower = t.text.to_lowercase();
        let agent = AGENT_CUES.iter().any(|c| lower.contains(c));
        let customer = CUSTOMER_CUES.iter().any(|c| lower.contains(c));
        let role = match (agent, customer) {
            (true, false) => Role::Agent,
            (false, true) => Role::Customer,
            _ => continue,
        };
        t.role = role;
        t.role_source = RoleSource::Heuristic;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn turn(channel: usize, role: Role, start: u64, end: u64, text: &str) -> Turn {
        Turn {
            role,
            role_source: RoleSource::Channel,
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

    #[test]
    fn mono_roles_come_only_from_clear_cues() {
        let mut t = vec![
            turn(0, Role::Unknown, 0, 1, "您好，这里是星云软件，我是小王。"),
            turn(0, Role::Unknown, 1, 2, "我想了解一下你们的价格。"),
            turn(0, Role::Unknown, 2, 3, "好的。"),
        ];
        infer_mono_roles(&mut t);
        assert_eq!(
            (t[0].role, t[0].role_source),
            (Role::Agent, RoleSource::Heuristic)
        );
        assert_eq!(t[1].role, Role::Customer);
        assert_eq!(t[2].role, Role::Unknown);
    }
}
