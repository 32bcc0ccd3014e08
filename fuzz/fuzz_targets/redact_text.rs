//! Any text through PII redaction, cut into turns with words: never a panic (its masks edit the
//! text at byte offsets), every span inside its turn's times, and every turn still whole UTF-8
//! with its words in order; the live path holds up too.
#![no_main]

use callqa::redact::{PiiClass, Redaction, RedactionMode};
use callqa::transcript::Turn;
use libfuzzer_sys::fuzz_target;

fn turn(i: usize, text: &str) -> Turn {
    let start = i as u64 * 5_000;
    let words: Vec<_> = text
        .split_inclusive(' ')
        .enumerate()
        .map(|(k, w)| {
            let t = start + k as u64 * 100;
            serde_json::json!({"text": w, "start_ms": t, "end_ms": t + 100, "probability": 1.0})
        })
        .collect();
    serde_json::from_value(serde_json::json!({
        "role": "customer", "start_ms": start, "end_ms": start + 4_000, "text": text,
        "words": words,
    }))
    .expect("a turn")
}

fuzz_target!(|data: &[u8]| {
    let [mode, rest @ ..] = data else { return };
    let text = String::from_utf8_lossy(rest);
    let mut turns: Vec<Turn> = text.split('\n').enumerate().map(|(i, t)| turn(i, t)).collect();
    let policy = Redaction {
        classes: vec![
            PiiClass::Phone,
            PiiClass::IdCard,
            PiiClass::BankCard,
            PiiClass::Email,
            PiiClass::Name,
        ],
        mode: [RedactionMode::Mask, RedactionMode::Partial][usize::from(*mode % 2)],
        keep_original: false,
    };
    let live: Vec<Turn> = turns
        .iter()
        .enumerate()
        .map(|(i, t)| callqa::redact::live_segment(&turns[..i], t, &policy))
        .collect();
    assert_eq!(live.len(), turns.len());
    for span in callqa::redact::redact(&mut turns, &policy) {
        let t = &turns[span.turn];
        assert!(t.start_ms <= span.start_ms && span.start_ms <= span.end_ms);
        assert!(span.end_ms <= t.end_ms.max(t.words.last().map_or(0, |w| w.end_ms)));
    }
    for t in &turns {
        assert!(t.words.windows(2).all(|w| w[0].start_ms <= w[1].start_ms));
    }
});
