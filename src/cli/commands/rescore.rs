//! `callqa rescore`: stored calls scored again under a playbook, from their stored transcripts.

use crate::cli::args::RescoreArgs;
use crate::cli::settings;
use anyhow::{Result, bail};
use callqa::analysis::playbook::Playbook;
use callqa::report::Lang;
use callqa::service::engines::Analysers;
use callqa::service::{Inspector, Models, Rescore};
use std::process::ExitCode;

pub fn run(a: RescoreArgs) -> Result<ExitCode> {
    let lang = settings::lang(a.lang);
    let playbook = Playbook::load(&a.playbook)?;
    let store = a.store.open_existing()?;
    let inspector = Inspector::new(Models::text_only(Analysers::open(a.models.dir())?), 1);
    let which = Rescore {
        call_ids: a.calls.clone(),
        rep_id: a.rep.clone(),
        since: a.since,
    };
    let permit = inspector.permit()?;
    let started = std::time::Instant::now();
    let done = inspector.rescore(
        &permit,
        &store,
        &a.store.tenant,
        &playbook,
        &which,
        &Default::default(),
    )?;
    let score = |s: Option<f64>| s.map_or("–".to_owned(), |s| format!("{s:.1}"));
    for r in &done {
        println!(
            "{}  {} → {}  ({} → {})",
            r.call_id,
            score(r.old_score),
            score(r.analysis.overall.score),
            r.old_revision,
            r.analysis.playbook_revision
        );
    }
    if done.is_empty() {
        bail!(
            "{} {:?}{}",
            lang.pick(
                "没有通话可重新评分：存储中没有以此话术评分的通话",
                "no calls to score again: none in the store was scored under"
            ),
            playbook.name,
            lang.pick("（或用 --call 指定通话）", " (or name calls with --call)")
        );
    }
    let summary = match lang {
        Lang::Zh => format!(
            "已按修订版 {} 重新评分 {} 通（用时 {:.1} 秒），已记录于 {}",
            playbook.revision,
            done.len(),
            started.elapsed().as_secs_f64(),
            a.store.path().display()
        ),
        Lang::En => format!(
            "{} scored again under revision {} in {:.1} s, recorded in {}",
            lang.count(done.len(), "call", "calls"),
            playbook.revision,
            started.elapsed().as_secs_f64(),
            a.store.path().display()
        ),
    };
    eprintln!("{summary}");
    Ok(ExitCode::SUCCESS)
}
