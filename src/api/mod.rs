//! The callqa.v1 API seen from the crate: conversions between its messages and the crate's types,
//! and a client of a running service. The gRPC server and `analyze --server` both use them.

pub mod client;
pub mod convert;

pub use client::MAX_MESSAGE_BYTES;
