//! callqa: self-hosted AI call-quality inspection for sales calls.
//!
//! Data flow: `audio` (decode, channels, resample, VAD) → `asr` (windows, Whisper pool, guards),
//! orchestrated by `pipeline` (or `live` for streams) → `redact` (PII) → `analysis` (with `text`
//! embeddings) → `store`, `delivery` (webhooks) and `server` (gRPC).
//! `models` installs and checks every model file.

pub mod analysis;
pub mod asr;
pub mod audio;
pub mod batch;
pub mod bench;
pub mod coaching;
pub mod delivery;
pub mod engines;
pub mod eval;
pub mod live;
pub mod metrics;
pub mod models;
pub mod onnx;
pub mod pipeline;
pub mod redact;
pub mod server;
pub mod store;
pub mod text;

/// The generated `callqa.v1` API.
pub mod proto {
    tonic::include_proto!("callqa.v1");
    pub const FILE_DESCRIPTOR_SET: &[u8] = tonic::include_file_descriptor_set!("callqa_descriptor");
}
