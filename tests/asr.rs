//! Real Whisper models on real recordings from ../shared/eval, through the whole pipeline.

mod common;

use callqa::asr::Language;
use callqa::asr::pool::PoolConfig;
use callqa::audio::StreamDecoder;
use callqa::eval::{ErrorCount, char_errors, word_errors};
use callqa::service::engines::{self, WhisperChoice};
use callqa::transcript::{CallOptions, CallTranscript, Engines};

fn transcribe(engines: &Engines, path: &std::path::Path, language: Language) -> CallTranscript {
    let decoder = StreamDecoder::from_file(path).unwrap();
    engines
        .transcribe(
            decoder,
            &CallOptions {
                language,
                ..CallOptions::default()
            },
        )
        .unwrap()
}

fn text(t: &CallTranscript, sep: &str) -> String {
    t.turns
        .iter()
        .map(|t| t.text.as_str())
        .collect::<Vec<_>>()
        .join(sep)
}

#[test]
fn english_jfk_with_base_has_wer_at_most_10_percent() {
    let engines = common::engines();
    let (path, reference) = common::references("asr/en/REFERENCE.tsv")
        .into_iter()
        .find(|(p, _)| p.ends_with("whisper/jfk.flac"))
        .expect("jfk in the reference list");
    let t = transcribe(&engines, &path, Language::Auto);
    assert_eq!(t.language, "en");
    let hyp = text(&t, " ");
    let wer = word_errors(&reference, &hyp);
    println!("jfk: {hyp:?} WER {:.3}", wer.rate());
    assert!(wer.rate() <= 0.10, "WER {:.3} for {hyp:?}", wer.rate());
    // Turns are ordered, inside the 11 s clip, and not empty; words carry times inside their turn.
    assert!(!t.turns.is_empty());
    assert!(t.turns.windows(2).all(|w| w[0].end_ms <= w[1].start_ms));
    for turn in &t.turns {
        assert!(
            turn.start_ms < turn.end_ms && turn.end_ms <= 11_000,
            "{turn:?}"
        );
        assert!(!turn.words.is_empty());
        assert!(
            turn.words
                .iter()
                .all(|w| w.start_ms >= turn.start_ms && w.end_ms <= turn.end_ms + 200)
        );
    }
}

#[test]
fn mandarin_with_base_has_cer_at_most_35_percent_in_simplified() {
    let engines = common::engines();
    let refs = common::references("asr/zh/REFERENCE.tsv");
    assert!(refs.len() >= 4);
    let mut total = ErrorCount::default();
    for (path, reference) in refs {
        // Auto-detection must find Mandarin on its own.
        let t = transcribe(&engines, &path, Language::Auto);
        let hyp = text(&t, "");
        assert_eq!(t.language, "zh", "{}", path.display());
        assert_eq!(
            fast2s::convert(&hyp),
            hyp,
            "output must be Simplified: {hyp}"
        );
        let cer = char_errors(&reference, &hyp);
        println!("{}: {hyp} (CER {:.3})", path.display(), cer.rate());
        total = total + cer;
    }
    println!("overall CER {:.3}", total.rate());
    assert!(total.rate() <= 0.35, "overall CER {:.3}", total.rate());
}

#[test]
fn tiny_en_transcribes_english_and_refuses_mandarin() {
    let dir = common::model_dir();
    let engines = engines::transcription(
        &dir,
        &WhisperChoice::parse("tiny.en"),
        &PoolConfig::for_cores(common::threads()),
    )
    .unwrap();
    assert!(!engines.whisper.is_multilingual());
    let jfk = common::eval_dir().join("asr/en/whisper/jfk.flac");
    let t = transcribe(&engines, &jfk, Language::Auto);
    let wer = word_errors(
        "And so my fellow Americans, ask not what your country can do for you, ask what you can do for your country.",
        &text(&t, " "),
    );
    assert!(
        wer.rate() <= 0.15,
        "tiny.en WER {:.3}: {}",
        wer.rate(),
        text(&t, " ")
    );
    let decoder = StreamDecoder::from_file(&jfk).unwrap();
    let zh = CallOptions {
        language: Language::Zh,
        ..CallOptions::default()
    };
    assert!(engines.transcribe(decoder, &zh).is_err());
}

#[test]
fn the_eval_command_scores_the_shared_manifests() {
    let engines = common::engines();
    let manifest = common::eval_dir().join("asr/zh/REFERENCE.tsv");
    let report = callqa::eval::evaluate_asr(&engines, &manifest, &CallOptions::default()).unwrap();
    assert_eq!(report.files.len(), 4);
    assert!(
        report
            .files
            .iter()
            .all(|f| f.metric == "cer" && f.rate <= 0.5)
    );
}
