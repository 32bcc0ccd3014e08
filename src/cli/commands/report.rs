//! `callqa report rep | month`: what the store knows of a rep, and the month's report.

use crate::cli::args::{ReportCommand, ReportWhat};
use anyhow::{Context, Result};
use callqa::store::Store;
use std::process::ExitCode;

pub fn run(c: ReportCommand) -> Result<ExitCode> {
    let store = c.store.open()?;
    let tenant = &c.store.tenant;
    match c.what {
        ReportWhat::Rep { rep_id } => {
            let profile = store.rep_profile(tenant, &rep_id)?;
            println!("{}", serde_json::to_string_pretty(&profile)?);
        }
        ReportWhat::Month { month, out } => {
            let first = chrono::NaiveDate::parse_from_str(&format!("{month}-01"), "%Y-%m-%d")
                .with_context(|| format!("{month:?}: not a month (YYYY-MM)"))?;
            let data = store.month(tenant, first)?;
            std::fs::write(&out, callqa::report::month::month_html(&data))
                .with_context(|| format!("{}", out.display()))?;
            eprintln!(
                "{}: {} calls, {} reps",
                out.display(),
                data.calls,
                data.reps.len()
            );
        }
    }
    Ok(ExitCode::SUCCESS)
}
