//! Voiceprints: resemblyzer's GE2E encoder (converted to ONNX at install) over the mel frames of
//! one voice. Two stretches of the same voice in one call are about 0.9 similar, two voices
//! about 0.5–0.8: compare voiceprints within a call or a channel, never by one fixed threshold
//! across channels.

use super::mel::{BANDS, MelSpectrogram, normalize_volume};
use crate::onnx::{OnnxError, run_err};
use ndarray::{Array1, Array3};
use ort::session::Session;
use ort::value::Tensor;
use std::sync::{Arc, Mutex, PoisonError};

pub const DIM: usize = 256;

/// A unit-length 256-d speaker embedding.
pub type Voiceprint = Vec<f32>;

/// Cosine similarity of two voiceprints (unit length, so their dot product).
pub fn similarity(a: &[f32], b: &[f32]) -> f32 {
    a.iter().zip(b).map(|(x, y)| x * y).sum()
}

/// The speaker encoder; clones share one session.
#[derive(Clone)]
pub struct SpeakerEncoder {
    session: Arc<Mutex<Session>>,
    mel: Arc<MelSpectrogram>,
}

impl SpeakerEncoder {
    pub fn new(session: Session) -> Self {
        Self {
            session: Arc::new(Mutex::new(session)),
            mel: Arc::new(MelSpectrogram::default()),
        }
    }

    /// The voiceprint of one voice's 16 kHz audio (at least a frame of it), raised to the level
    /// the encoder was trained at.
    pub fn embed(&self, samples: &[f32]) -> Result<Voiceprint, OnnxError> {
        let mut samples = samples.to_vec();
        normalize_volume(&mut samples);
        let mel = self.mel.frames(&samples);
        Ok(self.embed_mel(&[mel])?.remove(0))
    }

    /// Voiceprints of several mel sequences in one run; shorter ones are padded and read only to
    /// their own end.
    pub fn embed_mel(&self, mels: &[Vec<[f32; BANDS]>]) -> Result<Vec<Voiceprint>, OnnxError> {
        let longest = mels.iter().map(Vec::len).max().unwrap_or(0);
        if longest == 0 {
            return Ok(vec![vec![0.0; DIM]; mels.len()]);
        }
        let mut x = Array3::<f32>::zeros((mels.len(), longest, BANDS));
        for (b, mel) in mels.iter().enumerate() {
            for (t, frame) in mel.iter().enumerate() {
                for (k, v) in frame.iter().enumerate() {
                    x[[b, t, k]] = *v;
                }
            }
        }
        let lengths = Array1::from_iter(mels.iter().map(|m| m.len().max(1) as i32));
        let x = Tensor::from_array(x).map_err(run_err)?;
        let lengths = Tensor::from_array(lengths).map_err(run_err)?;
        let mut session = self.session.lock().unwrap_or_else(PoisonError::into_inner);
        let outputs = session
            .run(ort::inputs!["mel" => x, "frames" => lengths])
            .map_err(run_err)?;
        let (_, e) = outputs["embedding"]
            .try_extract_tensor::<f32>()
            .map_err(run_err)?;
        Ok(e.chunks_exact(DIM).map(<[f32]>::to_vec).collect())
    }

    pub fn mel(&self) -> &MelSpectrogram {
        &self.mel
    }
}
