//! Resampling to the 16 kHz that Silero VAD and Whisper expect.

use rubato::{FftFixedIn, Resampler};

pub const TARGET_RATE: u32 = 16_000;
const CHUNK: usize = 1024;

#[derive(Debug, thiserror::Error)]
#[error("cannot resample from {rate} Hz: {detail}")]
pub struct ResampleError {
    pub rate: u32,
    pub detail: String,
}

/// Resamples one channel to 16 kHz, chunk by chunk, trimming the resampler's delay so that
/// output sample `i` lines up with time `i / 16000` s of the input.
pub fn to_16k(samples: &[f32], rate: u32) -> Result<Vec<f32>, ResampleError> {
    if rate == TARGET_RATE {
        return Ok(samples.to_vec());
    }
    let fail = |detail: String| ResampleError { rate, detail };
    let mut resampler = FftFixedIn::<f32>::new(rate as usize, TARGET_RATE as usize, CHUNK, 2, 1)
        .map_err(|e| fail(e.to_string()))?;
    let expected = (samples.len() as u64 * u64::from(TARGET_RATE) / u64::from(rate)) as usize;
    let delay = resampler.output_delay();
    let mut out = Vec::with_capacity(expected + delay + CHUNK);
    let mut pos = 0;
    while samples.len() - pos >= resampler.input_frames_next() {
        let n = resampler.input_frames_next();
        let chunk = resampler
            .process(&[&samples[pos..pos + n]], None)
            .map_err(|e| fail(e.to_string()))?;
        out.extend_from_slice(&chunk[0]);
        pos += n;
    }
    if pos < samples.len() {
        let chunk = resampler
            .process_partial(Some(&[&samples[pos..]]), None)
            .map_err(|e| fail(e.to_string()))?;
        out.extend_from_slice(&chunk[0]);
    }
    // Flush what the filter still holds until the delayed output covers the whole input.
    while out.len() < expected + delay {
        let chunk = resampler
            .process_partial(None::<&[&[f32]]>, None)
            .map_err(|e| fail(e.to_string()))?;
        if chunk[0].is_empty() {
            break;
        }
        out.extend_from_slice(&chunk[0]);
    }
    out.drain(..delay.min(out.len()));
    out.truncate(expected);
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_tone_keeps_its_length_and_timing() {
        for rate in [8_000u32, 22_050, 44_100, 48_000] {
            let secs = 1.5;
            let n = (rate as f64 * secs) as usize;
            // Silence, then a 440 Hz tone starting at exactly 0.5 s.
            let input: Vec<f32> = (0..n)
                .map(|i| {
                    let t = i as f64 / rate as f64;
                    if t < 0.5 {
                        0.0
                    } else {
                        (2.0 * std::f64::consts::PI * 440.0 * t).sin() as f32 * 0.5
                    }
                })
                .collect();
            let out = to_16k(&input, rate).unwrap();
            assert_eq!(out.len(), 24_000, "rate {rate}");
            let onset = out.iter().position(|s| s.abs() > 0.1).unwrap();
            assert!(
                (onset as i64 - 8_000).abs() < 40,
                "rate {rate}: onset at sample {onset}"
            );
        }
    }
}
