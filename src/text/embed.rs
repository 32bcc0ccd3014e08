//! Multilingual sentence embeddings (Universal Sentence Encoder multilingual, 512-d).

use crate::models::embedding::{ROW_SPLITS, TOKEN_IDS};
use crate::onnx::{OnnxError, run_err};
use ndarray::Array1;
use ort::session::Session;
use ort::value::Tensor;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, PoisonError};
use tokenizers::Tokenizer;
use tokio_util::sync::CancellationToken;

pub const DIM: usize = 512;

#[derive(Debug, thiserror::Error)]
pub enum EmbedError {
    #[error(transparent)]
    Onnx(#[from] OnnxError),
    #[error("tokenizer {path}: {detail}")]
    Tokenizer { path: String, detail: String },
    #[error("tokenizing {text:?}: {detail}")]
    Tokenize { text: String, detail: String },
    #[error("cancelled")]
    Cancelled,
}

/// Text beyond this many characters is not embedded: a sentence of a call is far shorter, and
/// the encoder's memory grows with the square of its input.
pub const MAX_CHARS: usize = 1_000;

/// A handle on the sentence encoder. Clones share one session (taken in turn, for the few
/// milliseconds of one text) and one tokenizer; each may carry the cancellation token of the
/// call it works for, so that work for a caller who left stops at the next text.
#[derive(Clone)]
pub struct Embedder {
    session: Arc<Mutex<Session>>,
    tokenizer: Arc<Tokenizer>,
    cancel: CancellationToken,
}

/// The tokenizer of `path`, loaded once per process: loading it costs about 125 MB of memory,
/// and every embedder of a busy service can share it (encoding needs no lock).
fn shared_tokenizer(path: &Path) -> Result<Arc<Tokenizer>, EmbedError> {
    static LOADED: Mutex<Vec<(PathBuf, Arc<Tokenizer>)>> = Mutex::new(Vec::new());
    let mut loaded = LOADED.lock().unwrap_or_else(PoisonError::into_inner);
    if let Some((_, t)) = loaded.iter().find(|(p, _)| p == path) {
        return Ok(t.clone());
    }
    let tokenizer = Tokenizer::from_file(path).map_err(|e| EmbedError::Tokenizer {
        path: path.display().to_string(),
        detail: e.to_string(),
    })?;
    let tokenizer = Arc::new(tokenizer);
    loaded.push((path.to_owned(), tokenizer.clone()));
    Ok(tokenizer)
}

impl Embedder {
    pub fn new(session: Session, tokenizer_path: &Path) -> Result<Self, EmbedError> {
        Ok(Self {
            session: Arc::new(Mutex::new(session)),
            tokenizer: shared_tokenizer(tokenizer_path)?,
            cancel: CancellationToken::new(),
        })
    }

    /// The same encoder, working for a call that `cancel` stops.
    pub fn for_call(&self, cancel: &CancellationToken) -> Self {
        Self {
            cancel: cancel.clone(),
            ..self.clone()
        }
    }

    pub fn token_ids(&self, text: &str) -> Result<Vec<i32>, EmbedError> {
        let enc = self
            .tokenizer
            .encode(text, true)
            .map_err(|e| EmbedError::Tokenize {
                text: text.chars().take(40).collect(),
                detail: e.to_string(),
            })?;
        Ok(enc.get_ids().iter().map(|&id| id as i32).collect())
    }

    /// The L2-normalised embedding of one text. Texts are run one per call: the int8 graph gives
    /// slightly different results when texts are batched.
    pub fn embed(&mut self, text: &str) -> Result<Vec<f32>, EmbedError> {
        let text = match text.char_indices().nth(MAX_CHARS) {
            Some((end, _)) => &text[..end],
            None => text,
        };
        self.embed_whole(text)
    }

    /// The embedding of a whole text, however long: for training data, which is known and
    /// bounded, so that `callqa train emotion` reproduces the committed head.
    pub fn embed_whole(&mut self, text: &str) -> Result<Vec<f32>, EmbedError> {
        if self.cancel.is_cancelled() {
            return Err(EmbedError::Cancelled);
        }
        let ids = self.token_ids(text)?;
        let n = ids.len() as i64;
        let ids = Tensor::from_array(Array1::from_vec(ids)).map_err(run_err)?;
        let splits = Tensor::from_array(Array1::from_vec(vec![0i64, n])).map_err(run_err)?;
        // A panic in another call's run leaves the session as it was: still usable.
        let mut session = self.session.lock().unwrap_or_else(PoisonError::into_inner);
        let outputs = session
            .run(ort::inputs![TOKEN_IDS => ids, ROW_SPLITS => splits])
            .map_err(run_err)?;
        let (_, v) = outputs[0].try_extract_tensor::<f32>().map_err(run_err)?;
        let norm = v.iter().map(|x| x * x).sum::<f32>().sqrt().max(1e-12);
        Ok(v.iter().map(|x| x / norm).collect())
    }
}

/// Cosine similarity of two embeddings.
pub fn cosine(a: &[f32], b: &[f32]) -> f32 {
    let dot: f32 = a.iter().zip(b).map(|(x, y)| x * y).sum();
    let na = a.iter().map(|x| x * x).sum::<f32>().sqrt();
    let nb = b.iter().map(|x| x * x).sum::<f32>().sqrt();
    dot / (na * nb).max(1e-12)
}
