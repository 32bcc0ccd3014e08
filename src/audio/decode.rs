//! Decoding any supported container/codec into per-channel f32 samples, chunk by chunk.
//!
//! Symphonia demuxes every container (WAV, MP3, MP4/M4A, FLAC, Ogg, Matroska/WebM) and decodes
//! every codec but Opus, which libopus decodes. The format is detected from the content.

use std::io::Cursor;
use symphonia::core::codecs::audio::well_known::CODEC_ID_OPUS;
use symphonia::core::codecs::audio::{AudioDecoder, AudioDecoderOptions};
use symphonia::core::errors::Error as SymphoniaError;
use symphonia::core::formats::probe::Hint;
use symphonia::core::formats::{FormatOptions, FormatReader, TrackType};
use symphonia::core::io::{MediaSource, MediaSourceStream, MediaSourceStreamOptions};
use symphonia::core::meta::MetadataOptions;

/// Longest recording we accept, so that a bogus header cannot make us work without bound.
pub const MAX_DURATION_SECS: u64 = 4 * 3600;
pub const MAX_CHANNELS: usize = 8;
const MIN_RATE: u32 = 8_000;
const MAX_RATE: u32 = 192_000;
const OPUS_RATE: u32 = 48_000;

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
    #[error(
        "truncated: the header declares {declared_ms} ms of audio, the data holds {decoded_ms} ms"
    )]
    Truncated { declared_ms: u64, decoded_ms: u64 },
    #[error("cannot read the audio: {0}")]
    Io(String),
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
}

enum Codec {
    Symphonia(Box<dyn AudioDecoder>),
    Opus {
        decoder: opus::Decoder,
        channels: usize,
        skip: usize,
        pcm: Vec<f32>,
    },
}

/// Decodes a recording packet by packet, so a long call never has to be in memory whole.
pub struct StreamDecoder {
    format: Box<dyn FormatReader>,
    track_id: u32,
    codec: Codec,
    sample_rate: u32,
    channels: usize,
    frames: u64,
    /// Frames the container says it holds, when it says.
    declared_frames: Option<u64>,
    pending: Option<Vec<Vec<f32>>>,
    planar: Vec<Vec<f32>>,
    /// What had to be repaired in the container's header to read it, if anything.
    repaired: Option<String>,
}

impl StreamDecoder {
    /// Opens a recording held in memory. A WAV header whose sizes disagree with the file is
    /// repaired first (see `wav::repair`), and says so in `repaired`.
    pub fn from_bytes(mut bytes: Vec<u8>) -> Result<Self, DecodeError> {
        if bytes.is_empty() {
            return Err(DecodeError::Empty);
        }
        let repaired = super::wav::repair(&mut bytes);
        let mut decoder = Self::open(Box::new(Cursor::new(bytes)))?;
        decoder.repaired = repaired;
        Ok(decoder)
    }

    /// What was repaired in the header to read the recording, if anything.
    pub fn repaired(&self) -> Option<&str> {
        self.repaired.as_deref()
    }

    /// Opens a recording on disk without reading it all.
    pub fn from_file(path: &std::path::Path) -> Result<Self, DecodeError> {
        let file = std::fs::File::open(path).map_err(|e| DecodeError::Io(e.to_string()))?;
        if file.metadata().map(|m| m.len()).unwrap_or(0) == 0 {
            return Err(DecodeError::Empty);
        }
        Self::open(Box::new(file))
    }

    pub fn open(source: Box<dyn MediaSource>) -> Result<Self, DecodeError> {
        let mss = MediaSourceStream::new(source, MediaSourceStreamOptions::default());
        let format = symphonia::default::get_probe()
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
        let declared_frames = track.num_frames;
        let params = track
            .codec_params
            .as_ref()
            .and_then(|p| p.audio())
            .ok_or(DecodeError::NoAudioTrack)?
            .clone();
        let declared_channels = params.channels.as_ref().map(|c| c.count());
        let codec = if params.codec == CODEC_ID_OPUS {
            let head = params.extra_data.as_deref().unwrap_or_default();
            // OpusHead: channel count at byte 9, pre-skip (48 kHz samples) at bytes 10-11.
            let channels = declared_channels
                .or_else(|| head.get(9).map(|&c| usize::from(c)))
                .unwrap_or(1);
            let skip = head
                .get(10..12)
                .map_or(0, |b| usize::from(u16::from_le_bytes([b[0], b[1]])));
            let layout = match channels {
                1 => opus::Channels::Mono,
                2 => opus::Channels::Stereo,
                n => return Err(DecodeError::Unsupported(format!("Opus with {n} channels"))),
            };
            let decoder = opus::Decoder::new(OPUS_RATE, layout)
                .map_err(|e| DecodeError::Unsupported(e.to_string()))?;
            Codec::Opus {
                decoder,
                channels,
                skip,
                pcm: vec![0.0; 5760 * channels],
            }
        } else {
            Codec::Symphonia(
                symphonia::default::get_codecs()
                    .make_audio_decoder(&params, &AudioDecoderOptions::default())
                    .map_err(|e| DecodeError::Unsupported(e.to_string()))?,
            )
        };
        let mut decoder = StreamDecoder {
            format,
            track_id,
            codec,
            sample_rate: if params.codec == CODEC_ID_OPUS {
                OPUS_RATE
            } else {
                params.sample_rate.unwrap_or(0)
            },
            channels: declared_channels.unwrap_or(0),
            frames: 0,
            declared_frames,
            pending: None,
            planar: Vec::new(),
            repaired: None,
        };
        // Decode the first chunk now: it settles the real rate and channel count, and a file
        // with no decodable audio fails here, before anyone starts work on it.
        match decoder.decode_next()? {
            Some(first) => decoder.pending = Some(first),
            None => return Err(DecodeError::NoSamples),
        }
        Ok(decoder)
    }

    pub fn sample_rate(&self) -> u32 {
        self.sample_rate
    }

    pub fn channels(&self) -> usize {
        self.channels
    }

    /// The next chunk of audio, one Vec per channel; `None` at the end.
    pub fn next_chunk(&mut self) -> Result<Option<Vec<Vec<f32>>>, DecodeError> {
        if let Some(first) = self.pending.take() {
            return Ok(Some(first));
        }
        self.decode_next()
    }

    /// At the end of the data: a file holding clearly less than its header declares was cut
    /// short (an interrupted upload), which the caller must hear about rather than get half a call.
    fn end_of_stream(&self) -> Result<Option<Vec<Vec<f32>>>, DecodeError> {
        let rate = u64::from(self.sample_rate.max(1));
        if let Some(declared) = self.declared_frames {
            // Codec priming and padding account for a few frames; allow 1 % and 100 ms.
            let slack = (declared / 100).max(rate / 10);
            if self.frames + slack < declared {
                return Err(DecodeError::Truncated {
                    declared_ms: declared * 1000 / rate,
                    decoded_ms: self.frames * 1000 / rate,
                });
            }
        }
        Ok(None)
    }

    fn decode_next(&mut self) -> Result<Option<Vec<Vec<f32>>>, DecodeError> {
        loop {
            let packet = match self.format.next_packet() {
                Ok(Some(p)) => p,
                Ok(None) => return self.end_of_stream(),
                Err(SymphoniaError::IoError(e))
                    if e.kind() == std::io::ErrorKind::UnexpectedEof =>
                {
                    return self.end_of_stream();
                }
                Err(e) => return Err(DecodeError::Corrupt(e.to_string())),
            };
            if packet.track_id != self.track_id {
                continue;
            }
            let (rate, chunk) = match &mut self.codec {
                Codec::Symphonia(decoder) => {
                    let buf = match decoder.decode(&packet) {
                        Ok(buf) => buf,
                        // One damaged packet is skipped, as players do.
                        Err(SymphoniaError::DecodeError(_)) => continue,
                        Err(e) => return Err(DecodeError::Corrupt(e.to_string())),
                    };
                    let spec = buf.spec();
                    let rate = spec.rate();
                    let channels = spec.channels().count();
                    check_layout(rate, channels)?;
                    buf.copy_to_vecs_planar(&mut self.planar);
                    self.planar.truncate(channels);
                    (rate, std::mem::take(&mut self.planar))
                }
                Codec::Opus {
                    decoder,
                    channels,
                    skip,
                    pcm,
                } => {
                    let frames = match decoder.decode_float(&packet.data, pcm, false) {
                        Ok(n) => n,
                        Err(_) => continue, // a damaged packet, as above
                    };
                    let drop = (*skip).min(frames);
                    *skip -= drop;
                    let mut planar = vec![Vec::with_capacity(frames - drop); *channels];
                    for frame in pcm[drop * *channels..frames * *channels].chunks_exact(*channels) {
                        for (c, &s) in frame.iter().enumerate() {
                            planar[c].push(s);
                        }
                    }
                    (OPUS_RATE, planar)
                }
            };
            let n = chunk.first().map_or(0, Vec::len);
            if n == 0 {
                continue;
            }
            if self.frames == 0 {
                self.sample_rate = rate;
                self.channels = chunk.len();
            } else if rate != self.sample_rate || chunk.len() != self.channels {
                return Err(DecodeError::Corrupt(
                    "sample rate or channel count changes mid-stream".into(),
                ));
            }
            self.frames += n as u64;
            if self.frames > MAX_DURATION_SECS * u64::from(self.sample_rate) {
                return Err(DecodeError::Unsupported(format!(
                    "longer than {} hours",
                    MAX_DURATION_SECS / 3600
                )));
            }
            return Ok(Some(chunk));
        }
    }
}

fn check_layout(rate: u32, channels: usize) -> Result<(), DecodeError> {
    if channels == 0 || channels > MAX_CHANNELS {
        return Err(DecodeError::Unsupported(format!(
            "{channels} channels (1 to {MAX_CHANNELS} supported)"
        )));
    }
    if !(MIN_RATE..=MAX_RATE).contains(&rate) {
        return Err(DecodeError::Unsupported(format!(
            "sample rate {rate} Hz ({MIN_RATE} to {MAX_RATE} supported)"
        )));
    }
    Ok(())
}

/// Decodes a whole recording held in memory (for short clips and tests).
pub fn decode(bytes: Vec<u8>) -> Result<Audio, DecodeError> {
    let mut decoder = StreamDecoder::from_bytes(bytes)?;
    let mut channels = vec![Vec::new(); decoder.channels()];
    while let Some(chunk) = decoder.next_chunk()? {
        for (dst, src) in channels.iter_mut().zip(chunk) {
            dst.extend_from_slice(&src);
        }
    }
    Ok(Audio {
        sample_rate: decoder.sample_rate(),
        channels,
    })
}
