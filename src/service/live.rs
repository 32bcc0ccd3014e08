//! A call analysed while it happens: audio arrives in chunks (raw telephony PCM or a container
//! stream), turns come out as their speech is transcribed, and the playbook's alerts fire on
//! them: competitor mentions, emotion, key questions still missing at their deadline.
//!
//! Two threads per call: this one decodes and feeds the pipeline (windows close at the end of
//! every stretch of speech); a collector waits for each window's text in order, assembles turns
//! and raises the alerts. The finished call's transcript is assembled as a recording's would be,
//! so its Analysis matches `AnalyzeCall`'s but for where the windows were cut.

use super::ServiceError;
use super::engines::{Analyser, Analysers};
use crate::analysis::competitors::{CompetitorMatcher, Mention};
use crate::analysis::emotion::{self, EmotionAlert};
use crate::analysis::playbook::Playbook;
use crate::analysis::questions::QuestionMatcher;
use crate::audio::channels::{Layout, channel_roles};
use crate::audio::decode::MAX_DURATION_SECS;
use crate::audio::raw::{RawDecoder, RawFormat};
use crate::audio::{DecodeError, StreamDecoder};
use crate::redact;
use crate::text::embed::EmbedError;
use crate::transcript::{
    CallOptions, CallSession, CallTranscript, Engines, Packing, SharedProsody, TURN_JOIN_GAP_MS,
    TrackPlan, Turn, WindowMsg, append_segment,
};
use sha2::{Digest, Sha256};
use std::io::{Read, Seek, SeekFrom};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, mpsc};
use tokio::sync::mpsc::Receiver;
use tokio_util::sync::CancellationToken;

/// How the stream's bytes are to be read.
#[derive(Debug, Clone, Copy)]
pub enum StreamFormat {
    /// Headerless samples at a declared rate and channel count.
    Raw(RawFormat),
    /// A container (WAV, MP3, Ogg, FLAC, WebM…) that can be read front to back, detected from
    /// the bytes.
    Container,
}

/// A live call's audio: its bytes as they arrive, and how to read them.
pub struct LiveAudio {
    pub format: StreamFormat,
    pub chunks: Receiver<Vec<u8>>,
}

/// Something that happened during the call, in the order it became known.
#[derive(Debug, Clone)]
pub enum LiveEvent {
    /// A turn so far (`is_final` false: more of it may come) or complete. Ids count turns from 0
    /// in the order they began being heard.
    Turn { id: u32, turn: Turn, is_final: bool },
    /// `turn` is the live turn id.
    Competitor(Mention),
    /// `turn` is the live turn id.
    Emotion(EmotionAlert),
    /// The call has passed a key question's deadline (`within_minutes`) without it.
    KeyQuestionMissing {
        id: String,
        description: String,
        deadline_ms: u64,
    },
}

/// A finished stream: the transcript, the sha256 of every byte received, and how long the
/// transcription took past the end of the audio.
pub struct Finished {
    pub transcript: CallTranscript,
    pub content_hash: String,
    pub transcription_ms: u64,
    /// Audio bytes received.
    pub bytes: u64,
}

/// What has passed through the stream: its hash and length.
#[derive(Default)]
struct Received {
    hash: Sha256,
    bytes: u64,
}

/// The stream's bytes, read as they arrive, hashed as they pass.
struct Bytes {
    rx: Mutex<Receiver<Vec<u8>>>,
    hash: Arc<Mutex<Received>>,
    buf: Vec<u8>,
    pos: usize,
}

impl Bytes {
    /// The next piece of the stream; `None` at its end.
    fn next(&mut self) -> Option<Vec<u8>> {
        let piece = self.rx.lock().ok()?.blocking_recv()?;
        if let Ok(mut r) = self.hash.lock() {
            r.hash.update(&piece);
            r.bytes += piece.len() as u64;
        }
        Some(piece)
    }
}

impl Read for Bytes {
    fn read(&mut self, out: &mut [u8]) -> std::io::Result<usize> {
        while self.pos == self.buf.len() {
            match self.next() {
                Some(piece) => {
                    self.buf = piece;
                    self.pos = 0;
                }
                None => return Ok(0),
            }
        }
        let n = out.len().min(self.buf.len() - self.pos);
        out[..n].copy_from_slice(&self.buf[self.pos..self.pos + n]);
        self.pos += n;
        Ok(n)
    }
}

impl Seek for Bytes {
    fn seek(&mut self, _: SeekFrom) -> std::io::Result<u64> {
        Err(std::io::Error::new(
            std::io::ErrorKind::Unsupported,
            "a stream cannot seek",
        ))
    }
}

impl symphonia::core::io::MediaSource for Bytes {
    fn is_seekable(&self) -> bool {
        false
    }
    fn byte_len(&self) -> Option<u64> {
        None
    }
}

enum Source {
    Raw(Bytes, RawDecoder),
    Container(StreamDecoder),
}

impl Source {
    fn rate_and_channels(&self) -> (u32, usize) {
        match self {
            Source::Raw(_, d) => (d.format().sample_rate, d.format().channels),
            Source::Container(d) => (d.sample_rate(), d.channels()),
        }
    }

    fn next_chunk(&mut self) -> Result<Option<Vec<Vec<f32>>>, DecodeError> {
        match self {
            Source::Raw(bytes, decoder) => {
                while let Some(piece) = bytes.next() {
                    let chunk = decoder.push(&piece);
                    if !chunk[0].is_empty() {
                        return Ok(Some(chunk));
                    }
                }
                match decoder.leftover() {
                    0 => Ok(None),
                    n => Err(DecodeError::Corrupt(format!(
                        "the stream ended inside a frame ({n} bytes left over)"
                    ))),
                }
            }
            Source::Container(d) => d.next_chunk(),
        }
    }
}

/// Transcribes a call as its bytes arrive, calling `emit` with each event and the
/// call time received so far. The call ends when `audio` closes; `opts.cancel` (cancelled by the
/// caller, or here when `emit` returns false) stops it early.
pub fn run(
    engines: &Engines,
    analysers: &Analysers,
    playbook: &Playbook,
    opts: &CallOptions,
    LiveAudio { format, chunks }: LiveAudio,
    emit: impl FnMut(LiveEvent, u64) -> bool + Send,
) -> Result<Finished, ServiceError> {
    let cancelled = &opts.cancel;
    let hash = Arc::new(Mutex::new(Received::default()));
    let bytes = Bytes {
        rx: Mutex::new(chunks),
        hash: hash.clone(),
        buf: Vec::new(),
        pos: 0,
    };
    let mut source = match format {
        StreamFormat::Raw(f) => Source::Raw(bytes, RawDecoder::new(f)),
        StreamFormat::Container => Source::Container(StreamDecoder::open(Box::new(bytes))?),
    };
    let (rate, channels) = source.rate_and_channels();
    // A telephony stream's channels are the call's sides, as it declares them.
    let layout = if channels == 1 {
        Layout::Mono
    } else {
        Layout::PerChannel {
            roles: channel_roles(channels, &opts.channel_roles),
        }
    };
    let position = AtomicU64::new(0);
    let (out, windows) = mpsc::channel();
    std::thread::scope(|scope| -> Result<Finished, ServiceError> {
        let mut session =
            CallSession::new(engines, opts, rate, channels, layout, Packing::Live, out)?;
        let plan = session.plan().clone();
        let prosody = session.prosody();
        let rules = Rules::new(playbook, analysers.for_call(cancelled)?)?;
        let (position, mut emit) = (&position, emit);
        let collector = scope.spawn(move || {
            collect(windows, plan, prosody, rules, cancelled, |e| {
                emit(e, position.load(Ordering::Relaxed))
            })
        });
        let max_frames = MAX_DURATION_SECS * u64::from(rate);
        let mut frames = 0;
        let fed = (|| -> Result<(), ServiceError> {
            while let Some(chunk) = source.next_chunk()? {
                if cancelled.is_cancelled() {
                    return Err(ServiceError::Cancelled);
                }
                frames += chunk[0].len() as u64;
                if frames > max_frames {
                    return Err(DecodeError::Unsupported(format!(
                        "a stream longer than {} h",
                        MAX_DURATION_SECS / 3600
                    ))
                    .into());
                }
                session.push(&chunk)?;
                position.store(session.position_ms(), Ordering::Relaxed);
            }
            // An audio channel closed because the client went away is no end of call.
            match cancelled.is_cancelled() {
                true => Err(ServiceError::Cancelled),
                false => Ok(()),
            }
        })();
        let ended = std::time::Instant::now();
        // Dropping the session (finished or not) closes the collector's channel.
        let end = match fed {
            Ok(()) => session.finish(),
            Err(e) => {
                cancelled.cancel();
                drop(session);
                let _ = collector.join();
                return Err(e);
            }
        };
        let segments = collector
            .join()
            .map_err(|_| ServiceError::Worker("the live collector panicked".into()))??;
        if cancelled.is_cancelled() {
            return Err(ServiceError::Cancelled);
        }
        let transcript = end?.transcript(segments);
        let received = hash
            .lock()
            .map_err(|_| ServiceError::Worker("the stream's hash".into()))?;
        Ok(Finished {
            transcript,
            content_hash: hex::encode(received.hash.clone().finalize()),
            transcription_ms: ended.elapsed().as_millis() as u64,
            bytes: received.bytes,
        })
    })
}

/// Waits for each window's text in order, assembles turns and raises alerts; returns every
/// segment, for the final transcript.
fn collect(
    windows: mpsc::Receiver<WindowMsg>,
    plan: TrackPlan,
    prosody: Vec<SharedProsody>,
    mut rules: Rules<'_>,
    cancelled: &CancellationToken,
    mut emit: impl FnMut(LiveEvent) -> bool,
) -> Result<Vec<Turn>, ServiceError> {
    let mut turns = LiveTurns::new(plan.clone());
    let mut segments = Vec::new();
    let mut events = Vec::new();
    let mut stop = false;
    let handle = |rules: &mut Rules<'_>,
                  updates: Vec<Update>,
                  events: &mut Vec<LiveEvent>|
     -> Result<(), ServiceError> {
        for mut u in updates {
            if let Some(new) = u.new_segment.take() {
                rules.segment(u.id, &new, events)?;
            }
            if u.is_final {
                u.turn.prosody = plan.prosody_of(&u.turn, &prosody);
            }
            events.push(LiveEvent::Turn {
                id: u.id,
                turn: u.turn.clone(),
                is_final: u.is_final,
            });
            if u.is_final {
                rules.final_turn(u.id, u.turn, events)?;
            }
        }
        Ok(())
    };
    let playbook = rules.playbook;
    let policy = &playbook.redaction;
    for msg in windows {
        match msg {
            WindowMsg::Window(s) => {
                for seg in plan.segments(s)? {
                    // Events show segments redacted; the final transcript is redacted whole.
                    let shown = redact::live_segment(&segments, &seg, policy);
                    segments.push(seg);
                    handle(&mut rules, turns.segment(shown), &mut events)?;
                }
            }
            WindowMsg::Settled(per_track) => {
                handle(&mut rules, turns.settle(&per_track), &mut events)?;
                let all_settled = per_track.iter().copied().min().unwrap_or(0);
                rules.deadlines(all_settled, &mut events);
            }
        }
        for e in events.drain(..) {
            if !stop && !emit(e) {
                stop = true;
                cancelled.cancel();
            }
        }
    }
    handle(&mut rules, turns.finish(), &mut events)?;
    for e in events {
        if !stop && !emit(e) {
            stop = true;
        }
    }
    Ok(segments)
}

/// A change to a live turn.
struct Update {
    id: u32,
    turn: Turn,
    is_final: bool,
    /// The segment that was added, if one was.
    new_segment: Option<Turn>,
}

struct OpenTurn {
    id: u32,
    turn: Turn,
    /// Where the newest segment of the turn starts.
    last_start: u64,
}

/// Turns assembled from segments as they arrive, by the rule a finished call's are (one
/// speaker's segments less than `TURN_JOIN_GAP_MS` apart, nobody else starting in between). A
/// turn is final once its track has settled past the point where it could still grow.
struct LiveTurns {
    plan: TrackPlan,
    open: Vec<Option<OpenTurn>>,
    /// Per track, the start of its newest segment.
    latest_start: Vec<Option<u64>>,
    next_id: u32,
}

impl LiveTurns {
    fn new(plan: TrackPlan) -> Self {
        let n = plan.len();
        Self {
            plan,
            open: (0..n).map(|_| None).collect(),
            latest_start: vec![None; n],
            next_id: 0,
        }
    }

    /// Where track `k`'s open turn stops being able to grow: after the join gap, or where
    /// another speaker started.
    fn limit(&self, k: usize) -> Option<u64> {
        let open = self.open[k].as_ref()?;
        let other = (0..self.open.len())
            .filter(|&j| j != k)
            .filter_map(|j| self.latest_start[j])
            .filter(|&s| s > open.last_start)
            .min();
        let gap = open.turn.end_ms + TURN_JOIN_GAP_MS;
        Some(other.map_or(gap, |o| o.min(gap)))
    }

    fn close(&mut self, k: usize) -> Option<Update> {
        let open = self.open[k].take()?;
        Some(Update {
            id: open.id,
            turn: open.turn,
            is_final: true,
            new_segment: None,
        })
    }

    fn segment(&mut self, seg: Turn) -> Vec<Update> {
        let mut updates = Vec::new();
        let k = self.plan.track_of(&seg);
        // Mono speech has no speaker to join by: every segment is a turn of its own, UNKNOWN
        // (live mono calls are not split by speaker yet).
        if seg.channel.is_none() {
            let id = self.next_id;
            self.next_id += 1;
            updates.push(Update {
                id,
                turn: seg.clone(),
                is_final: true,
                new_segment: Some(seg),
            });
            return updates;
        }
        let joins = self.limit(k).is_some_and(|limit| seg.start_ms <= limit);
        if !joins {
            updates.extend(self.close(k));
        }
        self.latest_start[k] = Some(seg.start_ms);
        // Another speaker starting closes the turns it follows.
        for j in 0..self.open.len() {
            if j != k && self.limit(j).is_some_and(|l| l <= seg.start_ms) {
                updates.extend(self.close(j));
            }
        }
        let start = seg.start_ms;
        match &mut self.open[k] {
            Some(open) => {
                append_segment(&mut open.turn, seg.clone());
                open.last_start = start;
                updates.push(Update {
                    id: open.id,
                    turn: open.turn.clone(),
                    is_final: false,
                    new_segment: Some(seg),
                });
            }
            None => {
                let id = self.next_id;
                self.next_id += 1;
                self.open[k] = Some(OpenTurn {
                    id,
                    turn: seg.clone(),
                    last_start: start,
                });
                updates.push(Update {
                    id,
                    turn: seg.clone(),
                    is_final: false,
                    new_segment: Some(seg),
                });
            }
        }
        updates
    }

    /// Closes the turns whose track has settled past their limit.
    fn settle(&mut self, settled: &[u64]) -> Vec<Update> {
        (0..self.open.len())
            .filter(|&k| {
                self.limit(k)
                    .is_some_and(|l| settled.get(k).is_some_and(|&s| s > l))
            })
            .collect::<Vec<_>>()
            .into_iter()
            .filter_map(|k| self.close(k))
            .collect()
    }

    /// The call ended: every open turn is final, in the order they began.
    fn finish(&mut self) -> Vec<Update> {
        let mut left: Vec<Update> = (0..self.open.len()).filter_map(|k| self.close(k)).collect();
        left.sort_by_key(|u| u.id);
        left
    }
}

/// The playbook's real-time rules over a call in progress.
struct Rules<'p> {
    playbook: &'p Playbook,
    analyser: Analyser,
    competitors: CompetitorMatcher<'p>,
    questions: QuestionMatcher<'p>,
    /// Per question, how many times it has counted so far, and whether its alert went out.
    asked: Vec<u32>,
    alerted: Vec<bool>,
    final_turns: Vec<Turn>,
}

impl<'p> Rules<'p> {
    fn new(playbook: &'p Playbook, mut analyser: Analyser) -> Result<Self, EmbedError> {
        let questions = QuestionMatcher::new(playbook, analyser.parts().0)?;
        let n = playbook.key_questions.len();
        Ok(Self {
            playbook,
            analyser,
            competitors: CompetitorMatcher::new(playbook),
            questions,
            asked: vec![0; n],
            alerted: vec![false; n],
            final_turns: Vec::new(),
        })
    }

    /// New words of turn `id`: competitor names and key questions in them.
    fn segment(
        &mut self,
        id: u32,
        seg: &Turn,
        events: &mut Vec<LiveEvent>,
    ) -> Result<(), EmbedError> {
        for mut m in self.competitors.mentions(std::slice::from_ref(seg)) {
            m.turn = id as usize;
            events.push(LiveEvent::Competitor(m));
        }
        for q in self.questions.counted_in(seg, self.analyser.parts().0)? {
            self.asked[q] += 1;
        }
        Ok(())
    }

    /// A complete turn: its emotion, judged against the speakers' turns so far.
    fn final_turn(
        &mut self,
        id: u32,
        turn: Turn,
        events: &mut Vec<LiveEvent>,
    ) -> Result<(), EmbedError> {
        self.final_turns.push(turn);
        let (embedder, head) = self.analyser.parts();
        for mut a in
            emotion::alerts_for_last(&self.final_turns, &self.playbook.emotion, head, embedder)?
        {
            a.turn = id as usize;
            events.push(LiveEvent::Emotion(a));
        }
        Ok(())
    }

    /// Every question whose deadline the transcribed call has passed without it.
    fn deadlines(&mut self, settled_ms: u64, events: &mut Vec<LiveEvent>) {
        for (i, q) in self.questions.questions().enumerate() {
            let Some(minutes) = q.within_minutes else {
                continue;
            };
            let deadline_ms = (minutes * 60_000.0) as u64;
            if !self.alerted[i] && settled_ms > deadline_ms && self.asked[i] < q.min_count {
                self.alerted[i] = true;
                events.push(LiveEvent::KeyQuestionMissing {
                    id: q.id.clone(),
                    description: q.description.clone(),
                    deadline_ms,
                });
            }
        }
    }
}
