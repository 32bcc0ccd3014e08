//! Who speaks when, on audio that does not say it by its channels: mono recordings and stereo
//! files that carry one mix twice.
//!
//! `segmentation` finds, per 17 ms frame of a 10 s window, how many voices speak (pyannote
//! segmentation-3.0); `mel` and `encoder` turn a stretch of one voice into a 256-d voiceprint
//! (resemblyzer's GE2E network). The diarizer built on them clusters the voiceprints into the
//! call's speakers.

pub mod cluster;
pub mod diarize;
pub mod encoder;
pub mod mel;
pub mod segmentation;

pub use diarize::{Diarization, SpeakerTurn, diarize};
pub use encoder::{SpeakerEncoder, Voiceprint};
pub use segmentation::{FRAME_SAMPLES, Segmenter, WINDOW_SAMPLES};

/// Both models work on 16 kHz mono audio.
pub const SAMPLE_RATE: u32 = 16_000;

/// One voice's voiceprint and the speech it was made from.
#[derive(Debug, Clone, PartialEq)]
pub struct VoiceSample {
    pub voiceprint: Voiceprint,
    pub speech_ms: u64,
}

/// The two speaker models, opened once and shared by every call.
pub struct SpeakerModels {
    pub segmenter: Segmenter,
    pub encoder: SpeakerEncoder,
}

impl SpeakerModels {
    /// Who speaks when in a track of 16 kHz audio, into at most `max_speakers`.
    pub fn diarize(
        &self,
        audio: &[f32],
        max_speakers: usize,
    ) -> Result<Diarization, crate::onnx::OnnxError> {
        diarize(&self.segmenter, &self.encoder, audio, max_speakers)
    }

    /// The voiceprint of a recording of one voice, if it holds enough speech for one.
    pub fn voice(&self, audio: &[f32]) -> Result<Option<VoiceSample>, crate::onnx::OnnxError> {
        let d = self.diarize(audio, 1)?;
        Ok(d.voiceprints.first().map(|v| VoiceSample {
            voiceprint: v.clone(),
            speech_ms: d.turns.iter().map(|t| t.end_ms - t.start_ms).sum(),
        }))
    }
}
