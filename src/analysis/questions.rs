//! Key-question coverage (关键话术覆盖率): was each playbook question asked, by the right side, in
//! time, and how often. A sentence matches a question two ways:
//! - semantic: its embedding is close to a phrasing's (other wording or the other language);
//! - topic: it asks (a question or a request) and names the question's topic, the content words
//!   of its phrasings, without stating a value for it. This finds the request inside a compound
//!   sentence ("帮我查下它的地址与电话" asks for both) and the one made as a command
//!   ("电话告诉我一下"), which an embedding of the whole sentence places far from "电话是多少？",
//!   and it leaves out constraints ("找一家评分5分的酒店" names a rating, asks for none).

use super::playbook::{KeyQuestion, Playbook};
use crate::asr::guards::is_cjk;
use crate::audio::channels::Role;
use crate::text::acts::{asks, states_value};
use crate::text::embed::{EmbedError, Embedder, cosine};
use crate::transcript::Turn;
use serde::{Deserialize, Serialize};
use std::collections::HashSet;

/// Cosine similarity a sentence needs to count as a question by meaning alone, unless the playbook
/// sets its own. Calibrated by `callqa eval questions` on the first half of CrossWOZ's test
/// dialogues, the topic route on: of the thresholds within 0.01 F1 of the best, the lowest, since
/// phrasings longer than CrossWOZ's short requests rely more on meaning than on a topic word.
/// Measured on the second half: see the README.
pub const DEFAULT_THRESHOLD: f32 = 0.66;
/// The same, for a phrasing in the other language than the sentence (Chinese against English or
/// the reverse): an encoder places translations less close than paraphrases. Calibrated the same
/// way, on top of the one above, against the questions' English phrasings.
pub const CROSS_LANGUAGE_THRESHOLD: f32 = 0.57;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum MatchKind {
    Semantic,
    Topic,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct QuestionMatch {
    pub turn: usize,
    pub role: Role,
    pub time_ms: u64,
    pub sentence: String,
    pub score: f32,
    pub how: MatchKind,
    /// Counted towards the question: by the right side and inside its time window.
    pub counts: bool,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct QuestionResult {
    pub id: String,
    pub asked: bool,
    /// Matches that count (出现频次).
    pub count: usize,
    pub satisfied: bool,
    pub matches: Vec<QuestionMatch>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Coverage {
    /// Satisfied questions / all questions, in percent (100 when the playbook has none).
    pub percent: f64,
    pub questions: Vec<QuestionResult>,
}

/// Sentence-like pieces of a turn, with their char offsets: split at sentence and clause
/// punctuation, so that "好的，电话告诉我一下" yields the request on its own.
pub fn sentences(text: &str) -> Vec<(usize, String)> {
    let mut out = Vec::new();
    let mut current = String::new();
    let mut start = 0;
    // Keeps a piece that has at least two letters or characters.
    let mut flush = |current: &mut String, start: usize| {
        let piece = current.trim();
        if piece.chars().filter(|c| c.is_alphanumeric()).count() >= 2 {
            out.push((start, piece.to_owned()));
        }
        current.clear();
    };
    let chars: Vec<char> = text.chars().collect();
    for (i, &c) in chars.iter().enumerate() {
        // An English full stop ends a sentence; a decimal point (3.5) does not.
        let full_stop = c == '.' && chars.get(i + 1).is_none_or(|n| n.is_whitespace());
        if full_stop || "。？！?!；;，,\n".contains(c) {
            if c == '？' || c == '?' {
                current.push(c);
            }
            flush(&mut current, start);
            start = i + 1;
        } else {
            current.push(c);
        }
    }
    flush(&mut current, start);
    out
}

/// Chinese words that name no topic: question words, pronouns, particles, requests, politeness.
/// Removed from a phrasing before its topic is read, longest first.
#[rustfmt::skip]
const ZH_FUNCTION_WORDS: &[&str] = &[
    "几点到几点", "多长时间", "什么时候", "什么地方", "有没有", "是不是", "能不能", "可不可以",
    "多少钱", "怎么样", "多久", "多长", "请问", "你们", "您们", "我们", "它们", "他们", "他家",
    "这家", "那家", "这个", "那个", "这里", "那里", "多少", "什么", "哪里", "哪儿", "哪些",
    "几点", "怎么", "如何", "可以", "一下", "或者", "告诉", "给我", "发我", "大概", "需要",
    "知道", "帮我", "麻烦", "一般", "具体", "的", "是", "在", "有", "吗", "呢", "吧", "啊",
    "呀", "嘛", "哪", "几", "能", "给", "发", "要", "您", "你", "我", "它", "他", "她", "请",
    "想", "问", "查", "到", "和", "与", "或", "还", "都", "也",
];
/// Words too common to name a topic alone ("营业时间" is about opening hours; "时间" in "游玩时间"
/// is not).
#[rustfmt::skip]
const ZH_GENERIC_WORDS: &[&str] = &[
    "时间", "信息", "情况", "问题", "东西", "方面", "时候", "地方", "个人", "一下", "大家",
    "现在",
];
/// English words that name no topic.
#[rustfmt::skip]
const EN_STOP_WORDS: &[&str] = &[
    "what", "where", "when", "which", "who", "why", "how", "much", "many", "the", "and",
    "are", "was", "were", "does", "did", "can", "could", "would", "will", "you", "your",
    "yours", "our", "they", "their", "its", "this", "that", "there", "have", "has", "for",
    "with", "about", "any", "tell", "give", "send", "get", "let", "know", "need", "want",
    "like", "please", "some", "number", "time", "thing", "things", "information", "info",
    "place", "way", "kind",
];

/// What a phrasing asks about: its content words, each as the forms that name it. A sentence
/// names the topic when it names every word ("周边有什么景点？" asks for sights nearby, not for
/// restaurants; a QA lead who wants both writes "周边有什么？").
type Topic = Vec<Word>;
type Word = Vec<String>;

/// The topics of a phrasing (usually one). Chinese has no spaces, so its words are guessed from
/// the runs left once function words are removed: a run of four characters is a compound named by
/// either half ("电话号码": "电话" or "号码"), unless a half is too common to name it ("营业时间");
/// any other run is one word ("推荐菜": "推荐" alone is not it).
fn topics_of(phrasing: &str) -> Vec<Topic> {
    if !phrasing.chars().any(is_cjk) {
        return vec![
            english_words(phrasing)
                .filter(|w| w.len() > 2 && !EN_STOP_WORDS.contains(&w.as_str()))
                .map(|w| vec![w])
                .collect(),
        ];
    }
    let mut text: String = phrasing
        .chars()
        .map(|c| if is_cjk(c) { c } else { ' ' })
        .collect();
    for w in ZH_FUNCTION_WORDS {
        text = text.replace(w, " ");
    }
    let numeral = |c: char| "零一二两三四五六七八九十百千万".contains(c);
    let named = |w: &str| {
        w.chars().count() >= 2 && !w.chars().any(numeral) && !ZH_GENERIC_WORDS.contains(&w)
    };
    let words = text.split_whitespace().filter_map(|run| {
        let chars: Vec<char> = run.chars().collect();
        let halves: Vec<String> = chars.chunks(2).map(|h| h.iter().collect()).collect();
        let forms = match chars.len() {
            4 if halves.iter().all(|h| named(h)) => halves,
            _ => vec![run.to_owned()],
        };
        let forms: Vec<String> = forms.into_iter().filter(|f| named(f)).collect();
        (!forms.is_empty()).then_some(forms)
    });
    // "在哪" is a topic of its own: the question is about a place ("颐和园在哪？").
    let mut topics = vec![words.collect::<Topic>()];
    if phrasing.contains("在哪") {
        topics.push(vec![vec!["在哪".to_owned()]]);
    }
    topics
}

fn english_words(text: &str) -> impl Iterator<Item = String> + '_ {
    text.split(|c: char| !c.is_alphanumeric())
        .filter(|w| !w.is_empty())
        .map(str::to_lowercase)
}

/// Where a word is named in a Chinese sentence: runs of its forms, [start, end) in chars
/// ("人均消费" as one run).
fn spans(chars: &[char], forms: &[String]) -> Vec<(usize, usize)> {
    let forms: Vec<Vec<char>> = forms.iter().map(|c| c.chars().collect()).collect();
    let form_at = |i: usize| {
        forms
            .iter()
            .filter(|f| chars[i..].starts_with(f))
            .map(Vec::len)
            .max()
    };
    let mut spans: Vec<(usize, usize)> = Vec::new();
    let mut i = 0;
    while i < chars.len() {
        let Some(len) = form_at(i) else {
            i += 1;
            continue;
        };
        match spans.last_mut() {
            Some(last) if last.1 == i => last.1 = i + len,
            _ => spans.push((i, i + len)),
        }
        i += len;
    }
    spans
}

/// How many characters may stand between a topic and its value ("门票价格20元", "评分够4分").
const VALUE_REACH: usize = 3;

/// Does the sentence ask about one of these topics (one per phrasing), rather than state a value?
/// `others` are the other questions' words: a word named right after one of them is its
/// attribute ("门票价格" asks about the ticket, not about prices in general).
fn asks_about(sentence: &str, topics: &[Topic], others: &[Word]) -> bool {
    if !asks(sentence) {
        return false;
    }
    let named =
        |topic: &Topic, word: &dyn Fn(&Word) -> bool| !topic.is_empty() && topic.iter().all(word);
    if !sentence.chars().any(is_cjk) {
        let words: HashSet<String> = english_words(sentence).collect();
        return topics
            .iter()
            .any(|t| named(t, &|w: &Word| w.iter().any(|f| words.contains(f))));
    }
    let chars: Vec<char> = sentence.chars().collect();
    let attribute_at: HashSet<usize> = others
        .iter()
        .flat_map(|o| spans(&chars, o))
        .map(|(_, end)| end)
        .collect();
    let asked = |word: &Word| {
        spans(&chars, word).into_iter().any(|(start, end)| {
            let gives_value = (0..=VALUE_REACH).any(|skip| {
                chars
                    .get(end..end + skip)
                    .is_some_and(|s| s.iter().all(|&c| is_cjk(c)))
                    && states_value(&chars[end + skip..].iter().collect::<String>())
            });
            !attribute_at.contains(&start) && !gives_value
        })
    };
    topics.iter().any(|t| named(t, &asked))
}

struct Prepared {
    /// Each phrasing's embedding, and whether it is Chinese.
    embeddings: Vec<(Vec<f32>, bool)>,
    topics: Vec<Topic>,
    /// The other questions' topic words (see `asks_about`).
    others: Vec<Word>,
    /// The playbook's own threshold, for either language.
    threshold: Option<f32>,
}

/// The best similarity of a sentence to a question's phrasings, in its own language and in the
/// other.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Similarity {
    pub same_language: f32,
    pub cross_language: f32,
}

impl Similarity {
    fn of(p: &Prepared, embedding: &[f32], chinese: bool) -> Self {
        let best = |same: bool| {
            p.embeddings
                .iter()
                .filter(|(_, zh)| (*zh == chinese) == same)
                .map(|(e, _)| cosine(e, embedding))
                .fold(f32::MIN, f32::max)
        };
        Similarity {
            same_language: best(true),
            cross_language: best(false),
        }
    }

    /// The better similarity, if either reaches its threshold.
    pub fn passes(&self, same_language: f32, cross_language: f32) -> Option<f32> {
        let same = (self.same_language >= same_language).then_some(self.same_language);
        let cross = (self.cross_language >= cross_language).then_some(self.cross_language);
        same.into_iter().chain(cross).reduce(f32::max)
    }

    pub fn best(&self) -> f32 {
        self.same_language.max(self.cross_language)
    }
}

/// A playbook's key questions, with their phrasings embedded once.
pub struct QuestionMatcher<'p> {
    questions: Vec<(&'p KeyQuestion, Prepared)>,
}

impl<'p> QuestionMatcher<'p> {
    pub fn new(playbook: &'p Playbook, embedder: &mut Embedder) -> Result<Self, EmbedError> {
        let mut questions = Vec::new();
        for q in &playbook.key_questions {
            let phrasings: Vec<&String> = q
                .phrasings
                .iter()
                .filter(|p| !p.trim().is_empty())
                .collect();
            let embeddings = phrasings
                .iter()
                .map(|p| Ok((embedder.embed(p)?, p.chars().any(is_cjk))))
                .collect::<Result<_, EmbedError>>()?;
            let topics = phrasings.iter().flat_map(|p| topics_of(p)).collect();
            questions.push((
                q,
                Prepared {
                    embeddings,
                    topics,
                    others: Vec::new(),
                    threshold: q.threshold,
                },
            ));
        }
        for i in 0..questions.len() {
            let others: Vec<Word> = (0..questions.len())
                .filter(|&j| j != i)
                .flat_map(|j| questions[j].1.topics.iter().flatten().cloned())
                .collect();
            questions[i].1.others = others;
        }
        Ok(Self { questions })
    }

    /// The similarity of a sentence's embedding to each question's phrasings.
    pub fn similarities(&self, embedding: &[f32], sentence: &str) -> Vec<Similarity> {
        let chinese = sentence.chars().any(is_cjk);
        self.questions
            .iter()
            .map(|(_, p)| Similarity::of(p, embedding, chinese))
            .collect()
    }

    /// The best score of a sentence (given its embedding) against each question, if it matches.
    pub fn match_sentence(
        &self,
        embedding: &[f32],
        sentence: &str,
    ) -> Vec<Option<(f32, MatchKind)>> {
        let chinese = sentence.chars().any(is_cjk);
        self.questions
            .iter()
            .map(|(_, p)| {
                let similarity = Similarity::of(p, embedding, chinese);
                let (same, cross) = p
                    .threshold
                    .map_or((DEFAULT_THRESHOLD, CROSS_LANGUAGE_THRESHOLD), |t| (t, t));
                if let Some(score) = similarity.passes(same, cross) {
                    return Some((score, MatchKind::Semantic));
                }
                let semantic = similarity.best();
                asks_about(sentence, &p.topics, &p.others).then_some((semantic, MatchKind::Topic))
            })
            .collect()
    }

    pub fn questions(&self) -> impl Iterator<Item = &'p KeyQuestion> + '_ {
        self.questions.iter().map(|(q, _)| *q)
    }

    /// For each sentence of `turn` that counts towards a question (right side, in time), that
    /// question's index: a call in progress is scored turn by turn with it.
    pub fn counted_in(
        &self,
        turn: &Turn,
        embedder: &mut Embedder,
    ) -> Result<Vec<usize>, EmbedError> {
        let mut counted = Vec::new();
        for (offset, sentence) in sentences(&turn.text) {
            let embedding = embedder.embed(&sentence)?;
            let time_ms = turn.time_at(offset) as f64;
            for (qi, m) in self
                .match_sentence(&embedding, &sentence)
                .into_iter()
                .enumerate()
            {
                let q = self.questions[qi].0;
                if m.is_some()
                    && q.asked_by.covers(turn.role)
                    && q.within_minutes.is_none_or(|m| time_ms <= m * 60_000.0)
                {
                    counted.push(qi);
                }
            }
        }
        Ok(counted)
    }

    /// Coverage of the questions over a call.
    pub fn coverage(
        &self,
        turns: &[Turn],
        embedder: &mut Embedder,
    ) -> Result<Coverage, EmbedError> {
        let mut results: Vec<QuestionResult> = self
            .questions
            .iter()
            .map(|(q, _)| QuestionResult {
                id: q.id.clone(),
                asked: false,
                count: 0,
                satisfied: false,
                matches: Vec::new(),
            })
            .collect();
        for (t, turn) in turns.iter().enumerate() {
            for (offset, sentence) in sentences(&turn.text) {
                let embedding = embedder.embed(&sentence)?;
                for (qi, m) in self
                    .match_sentence(&embedding, &sentence)
                    .into_iter()
                    .enumerate()
                {
                    let Some((score, how)) = m else { continue };
                    let q = self.questions[qi].0;
                    let time_ms = turn.time_at(offset);
                    let right_side = q.asked_by.covers(turn.role);
                    let in_time = q
                        .within_minutes
                        .is_none_or(|m| (time_ms as f64) <= m * 60_000.0);
                    let r = &mut results[qi];
                    r.asked = true;
                    r.count += usize::from(right_side && in_time);
                    r.matches.push(QuestionMatch {
                        turn: t,
                        role: turn.role,
                        time_ms,
                        sentence: sentence.clone(),
                        score,
                        how,
                        counts: right_side && in_time,
                    });
                }
            }
        }
        for (r, (q, _)) in results.iter_mut().zip(&self.questions) {
            r.satisfied = r.count >= q.min_count as usize;
        }
        let satisfied = results.iter().filter(|r| r.satisfied).count();
        let percent = if results.is_empty() {
            100.0
        } else {
            satisfied as f64 * 100.0 / results.len() as f64
        };
        Ok(Coverage {
            percent,
            questions: results,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn turns_split_into_sentences_and_clauses() {
        let s = sentences("好的，电话和地址告诉我一下。那营业时间呢？OK. It costs 3.5k");
        let texts: Vec<&str> = s.iter().map(|(_, t)| t.as_str()).collect();
        assert_eq!(
            texts,
            vec![
                "好的",
                "电话和地址告诉我一下",
                "那营业时间呢？",
                "OK",
                "It costs 3.5k"
            ]
        );
        assert_eq!(s[1].0, 3);
    }

    #[test]
    fn a_topic_is_what_is_left_of_a_phrasing_without_its_question_words() {
        let words = |p: &str| {
            topics_of(p)
                .into_iter()
                .map(|t| {
                    t.into_iter()
                        .map(|w| w.join("|"))
                        .collect::<Vec<_>>()
                        .join(" ")
                })
                .collect::<Vec<_>>()
        };
        assert_eq!(words("电话号码是多少？"), ["电话|号码"]);
        assert_eq!(words("地址在哪里？"), ["地址", "在哪"]);
        assert_eq!(words("营业时间是几点到几点？"), ["营业时间"]);
        assert_eq!(words("游玩时间要多久？"), ["游玩时间"]);
        assert_eq!(words("有什么推荐菜？"), ["推荐菜"]);
        assert_eq!(words("附近有什么餐馆或者酒店？"), ["附近 餐馆 酒店"]);
        assert_eq!(words("住一晚多少钱？"), [""]);
        assert_eq!(words("What is the phone number?"), ["phone"]);
    }

    #[test]
    fn a_sentence_asks_about_a_topic_when_it_requests_it_without_giving_its_value() {
        let alone = |s: &str, p: &str| asks_about(s, &topics_of(p), &[]);
        assert!(alone("这家酒店的评分和电话分别是多少", "评分是多少？"));
        assert!(alone("帮我查一下它家的评分吧", "评分是多少？"));
        assert!(!alone("我想找一个评分是5分的酒店", "评分是多少？"));
        assert!(!alone("有评分4.5分以上的餐馆吗", "评分是多少？"));
        assert!(!alone("你看看评分够4.5分以上吗", "评分是多少？"));
        assert!(!alone("评分高", "评分是多少？"));
        assert!(alone("电话告诉我一下", "电话号码是多少？"));
        assert!(alone("颐和园在哪？", "地址在哪里？"));
        assert!(alone("人均消费怎么样", "人均消费多少？"));
        assert!(!alone("有人均消费是50-100元的吗", "人均消费多少？"));
        assert!(alone("这家店的推荐菜有哪些？", "有什么推荐菜？"));
        assert!(!alone("帮我推荐一个餐馆吧", "有什么推荐菜？"));
        assert!(alone("周边有什么景点？", "周边有什么景点？"));
        assert!(!alone("周边有什么餐馆？", "周边有什么景点？"));
        assert!(alone(
            "Could you give me their phone?",
            "What is the phone number?"
        ));
        assert!(
            !alone("住一晚多少钱？", "住一晚多少钱？"),
            "a phrasing without a topic"
        );

        // "门票价格" is the ticket's price: a question about tickets, not about prices.
        let (ticket, price) = (topics_of("门票多少钱？"), topics_of("价格是多少？"));
        let sentence = "门票价格是多少？";
        assert!(asks_about(sentence, &ticket, &price[0]));
        assert!(!asks_about(sentence, &price, &ticket[0]));
        assert!(!asks_about("有门票价格150-200元的吗？", &ticket, &price[0]));
    }
}
