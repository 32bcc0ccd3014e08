//! Emotion (情绪识别) from text: a small classifier head over the multilingual sentence
//! embeddings, trained here (`callqa train emotion`) on labelled text written by others, and
//! shipped as a few kilobytes of ONNX inside the binary.

use crate::onnx::{OnnxError, run_err};
use crate::text::embed::{DIM, EmbedError, Embedder};
use ndarray::Array2;
use ort::session::Session;
use ort::value::Tensor;
use serde::Serialize;

pub const CLASSES: [&str; 4] = ["frustration", "perfunctory", "positive", "neutral"];

/// The trained head (models/emotion_head.onnx), reproducible with `callqa train emotion`.
pub const HEAD_ONNX: &[u8] = include_bytes!("../../models/emotion_head.onnx");

#[derive(Debug, Clone, Copy, Default, Serialize, PartialEq)]
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

pub struct EmotionHead {
    session: Session,
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
        Ok(Self { session })
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
        let outputs = self
            .session
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

/// Per-turn emotion, per-role averages, and the alerts the playbook asks for.
#[derive(Debug, Clone, Default, Serialize)]
pub struct EmotionReport {
    pub turns: Vec<TurnEmotion>,
    pub agent_mean: Option<EmotionScores>,
    pub customer_mean: Option<EmotionScores>,
    pub alerts: Vec<EmotionAlert>,
}

#[derive(Debug, Clone, Serialize)]
pub struct TurnEmotion {
    pub turn: usize,
    pub role: crate::audio::channels::Role,
    pub scores: EmotionScores,
}

#[derive(Debug, Clone, Serialize)]
pub struct EmotionAlert {
    pub turn: usize,
    pub role: crate::audio::channels::Role,
    pub time_ms: u64,
    /// "frustration" or "perfunctory".
    pub kind: &'static str,
    pub score: f32,
    pub text: String,
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

/// Scores every turn from its text and raises the playbook's alerts.
pub fn analyse(
    turns: &[crate::pipeline::Turn],
    rules: &super::playbook::EmotionRules,
    head: &mut EmotionHead,
    embedder: &mut Embedder,
) -> Result<EmotionReport, EmbedError> {
    use super::playbook::Speaker;
    use crate::audio::channels::Role;
    let embeddings = turns
        .iter()
        .map(|t| embedder.embed(&t.text))
        .collect::<Result<Vec<_>, _>>()?;
    let scores = head.classify(&embeddings)?;
    let mut report = EmotionReport::default();
    for (i, (t, s)) in turns.iter().zip(scores).enumerate() {
        report.turns.push(TurnEmotion {
            turn: i,
            role: t.role,
            scores: s,
        });
        let watched = rules.roles.iter().any(|r| match r {
            Speaker::Any => true,
            Speaker::Agent => t.role == Role::Agent,
            Speaker::Customer => t.role == Role::Customer,
        });
        for (kind, score, limit) in [
            ("frustration", s.frustration, rules.frustration_alert),
            ("perfunctory", s.perfunctory, rules.perfunctory_alert),
        ] {
            if watched && score >= limit {
                report.alerts.push(EmotionAlert {
                    turn: i,
                    role: t.role,
                    time_ms: t.start_ms,
                    kind,
                    score,
                    text: t.text.clone(),
                });
            }
        }
    }
    let of = |role: Role| {
        report
            .turns
            .iter()
            .filter(|t| t.role == role)
            .map(|t| t.scores)
            .collect::<Vec<_>>()
    };
    report.agent_mean = mean(&of(Role::Agent));
    report.customer_mean = mean(&of(Role::Customer));
    Ok(report)
}
