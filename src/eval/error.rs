//! The error of the measurement commands: reference data that cannot be read or makes no sense,
//! and the engines' own errors.

use crate::audio::DecodeError;
use crate::onnx::OnnxError;
use crate::text::embed::EmbedError;
use crate::transcript::TranscribeError;
use std::fmt::Display;

#[derive(Debug, thiserror::Error)]
pub enum EvalError {
    /// Reference data, a peer or a child process that did not do what was expected.
    #[error("{0}")]
    Data(String),
    #[error(transparent)]
    Io(#[from] std::io::Error),
    #[error(transparent)]
    Embed(#[from] EmbedError),
    #[error(transparent)]
    Onnx(#[from] OnnxError),
    #[error(transparent)]
    Decode(#[from] DecodeError),
    #[error(transparent)]
    Transcribe(#[from] TranscribeError),
    #[error(transparent)]
    Audio(#[from] crate::audio::AudioError),
    #[error("{}: {}", .0.code(), .0.message())]
    Status(#[from] tonic::Status),
    #[error(transparent)]
    Transport(#[from] tonic::transport::Error),
    #[error("a worker failed: {0}")]
    Worker(#[from] tokio::task::JoinError),
    #[error(transparent)]
    Playbook(#[from] crate::analysis::playbook::PlaybookError),
    #[error(transparent)]
    Json(#[from] serde_json::Error),
    #[error(transparent)]
    Zip(#[from] zip::result::ZipError),
    #[error(transparent)]
    Number(#[from] std::num::ParseFloatError),
}

pub type Result<T, E = EvalError> = std::result::Result<T, E>;

/// What went wrong, said with what it was about (the reference file, the column…).
pub trait Context<T> {
    fn context(self, what: impl Display) -> Result<T>;
    fn with_context<D: Display>(self, what: impl FnOnce() -> D) -> Result<T>;
}

impl<T, E: Display> Context<T> for std::result::Result<T, E> {
    fn context(self, what: impl Display) -> Result<T> {
        self.map_err(|e| EvalError::Data(format!("{what}: {e}")))
    }
    fn with_context<D: Display>(self, what: impl FnOnce() -> D) -> Result<T> {
        self.map_err(|e| EvalError::Data(format!("{}: {e}", what())))
    }
}

impl<T> Context<T> for Option<T> {
    fn context(self, what: impl Display) -> Result<T> {
        self.ok_or_else(|| EvalError::Data(what.to_string()))
    }
    fn with_context<D: Display>(self, what: impl FnOnce() -> D) -> Result<T> {
        self.ok_or_else(|| EvalError::Data(what().to_string()))
    }
}

/// Returns early with a `Data` error.
macro_rules! bail {
    ($($arg:tt)*) => {
        return Err($crate::eval::EvalError::Data(format!($($arg)*)))
    };
}
pub(crate) use bail;
