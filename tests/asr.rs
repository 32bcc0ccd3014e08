//! Real Whisper models on real recordings from ../shared/eval.

mod common;

use callqa::asr::Language;
use callqa::engines::{self, WhisperChoice};
use callqa::eval::{ErrorCount, char_errors, word_errors};

#[test]
fn english_jfk_with_base_has_wer_at_most_10_percent() {
    let dir = common::model_dir();
    let engine = engines::whisper(&dir, &WhisperChoice::parse("base"), common::threads()).unwrap();
    let (path, reference) = common::references("asr/en/REFERENCE.tsv")
        .into_iter()
        .find(|(p, _)| p.ends_with("whisper/jfk.flac"))
        .expect("jfk in the reference list");
    let transcript = engine
        .transcribe(&common::load_16k(&path), Language::Auto)
        .unwrap();
    assert_eq!(transcript.language, "en");
    let wer = word_errors(&reference, &transcript.text());
    println!("jfk: {:?} WER {:.3}", transcript.text(), wer.rate());
    assert!(
        wer.rate() <= 0.10,
        "WER {:.3} for {:?}",
        wer.rate(),
        transcript.text()
    );
    // Segments are ordered, inside the 11 s clip, and not empty.
    let segs = &transcript.segments;
    assert!(!segs.is_empty());
    assert!(segs.windows(2).all(|w| w[0].end_ms <= w[1].start_ms));
    assert!(
        segs.iter()
            .all(|s| s.start_ms < s.end_ms && s.end_ms <= 11_100)
    );
}

#[test]
fn mandarin_with_base_has_cer_at_most_35_percent_in_simplified() {
    let dir = common::model_dir();
    let engine = engines::whisper(&dir, &WhisperChoice::parse("base"), common::threads()).unwrap();
    let refs = common::references("asr/zh/REFERENCE.tsv");
    assert!(refs.len() >= 4);
    let mut total = ErrorCount::default();
    for (path, reference) in refs {
        // Auto-detection must find Mandarin on its own.
        let transcript = engine
            .transcribe(&common::load_16k(&path), Language::Auto)
            .unwrap();
        let text = transcript.text();
        assert_eq!(transcript.language, "zh", "{}", path.display());
        assert_eq!(
            fast2s::convert(&text),
            text,
            "output must be Simplified: {text}"
        );
        let cer = char_errors(&reference, &text);
        println!("{}: {text} (CER {:.3})", path.display(), cer.rate());
        total = total + cer;
    }
    println!("overall CER {:.3}", total.rate());
    assert!(total.rate() <= 0.35, "overall CER {:.3}", total.rate());
}

#[test]
fn tiny_en_transcribes_english_and_refuses_mandarin() {
    let dir = common::model_dir();
    let engine =
        engines::whisper(&dir, &WhisperChoice::parse("tiny.en"), common::threads()).unwrap();
    assert!(!engine.is_multilingual());
    let audio = common::load_16k(&common::eval_dir().join("asr/en/whisper/jfk.flac"));
    let transcript = engine.transcribe(&audio, Language::Auto).unwrap();
    let wer = word_errors(
        "And so my fellow Americans, ask not what your country can do for you, ask what you can do for your country.",
        &transcript.text(),
    );
    assert!(
        wer.rate() <= 0.15,
        "tiny.en WER {:.3}: {}",
        wer.rate(),
        transcript.text()
    );
    assert!(engine.transcribe(&audio, Language::Zh).is_err());
}
