//! callqa: self-hosted AI call-quality inspection for sales calls.
//!
//! The modules follow the data flow, and each imports only the ones before it:
//! `audio` (decode, channels, resample, VAD) → `speakers` (who speaks when on mono audio) → `asr` (Whisper windows and pool) → `transcript`
//! (turns: who said what, when) → `redact` (PII) → `text` (embeddings, matching) → `analysis`
//! (the playbook's judgements and the scorecard) → `coaching` (what a rep is assigned, the
//! circuit breaker) → `store` → `delivery` (webhooks) → `report` (HTML) → `service` (the one
//! inspection path every entry point uses) → `api` (callqa.v1 conversions and client) →
//! `batch` (folders of recordings) and `server` (gRPC). `models` and `onnx` install and open the
//! model files; `metrics` counts; `eval` and `bench` measure.

// Model files and the runtime that opens them.
pub mod models;
pub mod onnx;

// Along the data flow, each module importing only those above it (one per group, so that
// rustfmt keeps their order).
pub mod audio;

pub mod speakers;

pub mod asr;

pub mod transcript;

pub mod redact;

pub mod text;

pub mod analysis;

pub mod metrics;

pub mod coaching;

pub mod store;

pub mod delivery;

pub mod report;

pub mod service;

pub mod api;

// The two doors: folders of recordings, and the gRPC service.
pub mod batch;
pub mod server;

// Measurement: accuracy against reference data, speed against a peer.
pub mod bench;
pub mod eval;

/// The generated `callqa.v1` API.
pub mod proto {
    tonic::include_proto!("callqa.v1");
    pub const FILE_DESCRIPTOR_SET: &[u8] = tonic::include_file_descriptor_set!("callqa_descriptor");
}
