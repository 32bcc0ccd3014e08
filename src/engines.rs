//! Opening the inference engines from the model directory.

use crate::asr::{AsrError, WhisperEngine};
use crate::audio::vad::Vad;
use crate::models::ModelDir;
use crate::onnx::{self, OnnxError};
use crate::text::embed::{EmbedError, Embedder};
use std::path::PathBuf;

/// Which Whisper model to use: a shipped one by name, or a user's own GGML file.
#[derive(Debug, Clone)]
pub enum WhisperChoice {
    Named(String),
    File(PathBuf),
}

impl WhisperChoice {
    /// `base` and `tiny.en` name installed models; anything else is a path to a GGML file.
    pub fn parse(s: &str) -> Self {
        match s {
            "base" | "tiny.en" => WhisperChoice::Named(s.to_owned()),
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
    threads: usize,
) -> Result<WhisperEngine, AsrError> {
    WhisperEngine::load(&choice.path(dir), threads)
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

/// The default number of threads for one Whisper decode: all cores.
pub fn default_threads() -> usize {
    std::thread::available_parallelism().map_or(1, |n| n.get())
}
