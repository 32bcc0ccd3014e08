//! `callqa analyze`: one recording (its Analysis as JSON), or a batch of them, scored here or by
//! a running service.

use crate::cli::args::AnalyzeArgs;
use crate::cli::settings;
use anyhow::{Context, Result, bail};
use callqa::analysis::Analysis;
use callqa::analysis::playbook::Playbook;
use callqa::api::client::Remote;
use callqa::audio::channels::Role;
use callqa::batch::inputs::{self, FileMeta, MetaRow, Metadata};
use callqa::batch::{self, Destination, Summary};
use callqa::report::Lang;
use callqa::service::engines::cores;
use callqa::service::{self, Inspector, Models, Recording};
use callqa::store::Store;
use callqa::transcript::{CallOptions, RoleHints};
use std::path::{Path, PathBuf};
use std::process::ExitCode;

/// One call's result in a batch: its error is reported in the outputs, and the batch goes on.
type CallResult = std::result::Result<Analysis, Box<dyn std::error::Error + Send + Sync>>;

/// The stereo roles for "the agent is on channel N".
fn channel_roles(agent_channel: Option<usize>) -> Result<Vec<Role>> {
    Ok(match agent_channel {
        None => Vec::new(),
        Some(0) => vec![Role::Agent, Role::Customer],
        Some(1) => vec![Role::Customer, Role::Agent],
        Some(n) => bail!("agent channel {n}: a stereo call has channels 0 and 1"),
    })
}

pub fn run(a: AnalyzeArgs) -> Result<ExitCode> {
    let playbook = Playbook::load(&a.playbook)?;
    let files = inputs::expand(&a.paths)?;
    let single = files.len() == 1
        && Path::new(&a.paths[0]).is_file()
        && a.out.is_none()
        && a.csv.is_none()
        && a.report.is_none()
        && a.server.is_none();
    if a.call.call_id.is_some() && files.len() > 1 {
        bail!(
            "--call-id names one call, and {} recordings were given",
            files.len()
        );
    }
    let flags = MetaRow {
        call_id: a.call.call_id.clone(),
        rep_id: a.call.rep_id.clone(),
        customer_id: a.call.customer_id.clone(),
        agent_channel: a.agent_channel,
        call_date: a.call.call_date,
        ..MetaRow::default()
    };
    let metadata = Metadata::new(a.meta.as_deref(), a.name_pattern.as_deref(), flags)?;
    let files = files
        .into_iter()
        .map(|f| Ok((metadata.for_file(&f)?, f)))
        .collect::<Result<Vec<(FileMeta, PathBuf)>>>()?;
    let lang = settings::lang(a.lang);
    // One rule: calls are recorded in the store (the default one unless --store names another),
    // unless --no-store; and a batch that would keep nothing at all is refused.
    // Through --server, the service records the calls; a local store only when named.
    let remote_only = a.server.is_some() && a.store.store.is_none();
    let store = if a.no_store || remote_only {
        None
    } else {
        Some(a.store.open()?)
    };
    let keeps_nothing = a.no_store
        && a.server.is_none()
        && a.out.is_none()
        && a.csv.is_none()
        && a.report.is_none()
        && !single;
    if keeps_nothing {
        bail!(
            "{}",
            lang.pick(
                "这样什么结果也不会保留：请给出 --out、--csv 或 --report，或去掉 --no-store",
                "nothing would be kept: give --out, --csv or --report, or drop --no-store"
            )
        );
    }
    let stored_in = match &store {
        Some(_) => match lang {
            Lang::Zh => format!(
                "记录于 {}（租户 {}）",
                a.store.path().display(),
                a.store.tenant
            ),
            Lang::En => format!(
                "recorded in {} (tenant {}); --no-store keeps calls out",
                a.store.path().display(),
                a.store.tenant
            ),
        },
        None => lang
            .pick("未记录（--no-store）", "not recorded (--no-store)")
            .to_owned(),
    };
    let destination = store.as_ref().map(|s| Destination {
        store: s as &dyn Store,
        tenant: &a.store.tenant,
    });
    let jobs = a.jobs.unwrap_or_else(cores).max(1);
    let opts = batch::Options {
        jobs,
        force: a.force,
        replace: a.replace,
        jsonl: a.out.clone(),
        csv: a.csv.clone(),
        report: a.report.clone(),
        redacted_audio: a.redacted_audio.clone().map(|dir| (dir, a.audio_mask)),
        lang,
    };
    let files: Vec<(PathBuf, FileMeta)> = files.into_iter().map(|(m, f)| (f, m)).collect();
    if let Some(addr) = &a.server {
        let name = a
            .playbook
            .file_stem()
            .map(|s| s.to_string_lossy().into_owned())
            .unwrap_or_default();
        let remote = Remote::connect(addr, a.api_key.clone(), name)?;
        let analyse = |recording: Recording, meta: &FileMeta| -> CallResult {
            let roles = channel_roles(meta.agent_channel).map_err(|e| e.to_string())?;
            let analysis = remote.analyse(
                recording.bytes,
                &meta.call,
                a.language,
                &roles,
                &playbook.revision,
            )?;
            Ok(analysis)
        };
        let summary = batch::run(&analyse, &playbook, files, &opts, destination)?;
        return Ok(finish(&summary, lang, &stored_in));
    }

    let dir = a.models.dir();
    let models = Models::load(&dir, &a.whisper.choice(), &a.whisper.pool())?;
    let inspector = Inspector::new(models, jobs);
    // The store's voiceprints tell reps on their mono calls, and their stereo calls teach them.
    let voices = store
        .as_ref()
        .map(|s| (s as &dyn Store, a.store.tenant.as_str()));
    let call_options = |meta: &FileMeta| -> Result<CallOptions> {
        let opts = CallOptions {
            language: a.language,
            channel_roles: channel_roles(meta.agent_channel)?,
            max_speakers: a.speakers.max_speakers.into(),
            roles: RoleHints {
                direction: a.call.direction,
                ..RoleHints::default()
            },
            ..CallOptions::default()
        };
        Ok(match voices {
            Some((store, tenant)) => {
                service::with_rep_voice(store, tenant, meta.call.rep_id.as_deref(), opts)?
            }
            None => opts,
        })
    };
    if single {
        let (file, meta) = &files[0];
        let shown = file.display().to_string();
        let recording = Recording::read(file).with_context(|| shown.clone())?;
        let permit = inspector.permit()?;
        let analysis = inspector
            .recording(
                &permit,
                &playbook,
                recording,
                meta.call.clone(),
                &call_options(meta)?,
            )
            .with_context(|| shown.clone())?;
        println!("{}", serde_json::to_string_pretty(&analysis)?);
        if let Some(audio) = &opts.redacted_audio {
            let path = batch::write_redacted_audio(file, &analysis, audio)?;
            eprintln!("redacted audio: {}", path.display());
        }
        if let Some(d) = destination {
            let recorded = service::record(d.store, d.tenant, &analysis, &playbook)?;
            eprintln!(
                "{}",
                super::playbook::recorded_line(&analysis, d.tenant, &recorded)
            );
        }
        return Ok(ExitCode::SUCCESS);
    }
    let analyse = |recording: Recording, meta: &FileMeta| -> CallResult {
        let opts = call_options(meta).map_err(|e| e.to_string())?;
        let permit = inspector.permit()?;
        let analysis =
            inspector.recording(&permit, &playbook, recording, meta.call.clone(), &opts)?;
        Ok(analysis)
    };
    let summary = batch::run(&analyse, &playbook, files, &opts, destination)?;
    Ok(finish(&summary, lang, &stored_in))
}

/// Prints the summary; the exit code is 1 when any call of the batch failed.
fn finish(summary: &Summary, lang: Lang, stored_in: &str) -> ExitCode {
    print!("{}", summary.render(lang));
    println!("{stored_in}");
    if summary.failed.is_empty() {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    }
}
