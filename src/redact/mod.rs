//! PII redaction, between transcription and analysis. It finds phone numbers, PRC resident ID
//! numbers, bank cards, e-mail addresses and self-introduced names in Mandarin and English, as
//! ASR writes them: digits, Chinese numerals (一三八, 幺), English number words ("four zero one"),
//! grouped with spaces or dashes, and numbers that run on into the next turn. What it finds is
//! masked in the text and the words; the spans keep their times.

mod checks;
mod detect;
mod digits;
mod email;
mod names;
mod policy;

pub use checks::{id_card_valid, luhn_valid};
pub use detect::find;
pub use policy::{PiiClass, Redaction, RedactionMode};

use crate::transcript::Turn;
use digits::digit_runs;
use serde::{Deserialize, Serialize};

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

    /// Ten digits given in answer to a request for a phone number are a phone number, whatever
    /// their area code or exchange (555-123… included), written or spoken.
    #[test]
    fn ten_digits_in_answer_to_a_phone_request_are_a_phone() {
        let asked = "May I also have your phone number in case we need to follow up?";
        for (answer, digits) in [
            ("Of course it's 5551234567.", "5551234567"),
            ("Sure, 555-123-4567.", "5551234567"),
            ("It's (555) 123 4567.", "5551234567"),
            (
                "Yes, five five five, one two three, four five six seven.",
                "5551234567",
            ),
            (
                "one five five five one two three four five six seven",
                "15551234567",
            ),
            ("It's 1-212-555-0199.", "12125550199"),
        ] {
            let found = find(&[asked, answer]);
            let phones: Vec<&str> = found
                .iter()
                .filter(|f| f.class == PiiClass::Phone && f.turn == 1)
                .map(|f| f.value.as_str())
                .collect();
            assert_eq!(phones, [digits], "{answer}");
        }
        // Without talk of phones, ten digits are not taken for one.
        let plain = find(&["What is the reference on the invoice?", "It's 5551234567."]);
        assert!(plain.is_empty(), "{plain:?}");
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
