//! Packing speech into Whisper windows of at most 30 s, and mapping window time back to call time.
//!
//! Whisper always encodes 30 s. Packing several VAD segments into one window, with only short
//! gaps between them, means it encodes speech instead of padded silence.

use crate::audio::vad::SpeechChunk;

pub const SAMPLES_PER_MS: u64 = 16;
/// Whisper's window, less a margin for the gaps we insert.
pub const MAX_WINDOW_SAMPLES: usize = 29 * 16_000;
/// Silence between packed segments, so that Whisper hears a pause.
pub const GAP_SAMPLES: usize = 8_000; // 0.5 s

/// One piece of speech inside a window.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Piece {
    /// Where the piece starts in the window (samples).
    pub window_start: usize,
    /// Where it starts in the call (samples, 16 kHz).
    pub call_start: u64,
    pub len: usize,
}

#[derive(Debug, Clone, Default)]
pub struct Window {
    pub audio: Vec<f32>,
    pub pieces: Vec<Piece>,
}

impl Window {
    /// The piece a time inside the window (ms) belongs to: the piece that contains it, or for a
    /// time in an inserted gap, the nearer of the two pieces around it.
    pub fn piece_at(&self, window_ms: u64) -> usize {
        let t = (window_ms * SAMPLES_PER_MS) as usize;
        let i = self
            .pieces
            .iter()
            .rposition(|p| p.window_start <= t)
            .unwrap_or(0);
        let end = self.pieces[i].window_start + self.pieces[i].len;
        match self.pieces.get(i + 1) {
            Some(next) if t > end && next.window_start - t < t - end => i + 1,
            _ => i,
        }
    }

    /// Maps a time inside the window (ms) to call time (ms). A time in an inserted gap maps to
    /// the nearer edge of the speech around it.
    pub fn to_call_ms(&self, window_ms: u64) -> u64 {
        let t = (window_ms * SAMPLES_PER_MS) as usize;
        let piece = &self.pieces[self.piece_at(window_ms)];
        let offset = t.saturating_sub(piece.window_start).min(piece.len) as u64;
        (piece.call_start + offset) / SAMPLES_PER_MS
    }

    pub fn call_start_ms(&self) -> u64 {
        self.pieces
            .first()
            .map_or(0, |p| p.call_start / SAMPLES_PER_MS)
    }

    pub fn duration_ms(&self) -> u64 {
        self.audio.len() as u64 / SAMPLES_PER_MS
    }

    fn push(&mut self, chunk: SpeechChunk) {
        if !self.audio.is_empty() {
            self.audio.extend(std::iter::repeat_n(0.0, GAP_SAMPLES));
        }
        self.pieces.push(Piece {
            window_start: self.audio.len(),
            call_start: chunk.start_sample,
            len: chunk.audio.len(),
        });
        self.audio.extend_from_slice(&chunk.audio);
    }
}

/// Collects speech chunks of one channel into windows.
#[derive(Debug, Default)]
pub struct WindowPacker {
    current: Window,
}

impl WindowPacker {
    /// Adds a chunk; returns the previous window when this chunk no longer fits in it.
    /// Chunks longer than a window are cut (VAD already cuts speech at 29 s).
    pub fn push(&mut self, mut chunk: SpeechChunk) -> Vec<Window> {
        let mut full = Vec::new();
        while chunk.audio.len() > MAX_WINDOW_SAMPLES {
            let rest = chunk.audio.split_off(MAX_WINDOW_SAMPLES);
            let next_start = chunk.start_sample + MAX_WINDOW_SAMPLES as u64;
            full.extend(self.push(chunk));
            chunk = SpeechChunk {
                start_sample: next_start,
                audio: rest,
            };
        }
        let needed = chunk.audio.len()
            + if self.current.audio.is_empty() {
                0
            } else {
                GAP_SAMPLES
            };
        if self.current.audio.len() + needed > MAX_WINDOW_SAMPLES {
            full.push(std::mem::take(&mut self.current));
        }
        self.current.push(chunk);
        full
    }

    /// Whether the window being filled holds speech that ended before `sample` (call time).
    pub fn ends_before(&self, sample: u64) -> bool {
        self.current
            .pieces
            .last()
            .is_some_and(|p| p.call_start + p.len as u64 <= sample)
    }

    pub fn finish(&mut self) -> Option<Window> {
        (!self.current.audio.is_empty()).then(|| std::mem::take(&mut self.current))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn chunk(start_s: f64, len_s: f64) -> SpeechChunk {
        SpeechChunk {
            start_sample: (start_s * 16_000.0) as u64,
            audio: vec![0.1; (len_s * 16_000.0) as usize],
        }
    }

    #[test]
    fn segments_are_packed_up_to_the_window_and_times_map_back() {
        let mut p = WindowPacker::default();
        assert!(p.push(chunk(10.0, 10.0)).is_empty());
        assert!(p.push(chunk(100.0, 9.0)).is_empty());
        let full = p.push(chunk(500.0, 10.0)); // 30 s would not fit
        assert_eq!(full.len(), 1);
        let w = &full[0];
        assert_eq!(w.pieces.len(), 2);
        assert_eq!(w.to_call_ms(0), 10_000);
        assert_eq!(w.to_call_ms(5_000), 15_000);
        assert_eq!(
            w.to_call_ms(10_100),
            20_000,
            "early in the gap: end of the first piece"
        );
        assert_eq!(
            w.to_call_ms(10_400),
            100_000,
            "late in the gap: start of the next piece"
        );
        assert_eq!(
            (w.piece_at(10_100), w.piece_at(10_400), w.piece_at(12_000)),
            (0, 1, 1)
        );
        assert!(p.ends_before(510_000 * 16) && !p.ends_before(505_000 * 16));
        assert_eq!(w.to_call_ms(10_500 + 2_000), 102_000);
        assert_eq!(w.call_start_ms(), 10_000);
        let last = p.finish().unwrap();
        assert_eq!(last.to_call_ms(1_000), 501_000);
        assert!(p.finish().is_none());
    }

    #[test]
    fn a_chunk_longer_than_a_window_is_cut() {
        let mut p = WindowPacker::default();
        let full = p.push(chunk(0.0, 70.0));
        assert_eq!(full.len(), 2);
        let last = p.finish().unwrap();
        assert_eq!(last.to_call_ms(0), 58_000);
        assert!(full.iter().all(|w| w.audio.len() <= MAX_WINDOW_SAMPLES));
    }
}
