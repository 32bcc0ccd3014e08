//! A copy of a recording with stretches beeped over or silenced (where PII was redacted), as a
//! 16-bit WAV at the recording's own rate and channels.

use super::{DecodeError, StreamDecoder};
use std::io::{Seek, SeekFrom, Write};

/// What replaces a redacted stretch of audio.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum AudioMask {
    /// A 1 kHz tone at −12 dBFS, so that a listener hears that something was cut.
    Beep,
    Silence,
}

#[derive(Debug, thiserror::Error)]
pub enum MaskError {
    #[error(transparent)]
    Decode(#[from] DecodeError),
    #[error("writing the WAV: {0}")]
    Io(#[from] std::io::Error),
}

const BEEP_HZ: f64 = 1_000.0;
const BEEP_LEVEL: f64 = 0.25;

/// Decodes the recording chunk by chunk and writes it to `out` with every `(start_ms, end_ms)`
/// stretch masked on all channels.
pub fn write_masked_wav(
    mut decoder: StreamDecoder,
    spans_ms: &[(u64, u64)],
    mask: AudioMask,
    out: &mut (impl Write + Seek),
) -> Result<(), MaskError> {
    let (rate, channels) = (decoder.sample_rate(), decoder.channels().max(1));
    let spans: Vec<(u64, u64)> = spans_ms
        .iter()
        .map(|&(s, e)| (s * u64::from(rate) / 1000, e * u64::from(rate) / 1000))
        .collect();
    write_header(out, rate, channels, 0)?;
    let mut frame: u64 = 0;
    let mut bytes: u64 = 0;
    let mut buf = Vec::new();
    while let Some(chunk) = decoder.next_chunk()? {
        buf.clear();
        for i in 0..chunk.first().map_or(0, Vec::len) {
            let masked = spans.iter().any(|&(s, e)| (s..e).contains(&frame));
            for channel in &chunk {
                let x = match (masked, mask) {
                    (false, _) => f64::from(channel[i]),
                    (true, AudioMask::Silence) => 0.0,
                    (true, AudioMask::Beep) => {
                        let t = frame as f64 / f64::from(rate);
                        BEEP_LEVEL * (2.0 * std::f64::consts::PI * BEEP_HZ * t).sin()
                    }
                };
                let sample = (x.clamp(-1.0, 1.0) * 32767.0).round() as i16;
                buf.extend_from_slice(&sample.to_le_bytes());
            }
            frame += 1;
        }
        out.write_all(&buf)?;
        bytes += buf.len() as u64;
    }
    out.seek(SeekFrom::Start(0))?;
    write_header(out, rate, channels, bytes)?;
    out.flush()?;
    Ok(())
}

fn write_header(
    out: &mut impl Write,
    rate: u32,
    channels: usize,
    data: u64,
) -> std::io::Result<()> {
    let data = u32::try_from(data).unwrap_or(u32::MAX - 36);
    let block = channels as u16 * 2;
    out.write_all(b"RIFF")?;
    out.write_all(&(36 + data).to_le_bytes())?;
    out.write_all(b"WAVEfmt ")?;
    out.write_all(&16u32.to_le_bytes())?;
    out.write_all(&1u16.to_le_bytes())?; // PCM
    out.write_all(&(channels as u16).to_le_bytes())?;
    out.write_all(&rate.to_le_bytes())?;
    out.write_all(&(rate * u32::from(block)).to_le_bytes())?;
    out.write_all(&block.to_le_bytes())?;
    out.write_all(&16u16.to_le_bytes())?;
    out.write_all(b"data")?;
    out.write_all(&data.to_le_bytes())
}
