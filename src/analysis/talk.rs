//! Talk metrics: who talked how much, monologues, silence, interruptions, pace, questions, and
//! how fast the agent answers.

use crate::asr::guards::is_cjk;
use crate::audio::channels::Role;
use crate::transcript::Turn;
use serde::{Deserialize, Serialize};

/// Silence shorter than this between turns is ordinary turn-taking, not dead air.
const DEAD_AIR_MS: u64 = 3_000;

#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
pub struct RoleMetrics {
    pub turns: usize,
    pub talk_ms: u64,
    /// Share of all talk time (0–1).
    pub talk_ratio: f64,
    pub longest_monologue_ms: u64,
    /// Characters per minute for Chinese, words per minute otherwise.
    pub speech_rate: f64,
    pub speech_rate_unit: String,
    pub questions: usize,
    /// Times this side started talking while the other side was still talking.
    pub interruptions: usize,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
pub struct TalkMetrics {
    pub agent: RoleMetrics,
    pub customer: RoleMetrics,
    pub unknown: RoleMetrics,
    pub call_ms: u64,
    /// Time in which nobody talked, in stretches of at least 3 s.
    pub dead_air_ms: u64,
    pub longest_silence_ms: u64,
    /// Time in which both sides talked at once.
    pub overtalk_ms: u64,
    /// Agent's start minus the customer's end, averaged over the customer turns it answered.
    pub agent_response_latency_ms: Option<u64>,
    pub agent_response_latency_max_ms: Option<u64>,
}

/// Speech units of a text and their rate unit: characters for Chinese, words otherwise.
pub(crate) fn units(text: &str) -> (usize, &'static str) {
    let cjk = text.chars().filter(|&c| is_cjk(c)).count();
    if cjk * 2 >= text.chars().filter(|c| c.is_alphanumeric()).count().max(1) {
        (cjk, "chars_per_minute")
    } else {
        (text.split_whitespace().count(), "words_per_minute")
    }
}

/// Questions: sentences ending in a question mark, and Chinese ones ending in 吗/呢 without one.
fn questions(text: &str) -> usize {
    let marked = text.chars().filter(|&c| c == '?' || c == '？').count();
    let unmarked = text
        .split(['。', '，', '！', '.', ','])
        .filter(|s| {
            let s = s.trim();
            s.ends_with('吗') || s.ends_with('呢')
        })
        .count();
    marked + unmarked
}

/// Computes the metrics of a call from its turns (in time order) and its length.
pub fn talk_metrics(turns: &[Turn], call_ms: u64) -> TalkMetrics {
    let mut m = TalkMetrics {
        call_ms,
        ..TalkMetrics::default()
    };
    let total_talk: u64 = turns.iter().map(|t| t.end_ms - t.start_ms).sum();
    let mut unit_counts = [0usize; 3];
    for (i, t) in turns.iter().enumerate() {
        let idx = match t.role {
            Role::Agent => 0,
            Role::Customer => 1,
            Role::Unknown => 2,
        };
        let r = match t.role {
            Role::Agent => &mut m.agent,
            Role::Customer => &mut m.customer,
            Role::Unknown => &mut m.unknown,
        };
        let dur = t.end_ms - t.start_ms;
        r.turns += 1;
        r.talk_ms += dur;
        r.longest_monologue_ms = r.longest_monologue_ms.max(dur);
        r.questions += questions(&t.text);
        let (n, unit) = units(&t.text);
        unit_counts[idx] += n;
        r.speech_rate_unit = unit.into();
        // Interruption: starting while the other side's previous turn is still going.
        if let Some(prev) = turns[..i].iter().rev().find(|p| p.role != t.role)
            && t.role != Role::Unknown
            && t.start_ms < prev.end_ms
            && t.start_ms > prev.start_ms
        {
            r.interruptions += 1;
        }
    }
    for (r, n) in [
        (&mut m.agent, unit_counts[0]),
        (&mut m.customer, unit_counts[1]),
        (&mut m.unknown, unit_counts[2]),
    ] {
        r.talk_ratio = if total_talk > 0 {
            r.talk_ms as f64 / total_talk as f64
        } else {
            0.0
        };
        r.speech_rate = if r.talk_ms > 0 {
            n as f64 * 60_000.0 / r.talk_ms as f64
        } else {
            0.0
        };
    }

    // Silence and overtalk from the union / intersection of speech intervals.
    let mut spans: Vec<(u64, u64, Role)> = turns
        .iter()
        .map(|t| (t.start_ms, t.end_ms, t.role))
        .collect();
    spans.sort_by_key(|s| s.0);
    let mut covered_until = 0u64;
    for &(s, e, _) in &spans {
        if s > covered_until {
            let gap = s - covered_until;
            if gap >= DEAD_AIR_MS {
                m.dead_air_ms += gap;
            }
            m.longest_silence_ms = m.longest_silence_ms.max(gap);
        }
        covered_until = covered_until.max(e);
    }
    if call_ms > covered_until {
        let gap = call_ms - covered_until;
        m.longest_silence_ms = m.longest_silence_ms.max(gap);
        if gap >= DEAD_AIR_MS {
            m.dead_air_ms += gap;
        }
    }
    for (i, a) in spans.iter().enumerate() {
        for b in spans.iter().skip(i + 1).take_while(|b| b.0 < a.1) {
            if a.2 != b.2 {
                m.overtalk_ms += a.1.min(b.1) - b.0;
            }
        }
    }

    // Agent response latency: the first agent turn after each customer turn.
    let mut latencies = Vec::new();
    for (i, t) in turns
        .iter()
        .enumerate()
        .filter(|(_, t)| t.role == Role::Customer)
    {
        let next = turns[i + 1..].iter().find(|n| n.role != Role::Unknown);
        if let Some(n) = next.filter(|n| n.role == Role::Agent && n.start_ms >= t.end_ms) {
            latencies.push(n.start_ms - t.end_ms);
        }
    }
    if !latencies.is_empty() {
        m.agent_response_latency_ms = Some(latencies.iter().sum::<u64>() / latencies.len() as u64);
        m.agent_response_latency_max_ms = latencies.iter().max().copied();
    }
    m
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::transcript::RoleSource;

    fn turn(role: Role, start: u64, end: u64, text: &str) -> Turn {
        Turn {
            role_source: RoleSource::Channel,
            ..Turn::text(role, start, end, text.into())
        }
    }

    #[test]
    fn ratios_silence_overtalk_interruptions_and_latency() {
        let turns = vec![
            turn(
                Role::Agent,
                0,
                6_000,
                "您好，这里是星云软件。请问您现在用什么系统管理客户？",
            ),
            turn(Role::Customer, 6_500, 9_000, "我们用表格。贵吗"),
            turn(Role::Agent, 8_500, 12_000, "不贵，一年三千元。"),
            turn(Role::Customer, 17_000, 18_000, "好的。"),
        ];
        let m = talk_metrics(&turns, 20_000);
        assert_eq!(
            (m.agent.turns, m.agent.talk_ms, m.customer.talk_ms),
            (2, 9_500, 3_500)
        );
        assert!((m.agent.talk_ratio - 9_500.0 / 13_000.0).abs() < 1e-9);
        assert_eq!(m.agent.longest_monologue_ms, 6_000);
        assert_eq!((m.agent.questions, m.customer.questions), (1, 1));
        assert_eq!(
            m.agent.interruptions, 1,
            "the agent started at 8.5 s, before the customer finished"
        );
        assert_eq!(m.overtalk_ms, 500);
        assert_eq!(m.longest_silence_ms, 5_000);
        assert_eq!(m.dead_air_ms, 5_000);
        assert_eq!(
            m.agent_response_latency_ms, None,
            "the only reply overlapped: no latency"
        );
        assert_eq!(m.agent.speech_rate_unit, "chars_per_minute");
        assert!(m.agent.speech_rate > 100.0);
    }
}
