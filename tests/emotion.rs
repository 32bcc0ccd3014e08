//! The emotion head on real labelled sentences it did not train on, and its reproducibility.

mod common;

/// SMP2020-EWECT (Weibo): an evaluation-only set (research licence), never used for training.
#[test]
fn the_head_classifies_held_out_real_sentences() {
    let dir = common::model_dir();
    let mut embedder = callqa::service::engines::embedder(&dir).unwrap();
    let mut head = callqa::service::engines::emotion_head(&dir).unwrap();
    let data = std::path::PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../shared/emotion");
    let eval = callqa::eval::train::evaluation_data(&data).unwrap();
    let rows: Vec<_> = eval
        .iter()
        .filter(|(s, _, _)| *s == "smp2020_ewect")
        .take(400)
        .collect();
    let mut right = 0;
    for (_, text, class) in &rows {
        let scores = head.score_text(&mut embedder, text).unwrap();
        right += usize::from(scores.argmax() == *class);
    }
    let accuracy = right as f64 / rows.len() as f64;
    println!(
        "SMP2020 accuracy on {} sentences: {accuracy:.3}",
        rows.len()
    );
    assert!(accuracy >= 0.55, "{accuracy:.3}");

    // And the obvious cases, in both languages.
    let s = head
        .score_text(
            &mut embedder,
            "你们的系统又崩了，我已经等了三天，太让人失望了！",
        )
        .unwrap();
    assert!(s.frustration > s.positive && s.frustration > 0.5, "{s:?}");
    let s = head
        .score_text(
            &mut embedder,
            "Thank you so much, this is exactly what we needed!",
        )
        .unwrap();
    assert!(s.positive > 0.5, "{s:?}");
}

#[test]
fn training_reproduces_the_committed_head() {
    let dir = std::env::temp_dir().join(format!("callqa-train-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let out = dir.join("head.onnx");
    let status = std::process::Command::new(env!("CARGO_BIN_EXE_callqa"))
        .args(["train", "emotion", "--out", out.to_str().unwrap(), "--data"])
        .arg(std::path::PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../shared/emotion"))
        .output()
        .unwrap();
    assert!(
        status.status.success(),
        "{}",
        String::from_utf8_lossy(&status.stderr)
    );
    let metrics: serde_json::Value = serde_json::from_slice(&status.stdout).unwrap();
    assert!(
        metrics["held_out_accuracy"].as_f64().unwrap() > 0.6,
        "{metrics}"
    );
    assert_eq!(
        std::fs::read(&out).unwrap(),
        callqa::analysis::emotion::HEAD_ONNX,
        "models/emotion_head.onnx is what `callqa train emotion` makes"
    );
    std::fs::remove_dir_all(&dir).unwrap();
}

/// PredictiveEngagement replies the head never trained on: perfunctory tone from the text, and
/// the reply cues never cost recall.
#[test]
fn perfunctory_replies_are_found_as_measured() {
    let dir = common::model_dir();
    let mut embedder = callqa::service::engines::embedder(&dir).unwrap();
    let mut head = callqa::service::engines::emotion_head(&dir).unwrap();
    let data = std::path::PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../shared/emotion");
    let e = callqa::eval::evaluate_perfunctory(&data, &mut embedder, &mut head).unwrap();
    println!("{e:?}");
    assert!(e.replies > 150 && e.perfunctory > 80);
    let t = e.text_only;
    assert!(t.precision() >= 0.65 && t.recall() >= 0.25, "{t}");
    assert!(e.text_and_cues.recall() >= t.recall());
}

/// A stereo call of real speech in which one customer turn is 12 dB louder than the customer's
/// others: the audio's prosody reaches the turn, and the emotion section reads it against the
/// customer's own baseline.
#[test]
fn a_raised_voice_is_heard_against_the_speakers_own_baseline() {
    use callqa::analysis::emotion::{Cue, analyse};
    use callqa::audio::channels::Role;
    let agent = common::speech("asr/zh/wenet/aishell-BAC009S0724W0121.wav");
    let customer = [
        common::speech("asr/zh/fireredasr/BAC009S0764W0121.wav"),
        common::speech("asr/zh/s3tokenizer/BAC009S0764W0122.wav"),
    ];
    let (mut left, mut right) = (Vec::new(), Vec::new());
    let gap = vec![0.0; 16_000];
    for i in 0..4 {
        let gain = if i == 3 { 4.0 } else { 1.0 };
        left.extend(&agent);
        right.extend(vec![0.0; agent.len()]);
        left.extend(&gap);
        right.extend(&gap);
        let said: Vec<f32> = customer[i % 2].iter().map(|s| s * gain).collect();
        right.extend(&said);
        left.extend(vec![0.0; said.len()]);
        left.extend(&gap);
        right.extend(&gap);
    }
    let wav = common::wav_pcm16(&[left, right], 16_000);
    let decoder = callqa::audio::StreamDecoder::from_bytes(wav).unwrap();
    let opts = callqa::transcript::CallOptions {
        language: callqa::asr::Language::Zh,
        ..Default::default()
    };
    let call = common::engines().transcribe(decoder, &opts).unwrap();
    let customer_turns: Vec<usize> = (0..call.turns.len())
        .filter(|&i| call.turns[i].role == Role::Customer)
        .collect();
    assert_eq!(customer_turns.len(), 4, "{:?}", call.turns);
    let energy: Vec<f32> = customer_turns
        .iter()
        .map(|&i| call.turns[i].prosody.unwrap().energy_db)
        .collect();
    assert!(
        (energy[3] - energy[1] - 12.0).abs() < 1.0,
        "the same clip, 12 dB louder: {energy:?}"
    );

    let dir = common::model_dir();
    let mut embedder = callqa::service::engines::embedder(&dir).unwrap();
    let mut head = callqa::service::engines::emotion_head(&dir).unwrap();
    let rules = callqa::analysis::playbook::EmotionRules::default();
    let report = analyse(&call.turns, &rules, &mut head, &mut embedder).unwrap();
    let cues = |i: usize| &report.turns[i].cues;
    assert!(
        cues(customer_turns[3]).contains(&Cue::RaisedEnergy),
        "{:?}",
        report.turns
    );
    for &i in &customer_turns[..3] {
        assert!(
            !cues(i).contains(&Cue::RaisedEnergy),
            "{:?}",
            report.turns[i]
        );
    }
    let loud = &report.turns[customer_turns[3]];
    assert!(loud.scores.frustration > loud.text_scores.frustration);
}

/// `callqa eval dissatisfaction` on the JD.com chats: the frustration score ranks dissatisfied
/// customer turns above the others better than chance (measured: ROC-AUC 0.674 held out).
#[test]
fn frustration_ranks_dissatisfied_customer_turns_first() {
    use callqa::eval::dissatisfaction::{roc_auc, score};
    let dir = common::model_dir();
    let mut embedder = callqa::service::engines::embedder(&dir).unwrap();
    let mut head = callqa::service::engines::emotion_head(&dir).unwrap();
    let jddc = common::eval_dir().join("../eval_more/uss_jddc/jddc_dev.jsonl");
    let dialogues = score(&jddc, &mut embedder, &mut head).unwrap();
    assert_eq!(dialogues.len(), 520);
    let turns: Vec<_> = dialogues.concat();
    let auc = roc_auc(&turns);
    println!("ROC-AUC {auc:.3} over {} turns", turns.len());
    assert!(auc > 0.65, "{auc}");
}
