//! From recording to role-attributed, time-aligned transcript.
//!
//! decode (packet by packet) → channels as roles → resample to 16 kHz → VAD → ≤30 s windows →
//! Whisper pool → segments mapped back to call time → turns, each with its prosody. Audio is held
//! only from the start of the current speech segment and for the window being filled, so a
//! two-hour stereo call needs little more memory than a short one (the prosody frames: 400 B/s).
//! A mono call keeps its 16 kHz audio to tell its speakers apart at the end (64 KB/s).

use super::roles::{self, RoleHints};
use super::turns::join_turns;
use super::{CallTranscript, RoleSource, SpeakerRole, Turn, speakers};
use crate::asr::window::SAMPLES_PER_MS;
use crate::asr::window::{Window, WindowPacker};
use crate::asr::{
    AsrError, DecodeOptions, Language, Segment, WhisperPool, Word, initial_prompt, pool::Pending,
};
use crate::audio::channels::{Layout, Role};
use crate::audio::prosody::{Prosody, ProsodyTrack};
use crate::audio::resample::{ResampleError, StreamResampler};
use crate::audio::vad::{SpeechChunk, StreamVad, Vad, VadParams};
use crate::audio::{DecodeError, StreamDecoder};
use crate::onnx::OnnxError;
use crate::speakers::{Diarization, SpeakerModels, VoiceSample};
use std::sync::mpsc::Sender;
use std::sync::{Arc, Mutex};
use tokio_util::sync::CancellationToken;

#[derive(Debug, thiserror::Error)]
pub enum TranscribeError {
    #[error(transparent)]
    Decode(#[from] DecodeError),
    #[error(transparent)]
    Resample(#[from] ResampleError),
    #[error("VAD: {0}")]
    Vad(#[from] OnnxError),
    #[error(transparent)]
    Asr(#[from] AsrError),
    #[error("telling speakers apart: {0}")]
    Speakers(OnnxError),
    #[error("invalid call options: {0}")]
    Options(String),
    #[error("cancelled")]
    Cancelled,
}

/// Per-call settings.
#[derive(Debug, Clone)]
pub struct CallOptions {
    pub language: Language,
    /// Channel → role. Empty: stereo is agent (0) + customer (1), more channels are UNKNOWN.
    pub channel_roles: Vec<Role>,
    /// Words Whisper should expect: competitor names, product terms.
    pub hotwords: Vec<String>,
    pub vad: VadParams,
    pub beam_size: usize,
    /// The most speakers a mono recording is split into (2 for a call; 0: do not split).
    pub max_speakers: usize,
    /// Keep the voiceprint of a stereo call's agent channel (to learn the rep's voice).
    pub learn_agent_voice: bool,
    /// What decides the roles of a mono recording's speakers besides their words.
    pub roles: RoleHints,
    /// Cancelled when the caller goes away (a client that hangs up) or the service shuts
    /// down: the call stops at the next chunk of audio.
    pub cancel: CancellationToken,
}

impl Default for CallOptions {
    fn default() -> Self {
        Self {
            language: Language::Auto,
            channel_roles: Vec::new(),
            hotwords: Vec::new(),
            vad: VadParams::default(),
            beam_size: 1,
            max_speakers: 2,
            learn_agent_voice: false,
            roles: RoleHints::default(),
            cancel: CancellationToken::new(),
        }
    }
}

/// The models a call needs: the Whisper pool and the VAD, which all tracks share, and the
/// speaker models that split mono recordings.
pub struct Engines {
    pub whisper: WhisperPool,
    vad: Vad,
    speakers: Option<SpeakerModels>,
}

impl Engines {
    pub fn new(whisper: WhisperPool, vad: Vad) -> Self {
        Self {
            whisper,
            vad,
            speakers: None,
        }
    }

    /// Mono recordings will be split by speaker.
    pub fn with_speakers(self, speakers: SpeakerModels) -> Self {
        Self {
            speakers: Some(speakers),
            ..self
        }
    }

    /// Transcribes a whole call.
    pub fn transcribe(
        &self,
        decoder: StreamDecoder,
        opts: &CallOptions,
    ) -> Result<CallTranscript, TranscribeError> {
        super::recording::transcribe_call(self, decoder, opts)
    }
}

/// The agent's voice is learned from the first 5 minutes of their channel.
const LEARN_VOICE_SAMPLES: usize = 16_000 * 300;

/// The longest live window (ms): one that does not pause is cut at its quietest moment after
/// half of this, so that its words are transcribed while the speaker goes on.
pub const LIVE_WINDOW_MS: u32 = 3_000;

/// How speech is cut into Whisper windows.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Packing {
    /// Up to 30 s of one side's speech per window: the fewest windows, for finished recordings.
    Batch,
    /// A window at the end of every stretch of speech, so that turns come out while the call
    /// is still going on.
    Live,
}

/// A window sent to the pool, whose segments are still to be collected.
pub struct Submitted {
    track: usize,
    window: Window,
    pending: Pending,
}

/// What a call session tells whoever collects its windows, in order.
pub enum WindowMsg {
    Window(Submitted),
    /// Per track: every window still to come holds only speech from this time (ms) on.
    Settled(Vec<u64>),
}

/// The call's tracks, fixed before any audio is transcribed: which channel each one reads and
/// the role it speaks for.
#[derive(Debug, Clone)]
pub struct TrackPlan {
    pub layout: Layout,
    tracks: Vec<(usize, Role)>,
}

impl TrackPlan {
    /// One track per channel when channels are the two sides; otherwise one track of channel 0.
    pub fn new(layout: Layout) -> Self {
        let tracks = match &layout {
            Layout::PerChannel { roles } => roles.iter().copied().enumerate().collect(),
            Layout::Mono | Layout::Duplicated { .. } => vec![(0, Role::Unknown)],
        };
        Self { layout, tracks }
    }

    pub fn len(&self) -> usize {
        self.tracks.len()
    }

    pub fn is_empty(&self) -> bool {
        self.tracks.is_empty()
    }

    fn per_channel(&self) -> bool {
        matches!(self.layout, Layout::PerChannel { .. })
    }

    /// The track a turn was heard on.
    pub fn track_of(&self, turn: &Turn) -> usize {
        self.tracks
            .iter()
            .position(|&(channel, _)| Some(channel) == turn.channel)
            .unwrap_or(0)
    }

    /// Waits for a window's result and returns its segments in call time.
    pub fn segments(&self, s: Submitted) -> Result<Vec<Turn>, TranscribeError> {
        let result = s.pending.recv().map_err(|_| AsrError::PoolClosed)??;
        let (channel, role) = self.tracks[s.track];
        let channel = self.per_channel().then_some(channel);
        Ok(result
            .into_iter()
            .map(|seg| to_call_time(seg, &s.window, role, channel))
            .collect())
    }

    /// A finished call's segments as turns with their prosody, and on mono, when its speakers
    /// were told apart, their roles.
    pub fn turns(
        &self,
        segments: Vec<Turn>,
        prosody: &[SharedProsody],
        speakers: Option<&Diarization>,
        hints: &RoleHints,
    ) -> (Vec<Turn>, Vec<SpeakerRole>) {
        let mut turns = match speakers {
            Some(d) if !self.per_channel() && d.speakers > 0 => speakers::by_speaker(segments, d),
            _ => join_turns(segments),
        };
        for t in &mut turns {
            t.prosody = self.prosody_of(t, prosody);
        }
        let roles = match speakers {
            Some(d) if !self.per_channel() => roles::decide(&mut turns, &d.voiceprints, hints),
            _ => Vec::new(),
        };
        (turns, roles)
    }

    pub fn prosody_of(&self, turn: &Turn, prosody: &[SharedProsody]) -> Option<Prosody> {
        let track = prosody.get(self.track_of(turn))?;
        track.lock().ok()?.summarise(turn.start_ms, turn.end_ms)
    }
}

/// A track's loudness and pitch frames, read by the collector while the session adds to them.
pub type SharedProsody = Arc<Mutex<ProsodyTrack>>;

struct Track {
    channel: usize,
    /// The track's 16 kHz audio, kept to tell its speakers apart at the end (mono), or to learn
    /// the agent's voice from (at most LEARN_VOICE_SAMPLES).
    audio: Option<Vec<f32>>,
    audio_limit: usize,
    resampler: StreamResampler,
    vad: StreamVad,
    packer: WindowPacker,
    prosody: SharedProsody,
}

/// Sends windows to the pool, deciding the call's language on the first one.
struct Dispatcher<'e> {
    pool: &'e WhisperPool,
    opts: &'e CallOptions,
    packing: Packing,
    decode: Option<DecodeOptions>,
    out: Sender<WindowMsg>,
    windows: usize,
    speech_ms: u64,
}

impl Dispatcher<'_> {
    fn submit(&mut self, track: usize, mut window: Window) -> Result<(), TranscribeError> {
        let audio = std::mem::take(&mut window.audio);
        if self.decode.is_none() {
            let language = match self.opts.language {
                Language::Zh => "zh".to_owned(),
                Language::En => "en".to_owned(),
                Language::Auto => self.pool.detect_language(audio.clone())?,
            };
            let prompt = initial_prompt(&language, &self.opts.hotwords);
            self.decode = Some(DecodeOptions {
                language,
                prompt,
                beam_size: self.opts.beam_size,
            });
        }
        let decode = self.decode.clone().expect("set above");
        let pending = self.pool.transcribe(audio, decode)?;
        self.windows += 1;
        // Nobody collecting any more (a stream whose client left) is not this call's error.
        let _ = self.out.send(WindowMsg::Window(Submitted {
            track,
            window,
            pending,
        }));
        Ok(())
    }

    fn speech(
        &mut self,
        track: usize,
        packer: &mut WindowPacker,
        chunks: Vec<SpeechChunk>,
    ) -> Result<(), TranscribeError> {
        for chunk in chunks {
            self.speech_ms += chunk.segment().end_ms - chunk.segment().start_ms;
            for window in packer.push(chunk) {
                self.submit(track, window)?;
            }
            if self.packing == Packing::Live
                && let Some(w) = packer.finish()
            {
                self.submit(track, w)?;
            }
        }
        Ok(())
    }
}

/// One call being transcribed: push its audio as it comes, and collect the windows it sends
/// from the other end of its channel.
pub struct CallSession<'a> {
    plan: TrackPlan,
    /// The speaker models, when the session keeps audio for them.
    speakers: Option<&'a SpeakerModels>,
    tracks: Vec<Track>,
    dispatch: Dispatcher<'a>,
    rate: u32,
    channels: usize,
    frames: u64,
}

/// What a finished session knows besides its windows' segments.
pub struct SessionEnd {
    pub plan: TrackPlan,
    pub prosody: Vec<SharedProsody>,
    speakers: Option<Diarization>,
    agent_voice: Option<VoiceSample>,
    roles: RoleHints,
    language: String,
    rate: u32,
    channels: usize,
    frames: u64,
    speech_ms: u64,
    windows: usize,
}

impl<'a> CallSession<'a> {
    pub fn new(
        engines: &'a Engines,
        opts: &'a CallOptions,
        rate: u32,
        channels: usize,
        layout: Layout,
        packing: Packing,
        out: Sender<WindowMsg>,
    ) -> Result<Self, TranscribeError> {
        if opts.language == Language::Zh && !engines.whisper.is_multilingual() {
            return Err(AsrError::EnglishOnly("zh".into()).into());
        }
        if opts.channel_roles.len() > channels {
            return Err(TranscribeError::Options(format!(
                "{} channel roles given for a {channels}-channel recording",
                opts.channel_roles.len()
            )));
        }
        let plan = TrackPlan::new(layout);
        // A finished mono recording is split by speaker (live mono calls are not yet: their
        // turns stay UNKNOWN); a stereo call's agent channel gives the rep's voice when it is to
        // be learned.
        let split = !plan.per_channel() && opts.max_speakers > 0 && packing == Packing::Batch;
        let keep = |role: Role| {
            if split {
                Some(usize::MAX)
            } else if opts.learn_agent_voice && role == Role::Agent {
                Some(LEARN_VOICE_SAMPLES)
            } else {
                None
            }
        };
        let speakers = engines
            .speakers
            .as_ref()
            .filter(|_| plan.tracks.iter().any(|&(_, role)| keep(role).is_some()));
        let mut vad_params = opts.vad.clone();
        if packing == Packing::Live {
            vad_params.max_segment_ms = vad_params.max_segment_ms.min(LIVE_WINDOW_MS);
        }
        let mut tracks = Vec::new();
        for &(channel, role) in &plan.tracks {
            let limit = keep(role).filter(|_| speakers.is_some());
            tracks.push(Track {
                channel,
                audio: limit.map(|_| Vec::new()),
                audio_limit: limit.unwrap_or(0),
                resampler: StreamResampler::new(rate)?,
                vad: StreamVad::new(engines.vad.clone(), vad_params.clone()),
                packer: WindowPacker::default(),
                prosody: SharedProsody::default(),
            });
        }
        Ok(Self {
            plan,
            speakers,
            tracks,
            dispatch: Dispatcher {
                pool: &engines.whisper,
                opts,
                packing,
                decode: None,
                out,
                windows: 0,
                speech_ms: 0,
            },
            rate,
            channels,
            frames: 0,
        })
    }

    pub fn plan(&self) -> &TrackPlan {
        &self.plan
    }

    pub fn prosody(&self) -> Vec<SharedProsody> {
        self.tracks.iter().map(|t| t.prosody.clone()).collect()
    }

    /// Call time received so far (ms).
    pub fn position_ms(&self) -> u64 {
        self.frames * 1000 / u64::from(self.rate.max(1))
    }

    /// Adds one chunk of audio (one Vec per channel).
    pub fn push(&mut self, chunk: &[Vec<f32>]) -> Result<(), TranscribeError> {
        self.frames += chunk.first().map_or(0, Vec::len) as u64;
        let tracks = &mut self.tracks;
        let dispatch = &mut self.dispatch;
        for i in 0..tracks.len() {
            let t = &mut tracks[i];
            let samples = t.resampler.push(&chunk[t.channel])?;
            if let Some(audio) = &mut t.audio {
                let room = t.audio_limit.saturating_sub(audio.len());
                audio.extend_from_slice(&samples[..room.min(samples.len())]);
            }
            if let Ok(mut p) = t.prosody.lock() {
                p.push(&samples);
            }
            let speech = t.vad.push(&samples)?;
            if let Some(first) = speech.first() {
                // A window never spans the other side's speech: Whisper would run one
                // speaker's words into the next turn. Close the other tracks' windows first.
                let starts = first.start_sample;
                for (j, other) in tracks.iter_mut().enumerate() {
                    if j != i
                        && other.packer.ends_before(starts)
                        && let Some(w) = other.packer.finish()
                    {
                        dispatch.submit(j, w)?;
                    }
                }
            }
            dispatch.speech(i, &mut tracks[i].packer, speech)?;
        }
        if self.dispatch.packing == Packing::Live {
            let settled = self
                .tracks
                .iter()
                .map(|t| t.vad.settled_sample() / SAMPLES_PER_MS)
                .collect();
            let _ = self.dispatch.out.send(WindowMsg::Settled(settled));
        }
        Ok(())
    }

    /// Flushes what is still buffered. The channel closes when the session is dropped.
    pub fn finish(self) -> Result<SessionEnd, TranscribeError> {
        let Self {
            plan,
            speakers,
            tracks,
            mut dispatch,
            rate,
            channels,
            frames,
        } = self;
        let mut prosody = Vec::new();
        let mut kept_audio = None;
        for (i, t) in tracks.into_iter().enumerate() {
            let Track {
                audio,
                audio_limit,
                mut resampler,
                mut vad,
                mut packer,
                prosody: track_prosody,
                ..
            } = t;
            let tail = resampler.finish()?;
            if let Ok(mut p) = track_prosody.lock() {
                p.push(&tail);
            }
            if let Some(mut audio) = audio {
                let room = audio_limit.saturating_sub(audio.len());
                audio.extend_from_slice(&tail[..room.min(tail.len())]);
                kept_audio = Some(audio);
            }
            prosody.push(track_prosody);
            let mut speech = vad.push(&tail)?;
            speech.extend(vad.finish()?);
            dispatch.speech(i, &mut packer, speech)?;
            if let Some(w) = packer.finish() {
                dispatch.submit(i, w)?;
            }
        }
        // While Whisper decodes the last windows.
        let (mut diarization, mut agent_voice) = (None, None);
        if let (Some(models), Some(audio)) = (speakers, kept_audio) {
            if plan.per_channel() {
                agent_voice = models.voice(&audio).map_err(TranscribeError::Speakers)?;
            } else {
                let d = models.diarize(&audio, dispatch.opts.max_speakers);
                diarization = Some(d.map_err(TranscribeError::Speakers)?);
            }
        }
        let language = match (dispatch.decode, dispatch.opts.language) {
            (Some(d), _) => d.language,
            (None, Language::Zh) => "zh".into(),
            (None, Language::En) => "en".into(),
            (None, Language::Auto) => String::new(), // no speech: nothing to detect
        };
        Ok(SessionEnd {
            plan,
            prosody,
            speakers: diarization,
            agent_voice,
            roles: dispatch.opts.roles.clone(),
            language,
            rate,
            channels,
            frames,
            speech_ms: dispatch.speech_ms,
            windows: dispatch.windows,
        })
    }
}

impl SessionEnd {
    /// The transcript, from the segments of every window the session sent.
    pub fn transcript(self, segments: Vec<Turn>) -> CallTranscript {
        let (turns, speakers) =
            self.plan
                .turns(segments, &self.prosody, self.speakers.as_ref(), &self.roles);
        CallTranscript {
            turns,
            speakers,
            language: self.language,
            duration_ms: self.frames * 1000 / u64::from(self.rate.max(1)),
            sample_rate: self.rate,
            channels: self.channels,
            layout: self.plan.layout,
            speech_ms: self.speech_ms,
            windows: self.windows,
            agent_voice: self.agent_voice,
            repaired: None,
        }
    }
}

/// Maps a window's segment, and its words, to call time.
fn to_call_time(seg: Segment, window: &Window, role: Role, channel: Option<usize>) -> Turn {
    let words = seg
        .words
        .into_iter()
        .map(|w| {
            let start_ms = window.to_call_ms(w.start_ms);
            // A word takes time: whisper.cpp gives some tokens no duration of their own.
            Word {
                start_ms,
                end_ms: window.to_call_ms(w.end_ms).max(start_ms + 1),
                ..w
            }
        })
        .collect();
    let start_ms = window.to_call_ms(seg.start_ms);
    Turn {
        role,
        role_source: if channel.is_some() {
            RoleSource::Channel
        } else {
            RoleSource::Unknown
        },
        role_confidence: None,
        speaker: None,
        channel,
        start_ms,
        end_ms: window.to_call_ms(seg.end_ms).max(start_ms),
        text: seg.text,
        words,
        avg_logprob: seg.avg_logprob,
        prosody: None,
    }
}
