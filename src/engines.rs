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
use std::sync::Mutex;

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
/// each, so a busy service holds as many as run at once and no more.
pub struct AnalyserPool {
    dir: ModelDir,
    idle: Mutex<Vec<Analyser>>,
}

impl AnalyserPool {
    pub fn new(dir: ModelDir) -> Self {
        Self {
            dir,
            idle: Mutex::new(Vec::new()),
        }
    }

    /// Adds an analyser opened ahead of time.
    pub fn give_back(&self, analyser: Analyser) {
        if let Ok(mut idle) = self.idle.lock() {
            idle.push(analyser);
        }
    }

    /// Runs `f` with an idle analyser (or a new one), then puts it back.
    pub fn with<T, E: From<EmbedError>>(
        &self,
        f: impl FnOnce(&mut Analyser) -> Result<T, E>,
    ) -> Result<T, E> {
        let reused = self.idle.lock().ok().and_then(|mut v| v.pop());
        let mut analyser = match reused {
            Some(a) => a,
            None => Analyser::new(&self.dir)?,
        };
        let out = f(&mut analyser);
        self.give_back(analyser);
        out
    }
}

/// Everything a call transcription needs: the Whisper pool and VAD sessions.
pub fn pipeline(
    dir: &ModelDir,
    choice: &WhisperChoice,
    config: &PoolConfig,
) -> Result<Engines, String> {
    vad(dir).map_err(|e| e.to_string())?; // fail now, not on the first call
    let pool = whisper(dir, choice, config).map_err(|e| e.to_string())?;
    let dir = dir.clone();
    Ok(Engines::new(pool, move || vad(&dir)))
}

pub fn cores() -> usize {
    std::thread::available_parallelism().map_or(1, |n| n.get())
}
