//! `callqa report rep | month`: what the store knows of a rep, and the month's report.

use crate::cli::args::{ReportCommand, ReportWhat};
use crate::cli::settings;
use anyhow::{Context, Result};
use callqa::analysis::playbook::Playbook;
use callqa::report::Lang;
use callqa::store::Store;
use std::path::Path;
use std::process::ExitCode;

pub fn run(c: ReportCommand) -> Result<ExitCode> {
    let store = c.store.open_existing()?;
    let tenant = &c.store.tenant;
    let lang = settings::lang(c.lang);
    // A playbook named by its file means the name inside it.
    let playbook = match &c.playbook {
        Some(p) if Path::new(p).is_file() => Some(Playbook::load(Path::new(p))?.name),
        other => other.clone(),
    };
    match c.what {
        ReportWhat::Rep { rep_id } => {
            let profile = store.rep_profile(tenant, &rep_id, playbook.as_deref())?;
            println!("{}", serde_json::to_string_pretty(&profile)?);
            if !profile.other_playbooks.is_empty() {
                eprintln!(
                    "{}: {} (--playbook)",
                    lang.pick(
                        "该销售代表在其他话术下的通话未计入",
                        "calls under other playbooks not counted"
                    ),
                    profile.other_playbooks.join("; ")
                );
            }
        }
        ReportWhat::Month { month, out } => {
            let first = chrono::NaiveDate::parse_from_str(&format!("{month}-01"), "%Y-%m-%d")
                .with_context(|| format!("{month:?}: not a month (YYYY-MM)"))?;
            let data = store.month(tenant, first, playbook.as_deref())?;
            std::fs::write(&out, callqa::report::month::month_html(&data, lang))
                .with_context(|| format!("{}", out.display()))?;
            let what = match lang {
                Lang::Zh => format!("{} 通通话，{} 位销售代表", data.calls, data.reps.len()),
                Lang::En => format!(
                    "{}, {}",
                    lang.count(data.calls, "call", "calls"),
                    lang.count(data.reps.len(), "rep", "reps")
                ),
            };
            eprintln!("{}: {what}", out.display());
            if !data.other_playbooks.is_empty() {
                eprintln!(
                    "{}: {} (--playbook)",
                    lang.pick(
                        "本月其他话术的通话未计入",
                        "calls under other playbooks not counted"
                    ),
                    data.other_playbooks.join("; ")
                );
            }
        }
    }
    Ok(ExitCode::SUCCESS)
}
