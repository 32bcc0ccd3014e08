//! Opening the inference engines from the model directory.

use crate::analysis::emotion::EmotionHead;
use crate::analysis::playbook::Playbook;
use crate::analysis::{Analysis, CallInfo};
use crate::asr::pool::PoolConfig;
use crate::asr::{AsrError, WhisperPool};
use crate::audio::vad::Vad;
use crate::models::ModelDir;
use crate::onnx::{self, OnnxError};
use crate::pipeline::Engines;
use crate::pipeline::Turn;
use crate::text::embed::{EmbedError, Embedder};
use std::path::PathBuf;
use std::sync::{Condvar, Mutex, MutexGuard, PoisonError};

/// Which Whisper model to use: a shipped one by name, or a user's own GGML file.
#[derive(Debug, Clone)]
pub enum WhisperChoice {
    Named(String),
    File(PathBuf),
}

impl WhisperChoice {
    /// `base`, `base-q8` and `tiny.en` name installed models; anything else is a path to a GGML file.
    pub fn parse(s: &str) -> Self {
        match s {
            "base" | "base-q8" | "tiny.en" => WhisperChoice::Named(s.to_owned()),
            path => WhisperChoice::File(path.into()),
        }
    }

    pub fn path(&self, dir: &ModelDir) -> PathBuf {
        match self {
            WhisperChoice::Named(name) => {
                dir.whisper(name).expect("named models are in the manifest")
            }
            WhisperChoice::File(path) => path.clone(),
        }
    }
}

pub fn whisper(
    dir: &ModelDir,
    choice: &WhisperChoice,
    config: &PoolConfig,
) -> Result<WhisperPool, AsrError> {
    WhisperPool::load(&choice.path(dir), config)
}

pub fn vad(dir: &ModelDir) -> Result<Vad, OnnxError> {
    let env = onnx::environment(&dir.onnxruntime_lib())?;
    Ok(Vad::new(onnx::session(env, &dir.file("silero-vad", 0))?))
}

pub fn embedder(dir: &ModelDir) -> Result<Embedder, EmbedError> {
    let env = onnx::environment(&dir.onnxruntime_lib())?;
    let session = onnx::session(env, &dir.file("sentence-encoder", 0))?;
    Embedder::new(session, &dir.file("sentence-encoder", 1))
}

/// The emotion head built into the binary, on the installed ONNX Runtime.
pub fn emotion_head(dir: &ModelDir) -> Result<EmotionHead, OnnxError> {
    EmotionHead::new(onnx::environment(&dir.onnxruntime_lib())?)
}

/// The models the analysers need (sentence encoder, emotion head), opened once for any number
/// of calls.
pub struct Analyser {
    embedder: Embedder,
    head: EmotionHead,
}

impl Analyser {
    pub fn new(dir: &ModelDir) -> Result<Self, EmbedError> {
        Ok(Self {
            embedder: embedder(dir)?,
            head: emotion_head(dir)?,
        })
    }

    /// The sentence encoder and the emotion head, for analysers that run turn by turn.
    pub fn parts(&mut self) -> (&mut Embedder, &mut EmotionHead) {
        (&mut self.embedder, &mut self.head)
    }

    pub fn run(
        &mut self,
        playbook: &Playbook,
        info: CallInfo,
        turns: Vec<Turn>,
    ) -> Result<Analysis, EmbedError> {
        crate::analysis::analyse(playbook, info, turns, &mut self.embedder, &mut self.head)
    }
}

/// A few analysers, opened when first needed and reused: many calls share them, one at a time
/// each. At most `limit` are open (each holds a sentence encoder of about 75 MB); a call that
/// finds them all busy waits for one, which takes milliseconds per turn.
pub struct AnalyserPool {
    dir: ModelDir,
    limit: usize,
    state: Mutex<Opened>,
    returned: Condvar,
}

#[derive(Default)]
struct Opened {
    idle: Vec<Analyser>,
    count: usize,
}

impl AnalyserPool {
    /// One analyser: a turn takes milliseconds against seconds of transcription, so calls
    /// rarely wait for it, and each more costs 75 MB.
    pub fn new(dir: ModelDir) -> Self {
        Self::with_limit(dir, 1)
    }

    pub fn with_limit(dir: ModelDir, limit: usize) -> Self {
        Self {
            dir,
            limit: limit.max(1),
            state: Mutex::default(),
            returned: Condvar::new(),
        }
    }

    fn lock(&self) -> MutexGuard<'_, Opened> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Adds an analyser opened ahead of time.
    pub fn add(&self, analyser: Analyser) {
        let mut state = self.lock();
        state.count += 1;
        state.idle.push(analyser);
        self.returned.notify_one();
    }

    /// Runs `f` with an idle analyser, a new one while fewer than the limit are open, or else
    /// the first one given back.
    pub fn with<T, E: From<EmbedError>>(
        &self,
        f: impl FnOnce(&mut Analyser) -> Result<T, E>,
    ) -> Result<T, E> {
        let mut state = self.lock();
        let analyser = loop {
            if let Some(a) = state.idle.pop() {
                drop(state);
                break a;
            }
            if state.count < self.limit {
                state.count += 1;
                drop(state);
                match Analyser::new(&self.dir) {
                    Ok(a) => break a,
                    Err(e) => {
                        self.lock().count -= 1;
                        self.returned.notify_one();
                        return Err(e.into());
                    }
                }
            }
            state = self
                .returned
                .wait(state)
                .unwrap_or_else(PoisonError::into_inner);
        };
        let mut lent = Lent {
            pool: self,
            analyser: Some(analyser),
        };
        f(lent.analyser.as_mut().expect("lent until dropped"))
    }
}

/// An analyser out of the pool; it goes back even if its user panics.
struct Lent<'p> {
    pool: &'p AnalyserPool,
    analyser: Option<Analyser>,
}

impl Drop for Lent<'_> {
    fn drop(&mut self) {
        if let Some(a) = self.analyser.take() {
            self.pool.lock().idle.push(a);
            self.pool.returned.notify_one();
        }
    }
}

/// Everything a call transcription needs: the Whisper pool and VAD sessions.
pub fn pipeline(
    dir: &ModelDir,
    choice: &WhisperChoice,
    config: &PoolConfig,
) -> Result<Engines, String> {
    let vad = vad(dir).map_err(|e| e.to_string())?;
    let pool = whisper(dir, choice, config).map_err(|e| e.to_string())?;
    Ok(Engines::new(pool, vad))
}

pub fn cores() -> usize {
    std::thread::available_parallelism().map_or(1, |n| n.get())
}
