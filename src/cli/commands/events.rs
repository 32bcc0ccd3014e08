//! `callqa events [failed | replay]`: the outbox, and the webhook deliveries that failed.

use crate::cli::args::{EventsCommand, EventsWhat};
use anyhow::Result;
use callqa::store::Store;
use std::process::ExitCode;

pub fn run(c: EventsCommand) -> Result<ExitCode> {
    let store = c.store.open()?;
    let tenant = &c.store.tenant;
    match c.what {
        None => {
            for event in store.events_after(tenant, c.after, c.limit)? {
                println!("{}", serde_json::to_string(&event)?);
            }
        }
        Some(EventsWhat::Failed) => {
            for f in store.webhook_failures(tenant)? {
                println!("{}", serde_json::to_string(&f)?);
            }
        }
        Some(EventsWhat::Replay { id }) => {
            let n = store.replay_webhooks(tenant, id)?;
            eprintln!("{n} deliveries marked for replay");
        }
    }
    Ok(ExitCode::SUCCESS)
}
