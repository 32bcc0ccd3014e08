//! Audio ingest: decode, channels as roles, resample, voice activity detection, prosody; and
//! masked copies of recordings (redacted PII).

pub mod channels;
pub mod decode;
pub mod mask;
pub mod prosody;
pub mod raw;
pub mod resample;
pub mod vad;
pub mod wav;

pub use decode::{Audio, DecodeError, StreamDecoder, decode};

#[derive(Debug, thiserror::Error)]
pub enum AudioError {
    #[error(transparent)]
    Decode(#[from] DecodeError),
    #[error(transparent)]
    Resample(#[from] resample::ResampleError),
}

/// A short clip decoded, mixed down and brought to 16 kHz mono (tests, VAD checks).
pub fn load_16k_mono(bytes: Vec<u8>) -> Result<(Audio, Vec<f32>), AudioError> {
    let audio = decode(bytes)?;
    let n = audio.channels.len().max(1) as f32;
    let frames = audio.channels.first().map_or(0, Vec::len);
    let mono: Vec<f32> = (0..frames)
        .map(|i| audio.channels.iter().map(|c| c[i]).sum::<f32>() / n)
        .collect();
    let mono = resample::to_16k(&mono, audio.sample_rate)?;
    Ok((audio, mono))
}
