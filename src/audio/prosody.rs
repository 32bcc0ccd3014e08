//! Prosody from the audio: loudness and pitch per 20 ms frame, kept for the whole call at a few
//! bytes per frame, then summarised over each turn (energy and its variation, pitch and its
//! variation, how much of the turn is voiced).

use serde::{Deserialize, Serialize};

const RATE: usize = 16_000;
/// One frame every 20 ms; each looks at 40 ms, enough for two periods of a 70 Hz voice.
const HOP: usize = 320;
const WINDOW: usize = 640;
const MIN_F0: f32 = 70.0;
const MAX_F0: f32 = 400.0;
/// Normalised autocorrelation a frame needs to count as voiced.
const VOICING: f32 = 0.5;
/// Frames quieter than this (dBFS) are silence: no pitch, not part of the energy statistics.
const SILENCE_DB: f32 = -55.0;

#[derive(Debug, Clone, Copy, PartialEq)]
struct Frame {
    energy_db: f32,
    /// 0 when unvoiced.
    f0_hz: f32,
}

/// Frame features of one 16 kHz track, fed as the samples stream past.
#[derive(Debug, Default)]
pub struct ProsodyTrack {
    pending: Vec<f32>,
    frames: Vec<Frame>,
}

impl ProsodyTrack {
    pub fn push(&mut self, samples: &[f32]) {
        self.pending.extend_from_slice(samples);
        let mut start = 0;
        while start + WINDOW <= self.pending.len() {
            self.frames
                .push(analyse_frame(&self.pending[start..start + WINDOW]));
            start += HOP;
        }
        self.pending.drain(..start);
    }

    /// The statistics of the frames between two call times, or None without sounding frames.
    pub fn summarise(&self, start_ms: u64, end_ms: u64) -> Option<Prosody> {
        let frame_ms = (HOP * 1000 / RATE) as u64;
        let a = ((start_ms / frame_ms) as usize).min(self.frames.len());
        let b = (end_ms.div_ceil(frame_ms) as usize).clamp(a, self.frames.len());
        let sounding: Vec<&Frame> = self.frames[a..b]
            .iter()
            .filter(|f| f.energy_db > SILENCE_DB)
            .collect();
        if sounding.is_empty() {
            return None;
        }
        let energy: Vec<f32> = sounding.iter().map(|f| f.energy_db).collect();
        // Pitch in semitones, so that variation means the same for low and high voices.
        let semitones: Vec<f32> = sounding
            .iter()
            .filter(|f| f.f0_hz > 0.0)
            .map(|f| 12.0 * (f.f0_hz / 100.0).log2())
            .collect();
        let (energy_mean, energy_sd) = mean_sd(&energy);
        let (pitch_mean, pitch_sd) = mean_sd(&semitones);
        Some(Prosody {
            energy_db: energy_mean,
            energy_sd_db: energy_sd,
            pitch_hz: (!semitones.is_empty()).then(|| 100.0 * 2f32.powf(pitch_mean / 12.0)),
            pitch_sd_semitones: (semitones.len() >= 5).then_some(pitch_sd),
            voiced_ratio: semitones.len() as f32 / sounding.len() as f32,
        })
    }
}

/// What a turn sounded like.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Prosody {
    /// Mean loudness of the sounding frames, dBFS.
    pub energy_db: f32,
    pub energy_sd_db: f32,
    /// Typical pitch (geometric mean of the voiced frames).
    pub pitch_hz: Option<f32>,
    /// Pitch variation: lively speech moves by several semitones, flat speech by about one.
    pub pitch_sd_semitones: Option<f32>,
    pub voiced_ratio: f32,
}

fn mean_sd(v: &[f32]) -> (f32, f32) {
    if v.is_empty() {
        return (0.0, 0.0);
    }
    let n = v.len() as f32;
    let mean = v.iter().sum::<f32>() / n;
    let var = v.iter().map(|x| (x - mean).powi(2)).sum::<f32>() / n;
    (mean, var.sqrt())
}

/// Loudness, and pitch from the normalised autocorrelation peak in the speech range.
fn analyse_frame(w: &[f32]) -> Frame {
    let energy = w.iter().map(|x| x * x).sum::<f32>() / w.len() as f32;
    let energy_db = 10.0 * energy.max(1e-12).log10();
    if energy_db <= SILENCE_DB {
        return Frame {
            energy_db,
            f0_hz: 0.0,
        };
    }
    let mean = w.iter().sum::<f32>() / w.len() as f32;
    let x: Vec<f32> = w.iter().map(|s| s - mean).collect();
    let (min_lag, max_lag) = (
        (RATE as f32 / MAX_F0) as usize,
        (RATE as f32 / MIN_F0) as usize,
    );
    let n = x.len() - max_lag;
    let head_energy: f32 = x[..n].iter().map(|s| s * s).sum();
    let nccf = |lag: usize| {
        let (mut dot, mut e) = (0.0f32, 0.0f32);
        for i in 0..n {
            dot += x[i] * x[i + lag];
            e += x[i + lag] * x[i + lag];
        }
        dot / (head_energy * e).sqrt().max(1e-9)
    };
    let (r, mut lag) = (min_lag..=max_lag)
        .map(|lag| (nccf(lag), lag))
        .fold((0.0f32, 0), |a, b| if b.0 > a.0 { b } else { a });
    if r < VOICING {
        return Frame {
            energy_db,
            f0_hz: 0.0,
        };
    }
    // Prefer the shortest lag that correlates nearly as well: a multiple of the period would
    // halve f0.
    let best = lag;
    for k in 2..=4 {
        let sub = best / k;
        if sub >= min_lag && nccf(sub) >= 0.9 * r {
            lag = sub;
        }
    }
    Frame {
        energy_db,
        f0_hz: RATE as f32 / lag as f32,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tone(hz: f32, amp: f32, secs: f32) -> Vec<f32> {
        (0..(secs * RATE as f32) as usize)
            .map(|i| amp * (2.0 * std::f32::consts::PI * hz * i as f32 / RATE as f32).sin())
            .collect()
    }

    #[test]
    fn pitch_and_energy_of_a_tone() {
        let mut t = ProsodyTrack::default();
        // Fed in odd-sized pieces: the streaming must not change the frames.
        for piece in tone(150.0, 0.1, 1.0).chunks(777) {
            t.push(piece);
        }
        let p = t.summarise(0, 1_000).unwrap();
        assert!((p.pitch_hz.unwrap() - 150.0).abs() < 3.0, "{p:?}");
        assert!(p.pitch_sd_semitones.unwrap() < 0.2, "{p:?}");
        // A sine of amplitude 0.1 has an RMS of 0.0707: -23 dBFS.
        assert!((p.energy_db + 23.0).abs() < 0.5, "{p:?}");
        assert!(p.voiced_ratio > 0.95);
    }

    #[test]
    fn a_gliding_voice_varies_more_than_a_flat_one() {
        let glide: Vec<f32> = {
            let mut phase = 0.0f32;
            (0..RATE)
                .map(|i| {
                    let hz = 120.0 + 120.0 * i as f32 / RATE as f32; // an octave up
                    phase += 2.0 * std::f32::consts::PI * hz / RATE as f32;
                    0.1 * phase.sin()
                })
                .collect()
        };
        let mut t = ProsodyTrack::default();
        t.push(&glide);
        let sd = t.summarise(0, 1_000).unwrap().pitch_sd_semitones.unwrap();
        assert!((2.5..4.5).contains(&sd), "an octave glide: sd {sd}");
    }

    #[test]
    fn silence_has_no_prosody() {
        let mut t = ProsodyTrack::default();
        t.push(&vec![0.0; RATE]);
        assert_eq!(t.summarise(0, 1_000), None);
        assert_eq!(t.summarise(5_000, 6_000), None, "past the end");
    }
}
