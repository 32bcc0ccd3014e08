//! Batch scoring for QA leads: every recording of a folder scored against a playbook, several at
//! once, with JSONL and CSV outputs written call by call, so that an interrupted run resumes
//! where it stopped; a progress bar, and a summary at the end. One bad file is reported and the
//! batch goes on. The scoring itself is the caller's (`Analyse`): the inspection service here, or
//! a running `callqa serve`.

pub mod inputs;
mod outputs;
mod summary;

pub use crate::report::batch as report;
pub use outputs::write_redacted_audio;
pub use summary::Summary;

use crate::analysis::Analysis;
use crate::analysis::playbook::Playbook;
use crate::audio::mask::AudioMask;
use crate::service::Recording;
use crate::store::{Store, StoreError};
use inputs::FileMeta;
use outputs::{CsvOut, already_done, open_output, slim};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::time::Instant;
use summary::Progress;

#[derive(Debug, thiserror::Error)]
pub enum BatchError {
    #[error("{path}: {source}")]
    Output {
        path: PathBuf,
        source: Box<dyn std::error::Error + Send + Sync>,
    },
    #[error(transparent)]
    Store(#[from] StoreError),
}

impl BatchError {
    pub(crate) fn output(path: &Path) -> impl FnOnce(std::io::Error) -> BatchError + '_ {
        move |e| BatchError::Output {
            path: path.to_owned(),
            source: Box::new(e),
        }
    }
}

/// One call's result: a line of the JSONL output.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Outcome {
    pub file: String,
    pub call_id: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub analysis: Option<Analysis>,
}

/// The sha256 of a file, read in pieces: the call's content hash, which says whether it was
/// already scored.
pub fn file_hash(path: &Path) -> std::io::Result<String> {
    let mut hasher = Sha256::new();
    std::io::copy(&mut std::fs::File::open(path)?, &mut hasher)?;
    Ok(hex::encode(hasher.finalize()))
}

/// How a batch runs and where it writes.
pub struct Options {
    pub jobs: usize,
    /// Score again calls that already have a result.
    pub force: bool,
    pub jsonl: Option<PathBuf>,
    pub csv: Option<PathBuf>,
    /// The HTML report, over every call of the batch (with `jsonl`, those of earlier,
    /// interrupted runs too).
    pub report: Option<PathBuf>,
    /// A folder for a copy of each recording with its redacted PII masked (`CALL_ID.wav`).
    pub redacted_audio: Option<(PathBuf, AudioMask)>,
}

/// Where a batch records its calls: a store and the tenant they belong to.
#[derive(Clone, Copy)]
pub struct Destination<'a> {
    pub store: &'a dyn Store,
    pub tenant: &'a str,
}

/// Scores one recording (its bytes and content hash, and its metadata): here, or by a running
/// service.
pub type Analyse<'a> = dyn Fn(Recording, &FileMeta) -> Result<Analysis, Box<dyn std::error::Error + Send + Sync>>
    + Sync
    + 'a;

/// A recording to score: its file, metadata and content hash.
struct Todo {
    path: PathBuf,
    meta: FileMeta,
    hash: String,
}

/// Scores `files` (with their metadata) with `opts.jobs` calls at once. Each finished call is
/// written to the outputs (and the store) at once, in the order calls finish.
pub fn run(
    analyse: &Analyse<'_>,
    playbook: &Playbook,
    files: Vec<(PathBuf, FileMeta)>,
    opts: &Options,
    store: Option<Destination<'_>>,
) -> Result<Summary, BatchError> {
    let started = Instant::now();
    let mut summary = Summary::default();
    let (mut done, mut calls) = if opts.force {
        Default::default()
    } else {
        already_done(opts.jsonl.as_deref(), &playbook.revision)?
    };
    if opts.report.is_none() {
        calls.clear();
    }
    let mut jsonl = opts
        .jsonl
        .as_deref()
        .map(|p| open_output(p, opts.force).map(|(f, _)| (f, p.to_owned())))
        .transpose()?;
    let mut csv = opts
        .csv
        .as_deref()
        .map(|p| CsvOut::open(p, opts.force, playbook))
        .transpose()?;

    // Which calls are left: a call whose audio was already scored under this revision (in
    // the output or the store) is skipped.
    let mut todo = Vec::new();
    let mut early = Vec::new();
    for (path, meta) in files {
        let hash = match file_hash(&path) {
            Ok(h) => h,
            Err(e) => {
                early.push(Outcome {
                    file: path.display().to_string(),
                    call_id: meta.call.call_id.clone().unwrap_or_default(),
                    error: Some(format!("cannot read: {e}")),
                    analysis: None,
                });
                continue;
            }
        };
        let in_store = match (store, opts.force) {
            (Some(d), false) => {
                let call_id = meta.call.call_id_or(&hash);
                d.store.identity(d.tenant, &call_id)?.is_some_and(|id| {
                    id.content_hash.as_deref() == Some(&hash)
                        && id.playbook_revision == playbook.revision
                })
            }
            _ => false,
        };
        if !done.insert(hash.clone()) || in_store {
            summary.skipped += 1;
            continue;
        }
        todo.push(Todo { path, meta, hash });
    }

    let mut progress = Progress::new(todo.len() + early.len());
    let mut record = |o: Outcome, summary: &mut Summary| -> Result<(), BatchError> {
        if let Some((file, path)) = &mut jsonl {
            let line = serde_json::to_string(&o).map_err(|e| BatchError::Output {
                path: path.clone(),
                source: Box::new(e),
            })?;
            writeln!(file, "{line}")
                .and_then(|_| file.flush())
                .map_err(BatchError::output(path))?;
        }
        if let Some(csv) = &mut csv {
            csv.row(&o)?;
        }
        match &o.analysis {
            Some(a) => {
                if let Some(audio) = &opts.redacted_audio {
                    write_redacted_audio(Path::new(&o.file), a, audio)?;
                }
                if let Some(d) = store {
                    crate::service::record(d.store, d.tenant, a, playbook)?;
                }
                summary.add(a);
                if opts.report.is_some() {
                    calls.push(report::Call {
                        file: o.file.clone(),
                        analysis: slim(a.clone()),
                    });
                }
            }
            None => summary
                .failed
                .push((o.file.clone(), o.error.clone().unwrap_or_default())),
        }
        progress.call_done(&o);
        Ok(())
    };
    for o in early {
        record(o, &mut summary)?;
    }

    let queue = Mutex::new(todo.into_iter());
    let (tx, rx) = std::sync::mpsc::channel::<Outcome>();
    let written = std::thread::scope(|scope| -> Result<(), BatchError> {
        for _ in 0..opts.jobs.max(1) {
            let (queue, tx) = (&queue, tx.clone());
            scope.spawn(move || {
                loop {
                    let next = queue.lock().ok().and_then(|mut q| q.next());
                    let Some(Todo { path, meta, hash }) = next else {
                        return;
                    };
                    let call_id = meta.call.call_id_or(&hash);
                    let result = match std::fs::read(&path) {
                        Ok(bytes) => {
                            let recording = Recording {
                                bytes,
                                content_hash: hash,
                                recorded_at: meta.recorded_at,
                            };
                            analyse(recording, &meta).map_err(|e| e.to_string())
                        }
                        Err(e) => Err(format!("cannot read: {e}")),
                    };
                    let (analysis, error) = match result {
                        Ok(a) => (Some(a), None),
                        Err(e) => (None, Some(e)),
                    };
                    let outcome = Outcome {
                        file: path.display().to_string(),
                        call_id,
                        error,
                        analysis,
                    };
                    if tx.send(outcome).is_err() {
                        return; // the writer stopped on an error
                    }
                }
            });
        }
        drop(tx);
        for outcome in rx.iter() {
            if let Err(e) = record(outcome, &mut summary) {
                // Stop the workers: nothing could be written.
                if let Ok(mut q) = queue.lock() {
                    q.by_ref().for_each(drop);
                }
                return Err(e);
            }
        }
        Ok(())
    });
    progress.finish();
    written?;
    if let Some(path) = &opts.report {
        std::fs::write(path, report::html(&calls, &summary.failed))
            .map_err(BatchError::output(path))?;
    }
    summary.wall = started.elapsed();
    Ok(summary)
}
