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
use crate::report::Lang;
use crate::service::Recording;
use crate::store::{Store, StoreError};
use inputs::FileMeta;
use outputs::{CsvOut, JsonlOut, already_done, slim};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use std::collections::HashMap;
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
    /// The rep, as the metadata gave it (an error row has no Analysis to carry it).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rep_id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub analysis: Option<Analysis>,
}

impl Outcome {
    fn failed(path: &Path, call_id: String, meta: &FileMeta, error: String) -> Self {
        Self {
            file: path.display().to_string(),
            call_id,
            rep_id: meta.call.rep_id.clone(),
            error: Some(error),
            analysis: None,
        }
    }
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
    /// Analyse a recording whose call id the store holds for another recording, in its place.
    pub replace: bool,
    pub jsonl: Option<PathBuf>,
    pub csv: Option<PathBuf>,
    /// The HTML report, over every call of the batch (earlier runs' too).
    pub report: Option<PathBuf>,
    /// A folder for a copy of each recording with its redacted PII masked (`CALL_ID.wav`).
    pub redacted_audio: Option<(PathBuf, AudioMask)>,
    pub lang: Lang,
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

/// A recording to score: its file, metadata, content hash and size.
struct Todo {
    path: PathBuf,
    meta: FileMeta,
    hash: String,
    bytes: u64,
}

/// What the batch decided for each file before scoring anything.
#[derive(Default)]
struct Plan {
    todo: Vec<Todo>,
    /// Calls already scored under this revision (in the JSONL output or the store).
    earlier: Vec<Outcome>,
    /// Files that cannot be scored as given.
    refused: Vec<Outcome>,
}

/// Sorts the files into calls to score, calls scored before, and files refused: unreadable, or
/// carrying a call id that another recording holds (in this batch, or in the store unless
/// `replace`).
fn plan(
    files: Vec<(PathBuf, FileMeta)>,
    playbook: &Playbook,
    opts: &Options,
    store: Option<Destination<'_>>,
) -> Result<Plan, BatchError> {
    let mut prior = if opts.force {
        Default::default()
    } else {
        already_done(opts.jsonl.as_deref(), &playbook.revision)?
    };
    let mut plan = Plan::default();
    // call id → (hash, file) of the first recording of the batch that has it
    let mut ids: HashMap<String, (String, String)> = HashMap::new();
    for (path, meta) in files {
        let hash = match file_hash(&path) {
            Ok(h) => h,
            Err(e) => {
                let id = meta.call.call_id.clone().unwrap_or_default();
                let error = format!("cannot read: {e}");
                plan.refused.push(Outcome::failed(&path, id, &meta, error));
                continue;
            }
        };
        let call_id = meta.call.call_id_or(&hash);
        let file = path.display().to_string();
        match ids.get(&call_id) {
            Some((h, _)) if *h == hash => continue, // the same recording twice: once is enough
            Some((_, other)) => {
                let error =
                    format!("call id {call_id} is also given to {other}, another recording");
                plan.refused
                    .push(Outcome::failed(&path, call_id, &meta, error));
                continue;
            }
            None => {
                ids.insert(call_id.clone(), (hash.clone(), file.clone()));
            }
        }
        if let Some(o) = prior.remove(&hash) {
            plan.earlier.push(Outcome { file, ..o });
            continue;
        }
        if let Some(d) = store {
            let stored = d.store.identity(d.tenant, &call_id)?;
            let same_audio = stored
                .as_ref()
                .is_some_and(|id| id.content_hash.as_deref() == Some(&hash));
            match stored {
                Some(id)
                    if same_audio && !opts.force && id.playbook_revision == playbook.revision =>
                {
                    let analysis = d.store.analysis(d.tenant, &call_id)?;
                    plan.earlier.push(Outcome {
                        file,
                        call_id,
                        rep_id: analysis.rep_id.clone(),
                        error: None,
                        analysis: Some(analysis),
                    });
                    continue;
                }
                Some(_) if same_audio => {} // scored again: --force, or a new revision
                Some(_) if !opts.replace => {
                    let error = format!(
                        "call id {call_id} already holds another recording in the store; \
                         --replace analyses this one in its place"
                    );
                    plan.refused
                        .push(Outcome::failed(&path, call_id, &meta, error));
                    continue;
                }
                _ => {}
            }
        }
        let bytes = std::fs::metadata(&path).map_or(0, |m| m.len());
        plan.todo.push(Todo {
            path,
            meta,
            hash,
            bytes,
        });
    }
    Ok(plan)
}

/// Scores `files` (with their metadata) with `opts.jobs` calls at once. The outputs cover the
/// whole batch: the calls scored before (skipped now), then each call as it finishes, written at
/// once (and recorded in the store), so that an interrupted batch continues where it stopped.
pub fn run(
    analyse: &Analyse<'_>,
    playbook: &Playbook,
    files: Vec<(PathBuf, FileMeta)>,
    opts: &Options,
    store: Option<Destination<'_>>,
) -> Result<Summary, BatchError> {
    let started = Instant::now();
    let Plan {
        todo,
        earlier,
        refused,
    } = plan(files, playbook, opts, store)?;
    let mut summary = Summary::default();
    let mut jsonl = opts
        .jsonl
        .as_deref()
        .map(|p| JsonlOut::create(p, &earlier))
        .transpose()?;
    let mut csv = opts
        .csv
        .as_deref()
        .map(|p| CsvOut::create(p, playbook))
        .transpose()?;
    let mut calls = Vec::new();
    for o in &earlier {
        if let Some(csv) = &mut csv {
            csv.row(o)?;
        }
        if let Some(a) = &o.analysis {
            summary.add_earlier(a);
            if opts.report.is_some() {
                calls.push(report::Call {
                    file: o.file.clone(),
                    analysis: slim(a.clone()),
                });
            }
        }
    }

    let total_bytes = todo.iter().map(|t| t.bytes).sum();
    let mut progress = Progress::new(todo.len() + refused.len(), total_bytes, opts.lang);
    let mut record = |o: Outcome, bytes: u64, summary: &mut Summary| -> Result<(), BatchError> {
        if let Some(out) = &mut jsonl {
            out.write(&o)?;
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
        progress.call_done(&o, bytes);
        Ok(())
    };
    for o in refused {
        record(o, 0, &mut summary)?;
    }

    let queue = Mutex::new(todo.into_iter());
    let (tx, rx) = std::sync::mpsc::channel::<(Outcome, u64)>();
    let written = std::thread::scope(|scope| -> Result<(), BatchError> {
        for _ in 0..opts.jobs.max(1) {
            let (queue, tx) = (&queue, tx.clone());
            scope.spawn(move || {
                loop {
                    let next = queue.lock().ok().and_then(|mut q| q.next());
                    let Some(Todo {
                        path,
                        meta,
                        hash,
                        bytes,
                    }) = next
                    else {
                        return;
                    };
                    let call_id = meta.call.call_id_or(&hash);
                    let result = match std::fs::read(&path) {
                        Ok(data) => {
                            let recording = Recording {
                                bytes: data,
                                content_hash: hash,
                                recorded_at: meta.recorded_at,
                            };
                            analyse(recording, &meta).map_err(|e| e.to_string())
                        }
                        Err(e) => Err(format!("cannot read: {e}")),
                    };
                    let outcome = match result {
                        Ok(a) => Outcome {
                            file: path.display().to_string(),
                            call_id,
                            rep_id: a.rep_id.clone(),
                            error: None,
                            analysis: Some(a),
                        },
                        Err(e) => Outcome::failed(&path, call_id, &meta, e),
                    };
                    if tx.send((outcome, bytes)).is_err() {
                        return; // the writer stopped on an error
                    }
                }
            });
        }
        drop(tx);
        for (outcome, bytes) in rx.iter() {
            if let Err(e) = record(outcome, bytes, &mut summary) {
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
        std::fs::write(path, report::html(&calls, &summary.failed, path, opts.lang))
            .map_err(BatchError::output(path))?;
    }
    summary.wall = started.elapsed();
    Ok(summary)
}
