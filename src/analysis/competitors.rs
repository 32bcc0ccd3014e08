//! Competitor mentions (竞品提及), robust to ASR errors: Chinese names also match by pinyin
//! (销售易 heard as 小手易), English names within a small edit distance and across spacing
//! ("Sales force", "salesforse").

use super::playbook::{Playbook, StrategyPack};
use crate::asr::guards::{is_cjk, squash};
use crate::audio::channels::Role;
use crate::text::edit_distance;
use crate::transcript::Turn;
use pinyin::ToPinyin;
use serde::{Deserialize, Serialize};

/// How a mention was recognised.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum MatchKind {
    Exact,
    /// Same syllables, other characters (a homophone, as ASR produces).
    Pinyin,
    /// Within a small edit distance, ignoring case and spaces.
    Fuzzy,
}

/// What the agent said after the customer raised a competitor (a lexical heuristic).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum AgentResponse {
    /// The agent compared the offer with the competitor.
    Comparison,
    /// The agent argued the offer's value without naming the competitor.
    Value,
    /// The agent did not take it up.
    Nothing,
    /// The agent raised the competitor; no response is expected.
    NotApplicable,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Mention {
    pub competitor: String,
    /// The name or alias that matched, and the text heard.
    pub alias: String,
    pub heard: String,
    pub how: MatchKind,
    pub role: Role,
    pub turn: usize,
    pub time_ms: u64,
    pub sentence: String,
    pub strategy_pack: Option<StrategyPack>,
    pub agent_response: AgentResponse,
    /// The agent turn that answered, if any.
    pub response_turn: Option<usize>,
}

enum Pattern {
    /// Chinese: characters and their toneless pinyin.
    Cjk {
        chars: Vec<char>,
        pinyin: Vec<String>,
    },
    /// Other scripts: lower-case letters and digits, spaces removed.
    Latin { squashed: String, words: usize },
}

/// A name found in a text, at char offsets start..end.
struct Found<'a> {
    competitor: usize,
    alias: &'a str,
    heard: String,
    how: MatchKind,
    start: usize,
    end: usize,
}

struct Entry {
    competitor: usize,
    alias: String,
    pattern: Pattern,
}

/// A character as it sounds: toneless pinyin for Chinese; other characters lower-cased, with
/// full-width brackets as half-width ones (names such as 海底捞火锅（西单店）).
fn pinyin_of(c: char) -> String {
    let c = match c {
        '（' => '(',
        '）' => ')',
        c => c,
    };
    c.to_pinyin()
        .map_or_else(|| c.to_lowercase().collect(), |p| p.plain().to_owned())
}

/// Edits allowed for a Latin name: none below 5 letters, 1 up to 9, 2 beyond.
fn allowed_edits(len: usize) -> usize {
    match len {
        0..=4 => 0,
        5..=9 => 1,
        _ => 2,
    }
}

pub struct CompetitorMatcher<'p> {
    playbook: &'p Playbook,
    entries: Vec<Entry>,
}

const COMPARISON_CUES: &[&str] = &[
    "相比",
    "比起",
    "对比",
    "区别",
    "不同",
    "不一样",
    "比他们",
    "比它",
    "他们家",
    "compared",
    "versus",
    " vs",
    "unlike",
    "difference",
    "better than",
    "cheaper than",
];
const VALUE_CUES: &[&str] = &[
    "价值",
    "优势",
    "节省",
    "效率",
    "回报",
    "案例",
    "性价比",
    "免费试用",
    "服务",
    "保障",
    "value",
    "save",
    "saving",
    "roi",
    "benefit",
    "case study",
    "return",
    "free trial",
    "support",
    "guarantee",
];

impl<'p> CompetitorMatcher<'p> {
    pub fn new(playbook: &'p Playbook) -> Self {
        let mut entries = Vec::new();
        for (i, c) in playbook.competitors.iter().enumerate() {
            for alias in std::iter::once(&c.name).chain(&c.aliases) {
                let alias = alias.trim();
                let pattern = if alias.chars().any(is_cjk) {
                    let chars: Vec<char> = alias.chars().filter(|c| !c.is_whitespace()).collect();
                    Pattern::Cjk {
                        pinyin: chars.iter().map(|&c| pinyin_of(c)).collect(),
                        chars,
                    }
                } else {
                    Pattern::Latin {
                        squashed: squash(alias),
                        words: alias.split_whitespace().count().max(1),
                    }
                };
                entries.push(Entry {
                    competitor: i,
                    alias: alias.to_owned(),
                    pattern,
                });
            }
        }
        Self { playbook, entries }
    }

    /// The names in one text.
    fn find(&self, text: &str) -> Vec<Found<'_>> {
        let chars: Vec<char> = text.chars().collect();
        let py: Vec<String> = chars.iter().map(|&c| pinyin_of(c)).collect();
        // Latin words with their char offsets.
        let mut words: Vec<(usize, String)> = Vec::new();
        let mut start = None;
        for (i, &c) in chars.iter().chain(std::iter::once(&' ')).enumerate() {
            let wordy = c.is_alphanumeric() && !is_cjk(c);
            match (wordy, start) {
                (true, None) => start = Some(i),
                (false, Some(s)) => {
                    words.push((
                        s,
                        chars[s..i].iter().flat_map(|c| c.to_lowercase()).collect(),
                    ));
                    start = None;
                }
                _ => {}
            }
        }
        let mut found: Vec<Found> = Vec::new();
        for e in &self.entries {
            match &e.pattern {
                Pattern::Cjk {
                    chars: alias,
                    pinyin,
                } => {
                    let n = alias.len();
                    for i in 0..chars.len().saturating_sub(n - 1) {
                        let window = &chars[i..i + n];
                        let kind = if window == alias.as_slice() {
                            MatchKind::Exact
                        } else if n >= 2 && py[i..i + n] == pinyin[..] {
                            MatchKind::Pinyin
                        } else {
                            continue;
                        };
                        found.push(Found {
                            competitor: e.competitor,
                            alias: &e.alias,
                            heard: window.iter().collect(),
                            how: kind,
                            start: i,
                            end: i + n,
                        });
                    }
                }
                Pattern::Latin {
                    squashed,
                    words: n_words,
                } => {
                    let target: Vec<char> = squashed.chars().collect();
                    let allowed = allowed_edits(target.len());
                    // Windows of as many words as the alias, one more and one fewer (spacing errors).
                    for len in [*n_words, n_words + 1, n_words.saturating_sub(1).max(1)] {
                        for w in words.windows(len) {
                            let heard: String = w.iter().map(|(_, s)| s.as_str()).collect();
                            let d = edit_distance(&heard.chars().collect::<Vec<_>>(), &target);
                            if d <= allowed {
                                let kind = if d == 0 && len == *n_words {
                                    MatchKind::Exact
                                } else {
                                    MatchKind::Fuzzy
                                };
                                let last = &w[w.len() - 1];
                                found.push(Found {
                                    competitor: e.competitor,
                                    alias: &e.alias,
                                    heard,
                                    how: kind,
                                    start: w[0].0,
                                    end: last.0 + last.1.chars().count(),
                                });
                            }
                        }
                    }
                }
            }
        }
        // One mention per place: the best match at each offset for each competitor.
        found.sort_by_key(|f| (f.start, f.competitor, f.how as u8));
        found.dedup_by_key(|f| (f.start, f.competitor));
        // A name inside a longer name is not a mention of its own: 八达岭长城天地文化小吃城 is
        // not 八达岭长城.
        let spans: Vec<(usize, usize, usize)> = found
            .iter()
            .map(|f| (f.start, f.end, f.competitor))
            .collect();
        found.retain(|f| {
            !spans.iter().any(|&(s, e, c)| {
                c != f.competitor && s <= f.start && f.end <= e && e - s > f.end - f.start
            })
        });
        found
    }

    /// Every competitor mention in the call, with the agent's response to the customer's ones.
    pub fn mentions(&self, turns: &[Turn]) -> Vec<Mention> {
        let mut out = Vec::new();
        for (t, turn) in turns.iter().enumerate() {
            for Found {
                competitor: c,
                alias,
                heard,
                how,
                start: offset,
                ..
            } in self.find(&turn.text)
            {
                let competitor = &self.playbook.competitors[c];
                if !competitor.mentioned_by.covers(turn.role) {
                    continue;
                }
                let (agent_response, response_turn) = if turn.role == Role::Agent {
                    (AgentResponse::NotApplicable, None)
                } else {
                    agent_response(turns, t, &self.find_names(c))
                };
                out.push(Mention {
                    competitor: competitor.name.clone(),
                    alias: alias.to_owned(),
                    heard,
                    how,
                    role: turn.role,
                    turn: t,
                    time_ms: turn.time_at(offset),
                    sentence: sentence_at(&turn.text, offset),
                    strategy_pack: competitor.strategy_pack.clone(),
                    agent_response,
                    response_turn,
                });
            }
        }
        out
    }

    fn find_names(&self, competitor: usize) -> Vec<String> {
        let c = &self.playbook.competitors[competitor];
        std::iter::once(&c.name)
            .chain(&c.aliases)
            .map(|s| s.to_lowercase())
            .collect()
    }
}

/// The sentence around a char offset.
fn sentence_at(text: &str, offset: usize) -> String {
    let chars: Vec<char> = text.chars().collect();
    let ends = |c: &char| "。！？!?；;\n".contains(*c);
    let start = chars[..offset.min(chars.len())]
        .iter()
        .rposition(ends)
        .map_or(0, |i| i + 1);
    let end = chars[offset.min(chars.len())..]
        .iter()
        .position(ends)
        .map_or(chars.len(), |i| offset + i + 1);
    chars[start..end]
        .iter()
        .collect::<String>()
        .trim()
        .to_owned()
}

/// What the agent's next turns (up to two, within 60 s) did with a competitor the customer raised.
fn agent_response(turns: &[Turn], at: usize, names: &[String]) -> (AgentResponse, Option<usize>) {
    let limit = turns[at].end_ms + 60_000;
    let replies = turns
        .iter()
        .enumerate()
        .skip(at + 1)
        .filter(|(_, t)| t.role == Role::Agent && t.start_ms <= limit)
        .take(2);
    let mut value = None;
    for (i, t) in replies {
        let lower = t.text.to_lowercase();
        if names.iter().any(|n| lower.contains(n.as_str()))
            || COMPARISON_CUES.iter().any(|c| lower.contains(c))
        {
            return (AgentResponse::Comparison, Some(i));
        }
        if value.is_none() && VALUE_CUES.iter().any(|c| lower.contains(c)) {
            value = Some(i);
        }
    }
    match value {
        Some(i) => (AgentResponse::Value, Some(i)),
        None => (AgentResponse::Nothing, None),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::transcript::RoleSource;

    fn turn(role: Role, start: u64, text: &str) -> Turn {
        Turn {
            role_source: RoleSource::Channel,
            ..Turn::text(role, start, start + 3_000, text.into())
        }
    }

    fn playbook() -> Playbook {
        Playbook::parse(
            r#"
name = "t"
[[competitors]]
name = "销售易"
aliases = ["XSY"]
strategy_pack = { title = "对标销售易：移动端与实施周期" }
[[competitors]]
name = "Salesforce"
mentioned_by = "any"
"#,
            "t",
        )
        .unwrap()
    }

    #[test]
    fn homophones_spacing_and_misspellings_still_match() {
        let p = playbook();
        let m = CompetitorMatcher::new(&p);
        let turns = vec![
            turn(Role::Customer, 0, "我们现在用的是小手易，感觉还行。"),
            turn(Role::Agent, 4_000, "相比他们，我们的实施周期只要两周。"),
            turn(
                Role::Customer,
                8_000,
                "We also looked at sales force and salesforse.",
            ),
            turn(
                Role::Agent,
                12_000,
                "Our customers save about 20% in the first year.",
            ),
            turn(Role::Customer, 16_000, "XSY 的报价更低。"),
        ];
        let found = m.mentions(&turns);
        let summary: Vec<_> = found
            .iter()
            .map(|x| {
                (
                    x.competitor.as_str(),
                    x.heard.as_str(),
                    x.how,
                    x.agent_response,
                )
            })
            .collect();
        assert_eq!(
            summary,
            vec![
                (
                    "销售易",
                    "小手易",
                    MatchKind::Pinyin,
                    AgentResponse::Comparison
                ),
                (
                    "Salesforce",
                    "salesforce",
                    MatchKind::Fuzzy,
                    AgentResponse::Value
                ),
                (
                    "Salesforce",
                    "salesforse",
                    MatchKind::Fuzzy,
                    AgentResponse::Value
                ),
                ("销售易", "xsy", MatchKind::Exact, AgentResponse::Nothing),
            ]
        );
        assert_eq!(found[0].sentence, "我们现在用的是小手易，感觉还行。");
        assert_eq!(
            found[0].strategy_pack.as_ref().unwrap().title,
            "对标销售易：移动端与实施周期"
        );
        assert_eq!(found[0].response_turn, Some(1));
        assert!(found[1].time_ms > 8_000);
    }

    #[test]
    fn unrelated_words_and_out_of_scope_speakers_do_not_match() {
        let p = playbook();
        let m = CompetitorMatcher::new(&p);
        // 销售 alone, "sales" alone, and the agent naming a customer-scoped competitor.
        let turns = vec![
            turn(
                Role::Customer,
                0,
                "我们的销售团队有二十人，sales team is large.",
            ),
            turn(Role::Agent, 4_000, "很多客户从销售易迁移过来。"),
        ];
        assert!(m.mentions(&turns).is_empty());
    }
}
