//! `callqa train emotion`: the emotion head, trained and measured.

use crate::cli::args::{TrainCommand, TrainWhat};
use anyhow::Result;
use std::process::ExitCode;

pub fn run(c: TrainCommand) -> Result<ExitCode> {
    let TrainWhat::Emotion { data, out, epochs } = c.what;
    let report = callqa::eval::train::train_and_measure(&c.models.dir(), &data, &out, epochs)?;
    println!("{}", serde_json::to_string_pretty(&report)?);
    Ok(ExitCode::SUCCESS)
}
