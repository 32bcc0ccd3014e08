//! PII redaction, between transcription and analysis. It finds phone numbers, PRC resident ID
//! numbers, bank cards, e-mail addresses and self-introduced names in Mandarin and English, as
//! ASR writes them: digits, Chinese numerals (一三八, 幺), English number words ("four zero one"),
//! grouped with spaces or dashes, and numbers that run on into the next turn. What it finds is
//! masked in the text and the words; the spans keep their times.

use crate::analysis::playbook::{PiiClass, Redaction, RedactionMode};
use crate::pipeline::Turn;
use regex::Regex;
use serde::{Deserialize, Serialize};
use std::sync::LazyLock;

/// A redacted stretch of a turn: what it was and when it was said (never the original text).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RedactedSpan {
    pub class: PiiClass,
    pub turn: usize,
    pub start_ms: u64,
    pub end_ms: u64,
}

/// PII found in one turn's text: byte offsets, and the value (digits or address) it stands for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Found {
    pub class: PiiClass,
    pub turn: usize,
    pub start: usize,
    pub end: usize,
    pub value: String,
}

/// Masks what `policy` asks for in `turns`, in place; returns the spans, in turn order.
pub fn redact(turns: &mut [Turn], policy: &Redaction) -> Vec<RedactedSpan> {
    if policy.mode == RedactionMode::None || policy.classes.is_empty() {
        return Vec::new();
    }
    let texts: Vec<&str> = turns.iter().map(|t| t.text.as_str()).collect();
    let mut found: Vec<Found> = find(&texts)
        .into_iter()
        .filter(|f| policy.classes.contains(&f.class))
        .collect();
    // One mask where finds overlap (digits inside an address); then right to left within a
    // turn, so that earlier offsets stay valid.
    found.sort_by_key(|f| (f.turn, f.start, std::cmp::Reverse(f.end)));
    found.dedup_by(|later, kept| later.turn == kept.turn && later.start < kept.end);
    found.reverse();
    let mut spans = Vec::new();
    for f in &found {
        let (start_ms, end_ms) = mask(
            &mut turns[f.turn],
            f.start,
            f.end,
            &replacement(f, policy.mode),
        );
        spans.push(RedactedSpan {
            class: f.class,
            turn: f.turn,
            start_ms,
            end_ms,
        });
    }
    spans.sort_by_key(|s| (s.turn, s.start_ms));
    spans
}

/// What replaces a span: its class (`[PHONE]`), or its value partly hidden (`138****5678`).
fn replacement(f: &Found, mode: RedactionMode) -> String {
    if mode != RedactionMode::Partial {
        return format!("[{}]", label(f.class));
    }
    let chars: Vec<char> = f.value.chars().collect();
    let n = chars.len();
    let keep = |head: usize, tail: usize| -> String {
        chars
            .iter()
            .enumerate()
            .map(|(i, &c)| if i < head || i + tail >= n { c } else { '*' })
            .collect()
    };
    match f.class {
        PiiClass::Phone if n >= 10 => keep(3, 4),
        PiiClass::Phone => keep(0, 4),
        PiiClass::IdCard | PiiClass::BankCard => keep(6, 4),
        PiiClass::Email => match f.value.split_once('@') {
            Some((local, domain)) => {
                format!("{}***@{domain}", local.chars().next().unwrap_or('*'))
            }
            None => "[EMAIL]".into(),
        },
        PiiClass::Name => f
            .value
            .split_whitespace()
            .map(|w| {
                let mut cs = w.chars();
                let first = cs.next().unwrap_or('*');
                let rest = cs.count().max(1);
                format!("{first}{}", "*".repeat(rest))
            })
            .collect::<Vec<_>>()
            .join(" "),
    }
}

pub fn label(class: PiiClass) -> &'static str {
    match class {
        PiiClass::Phone => "PHONE",
        PiiClass::IdCard => "ID_CARD",
        PiiClass::BankCard => "BANK_CARD",
        PiiClass::Email => "EMAIL",
        PiiClass::Name => "NAME",
    }
}

/// A segment of a live call as it may be shown, redacted with the segments before it (`prev`,
/// as heard) for context. A number at its very end that is not PII yet is held back as `[…]`:
/// the next segment may complete it.
pub fn live_segment(prev: &[Turn], seg: &Turn, policy: &Redaction) -> Turn {
    let from = prev.len().saturating_sub(2);
    let mut recent: Vec<Turn> = prev[from..].iter().cloned().chain([seg.clone()]).collect();
    redact(&mut recent, policy);
    let mut out = recent.pop().expect("the segment");
    let numeric = policy
        .classes
        .iter()
        .any(|c| *c != PiiClass::Email && *c != PiiClass::Name);
    if policy.mode != RedactionMode::None
        && numeric
        && let Some(run) = digit_runs(&out.text).pop()
        && run.at_end
        && run.digits.len() >= 4
    {
        mask(&mut out, run.start, run.end, "[…]");
    }
    out
}

/// Replaces bytes `start..end` of a turn's text, and the words under them, by `with`; returns
/// the times of the replaced words.
fn mask(turn: &mut Turn, start: usize, end: usize, with: &str) -> (u64, u64) {
    // Where each word sits in the text: words are the text cut into pieces, in order.
    let mut at = 0;
    let mut hit = Vec::new();
    for (i, w) in turn.words.iter().enumerate() {
        let piece = w.text.trim();
        if piece.is_empty() {
            continue;
        }
        let Some(pos) = turn.text[at..].find(piece) else {
            continue;
        };
        let (s, e) = (at + pos, at + pos + piece.len());
        at = e;
        if s < end && e > start {
            hit.push(i);
        }
    }
    let char_at = |byte: usize| turn.text[..byte].chars().count();
    let (mut start_ms, mut end_ms) = (turn.time_at(char_at(start)), turn.time_at(char_at(end)));
    if let (Some(&first), Some(&last)) = (hit.first(), hit.last()) {
        start_ms = turn.words[first].start_ms;
        end_ms = turn.words[last].end_ms;
        let mut word = turn.words[first].clone();
        let lead = if word.text.starts_with(' ') { " " } else { "" };
        word.text = format!("{lead}{with}");
        word.end_ms = end_ms;
        turn.words.splice(first..=last, [word]);
    }
    turn.text.replace_range(start..end, with);
    (start_ms, end_ms)
}

/// Every piece of PII in a sequence of turns' texts (in call order). A number that ends one turn
/// and goes on at the start of the next is found as two pieces of one class.
pub fn find(texts: &[&str]) -> Vec<Found> {
    let mut out = Vec::new();
    let runs: Vec<Vec<Run>> = texts.iter().map(|t| digit_runs(t)).collect();
    let mut joined_head = vec![false; texts.len()];
    for (i, text) in texts.iter().enumerate() {
        // The talk is of phone numbers in this turn (up to a byte) or the two before it.
        let earlier = &texts[i.saturating_sub(2)..i];
        let phones_earlier = earlier.iter().any(|t| has_phone_context(t));
        let context = |upto: usize| phones_earlier || has_phone_context(&text[..upto]);
        for (k, run) in runs[i].iter().enumerate() {
            if k == 0 && joined_head[i] {
                continue;
            }
            let last = k + 1 == runs[i].len();
            let ctx = context(run.start);
            let alone = classify(run, text, ctx);
            // A number cut by the end of a turn: try it with the start of the next one.
            if last
                && run.at_end
                && let Some(next) = runs.get(i + 1).and_then(|r| r.first())
                && next.at_start
                && alone.is_none()
            {
                let both = Run {
                    digits: format!("{}{}", run.digits, next.digits),
                    ..run.clone()
                };
                if let Some(class) = classify(&both, text, ctx) {
                    for (turn, r) in [(i, run), (i + 1, next)] {
                        out.push(Found {
                            class,
                            turn,
                            start: r.start,
                            end: r.end,
                            value: both.digits.clone(),
                        });
                    }
                    joined_head[i + 1] = true;
                    continue;
                }
            }
            // One in ten digit strings passes Luhn by chance: two phone numbers read out one
            // after the other are two phones, not a card.
            let pieces = match (alone, run.split(text, ctx)) {
                (None | Some(PiiClass::BankCard), Some(two))
                    if two.iter().all(|(c, _)| *c == PiiClass::Phone) =>
                {
                    Vec::from(two)
                }
                (Some(class), _) => vec![(class, run.clone())],
                (None, two) => two.map(Vec::from).unwrap_or_default(),
            };
            for (class, r) in pieces {
                out.push(Found {
                    class,
                    turn: i,
                    start: r.start,
                    end: r.end,
                    value: r.digits,
                });
            }
        }
        let emails_earlier = earlier.iter().any(|t| has_email_context(t));
        let email_context = |upto: usize| emails_earlier || has_email_context(&text[..upto]);
        for (start, end, value) in emails(text, email_context) {
            out.push(Found {
                class: PiiClass::Email,
                turn: i,
                start,
                end,
                value,
            });
        }
        for (start, end, value) in names(text) {
            out.push(Found {
                class: PiiClass::Name,
                turn: i,
                start,
                end,
                value,
            });
        }
    }
    out
}

/// A run of digits in a text, however they were written, with its byte range.
#[derive(Debug, Clone)]
struct Run {
    digits: String,
    plus: bool,
    start: usize,
    end: usize,
    /// Nothing but punctuation before it / after it in the turn.
    at_start: bool,
    at_end: bool,
    /// Where a separator came between digits: (digits before it, byte where the next group
    /// starts, byte where the previous one ended). Two numbers said one after the other meet there.
    groups: Vec<(usize, usize, usize)>,
}

impl Run {
    /// The run cut in two at a group boundary, where both halves are PII.
    fn split(&self, text: &str, context: bool) -> Option<[(PiiClass, Run); 2]> {
        self.groups.iter().find_map(|&(k, next_start, prev_end)| {
            let left = Run {
                digits: self.digits[..k].to_owned(),
                end: prev_end,
                groups: Vec::new(),
                ..self.clone()
            };
            let right = Run {
                digits: self.digits[k..].to_owned(),
                plus: false,
                start: next_start,
                groups: Vec::new(),
                ..self.clone()
            };
            let a = classify(&left, text, context)?;
            let b = classify(&right, text, context)?;
            Some([(a, left), (b, right)])
        })
    }
}

/// One token of a text: a digit (with the bytes it covers) or something else.
enum Token {
    Digit(char, usize, usize),
    /// "double" / "triple" before a digit word.
    Repeat(usize),
    /// Spaces and the punctuation that groups digits.
    Separator,
    /// Groups spoken digits ("four zero one, five five five"), but separates written numbers
    /// ("81732276,4007328080" is two).
    Comma,
    Plus,
    Other,
}

fn spoken_digit(word: &str) -> Option<char> {
    Some(match word {
        "zero" => '0',
        "one" => '1',
        "two" => '2',
        "three" => '3',
        "four" => '4',
        "five" => '5',
        "six" => '6',
        "seven" => '7',
        "eight" => '8',
        "nine" => '9',
        _ => return None,
    })
}

fn han_digit(c: char) -> Option<char> {
    Some(match c {
        '零' | '〇' => '0',
        '一' | '幺' => '1',
        '二' => '2',
        '三' => '3',
        '四' => '4',
        '五' => '5',
        '六' => '6',
        '七' => '7',
        '八' => '8',
        '九' => '9',
        _ => return None,
    })
}

fn tokens(text: &str) -> Vec<Token> {
    let mut out = Vec::new();
    let mut chars = text.char_indices().peekable();
    while let Some((i, c)) = chars.next() {
        let end = i + c.len_utf8();
        if c.is_ascii_alphabetic() {
            // A whole ASCII word.
            let mut j = end;
            while let Some(&(k, d)) = chars.peek() {
                if !d.is_ascii_alphabetic() {
                    break;
                }
                j = k + d.len_utf8();
                chars.next();
            }
            let word = text[i..j].to_ascii_lowercase();
            out.push(match word.as_str() {
                "double" => Token::Repeat(2),
                "triple" => Token::Repeat(3),
                // "oh" is a zero only between digits; `runs` checks that.
                "oh" | "o" => Token::Digit('o', i, j),
                w => spoken_digit(w).map_or(Token::Other, |d| Token::Digit(d, i, j)),
            });
            continue;
        }
        out.push(match c {
            '0'..='9' => Token::Digit(c, i, end),
            '０'..='９' => {
                Token::Digit(char::from(b'0' + (c as u32 - '０' as u32) as u8), i, end)
            }
            '+' | '＋' => Token::Plus,
            ',' | '，' | '、' => Token::Comma,
            ' ' | '-' | '–' | '—' | '(' | ')' | '（' | '）' | '.' | '/' => Token::Separator,
            c => han_digit(c).map_or(Token::Other, |d| Token::Digit(d, i, end)),
        });
    }
    out
}

/// Digits that belong together: at most two separators between neighbours, and a spoken "oh"
/// only inside a run. An 'X' right after 17 digits is an ID number's check character.
fn digit_runs(text: &str) -> Vec<Run> {
    let toks = tokens(text);
    let mut runs: Vec<Run> = Vec::new();
    let mut cur: Option<Run> = None;
    let mut gap = 0;
    let mut plus = false;
    let mut repeat = 1;
    // Whether the last digit was written as a figure (not a numeral or a word).
    let mut written = false;
    let flush = |cur: &mut Option<Run>, runs: &mut Vec<Run>| {
        if let Some(mut r) = cur.take() {
            while r.digits.ends_with('o') {
                r.digits.pop();
            }
            if !r.digits.is_empty() {
                runs.push(r);
            }
        }
    };
    for t in &toks {
        match *t {
            Token::Digit(d, s, e) => {
                if d == 'o' && cur.is_none() {
                    plus = false;
                    continue;
                }
                let d = if d == 'o' { '0' } else { d };
                let r = cur.get_or_insert_with(|| Run {
                    digits: String::new(),
                    plus,
                    start: s,
                    end: e,
                    at_start: false,
                    at_end: false,
                    groups: Vec::new(),
                });
                if gap > 0 {
                    r.groups.push((r.digits.len(), s, r.end));
                }
                for _ in 0..repeat {
                    r.digits.push(d);
                }
                written = text[s..e]
                    .chars()
                    .all(|c| c.is_ascii_digit() || ('０'..='９').contains(&c));
                r.end = e;
                gap = 0;
                repeat = 1;
                plus = false;
            }
            Token::Repeat(n) => repeat = n,
            Token::Comma if written => flush(&mut cur, &mut runs),
            Token::Separator | Token::Comma if cur.is_some() => {
                gap += 1;
                if gap > 2 {
                    flush(&mut cur, &mut runs);
                }
            }
            Token::Separator | Token::Comma => {}
            Token::Plus => {
                flush(&mut cur, &mut runs);
                plus = true;
            }
            Token::Other => {
                // An ID number may end in X.
                let x = cur.as_ref().is_some_and(|r| {
                    r.digits.len() == 17 && matches!(text[r.end..].chars().next(), Some('X' | 'x'))
                });
                if x && let Some(r) = cur.as_mut() {
                    r.digits.push('X');
                    r.end += 1;
                }
                flush(&mut cur, &mut runs);
                plus = false;
                repeat = 1;
            }
        }
    }
    flush(&mut cur, &mut runs);
    let only_punct = |s: &str| {
        s.chars()
            .all(|c| !c.is_alphanumeric() && han_digit(c).is_none())
    };
    for r in &mut runs {
        r.at_start = only_punct(&text[..r.start]);
        r.at_end = only_punct(&text[r.end..]);
    }
    runs
}

/// Words near a number that say it is a phone number.
fn has_phone_context(text: &str) -> bool {
    static WORDS: LazyLock<Regex> = LazyLock::new(|| {
        Regex::new(r"(?i)电话|手机|号码|联系方式|座机|\bphone\b|\bnumber\b|\bcall\b|\breach\b|\bcontact\b|\bcell\b|\bmobile\b")
            .expect("a valid pattern")
    });
    WORDS.is_match(text)
}

/// What a run of digits is, if it is PII. `phone_context`: the talk is of phone numbers, which
/// makes a 7–8 digit local number, or a 10-digit North American one, count.
fn classify(run: &Run, text: &str, phone_context: bool) -> Option<PiiClass> {
    static DATE: LazyLock<Regex> = LazyLock::new(|| {
        Regex::new(r"^(?:19|20)\d\d(?:[-/.年]\d{1,2}|(?:0[1-9]|1[0-2])(?:0[1-9]|[12]\d|3[01]))")
            .expect("a valid pattern")
    });
    let d = run.digits.as_str();
    let n = d.len();
    if DATE.is_match(&text[run.start..run.end]) {
        return None;
    }
    if n == 18 && id_card_valid(d) {
        return Some(PiiClass::IdCard);
    }
    if d.contains('X') {
        return None;
    }
    if (16..=19).contains(&n) && luhn_valid(d) {
        return Some(PiiClass::BankCard);
    }
    let phone = (run.plus && (8..=15).contains(&n))
        || (n == 11 && d.starts_with('1') && matches!(d.as_bytes()[1], b'3'..=b'9'))
        || (n == 13 && d.starts_with("86") && d.as_bytes()[2] == b'1')
        || (d.starts_with('0') && (10..=12).contains(&n))
        || (n == 10 && (d.starts_with("400") || d.starts_with("800")))
        || (phone_context && ((7..=8).contains(&n) || (n == 10 && nanp(d))));
    phone.then_some(PiiClass::Phone)
}

/// A North American number: area code and exchange both start with 2–9.
fn nanp(d: &str) -> bool {
    let b = d.as_bytes();
    b.len() == 10 && (b'2'..=b'9').contains(&b[0]) && (b'2'..=b'9').contains(&b[3])
}

/// GB 11643: the 18th character is the ISO 7064 MOD 11-2 check of the first 17 digits.
pub fn id_card_valid(id: &str) -> bool {
    const WEIGHTS: [u32; 17] = [7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2];
    const CHECK: &[u8; 11] = b"10X98765432";
    let b = id.as_bytes();
    if b.len() != 18 || !b[..17].iter().all(u8::is_ascii_digit) {
        return false;
    }
    let sum: u32 = b[..17]
        .iter()
        .zip(WEIGHTS)
        .map(|(&c, w)| u32::from(c - b'0') * w)
        .sum();
    CHECK[(sum % 11) as usize] == b[17].to_ascii_uppercase()
}

/// The Luhn check that card numbers carry in their last digit.
pub fn luhn_valid(digits: &str) -> bool {
    if !digits.bytes().all(|b| b.is_ascii_digit()) || digits.len() < 2 {
        return false;
    }
    let sum: u32 = digits
        .bytes()
        .rev()
        .enumerate()
        .map(|(i, b)| {
            let d = u32::from(b - b'0');
            if i % 2 == 1 {
                if d * 2 > 9 { d * 2 - 9 } else { d * 2 }
            } else {
                d
            }
        })
        .sum();
    sum.is_multiple_of(10)
}

fn has_email_context(text: &str) -> bool {
    static WORDS: LazyLock<Regex> =
        LazyLock::new(|| Regex::new(r"(?i)邮箱|邮件|\be-?mail\b").expect("a valid pattern"));
    WORDS.is_match(text)
}

/// E-mail addresses, written (a.b@c.com) or spoken ("a dot b at c dot com", "艾特", "点"). When
/// the talk is of e-mail (`context` up to a byte), an address whose "at" ASR lost
/// ("patrisha.floorisexample.com") counts too.
fn emails(text: &str, context: impl Fn(usize) -> bool) -> Vec<(usize, usize, String)> {
    static NO_AT: LazyLock<Regex> = LazyLock::new(|| {
        Regex::new(r"(?i)[a-z0-9][a-z0-9._-]*\.(?:com|net|org|cn)\b").expect("a valid pattern")
    });
    // No \b before an address: Chinese text runs straight into it (邮箱是abc@qq.com), and the
    // leftmost match starts at its first letter anyway.
    static EMAIL: LazyLock<Regex> = LazyLock::new(|| {
        let dot = r"\s*(?:\.|\bdot\b|点)\s*";
        Regex::new(&format!(
            r"(?i)([a-z0-9][a-z0-9._%+-]*(?:{dot}[a-z0-9_-]+)*)\s*(?:@|\bat\b|艾特)\s*([a-z0-9-]+(?:{dot}[a-z0-9-]+)*?){dot}(com|net|org|edu|gov|cn|io|co|info|biz|me|us|uk)\b"
        ))
        .expect("a valid pattern")
    });
    static DOT: LazyLock<Regex> =
        LazyLock::new(|| Regex::new(r"(?i)\s*(?:\.|\bdot\b|点)\s*").expect("a valid pattern"));
    let mut out: Vec<(usize, usize, String)> = EMAIL
        .captures_iter(text)
        .filter_map(|c| {
            let all = c.get(0)?;
            let part = |i: usize| DOT.replace_all(&c[i], ".").to_lowercase();
            let value = format!("{}@{}.{}", part(1), part(2), c[3].to_lowercase());
            Some((all.start(), all.end(), value))
        })
        .collect();
    for m in NO_AT.find_iter(text) {
        let inside = out.iter().any(|&(s, e, _)| s < m.end() && m.start() < e);
        if !inside && context(m.start()) {
            out.push((m.start(), m.end(), m.as_str().to_lowercase()));
        }
    }
    out
}

/// Names that a speaker gives as their own: "my name is Ann Wilson", "我叫王小明", "我姓李".
fn names(text: &str) -> Vec<(usize, usize, String)> {
    static EN: LazyLock<Regex> = LazyLock::new(|| {
        Regex::new(concat!(
            r"(?i:\bmy name is|\bmy name's|\bi am called)\s+([A-Z][a-z]+(?:[ -][A-Z][a-z]+){0,2})",
            // "I'm" alone says too little: only with a first and a last name.
            r"|\b(?:I'm|I’m|I am)\s+([A-Z][a-z]+ [A-Z][a-z]+)\b"
        ))
        .expect("a valid pattern")
    });
    static ZH: LazyLock<Regex> = LazyLock::new(|| {
        Regex::new(r"(?:我叫|我的名字是|我的名字叫|本人叫|我姓)\s*(\p{Han}{1,3})")
            .expect("a valid pattern")
    });
    // Characters that end a Chinese name: function words and titles.
    const NOT_NAME: &str = "的了吗呢吧啊呀是在不也就都还很有个先女姐生士老师经理总";
    // Characters no name starts with: function words, numerals, verbs of 叫 a taxi.
    const NOT_FIRST: &str = "的了吗呢吧啊呀是在不也就都还很有个一两几下上辆车出从到去来";
    let mut out = Vec::new();
    for c in EN.captures_iter(text) {
        if let Some(m) = c.get(1).or_else(|| c.get(2)) {
            out.push((m.start(), m.end(), m.as_str().to_owned()));
        }
    }
    for c in ZH.captures_iter(text) {
        let (Some(all), Some(m)) = (c.get(0), c.get(1)) else {
            continue;
        };
        // 帮我叫一辆车: 叫 is "call (a taxi)" here.
        if text[..all.start()].ends_with(['帮', '给', '替', '请', '为', '让']) {
            continue;
        }
        let surname_only = all.as_str().contains('姓');
        let mut end = m.start();
        for (k, ch) in m.as_str().char_indices() {
            // After 我姓 only the surname; after 我叫 a title or a function word ends it.
            let stop = k > 0 && (surname_only || NOT_NAME.contains(ch));
            if stop || (k == 0 && NOT_FIRST.contains(ch)) {
                break;
            }
            end = m.start() + k + ch.len_utf8();
        }
        if end > m.start() {
            out.push((m.start(), end, text[m.start()..end].to_owned()));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn classes(text: &str) -> Vec<(PiiClass, String)> {
        find(&[text])
            .into_iter()
            .map(|f| (f.class, f.value))
            .collect()
    }

    #[test]
    fn check_digits() {
        assert!(id_card_valid("11010519491231002X"));
        assert!(!id_card_valid("110105194912310021"));
        assert!(luhn_valid("6222020200112233446") || luhn_valid("4111111111111111"));
        assert!(!luhn_valid("4111111111111112"));
    }

    #[test]
    fn spoken_and_written_numbers() {
        assert_eq!(
            classes("Sure, my number is four zero one, five five five, six one two three."),
            [(PiiClass::Phone, "4015556123".into())]
        );
        assert_eq!(
            classes("我的手机号是幺三八 一二三四 五六七八"),
            [(PiiClass::Phone, "13812345678".into())]
        );
        assert_eq!(
            classes("电话是010-67024431。"),
            [(PiiClass::Phone, "01067024431".into())]
        );
        assert_eq!(
            classes("call me at double five five, one two three four"),
            [(PiiClass::Phone, "5551234".into())]
        );
    }

    #[test]
    fn quantities_prices_and_dates_are_not_pii() {
        for text in [
            "人均消费在50-100元的餐馆",
            "周一至周日 10:00-22:00。",
            "我们订了三个房间，住两天，一共1280元。",
            "Oh, one more thing: the order number is two three four five.",
            "2019-10-12 入住，评分4.5分",
        ] {
            assert!(classes(text).is_empty(), "{text}: {:?}", classes(text));
        }
    }

    #[test]
    fn a_number_split_across_turns() {
        let found = find(&["我的手机号是一三八一二", "三四五六七八，对。"]);
        assert_eq!(found.len(), 2);
        assert!(found.iter().all(|f| f.class == PiiClass::Phone));
        assert_eq!(found[0].value, "13812345678");
    }

    fn turn(text: &str, words: &[(&str, u64, u64)]) -> Turn {
        let words: Vec<_> = words
            .iter()
            .map(|(w, s, e)| serde_json::json!({"text": w, "start_ms": s, "end_ms": e, "probability": 1.0}))
            .collect();
        serde_json::from_value(serde_json::json!({
            "role": "customer", "start_ms": 0, "end_ms": 4000, "text": text, "words": words,
        }))
        .expect("a turn")
    }

    #[test]
    fn masks_keep_the_times_of_the_words() {
        let words = [
            (" It's", 0, 400),
            (" 138", 400, 1200),
            ("-1234-5678.", 1200, 3000),
        ];
        let policy = |mode| Redaction {
            classes: vec![PiiClass::Phone],
            mode,
            keep_original: false,
        };
        let mut turns = vec![turn("It's 138-1234-5678.", &words)];
        let spans = redact(&mut turns, &policy(RedactionMode::Mask));
        assert_eq!(turns[0].text, "It's [PHONE].");
        assert_eq!(turns[0].words.len(), 2);
        assert_eq!((spans[0].start_ms, spans[0].end_ms), (400, 3000));
        let mut turns = vec![turn("It's 138-1234-5678.", &words)];
        redact(&mut turns, &policy(RedactionMode::Partial));
        assert_eq!(turns[0].text, "It's 138****5678.");
        let mut turns = vec![turn("It's 138-1234-5678.", &words)];
        assert!(redact(&mut turns, &policy(RedactionMode::None)).is_empty());
        assert_eq!(turns[0].text, "It's 138-1234-5678.");
    }

    #[test]
    fn overlapping_finds_get_one_mask() {
        let policy = Redaction {
            classes: vec![PiiClass::Phone, PiiClass::Email],
            mode: RedactionMode::Mask,
            keep_original: false,
        };
        let mut turns = vec![turn("我的邮箱是13812345678@qq.com，谢谢", &[])];
        let spans = redact(&mut turns, &policy);
        assert_eq!(turns[0].text, "我的邮箱是[EMAIL]，谢谢");
        assert_eq!(spans.len(), 1);
    }

    #[test]
    fn live_segments_hold_back_a_number_that_may_go_on() {
        let policy = Redaction {
            classes: vec![PiiClass::Phone],
            mode: RedactionMode::Mask,
            keep_original: false,
        };
        let first = turn("我的手机号是一三八一二", &[]);
        let shown = live_segment(&[], &first, &policy);
        assert_eq!(shown.text, "我的手机号是[…]");
        let second = turn("三四五六七八，对。", &[]);
        assert_eq!(
            live_segment(&[first], &second, &policy).text,
            "[PHONE]，对。"
        );
        let price = turn("一共1280元。", &[]);
        assert_eq!(live_segment(&[], &price, &policy).text, "一共1280元。");
    }

    #[test]
    fn emails_and_names() {
        assert_eq!(
            classes("It's shirleybennett at example dot com."),
            [(PiiClass::Email, "shirleybennett@example.com".into())]
        );
        assert_eq!(
            classes("Of course, it's patricia.flores@example.com."),
            [(PiiClass::Email, "patricia.flores@example.com".into())]
        );
        assert_eq!(
            classes("我的邮箱是zhangsan@qq.com，谢谢"),
            [(PiiClass::Email, "zhangsan@qq.com".into())]
        );
        assert_eq!(
            classes("邮箱是wang艾特163点com"),
            [(PiiClass::Email, "wang@163.com".into())]
        );
        assert_eq!(
            classes("Hi Vincent, my name is Ann Wilson."),
            [(PiiClass::Name, "Ann Wilson".into())]
        );
        assert_eq!(
            classes("你好，我叫王小明，想问一下"),
            [(PiiClass::Name, "王小明".into())]
        );
        assert_eq!(classes("我姓李，李先生"), [(PiiClass::Name, "李".into())]);
    }
}
