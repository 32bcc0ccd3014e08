//! Speech recognition with whisper.cpp (through whisper-rs).

use serde::Serialize;
use std::path::Path;
use whisper_rs::{
    FullParams, SamplingStrategy, WhisperContext, WhisperContextParameters, WhisperState,
};

/// Steers small multilingual models to Simplified Mandarin with punctuation.
const ZH_PROMPT: &str = "以下是普通话的句子。";

#[derive(Debug, thiserror::Error)]
pub enum AsrError {
    #[error("Whisper model {path}: {detail}")]
    Model { path: String, detail: String },
    #[error("the Whisper model is English-only; it cannot transcribe language {0:?}")]
    EnglishOnly(String),
    #[error("Whisper: {0}")]
    Run(String),
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

/// One recognised stretch of speech. Times are milliseconds from the start of the audio.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct Segment {
    pub start_ms: u64,
    pub end_ms: u64,
    pub text: String,
    /// Mean log-probability of the text tokens (near 0 = confident).
    pub avg_logprob: f32,
    pub no_speech_prob: f32,
}

#[derive(Debug, Clone, Serialize)]
pub struct Transcript {
    pub language: String,
    pub segments: Vec<Segment>,
}

impl Transcript {
    pub fn text(&self) -> String {
        let sep = if self.language == "zh" { "" } else { " " };
        self.segments
            .iter()
            .map(|s| s.text.trim())
            .collect::<Vec<_>>()
            .join(sep)
    }
}

/// A loaded Whisper model. States are created per transcription, so one engine serves many calls.
pub struct WhisperEngine {
    ctx: WhisperContext,
    threads: usize,
}

impl WhisperEngine {
    pub fn load(path: &Path, threads: usize) -> Result<Self, AsrError> {
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
        let ctx = WhisperContext::new_with_params(path, WhisperContextParameters::default())
            .map_err(|e| fail(format!("cannot load ({e}); is it a whisper.cpp GGML file?")))?;
        Ok(Self {
            ctx,
            threads: threads.max(1),
        })
    }

    pub fn is_multilingual(&self) -> bool {
        self.ctx.is_multilingual()
    }

    fn detect_language(
        &self,
        state: &mut WhisperState,
        audio: &[f32],
    ) -> Result<&'static str, AsrError> {
        state.pcm_to_mel(audio, self.threads).map_err(run_err)?;
        let (id, _) = state.lang_detect(0, self.threads).map_err(run_err)?;
        Ok(whisper_rs::get_lang_str(id).unwrap_or("en"))
    }

    /// Transcribes 16 kHz mono audio.
    pub fn transcribe(&self, audio: &[f32], language: Language) -> Result<Transcript, AsrError> {
        let mut state = self.ctx.create_state().map_err(run_err)?;
        let lang: &str = match (language, self.is_multilingual()) {
            (Language::En, _) | (Language::Auto, false) => "en",
            (Language::Zh, true) => "zh",
            (Language::Zh, false) => return Err(AsrError::EnglishOnly("zh".into())),
            // whisper.cpp needs at least one 30 s window of mel frames; pad short clips for detection.
            (Language::Auto, true) => {
                let mut padded = audio.to_vec();
                padded.resize(audio.len().max(16_000 * 30), 0.0);
                self.detect_language(&mut state, &padded)?
            }
        };

        let mut params = FullParams::new(SamplingStrategy::Greedy { best_of: 1 });
        params.set_n_threads(self.threads as i32);
        params.set_language(Some(lang));
        params.set_print_progress(false);
        params.set_print_realtime(false);
        params.set_print_special(false);
        params.set_print_timestamps(false);
        params.set_suppress_nst(true);
        // Bounded temperature fallback: at most 0.0, 0.4, 0.8, so noise cannot cost 6 decodes.
        params.set_temperature(0.0);
        params.set_temperature_inc(0.4);
        if lang == "zh" {
            params.set_initial_prompt(ZH_PROMPT);
        }
        state.full(params, audio).map_err(run_err)?;

        let eot = self.ctx.token_eot();
        // Whisper's timestamps can run past the end of the audio; never report beyond it.
        let audio_ms = audio.len() as u64 * 1000 / 16_000;
        let mut segments = Vec::new();
        for seg in state.as_iter() {
            let text = seg.to_str_lossy().map_err(run_err)?.trim().to_owned();
            if text.is_empty() {
                continue;
            }
            let logprobs: Vec<f32> = (0..seg.n_tokens())
                .filter_map(|i| seg.get_token(i))
                .filter(|t| t.token_id() < eot)
                .map(|t| t.token_data().plog)
                .collect();
            let avg_logprob = if logprobs.is_empty() {
                0.0
            } else {
                logprobs.iter().sum::<f32>() / logprobs.len() as f32
            };
            segments.push(Segment {
                start_ms: ((seg.start_timestamp().max(0) as u64) * 10).min(audio_ms),
                end_ms: ((seg.end_timestamp().max(0) as u64) * 10).min(audio_ms),
                text: normalize(&text, lang),
                avg_logprob,
                no_speech_prob: seg.no_speech_probability(),
            });
        }
        Ok(Transcript {
            language: lang.to_owned(),
            segments,
        })
    }
}

/// Mandarin from small multilingual models is often Traditional: convert to Simplified.
pub fn normalize(text: &str, lang: &str) -> String {
    if lang == "zh" {
        fast2s::convert(text)
    } else {
        text.to_owned()
    }
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
    fn traditional_mandarin_becomes_simplified() {
        assert_eq!(
            normalize("廣州市房地產中介協會分析", "zh"),
            "广州市房地产中介协会分析"
        );
        assert_eq!(normalize("Hello, world.", "en"), "Hello, world.");
    }
}
