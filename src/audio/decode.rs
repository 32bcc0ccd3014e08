//! Decoding any supported container/codec into per-channel f32 samples.

use std::io::Cursor;
use symphonia::core::codecs::audio::AudioDecoderOptions;
use symphonia::core::errors::Error as SymphoniaError;
use symphonia::core::formats::probe::Hint;
use symphonia::core::formats::{FormatOptions, TrackType};
use symphonia::core::io::{MediaSourceStream, MediaSourceStreamOptions};
use symphonia::core::meta::MetadataOptions;

/// Longest recording we accept, so that a bogus header cannot make us allocate without bound.
pub const MAX_DURATION_SECS: u64 = 4 * 3600;
const MAX_CHANNELS: usize = 8;

#[derive(Debug, thiserror::Error)]
pub enum DecodeError {
    #[error("empty input (0 bytes)")]
    Empty,
    #[error("not a recognised audio format ({0})")]
    UnknownFormat(String),
    #[error("no audio track")]
    NoAudioTrack,
    #[error("unsupported audio: {0}")]
    Unsupported(String),
    #[error("corrupt audio: {0}")]
    Corrupt(String),
    #[error("no audio samples decoded")]
    NoSamples,
}

/// Decoded audio: one Vec per channel, at the file's own sample rate.
#[derive(Debug, Clone)]
pub struct Audio {
    pub sample_rate: u32,
    pub channels: Vec<Vec<f32>>,
}

impl Audio {
    pub fn duration_ms(&self) -> u64 {
        let frames = self.channels.first().map_or(0, Vec::len) as u64;
        frames * 1000 / u64::from(self.sample_rate.max(1))
    }

    /// The average of all channels (the mono track).
    pub fn mixdown(&self) -> Vec<f32> {
        let n = self.channels.len().max(1) as f32;
        let frames = self.channels.first().map_or(0, Vec::len);
        (0..frames)
            .map(|i| self.channels.iter().map(|c| c[i]).sum::<f32>() / n)
            .collect()
    }
}

/// Decodes a whole recording held in memory. The format is detected from the content.
pub fn decode(bytes: Vec<u8>) -> Result<Audio, DecodeError> {
    if bytes.is_empty() {
        return Err(DecodeError::Empty);
    }
    let mss = MediaSourceStream::new(
        Box::new(Cursor::new(bytes)),
        MediaSourceStreamOptions::default(),
    );
    let mut format = symphonia::default::get_probe()
        .probe(
            &Hint::new(),
            mss,
            FormatOptions::default(),
            MetadataOptions::default(),
        )
        .map_err(|e| DecodeError::UnknownFormat(e.to_string()))?;
    let track = format
        .default_track(TrackType::Audio)
        .ok_or(DecodeError::NoAudioTrack)?;
    let track_id = track.id;
    let params = track
        .codec_params
        .as_ref()
        .and_then(|p| p.audio())
        .ok_or(DecodeError::NoAudioTrack)?
        .clone();
    let mut decoder = symphonia::default::get_codecs()
        .make_audio_decoder(&params, &AudioDecoderOptions::default())
        .map_err(|e| DecodeError::Unsupported(e.to_string()))?;

    let mut channels: Vec<Vec<f32>> = Vec::new();
    let mut sample_rate = params.sample_rate.unwrap_or(0);
    let mut planar: Vec<Vec<f32>> = Vec::new();
    loop {
        let packet = match format.next_packet() {
            Ok(Some(p)) => p,
            Ok(None) => break,
            // A truncated file ends early: keep what decoded.
            Err(SymphoniaError::IoError(e)) if e.kind() == std::io::ErrorKind::UnexpectedEof => {
                break;
            }
            Err(e) => return Err(DecodeError::Corrupt(e.to_string())),
        };
        if packet.track_id != track_id {
            continue;
        }
        let buf = match decoder.decode(&packet) {
            Ok(buf) => buf,
            // One damaged packet is skipped, as players do.
            Err(SymphoniaError::DecodeError(_)) => continue,
            Err(e) => return Err(DecodeError::Corrupt(e.to_string())),
        };
        let spec = buf.spec();
        let n_channels = spec.channels().count();
        if n_channels == 0 || n_channels > MAX_CHANNELS {
            return Err(DecodeError::Unsupported(format!(
                "{n_channels} channels (1 to {MAX_CHANNELS} supported)"
            )));
        }
        sample_rate = spec.rate();
        if !(4_000..=384_000).contains(&sample_rate) {
            return Err(DecodeError::Unsupported(format!(
                "sample rate {sample_rate} Hz"
            )));
        }
        if channels.is_empty() {
            channels = vec![Vec::new(); n_channels];
        } else if channels.len() != n_channels {
            return Err(DecodeError::Corrupt(
                "channel count changes mid-stream".into(),
            ));
        }
        buf.copy_to_vecs_planar(&mut planar);
        for (dst, src) in channels.iter_mut().zip(&planar) {
            dst.extend_from_slice(src);
        }
        if channels[0].len() as u64 > MAX_DURATION_SECS * u64::from(sample_rate) {
            return Err(DecodeError::Unsupported(format!(
                "longer than {} hours",
                MAX_DURATION_SECS / 3600
            )));
        }
    }
    if channels.first().is_none_or(Vec::is_empty) {
        return Err(DecodeError::NoSamples);
    }
    Ok(Audio {
        sample_rate,
        channels,
    })
}
