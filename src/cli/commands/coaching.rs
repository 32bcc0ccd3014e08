//! `callqa coaching complete | expire`: suspensions ended by hand or by time.

use crate::cli::args::{CoachingCommand, CoachingWhat};
use anyhow::{Result, bail};
use callqa::store::Store;
use std::process::ExitCode;

pub fn run(c: CoachingCommand) -> Result<ExitCode> {
    let store = c.store.open_existing()?;
    let now = chrono::Utc::now();
    match c.what {
        CoachingWhat::Complete { rep_id } => {
            match store.complete_training(&c.store.tenant, &rep_id, now)? {
                Some(event) => println!("{}", serde_json::to_string(&event)?),
                None => bail!("rep {rep_id} has no active suspension"),
            }
        }
        CoachingWhat::Expire => {
            let ended = store.expire_suspensions(now)?;
            for event in &ended {
                println!("{}", serde_json::to_string(event)?);
            }
            eprintln!(
                "{} suspension(s) ended because their training camp's time was up",
                ended.len()
            );
        }
    }
    Ok(ExitCode::SUCCESS)
}
