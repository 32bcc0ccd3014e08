//! Audio ingest and the transcription pipeline on real recordings: every format, channel
//! layouts as roles, silence and noise, and bad input.

mod common;

use callqa::asr::Language;
use callqa::audio::StreamDecoder;
use callqa::audio::channels::{Layout, Role};
use callqa::eval::char_errors;
use callqa::transcript::{CallOptions, CallTranscript, Engines, RoleSource};

fn run(engines: &Engines, bytes: Vec<u8>, opts: &CallOptions) -> CallTranscript {
    engines
        .transcribe(StreamDecoder::from_bytes(bytes).expect("decodes"), opts)
        .expect("transcribes")
}

fn text(t: &CallTranscript) -> String {
    t.turns.iter().map(|t| t.text.as_str()).collect()
}

const ZH_FULL: &str = "广州市房地产中介协会分析";
const ZH_SHORT: &str = "广州市房地产";

#[test]
fn every_format_decodes_and_transcribes() {
    let engines = common::engines();
    let zh = CallOptions {
        language: Language::Zh,
        ..CallOptions::default()
    };
    // (fixture, sample rate, reference, max CER): 8-bit and G.711 audio is harder for Whisper base.
    let cases = [
        ("zh_pcm16_16k.wav", 16_000, ZH_FULL, 0.35),
        ("zh_pcm24_16k.wav", 16_000, ZH_SHORT, 0.35),
        ("zh_pcm32_16k.wav", 16_000, ZH_SHORT, 0.35),
        ("zh_f32_16k.wav", 16_000, ZH_SHORT, 0.35),
        ("zh_u8_16k.wav", 16_000, ZH_FULL, 0.6),
        ("zh_mulaw_8k.wav", 8_000, ZH_FULL, 0.6),
        ("zh_alaw_8k.wav", 8_000, ZH_FULL, 0.6),
        ("zh.flac", 16_000, ZH_FULL, 0.35),
        ("zh.mp3", 16_000, ZH_FULL, 0.35),
        ("zh.m4a", 16_000, ZH_FULL, 0.35),
        ("zh.ogg", 16_000, ZH_FULL, 0.5),
        ("zh.opus", 48_000, ZH_FULL, 0.35),
        ("zh.webm", 48_000, ZH_FULL, 0.35),
        // FLAC content under a .wav name: the content decides.
        ("zh_really_flac.wav", 16_000, ZH_FULL, 0.35),
    ];
    for (name, rate, reference, max_cer) in cases {
        let bytes = std::fs::read(common::fixture(name)).unwrap();
        let t = run(&engines, bytes, &zh);
        let hyp = text(&t);
        let cer = char_errors(reference, &hyp).rate();
        println!("{name}: {hyp} (CER {cer:.2})");
        assert_eq!(t.sample_rate, rate, "{name}");
        assert_eq!(t.channels, 1, "{name}");
        assert_eq!(t.layout, Layout::Mono);
        assert!(cer <= max_cer, "{name}: CER {cer:.2} for {hyp}");
        // One short sentence: one speaker, whose role the words do not tell.
        assert!(t.turns.iter().all(|turn| turn.role == Role::Unknown
            && turn.role_source == RoleSource::Unknown
            && turn.speaker.as_deref() == Some("S1")));
    }
}

#[test]
fn a_stereo_mp3_of_one_voice_on_both_channels_is_treated_as_mono() {
    let engines = common::engines();
    let bytes = std::fs::read(common::fixture("en_stereo_44k.mp3")).unwrap();
    let t = run(&engines, bytes, &CallOptions::default());
    assert_eq!((t.channels, t.sample_rate), (2, 44_100));
    assert_eq!(t.layout, Layout::Duplicated { channels: 2 });
    assert_eq!(t.language, "en");
    let hyp = text(&t);
    assert!(
        hyp.contains("ask not what your country can do for you"),
        "{hyp}"
    );
    assert_eq!(
        hyp.matches("fellow Americans").count(),
        1,
        "transcribed once, not per channel: {hyp}"
    );
}

/// Places clips at given offsets (seconds) on a silent 16 kHz track.
fn track(len_s: f32, clips: &[(f32, &[f32])]) -> Vec<f32> {
    let mut out = vec![0.0f32; (len_s * 16_000.0) as usize];
    for (at, clip) in clips {
        let start = (at * 16_000.0) as usize;
        out[start..start + clip.len()].copy_from_slice(clip);
    }
    out
}

#[test]
fn a_stereo_call_gives_interleaved_turns_with_roles_and_call_times() {
    let engines = common::engines();
    // Three AISHELL/ModelScope speakers: agent on channel 0 (twice), customer on channel 1.
    let agent_1 = common::speech("asr/zh/wenet/aishell-BAC009S0724W0121.wav");
    let customer = common::speech("asr/zh/fireredasr/BAC009S0764W0121.wav");
    let agent_2 = common::speech("asr/zh/funasr/asr_example.wav");
    let left = track(22.0, &[(1.0, &agent_1), (13.0, &agent_2)]);
    let right = track(22.0, &[(7.0, &customer)]);
    let t = run(
        &engines,
        common::wav_pcm16(&[left, right], 16_000),
        &CallOptions::default(),
    );
    for turn in &t.turns {
        println!(
            "{:?} {}-{} {}",
            turn.role, turn.start_ms, turn.end_ms, turn.text
        );
        println!(
            "   {:?}",
            turn.words
                .iter()
                .map(|w| (w.text.as_str(), w.start_ms, w.end_ms))
                .collect::<Vec<_>>()
        );
    }
    assert_eq!(t.language, "zh");
    assert_eq!(
        t.layout,
        Layout::PerChannel {
            roles: vec![Role::Agent, Role::Customer]
        }
    );
    let roles: Vec<Role> = t.turns.iter().map(|x| x.role).collect();
    assert_eq!(roles, vec![Role::Agent, Role::Customer, Role::Agent]);
    assert!(t.turns.iter().all(|x| x.role_source == RoleSource::Channel));
    assert_eq!(
        t.turns.iter().map(|x| x.channel).collect::<Vec<_>>(),
        vec![Some(0), Some(1), Some(0)]
    );
    // Absolute times: each turn starts near where its clip was placed (clips begin with ~0.3-0.9 s of silence).
    for (turn, placed_ms) in t.turns.iter().zip([1_000u64, 7_000, 13_000]) {
        assert!(
            turn.start_ms >= placed_ms && turn.start_ms <= placed_ms + 1_500,
            "{turn:?} vs {placed_ms}"
        );
        assert!(turn.end_ms > turn.start_ms);
        assert!(
            turn.words
                .iter()
                .all(|w| w.start_ms >= turn.start_ms.saturating_sub(500)
                    && w.end_ms <= turn.end_ms + 500)
        );
    }
    let refs = [
        "广州市房地产中介协会分析",
        "甚至出现交易几乎停滞的情况",
        "欢迎大家来体验达摩院推出的语音识别模型",
    ];
    for (turn, reference) in t.turns.iter().zip(refs) {
        let cer = char_errors(reference, &turn.text).rate();
        assert!(cer <= 0.35, "{} vs {reference}: CER {cer:.2}", turn.text);
    }

    // The channel map is configurable: swapped, the same speech gets the other roles.
    let swapped = CallOptions {
        channel_roles: vec![Role::Customer, Role::Agent],
        ..CallOptions::default()
    };
    let left = track(22.0, &[(1.0, &agent_1), (13.0, &agent_2)]);
    let right = track(22.0, &[(7.0, &customer)]);
    let t = run(
        &engines,
        common::wav_pcm16(&[left, right], 16_000),
        &swapped,
    );
    let roles: Vec<Role> = t.turns.iter().map(|x| x.role).collect();
    assert_eq!(roles, vec![Role::Customer, Role::Agent, Role::Customer]);
}

#[test]
fn eight_channels_are_transcribed_per_channel() {
    let engines = common::engines();
    let a = common::speech("asr/zh/s3tokenizer/BAC009S0764W0122.wav");
    let b = common::speech("asr/zh/wenet/aishell-BAC009S0724W0121.wav");
    let mut channels = vec![vec![0.0f32; 16_000 * 12]; 8];
    channels[3] = track(12.0, &[(0.5, &a)]);
    channels[6] = track(12.0, &[(6.5, &b)]);
    let t = run(
        &engines,
        common::wav_pcm16(&channels, 16_000),
        &CallOptions {
            language: Language::Zh,
            ..CallOptions::default()
        },
    );
    for turn in &t.turns {
        println!(
            "{:?} {}-{} {}",
            turn.channel, turn.start_ms, turn.end_ms, turn.text
        );
    }
    assert_eq!(t.channels, 8);
    assert_eq!(
        t.layout,
        Layout::PerChannel {
            roles: vec![Role::Unknown; 8]
        }
    );
    assert_eq!(
        t.turns.iter().map(|x| x.channel).collect::<Vec<_>>(),
        vec![Some(3), Some(6)]
    );
    assert!(
        char_errors("一二线城市虽然也处于调整中", &t.turns[0].text).rate() <= 0.35,
        "{}",
        t.turns[0].text
    );
}

#[test]
fn an_8khz_mu_law_call_written_by_hand_decodes() {
    // G.711 μ-law encoding of a real clip, in a WAV with format tag 7.
    let speech = common::speech("asr/zh/fireredasr/BAC009S0764W0121.wav");
    let at_8k: Vec<f32> = speech.iter().step_by(2).copied().collect();
    let mulaw: Vec<u8> = at_8k
        .iter()
        .map(|&x| linear_to_mulaw((x * 32767.0) as i16))
        .collect();
    let bytes = common::wav_raw(7, 1, 8_000, 8, mulaw.len() as u32, &mulaw);
    let audio = callqa::audio::decode(bytes).unwrap();
    assert_eq!((audio.sample_rate, audio.channels.len()), (8_000, 1));
    assert_eq!(audio.channels[0].len(), at_8k.len());
    // μ-law is lossy (8 bits) but close: the decoded waveform tracks the original.
    let err: f32 = audio.channels[0]
        .iter()
        .zip(&at_8k)
        .map(|(a, b)| (a - b).abs())
        .sum();
    let level: f32 = at_8k.iter().map(|x| x.abs()).sum();
    assert!(err / level < 0.1, "relative error {}", err / level);
}

/// ITU-T G.711 μ-law encoder (for building test input).
fn linear_to_mulaw(sample: i16) -> u8 {
    const BIAS: i32 = 0x84;
    let mut s = i32::from(sample);
    let sign = if s < 0 { 0x80 } else { 0 };
    if s < 0 {
        s = -s;
    }
    s = (s + BIAS).min(32_635 + BIAS);
    let exponent = (31 - (s >> 7).leading_zeros() as i32).clamp(0, 7) as u8;
    let mantissa = ((s >> (exponent + 3)) & 0x0f) as u8;
    !(sign | (exponent << 4) | mantissa)
}

#[test]
fn silence_and_noise_give_no_text() {
    let engines = common::engines();
    let silence = vec![vec![0.0f32; 16_000 * 20]];
    let t = run(
        &engines,
        common::wav_pcm16(&silence, 16_000),
        &CallOptions::default(),
    );
    assert!(t.turns.is_empty(), "silence produced {:?}", t.turns);
    assert_eq!(t.windows, 0);

    // White and low-frequency noise at telephone-line levels.
    let mut state = 0x1234_5678u32;
    let mut rnd = move || {
        state ^= state << 13;
        state ^= state >> 17;
        state ^= state << 5;
        state as f32 / u32::MAX as f32 * 2.0 - 1.0
    };
    let white: Vec<f32> = (0..16_000 * 20).map(|_| rnd() * 0.05).collect();
    let mut hum = 0.0f32;
    let brown: Vec<f32> = (0..16_000 * 20)
        .map(|_| {
            hum = (hum + rnd() * 0.02).clamp(-0.3, 0.3);
            hum
        })
        .collect();
    for (name, noise) in [("white", white), ("brown", brown)] {
        let t = run(
            &engines,
            common::wav_pcm16(&[noise], 16_000),
            &CallOptions {
                language: Language::Zh,
                ..CallOptions::default()
            },
        );
        assert!(
            t.turns.is_empty(),
            "{name} noise produced {:?}",
            t.turns.iter().map(|x| &x.text).collect::<Vec<_>>()
        );
    }
}

#[test]
fn bad_input_is_a_clear_error_and_the_engine_keeps_working() {
    let engines = common::engines();
    let good = std::fs::read(common::fixture("zh.flac")).unwrap();
    let pcm = std::fs::read(common::fixture("zh_pcm16_16k.wav")).unwrap();
    let samples = &pcm[44..44 + 16_000];
    let cases: Vec<(&str, Vec<u8>, &str)> = vec![
        ("zero-length", vec![], "empty"),
        (
            "random bytes",
            (0..20_000u32)
                .map(|i| (i.wrapping_mul(2_654_435_761) >> 13) as u8)
                .collect(),
            "not a recognised audio format",
        ),
        (
            "truncated FLAC",
            good[..good.len() / 3].to_vec(),
            "truncated",
        ),
        (
            "truncated MP3",
            {
                let m = std::fs::read(common::fixture("zh.mp3")).unwrap();
                m[..m.len() / 3].to_vec()
            },
            "truncated",
        ),
        (
            "0 channels",
            common::wav_raw(1, 0, 16_000, 16, samples.len() as u32, samples),
            "",
        ),
        (
            "1 Hz",
            common::wav_raw(1, 1, 1, 16, samples.len() as u32, samples),
            "",
        ),
        (
            "4 GHz",
            common::wav_raw(1, 1, 4_000_000_000, 16, samples.len() as u32, samples),
            "",
        ),
        ("header only", pcm[..44].to_vec(), ""),
    ];
    // A WAV header whose sizes promise more than the file holds is repaired as ffmpeg does
    // (issue 22): what is there is read, and the repair is said.
    let oversized = common::wav_raw(1, 1, 16_000, 16, 10_000_000, samples);
    let d = StreamDecoder::from_bytes(oversized).unwrap();
    let t = engines.transcribe(d, &CallOptions::default()).unwrap();
    assert!(
        t.note().is_some_and(|n| n.contains("repaired")),
        "{:?}",
        t.note()
    );
    for (name, bytes, says) in cases {
        let result = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            StreamDecoder::from_bytes(bytes)
                .map_err(|e| e.to_string())
                .and_then(|d| {
                    engines
                        .transcribe(d, &CallOptions::default())
                        .map(|_| ())
                        .map_err(|e| e.to_string())
                })
        }));
        let Ok(outcome) = result else {
            panic!("{name}: panicked")
        };
        let err = outcome.expect_err(name);
        println!("{name}: {err}");
        assert!(err.to_lowercase().contains(says), "{name}: {err}");
        // The same engines still transcribe a good file right after.
        let t = run(&engines, good.clone(), &CallOptions::default());
        assert!(
            char_errors(ZH_FULL, &text(&t)).rate() <= 0.35,
            "after {name}: {}",
            text(&t)
        );
    }
}
