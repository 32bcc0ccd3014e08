//! The three-part summary (三必录): the customer's core needs (客户核心诉求), objections (异议点) and
//! next-step commitments (下一步承诺: who promised what, by when). Extractive: each item is a
//! sentence of the call, with its turn and time; a commitment's time expression (下周三, next
//! Tuesday) is resolved to a date relative to the call.

use super::questions::sentences;
use crate::audio::channels::Role;
use crate::text::embed::{EmbedError, Embedder, cosine};
use crate::transcript::Turn;
use chrono::{Datelike, Duration, NaiveDate, Weekday};
use serde::{Deserialize, Serialize};

/// Similarity to the prototypes below that makes a sentence an objection or a commitment.
const THRESHOLD: f32 = 0.55;
/// Similarity that makes a customer sentence a need: calibrated with `callqa eval needs` on the
/// first half of the CrossWOZ test dialogues (the user's constraint acts are the labels, the
/// system's turns negatives).
pub const NEEDS_THRESHOLD: f32 = 0.34;

/// What a customer says when stating a need: the pain, the goal, and the constraints a solution
/// must meet (a budget, a size, a feature, a deadline).
const NEEDS: &[&str] = &[
    "报销审核要等好几天。",
    "客户资料老是丢。",
    "销售跟进总是不及时。",
    "Our approvals take far too long.",
    "我们需要一个管理客户的系统。",
    "我们希望销售流程更规范。",
    "我想找一个能自动跟进线索的工具。",
    "帮我推荐一个合适的方案。",
    "我想找一个价格便宜一点、评价好一点的。",
    "最好是支持手机上用的。",
    "预算大概在一万到两万之间。",
    "我们要能给五十个人同时用的。",
    "希望下个月之前能用起来。",
    "We need a tool to track our leads.",
    "We're looking for something under ten thousand a year.",
    "It has to work on mobile.",
];
/// The kinds of objection, each with what a customer says when raising it, and what an agent
/// says when taking it up: the words (any one will do) and example replies (by meaning).
/// A reply that only moves on ("那我明天把资料发给您" after "太贵了") takes nothing up.
struct ObjectionKind {
    name: &'static str,
    raised: &'static [&'static str],
    reply_words: &'static [&'static str],
    replies: &'static [&'static str],
}

/// What a customer says about how things are now: facts, not needs. A sentence closer to these
/// than to the needs is no need.
const STATUS_QUO: &[&str] = &[
    "我们用的是企业微信。",
    "公司大概有三百个员工。",
    "我们是做教育培训的。",
    "我们在北京和上海都有办公室。",
    "We currently use spreadsheets.",
    "We have about fifty people.",
];
#[rustfmt::skip]
const OBJECTION_KINDS: &[ObjectionKind] = &[
    ObjectionKind {
        name: "price",
        raised: &[
            "价格太贵了。",
            "我们预算不多。",
            "It's too expensive for us.",
            "We don't have the budget for this.",
        ],
        // Value, discount, return on investment or terms.
        reply_words: &[
            "价格", "价钱", "费用", "收费", "报价", "优惠", "折扣", "打折", "便宜", "划算",
            "性价比", "回报", "回本", "省下", "节省", "成本", "分期", "按年", "按月", "每年",
            "每月", "试用", "免费", "price", "cost", "discount", "value", "roi", "return",
            "save", "saving", "worth", "payment", "per month", "per year", "trial", "free",
        ],
        replies: &[
            "我们的系统能帮您节省不少成本，几个月就能回本。",
            "这个价格我可以帮您申请一个折扣。",
            "我们可以按月付费，先试用一个月。",
            "It pays for itself within a few months.",
            "I can offer you a discount on the first year.",
        ],
    },
    ObjectionKind {
        name: "incumbent",
        raised: &["我们已经有一套系统了。", "We already have a solution."],
        // A comparison with what they use, or the way over.
        reply_words: &[
            "相比", "对比", "比起", "区别", "不同", "优势", "迁移", "导入", "切换", "替换",
            "compared", "compare", "difference", "unlike", "better than", "migrate", "switch",
        ],
        replies: &[
            "和您现在用的系统相比，我们在移动端和报表上更强。",
            "您现有的数据我们可以帮您一键迁移过来。",
            "Compared with what you use today, we are faster to set up.",
        ],
    },
    ObjectionKind {
        name: "timing",
        raised: &[
            "我需要再考虑一下。",
            "现在不是合适的时机。",
            "I need to think about it.",
        ],
        // A plan, a smaller first step, or the concern behind it.
        reply_words: &[
            "计划", "安排", "试点", "试用", "先", "分阶段", "顾虑", "担心", "考虑的是",
            "时间点", "plan", "pilot", "trial", "first step", "concern", "worry", "timeline",
        ],
        replies: &[
            "您主要的顾虑是什么？我可以帮您解答。",
            "我们可以先做一个小范围的试点，下个季度再推广。",
            "What is holding you back? Maybe we can start with a pilot.",
        ],
    },
    ObjectionKind {
        name: "authority",
        raised: &[
            "这个我得请示一下领导。",
            "I have to check with my boss first.",
        ],
        // Bringing the decision-maker in, or arming the customer for them.
        reply_words: &[
            "领导", "老板", "决策", "一起", "汇报", "材料", "boss", "manager", "decision",
            "together", "join",
        ],
        replies: &[
            "要不我们约上您的领导一起聊一下？",
            "我可以准备一份材料，方便您向领导汇报。",
            "Would it help if I joined a call with your manager?",
        ],
    },
];
/// Similarity to an example reply that takes an objection up.
const REPLY_THRESHOLD: f32 = 0.6;
const COMMITMENTS: &[&str] = &[
    "我明天把报价发给您。",
    "下周三我们再约个时间详细聊。",
    "我会安排一次产品演示。",
    "I'll send you the proposal tomorrow.",
    "Let's schedule a demo next Tuesday.",
    "I will follow up with you next week.",
];
/// Words that a commitment needs besides similarity: a promise or a plan.
const COMMITMENT_CUES: &[&str] = &[
    "我会",
    "我们会",
    "我明天",
    "我下周",
    "回头",
    "约",
    "安排",
    "发给",
    "发您",
    "给您发",
    "i'll",
    "i will",
    "we'll",
    "we will",
    "let's",
    "schedule",
    "send",
    "follow up",
];

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Item {
    pub turn: usize,
    pub role: Role,
    pub time_ms: u64,
    pub text: String,
    pub score: f32,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Commitment {
    #[serde(flatten)]
    pub item: Item,
    /// The date the time expression resolves to (YYYY-MM-DD), if the sentence has one.
    pub due: Option<NaiveDate>,
    pub due_phrase: Option<String>,
}

/// An objection, its kind (price, incumbent, timing, authority) and the agent turn that took it
/// up, if one did.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Objection {
    #[serde(flatten)]
    pub item: Item,
    /// Empty in analyses stored before kinds were told apart.
    #[serde(default)]
    pub kind: String,
    pub response_turn: Option<usize>,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct Summary {
    pub core_needs: Vec<Item>,
    pub objections: Vec<Objection>,
    pub commitments: Vec<Commitment>,
}

fn weekday_zh(c: char) -> Option<Weekday> {
    Some(match c {
        '一' => Weekday::Mon,
        '二' => Weekday::Tue,
        '三' => Weekday::Wed,
        '四' => Weekday::Thu,
        '五' => Weekday::Fri,
        '六' => Weekday::Sat,
        '日' | '天' => Weekday::Sun,
        _ => return None,
    })
}

fn weekday_en(w: &str) -> Option<Weekday> {
    Some(match w.trim_end_matches(|c: char| !c.is_alphabetic()) {
        "monday" => Weekday::Mon,
        "tuesday" => Weekday::Tue,
        "wednesday" => Weekday::Wed,
        "thursday" => Weekday::Thu,
        "friday" => Weekday::Fri,
        "saturday" => Weekday::Sat,
        "sunday" => Weekday::Sun,
        _ => return None,
    })
}

/// The date of `day` in the week `weeks_ahead` after the call's week (weeks start on Monday).
fn in_week(call: NaiveDate, weeks_ahead: i64, day: Weekday) -> NaiveDate {
    let monday = call - Duration::days(i64::from(call.weekday().num_days_from_monday()));
    monday + Duration::days(7 * weeks_ahead + i64::from(day.num_days_from_monday()))
}

/// The next `day` after the call date (a bare weekday means the coming one).
fn coming(call: NaiveDate, day: Weekday) -> NaiveDate {
    let ahead = (7 + i64::from(day.num_days_from_monday())
        - i64::from(call.weekday().num_days_from_monday()))
        % 7;
    call + Duration::days(if ahead == 0 { 7 } else { ahead })
}

/// Resolves the first time expression of a sentence against the call date.
pub fn resolve_date(text: &str, call: NaiveDate) -> Option<(NaiveDate, String)> {
    let s = text;
    for (phrase, days) in [("大后天", 3), ("后天", 2), ("明天", 1), ("今天", 0)] {
        if s.contains(phrase) {
            return Some((call + Duration::days(days), phrase.into()));
        }
    }
    // Each position does a bounded amount of work: the whole scan is linear in the text.
    for (i, c) in s.char_indices() {
        let rest = &s[i..];
        for (prefix, weeks) in [
            ("下下周", 2),
            ("下下星期", 2),
            ("下周", 1),
            ("下星期", 1),
            ("下礼拜", 1),
            ("这周", 0),
            ("本周", 0),
            ("周", -1),
            ("星期", -1),
            ("礼拜", -1),
        ] {
            if let Some(after) = rest.strip_prefix(prefix)
                && let Some(day) = after.chars().next().and_then(weekday_zh)
            {
                let date = if weeks < 0 {
                    coming(call, day)
                } else {
                    in_week(call, weeks, day)
                };
                return Some((
                    date,
                    format!("{prefix}{}", after.chars().next().unwrap_or_default()),
                ));
            }
        }
        // 3月15日 / 3月15号: a month of one or two digits right before 月.
        if !c.is_ascii_digit() {
            continue;
        }
        let month_len = rest.bytes().take(3).take_while(u8::is_ascii_digit).count();
        let Some(day) = rest[month_len..]
            .strip_prefix('月')
            .filter(|_| month_len <= 2)
        else {
            continue;
        };
        let digits = day.bytes().take(3).take_while(u8::is_ascii_digit).count();
        let tail = day[digits..].chars().next();
        if let (Ok(mo), Ok(d)) = (
            rest[..month_len].parse::<u32>(),
            day[..digits].parse::<u32>(),
        ) && matches!(tail, Some('日' | '号'))
            && let Some(mut date) = NaiveDate::from_ymd_opt(call.year(), mo, d)
        {
            if date < call {
                date = NaiveDate::from_ymd_opt(call.year() + 1, mo, d).unwrap_or(date);
            }
            return Some((date, format!("{mo}月{d}{}", tail.unwrap_or('日'))));
        }
    }
    let lower = s.to_lowercase();
    let words: Vec<&str> = lower.split_whitespace().collect();
    for (i, w) in words.iter().enumerate() {
        let w = w.trim_matches(|c: char| !c.is_alphanumeric());
        match w {
            "today" => return Some((call, "today".into())),
            "tomorrow" => return Some((call + Duration::days(1), "tomorrow".into())),
            "next" => {
                if let Some(day) = words.get(i + 1).and_then(|n| weekday_en(n)) {
                    return Some((
                        in_week(call, 1, day),
                        format!(
                            "next {}",
                            words[i + 1].trim_end_matches(|c: char| !c.is_alphabetic())
                        ),
                    ));
                }
                if words.get(i + 1).is_some_and(|n| n.starts_with("week")) {
                    return Some((in_week(call, 1, Weekday::Mon), "next week".into()));
                }
            }
            _ => {
                if let Some(day) = weekday_en(w) {
                    return Some((coming(call, day), w.to_owned()));
                }
            }
        }
    }
    None
}

struct Prototypes(Vec<Vec<f32>>);

impl Prototypes {
    fn new(texts: &[&str], embedder: &mut Embedder) -> Result<Self, EmbedError> {
        Ok(Self(
            texts
                .iter()
                .map(|t| embedder.embed(t))
                .collect::<Result<_, _>>()?,
        ))
    }
    fn score(&self, e: &[f32]) -> f32 {
        self.0.iter().map(|p| cosine(p, e)).fold(f32::MIN, f32::max)
    }
}

/// A sentence of a turn: its char offset, its text and its embedding.
type Sentence = (usize, String, Vec<f32>);

/// The prototype sets, embedded once and reused across calls.
pub struct Extractor {
    needs: Prototypes,
    status_quo: Prototypes,
    /// Per objection kind: how it is raised, and replies that take it up.
    objections: Vec<(Prototypes, Prototypes)>,
    commitments: Prototypes,
}

impl Extractor {
    pub fn new(embedder: &mut Embedder) -> Result<Self, EmbedError> {
        let objections = OBJECTION_KINDS
            .iter()
            .map(|k| {
                Ok((
                    Prototypes::new(k.raised, embedder)?,
                    Prototypes::new(k.replies, embedder)?,
                ))
            })
            .collect::<Result<_, EmbedError>>()?;
        Ok(Self {
            needs: Prototypes::new(NEEDS, embedder)?,
            status_quo: Prototypes::new(STATUS_QUO, embedder)?,
            objections,
            commitments: Prototypes::new(COMMITMENTS, embedder)?,
        })
    }

    /// The objection kind a sentence is closest to, and how close.
    fn objection_kind(&self, embedding: &[f32]) -> (usize, f32) {
        self.objections
            .iter()
            .map(|(raised, _)| raised.score(embedding))
            .enumerate()
            .fold(
                (0, f32::MIN),
                |best, (k, s)| if s > best.1 { (k, s) } else { best },
            )
    }

    /// Does an agent turn take up an objection of this kind: a word of the kind, or a sentence
    /// close to an example reply?
    fn takes_up(&self, kind: usize, text: &str, sentences: &[Sentence]) -> bool {
        let lower = text.to_lowercase();
        OBJECTION_KINDS[kind]
            .reply_words
            .iter()
            .any(|w| lower.contains(w))
            || sentences
                .iter()
                .any(|s| self.objections[kind].1.score(&s.2) >= REPLY_THRESHOLD)
    }

    /// How much a sentence (its embedding) reads as a customer need: its similarity to the needs,
    /// or 0 when it reads more as a fact about how things are now.
    pub fn need_score(&self, embedding: &[f32]) -> f32 {
        let need = self.needs.score(embedding);
        if self.status_quo.score(embedding) > need {
            0.0
        } else {
            need
        }
    }

    /// Extracts the summary. Needs and objections come from the customer (or unknown speakers
    /// on a mono call); commitments from either side.
    pub fn summarise(
        &self,
        turns: &[Turn],
        call_date: NaiveDate,
        embedder: &mut Embedder,
    ) -> Result<Summary, EmbedError> {
        // Every sentence embedded once: an agent's reply is read again for the objections before it.
        let embedded = turns
            .iter()
            .map(|turn| {
                sentences(&turn.text)
                    .into_iter()
                    .map(|(offset, s)| {
                        let e = embedder.embed(&s)?;
                        Ok((offset, s, e))
                    })
                    .collect::<Result<Vec<Sentence>, EmbedError>>()
            })
            .collect::<Result<Vec<_>, _>>()?;
        let mut out = Summary::default();
        for (t, turn) in turns.iter().enumerate() {
            for (offset, sentence, e) in &embedded[t] {
                let (offset, e) = (*offset, e.as_slice());
                let item = |score: f32| Item {
                    turn: t,
                    role: turn.role,
                    time_ms: turn.time_at(offset),
                    text: sentence.clone(),
                    score,
                };
                let (kind, so) = self.objection_kind(e);
                let (sn, sc) = (self.need_score(e), self.commitments.score(e));
                let lower = sentence.to_lowercase();
                if sc >= THRESHOLD && COMMITMENT_CUES.iter().any(|c| lower.contains(c)) {
                    let due = resolve_date(sentence, call_date);
                    out.commitments.push(Commitment {
                        item: item(sc),
                        due: due.as_ref().map(|d| d.0),
                        due_phrase: due.map(|d| d.1),
                    });
                } else if turn.role != Role::Agent && so >= THRESHOLD && so >= sn {
                    let response_turn = agent_replies(turns, t)
                        .into_iter()
                        .find(|&r| self.takes_up(kind, &turns[r].text, &embedded[r]));
                    out.objections.push(Objection {
                        item: item(so),
                        kind: OBJECTION_KINDS[kind].name.to_owned(),
                        response_turn,
                    });
                } else if turn.role != Role::Agent && sn >= NEEDS_THRESHOLD {
                    out.core_needs.push(item(sn));
                }
            }
        }
        Ok(out)
    }
}

/// Extracts the summary of one call (see `Extractor::summarise`).
pub fn summarise(
    turns: &[Turn],
    call_date: NaiveDate,
    embedder: &mut Embedder,
) -> Result<Summary, EmbedError> {
    Extractor::new(embedder)?.summarise(turns, call_date, embedder)
}

/// The agent's first two substantive turns within a minute after turn `at`: more than an
/// acknowledgement, at least a clause long.
fn agent_replies(turns: &[Turn], at: usize) -> Vec<usize> {
    let limit = turns[at].end_ms + 60_000;
    turns
        .iter()
        .enumerate()
        .skip(at + 1)
        .take_while(|(_, t)| t.start_ms <= limit)
        .filter(|(_, t)| {
            t.role == Role::Agent
                && !super::emotion::is_backchannel_only(&t.text)
                && super::talk::units(&t.text).0 >= 6
        })
        .map(|(i, _)| i)
        .take(2)
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn d(y: i32, m: u32, day: u32) -> NaiveDate {
        NaiveDate::from_ymd_opt(y, m, day).unwrap()
    }

    #[test]
    fn a_long_text_is_read_in_linear_time() {
        // 1 MB of digits and 月 without a date: a quadratic scan would not finish.
        let call = NaiveDate::from_ymd_opt(2026, 11, 26).unwrap();
        let text = "123月4".repeat(200_000);
        assert_eq!(resolve_date(&text, call), None);
        let text = format!("{}下周三", "好".repeat(300_000));
        assert!(resolve_date(&text, call).is_some());
    }

    #[test]
    fn time_expressions_resolve_against_the_call_date() {
        let call = d(2026, 11, 26); // a Thursday
        assert_eq!(
            resolve_date("我明天把报价发给您", call),
            Some((d(2026, 11, 27), "明天".into()))
        );
        assert_eq!(
            resolve_date("下周三我们再约", call),
            Some((d(2026, 12, 2), "下周三".into()))
        );
        assert_eq!(
            resolve_date("周一给您回复", call),
            Some((d(2026, 11, 30), "周一".into()))
        );
        assert_eq!(
            resolve_date("12月5号之前签合同", call),
            Some((d(2026, 12, 5), "12月5号".into()))
        );
        assert_eq!(
            resolve_date("3月1日上线", call),
            Some((d(2027, 3, 1), "3月1日".into()))
        );
        assert_eq!(
            resolve_date("Let's talk next Tuesday.", call),
            Some((d(2026, 12, 1), "next tuesday".into()))
        );
        assert_eq!(
            resolve_date("I'll send it tomorrow", call),
            Some((d(2026, 11, 27), "tomorrow".into()))
        );
        assert_eq!(
            resolve_date("Call me on Friday", call),
            Some((d(2026, 11, 27), "friday".into()))
        );
        assert_eq!(resolve_date("好的，没问题", call), None);
    }
}
