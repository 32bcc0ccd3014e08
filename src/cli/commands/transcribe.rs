//! `callqa transcribe FILE`: the call's turns as JSON.

use crate::cli::args::TranscribeArgs;
use anyhow::{Context, Result};
use callqa::redact::Redaction;
use callqa::service::engines::{self, Analysers};
use callqa::service::{Inspector, Models};
use callqa::transcript::CallOptions;
use serde_json::json;
use std::process::ExitCode;

pub fn run(a: TranscribeArgs) -> Result<ExitCode> {
    let shown = a.file.display().to_string();
    let audio = std::fs::read(&a.file).with_context(|| shown.clone())?;
    let dir = a.models.dir();
    let models = Models {
        engines: Some(engines::transcription(
            &dir,
            &a.whisper.choice(),
            &a.whisper.pool(),
        )?),
        // Opened only if used: transcription needs no analyser.
        analysers: Analysers::new(dir),
    };
    let inspector = Inspector::new(models, 1);
    let opts = CallOptions {
        language: a.language,
        channel_roles: a.roles,
        hotwords: a.hotword,
        beam_size: a.beam_size,
        max_speakers: a.speakers.max_speakers.into(),
        vad: a.vad.params(),
        ..CallOptions::default()
    };
    let permit = inspector.permit()?;
    let transcript = inspector
        .transcribe(&permit, audio, &opts, &Redaction::default())
        .with_context(|| shown.clone())?;
    let mut out = serde_json::to_value(&transcript)?;
    out["file"] = json!(a.file);
    println!("{}", serde_json::to_string_pretty(&out)?);
    Ok(ExitCode::SUCCESS)
}
