//! Voice activity detection with Silero VAD (ONNX) over 16 kHz mono audio, in a stream.

use crate::onnx::{OnnxError, run_err};
use ndarray::{Array2, Array3, arr0};
use ort::session::Session;
use ort::value::Tensor;
use std::sync::{Arc, Mutex, PoisonError};

pub const FRAME: usize = 512; // 32 ms at 16 kHz
const CONTEXT: usize = 64;
const SAMPLE_RATE: i64 = 16_000;
const SAMPLES_PER_MS: usize = 16;

/// Tunable thresholds (Silero's recommended defaults).
#[derive(Debug, Clone)]
pub struct VadParams {
    /// A frame whose speech probability reaches this starts (or continues) speech.
    pub threshold: f32,
    /// Speech ends only once the probability falls below this (hysteresis).
    pub neg_threshold: f32,
    /// Silence shorter than this does not split a segment.
    pub min_silence_ms: u32,
    /// Segments shorter than this are dropped.
    pub min_speech_ms: u32,
    /// Padding added to both ends of a segment (at most half of `min_silence_ms`, so padded
    /// segments never overlap).
    pub speech_pad_ms: u32,
    /// Longer speech is cut into pieces of this length (Whisper windows are 30 s).
    pub max_segment_ms: u32,
}

impl Default for VadParams {
    fn default() -> Self {
        Self {
            threshold: 0.5,
            neg_threshold: 0.35,
            min_silence_ms: 600,
            min_speech_ms: 250,
            speech_pad_ms: 300,
            // With the padding on both sides this stays under Whisper's 29 s windows.
            max_segment_ms: 28_000,
        }
    }
}

/// A stretch of speech, in milliseconds from the start of the audio.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SpeechSegment {
    pub start_ms: u64,
    pub end_ms: u64,
}

/// A stretch of speech with its audio; `start_sample` is absolute (16 kHz).
#[derive(Debug, Clone)]
pub struct SpeechChunk {
    pub start_sample: u64,
    pub audio: Vec<f32>,
}

impl SpeechChunk {
    pub fn segment(&self) -> SpeechSegment {
        let start_ms = self.start_sample / SAMPLES_PER_MS as u64;
        SpeechSegment {
            start_ms,
            end_ms: start_ms + (self.audio.len() / SAMPLES_PER_MS) as u64,
        }
    }
}

/// The hysteresis state machine over frame probabilities. Emits raw speech spans in samples
/// (before padding).
#[derive(Debug, Clone)]
pub struct Hysteresis {
    params: VadParams,
    frame: u64,
    start: Option<u64>,
    silence_since: Option<u64>,
    /// The least speech-like frame in the second half of the current span: where to cut it if
    /// it grows too long.
    best_cut: Option<(u64, f32)>,
}

impl Hysteresis {
    pub fn new(params: VadParams) -> Self {
        Self {
            params,
            frame: 0,
            start: None,
            silence_since: None,
            best_cut: None,
        }
    }

    fn ms_to_samples(ms: u32) -> u64 {
        u64::from(ms) * SAMPLES_PER_MS as u64
    }

    /// One frame's probability; returns a closed span `(start, end)` in samples, if any.
    pub fn push(&mut self, prob: f32) -> Option<(u64, u64)> {
        let p = &self.params;
        let t = self.frame * FRAME as u64;
        self.frame += 1;
        let mut closed = None;
        match self.start {
            None if prob >= p.threshold => {
                self.start = Some(t);
                self.silence_since = None;
                self.best_cut = None;
            }
            None => {}
            Some(s) => {
                if prob >= p.threshold {
                    self.silence_since = None;
                } else if prob < p.neg_threshold {
                    let since = *self.silence_since.get_or_insert(t);
                    if t + FRAME as u64 - since >= Self::ms_to_samples(p.min_silence_ms) {
                        closed = Some((s, since));
                        self.start = None;
                        self.silence_since = None;
                    }
                }
                // Too long: cut at the quietest moment of its second half (or here) and carry
                // on with a new span from there.
                if let Some(s) = self.start {
                    let max = Self::ms_to_samples(p.max_segment_ms);
                    if t - s >= max / 2 && self.best_cut.is_none_or(|(_, q)| prob < q) {
                        self.best_cut = Some((t, prob));
                    }
                    if t + FRAME as u64 - s >= max {
                        match self.silence_since.take() {
                            Some(since) => {
                                closed = Some((s, since));
                                self.start = None;
                            }
                            None => {
                                let cut = self.best_cut.map_or(t + FRAME as u64, |(c, _)| c);
                                closed = Some((s, cut));
                                self.start = Some(cut);
                            }
                        }
                        self.best_cut = None;
                    }
                }
            }
        }
        closed.filter(|(s, e)| e - s >= Self::ms_to_samples(p.min_speech_ms))
    }

    /// Closes a span still open at the end of the audio (`end` = total samples).
    pub fn finish(&mut self, end: u64) -> Option<(u64, u64)> {
        let span = self
            .start
            .take()
            .map(|s| (s, self.silence_since.take().unwrap_or(end).min(end)));
        span.filter(|(s, e)| e - s >= Self::ms_to_samples(self.params.min_speech_ms))
    }
}

/// The Silero model. Its recurrent state lives in each `StreamVad`, so one session serves every
/// track of every call (a session takes about 10 MB; a frame holds the lock for well under a
/// millisecond).
#[derive(Clone)]
pub struct Vad {
    session: Arc<Mutex<Session>>,
}

impl Vad {
    pub fn new(session: Session) -> Self {
        Self {
            session: Arc::new(Mutex::new(session)),
        }
    }

    /// Speech segments of a whole clip.
    pub fn segments(
        &self,
        audio: &[f32],
        params: &VadParams,
    ) -> Result<Vec<SpeechSegment>, OnnxError> {
        let mut stream = StreamVad::new(self.clone(), params.clone());
        let mut out: Vec<SpeechSegment> = stream
            .push(audio)?
            .iter()
            .map(SpeechChunk::segment)
            .collect();
        out.extend(stream.finish()?.iter().map(SpeechChunk::segment));
        Ok(out)
    }
}

/// VAD over a stream: feed 16 kHz samples, get speech chunks (with their audio and absolute
/// offsets) as soon as each one closes. Only audio since the current speech began is held.
pub struct StreamVad {
    vad: Vad,
    params: VadParams,
    hysteresis: Hysteresis,
    state: Array3<f32>,
    context: Vec<f32>,
    frame_buf: Vec<f32>,
    /// Audio from sample `buf_start` on.
    buf: Vec<f32>,
    buf_start: u64,
    total: u64,
    /// Spans closed but not yet emitted (start, padded end), because their end is still arriving.
    closed: Vec<(u64, u64)>,
    /// The end of the last chunk emitted.
    emitted_until: u64,
}

impl StreamVad {
    pub fn new(vad: Vad, mut params: VadParams) -> Self {
        params.speech_pad_ms = params.speech_pad_ms.min(params.min_silence_ms / 2);
        Self {
            vad,
            hysteresis: Hysteresis::new(params.clone()),
            params,
            state: Array3::<f32>::zeros((2, 1, 128)),
            context: vec![0.0; CONTEXT],
            frame_buf: Vec::with_capacity(FRAME),
            buf: Vec::new(),
            buf_start: 0,
            total: 0,
            closed: Vec::new(),
            emitted_until: 0,
        }
    }

    fn pad(&self) -> u64 {
        u64::from(self.params.speech_pad_ms) * SAMPLES_PER_MS as u64
    }

    fn probability(&mut self, frame: &[f32]) -> Result<f32, OnnxError> {
        let mut input = Vec::with_capacity(CONTEXT + FRAME);
        input.extend_from_slice(&self.context);
        input.extend_from_slice(frame);
        input.resize(CONTEXT + FRAME, 0.0); // the last frame is zero-padded
        self.context.copy_from_slice(&input[FRAME..]);
        let x = Tensor::from_array(
            Array2::from_shape_vec((1, CONTEXT + FRAME), input).map_err(run_err)?,
        )
        .map_err(run_err)?;
        let s = Tensor::from_array(self.state.clone()).map_err(run_err)?;
        let sr = Tensor::from_array(arr0(SAMPLE_RATE)).map_err(run_err)?;
        let mut session = self
            .vad
            .session
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        let outputs = session
            .run(ort::inputs!["input" => x, "state" => s, "sr" => sr])
            .map_err(run_err)?;
        let (_, p) = outputs["output"]
            .try_extract_tensor::<f32>()
            .map_err(run_err)?;
        let prob = p[0];
        let (_, next) = outputs["stateN"]
            .try_extract_tensor::<f32>()
            .map_err(run_err)?;
        self.state
            .as_slice_mut()
            .expect("contiguous")
            .copy_from_slice(next);
        Ok(prob)
    }

    /// Emits closed spans whose padded end has arrived, and drops audio no one needs any more.
    fn drain(&mut self, at_end: bool) -> Vec<SpeechChunk> {
        let pad = self.pad();
        let mut out = Vec::new();
        while let Some(&(s, end)) = self.closed.first() {
            if !at_end && self.total < end {
                break;
            }
            let end = end.min(self.total);
            // A pad never reaches back into the chunk before, or its audio would be transcribed
            // twice.
            let start = s
                .saturating_sub(pad)
                .max(self.buf_start)
                .max(self.emitted_until);
            self.emitted_until = end;
            let from = (start - self.buf_start) as usize;
            let to = ((end - self.buf_start) as usize).min(self.buf.len());
            out.push(SpeechChunk {
                start_sample: start,
                audio: self.buf[from..to].to_vec(),
            });
            self.closed.remove(0);
        }
        // Keep what an open or pending span may still need: from its padded start, or the last pad.
        let keep_from = self.settled_sample();
        if keep_from > self.buf_start {
            let n = ((keep_from - self.buf_start) as usize).min(self.buf.len());
            self.buf.drain(..n);
            self.buf_start += n as u64;
        }
        out
    }

    /// Every chunk still to come starts at or after this sample: earlier speech has been emitted.
    pub fn settled_sample(&self) -> u64 {
        let pad = self.pad();
        match (self.closed.first(), self.hysteresis.start) {
            (Some(&(s, _)), _) | (None, Some(s)) => s.saturating_sub(pad),
            (None, None) => self.total.saturating_sub(pad + FRAME as u64),
        }
    }

    /// Samples held right now (the memory a long call costs).
    pub fn buffered_samples(&self) -> usize {
        self.buf.len()
    }

    pub fn push(&mut self, samples: &[f32]) -> Result<Vec<SpeechChunk>, OnnxError> {
        self.buf.extend_from_slice(samples);
        self.total += samples.len() as u64;
        let mut rest = samples;
        while !rest.is_empty() {
            let take = (FRAME - self.frame_buf.len()).min(rest.len());
            self.frame_buf.extend_from_slice(&rest[..take]);
            rest = &rest[take..];
            if self.frame_buf.len() == FRAME {
                let frame = std::mem::take(&mut self.frame_buf);
                let prob = self.probability(&frame)?;
                self.frame_buf = frame;
                self.frame_buf.clear();
                let span = self.hysteresis.push(prob);
                self.close(span);
            }
        }
        Ok(self.drain(false))
    }

    /// Ends the stream: the last partial frame is scored and any open speech is closed.
    pub fn finish(mut self) -> Result<Vec<SpeechChunk>, OnnxError> {
        if !self.frame_buf.is_empty() {
            let frame = std::mem::take(&mut self.frame_buf);
            let prob = self.probability(&frame)?;
            let span = self.hysteresis.push(prob);
            self.close(span);
        }
        let last = self.hysteresis.finish(self.total);
        self.close(last);
        Ok(self.drain(true))
    }

    /// Queues a closed span with its trailing pad, unless it was cut in the middle of speech: the
    /// next piece starts right there.
    fn close(&mut self, span: Option<(u64, u64)>) {
        if let Some((s, e)) = span {
            let cut = self.hysteresis.start == Some(e);
            self.closed.push((s, if cut { e } else { e + self.pad() }));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spans(probs: &[f32], params: VadParams) -> Vec<(u64, u64)> {
        let mut h = Hysteresis::new(params);
        let mut out: Vec<_> = probs.iter().filter_map(|&p| h.push(p)).collect();
        out.extend(h.finish((probs.len() * FRAME) as u64));
        out
    }

    #[test]
    fn hysteresis_bridges_short_dips_and_drops_blips() {
        // 32 ms frames: silence, speech with a 64 ms dip, silence, a 64 ms blip, silence.
        let mut probs = vec![0.0; 10];
        probs.extend(vec![0.9; 15]);
        probs.extend(vec![0.1; 2]);
        probs.extend(vec![0.9; 15]);
        probs.extend(vec![0.0; 20]);
        probs.extend(vec![0.9; 2]);
        probs.extend(vec![0.0; 20]);
        let got = spans(&probs, VadParams::default());
        assert_eq!(got, vec![(10 * FRAME as u64, 42 * FRAME as u64)]);
    }

    #[test]
    fn long_speech_is_cut_at_its_quietest_moment() {
        let mut probs = vec![0.9; 600]; // 19 s of speech with a softer frame at 12.8 s
        probs[400] = 0.4;
        let got = spans(
            &probs,
            VadParams {
                max_segment_ms: 16_000,
                ..VadParams::default()
            },
        );
        assert_eq!(got[0], (0, 400 * FRAME as u64), "{got:?}");
    }

    #[test]
    fn long_speech_is_cut_at_the_maximum_length() {
        let probs = vec![0.9; 2000]; // 64 s of speech
        let got = spans(
            &probs,
            VadParams {
                max_segment_ms: 10_000,
                ..VadParams::default()
            },
        );
        assert!(got.len() >= 6, "{got:?}");
        assert!(got.iter().all(|(s, e)| e - s <= 10_000 * 16));
        assert!(
            got.windows(2).all(|w| w[0].1 == w[1].0),
            "pieces are contiguous: {got:?}"
        );
    }
}
