//! Text models and matching: sentence embeddings, dialogue acts, edit distance.

pub mod acts;
pub mod edit;
pub mod embed;
pub mod unigram;

pub use edit::edit_distance;
