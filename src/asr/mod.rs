//! Speech recognition with whisper.cpp (through whisper-rs): one loaded model, a pool of
//! decoding states, hallucination guards and Mandarin clean-up.

pub mod guards;
pub mod pool;
pub mod window;

use serde::Serialize;
use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};
use whisper_rs::{
    DtwMode, DtwModelPreset, DtwParameters, FullParams, SamplingStrategy, WhisperContext,
    WhisperContextParameters, WhisperState,
};

pub use pool::WhisperPool;

/// Steers small multilingual models to Simplified Mandarin with punctuation.
pub const ZH_PROMPT: &str = "以下是普通话的句子。";
const SAMPLE_RATE: usize = 16_000;

#[derive(Debug, Clone, thiserror::Error)]
pub enum AsrError {
    #[error("Whisper model {path}: {detail}")]
    Model { path: String, detail: String },
    #[error("the Whisper model is English-only; it cannot transcribe language {0:?}")]
    EnglishOnly(String),
    #[error("Whisper: {0}")]
    Run(String),
    #[error("the transcription pool has shut down")]
    PoolClosed,
}

fn run_err(e: impl std::fmt::Display) -> AsrError {
    AsrError::Run(e.to_string())
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, clap::ValueEnum, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Language {
    #[default]
    Auto,
    Zh,
    En,
}

/// A token with its time, inside a segment.
#[derive(Debug, Clone, Serialize, serde::Deserialize, PartialEq)]
pub struct Word {
    pub text: String,
    pub start_ms: u64,
    pub end_ms: u64,
    pub probability: f32,
}

/// One recognised stretch of speech. Times are milliseconds (relative to the window until the
/// pipeline maps them to call time).
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct Segment {
    pub start_ms: u64,
    pub end_ms: u64,
    pub text: String,
    pub words: Vec<Word>,
    /// Mean log-probability of the text tokens (near 0 = confident).
    pub avg_logprob: f32,
}

/// Decoding settings for one window.
#[derive(Debug, Clone)]
pub struct DecodeOptions {
    pub language: String,
    /// Initial prompt: the language hint and the call's hotwords (competitors, products).
    pub prompt: String,
    pub beam_size: usize,
}

/// The initial prompt for a call: the Mandarin hint, then hotwords. Control characters are
/// dropped: whisper.cpp takes a C string, which a NUL would cut (whisper-rs panics on one).
pub fn initial_prompt(language: &str, hotwords: &[String]) -> String {
    let cleaned: Vec<String> = hotwords
        .iter()
        .map(|h| h.chars().filter(|c| !c.is_control()).collect())
        .collect();
    let hot: Vec<&str> = cleaned
        .iter()
        .map(|h| h.trim())
        .filter(|h| !h.is_empty())
        .collect();
    match (language, hot.is_empty()) {
        ("zh", true) => ZH_PROMPT.to_owned(),
        ("zh", false) => format!("{ZH_PROMPT}{}。", hot.join("，")),
        (_, true) => String::new(),
        (_, false) => format!("{}.", hot.join(", ")),
    }
}

/// The loaded model, shared by every state of the pool.
pub struct WhisperModel {
    ctx: Arc<WhisperContext>,
}

impl WhisperModel {
    /// Loads a GGML model. `dtw`: word times by DTW alignment (accurate, ~14 % slower) instead of
    /// whisper.cpp's token timestamps.
    pub fn load(path: &Path, dtw: bool) -> Result<Self, AsrError> {
        let fail = |detail: String| AsrError::Model {
            path: path.display().to_string(),
            detail,
        };
        if !path.is_file() {
            return Err(fail(
                "not found; run `callqa models install` or pass a GGML file".into(),
            ));
        }
        silence_whisper_logs();
        // DTW over the cross-attention heads that align text to audio gives word times; the
        // plain token timestamps drift across pauses.
        let mut cparams = WhisperContextParameters::default();
        if dtw {
            cparams.dtw_parameters(DtwParameters {
                mode: dtw_mode(path),
                ..DtwParameters::default()
            });
        }
        // Flash attention was measured slower on 2 CPU cores (5.3 s vs 4.3 s on a 47 s call).
        let ctx = WhisperContext::new_with_params(path, cparams)
            .map_err(|e| fail(format!("cannot load ({e}); is it a whisper.cpp GGML file?")))?;
        Ok(Self { ctx: Arc::new(ctx) })
    }

    pub fn is_multilingual(&self) -> bool {
        self.ctx.is_multilingual()
    }

    pub fn new_state(&self) -> Result<WhisperState, AsrError> {
        self.ctx.create_state().map_err(run_err)
    }

    /// The language of `audio` (its first 30 s), restricted to what the model can do.
    pub fn detect_language(
        &self,
        state: &mut WhisperState,
        audio: &[f32],
        threads: usize,
    ) -> Result<String, AsrError> {
        if !self.is_multilingual() {
            return Ok("en".into());
        }
        // whisper.cpp needs a full 30 s window of mel frames.
        let mut padded = audio[..audio.len().min(30 * SAMPLE_RATE)].to_vec();
        padded.resize(30 * SAMPLE_RATE, 0.0);
        state.pcm_to_mel(&padded, threads).map_err(run_err)?;
        let (id, _) = state.lang_detect(0, threads).map_err(run_err)?;
        Ok(whisper_rs::get_lang_str(id).unwrap_or("en").to_owned())
    }

    /// Transcribes one window (at most 30 s of 16 kHz mono) on `state`.
    ///
    /// The temperature fallback is bounded (0.0, 0.4, 0.8), and decoding is aborted once it has
    /// taken `budget`, so noise that defeats the guards cannot cost many times real time.
    pub fn transcribe_window(
        &self,
        state: &mut WhisperState,
        audio: &[f32],
        opts: &DecodeOptions,
        threads: usize,
        budget: Duration,
    ) -> Result<Vec<Segment>, AsrError> {
        if !self.is_multilingual() && opts.language != "en" {
            return Err(AsrError::EnglishOnly(opts.language.clone()));
        }
        let strategy = if opts.beam_size > 1 {
            SamplingStrategy::BeamSearch {
                beam_size: opts.beam_size as i32,
                patience: -1.0,
            }
        } else {
            SamplingStrategy::Greedy { best_of: 1 }
        };
        let mut params = FullParams::new(strategy);
        params.set_n_threads(threads as i32);
        params.set_language(Some(&opts.language));
        params.set_print_progress(false);
        params.set_print_realtime(false);
        params.set_print_special(false);
        params.set_print_timestamps(false);
        params.set_suppress_nst(true);
        params.set_token_timestamps(true);
        // Windows are independent: earlier text must not seed a loop in the next window.
        params.set_no_context(true);
        params.set_temperature(0.0);
        params.set_temperature_inc(0.4);
        // whisper.cpp's no-speech probability is read from logits its decoder does not keep for
        // the start-of-transcript token, so it is whatever an earlier window left on the state
        // (ggml-org/whisper.cpp#3945): results would depend on which state decoded what.
        // Its no-speech skip is off; the VAD keeps silence away instead.
        params.set_no_speech_thold(f32::INFINITY);
        params.set_logprob_thold(guards::LOGPROB_THRESHOLD);
        if !opts.prompt.is_empty() {
            params.set_initial_prompt(&opts.prompt);
        }
        // Encode only as much of the 30 s context as the window fills (plus a margin): the
        // encoder's cost is proportional to it. Measured (README): on the tadhack calls callqa
        // went from 1.45× to about 1.0× faster-whisper's time at WER 5.33 % → 5.39 %, and the
        // Mandarin eval CER from 10.5 % to 5.3 %.
        params.set_audio_ctx(audio_ctx(audio.len()));
        let started = Instant::now();
        params.set_abort_callback_safe(move || started.elapsed() > budget);
        if let Err(e) = state.full(params, audio) {
            if started.elapsed() > budget {
                tracing::warn!(
                    "a {:.1} s window took over {budget:?} and was abandoned",
                    audio.len() as f32 / 16_000.0
                );
                return Ok(Vec::new());
            }
            return Err(run_err(e));
        }

        let eot = self.ctx.token_eot();
        let audio_ms = (audio.len() / 16) as u64;
        let clamp = |centis: i64| ((centis.max(0) as u64) * 10).min(audio_ms);
        let zh = opts.language == "zh";
        let mut segments = Vec::new();
        for seg in state.as_iter() {
            let mut words: Vec<Word> = Vec::new();
            let mut logprobs = Vec::new();
            let mut pending: Vec<u8> = Vec::new(); // bytes of a character split across tokens
            let mut pending_start = 0;
            for i in 0..seg.n_tokens() {
                let Some(token) = seg.get_token(i) else {
                    continue;
                };
                if token.token_id() >= eot {
                    continue;
                }
                let data = token.token_data();
                logprobs.push(data.plog);
                let bytes = token.to_bytes().map_err(run_err)?;
                // DTW gives each token the moment it is spoken; without it, whisper.cpp's own
                // token times (which stretch across pauses) are the fallback.
                let start = if data.t_dtw >= 0 { data.t_dtw } else { data.t0 };
                if pending.is_empty() {
                    pending_start = clamp(start);
                }
                pending.extend_from_slice(bytes);
                let Ok(text) = std::str::from_utf8(&pending) else {
                    continue;
                };
                let text = if zh {
                    guards::normalize_zh(text)
                } else {
                    text.to_owned()
                };
                let word = Word {
                    text,
                    start_ms: pending_start,
                    end_ms: clamp(data.t1),
                    probability: data.p,
                };
                // A word ends where the next begins.
                if let Some(prev) = words.last_mut() {
                    prev.end_ms = prev.end_ms.min(pending_start).max(prev.start_ms);
                }
                pending.clear();
                // English tokens that do not start with a space continue the previous word.
                match words.last_mut() {
                    Some(last) if !zh && !word.text.starts_with(' ') && !word.text.is_empty() => {
                        last.text.push_str(&word.text);
                        last.end_ms = word.end_ms;
                        last.probability = last.probability.min(word.probability);
                    }
                    _ => words.push(word),
                }
            }
            for w in &mut words {
                w.text = w.text.trim().to_owned();
            }
            words.retain(|w| !w.text.is_empty());
            let raw = seg.to_str_lossy().map_err(run_err)?;
            let avg_logprob = if logprobs.is_empty() {
                0.0
            } else {
                logprobs.iter().sum::<f32>() / logprobs.len() as f32
            };
            let text = guards::cut_repetitions(raw.trim());
            let text = if zh {
                guards::normalize_zh(&text)
            } else {
                text
            };
            if text.is_empty() || guards::is_credit(&text) {
                continue;
            }
            segments.push(Segment {
                start_ms: clamp(seg.start_timestamp()),
                end_ms: clamp(seg.end_timestamp()),
                text,
                words,
                avg_logprob,
            });
        }
        Ok(segments)
    }
}

/// The alignment heads for DTW word times: OpenAI's preset for the model's size, read from the
/// GGML header, or the top text layers for a model we do not recognise.
fn dtw_mode(path: &Path) -> DtwMode<'static> {
    let mut header = [0u8; 48];
    let read =
        std::fs::File::open(path).and_then(|mut f| std::io::Read::read_exact(&mut f, &mut header));
    let field =
        |i: usize| i32::from_le_bytes(header[4 + 4 * i..8 + 4 * i].try_into().expect("4 bytes"));
    if read.is_err() {
        return DtwMode::None;
    }
    let (multilingual, text_layers, mels) = (field(0) >= 51865, field(8), field(9));
    let preset = match (multilingual, text_layers) {
        (false, 4) => DtwModelPreset::TinyEn,
        (true, 4) => DtwModelPreset::Tiny,
        (false, 6) => DtwModelPreset::BaseEn,
        (true, 6) => DtwModelPreset::Base,
        (false, 12) => DtwModelPreset::SmallEn,
        (true, 12) => DtwModelPreset::Small,
        (false, 24) => DtwModelPreset::MediumEn,
        (true, 24) => DtwModelPreset::Medium,
        (true, 32) if mels == 128 => DtwModelPreset::LargeV3,
        (true, 32) => DtwModelPreset::LargeV2,
        _ => {
            return DtwMode::TopMost {
                n_top: text_layers.clamp(1, 2),
            };
        }
    };
    DtwMode::ModelPreset {
        model_preset: preset,
    }
}

/// Encoder positions (20 ms each) for a window of `samples` at 16 kHz, with 2.56 s to spare.
fn audio_ctx(samples: usize) -> i32 {
    (samples / 320 + 128).min(1500) as i32
}

/// whisper.cpp logs every model load and decode to stderr; keep our output clean.
fn silence_whisper_logs() {
    static ONCE: std::sync::Once = std::sync::Once::new();
    ONCE.call_once(whisper_rs::install_logging_hooks);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn prompts_carry_the_mandarin_hint_and_hotwords() {
        assert_eq!(initial_prompt("zh", &[]), ZH_PROMPT);
        assert_eq!(
            initial_prompt("zh", &["销售易".into(), "纷享销客".into()]),
            "以下是普通话的句子。销售易，纷享销客。"
        );
        assert_eq!(
            initial_prompt("en", &["Salesforce".into(), "HubSpot".into()]),
            "Salesforce, HubSpot."
        );
        assert_eq!(initial_prompt("en", &[" ".into()]), "");
        assert_eq!(
            initial_prompt("en", &["Sales\0force".into()]),
            "Salesforce."
        );
    }
}
