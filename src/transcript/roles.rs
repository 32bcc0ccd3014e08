//! Roles on a recording whose speakers were told apart by their voices: which speaker is the
//! agent. Evidence, strongest first: the rep's enrolled voiceprint, what each speaker says (an
//! agent introduces the company and offers help, a customer explains what they want), and the
//! call's direction (on an inbound call the agent answers). A role below MIN_ROLE_CONFIDENCE is
//! not given: the turns stay UNKNOWN, and nothing that needs roles is scored from them.

use super::{RoleSource, Turn};
use crate::audio::channels::Role;
use crate::speakers::{Voiceprint, encoder::similarity};
use serde::{Deserialize, Serialize};

/// Roles less sure than this are left UNKNOWN.
pub const MIN_ROLE_CONFIDENCE: f32 = 0.8;

/// Who placed the call.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "snake_case")]
pub enum Direction {
    #[default]
    Unknown,
    /// The customer called: the agent answers, so speaks first.
    Inbound,
    /// The agent called: the customer answers.
    Outbound,
}

/// What is known of a call's people before its words are read.
#[derive(Debug, Clone, Default)]
pub struct RoleHints {
    pub direction: Direction,
    /// The rep's voiceprint, when one is enrolled.
    pub rep_voiceprint: Option<Voiceprint>,
}

/// One speaker of a mono recording and the role decided for them.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SpeakerRole {
    /// `S1`, `S2`, … in order of first speech.
    pub speaker: String,
    pub role: Role,
    pub role_source: RoleSource,
    /// How sure the role is (0–1); below MIN_ROLE_CONFIDENCE the role is UNKNOWN.
    pub confidence: f32,
    pub talk_ms: u64,
}

/// Phrases, with their weight, that an agent says to open or run a call; a customer's phrases
/// weigh against. Each counts once per turn.
const AGENT_CUES: &[(&str, f32)] = &[
    ("thank you for calling", 2.0),
    ("thanks for calling", 2.0),
    ("how can i help", 2.0),
    ("how may i help", 2.0),
    ("how can i assist", 2.0),
    ("how may i assist", 2.0),
    ("how can we help", 2.0),
    ("how can we assist", 2.0),
    ("what can i do for you", 2.0),
    ("calling from", 1.5),
    ("i'm calling from", 1.5),
    ("my name is", 0.7),
    ("can i have your", 1.0),
    ("could i have your", 1.0),
    ("may i have your", 1.0),
    ("can i confirm your", 1.0),
    ("could you confirm your", 1.0),
    ("i'll send you", 1.0),
    ("i will send you", 1.0),
    ("our company", 0.7),
    ("our product", 0.7),
    ("we offer", 0.7),
    ("is there anything else i can", 1.5),
    ("have a great day", 0.7),
    ("感谢您的来电", 2.0),
    ("有什么可以帮您", 2.0),
    ("有什么可以帮你", 2.0),
    ("有什么需要帮助", 2.0),
    ("这里是", 1.5),
    ("您好，我是", 1.5),
    ("你好，我是", 1.0),
    ("请问您", 0.7),
    ("请问你", 0.5),
    ("我们公司", 0.7),
    ("我们的产品", 1.0),
    ("给您发", 1.0),
    ("帮您", 0.7),
    ("为您", 0.7),
];
const CUSTOMER_CUES: &[(&str, f32)] = &[
    ("i'm interested in", 1.5),
    ("i'm calling about", 1.5),
    ("i'm calling to", 1.0),
    ("i have a question", 1.0),
    ("i'd like to know", 1.0),
    ("i'd like to", 0.5),
    ("i was wondering", 0.7),
    ("i want to", 0.5),
    ("too expensive", 1.0),
    ("we're currently using", 1.0),
    ("my account", 0.7),
    ("我想了解", 1.5),
    ("我想咨询", 1.5),
    ("我想问", 1.0),
    ("太贵", 1.0),
    ("我们现在用", 1.0),
    ("我们公司现在用", 1.0),
];
/// Who answers first, on a call of known direction: evidence, but not enough alone.
const DIRECTION_WEIGHT: f32 = 0.5;
/// Asking questions leans agent (discovery, confirmation), up to a cap.
const QUESTION_WEIGHT: f32 = 0.25;
const MAX_QUESTION_EVIDENCE: f32 = 1.0;
/// A voiceprint decides when the rep's voice is this much nearer one speaker than any other,
/// and at least this close to it.
const MIN_VOICE_MARGIN: f32 = 0.05;
const MIN_VOICE_SIMILARITY: f32 = 0.6;

/// How much a speaker's words sound like the agent's (positive) or the customer's.
fn content_evidence(turns: &[&Turn]) -> f32 {
    let mut score = 0.0;
    let mut questions = 0.0;
    for t in turns {
        let lower = t.text.to_lowercase();
        let weigh = |cues: &[(&str, f32)]| -> f32 {
            cues.iter()
                .filter(|(c, _)| lower.contains(c))
                .map(|(_, w)| w)
                .sum()
        };
        score += weigh(AGENT_CUES) - weigh(CUSTOMER_CUES);
        questions += lower.matches(['?', '？']).count() as f32;
    }
    score + (questions * QUESTION_WEIGHT).min(MAX_QUESTION_EVIDENCE)
}

fn logistic(x: f32) -> f32 {
    1.0 / (1.0 + (-x).exp())
}

/// Decides the role of each speaker (turns labelled `S1`, `S2`, …; `voiceprints[k]` is speaker
/// k+1's), writes it into their turns, and returns it per speaker.
pub fn decide(
    turns: &mut [Turn],
    voiceprints: &[Voiceprint],
    hints: &RoleHints,
) -> Vec<SpeakerRole> {
    let mut labels: Vec<String> = Vec::new();
    for t in turns.iter() {
        if let Some(s) = &t.speaker
            && !labels.contains(s)
        {
            labels.push(s.clone());
        }
    }
    labels.sort_by_key(|l| {
        l.trim_start_matches('S')
            .parse::<usize>()
            .unwrap_or(usize::MAX)
    });
    if labels.is_empty() {
        return Vec::new();
    }
    let of = |label: &str| -> Vec<&Turn> {
        turns
            .iter()
            .filter(|t| t.speaker.as_deref() == Some(label))
            .collect()
    };
    let talk_ms: Vec<u64> = labels
        .iter()
        .map(|l| of(l).iter().map(|t| t.end_ms - t.start_ms).sum())
        .collect();
    let first = turns
        .iter()
        .min_by_key(|t| t.start_ms)
        .and_then(|t| t.speaker.clone());
    let evidence: Vec<f32> = labels
        .iter()
        .map(|l| {
            let direction = match hints.direction {
                Direction::Inbound if first.as_deref() == Some(l) => DIRECTION_WEIGHT,
                Direction::Outbound if first.as_deref() == Some(l) => -DIRECTION_WEIGHT,
                _ => 0.0,
            };
            content_evidence(&of(l)) + direction
        })
        .collect();
    let (agent, source, confidence) = match voice_match(voiceprints, hints) {
        Some((k, confidence)) if k < labels.len() => (k, RoleSource::Voiceprint, confidence),
        _ => by_content(&evidence),
    };
    let sure = confidence >= MIN_ROLE_CONFIDENCE;
    let decided: Vec<SpeakerRole> = labels
        .iter()
        .enumerate()
        .map(|(k, l)| SpeakerRole {
            speaker: l.clone(),
            role: match (sure, k == agent) {
                (false, _) => Role::Unknown,
                (true, true) => Role::Agent,
                (true, false) => Role::Customer,
            },
            role_source: if sure { source } else { RoleSource::Unknown },
            confidence,
            talk_ms: talk_ms[k],
        })
        .collect();
    for t in turns.iter_mut() {
        if let Some(r) = decided
            .iter()
            .find(|r| Some(&r.speaker) == t.speaker.as_ref())
        {
            t.role = r.role;
            t.role_source = r.role_source;
            t.role_confidence = sure.then_some(r.confidence);
        }
    }
    decided
}

/// The agent by the words: the speaker with the most agent evidence, as sure as their lead over
/// the next one. A lone speaker is the agent only on positive evidence.
fn by_content(evidence: &[f32]) -> (usize, RoleSource, f32) {
    let mut order: Vec<usize> = (0..evidence.len()).collect();
    order.sort_by(|&a, &b| evidence[b].total_cmp(&evidence[a]));
    let best = order[0];
    let margin = match order.get(1) {
        Some(&next) => evidence[best] - evidence[next],
        None => evidence[best],
    };
    (best, RoleSource::Content, logistic(2.0 * margin))
}

/// The speaker whose voice is the rep's, and how sure that is.
fn voice_match(voiceprints: &[Voiceprint], hints: &RoleHints) -> Option<(usize, f32)> {
    let rep = hints.rep_voiceprint.as_ref()?;
    let sims: Vec<f32> = voiceprints.iter().map(|v| similarity(v, rep)).collect();
    let mut order: Vec<usize> = (0..sims.len()).collect();
    order.sort_by(|&a, &b| sims[b].total_cmp(&sims[a]));
    let best = *order.first()?;
    let margin = order.get(1).map_or(sims[best], |&n| sims[best] - sims[n]);
    (sims[best] >= MIN_VOICE_SIMILARITY && margin >= MIN_VOICE_MARGIN)
        .then(|| (best, (0.5 + 4.0 * margin).min(0.99)))
}

/// Whether too much of the call is said by no known role for role-based judgements: UNKNOWN
/// turns hold more than a tenth of its words.
pub fn roles_unknown(turns: &[Turn]) -> bool {
    let size = |t: &Turn| t.text.chars().filter(|c| !c.is_whitespace()).count();
    let total: usize = turns.iter().map(size).sum();
    let unknown: usize = turns
        .iter()
        .filter(|t| t.role == Role::Unknown)
        .map(size)
        .sum();
    total > 0 && unknown * 10 > total
}

#[cfg(test)]
mod tests {
    use super::*;

    fn turn(speaker: &str, start: u64, text: &str) -> Turn {
        Turn {
            speaker: Some(speaker.into()),
            ..Turn::text(Role::Unknown, start, start + 1_000, text.into())
        }
    }

    #[test]
    fn the_speaker_who_introduces_the_company_is_the_agent() {
        let mut t = vec![
            turn(
                "S1",
                0,
                "Hello, thank you for calling Acme. How can I help you?",
            ),
            turn("S2", 2_000, "Hi, I'm interested in your premium plan."),
            turn("S1", 4_000, "Sure. Could I have your email address?"),
        ];
        let r = decide(&mut t, &[], &RoleHints::default());
        assert_eq!((r[0].role, r[1].role), (Role::Agent, Role::Customer));
        assert_eq!(r[0].role_source, RoleSource::Content);
        assert!(r[0].confidence > 0.95);
        assert_eq!(t[1].role, Role::Customer);
        assert!(!roles_unknown(&t));
    }

    #[test]
    fn without_evidence_roles_stay_unknown() {
        let mut t = vec![turn("S1", 0, "好的。"), turn("S2", 1_000, "嗯，对。")];
        let r = decide(&mut t, &[], &RoleHints::default());
        assert!(
            r.iter()
                .all(|r| r.role == Role::Unknown && r.confidence < 0.6)
        );
        assert!(t.iter().all(|t| t.role_source == RoleSource::Unknown));
        assert!(roles_unknown(&t));
        // The call's direction alone is not enough either.
        let hints = RoleHints {
            direction: Direction::Inbound,
            ..RoleHints::default()
        };
        assert_eq!(decide(&mut t, &[], &hints)[0].role, Role::Unknown);
    }

    #[test]
    fn the_reps_voice_outweighs_the_words() {
        let mut t = vec![
            turn("S1", 0, "您好，这里是星云软件，有什么可以帮您？"),
            turn("S2", 1_000, "我想了解一下价格。"),
        ];
        let unit = |i: usize| {
            let mut v = vec![0f32; 4];
            v[i] = 1.0;
            v
        };
        let hints = RoleHints {
            rep_voiceprint: Some(unit(1)),
            ..RoleHints::default()
        };
        let r = decide(&mut t, &[unit(0), unit(1)], &hints);
        assert_eq!(
            (r[1].role, r[1].role_source),
            (Role::Agent, RoleSource::Voiceprint)
        );
        // A voiceprint that matches nobody leaves the words to decide.
        let hints = RoleHints {
            rep_voiceprint: Some(unit(2)),
            ..RoleHints::default()
        };
        let r = decide(&mut t, &[unit(0), unit(1)], &hints);
        assert_eq!(
            (r[0].role, r[0].role_source),
            (Role::Agent, RoleSource::Content)
        );
    }
}
