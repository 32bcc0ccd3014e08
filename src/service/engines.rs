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
use crate::speakers::{Segmenter, SpeakerEncoder, SpeakerModels};
use crate::text::embed::{EmbedError, Embedder, Encoder};
use crate::transcript::{Engines, Turn};
use std::path::PathBuf;
use std::sync::OnceLock;
use tokio_util::sync::CancellationToken;

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

/// The speaker models: segmentation and voiceprints.
pub fn speaker_models(dir: &ModelDir) -> Result<SpeakerModels, OnnxError> {
    let env = onnx::environment(&dir.onnxruntime_lib())?;
    Ok(SpeakerModels {
        segmenter: Segmenter::new(onnx::session(env, &dir.file("speaker-segmentation", 0))?),
        encoder: SpeakerEncoder::new(onnx::session(env, &dir.file("speaker-encoder", 0))?),
    })
}

/// The sentence encoder the analysers use.
pub fn embedder(dir: &ModelDir) -> Result<Embedder, EmbedError> {
    sentence_encoder(dir, Encoder::Use)
}

/// One of the sentence encoders, by name (for measuring them side by side).
pub fn sentence_encoder(dir: &ModelDir, encoder: Encoder) -> Result<Embedder, EmbedError> {
    let env = onnx::environment(&dir.onnxruntime_lib())?;
    let id = encoder.model_id();
    let session = onnx::session(env, &dir.file(id, 0))?;
    Embedder::new(encoder, session, &dir.file(id, 1))
}

/// The emotion head built into the binary, on the installed ONNX Runtime.
pub fn emotion_head(dir: &ModelDir) -> Result<EmotionHead, OnnxError> {
    EmotionHead::new(onnx::environment(&dir.onnxruntime_lib())?)
}

/// The models the analysers need (sentence encoder, emotion head). Clones share the models.
#[derive(Clone)]
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

    /// The same models, working for a call that `cancel` stops.
    pub fn for_call(&self, cancel: &CancellationToken) -> Self {
        Self {
            embedder: self.embedder.for_call(cancel),
            head: self.head.clone(),
        }
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

/// The analysers' models, opened once (when first needed) and shared by every call: calls take
/// turns text by text, and each more copy would cost 75 MB.
pub struct Analysers {
    dir: ModelDir,
    shared: OnceLock<Analyser>,
}

impl Analysers {
    pub fn new(dir: ModelDir) -> Self {
        Self {
            dir,
            shared: OnceLock::new(),
        }
    }

    /// Opens the models now, so that a failure shows at start.
    pub fn open(dir: ModelDir) -> Result<Self, EmbedError> {
        let analysers = Self::new(dir);
        analysers.for_call(&CancellationToken::new())?;
        Ok(analysers)
    }

    /// An analyser for one call.
    pub fn for_call(&self, cancel: &CancellationToken) -> Result<Analyser, EmbedError> {
        if let Some(a) = self.shared.get() {
            return Ok(a.for_call(cancel));
        }
        let opened = Analyser::new(&self.dir)?;
        Ok(self.shared.get_or_init(|| opened).for_call(cancel))
    }
}

/// Everything a call transcription needs: the Whisper pool, the VAD and the speaker models.
pub fn transcription(
    dir: &ModelDir,
    choice: &WhisperChoice,
    config: &PoolConfig,
) -> Result<Engines, LoadError> {
    let vad = vad(dir)?;
    let speakers = speaker_models(dir)?;
    let pool = whisper(dir, choice, config)?;
    Ok(Engines::new(pool, vad).with_speakers(speakers))
}

impl Models {
    /// Opens every model an inspection uses, so that a service that loaded is ready.
    pub fn load(
        dir: &ModelDir,
        choice: &WhisperChoice,
        config: &PoolConfig,
    ) -> Result<Self, LoadError> {
        let analysers = Analysers::open(dir.clone())?;
        Ok(Self {
            engines: Some(transcription(dir, choice, config)?),
            analysers,
        })
    }
}

pub fn cores() -> usize {
    std::thread::available_parallelism().map_or(1, |n| n.get())
}
