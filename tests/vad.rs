//! Silero VAD on real speech padded with silence.

mod common;

use callqa::audio::vad::VadParams;
use callqa::service::engines;

#[test]
fn speech_padded_with_a_second_of_silence_is_found_within_200_ms() {
    let vad = engines::vad(&common::model_dir()).unwrap();
    // The detected regions themselves, without the padding added for Whisper.
    let params = VadParams {
        speech_pad_ms: 0,
        ..VadParams::default()
    };
    for file in [
        "asr/zh/wenet/aishell-BAC009S0724W0121.wav",
        "asr/en/whisper/jfk.flac",
    ] {
        let speech = common::load_16k(&common::eval_dir().join(file));
        let original = vad.segments(&speech, &params).unwrap();
        assert!(!original.is_empty(), "{file}: no speech found");

        let mut padded = vec![0.0f32; 16_000];
        padded.extend_from_slice(&speech);
        padded.extend(std::iter::repeat_n(0.0, 16_000));
        let found = vad.segments(&padded, &params).unwrap();
        println!("{file}: original {original:?}\n  padded {found:?}");

        // The same regions, shifted by exactly the 1 s of leading silence.
        let first = found.first().unwrap();
        let last = found.last().unwrap();
        let want_start = original.first().unwrap().start_ms + 1000;
        let want_end = original.last().unwrap().end_ms + 1000;
        assert!(
            first.start_ms.abs_diff(want_start) <= 200,
            "{file}: start {} vs {want_start}",
            first.start_ms
        );
        assert!(
            last.end_ms.abs_diff(want_end) <= 200,
            "{file}: end {} vs {want_end}",
            last.end_ms
        );
        // And nothing in the added silence.
        let speech_ms = speech.len() as u64 / 16;
        assert!(
            first.start_ms >= 800,
            "{file}: speech reported in the leading silence"
        );
        assert!(
            last.end_ms <= 1000 + speech_ms + 200,
            "{file}: speech reported in the trailing silence"
        );
        // The speech onset agrees with the signal's own energy onset.
        let onset_ms = speech
            .chunks(160)
            .position(|c| c.iter().map(|x| x * x).sum::<f32>() / 160.0 > 1e-4)
            .unwrap() as u64
            * 10;
        assert!(
            first.start_ms.abs_diff(onset_ms + 1000) <= 200,
            "{file}: VAD start {} vs energy onset {}",
            first.start_ms,
            onset_ms + 1000
        );
    }
}

#[test]
fn pure_silence_and_noise_floor_have_no_speech() {
    let vad = engines::vad(&common::model_dir()).unwrap();
    let silence = vec![0.0f32; 16_000 * 3];
    assert!(
        vad.segments(&silence, &VadParams::default())
            .unwrap()
            .is_empty()
    );
}

#[test]
fn a_long_call_streams_through_vad_in_bounded_memory() {
    use callqa::audio::vad::StreamVad;
    let vad = engines::vad(&common::model_dir()).unwrap();
    let speech = common::speech("asr/zh/wenet/aishell-BAC009S0724W0121.wav");
    let mut stream = StreamVad::new(vad, VadParams::default());
    // 10 minutes: a sentence every 30 s, fed in 100 ms chunks as a decoder would.
    let mut found = 0;
    let mut peak = 0;
    for minute_part in 0..20 {
        let mut block = speech.clone();
        block.resize(16_000 * 30, 0.0);
        for chunk in block.chunks(1_600) {
            found += stream.push(chunk).unwrap().len();
            peak = peak.max(stream.buffered_samples());
        }
        assert!(
            found >= minute_part,
            "speech {minute_part} not emitted in time"
        );
    }
    found += stream.finish().unwrap().len();
    assert_eq!(found, 20);
    // Never more than one sentence (4.3 s) plus padding held, not the 10 minutes streamed.
    assert!(peak < 16_000 * 6, "held {peak} samples");
}
