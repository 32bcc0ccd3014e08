//! Text models and matching: sentence embeddings, edit distance.

pub mod edit;
pub mod embed;
pub mod unigram;

pub use edit::edit_distance;
