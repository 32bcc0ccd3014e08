//! Emotion (情绪识别) from text: a small classifier head over the multilingual sentence
//! embeddings, trained here (`callqa train emotion`) on labelled text written by others, and
//! shipped as a few kilobytes of ONNX inside the binary.

use super::playbook::EmotionRules;
use super::talk::units;
use crate::asr::guards::is_cjk;
use crate::audio::channels::Role;
use crate::onnx::{OnnxError, run_err};
use crate::text::embed::{DIM, EmbedError, Embedder};
use crate::transcript::Turn;
use ndarray::Array2;
use ort::session::Session;
use ort::value::Tensor;
use serde::{Deserialize, Serialize};

pub const CLASSES: [&str; 4] = ["frustration", "perfunctory", "positive", "neutral"];

/// The trained head (models/emotion_head.onnx), reproducible with `callqa train emotion`.
pub const HEAD_ONNX: &[u8] = include_bytes!("../../models/emotion_head.onnx");

#[derive(Debug, Clone, Copy, Default, Serialize, Deserialize, PartialEq)]
pub struct EmotionScores {
    pub frustration: f32,
    pub perfunctory: f32,
    pub positive: f32,
    pub neutral: f32,
}

impl EmotionScores {
    pub fn from_probabilities(p: &[f32]) -> Self {
        Self {
            frustration: p[0],
            perfunctory: p[1],
            positive: p[2],
            neutral: p[3],
        }
    }

    pub fn argmax(&self) -> usize {
        let v = [
            self.frustration,
            self.perfunctory,
            self.positive,
            self.neutral,
        ];
        (0..4)
            .max_by(|&a, &b| v[a].total_cmp(&v[b]))
            .expect("four classes")
    }
}

/// The emotion head; clones share one session, taken in turn.
#[derive(Clone)]
pub struct EmotionHead {
    session: std::sync::Arc<std::sync::Mutex<Session>>,
}

impl EmotionHead {
    /// The head built into the binary.
    pub fn new(env: &ort::environment::Environment) -> Result<Self, OnnxError> {
        Self::from_bytes(env, HEAD_ONNX)
    }

    pub fn from_bytes(env: &ort::environment::Environment, onnx: &[u8]) -> Result<Self, OnnxError> {
        let fail = |detail: String| OnnxError::Model {
            path: "models/emotion_head.onnx".into(),
            detail,
        };
        let session = Session::builder(env)
            .map_err(|e| fail(e.to_string()))?
            .with_intra_threads(1)
            .map_err(|e| fail(e.to_string()))?
            .commit_from_memory(onnx)
            .map_err(|e| fail(e.to_string()))?;
        Ok(Self {
            session: std::sync::Arc::new(std::sync::Mutex::new(session)),
        })
    }

    /// Class probabilities for a batch of embeddings (rows of 512).
    pub fn classify(&mut self, embeddings: &[Vec<f32>]) -> Result<Vec<EmotionScores>, OnnxError> {
        if embeddings.is_empty() {
            return Ok(Vec::new());
        }
        let flat: Vec<f32> = embeddings.iter().flatten().copied().collect();
        let x = Tensor::from_array(
            Array2::from_shape_vec((embeddings.len(), DIM), flat).map_err(run_err)?,
        )
        .map_err(run_err)?;
        let mut session = self
            .session
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let outputs = session
            .run(ort::inputs!["embedding" => x])
            .map_err(run_err)?;
        let (_, p) = outputs["probabilities"]
            .try_extract_tensor::<f32>()
            .map_err(run_err)?;
        Ok(p.chunks(CLASSES.len())
            .map(EmotionScores::from_probabilities)
            .collect())
    }

    pub fn score_text(
        &mut self,
        embedder: &mut Embedder,
        text: &str,
    ) -> Result<EmotionScores, EmbedError> {
        let e = embedder.embed(text)?;
        Ok(self.classify(&[e])?.remove(0))
    }
}

/// Per-turn emotion, and per role the average and the peak moments, with the playbook's alerts.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct EmotionReport {
    pub turns: Vec<TurnEmotion>,
    pub roles: Vec<RoleEmotion>,
    pub alerts: Vec<EmotionAlert>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct TurnEmotion {
    pub turn: usize,
    pub role: Role,
    pub time_ms: u64,
    /// Text and cues combined: what the call's judgements use.
    pub scores: EmotionScores,
    /// The classifier head on the text alone.
    pub text_scores: EmotionScores,
    /// Prosody and turn-taking cues that raised the scores above the text's.
    pub cues: Vec<Cue>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct RoleEmotion {
    pub role: Role,
    pub mean: EmotionScores,
    pub peak_frustration: Option<Moment>,
    pub peak_perfunctory: Option<Moment>,
}

/// One turn as evidence.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Moment {
    pub turn: usize,
    pub time_ms: u64,
    pub score: f32,
    pub text: String,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct EmotionAlert {
    pub turn: usize,
    pub role: Role,
    pub time_ms: u64,
    /// "frustration" or "perfunctory".
    pub kind: String,
    pub score: f32,
    pub text: String,
}

/// Evidence from how a turn was said and when, beyond its words. Each cue adds to one class
/// by noisy-OR with the text's probability: p = 1 − (1 − p_text) · Π (1 − weight).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Cue {
    /// Nothing but 嗯 / 好的 / ok / sure.
    BackchannelOnly,
    /// A reply of a few words or under 1.5 s.
    ShortReply,
    /// Three seconds or more before answering.
    SlowResponse,
    /// Pitch variation a standard deviation below the speaker's own.
    FlatPitch,
    /// Quieter than the speaker's own by a standard deviation.
    LowEnergy,
    /// Louder than the speaker's own by a standard deviation.
    RaisedEnergy,
    /// Pitch variation a standard deviation above the speaker's own.
    AgitatedPitch,
    /// Speaking rate a standard deviation above the speaker's own.
    FastSpeech,
    /// Started while the other side was still talking.
    Interrupts,
}

impl Cue {
    /// (class, weight). Frustration cues are scaled by how un-positive the text is: a loud,
    /// lively turn is as likely delighted as angry.
    fn effect(self) -> (usize, f32) {
        match self {
            Cue::BackchannelOnly => (PERFUNCTORY, 0.45),
            Cue::ShortReply => (PERFUNCTORY, 0.2),
            Cue::SlowResponse => (PERFUNCTORY, 0.15),
            Cue::FlatPitch => (PERFUNCTORY, 0.15),
            Cue::LowEnergy => (PERFUNCTORY, 0.1),
            Cue::RaisedEnergy => (FRUSTRATION, 0.2),
            Cue::AgitatedPitch => (FRUSTRATION, 0.1),
            Cue::FastSpeech => (FRUSTRATION, 0.1),
            Cue::Interrupts => (FRUSTRATION, 0.15),
        }
    }
}

const FRUSTRATION: usize = 0;
const PERFUNCTORY: usize = 1;

/// Replies that acknowledge without engaging.
const BACKCHANNELS: &[&str] = &[
    "嗯嗯",
    "嗯",
    "哦",
    "噢",
    "啊",
    "好的",
    "好吧",
    "好",
    "行吧",
    "行",
    "可以",
    "对对",
    "对",
    "是的",
    "是",
    "知道了",
    "随便",
    "都行",
    "ok",
    "okay",
    "sure",
    "yeah",
    "yes",
    "yep",
    "uh-huh",
    "mm",
    "mhm",
    "right",
    "fine",
    "whatever",
    "alright",
    "i see",
];

/// Whether a text is only acknowledgement tokens (嗯嗯好的, "ok sure").
pub fn is_backchannel_only(text: &str) -> bool {
    let mut rest: String = text
        .to_lowercase()
        .chars()
        .filter(|c| c.is_alphanumeric() || *c == '-' || *c == ' ' || is_cjk(*c))
        .collect();
    let mut any = false;
    loop {
        rest = rest.trim_start().to_owned();
        if rest.is_empty() {
            return any;
        }
        let Some(b) = BACKCHANNELS.iter().find(|b| {
            rest.starts_with(**b)
                && rest[b.len()..]
                    .chars()
                    .next()
                    .is_none_or(|c| !c.is_ascii_alphanumeric() || b.chars().all(is_cjk))
        }) else {
            return false;
        };
        rest.drain(..b.len());
        any = true;
    }
}

/// A few words: up to four Chinese characters or three words.
fn is_short(text: &str) -> bool {
    let (n, unit) = units(text);
    n <= if unit == "chars_per_minute" { 4 } else { 3 }
}

/// The cues a reply's words carry without its audio or timing.
pub fn reply_cues(text: &str) -> Vec<Cue> {
    let mut c = Vec::new();
    if is_backchannel_only(text) {
        c.push(Cue::BackchannelOnly);
    }
    if is_short(text) {
        c.push(Cue::ShortReply);
    }
    c
}

/// Whether the turn's speaker is known: a role from the channel, a transcript, the voice or
/// the words, given only when sure.
fn known_speaker(t: &Turn) -> bool {
    t.role != Role::Unknown
}

/// The cues of every turn: turn-taking from the times, prosody relative to the same speaker's
/// other turns in the call (a loud voice is loud only against its own baseline). Both need to
/// know who spoke: a mono call's turns get only the cues of their words.
fn cues(turns: &[Turn]) -> Vec<Vec<Cue>> {
    let z = |value: &dyn Fn(&Turn) -> Option<f32>| -> Vec<Option<f32>> {
        turns
            .iter()
            .map(|t| {
                if !known_speaker(t) {
                    return None;
                }
                let own: Vec<f32> = turns
                    .iter()
                    .filter(|o| o.role == t.role && o.channel == t.channel)
                    .filter_map(value)
                    .collect();
                if own.len() < 4 {
                    return None;
                }
                let n = own.len() as f32;
                let mean = own.iter().sum::<f32>() / n;
                let sd = (own.iter().map(|x| (x - mean).powi(2)).sum::<f32>() / n).sqrt();
                value(t).filter(|_| sd > 1e-3).map(|v| (v - mean) / sd)
            })
            .collect()
    };
    let energy = z(&|t| t.prosody.map(|p| p.energy_db));
    let pitch_sd = z(&|t| t.prosody.and_then(|p| p.pitch_sd_semitones));
    let rate = z(&|t| {
        let ms = t.end_ms.saturating_sub(t.start_ms);
        (ms >= 1_000).then(|| units(&t.text).0 as f32 * 60_000.0 / ms as f32)
    });
    let mut out = Vec::with_capacity(turns.len());
    for (i, t) in turns.iter().enumerate() {
        let mut c = Vec::new();
        // A reply: the turn right before is the other side's.
        let previous_other = i
            .checked_sub(1)
            .map(|p| &turns[p])
            .filter(|p| known_speaker(p) && known_speaker(t) && p.role != t.role);
        if is_backchannel_only(&t.text) {
            c.push(Cue::BackchannelOnly);
        }
        if let Some(p) = previous_other {
            if is_short(&t.text) || t.end_ms.saturating_sub(t.start_ms) < 1_500 {
                c.push(Cue::ShortReply);
            }
            if t.start_ms >= p.end_ms + 3_000 {
                c.push(Cue::SlowResponse);
            }
            if t.start_ms + 500 <= p.end_ms && p.start_ms < t.start_ms {
                c.push(Cue::Interrupts);
            }
        }
        let low = |v: Option<f32>| v.is_some_and(|z| z <= -1.0);
        let high = |v: Option<f32>| v.is_some_and(|z| z >= 1.0);
        for (fires, cue) in [
            (low(pitch_sd[i]), Cue::FlatPitch),
            (low(energy[i]), Cue::LowEnergy),
            (high(energy[i]), Cue::RaisedEnergy),
            (high(pitch_sd[i]), Cue::AgitatedPitch),
            (high(rate[i]), Cue::FastSpeech),
        ] {
            if fires {
                c.push(cue);
            }
        }
        out.push(c);
    }
    out
}

/// The text's probabilities raised by the cues (noisy-OR), the other classes scaled to keep the
/// sum at one.
pub fn combine(text: EmotionScores, cues: &[Cue]) -> EmotionScores {
    let mut p = [text.frustration, text.perfunctory];
    for cue in cues {
        let (class, mut weight) = cue.effect();
        if class == FRUSTRATION {
            weight *= 1.0 - text.positive;
        }
        p[class] = 1.0 - (1.0 - p[class]) * (1.0 - weight);
    }
    let rest = text.positive + text.neutral;
    let scale = if rest > 0.0 {
        (1.0 - p[0] - p[1]).max(0.0) / rest
    } else {
        0.0
    };
    let (f, pf) = (p[0], p[1]);
    let total = f + pf + rest * scale;
    EmotionScores {
        frustration: f / total,
        perfunctory: pf / total,
        positive: text.positive * scale / total,
        neutral: text.neutral * scale / total,
    }
}

fn mean(scores: &[EmotionScores]) -> Option<EmotionScores> {
    (!scores.is_empty()).then(|| {
        let n = scores.len() as f32;
        EmotionScores {
            frustration: scores.iter().map(|s| s.frustration).sum::<f32>() / n,
            perfunctory: scores.iter().map(|s| s.perfunctory).sum::<f32>() / n,
            positive: scores.iter().map(|s| s.positive).sum::<f32>() / n,
            neutral: scores.iter().map(|s| s.neutral).sum::<f32>() / n,
        }
    })
}

/// Scores every turn from its text and its cues, and raises the playbook's alerts.
pub fn analyse(
    turns: &[Turn],
    rules: &EmotionRules,
    head: &mut EmotionHead,
    embedder: &mut Embedder,
) -> Result<EmotionReport, EmbedError> {
    let embeddings = turns
        .iter()
        .map(|t| embedder.embed(&t.text))
        .collect::<Result<Vec<_>, _>>()?;
    let text_scores = head.classify(&embeddings)?;
    let mut report = EmotionReport::default();
    for (i, ((t, text), cues)) in turns.iter().zip(text_scores).zip(cues(turns)).enumerate() {
        let s = combine(text, &cues);
        report.turns.push(TurnEmotion {
            turn: i,
            role: t.role,
            time_ms: t.start_ms,
            scores: s,
            text_scores: text,
            cues,
        });
        report.alerts.extend(alerts(i, t, s, rules));
    }
    for role in [Role::Agent, Role::Customer, Role::Unknown] {
        let own: Vec<&TurnEmotion> = report.turns.iter().filter(|t| t.role == role).collect();
        let Some(mean) = mean(&own.iter().map(|t| t.scores).collect::<Vec<_>>()) else {
            continue;
        };
        let peak = |score: fn(&EmotionScores) -> f32| {
            own.iter()
                .max_by(|a, b| score(&a.scores).total_cmp(&score(&b.scores)))
                .map(|t| Moment {
                    turn: t.turn,
                    time_ms: t.time_ms,
                    score: score(&t.scores),
                    text: turns[t.turn].text.clone(),
                })
        };
        report.roles.push(RoleEmotion {
            role,
            mean,
            peak_frustration: peak(|s| s.frustration),
            peak_perfunctory: peak(|s| s.perfunctory),
        });
    }
    Ok(report)
}

/// The playbook's alerts that one turn's scores raise.
fn alerts(i: usize, t: &Turn, s: EmotionScores, rules: &EmotionRules) -> Vec<EmotionAlert> {
    if !rules.roles.iter().any(|r| r.covers(t.role)) {
        return Vec::new();
    }
    [
        ("frustration", s.frustration, rules.frustration_alert),
        ("perfunctory", s.perfunctory, rules.perfunctory_alert),
    ]
    .into_iter()
    .filter(|&(_, score, limit)| score >= limit)
    .map(|(kind, score, _)| EmotionAlert {
        turn: i,
        role: t.role,
        time_ms: t.start_ms,
        kind: kind.into(),
        score,
        text: t.text.clone(),
    })
    .collect()
}

/// The alerts the newest of `turns` raises, judged as `analyse` judges it, against the
/// speakers' turns so far (a call in progress).
pub fn alerts_for_last(
    turns: &[Turn],
    rules: &EmotionRules,
    head: &mut EmotionHead,
    embedder: &mut Embedder,
) -> Result<Vec<EmotionAlert>, EmbedError> {
    let Some(last) = turns.last() else {
        return Ok(Vec::new());
    };
    let text = head.score_text(embedder, &last.text)?;
    let cues = cues(turns).pop().unwrap_or_default();
    Ok(alerts(turns.len() - 1, last, combine(text, &cues), rules))
}

impl EmotionReport {
    pub fn role(&self, role: Role) -> Option<&RoleEmotion> {
        self.roles.iter().find(|r| r.role == role)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backchannels_are_recognised_whole() {
        for yes in [
            "嗯",
            "嗯嗯，好的。",
            "好的好的",
            "OK, sure.",
            "yeah",
            "Uh-huh.",
            "行吧",
        ] {
            assert!(is_backchannel_only(yes), "{yes}");
        }
        for no in [
            "好的，我们下周开会",
            "okay so what is the price",
            "sunday",
            "",
            "对方",
        ] {
            assert!(!is_backchannel_only(no), "{no}");
        }
    }

    #[test]
    fn cues_raise_their_class_and_keep_a_distribution() {
        let text = EmotionScores {
            frustration: 0.1,
            perfunctory: 0.2,
            positive: 0.2,
            neutral: 0.5,
        };
        let c = combine(text, &[Cue::BackchannelOnly, Cue::ShortReply]);
        assert!(c.perfunctory > 0.5, "{c:?}");
        let sum = c.frustration + c.perfunctory + c.positive + c.neutral;
        assert!((sum - 1.0).abs() < 1e-5);
        assert_eq!(combine(text, &[]), text);
        // A positive text barely gains frustration from a loud voice.
        let happy = EmotionScores {
            frustration: 0.05,
            perfunctory: 0.05,
            positive: 0.9,
            neutral: 0.0,
        };
        assert!(combine(happy, &[Cue::RaisedEnergy]).frustration < 0.08);
    }
}
