//! Audio ingest: decode, resample, voice activity detection.

pub mod decode;
pub mod resample;
pub mod vad;

pub use decode::{Audio, DecodeError, decode};

/// A file decoded and brought to 16 kHz mono, ready for VAD and Whisper.
pub fn load_16k_mono(bytes: Vec<u8>) -> Result<(Audio, Vec<f32>), AudioError> {
    let audio = decode(bytes)?;
    let mono = resample::to_16k(&audio.mixdown(), audio.sample_rate)?;
    Ok((audio, mono))
}

#[derive(Debug, thiserror::Error)]
pub enum AudioError {
    #[error(transparent)]
    Decode(#[from] DecodeError),
    #[error(transparent)]
    Resample(#[from] resample::ResampleError),
}
