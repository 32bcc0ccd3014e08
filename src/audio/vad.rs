//! Voice activity detection with Silero VAD (ONNX), over 16 kHz mono audio.

use crate::onnx::{OnnxError, run_err};
use ndarray::{Array2, Array3, arr0};
use ort::session::Session;
use ort::value::Tensor;

const FRAME: usize = 512; // 32 ms at 16 kHz
const CONTEXT: usize = 64;
const SAMPLE_RATE: i64 = 16_000;

/// Tunable thresholds (Silero's recommended defaults).
#[derive(Debug, Clone)]
pub struct VadParams {
    /// A frame whose speech probability reaches this starts (or continues) speech.
    pub threshold: f32,
    /// Speech ends only once the probability falls below this (hysteresis).
    pub neg_threshold: f32,
    /// Silence shorter than this does not split a segment.
    pub min_silence_ms: u32,
    /// Segments shorter than this are dropped.
    pub min_speech_ms: u32,
    /// Padding added to both ends of a segment.
    pub speech_pad_ms: u32,
}

impl Default for VadParams {
    fn default() -> Self {
        Self {
            threshold: 0.5,
            neg_threshold: 0.35,
            min_silence_ms: 100,
            min_speech_ms: 250,
            speech_pad_ms: 30,
        }
    }
}

/// A stretch of speech, in milliseconds from the start of the audio.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SpeechSegment {
    pub start_ms: u64,
    pub end_ms: u64,
}

pub struct Vad {
    session: Session,
}

impl Vad {
    pub fn new(session: Session) -> Self {
        Self { session }
    }

    /// Speech probability for each 32 ms frame.
    pub fn frame_probabilities(&mut self, audio: &[f32]) -> Result<Vec<f32>, OnnxError> {
        let mut state = Array3::<f32>::zeros((2, 1, 128));
        let mut context = vec![0.0f32; CONTEXT];
        let sr = Tensor::from_array(arr0(SAMPLE_RATE)).map_err(run_err)?;
        let mut probs = Vec::with_capacity(audio.len() / FRAME + 1);
        for frame in audio.chunks(FRAME) {
            let mut input = Vec::with_capacity(CONTEXT + FRAME);
            input.extend_from_slice(&context);
            input.extend_from_slice(frame);
            input.resize(CONTEXT + FRAME, 0.0); // the last frame is zero-padded
            context.copy_from_slice(&input[FRAME..]);
            let x = Tensor::from_array(
                Array2::from_shape_vec((1, CONTEXT + FRAME), input).map_err(run_err)?,
            )
            .map_err(run_err)?;
            let s = Tensor::from_array(state.clone()).map_err(run_err)?;
            let outputs = self
                .session
                .run(ort::inputs!["input" => x, "state" => s, "sr" => &sr])
                .map_err(run_err)?;
            let (_, p) = outputs["output"]
                .try_extract_tensor::<f32>()
                .map_err(run_err)?;
            probs.push(p[0]);
            let (_, next) = outputs["stateN"]
                .try_extract_tensor::<f32>()
                .map_err(run_err)?;
            state
                .as_slice_mut()
                .expect("contiguous")
                .copy_from_slice(next);
        }
        Ok(probs)
    }

    pub fn segments(
        &mut self,
        audio: &[f32],
        params: &VadParams,
    ) -> Result<Vec<SpeechSegment>, OnnxError> {
        let probs = self.frame_probabilities(audio)?;
        Ok(segments_from_probabilities(&probs, audio.len(), params))
    }
}

/// Hysteresis over frame probabilities, then padding and merging.
pub fn segments_from_probabilities(
    probs: &[f32],
    n_samples: usize,
    p: &VadParams,
) -> Vec<SpeechSegment> {
    let frame_ms = (FRAME as u64 * 1000) / SAMPLE_RATE as u64;
    let total_ms = n_samples as u64 * 1000 / SAMPLE_RATE as u64;
    let mut raw: Vec<(u64, u64)> = Vec::new();
    let mut start: Option<u64> = None;
    let mut silence_since: Option<u64> = None;
    for (i, &prob) in probs.iter().enumerate() {
        let t = i as u64 * frame_ms;
        match start {
            None if prob >= p.threshold => {
                start = Some(t);
                silence_since = None;
            }
            None => {}
            Some(s) => {
                if prob >= p.threshold {
                    silence_since = None;
                } else if prob < p.neg_threshold {
                    let since = *silence_since.get_or_insert(t);
                    if t + frame_ms - since >= u64::from(p.min_silence_ms) {
                        raw.push((s, since));
                        start = None;
                        silence_since = None;
                    }
                }
            }
        }
    }
    if let Some(s) = start {
        raw.push((s, silence_since.unwrap_or(total_ms)));
    }
    let pad = u64::from(p.speech_pad_ms);
    let mut out: Vec<SpeechSegment> = Vec::new();
    for (s, e) in raw
        .into_iter()
        .filter(|(s, e)| e - s >= u64::from(p.min_speech_ms))
    {
        let seg = SpeechSegment {
            start_ms: s.saturating_sub(pad),
            end_ms: (e + pad).min(total_ms),
        };
        match out.last_mut() {
            Some(last) if seg.start_ms <= last.end_ms => last.end_ms = seg.end_ms,
            _ => out.push(seg),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hysteresis_bridges_short_dips_and_drops_blips() {
        let p = VadParams::default();
        // 32 ms frames: silence, 1 s speech with one 64 ms dip, silence, a 64 ms blip, silence.
        let mut probs = vec![0.0; 10];
        probs.extend(vec![0.9; 15]);
        probs.extend(vec![0.1; 2]);
        probs.extend(vec![0.9; 15]);
        probs.extend(vec![0.0; 20]);
        probs.extend(vec![0.9; 2]);
        probs.extend(vec![0.0; 10]);
        let n = probs.len() * FRAME;
        let segs = segments_from_probabilities(&probs, n, &p);
        assert_eq!(segs.len(), 1, "{segs:?}");
        assert_eq!(segs[0].start_ms, 320 - 30);
        assert_eq!(segs[0].end_ms, 42 * 32 + 30);
    }
}
