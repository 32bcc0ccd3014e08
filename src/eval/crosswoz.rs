//! The analysers measured on CrossWOZ (Chinese task dialogues, `../shared/eval/transcripts/
//! zh_crosswoz`), whose dialogue acts label what each turn does. The user plays the customer and
//! the system the agent.
//!
//! - key questions: the user's `Request` acts (asked about the price, the address, …);
//! - competitor mentions: entity names (hotels, restaurants, sights) as "competitors", and the acts
//!   that carry a name as the labels; once as written, once with a homophone swapped into every
//!   name, as ASR would write it;
//! - summary needs: the user's constraint `Inform` acts (a price range, a rating, a dish).

use super::Prf;
use super::{Context, Result};
use crate::analysis::competitors::CompetitorMatcher;
use crate::analysis::playbook::Playbook;
use crate::analysis::questions::{
    CROSS_LANGUAGE_THRESHOLD, DEFAULT_THRESHOLD, MatchKind, QuestionMatcher, sentences,
};
use crate::analysis::summary::Extractor;
use crate::asr::guards::is_cjk;
use crate::audio::channels::Role;
use crate::text::embed::Embedder;
use crate::transcript::Turn;
use pinyin::ToPinyin;
use serde::Serialize;
use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

/// One turn of a dialogue with its acts: (intent, domain, slot, value).
pub struct DialogueTurn {
    pub role: Role,
    pub text: String,
    pub acts: Vec<[String; 4]>,
}

pub struct Dialogue {
    pub id: String,
    pub turns: Vec<DialogueTurn>,
}

impl Dialogue {
    /// As a call transcript: 3 s turns, 0.5 s apart.
    pub fn transcript(&self) -> Vec<Turn> {
        self.transcript_of(|t| t.text.clone())
    }

    fn transcript_of(&self, text: impl Fn(&DialogueTurn) -> String) -> Vec<Turn> {
        self.turns
            .iter()
            .enumerate()
            .map(|(i, t)| {
                let start = i as u64 * 3_500;
                let json = serde_json::json!({
                    "role": t.role, "start_ms": start, "end_ms": start + 3_000, "text": text(t),
                });
                serde_json::from_value(json).expect("a turn")
            })
            .collect()
    }
}

/// Reads CrossWOZ's `test.json` (or the zip that holds it), in dialogue-id order.
pub fn read(path: &Path) -> Result<Vec<Dialogue>> {
    let bytes = std::fs::read(path).with_context(|| format!("{}: cannot read", path.display()))?;
    let json = if bytes.starts_with(b"PK") {
        let mut zip = zip::ZipArchive::new(std::io::Cursor::new(bytes)).context("not a zip")?;
        let name = (0..zip.len())
            .filter_map(|i| zip.by_index(i).ok().map(|f| f.name().to_owned()))
            .find(|n| n.ends_with(".json"))
            .context("no .json in the zip")?;
        let mut out = Vec::new();
        std::io::Read::read_to_end(&mut zip.by_name(&name)?, &mut out)?;
        out
    } else {
        bytes
    };
    let data: serde_json::Map<String, serde_json::Value> =
        serde_json::from_slice(&json).context("not CrossWOZ JSON")?;
    let mut ids: Vec<&String> = data.keys().collect();
    ids.sort_by_key(|id| id.parse::<u64>().unwrap_or(u64::MAX));
    let text = |v: &serde_json::Value| v.as_str().unwrap_or_default().to_owned();
    let mut dialogues = Vec::new();
    for id in ids {
        let mut turns = Vec::new();
        for m in data[id]["messages"].as_array().into_iter().flatten() {
            let acts = m["dialog_act"]
                .as_array()
                .into_iter()
                .flatten()
                .map(|a| [text(&a[0]), text(&a[1]), text(&a[2]), text(&a[3])])
                .collect();
            turns.push(DialogueTurn {
                role: if m["role"] == "usr" {
                    Role::Customer
                } else {
                    Role::Agent
                },
                text: text(&m["content"]),
                acts,
            });
        }
        dialogues.push(Dialogue {
            id: id.clone(),
            turns,
        });
    }
    Ok(dialogues)
}

/// The lowest threshold (0.05–0.98 in steps of 0.01) whose F1 on `scores` is within `tie` of the
/// best. A tie of 0.01 says that the data cannot tell such thresholds apart, and takes the one
/// that keeps the most for text unlike the calibration data.
pub fn calibrate<T>(scores: &[T], tie: f64, prf_at: impl Fn(&[T], f32) -> Prf) -> f32 {
    let f1: Vec<(f32, f64)> = (5..=98)
        .map(|t| t as f32 / 100.0)
        .map(|t| (t, prf_at(scores, t).f1()))
        .collect();
    let best = f1.iter().map(|(_, f)| *f).fold(0.0, f64::max);
    f1.into_iter()
        .find(|(_, f)| *f >= best - tie)
        .map(|(t, _)| t)
        .expect("thresholds")
}

// ── key questions ───────────────────────────────────────────────────────────────────────────

/// CrossWOZ user requests that a "customer asked about …" playbook question should detect:
/// (slot in the `Request` dialogue acts, question id, phrasings in Chinese and English).
pub const QUESTIONS: &[(&str, &str, &[&str])] = &[
    (
        "地址",
        "address",
        &["地址在哪里？", "你们在什么位置？", "What is the address?"],
    ),
    (
        "电话",
        "phone",
        &[
            "电话号码是多少？",
            "怎么联系你们？",
            "What is the phone number?",
        ],
    ),
    (
        "评分",
        "rating",
        &["评分是多少？", "评价怎么样？", "What is its rating?"],
    ),
    (
        "营业时间",
        "opening_hours",
        &[
            "营业时间是几点到几点？",
            "什么时候开门？",
            "What are the opening hours?",
        ],
    ),
    (
        "价格",
        "price",
        &["价格是多少？", "住一晚多少钱？", "How much does it cost?"],
    ),
    (
        "门票",
        "ticket",
        &[
            "门票多少钱？",
            "需要买门票吗？",
            "How much is the entrance ticket?",
        ],
    ),
    (
        "人均消费",
        "spend_per_person",
        &[
            "人均消费多少？",
            "吃一顿一个人大概多少钱？",
            "How much per person?",
        ],
    ),
    (
        "推荐菜",
        "recommended_dishes",
        &[
            "有什么推荐菜？",
            "招牌菜是什么？",
            "What dishes do you recommend?",
        ],
    ),
    (
        "游玩时间",
        "visit_duration",
        &[
            "游玩时间要多久？",
            "大概玩多长时间？",
            "How long does a visit take?",
        ],
    ),
    (
        "周边",
        "nearby",
        &[
            "周边有什么？",
            "附近都有哪些地方？",
            "What is there nearby?",
        ],
    ),
    (
        "地铁站",
        "metro_station",
        &[
            "附近的地铁站是哪个？",
            "坐地铁怎么走？",
            "Which metro station is closest?",
        ],
    ),
];

/// Per question, the best similarities over a turn's sentences and whether one asked about its
/// topic.
#[derive(Debug, Clone, Copy)]
pub struct QuestionScore {
    pub same_language: f32,
    pub cross_language: f32,
    pub topic: bool,
}

impl Default for QuestionScore {
    fn default() -> Self {
        Self {
            same_language: f32::MIN,
            cross_language: f32::MIN,
            topic: false,
        }
    }
}

/// One user turn's labels (question indices) and its scores per question.
pub type TurnScore = (Vec<usize>, Vec<QuestionScore>);

/// Scores every user turn once against the questions (the expensive part: one embedding per
/// sentence), so that any threshold can be applied afterwards.
pub fn score_questions(dialogues: &[Dialogue], embedder: &mut Embedder) -> Result<Vec<TurnScore>> {
    let mut toml = String::from("name = \"crosswoz requests\"\n");
    for (_, id, phrasings) in QUESTIONS {
        // threshold 1.0 keeps `match_sentence` to topic matches; semantic scores are read
        // directly below.
        toml.push_str(&format!(
            "[[key_questions]]\nid = \"{id}\"\nasked_by = \"customer\"\nphrasings = {phrasings:?}\nthreshold = 1.0\n"
        ));
    }
    let playbook = Playbook::parse(&toml, "crosswoz")?;
    let matcher = QuestionMatcher::new(&playbook, embedder)?;
    let mut out = Vec::new();
    for turn in dialogues.iter().flat_map(|d| &d.turns) {
        if turn.role != Role::Customer {
            continue;
        }
        let mut asks = Vec::new();
        for act in &turn.acts {
            if act[0] == "Request"
                && let Some(q) = QUESTIONS
                    .iter()
                    .position(|(slot, _, _)| act[2].contains(slot))
                && !asks.contains(&q)
            {
                asks.push(q);
            }
        }
        let mut best = vec![QuestionScore::default(); QUESTIONS.len()];
        for (_, sentence) in sentences(&turn.text) {
            let embedding = embedder.embed(&sentence)?;
            let similarities = matcher.similarities(&embedding, &sentence);
            for (q, m) in matcher
                .match_sentence(&embedding, &sentence)
                .into_iter()
                .enumerate()
            {
                let b = &mut best[q];
                b.same_language = b.same_language.max(similarities[q].same_language);
                b.cross_language = b.cross_language.max(similarities[q].cross_language);
                b.topic |= matches!(m, Some((_, MatchKind::Topic)));
            }
        }
        out.push((asks, best));
    }
    Ok(out)
}

/// How a question is detected: similarity thresholds (to phrasings in the sentence's language and
/// in the other), and whether asking about its topic counts.
#[derive(Debug, Clone, Copy)]
pub struct Detection {
    pub same_language: f32,
    pub cross_language: f32,
    pub topic: bool,
}

impl Detection {
    /// callqa's defaults.
    pub const SHIPPED: Detection = Detection {
        same_language: DEFAULT_THRESHOLD,
        cross_language: CROSS_LANGUAGE_THRESHOLD,
        topic: true,
    };
}

/// Turn-level P/R/F1 of a detection.
pub fn questions_at(scores: &[TurnScore], d: Detection) -> Prf {
    let mut prf = Prf::default();
    for (asks, best) in scores {
        for (q, s) in best.iter().enumerate() {
            let found = s.same_language >= d.same_language
                || s.cross_language >= d.cross_language
                || (d.topic && s.topic);
            prf.count(found, asks.contains(&q));
        }
    }
    prf
}

// ── competitor mentions ──────────────────────────────────────────────────────────────────────

/// Slots whose values name an entity.
const NAME_SLOTS: [&str; 6] = [
    "名称",
    "周边景点",
    "周边餐馆",
    "周边酒店",
    "出发地",
    "目的地",
];

fn named_entities(turn: &DialogueTurn) -> BTreeSet<&str> {
    turn.acts
        .iter()
        .filter(|a| NAME_SLOTS.contains(&a[2].as_str()) && a[3].chars().count() >= 2)
        .map(|a| a[3].as_str())
        .filter(|v| *v != "无")
        .collect()
}

/// A name without its branch in brackets: 桔子水晶酒店(北京安贞店) → 桔子水晶酒店.
fn short_name(name: &str) -> &str {
    name.split(['(', '（']).next().unwrap_or(name).trim()
}

#[derive(Debug, Serialize)]
pub struct CompetitorEval {
    pub dialogues: usize,
    pub turns: usize,
    /// Entity names used as competitors.
    pub names: usize,
    pub as_written: Prf,
    /// One character of every labelled name swapped for a homophone.
    pub homophones: Prf,
    /// Of those, found by their pinyin.
    pub found_by_pinyin: usize,
}

/// Competitor detection with every entity name of the dialogues as a competitor (and its name
/// without the branch as an alias, where that is unambiguous), labelled by the acts that carry
/// the name. Counted per (turn, name).
pub fn evaluate_competitors(dialogues: &[Dialogue]) -> Result<CompetitorEval> {
    let names: BTreeSet<&str> = dialogues
        .iter()
        .flat_map(|d| &d.turns)
        .flat_map(named_entities)
        .collect();
    let mut shorts: BTreeMap<&str, usize> = BTreeMap::new();
    for n in &names {
        *shorts.entry(short_name(n)).or_default() += 1;
    }
    let mut toml = String::from("name = \"crosswoz entities\"\n");
    for n in &names {
        let short = short_name(n);
        let alias = (short != *n
            && short.chars().count() >= 2
            && shorts[short] == 1
            && !names.contains(short))
        .then_some(short);
        toml.push_str(&format!(
            "[[competitors]]\nname = {n:?}\nmentioned_by = \"any\"\naliases = {:?}\n",
            alias.into_iter().collect::<Vec<_>>()
        ));
    }
    let playbook = Playbook::parse(&toml, "crosswoz")?;
    let matcher = CompetitorMatcher::new(&playbook);
    let homophones = Homophones::new(dialogues);

    let mut out = CompetitorEval {
        dialogues: dialogues.len(),
        turns: dialogues.iter().map(|d| d.turns.len()).sum(),
        names: names.len(),
        as_written: Prf::default(),
        homophones: Prf::default(),
        found_by_pinyin: 0,
    };
    for d in dialogues {
        let labels: Vec<BTreeSet<&str>> = d.turns.iter().map(named_entities).collect();
        for (swapped, prf) in [(false, &mut out.as_written), (true, &mut out.homophones)] {
            let turns = d.transcript_of(|t| {
                if swapped {
                    homophones.corrupt(&t.text, named_entities(t).into_iter().map(short_name))
                } else {
                    t.text.clone()
                }
            });
            let mut found: Vec<BTreeSet<String>> = vec![BTreeSet::new(); turns.len()];
            for m in matcher.mentions(&turns) {
                if swapped && m.how == crate::analysis::competitors::MatchKind::Pinyin {
                    out.found_by_pinyin += 1;
                }
                found[m.turn].insert(m.competitor);
            }
            for (t, labelled) in labels.iter().enumerate() {
                for name in labelled {
                    prf.count(found[t].contains(*name), true);
                }
                for name in &found[t] {
                    if !labelled.contains(name.as_str()) {
                        prf.count(true, false);
                    }
                }
            }
        }
    }
    Ok(out)
}

/// Characters of the corpus grouped by toneless pinyin, to write names as ASR might.
struct Homophones(BTreeMap<String, Vec<char>>);

impl Homophones {
    fn new(dialogues: &[Dialogue]) -> Self {
        let mut map: BTreeMap<String, Vec<char>> = BTreeMap::new();
        let chars: BTreeSet<char> = dialogues
            .iter()
            .flat_map(|d| &d.turns)
            .flat_map(|t| t.text.chars())
            .filter(|&c| is_cjk(c))
            .collect();
        for c in chars {
            if let Some(p) = c.to_pinyin() {
                map.entry(p.plain().to_owned()).or_default().push(c);
            }
        }
        Self(map)
    }

    /// Another character that sounds the same, if the corpus has one.
    fn twin(&self, c: char) -> Option<char> {
        let p = c.to_pinyin()?;
        self.0.get(p.plain())?.iter().copied().find(|&o| o != c)
    }

    /// The text with, in every occurrence of each name, its first character that has a
    /// homophone swapped for it.
    fn corrupt<'n>(&self, text: &str, names: impl Iterator<Item = &'n str>) -> String {
        let mut out = text.to_owned();
        for name in names {
            let Some((i, twin)) = name
                .chars()
                .enumerate()
                .find_map(|(i, c)| self.twin(c).map(|t| (i, t)))
            else {
                continue;
            };
            let heard: String = name
                .chars()
                .enumerate()
                .map(|(j, c)| if j == i { twin } else { c })
                .collect();
            out = out.replace(name, &heard);
        }
        out
    }
}

// ── summary needs ────────────────────────────────────────────────────────────────────────────

/// Whether a user turn states a constraint of the user's goal (an `Inform` act other than a
/// name: a price range, a rating, a dish, a place to start from).
fn states_constraint(turn: &DialogueTurn) -> bool {
    turn.role == Role::Customer
        && turn
            .acts
            .iter()
            .any(|a| a[0] == "Inform" && a[2] != "名称" && !a[3].is_empty())
}

/// Per turn of either side: whether it states a constraint, and its best need score over its
/// sentences. The system's turns are negatives: calibrated so, the threshold also holds on mono
/// calls, where the agent's sentences are not set apart.
pub fn score_needs(dialogues: &[Dialogue], embedder: &mut Embedder) -> Result<Vec<(bool, f32)>> {
    let extractor = Extractor::new(embedder)?;
    let mut out = Vec::new();
    for turn in dialogues.iter().flat_map(|d| &d.turns) {
        let mut best = f32::MIN;
        for (_, sentence) in sentences(&turn.text) {
            best = best.max(extractor.need_score(&embedder.embed(&sentence)?));
        }
        out.push((states_constraint(turn), best));
    }
    Ok(out)
}

/// Turn-level P/R/F1 of need scores at a threshold.
pub fn needs_at(scores: &[(bool, f32)], threshold: f32) -> Prf {
    let mut prf = Prf::default();
    for &(labelled, score) in scores {
        prf.count(score >= threshold, labelled);
    }
    prf
}

/// The summary as the product runs it: a user turn counts as found when a core need is extracted
/// from it. Without roles (a mono call) every turn is UNKNOWN and may yield needs.
pub fn evaluate_summary_needs(
    dialogues: &[Dialogue],
    roles_known: bool,
    embedder: &mut Embedder,
) -> Result<Prf> {
    let extractor = Extractor::new(embedder)?;
    let date = chrono::NaiveDate::from_ymd_opt(2026, 1, 1).expect("a date");
    let mut prf = Prf::default();
    for d in dialogues {
        let mut turns = d.transcript();
        if !roles_known {
            turns.iter_mut().for_each(|t| t.role = Role::Unknown);
        }
        let summary = extractor.summarise(&turns, date, embedder)?;
        let found: BTreeSet<usize> = summary.core_needs.iter().map(|n| n.turn).collect();
        for (t, turn) in d.turns.iter().enumerate() {
            prf.count(found.contains(&t), states_constraint(turn));
        }
    }
    Ok(prf)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_lose_their_branch() {
        assert_eq!(short_name("桔子水晶酒店(北京安贞店)"), "桔子水晶酒店");
        assert_eq!(short_name("故宫"), "故宫");
    }
}
