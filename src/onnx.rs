//! ONNX Runtime, loaded at run time from the library that `callqa models install` put in the
//! model directory (so a missing library is a clear error, never a panic or a link failure).

use ort::environment::Environment;
use ort::session::Session;
use std::path::{Path, PathBuf};
use std::sync::OnceLock;

#[derive(Debug, Clone, thiserror::Error)]
pub enum OnnxError {
    #[error("ONNX Runtime library {path}: {detail}")]
    Library { path: PathBuf, detail: String },
    #[error("ONNX model {path}: {detail}")]
    Model { path: PathBuf, detail: String },
    #[error("ONNX inference: {0}")]
    Run(String),
}

static ENVIRONMENT: OnceLock<Result<Environment, OnnxError>> = OnceLock::new();

/// Loads the ONNX Runtime library once per process: the first path given is the one loaded.
pub fn environment(lib: &Path) -> Result<&'static Environment, OnnxError> {
    ENVIRONMENT
        .get_or_init(|| {
            let path = lib.to_owned();
            let fail = |detail: String| OnnxError::Library {
                path: path.clone(),
                detail,
            };
            if !path.is_file() {
                return Err(fail("not found; run `callqa models install`".into()));
            }
            ort::init_from(&path)
                .map_err(|e| fail(e.to_string()))?
                .with_name("callqa")
                .build()
                .map_err(|e| fail(e.to_string()))
        })
        .as_ref()
        .map_err(Clone::clone)
}

/// Opens a model on one intra-op thread: callqa runs many small models side by side and
/// parallelises across calls instead.
pub fn session(env: &Environment, path: &Path) -> Result<Session, OnnxError> {
    let fail = |detail: String| OnnxError::Model {
        path: path.to_owned(),
        detail,
    };
    if !path.is_file() {
        return Err(fail("not found; run `callqa models install`".into()));
    }
    Session::builder(env)
        .map_err(|e| fail(e.to_string()))?
        .with_intra_threads(1)
        .map_err(|e| fail(e.to_string()))?
        .commit_from_file(path)
        .map_err(|e| fail(e.to_string()))
}

pub(crate) fn run_err(e: impl std::fmt::Display) -> OnnxError {
    OnnxError::Run(e.to_string())
}
