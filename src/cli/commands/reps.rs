//! `callqa reps enroll | forget`: a rep's voiceprint, from a recording of the rep alone.

use crate::cli::args::{RepsCommand, RepsWhat};
use anyhow::{Context, Result, bail};
use callqa::service::engines;
use callqa::store::{RepVoice, Store, VoiceSource};
use std::process::ExitCode;

/// Less speech than this gives a voiceprint too unsteady to tell a rep by.
const MIN_ENROLL_MS: u64 = 5_000;

pub fn run(c: RepsCommand) -> Result<ExitCode> {
    let tenant = &c.store.tenant;
    match c.what {
        RepsWhat::Enroll { rep_id, file } => {
            let shown = file.display().to_string();
            let bytes = std::fs::read(&file).with_context(|| shown.clone())?;
            let (_, audio) = callqa::audio::load_16k_mono(bytes).with_context(|| shown.clone())?;
            let models = engines::speaker_models(&c.models.dir())?;
            let voice = models.voice(&audio)?;
            let Some(voice) = voice.filter(|v| v.speech_ms >= MIN_ENROLL_MS) else {
                bail!(
                    "{shown}: too little speech to learn a voice from (at least {} s of the rep speaking alone)",
                    MIN_ENROLL_MS / 1000
                );
            };
            let store = c.store.open()?;
            let enrolled = RepVoice {
                voiceprint: voice.voiceprint,
                speech_ms: voice.speech_ms,
                source: VoiceSource::Enrolled,
            };
            store.put_voiceprint(tenant, &rep_id, &enrolled, chrono::Utc::now())?;
            println!(
                "enrolled rep {rep_id} (tenant {tenant}) from {:.1} s of speech in {shown}",
                voice.speech_ms as f64 / 1000.0
            );
        }
        RepsWhat::Forget { rep_id } => {
            let store = c.store.open_existing()?;
            if !store.forget_voiceprint(tenant, &rep_id)? {
                bail!("rep {rep_id} has no voiceprint (tenant {tenant})");
            }
            println!("forgot the voiceprint of rep {rep_id} (tenant {tenant})");
        }
    }
    Ok(ExitCode::SUCCESS)
}
