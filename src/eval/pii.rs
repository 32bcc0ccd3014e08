//! PII detection measured on real text written by others: CrossWOZ's dialogues, whose `电话`
//! (phone) acts label the phone numbers, as written and with those numbers spoken in Chinese
//! digits; and the tadhack call transcripts (spoken English numbers, e-mail addresses, names),
//! labelled by hand in `tests/fixtures/pii/tadhack_labels.tsv`. A prediction counts when its
//! class and value match a label of the same dialogue.

use super::Prf;
use super::crosswoz::Dialogue;
use super::error::bail;
use super::{Context, Result};
use crate::redact;
use crate::redact::PiiClass;
use std::collections::{BTreeMap, BTreeSet};
use std::fmt;
use std::path::Path;

/// One dialogue's turn texts and its labelled PII (class, value).
pub struct Labelled {
    pub texts: Vec<String>,
    pub labels: BTreeSet<(PiiClass, String)>,
}

/// Precision and recall per class over a set of dialogues.
#[derive(Default)]
pub struct PiiEval {
    pub dialogues: usize,
    pub turns: usize,
    pub per_class: BTreeMap<String, Prf>,
    pub all: Prf,
    /// Predictions that matched no label: (dialogue, class, value).
    pub false_positives: Vec<(usize, PiiClass, String)>,
    /// Labels that no prediction matched.
    pub false_negatives: Vec<(usize, PiiClass, String)>,
}

impl fmt::Display for PiiEval {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(f, "{} dialogues, {} turns", self.dialogues, self.turns)?;
        for (class, prf) in &self.per_class {
            writeln!(f, "  {class:<10} {prf}")?;
        }
        write!(f, "  {:<10} {}", "all", self.all)
    }
}

pub fn evaluate(set: &[Labelled]) -> PiiEval {
    let mut e = PiiEval {
        dialogues: set.len(),
        ..PiiEval::default()
    };
    for (d, dialogue) in set.iter().enumerate() {
        e.turns += dialogue.texts.len();
        let texts: Vec<&str> = dialogue.texts.iter().map(String::as_str).collect();
        let predicted: BTreeSet<(PiiClass, String)> = redact::find(&texts)
            .into_iter()
            .map(|f| (f.class, f.value))
            .collect();
        for item in predicted.union(&dialogue.labels) {
            let (p, l) = (predicted.contains(item), dialogue.labels.contains(item));
            let class = redact::label(item.0).to_lowercase();
            e.per_class.entry(class).or_default().count(p, l);
            e.all.count(p, l);
            if p && !l {
                e.false_positives.push((d, item.0, item.1.clone()));
            }
            if l && !p {
                e.false_negatives.push((d, item.0, item.1.clone()));
            }
        }
    }
    e
}

fn digits(s: &str) -> String {
    s.chars().filter(char::is_ascii_digit).collect()
}

/// CrossWOZ dialogues with their phone acts as labels. `spoken`: each labelled number is
/// rewritten in Chinese digits (幺 for 1 in every other dialogue), as ASR writes a number read out.
pub fn crosswoz(dialogues: &[Dialogue], spoken: bool) -> Vec<Labelled> {
    dialogues
        .iter()
        .enumerate()
        .map(|(i, d)| {
            let mut labels = BTreeSet::new();
            let texts = d
                .turns
                .iter()
                .map(|t| {
                    let mut text = t.text.clone();
                    let phones = t.acts.iter().filter(|[_, _, slot, _]| slot == "电话");
                    // One act may hold several numbers, separated by spaces or commas.
                    let numbers = phones.flat_map(|[_, _, _, v]| {
                        v.split(|c: char| !(c.is_ascii_digit() || c == '-' || c == '+'))
                    });
                    for number in numbers {
                        if digits(number).len() < 7 {
                            continue;
                        }
                        labels.insert((PiiClass::Phone, digits(number)));
                        if spoken {
                            text = text.replace(number, &chinese_digits(number, i % 2 == 1));
                        }
                    }
                    text
                })
                .collect();
            Labelled { texts, labels }
        })
        .collect()
}

fn chinese_digits(value: &str, yao: bool) -> String {
    value
        .chars()
        .filter_map(|c| {
            let d = c.to_digit(10)?;
            Some(match d {
                1 if yao => '幺',
                _ => "零一二三四五六七八九"
                    .chars()
                    .nth(d as usize)
                    .expect("a digit"),
            })
        })
        .collect()
}

/// The tadhack transcripts (paragraphs as turns) with the hand labels.
pub fn tadhack(dir: &Path, labels: &Path) -> Result<Vec<Labelled>> {
    let table = std::fs::read_to_string(labels).with_context(|| labels.display().to_string())?;
    let mut by_call: BTreeMap<String, BTreeSet<(PiiClass, String)>> = BTreeMap::new();
    for line in table.lines().filter(|l| !l.starts_with('#')).skip(1) {
        let f: Vec<&str> = line.split('\t').collect();
        let [call, _, class, value] = f[..] else {
            bail!("{}: bad line {line:?}", labels.display());
        };
        let class: PiiClass = serde_json::from_value(serde_json::json!(class))
            .with_context(|| format!("{class:?}: not a PII class"))?;
        by_call
            .entry(call.to_owned())
            .or_default()
            .insert((class, value.to_owned()));
    }
    let mut files: Vec<_> = std::fs::read_dir(dir)
        .with_context(|| dir.display().to_string())?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.to_string_lossy().ends_with(".vcon.json"))
        .collect();
    files.sort();
    files
        .iter()
        .map(|f| {
            let name = f
                .file_name()
                .map(|n| n.to_string_lossy())
                .unwrap_or_default();
            let call: String = name.chars().take(8).collect();
            let texts = super::vcon::vcon_reference(f)?
                .lines()
                .map(str::to_owned)
                .collect();
            Ok(Labelled {
                texts,
                labels: by_call.remove(&call).unwrap_or_default(),
            })
        })
        .collect()
}
