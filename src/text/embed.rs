//! Multilingual sentence embeddings: Universal Sentence Encoder multilingual (512-d) or
//! multilingual-e5-small (384-d).

use super::unigram::{Unigram, VocabularyError};
use crate::models::e5::INPUT_IDS;
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

/// The sentence encoders callqa can run.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Encoder {
    /// Universal Sentence Encoder multilingual v3, 512-d.
    Use,
    /// multilingual-e5-small (4-bit), 384-d; every text takes the `query: ` prefix, as the model
    /// card asks for symmetric tasks.
    E5,
}

impl Encoder {
    pub fn dim(self) -> usize {
        match self {
            Encoder::Use => DIM,
            Encoder::E5 => 384,
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            Encoder::Use => "use",
            Encoder::E5 => "e5",
        }
    }

    /// The model id in `models/manifest.toml`.
    pub fn model_id(self) -> &'static str {
        match self {
            Encoder::Use => "sentence-encoder",
            Encoder::E5 => "e5-small",
        }
    }
}

#[derive(Debug, thiserror::Error)]
#[error("unknown sentence encoder {0:?} (use, e5)")]
pub struct UnknownEncoder(String);

impl std::str::FromStr for Encoder {
    type Err = UnknownEncoder;
    fn from_str(s: &str) -> Result<Self, UnknownEncoder> {
        match s {
            "use" => Ok(Encoder::Use),
            "e5" => Ok(Encoder::E5),
            _ => Err(UnknownEncoder(s.to_owned())),
        }
    }
}

/// E5's longest input, `<s>` and `</s>` included.
const E5_MAX_TOKENS: usize = 512;

#[derive(Debug, thiserror::Error)]
pub enum EmbedError {
    #[error(transparent)]
    Onnx(#[from] OnnxError),
    #[error(transparent)]
    Vocabulary(#[from] VocabularyError),
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
    tokenizer: Tokens,
    cancel: CancellationToken,
}

#[derive(Clone)]
enum Tokens {
    Use(Arc<Tokenizer>),
    E5(Arc<Unigram>),
}

/// The tokenizer of `path`, loaded once per process: loading USE's costs about 125 MB of
/// memory, and every embedder of a busy service can share it (encoding needs no lock).
fn shared_tokenizer(encoder: Encoder, path: &Path) -> Result<Tokens, EmbedError> {
    static LOADED: Mutex<Vec<(PathBuf, Tokens)>> = Mutex::new(Vec::new());
    let mut loaded = LOADED.lock().unwrap_or_else(PoisonError::into_inner);
    if let Some((_, t)) = loaded.iter().find(|(p, _)| p == path) {
        return Ok(t.clone());
    }
    let fail = |detail: String| EmbedError::Tokenizer {
        path: path.display().to_string(),
        detail,
    };
    let tokenizer = match encoder {
        Encoder::Use => Tokens::Use(Arc::new(
            Tokenizer::from_file(path).map_err(|e| fail(e.to_string()))?,
        )),
        Encoder::E5 => {
            let file = std::fs::read(path).map_err(|e| fail(e.to_string()))?;
            Tokens::E5(Arc::new(Unigram::parse(&file)?))
        }
    };
    loaded.push((path.to_owned(), tokenizer.clone()));
    Ok(tokenizer)
}

impl Embedder {
    pub fn new(
        encoder: Encoder,
        session: Session,
        tokenizer_path: &Path,
    ) -> Result<Self, EmbedError> {
        Ok(Self {
            session: Arc::new(Mutex::new(session)),
            tokenizer: shared_tokenizer(encoder, tokenizer_path)?,
            cancel: CancellationToken::new(),
        })
    }

    pub fn encoder(&self) -> Encoder {
        match self.tokenizer {
            Tokens::Use(_) => Encoder::Use,
            Tokens::E5(_) => Encoder::E5,
        }
    }

    /// The same encoder, working for a call that `cancel` stops.
    pub fn for_call(&self, cancel: &CancellationToken) -> Self {
        Self {
            cancel: cancel.clone(),
            ..self.clone()
        }
    }

    /// The ids the encoder reads for `text` (for E5: `<s>`, the prefix, at most 510 pieces, `</s>`).
    pub fn token_ids(&self, text: &str) -> Result<Vec<i64>, EmbedError> {
        match &self.tokenizer {
            Tokens::Use(t) => {
                let enc = t.encode(text, true).map_err(|e| EmbedError::Tokenize {
                    text: text.chars().take(40).collect(),
                    detail: e.to_string(),
                })?;
                Ok(enc.get_ids().iter().map(|&id| i64::from(id)).collect())
            }
            Tokens::E5(t) => {
                let mut pieces = t.pieces(&format!("query: {text}"));
                pieces.truncate(E5_MAX_TOKENS - 2);
                let ids = [t.bos].into_iter().chain(pieces).chain([t.eos]);
                Ok(ids.map(i64::from).collect())
            }
        }
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
        let inputs = match self.tokenizer {
            Tokens::Use(_) => {
                let ids: Vec<i32> = ids.into_iter().map(|id| id as i32).collect();
                let ids = Tensor::from_array(Array1::from_vec(ids)).map_err(run_err)?;
                let splits =
                    Tensor::from_array(Array1::from_vec(vec![0i64, n])).map_err(run_err)?;
                ort::inputs![TOKEN_IDS => ids, ROW_SPLITS => splits]
            }
            Tokens::E5(_) => {
                let ids = Tensor::from_array(Array1::from_vec(ids)).map_err(run_err)?;
                ort::inputs![INPUT_IDS => ids]
            }
        };
        // A panic in another call's run leaves the session as it was: still usable.
        let mut session = self.session.lock().unwrap_or_else(PoisonError::into_inner);
        let outputs = session.run(inputs).map_err(run_err)?;
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
