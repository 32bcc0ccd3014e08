//! The command line: `args` (what clap parses), `settings` (the options resolved once), and one
//! module per command in `commands`. Errors are `anyhow` here, at the binary's edge only.

pub mod args;
mod commands;
pub mod settings;

use anyhow::Result;
use args::{Cli, Command};
use std::process::ExitCode;

/// Runs the command; the exit code is the command's (1 when a batch had failures).
pub fn run(cli: Cli) -> Result<ExitCode> {
    match cli.command {
        Command::Models(c) => commands::models::run(c),
        Command::Transcribe(a) => commands::transcribe::run(a),
        Command::Analyze(a) => commands::analyze::run(*a),
        Command::Playbook(c) => commands::playbook::run(c),
        Command::Rescore(a) => commands::rescore::run(a),
        Command::Eval(c) => commands::eval::run(c),
        Command::Train(c) => commands::train::run(c),
        Command::Bench(c) => commands::bench::run(c),
        Command::Report(c) => commands::report::run(c),
        Command::Coaching(c) => commands::coaching::run(c),
        Command::Reps(c) => commands::reps::run(c),
        Command::Events(c) => commands::events::run(c),
        Command::Serve(a) => commands::serve::run(*a),
    }
}

#[cfg(test)]
mod tests {
    use super::args::Cli;
    use clap::CommandFactory;

    /// Every option of every command says what it does and can come from the environment.
    #[test]
    fn every_option_has_help_and_an_env_var() {
        fn walk(cmd: &clap::Command, path: &str, missing: &mut Vec<String>) {
            for arg in cmd.get_arguments() {
                let id = arg.get_id().as_str();
                if arg.is_positional() || matches!(id, "help" | "version") {
                    continue;
                }
                if arg.get_env().is_none() {
                    missing.push(format!("{path} --{id}: no env var"));
                }
                if arg.get_help().is_none() {
                    missing.push(format!("{path} --{id}: no help"));
                }
            }
            for sub in cmd.get_subcommands() {
                walk(sub, &format!("{path} {}", sub.get_name()), missing);
            }
        }
        let mut missing = Vec::new();
        walk(&Cli::command(), "callqa", &mut missing);
        assert!(missing.is_empty(), "{}", missing.join("\n"));
        Cli::command().debug_assert();
    }
}
