//! Opening the inference engines from the model directory.

use super::Models;
use crate::analysis::emotion::EmotionHead;
use crate::analysis::playbook::Playbook;
use crate::analysis::{Analysis, CallInfo};
use crate::asr::pool::PoolConfig;
use crate::asr::{AsrError, WhisperPool};
use crate::audio::vad::Vad;
use crate::models::ModelDir;
use crate::onnx::{self, OnnxError};
use crate::text::embed::{EmbedError, Embedder};
use crate::transcript::{Engines, Turn};
use std::path::PathBuf;
use std::sync::{Mutex, MutexGuard, PoisonError};

/// A model that would not open.
#[derive(Debug, thiserror::Error)]
pub enum LoadError {
    #[error(transparent)]
    Onnx(#[from] OnnxError),
    #[error(transparent)]
    Whisper(#[from] AsrError),
    #[error(transparent)]
    Embed(#[from] EmbedError),
}

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

/// The analyser every call shares, opened when first needed. Calls take turns with it: a turn
/// holds it for milliseconds against seconds of transcription, and each more would cost 75 MB.
pub struct AnalyserPool {
    dir: ModelDir,
    shared: Mutex<Option<Analyser>>,
}

impl AnalyserPool {
    pub fn new(dir: ModelDir) -> Self {
        Self {
            dir,
            shared: Mutex::new(None),
        }
    }

    /// Uses an analyser opened ahead of time.
    pub fn add(&self, analyser: Analyser) {
        *self.lock() = Some(analyser);
    }

    fn lock(&self) -> MutexGuard<'_, Option<Analyser>> {
        // A panic in another call's `f` leaves the analyser as it was: still usable.
        self.shared.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Runs `f` with the analyser, once no other call is using it.
    pub fn with<T, E: From<EmbedError>>(
        &self,
        f: impl FnOnce(&mut Analyser) -> Result<T, E>,
    ) -> Result<T, E> {
        let mut shared = self.lock();
        if shared.is_none() {
            *shared = Some(Analyser::new(&self.dir)?);
        }
        f(shared.as_mut().expect("opened above"))
    }
}

/// Everything a call transcription needs: the Whisper pool and the VAD.
pub fn transcription(
    dir: &ModelDir,
    choice: &WhisperChoice,
    config: &PoolConfig,
) -> Result<Engines, LoadError> {
    let vad = vad(dir)?;
    let pool = whisper(dir, choice, config)?;
    Ok(Engines::new(pool, vad))
}

impl Models {
    /// Opens every model an inspection uses, so that a service that loaded is ready.
    pub fn load(
        dir: &ModelDir,
        choice: &WhisperChoice,
        config: &PoolConfig,
    ) -> Result<Self, LoadError> {
        let analysers = AnalyserPool::new(dir.clone());
        analysers.add(Analyser::new(dir)?);
        Ok(Self {
            engines: Some(transcription(dir, choice, config)?),
            analysers,
        })
    }
}

pub fn cores() -> usize {
    std::thread::available_parallelism().map_or(1, |n| n.get())
}
