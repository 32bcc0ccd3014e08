//! The scorecard: the playbook's skill dimensions (需求挖掘深度, 竞品应对, …), each 0–100 from
//! named signals with the playbook's weights, pass or fail against its threshold, with the
//! evidence behind every signal.
//!
//! Every signal is a value in 0–1 (1 = what a good call does) or "not applicable" (no competitor
//! came up, so competitor handling cannot be judged). A dimension is the weighted mean of its
//! applicable signals; with none applicable it has no score and neither passes nor fails.

use super::Analysis;
use super::competitors::AgentResponse;
use super::playbook::{Dimension, Playbook};
use crate::audio::channels::Role;
use crate::transcript::{Turn, roles_unknown};
use serde::{Deserialize, Serialize};

/// The agent's share of talk time that counts as balanced (top reps talk 40–60 %).
const TALK_RATIO_BAND: (f64, f64) = (0.35, 0.60);
/// Monologues up to a minute are fine; three minutes is a lecture.
const MONOLOGUE_MS: (f64, f64) = (60_000.0, 180_000.0);
/// Answering within a second is fine; five seconds is too slow.
const LATENCY_MS: (f64, f64) = (1_000.0, 5_000.0);

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct Scorecard {
    pub dimensions: Vec<DimensionScore>,
}

/// The call as a whole: the mean of the dimension scores it was judged on, and whether every
/// dimension judged passed. Both `null` when no dimension could be judged.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
pub struct Overall {
    pub score: Option<f64>,
    pub passed: Option<bool>,
    /// Why the call was not judged, when nothing could be: "roles unknown", "no speech".
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub not_judged: Option<String>,
}

impl Scorecard {
    /// The call's score: the mean of the dimension scores it was judged on.
    pub fn score(&self) -> Option<f64> {
        let scores: Vec<f64> = self.dimensions.iter().filter_map(|d| d.score).collect();
        (!scores.is_empty()).then(|| scores.iter().sum::<f64>() / scores.len() as f64)
    }

    /// Whether every dimension judged passed; None when none was judged.
    pub fn passed(&self) -> Option<bool> {
        let judged: Vec<bool> = self.dimensions.iter().filter_map(|d| d.passed).collect();
        (!judged.is_empty()).then(|| judged.iter().all(|&p| p))
    }

    pub fn overall(&self, analysis: &Analysis) -> Overall {
        let score = self.score();
        Overall {
            score,
            passed: self.passed(),
            not_judged: score
                .is_none()
                .then(|| why_not_judged(analysis))
                .flatten()
                .map(str::to_owned),
        }
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct DimensionScore {
    pub id: String,
    pub name: String,
    /// 0–100; None when none of its signals applies to this call.
    pub score: Option<f64>,
    pub pass_threshold: f32,
    pub passed: Option<bool>,
    pub signals: Vec<SignalScore>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct SignalScore {
    pub signal: String,
    pub weight: f32,
    /// 0–1; None when not applicable.
    pub value: Option<f64>,
    /// What was measured, in words.
    pub detail: String,
    pub evidence: Vec<Evidence>,
}

/// A turn behind a judgement.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Evidence {
    pub turn: usize,
    pub time_ms: u64,
    pub text: String,
}

impl Evidence {
    fn of(turns: &[Turn], turn: usize) -> Self {
        Self {
            turn,
            time_ms: turns[turn].start_ms,
            text: turns[turn].text.clone(),
        }
    }
}

/// 1 up to `good`, falling linearly to 0 at `bad`.
fn falling(x: f64, (good, bad): (f64, f64)) -> f64 {
    ((bad - x) / (bad - good)).clamp(0.0, 1.0)
}

struct Signal {
    value: Option<f64>,
    detail: String,
    evidence: Vec<Evidence>,
}

fn signal(value: Option<f64>, detail: String, evidence: Vec<Evidence>) -> Signal {
    Signal {
        value: value.map(|v| v.clamp(0.0, 1.0)),
        detail,
        evidence,
    }
}

/// Why no signal can be judged on a call: no speech (a silent line is not a rep's failure), or
/// roles too little known. Every signal is about what the agent or the customer did, so none is
/// scored from a mono recording whose speakers could not be told apart as agent and customer.
fn why_not_judged(r: &Analysis) -> Option<&'static str> {
    if r.turns.is_empty() {
        Some(NO_SPEECH)
    } else if roles_unknown(&r.turns) {
        Some(ROLES_UNKNOWN)
    } else {
        None
    }
}

const NO_SPEECH: &str = "no speech in the call";
pub const ROLES_UNKNOWN: &str = "roles unknown";

fn measure(name: &str, r: &Analysis) -> Signal {
    let turns = &r.turns;
    if let Some(why) = why_not_judged(r) {
        return signal(None, why.into(), vec![]);
    }
    let ev = |i: usize| Evidence::of(turns, i);
    let agent = &r.talk.agent;
    match name {
        "key_question_coverage" => {
            let q = &r.key_questions.questions;
            let missing: Vec<&str> = q
                .iter()
                .filter(|q| !q.satisfied)
                .map(|q| q.id.as_str())
                .collect();
            signal(
                (!q.is_empty()).then_some(r.key_questions.percent / 100.0),
                format!(
                    "{} of {} key questions asked as required; missing: {}",
                    q.len() - missing.len(),
                    q.len(),
                    if missing.is_empty() {
                        "none".into()
                    } else {
                        missing.join(", ")
                    }
                ),
                q.iter()
                    .flat_map(|q| q.matches.iter().filter(|m| m.counts).take(1))
                    .map(|m| ev(m.turn))
                    .collect(),
            )
        }
        "competitor_response" => {
            let raised: Vec<_> = r
                .competitor_mentions
                .iter()
                .filter(|m| m.agent_response != AgentResponse::NotApplicable)
                .collect();
            let credit = |a: AgentResponse| match a {
                AgentResponse::Comparison => 1.0,
                AgentResponse::Value => 0.6,
                _ => 0.0,
            };
            let value = (!raised.is_empty()).then(|| {
                raised.iter().map(|m| credit(m.agent_response)).sum::<f64>() / raised.len() as f64
            });
            let answered = raised
                .iter()
                .filter(|m| m.agent_response != AgentResponse::Nothing)
                .count();
            signal(
                value,
                format!(
                    "{answered} of {} competitor mentions by the customer answered (comparison 1, value argument 0.6, nothing 0)",
                    raised.len()
                ),
                raised
                    .iter()
                    .flat_map(|m| std::iter::once(m.turn).chain(m.response_turn))
                    .map(ev)
                    .collect(),
            )
        }
        "objection_response" => {
            let o = &r.summary.objections;
            let answered = o.iter().filter(|o| o.response_turn.is_some()).count();
            signal(
                (!o.is_empty()).then(|| answered as f64 / o.len() as f64),
                format!(
                    "{answered} of {} customer objections taken up by the agent within a minute",
                    o.len()
                ),
                o.iter()
                    .flat_map(|o| std::iter::once(o.item.turn).chain(o.response_turn))
                    .map(ev)
                    .collect(),
            )
        }
        "customer_frustration" | "customer_perfunctory" => {
            let frustration = name == "customer_frustration";
            let Some(c) = r.emotion.role(Role::Customer) else {
                return signal(None, "no customer turns".into(), vec![]);
            };
            let (mean, peak) = if frustration {
                (c.mean.frustration, &c.peak_frustration)
            } else {
                (c.mean.perfunctory, &c.peak_perfunctory)
            };
            let peak_score = peak.as_ref().map_or(0.0, |p| p.score);
            // Half the mean, half the worst moment: one outburst matters, but so does the call.
            let value = 1.0 - 0.5 * f64::from(mean + peak_score);
            signal(
                Some(value),
                format!("customer mean {mean:.2}, peak {peak_score:.2}"),
                peak.iter().map(|p| ev(p.turn)).collect(),
            )
        }
        "agent_talk_ratio" => {
            let known = agent.talk_ms + r.talk.customer.talk_ms > 0;
            let x = agent.talk_ratio;
            let (lo, hi) = TALK_RATIO_BAND;
            let value = if x < lo {
                x / lo
            } else if x > hi {
                (1.0 - x) / (1.0 - hi)
            } else {
                1.0
            };
            signal(
                known.then_some(value),
                format!(
                    "agent talked {:.0} % of the time (balanced: {:.0}–{:.0} %)",
                    x * 100.0,
                    lo * 100.0,
                    hi * 100.0
                ),
                vec![],
            )
        }
        "agent_longest_monologue" => signal(
            (agent.turns > 0).then(|| falling(agent.longest_monologue_ms as f64, MONOLOGUE_MS)),
            format!(
                "longest agent monologue {:.0} s",
                agent.longest_monologue_ms as f64 / 1000.0
            ),
            vec![],
        ),
        "interruptions_by_agent" => signal(
            (agent.turns > 0).then_some(1.0 - 0.25 * agent.interruptions as f64),
            format!(
                "the agent interrupted {} times (−0.25 each)",
                agent.interruptions
            ),
            vec![],
        ),
        "agent_response_latency" => {
            let latency = r.talk.agent_response_latency_ms;
            signal(
                latency.map(|l| falling(l as f64, LATENCY_MS)),
                match latency {
                    Some(l) => {
                        format!("agent answered after {:.1} s on average", l as f64 / 1000.0)
                    }
                    None => "the agent never answered a customer turn".into(),
                },
                vec![],
            )
        }
        "customer_questions" => {
            let n = r.talk.customer.questions;
            signal(
                (r.talk.customer.turns > 0).then(|| n as f64 / 3.0),
                format!("the customer asked {n} questions (3 or more: engaged)"),
                vec![],
            )
        }
        "needs_captured" => {
            let needs = &r.summary.core_needs;
            signal(
                Some(needs.len() as f64 / 2.0),
                format!(
                    "{} customer needs stated (2 or more: full marks)",
                    needs.len()
                ),
                needs.iter().map(|n| ev(n.turn)).collect(),
            )
        }
        "next_step_commitment" => {
            let c = &r.summary.commitments;
            let dated = c.iter().any(|c| c.due.is_some());
            signal(
                Some(if dated {
                    1.0
                } else if c.is_empty() {
                    0.0
                } else {
                    0.7
                }),
                format!(
                    "{} next-step commitments, {} with a date",
                    c.len(),
                    c.iter().filter(|c| c.due.is_some()).count()
                ),
                c.iter().map(|c| ev(c.item.turn)).collect(),
            )
        }
        _ => match name
            .strip_prefix("question:")
            .and_then(|id| r.key_questions.questions.iter().find(|q| q.id == id))
        {
            Some(q) => signal(
                Some(if q.satisfied { 1.0 } else { 0.0 }),
                format!(
                    "{}: {} counting matches{}",
                    q.id,
                    q.count,
                    if q.satisfied { "" } else { " (not satisfied)" }
                ),
                q.matches
                    .iter()
                    .filter(|m| m.counts)
                    .map(|m| ev(m.turn))
                    .collect(),
            ),
            // Playbook validation rejects unknown signals; this keeps the scorecard total.
            None => signal(None, format!("unknown signal {name}"), vec![]),
        },
    }
}

/// Why a signal was not judged on a call, in words.
fn not_judged(name: &str, r: &Analysis) -> &'static str {
    if let Some(why) = why_not_judged(r) {
        return why;
    }
    match name {
        "key_question_coverage" => "the playbook has no key questions",
        "competitor_response" => "the customer mentioned no competitor",
        "objection_response" => "the customer raised no objection",
        "customer_frustration" | "customer_perfunctory" | "customer_questions" => {
            "no customer turns"
        }
        "agent_talk_ratio" => "no talk time of a known speaker",
        "agent_longest_monologue" | "interruptions_by_agent" => "no agent turns",
        "agent_response_latency" => "the agent never answered a customer turn",
        _ => "it does not apply to this call",
    }
}

fn score_dimension(d: &Dimension, r: &Analysis) -> DimensionScore {
    let signals: Vec<SignalScore> = d
        .signals
        .iter()
        .map(|s| {
            let m = measure(&s.signal, r);
            let detail = match m.value {
                Some(_) => m.detail,
                None => format!("not judged: {}", not_judged(&s.signal, r)),
            };
            SignalScore {
                signal: s.signal.clone(),
                weight: s.weight,
                value: m.value,
                detail,
                evidence: m.evidence,
            }
        })
        .collect();
    let (sum, weights) = signals
        .iter()
        .filter_map(|s| {
            s.value
                .map(|v| (v * f64::from(s.weight), f64::from(s.weight)))
        })
        .fold((0.0, 0.0), |a, b| (a.0 + b.0, a.1 + b.1));
    let score = (weights > 0.0).then(|| (100.0 * sum / weights * 10.0).round() / 10.0);
    DimensionScore {
        id: d.id.clone(),
        name: d.name.clone(),
        score,
        pass_threshold: d.pass_threshold,
        passed: score.map(|s| s >= f64::from(d.pass_threshold)),
        signals,
    }
}

/// Scores every dimension of the playbook over one call's rule results.
pub fn score(playbook: &Playbook, analysis: &Analysis) -> Scorecard {
    Scorecard {
        dimensions: playbook
            .dimensions
            .iter()
            .map(|d| score_dimension(d, analysis))
            .collect(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn falling_is_flat_then_linear() {
        assert_eq!(falling(500.0, LATENCY_MS), 1.0);
        assert_eq!(falling(3_000.0, LATENCY_MS), 0.5);
        assert_eq!(falling(9_000.0, LATENCY_MS), 0.0);
    }
}
