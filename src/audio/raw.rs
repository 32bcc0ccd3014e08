//! Headerless telephony audio as it arrives on a stream: 16-bit little-endian PCM, G.711 μ-law
//! or A-law, interleaved at a declared rate and channel count. Bytes may split anywhere, even
//! inside a sample; what does not make a whole frame waits for the next bytes.

use super::DecodeError;
use super::decode::MAX_CHANNELS;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Encoding {
    Linear16,
    Mulaw,
    Alaw,
}

impl Encoding {
    fn bytes_per_sample(self) -> usize {
        match self {
            Encoding::Linear16 => 2,
            Encoding::Mulaw | Encoding::Alaw => 1,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RawFormat {
    pub encoding: Encoding,
    pub sample_rate: u32,
    pub channels: usize,
}

impl RawFormat {
    pub fn new(encoding: Encoding, sample_rate: u32, channels: usize) -> Result<Self, DecodeError> {
        if !(8_000..=192_000).contains(&sample_rate) {
            return Err(DecodeError::Unsupported(format!(
                "sample rate {sample_rate} Hz (8000–192000 supported)"
            )));
        }
        if channels == 0 || channels > MAX_CHANNELS {
            return Err(DecodeError::Unsupported(format!(
                "{channels} channels (1–{MAX_CHANNELS} supported)"
            )));
        }
        Ok(Self {
            encoding,
            sample_rate,
            channels,
        })
    }

    fn frame_bytes(&self) -> usize {
        self.encoding.bytes_per_sample() * self.channels
    }
}

/// Turns raw bytes into per-channel f32 samples, carrying partial frames over.
#[derive(Debug)]
pub struct RawDecoder {
    format: RawFormat,
    carry: Vec<u8>,
}

impl RawDecoder {
    pub fn new(format: RawFormat) -> Self {
        Self {
            format,
            carry: Vec::new(),
        }
    }

    pub fn format(&self) -> RawFormat {
        self.format
    }

    /// The whole frames in `carry + bytes`, one Vec per channel.
    pub fn push(&mut self, bytes: &[u8]) -> Vec<Vec<f32>> {
        self.carry.extend_from_slice(bytes);
        let frame = self.format.frame_bytes();
        let whole = self.carry.len() / frame * frame;
        let n = self.format.channels;
        let mut out = vec![Vec::with_capacity(whole / frame); n];
        let width = self.format.encoding.bytes_per_sample();
        for (i, sample) in self.carry[..whole].chunks_exact(width).enumerate() {
            let v = match self.format.encoding {
                Encoding::Linear16 => {
                    f32::from(i16::from_le_bytes([sample[0], sample[1]])) / 32768.0
                }
                Encoding::Mulaw => f32::from(mulaw(sample[0])) / 32768.0,
                Encoding::Alaw => f32::from(alaw(sample[0])) / 32768.0,
            };
            out[i % n].push(v);
        }
        self.carry.drain(..whole);
        out
    }

    /// Bytes left over that do not make a whole frame (a stream should end without any).
    pub fn leftover(&self) -> usize {
        self.carry.len()
    }
}

/// G.711 μ-law to 16-bit linear.
fn mulaw(byte: u8) -> i16 {
    let u = !byte;
    let exponent = (u >> 4) & 0x07;
    let mantissa = i32::from(u & 0x0f);
    let magnitude = (((mantissa << 3) + 0x84) << exponent) - 0x84;
    (if u & 0x80 != 0 { -magnitude } else { magnitude }) as i16
}

/// G.711 A-law to 16-bit linear.
fn alaw(byte: u8) -> i16 {
    let a = byte ^ 0x55;
    let exponent = (a >> 4) & 0x07;
    let mantissa = i32::from(a & 0x0f);
    let magnitude = match exponent {
        0 => (mantissa << 4) + 8,
        e => ((mantissa << 4) + 0x108) << (e - 1),
    };
    (if a & 0x80 != 0 { magnitude } else { -magnitude }) as i16
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn g711_reference_values() {
        // From the ITU-T G.711 tables: silence, the extremes and a mid value.
        assert_eq!(mulaw(0xff), 0);
        assert_eq!(mulaw(0x7f), 0);
        assert_eq!(mulaw(0x80), 32124);
        assert_eq!(mulaw(0x00), -32124);
        assert_eq!(alaw(0xd5), 8);
        assert_eq!(alaw(0x55), -8);
        assert_eq!(alaw(0xaa), 32256);
        assert_eq!(alaw(0x2a), -32256);
    }

    #[test]
    fn frames_split_anywhere_come_out_whole_and_in_order() {
        let format = RawFormat::new(Encoding::Linear16, 8_000, 2).unwrap();
        let samples: Vec<i16> = (0..40).map(|i| i * 100 - 2000).collect();
        let bytes: Vec<u8> = samples.iter().flat_map(|s| s.to_le_bytes()).collect();
        let mut d = RawDecoder::new(format);
        let mut left: Vec<f32> = Vec::new();
        let mut right: Vec<f32> = Vec::new();
        for piece in bytes.chunks(3) {
            let out = d.push(piece);
            left.extend(&out[0]);
            right.extend(&out[1]);
        }
        assert_eq!(d.leftover(), 0);
        assert_eq!(left.len(), 20);
        assert_eq!(left[1], f32::from(samples[2]) / 32768.0);
        assert_eq!(right[1], f32::from(samples[3]) / 32768.0);
    }

    #[test]
    fn bad_formats_are_refused() {
        assert!(RawFormat::new(Encoding::Mulaw, 100, 1).is_err());
        assert!(RawFormat::new(Encoding::Mulaw, 8_000, 0).is_err());
        assert!(RawFormat::new(Encoding::Mulaw, 8_000, 99).is_err());
    }
}
