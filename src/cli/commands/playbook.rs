//! `callqa playbook check | test`: a playbook validated, or run over text transcripts.

use crate::cli::args::{PlaybookCommand, PlaybookTestArgs, PlaybookWhat};
use anyhow::{Context, Result, bail};
use callqa::analysis::Analysis;
use callqa::analysis::playbook::Playbook;
use callqa::service::engines::Analysers;
use callqa::service::{self, Inspector, Models};
use callqa::store::Recorded;
use callqa::transcript::Turn;
use serde_json::json;
use std::path::Path;
use std::process::ExitCode;

pub fn run(c: PlaybookCommand) -> Result<ExitCode> {
    match c.what {
        PlaybookWhat::Check { playbook } => {
            let p = Playbook::load(&playbook)?;
            let out = json!({
                "playbook": p.name, "revision": p.revision, "key_questions": p.key_questions.len(),
                "competitors": p.competitors.len(), "dimensions": p.dimensions.len(),
                "coaching_rules": p.coaching.rules.len(),
            });
            println!("{}", serde_json::to_string_pretty(&out)?);
            Ok(ExitCode::SUCCESS)
        }
        PlaybookWhat::Test(a) => test(*a),
    }
}

fn test(a: PlaybookTestArgs) -> Result<ExitCode> {
    let playbook = Playbook::load(&a.playbook)?;
    if a.call.call_id.is_some() && a.transcript.len() > 1 {
        bail!(
            "--call-id names one call, and {} transcripts were given",
            a.transcript.len()
        );
    }
    let dir = a.models.dir();
    let analysers = Analysers::open(dir)?;
    let inspector = Inspector::new(Models::text_only(analysers), 1);
    let store = a.store.open_if_named()?;
    for path in &a.transcript {
        let turns = read_transcript(path)?;
        let permit = inspector.permit()?;
        // A transcript is named by its file unless --call-id names it: the QA lead named the
        // files, and copies of one transcript are meant as separate calls.
        let mut meta = a.call.meta();
        meta.call_id = meta
            .call_id
            .or_else(|| path.file_stem().map(|s| s.to_string_lossy().into_owned()));
        let analysis = inspector.text(&permit, &playbook, turns, meta, &Default::default())?;
        if a.transcript.len() == 1 {
            println!("{}", serde_json::to_string_pretty(&analysis)?);
        } else {
            println!("{}", serde_json::to_string(&analysis)?);
        }
        if let Some(store) = &store {
            let recorded = service::record(store, &a.store.tenant, &analysis, &playbook)?;
            eprintln!("{}", recorded_line(&analysis, &a.store.tenant, &recorded));
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// What recording a call did, in a line: the call, and the coaching that followed.
pub fn recorded_line(analysis: &Analysis, tenant: &str, r: &Recorded) -> String {
    format!(
        "stored call {} ({}) for tenant {tenant}: {} events{}{}",
        analysis.call_id,
        if r.new_call { "new" } else { "re-analysed" },
        r.events.len(),
        r.assignments
            .iter()
            .map(|a| format!("; assigned {} to {}", a.pack, a.rep_id))
            .collect::<String>(),
        r.suspension
            .as_ref()
            .map(|s| format!("; {} suspended until {}", s.rep_id, s.ends_at))
            .unwrap_or_default()
    )
}

/// What `callqa transcribe` prints: the call, with its turns.
#[derive(serde::Deserialize)]
struct Transcribed {
    turns: Vec<Turn>,
}

/// A text transcript, in time order: one JSON turn per line ({role, start_ms, end_ms, text}), or
/// the JSON object that `callqa transcribe` prints.
fn read_transcript(path: &Path) -> Result<Vec<Turn>> {
    let text = std::fs::read_to_string(path)
        .with_context(|| format!("{}: cannot read", path.display()))?;
    if let Ok(Transcribed { mut turns }) = serde_json::from_str(&text) {
        turns.sort_by_key(|t| t.start_ms);
        return Ok(turns);
    }
    let mut turns: Vec<Turn> = Vec::new();
    for (i, line) in text
        .lines()
        .enumerate()
        .filter(|(_, l)| !l.trim().is_empty())
    {
        let turn: Turn = serde_json::from_str(line)
            .with_context(|| format!("{}:{}: not a turn", path.display(), i + 1))?;
        if turn.end_ms < turn.start_ms {
            bail!("{}:{}: end_ms is before start_ms", path.display(), i + 1);
        }
        turns.push(turn);
    }
    turns.sort_by_key(|t| t.start_ms);
    Ok(turns)
}
