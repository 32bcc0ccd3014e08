//! The speaker encoder's input: a 40-band power mel spectrogram (not log) of 25 ms frames every
//! 10 ms, as resemblyzer computes it with librosa (periodic Hann window, frames centred by 200
//! zeros each side, Slaney mel scale with area-normalised filters from 0 to 8 kHz).

use realfft::{RealFftPlanner, RealToComplex};
use std::sync::{Arc, OnceLock};

pub const BANDS: usize = 40;
const N_FFT: usize = 400;
pub const HOP: usize = 160;
const BINS: usize = N_FFT / 2 + 1;

/// Slaney's mel scale: linear below 1 kHz, logarithmic above.
fn hz_to_mel(hz: f64) -> f64 {
    let (f_sp, min_log_hz, min_log_mel) = (200.0 / 3.0, 1000.0, 15.0);
    if hz < min_log_hz {
        hz / f_sp
    } else {
        min_log_mel + (hz / min_log_hz).ln() / (6.4f64.ln() / 27.0)
    }
}

fn mel_to_hz(mel: f64) -> f64 {
    let (f_sp, min_log_hz, min_log_mel) = (200.0 / 3.0, 1000.0, 15.0);
    if mel < min_log_mel {
        mel * f_sp
    } else {
        min_log_hz * ((mel - min_log_mel) * (6.4f64.ln() / 27.0)).exp()
    }
}

/// The triangular filters, [band][bin].
pub fn filterbank() -> &'static [[f32; BINS]; BANDS] {
    static FB: OnceLock<[[f32; BINS]; BANDS]> = OnceLock::new();
    FB.get_or_init(|| {
        let top = hz_to_mel(8_000.0);
        let edges: Vec<f64> = (0..BANDS + 2)
            .map(|i| mel_to_hz(top * i as f64 / (BANDS + 1) as f64))
            .collect();
        let mut fb = [[0f32; BINS]; BANDS];
        for (band, row) in fb.iter_mut().enumerate() {
            let (lo, mid, hi) = (edges[band], edges[band + 1], edges[band + 2]);
            let area = 2.0 / (hi - lo);
            for (bin, w) in row.iter_mut().enumerate() {
                let f = bin as f64 * 8_000.0 / (BINS - 1) as f64;
                let rising = (f - lo) / (mid - lo);
                let falling = (hi - f) / (hi - mid);
                *w = (rising.min(falling).max(0.0) * area) as f32;
            }
        }
        fb
    })
}

/// Computes mel frames of 16 kHz audio.
pub struct MelSpectrogram {
    fft: Arc<dyn RealToComplex<f32>>,
    window: Vec<f32>,
}

impl Default for MelSpectrogram {
    fn default() -> Self {
        let window = (0..N_FFT)
            .map(|n| 0.5 - 0.5 * (2.0 * std::f32::consts::PI * n as f32 / N_FFT as f32).cos())
            .collect();
        Self {
            fft: RealFftPlanner::new().plan_fft_forward(N_FFT),
            window,
        }
    }
}

impl MelSpectrogram {
    /// `1 + samples / 160` frames; frame i is centred on sample 160·i.
    pub fn frames(&self, samples: &[f32]) -> Vec<[f32; BANDS]> {
        let pad = N_FFT / 2;
        let mut padded = vec![0f32; samples.len() + 2 * pad];
        padded[pad..pad + samples.len()].copy_from_slice(samples);
        let fb = filterbank();
        let mut input = self.fft.make_input_vec();
        let mut spectrum = self.fft.make_output_vec();
        let mut power = [0f32; BINS];
        (0..1 + samples.len() / HOP)
            .map(|i| {
                let frame = &padded[i * HOP..i * HOP + N_FFT];
                for ((x, s), w) in input.iter_mut().zip(frame).zip(&self.window) {
                    *x = s * w;
                }
                self.fft
                    .process(&mut input, &mut spectrum)
                    .expect("buffers sized by the plan");
                for (p, c) in power.iter_mut().zip(&spectrum) {
                    *p = c.norm_sqr();
                }
                let mut mel = [0f32; BANDS];
                for (m, row) in mel.iter_mut().zip(fb) {
                    *m = row.iter().zip(&power).map(|(w, p)| w * p).sum();
                }
                mel
            })
            .collect()
    }
}

/// Raises quiet audio to −30 dBFS (never lowers it), as the encoder was trained.
pub fn normalize_volume(samples: &mut [f32]) {
    if samples.is_empty() {
        return;
    }
    let mean_square = samples.iter().map(|s| s * s).sum::<f32>() / samples.len() as f32;
    let dbfs = 10.0 * mean_square.max(1e-20).log10();
    if dbfs < -30.0 {
        let gain = 10f32.powf((-30.0 - dbfs) / 20.0);
        samples.iter_mut().for_each(|s| *s *= gain);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_sine_lands_in_its_band() {
        let samples: Vec<f32> = (0..16_000)
            .map(|n| (2.0 * std::f32::consts::PI * 500.0 * n as f32 / 16_000.0).sin())
            .collect();
        let frames = MelSpectrogram::default().frames(&samples);
        assert_eq!(frames.len(), 101);
        let mid = &frames[50];
        let loudest = (0..BANDS)
            .max_by(|&a, &b| mid[a].total_cmp(&mid[b]))
            .unwrap();
        // 500 Hz is 7.5 on the Slaney scale; band centres are 0.97 mel apart.
        assert!((6..=8).contains(&loudest), "band {loudest}");
    }

    #[test]
    fn quiet_audio_is_raised_and_loud_audio_is_kept() {
        let mut quiet = vec![0.001f32; 100];
        normalize_volume(&mut quiet);
        assert!((quiet[0] - 0.0316).abs() < 1e-3, "{}", quiet[0]);
        let mut loud = vec![0.5f32; 100];
        normalize_volume(&mut loud);
        assert_eq!(loud[0], 0.5);
    }
}
