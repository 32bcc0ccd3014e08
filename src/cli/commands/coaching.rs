//! `callqa coaching complete | expire`: suspensions ended by hand or by time.

use crate::cli::args::{CoachingCommand, CoachingWhat};
use anyhow::{Result, bail};
use callqa::store::Store;
use std::process::ExitCode;

pub fn run(c: CoachingCommand) -> Result<ExitCode> {
    let store = c.store.open()?;
    let now = chrono::Utc::now();
    match c.what {
        CoachingWhat::Complete { rep_id } => {
            match store.complete_training(&c.store.tenant, &rep_id, now)? {
                Some(event) => println!("{}", serde_json::to_string_pretty(&event)?),
                None => bail!("rep {rep_id} has no active suspension"),
            }
        }
        CoachingWhat::Expire => {
            for event in store.expire_suspensions(now)? {
                println!("{}", serde_json::to_string(&event)?);
            }
        }
    }
    Ok(ExitCode::SUCCESS)
}
