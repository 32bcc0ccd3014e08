//! Text models and matching.

pub mod embed;
