//! pyannote segmentation-3.0: for each frame of a 10 s window of 16 kHz audio, which of up to
//! three local speakers talk (at most two at once). Local speakers are numbered afresh in every
//! window; the diarizer links them across windows by voiceprint.

use crate::onnx::{OnnxError, run_err};
use ndarray::Array3;
use ort::session::Session;
use ort::value::Tensor;
use std::sync::{Arc, Mutex, PoisonError};

/// One window: 10 s.
pub const WINDOW_SAMPLES: usize = 160_000;
/// Frames advance by 270 samples (16.875 ms); frame f sees samples [270 f, 270 f + 991).
pub const FRAME_SAMPLES: usize = 270;
pub const RECEPTIVE_FIELD: usize = 991;
/// Frames in one full window.
pub const WINDOW_FRAMES: usize = (WINDOW_SAMPLES - 721) / FRAME_SAMPLES;

/// The seven classes of the model's output, as the local speakers they mean: none, one of
/// three, or one of three pairs.
const POWERSET: [[bool; 3]; 7] = [
    [false, false, false],
    [true, false, false],
    [false, true, false],
    [false, false, true],
    [true, true, false],
    [true, false, true],
    [false, true, true],
];

/// Who of a window's three local speakers talks in one frame.
pub type Active = [bool; 3];

/// The segmentation model; clones share one session.
#[derive(Clone)]
pub struct Segmenter {
    session: Arc<Mutex<Session>>,
}

impl Segmenter {
    pub fn new(session: Session) -> Self {
        Self {
            session: Arc::new(Mutex::new(session)),
        }
    }

    /// Per-frame log-probabilities of the seven classes for each window (each
    /// `WINDOW_SAMPLES` long; a short last window is padded with silence by the caller).
    pub fn log_probs(&self, windows: &[&[f32]]) -> Result<Vec<Vec<[f32; 7]>>, OnnxError> {
        let mut x = Array3::<f32>::zeros((windows.len(), 1, WINDOW_SAMPLES));
        for (b, w) in windows.iter().enumerate() {
            let n = w.len().min(WINDOW_SAMPLES);
            for (i, s) in w[..n].iter().enumerate() {
                x[[b, 0, i]] = *s;
            }
        }
        let x = Tensor::from_array(x).map_err(run_err)?;
        let mut session = self.session.lock().unwrap_or_else(PoisonError::into_inner);
        let outputs = session.run(ort::inputs!["input" => x]).map_err(run_err)?;
        let (shape, lp) = outputs["output"]
            .try_extract_tensor::<f32>()
            .map_err(run_err)?;
        let frames = shape[1] as usize;
        Ok(lp
            .chunks_exact(frames * 7)
            .map(|w| {
                w.chunks_exact(7)
                    .map(|c| c.try_into().expect("7 classes"))
                    .collect()
            })
            .collect())
    }

    /// Who talks in each frame of each window: the most likely class.
    pub fn activity(&self, windows: &[&[f32]]) -> Result<Vec<Vec<Active>>, OnnxError> {
        Ok(self
            .log_probs(windows)?
            .into_iter()
            .map(|w| w.iter().map(|lp| POWERSET[most_likely(lp)]).collect())
            .collect())
    }
}

pub fn most_likely(lp: &[f32; 7]) -> usize {
    (0..7).max_by(|&a, &b| lp[a].total_cmp(&lp[b])).unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_window_has_589_frames() {
        assert_eq!(WINDOW_FRAMES, 589);
        assert_eq!(
            POWERSET[most_likely(&[-9., -9., -9., -9., -0.1, -9., -9.])],
            [true, true, false]
        );
    }
}
