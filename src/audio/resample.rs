//! Resampling to the 16 kHz that Silero VAD and Whisper expect, chunk by chunk.

use rubato::{FftFixedIn, Resampler};

pub const TARGET_RATE: u32 = 16_000;
const CHUNK: usize = 1024;

#[derive(Debug, thiserror::Error)]
#[error("cannot resample from {rate} Hz: {detail}")]
pub struct ResampleError {
    pub rate: u32,
    pub detail: String,
}

/// A streaming resampler for one channel. Output sample `i` lines up with time `i / 16000` s of
/// the input: the filter's delay is trimmed at the start and flushed at the end.
pub struct StreamResampler {
    rate: u32,
    inner: Option<FftFixedIn<f32>>,
    pending: Vec<f32>,
    delay_left: usize,
    frames_in: u64,
    frames_out: u64,
}

impl StreamResampler {
    pub fn new(rate: u32) -> Result<Self, ResampleError> {
        let inner = if rate == TARGET_RATE {
            None
        } else {
            Some(
                FftFixedIn::<f32>::new(rate as usize, TARGET_RATE as usize, CHUNK, 2, 1).map_err(
                    |e| ResampleError {
                        rate,
                        detail: e.to_string(),
                    },
                )?,
            )
        };
        let delay_left = inner.as_ref().map_or(0, |r| r.output_delay());
        Ok(Self {
            rate,
            inner,
            pending: Vec::new(),
            delay_left,
            frames_in: 0,
            frames_out: 0,
        })
    }

    fn err(&self, e: impl std::fmt::Display) -> ResampleError {
        ResampleError {
            rate: self.rate,
            detail: e.to_string(),
        }
    }

    fn emit(&mut self, mut chunk: Vec<f32>, out: &mut Vec<f32>) {
        let skip = self.delay_left.min(chunk.len());
        self.delay_left -= skip;
        chunk.drain(..skip);
        // Never emit more than the input's duration covers.
        let expected = self.frames_in * u64::from(TARGET_RATE) / u64::from(self.rate);
        let room = expected.saturating_sub(self.frames_out) as usize;
        chunk.truncate(room);
        self.frames_out += chunk.len() as u64;
        out.extend_from_slice(&chunk);
    }

    /// Feeds input samples; returns the 16 kHz samples that are ready.
    pub fn push(&mut self, input: &[f32]) -> Result<Vec<f32>, ResampleError> {
        self.frames_in += input.len() as u64;
        let Some(inner) = self.inner.as_mut() else {
            self.frames_out += input.len() as u64;
            return Ok(input.to_vec());
        };
        self.pending.extend_from_slice(input);
        let mut out = Vec::new();
        let mut pos = 0;
        let mut chunks = Vec::new();
        while self.pending.len() - pos >= inner.input_frames_next() {
            let n = inner.input_frames_next();
            let chunk = inner
                .process(&[&self.pending[pos..pos + n]], None)
                .map_err(|e| ResampleError {
                    rate: self.rate,
                    detail: e.to_string(),
                })?;
            chunks.push(chunk.into_iter().next().unwrap_or_default());
            pos += n;
        }
        self.pending.drain(..pos);
        for c in chunks {
            self.emit(c, &mut out);
        }
        Ok(out)
    }

    /// Flushes what the filter still holds at the end of the input.
    pub fn finish(&mut self) -> Result<Vec<f32>, ResampleError> {
        let mut out = Vec::new();
        let Some(inner) = self.inner.as_mut() else {
            return Ok(out);
        };
        let mut chunks = Vec::new();
        if !self.pending.is_empty() {
            let c = inner
                .process_partial(Some(&[&self.pending[..]]), None)
                .map_err(|e| self.err(e))?;
            chunks.push(c.into_iter().next().unwrap_or_default());
            self.pending.clear();
        }
        for c in chunks {
            self.emit(c, &mut out);
        }
        let expected = self.frames_in * u64::from(TARGET_RATE) / u64::from(self.rate);
        while self.frames_out < expected {
            let inner = self.inner.as_mut().expect("checked above");
            let c = inner
                .process_partial(None::<&[&[f32]]>, None)
                .map_err(|e| self.err(e))?;
            let c = c.into_iter().next().unwrap_or_default();
            if c.is_empty() {
                break;
            }
            self.emit(c, &mut out);
        }
        Ok(out)
    }
}

/// Resamples a whole channel (for short clips and tests).
pub fn to_16k(samples: &[f32], rate: u32) -> Result<Vec<f32>, ResampleError> {
    let mut r = StreamResampler::new(rate)?;
    let mut out = r.push(samples)?;
    out.extend(r.finish()?);
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tone_after_half_a_second(rate: u32, secs: f64) -> Vec<f32> {
        let n = (rate as f64 * secs) as usize;
        (0..n)
            .map(|i| {
                let t = i as f64 / rate as f64;
                if t < 0.5 {
                    0.0
                } else {
                    (2.0 * std::f64::consts::PI * 440.0 * t).sin() as f32 * 0.5
                }
            })
            .collect()
    }

    #[test]
    fn a_tone_keeps_its_length_and_timing() {
        for rate in [8_000u32, 22_050, 44_100, 48_000] {
            let out = to_16k(&tone_after_half_a_second(rate, 1.5), rate).unwrap();
            assert_eq!(out.len(), 24_000, "rate {rate}");
            let onset = out.iter().position(|s| s.abs() > 0.1).unwrap();
            assert!(
                (onset as i64 - 8_000).abs() < 40,
                "rate {rate}: onset at sample {onset}"
            );
        }
    }

    #[test]
    fn streaming_in_odd_chunks_matches_one_shot() {
        let input = tone_after_half_a_second(44_100, 2.0);
        let whole = to_16k(&input, 44_100).unwrap();
        let mut r = StreamResampler::new(44_100).unwrap();
        let mut streamed = Vec::new();
        for chunk in input.chunks(777) {
            streamed.extend(r.push(chunk).unwrap());
        }
        streamed.extend(r.finish().unwrap());
        assert_eq!(streamed.len(), whole.len());
        let max_diff = streamed
            .iter()
            .zip(&whole)
            .map(|(a, b)| (a - b).abs())
            .fold(0.0f32, f32::max);
        assert!(max_diff < 1e-4, "{max_diff}");
    }
}
