//! Finding PII in turns' texts: digit runs classified as phones, ID numbers and cards, and
//! e-mail addresses and names, each with the context (this turn and the two before) that makes a
//! short number or a mangled address count.

use super::checks::{id_card_valid, luhn_valid};
use super::digits::{Run, digit_runs};
use super::email::{emails, has_email_context};
use super::names::names;
use super::{Found, PiiClass};
use regex::Regex;
use std::sync::LazyLock;

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
            let pieces = match (alone, split(run, text, ctx)) {
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

/// The run cut in two at a group boundary, where both halves are PII.
fn split(run: &Run, text: &str, context: bool) -> Option<[(PiiClass, Run); 2]> {
    run.groups.iter().find_map(|&(k, next_start, prev_end)| {
        let left = Run {
            digits: run.digits[..k].to_owned(),
            end: prev_end,
            groups: Vec::new(),
            ..run.clone()
        };
        let right = Run {
            digits: run.digits[k..].to_owned(),
            plus: false,
            start: next_start,
            groups: Vec::new(),
            ..run.clone()
        };
        let a = classify(&left, text, context)?;
        let b = classify(&right, text, context)?;
        Some([(a, left), (b, right)])
    })
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
        // When the talk is of phone numbers, a local number or any ten digits (a North American
        // number, whatever its area code or exchange: 555 numbers included) and those ten after
        // a country code 1.
        || (phone_context && ((7..=8).contains(&n) || n == 10 || (n == 11 && d.starts_with('1'))));
    phone.then_some(PiiClass::Phone)
}
