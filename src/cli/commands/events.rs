//! `callqa events [failed | replay]`: the outbox, and the webhook deliveries that failed.

use crate::cli::args::{EventsCommand, EventsWhat};
use anyhow::Result;
use callqa::store::Store;
use std::process::ExitCode;

pub fn run(c: EventsCommand) -> Result<ExitCode> {
    let store = c.store.open_existing()?;
    let tenant = &c.store.tenant;
    match c.what {
        None => {
            let events = store.events_after(tenant, c.after, c.limit)?;
            for event in &events {
                println!("{}", serde_json::to_string(event)?);
            }
            if events.is_empty() {
                eprintln!("no events of tenant {tenant} after seq {}", c.after);
            }
        }
        Some(EventsWhat::Failed) => {
            let failures = store.webhook_failures(tenant)?;
            for f in &failures {
                println!("{}", serde_json::to_string(f)?);
            }
            if failures.is_empty() {
                eprintln!("no failed webhook deliveries for tenant {tenant}");
            }
        }
        Some(EventsWhat::Replay { id }) => {
            let n = store.replay_webhooks(tenant, id)?;
            eprintln!("{n} deliveries marked for replay");
        }
    }
    Ok(ExitCode::SUCCESS)
}
