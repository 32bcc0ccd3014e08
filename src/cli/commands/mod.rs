//! One module per command.

pub mod analyze;
pub mod bench;
pub mod coaching;
pub mod eval;
pub mod events;
pub mod models;
pub mod playbook;
pub mod report;
pub mod reps;
pub mod rescore;
pub mod serve;
pub mod train;
pub mod transcribe;
