//! Two-speaker conversations mixed from real single-speaker recordings, so that who speaks when is
//! known exactly: each speaker's recording is cut at its pauses into pieces of 1–3 s, and the
//! pieces alternate between the two, with gaps of 0.2–1.0 s or, one change in four, an overlap of
//! 0.3–0.8 s. The second speaker is 0–10 dB quieter, under a −60 dBFS noise floor. Inside each
//! piece, speech is where the frame energy is within 35 dB of the piece's loudest frame (pauses
//! under 0.25 s bridged), which counts low breath and trailing sounds as speech: missed speech is
//! mostly those, and speaker confusion is the figure that measures who-is-who.

use super::diarization::Span;
use super::{Context, Result};
use std::path::Path;

const RATE: usize = 16_000;
const FRAME: usize = 160; // 10 ms

/// A small deterministic generator (xorshift64*), so that every run mixes the same conversations.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> f64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        (self.0.wrapping_mul(0x2545_F491_4F6C_DD1D) >> 11) as f64 / (1u64 << 53) as f64
    }

    fn between(&mut self, lo: f64, hi: f64) -> f64 {
        lo + (hi - lo) * self.next()
    }
}

/// One speaker's material: the audio of their recordings, 16 kHz.
pub struct Voice {
    pub name: String,
    pub audio: Vec<Vec<f32>>,
}

/// A piece of one voice, with its speech as sample ranges inside it.
struct Piece {
    audio: Vec<f32>,
    speech: Vec<(usize, usize)>,
}

fn frame_db(audio: &[f32]) -> Vec<f32> {
    audio
        .chunks(FRAME)
        .map(|f| {
            let energy = f.iter().map(|x| x * x).sum::<f32>() / f.len().max(1) as f32;
            10.0 * energy.max(1e-12).log10()
        })
        .collect()
}

/// Frame runs within 35 dB of the loudest frame, pauses under 0.25 s bridged.
fn speech_frames(db: &[f32]) -> Vec<(usize, usize)> {
    let peak = db.iter().copied().fold(f32::MIN, f32::max);
    let mut runs: Vec<(usize, usize)> = Vec::new();
    for (i, &d) in db.iter().enumerate() {
        if d < peak - 35.0 {
            continue;
        }
        match runs.last_mut() {
            Some((_, end)) if i - *end < 25 => *end = i + 1,
            _ => runs.push((i, i + 1)),
        }
    }
    runs
}

/// Cuts a recording at its pauses into pieces of about 1–3 s (speech that runs on is cut at its
/// quietest frame between 1 and 3 s).
fn pieces(audio: &[f32], rng: &mut Rng) -> Vec<Piece> {
    let db = frame_db(audio);
    let mut runs = Vec::new();
    for (mut s, e) in speech_frames(&db) {
        while e - s > 300 {
            let cut = (s + 100..s + 300)
                .min_by(|&a, &b| db[a].total_cmp(&db[b]))
                .unwrap_or(s + 300);
            runs.push((s, cut));
            s = cut;
        }
        runs.push((s, e));
    }
    let mut out = Vec::new();
    let mut i = 0;
    while i < runs.len() {
        let target = rng.between(100.0, 300.0) as usize;
        let (start, mut end) = runs[i];
        i += 1;
        while end - start < target && i < runs.len() && runs[i].1 - start <= 300 {
            end = runs[i].1;
            i += 1;
        }
        if end - start >= 50 {
            out.push(piece(audio, &db, start, end));
        }
    }
    out
}

fn piece(audio: &[f32], db: &[f32], from: usize, to: usize) -> Piece {
    let samples = &audio[from * FRAME..(to * FRAME).min(audio.len())];
    let speech = speech_frames(&db[from..to])
        .into_iter()
        .map(|(s, e)| (s * FRAME, (e * FRAME).min(samples.len())))
        .collect();
    Piece {
        audio: samples.to_vec(),
        speech,
    }
}

fn rms(x: &[f32]) -> f32 {
    (x.iter().map(|v| v * v).sum::<f32>() / x.len().max(1) as f32).sqrt()
}

/// A mixed conversation: the mono mix, each voice's own track (a stereo call), and the reference.
pub struct Mix {
    pub name: String,
    pub mono: Vec<f32>,
    pub tracks: [Vec<f32>; 2],
    pub reference: Vec<Span>,
}

/// Mixes a conversation of two voices (the first speaks first), from `seed`.
pub fn mix(a: &Voice, b: &Voice, seed: u64) -> Mix {
    let mut rng = Rng(seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1);
    let cut = |v: &Voice, rng: &mut Rng| -> Vec<Piece> {
        v.audio.iter().flat_map(|x| pieces(x, rng)).collect()
    };
    let (pa, pb) = (cut(a, &mut rng), cut(b, &mut rng));
    let n = pa.len().min(pb.len()).min(8);
    let gain_b = 10f32.powf(-rng.between(0.0, 10.0) as f32 / 20.0);
    let level = 0.1; // −20 dBFS
    let mut order: Vec<(usize, &Piece)> = Vec::new();
    for i in 0..n {
        order.push((0, &pa[i]));
        order.push((1, &pb[i]));
    }
    let mut placed: Vec<(usize, usize, &Piece)> = Vec::new(); // speaker, start sample, piece
    let mut end = (0.5 * RATE as f64) as usize;
    for (speaker, p) in order {
        let start = if placed.is_empty() || rng.next() >= 0.25 {
            end + (rng.between(0.2, 1.0) * RATE as f64) as usize
        } else {
            end.saturating_sub((rng.between(0.3, 0.8) * RATE as f64) as usize)
        };
        end = end.max(start + p.audio.len());
        placed.push((speaker, start, p));
    }
    let total = end + RATE / 2;
    let mut tracks = [vec![0f32; total], vec![0f32; total]];
    let mut reference = Vec::new();
    for (speaker, start, p) in placed {
        let gain = level / rms(&p.audio).max(1e-6) * if speaker == 1 { gain_b } else { 1.0 };
        for (i, x) in p.audio.iter().enumerate() {
            tracks[speaker][start + i] += x * gain;
        }
        let name = if speaker == 0 { &a.name } else { &b.name };
        reference.extend(p.speech.iter().map(|&(s, e)| Span {
            speaker: name.clone(),
            start_ms: ((start + s) / 16) as u64,
            end_ms: ((start + e) / 16) as u64,
        }));
    }
    let mut noise = Rng(seed ^ 0xD1B5_4A32_D192_ED03 | 1);
    let floor = 0.001 * 3f32.sqrt(); // −60 dBFS RMS, uniform
    let mono: Vec<f32> = (0..total)
        .map(|i| tracks[0][i] + tracks[1][i] + floor * (2.0 * noise.next() as f32 - 1.0))
        .collect();
    Mix {
        name: format!("{}+{}#{seed}", a.name, b.name),
        mono,
        tracks,
        reference,
    }
}

/// The voices of the shared evaluation set, by speaker: LibriSpeech 2412 and 1995, the Asterisk
/// prompts' voice (8 kHz), JFK, AISHELL S0764 and S0724, FunASR's example speaker, and the two
/// speakers of the pyannote sample (their speech outside overlaps).
pub fn shared_voices(eval: &Path) -> Result<Vec<Voice>> {
    let load = |rel: &str| -> Result<Vec<f32>> {
        let path = eval.join(rel);
        let bytes =
            std::fs::read(&path).with_context(|| format!("{}: cannot read", path.display()))?;
        Ok(crate::audio::load_16k_mono(bytes)?.1)
    };
    let voice = |name: &str, files: &[&str]| -> Result<Voice> {
        Ok(Voice {
            name: name.into(),
            audio: files.iter().map(|f| load(f)).collect::<Result<_>>()?,
        })
    };
    let mut voices = vec![
        voice(
            "2412",
            &[
                "asr/en/lhotse/2412-153948-0000.flac",
                "asr/en/lhotse/2412-153948-0001.flac",
            ],
        )?,
        voice("1995", &["asr/en/wenet/librispeech-1995-1837-0001.wav"])?,
        voice(
            "allison",
            &[
                "asr/en/asterisk_8k/conf-adminmenu.wav",
                "asr/en/asterisk_8k/vm-options.wav",
            ],
        )?,
        voice("jfk", &["asr/en/whisper/jfk.flac"])?,
        voice(
            "S0764",
            &[
                "asr/zh/fireredasr/BAC009S0764W0121.wav",
                "asr/zh/s3tokenizer/BAC009S0764W0122.wav",
            ],
        )?,
        voice("S0724", &["asr/zh/wenet/aishell-BAC009S0724W0121.wav"])?,
        voice("funasr", &["asr/zh/funasr/asr_example.wav"])?,
    ];
    let sample = load("diarization/pyannote_sample/sample.wav")?;
    let rttm_path = eval.join("diarization/pyannote_sample/sample.rttm");
    let rttm = std::fs::read_to_string(&rttm_path)
        .with_context(|| format!("{}: cannot read", rttm_path.display()))?;
    let spans = super::diarization::parse_rttm(&rttm)?;
    for name in ["speaker90", "speaker91"] {
        let mut alone = Vec::new();
        for s in spans.iter().filter(|s| s.speaker == name) {
            for ms in s.start_ms..s.end_ms {
                let others = spans
                    .iter()
                    .any(|o| o.speaker != name && (o.start_ms..o.end_ms).contains(&ms));
                if !others {
                    let i = ms as usize * 16;
                    alone.extend_from_slice(
                        &sample[i.min(sample.len())..(i + 16).min(sample.len())],
                    );
                }
            }
            alone.extend(std::iter::repeat_n(0.0, RATE / 2));
        }
        voices.push(Voice {
            name: name.into(),
            audio: vec![alone],
        });
    }
    Ok(voices)
}

/// The pairs mixed: close and distant voices, both languages, wideband and telephone band.
pub const PAIRS: [(&str, &str); 8] = [
    ("2412", "allison"),
    ("2412", "jfk"),
    ("2412", "1995"),
    ("jfk", "allison"),
    ("S0764", "S0724"),
    ("S0764", "funasr"),
    ("speaker90", "2412"),
    ("speaker90", "speaker91"),
];

/// Three conversations of each pair.
pub fn shared_mixes(eval: &Path) -> Result<Vec<Mix>> {
    let voices = shared_voices(eval)?;
    let find = |n: &str| voices.iter().find(|v| v.name == n).expect("a listed voice");
    let mut out = Vec::new();
    for (a, b) in PAIRS {
        for seed in 1..=3 {
            out.push(mix(find(a), find(b), seed));
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tone(secs: f32, pauses_every: f32) -> Vec<f32> {
        (0..(secs * RATE as f32) as usize)
            .map(|i| {
                let t = i as f32 / RATE as f32;
                if (t % pauses_every) > pauses_every - 0.4 {
                    0.0
                } else {
                    0.3 * (2.0 * std::f32::consts::PI * 220.0 * t).sin()
                }
            })
            .collect()
    }

    #[test]
    fn a_mix_alternates_two_voices_and_knows_their_times() {
        let a = Voice {
            name: "a".into(),
            audio: vec![tone(12.0, 1.5)],
        };
        let b = Voice {
            name: "b".into(),
            audio: vec![tone(12.0, 2.0)],
        };
        let m = mix(&a, &b, 7);
        assert_eq!(m.mono.len(), m.tracks[0].len());
        assert!(m.reference.len() >= 8, "{}", m.reference.len());
        assert_eq!(m.reference[0].speaker, "a");
        assert!(m.reference.iter().any(|s| s.speaker == "b"));
        // Every reference span is where its voice's own track sounds.
        for s in &m.reference {
            let track = &m.tracks[usize::from(s.speaker == "b")];
            let mid = ((s.start_ms + s.end_ms) / 2 * 16) as usize;
            let around = &track[mid.saturating_sub(800)..mid + 800];
            assert!(rms(around) > 0.01, "{s:?}");
        }
        // The same seed mixes the same conversation.
        assert_eq!(mix(&a, &b, 7).mono, m.mono);
    }
}
