//! The speaker models against reference values computed outside callqa (a numpy port of
//! resemblyzer and onnxruntime in Python) on the shared pyannote sample.

mod common;

use callqa::eval::diarization::{COLLAR_MS, Der, Span, der, parse_rttm};
use callqa::speakers::encoder::similarity;
use callqa::speakers::mel::{MelSpectrogram, filterbank, normalize_volume};
use callqa::speakers::segmentation::most_likely;
use serde_json::Value;

fn golden() -> Value {
    serde_json::from_str(include_str!("fixtures/speakers/golden.json")).unwrap()
}

fn floats(v: &Value) -> Vec<f32> {
    v.as_array()
        .unwrap()
        .iter()
        .map(|x| x.as_f64().unwrap() as f32)
        .collect()
}

fn sample() -> Vec<f32> {
    common::load_16k(&common::eval_dir().join("diarization/pyannote_sample/sample.wav"))
}

fn assert_close(got: &[f32], want: &[f32], rel: f32, what: &str) {
    assert_eq!(got.len(), want.len(), "{what}");
    let scale = want.iter().fold(0f32, |m, v| m.max(v.abs())).max(1e-12);
    for (i, (g, w)) in got.iter().zip(want).enumerate() {
        assert!((g - w).abs() <= rel * scale, "{what}[{i}]: {g} vs {w}");
    }
}

#[test]
fn mel_frames_match_librosa() {
    let g = golden();
    for (row, want) in g["mel_filterbank_rows"].as_object().unwrap() {
        let row: usize = row.parse().unwrap();
        assert_close(&filterbank()[row], &floats(want), 1e-4, "filterbank");
    }
    let x = sample();
    let mel = MelSpectrogram::default().frames(&x[..32_000]);
    assert_eq!(mel.len(), 201);
    for (frame, want) in g["mel_0_2s_frames"].as_object().unwrap() {
        let frame: usize = frame.parse().unwrap();
        assert_close(&mel[frame], &floats(want), 1e-3, "mel");
    }
}

#[test]
fn voiceprints_match_the_reference_encoder() {
    let encoder = callqa::service::engines::speaker_models(&common::model_dir())
        .unwrap()
        .encoder;
    let x = sample();
    let mut piece = x[160_000..185_600].to_vec();
    normalize_volume(&mut piece);
    let mut mel = encoder.mel().frames(&piece);
    mel.truncate(160);
    let want = floats(&golden()["ge2e_10_0s_to_11_6s"]);
    let got = encoder.embed_mel(&[mel.clone()]).unwrap().remove(0);
    assert_close(&got, &want, 1e-3, "voiceprint");
    // Padded in a batch with a longer sequence, a sequence is read only to its own end.
    let longer = encoder.mel().frames(&x[..40_000]);
    let batch = encoder.embed_mel(&[longer, mel]).unwrap();
    assert_close(&batch[1], &want, 1e-3, "padded voiceprint");
    // The two voices of the sample (speaker90 alone 10.6–14.5 s, speaker91 21.8–27.8 s): each
    // stretch is more like the other stretch of its voice than like the other voice.
    let at = |from: f32, to: f32| {
        let s = &x[(from * 16_000.0) as usize..(to * 16_000.0) as usize];
        encoder.embed(s).unwrap()
    };
    let (a1, a2) = (at(11.1, 12.7), at(12.8, 14.4));
    let (b1, b2) = (at(22.0, 24.5), at(25.0, 27.7));
    assert!(similarity(&a1, &a2) > similarity(&a1, &b1));
    assert!(similarity(&b1, &b2) > similarity(&b1, &a2));
}

#[test]
fn segmentation_matches_onnxruntime_in_python() {
    let segmenter = callqa::service::engines::speaker_models(&common::model_dir())
        .unwrap()
        .segmenter;
    let x = sample();
    let g = golden();
    let windows = [&x[..160_000], &x[320_000..480_000]];
    let lp = segmenter.log_probs(&windows).unwrap();
    for (w, key) in ["segmentation_0_10s_argmax", "segmentation_20_30s_argmax"]
        .iter()
        .enumerate()
    {
        let want: Vec<usize> = g[key]
            .as_array()
            .unwrap()
            .iter()
            .map(|v| v.as_u64().unwrap() as usize)
            .collect();
        let got: Vec<usize> = lp[w].iter().map(most_likely).collect();
        assert_eq!(got.len(), 589);
        let differ = got.iter().zip(&want).filter(|(a, b)| a != b).count();
        assert!(differ <= 2, "{key}: {differ} frames differ");
    }
    for (i, frame) in [0, 100, 300].iter().enumerate() {
        let want = floats(&g["segmentation_0_10s_logp_frames_0_100_300"][i]);
        assert_close(&lp[0][*frame], &want, 1e-3, "log-probabilities");
    }
}

#[test]
fn the_pyannote_sample_is_split_into_its_two_speakers() {
    let models = callqa::service::engines::speaker_models(&common::model_dir()).unwrap();
    let d = models.diarize(&sample(), 2).unwrap();
    assert_eq!(d.speakers, 2);
    let hypothesis: Vec<Span> = d
        .turns
        .iter()
        .map(|t| Span {
            speaker: format!("S{}", t.speaker + 1),
            start_ms: t.start_ms,
            end_ms: t.end_ms,
        })
        .collect();
    let rttm =
        std::fs::read_to_string(common::eval_dir().join("diarization/pyannote_sample/sample.rttm"))
            .unwrap();
    let reference = parse_rttm(&rttm).unwrap();
    let e = der(&reference, &hypothesis, COLLAR_MS);
    println!("{e:?} DER {:.1} %", 100.0 * e.rate());
    assert!(e.rate() <= 0.15, "{e:?}");
}

fn tadhack() -> std::path::PathBuf {
    common::eval_dir().join("transcripts/en_vcon_tadhack_synthetic")
}

#[test]
fn mono_calls_get_their_roles_right_from_the_voices_and_words() {
    let engines = common::engines();
    let calls = callqa::eval::diarization::evaluate_roles(
        &engines,
        &tadhack(),
        &common::fixture("speakers/tadhack_roles.tsv"),
        &callqa::transcript::CallOptions::default(),
    )
    .unwrap();
    assert_eq!(calls.len(), 10);
    let mut total = callqa::eval::roles::RoleScore::default();
    for (call, s) in &calls {
        println!("{call}: {s}");
        assert_eq!(s.unknown_ms, 0, "{call}: every speaker's role is decided");
        total.add(s);
    }
    println!("all: {total}");
    assert!(total.accuracy() >= 0.95, "{total}");
    assert!(total.spanning * 5 <= total.turns, "{total}");
}

#[test]
fn nothing_is_scored_from_unknown_roles() {
    use callqa::analysis::playbook::Playbook;
    use callqa::service::{CallMeta, Recording};
    let inspector = common::inspector();
    let playbook = Playbook::load(
        &std::path::PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("examples/playbook.toml"),
    )
    .unwrap();
    // The call that scored 0 when its roles were guessed from one phrase.
    let call = tadhack().join("315fdda3-a009-4c2e-83ea-cc151c52498e.mp3");
    let analyse = |max_speakers: usize| {
        let opts = callqa::transcript::CallOptions {
            max_speakers,
            ..Default::default()
        };
        let permit = inspector.permit().unwrap();
        inspector
            .recording(
                &permit,
                &playbook,
                Recording::read(&call).unwrap(),
                CallMeta::default(),
                &opts,
            )
            .unwrap()
    };
    // Not split by voice: every turn is UNKNOWN, and no dimension gets a score.
    let unsplit = analyse(0);
    assert!(
        unsplit
            .turns
            .iter()
            .all(|t| t.role == callqa::audio::channels::Role::Unknown)
    );
    assert_eq!(unsplit.overall.score, None);
    assert_eq!(unsplit.overall.not_judged.as_deref(), Some("roles unknown"));
    assert!(
        unsplit
            .note
            .as_deref()
            .is_some_and(|n| n.contains("roles unknown"))
    );
    for d in &unsplit.scorecard.dimensions {
        assert_eq!((d.score, d.passed), (None, None), "{}", d.id);
        assert!(
            d.signals
                .iter()
                .all(|s| s.value.is_none() && s.detail == "not judged: roles unknown")
        );
    }
    // Split by voice, the same call is judged, every turn by a sure role.
    let split = analyse(2);
    assert!(
        split
            .turns
            .iter()
            .all(|t| t.role != callqa::audio::channels::Role::Unknown && t.speaker.is_some())
    );
    assert!(split.overall.score.is_some(), "{:?}", split.overall);
    assert!(split.note.is_none(), "{:?}", split.note);
}

#[test]
fn conversations_mixed_from_real_voices_are_split_within_the_target() {
    let models = callqa::service::engines::speaker_models(&common::model_dir()).unwrap();
    let mixes = callqa::eval::diarization::evaluate_mixes(&models, &common::eval_dir()).unwrap();
    assert_eq!(mixes.len(), 24);
    let (mut clean, mut phone) = (Der::default(), Der::default());
    for (_, c, p) in &mixes {
        clean.add(c);
        phone.add(p);
    }
    println!("16 kHz: {clean}\n8 kHz μ-law: {phone}");
    assert!(
        clean.rate() <= 0.15 && phone.rate() <= 0.15,
        "{clean} / {phone}"
    );
}

#[test]
fn a_reps_voice_learned_from_a_stereo_call_tells_them_on_a_mono_call() {
    use callqa::analysis::playbook::Playbook;
    use callqa::audio::channels::Role;
    use callqa::service::{self, CallMeta, Recording};
    use callqa::store::{SqliteStore, Store, VoiceSource};
    use callqa::transcript::{CallOptions, RoleSource};
    let inspector = common::inspector();
    let playbook = Playbook::load(
        &std::path::PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("examples/playbook.toml"),
    )
    .unwrap();
    let store = SqliteStore::in_memory().unwrap();
    let mixes = callqa::eval::mixes::shared_mixes(&common::eval_dir()).unwrap();
    // LibriSpeech 2412 is the rep, the Asterisk prompts' voice the customer.
    let (stereo, mono) = (&mixes[0], &mixes[1]);
    let analyse = |bytes: Vec<u8>, call_id: &str| {
        let meta = CallMeta {
            call_id: Some(call_id.into()),
            rep_id: Some("rep-2412".into()),
            ..CallMeta::default()
        };
        let opts =
            service::with_rep_voice(&store, "t1", meta.rep_id.as_deref(), CallOptions::default())
                .unwrap();
        let permit = inspector.permit().unwrap();
        let a = inspector
            .recording(&permit, &playbook, Recording::new(bytes), meta, &opts)
            .unwrap();
        service::record(&store, "t1", &a, &playbook).unwrap();
        a
    };
    // The stereo call teaches the rep's voice (their channel, the first).
    assert!(store.voiceprint("t1", "rep-2412").unwrap().is_none());
    analyse(common::wav_pcm16(&stereo.tracks, 16_000), "stereo");
    let learned = store.voiceprint("t1", "rep-2412").unwrap().unwrap();
    assert_eq!(learned.source, VoiceSource::Learned);
    assert!(learned.speech_ms > 5_000, "{}", learned.speech_ms);
    // On a mono mix of the same two voices, the speaker with that voice is the agent, by
    // voiceprint: the rep speaks first.
    let a = analyse(
        common::wav_pcm16(std::slice::from_ref(&mono.mono), 16_000),
        "mono",
    );
    let first = a
        .turns
        .iter()
        .find(|t| t.speaker.as_deref() == Some("S1"))
        .unwrap();
    assert_eq!(
        (first.role, first.role_source),
        (Role::Agent, RoleSource::Voiceprint)
    );
    assert!(
        a.turns.iter().any(|t| t.role == Role::Customer),
        "{:?}",
        a.turns
    );
}

#[test]
fn reps_are_enrolled_from_a_recording_of_their_voice_and_forgotten() {
    let dir = std::env::temp_dir().join(format!("callqa-reps-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let store = dir.join("store.db");
    let run = |args: &[&str]| {
        std::process::Command::new(env!("CARGO_BIN_EXE_callqa"))
            .args(args)
            .arg("--store")
            .arg(&store)
            .env_remove("CALLQA_STORE")
            .output()
            .unwrap()
    };
    let voice = common::eval_dir().join("asr/en/lhotse/2412-153948-0001.flac");
    let out = run(&["reps", "enroll", "rep-7", voice.to_str().unwrap()]);
    let said = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(said.contains("enrolled rep rep-7"), "{said}");
    // Too little speech: refused, with the reason.
    let short = common::eval_dir().join("asr/en/lhotse/LJ002-0020.wav");
    let out = run(&["reps", "enroll", "rep-8", short.to_str().unwrap()]);
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("too little speech"));
    assert!(run(&["reps", "forget", "rep-7"]).status.success());
    assert!(!run(&["reps", "forget", "rep-7"]).status.success());
    let _ = std::fs::remove_dir_all(&dir);
}
