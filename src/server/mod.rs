//! The gRPC service: callqa.v1, grpc.health.v1 and server reflection.

use crate::asr::{AsrError, Language};
use crate::audio::channels::{Layout, Role};
use crate::audio::{DecodeError, StreamDecoder};
use crate::pipeline::{CallOptions, CallTranscript, Engines, PipelineError, RoleSource};
use crate::proto;
use crate::proto::transcription_server::{Transcription, TranscriptionServer};
use std::net::SocketAddr;
use std::sync::{Arc, OnceLock};
use tokio::sync::Semaphore;
use tonic::{Request, Response, Status};
use tonic_health::ServingStatus;

/// Largest request we accept (a bit over an hour of 8 kHz stereo WAV).
pub const MAX_MESSAGE_BYTES: usize = 64 * 1024 * 1024;

/// Errors of the service layer, mapped to gRPC status codes in one place.
#[derive(Debug, thiserror::Error)]
pub enum ServiceError {
    #[error("models are still loading")]
    NotReady,
    #[error("too many calls in progress ({0} allowed); retry later")]
    Overloaded(usize),
    #[error("audio: {0}")]
    BadAudio(#[from] DecodeError),
    #[error(transparent)]
    Pipeline(#[from] PipelineError),
    #[error("internal error: {0}")]
    Internal(String),
}

impl From<ServiceError> for Status {
    fn from(e: ServiceError) -> Status {
        let msg = e.to_string();
        match e {
            ServiceError::NotReady => Status::unavailable(msg),
            ServiceError::Overloaded(_) => Status::resource_exhausted(msg),
            ServiceError::BadAudio(_)
            | ServiceError::Pipeline(
                PipelineError::Decode(_)
                | PipelineError::Options(_)
                | PipelineError::Asr(AsrError::EnglishOnly(_)),
            ) => Status::invalid_argument(msg),
            ServiceError::Pipeline(_) | ServiceError::Internal(_) => Status::internal(msg),
        }
    }
}

/// The loaded models, filled in once loading finishes.
#[derive(Default, Clone)]
pub struct Loaded {
    engines: Arc<OnceLock<Arc<Engines>>>,
}

impl Loaded {
    pub fn set(&self, engines: Engines) {
        let _ = self.engines.set(Arc::new(engines));
    }
}

fn role_from_proto(r: i32) -> Role {
    match proto::Role::try_from(r).unwrap_or(proto::Role::Unknown) {
        proto::Role::Agent => Role::Agent,
        proto::Role::Customer => Role::Customer,
        proto::Role::Unknown => Role::Unknown,
    }
}

fn role_to_proto(r: Role) -> proto::Role {
    match r {
        Role::Agent => proto::Role::Agent,
        Role::Customer => proto::Role::Customer,
        Role::Unknown => proto::Role::Unknown,
    }
}

fn to_proto(t: CallTranscript) -> proto::TranscribeResponse {
    let layout = match t.layout {
        Layout::Mono => "mono",
        Layout::Duplicated { .. } => "duplicated",
        Layout::PerChannel { .. } => "per_channel",
    };
    let turns = t
        .turns
        .into_iter()
        .map(|turn| proto::Turn {
            role: role_to_proto(turn.role) as i32,
            role_source: match turn.role_source {
                RoleSource::Channel => "channel",
                RoleSource::Heuristic => "heuristic",
                RoleSource::None => "none",
            }
            .into(),
            channel: turn.channel.map(|c| c as u32),
            start_ms: turn.start_ms,
            end_ms: turn.end_ms,
            text: turn.text,
            words: turn
                .words
                .into_iter()
                .map(|w| proto::Word {
                    text: w.text,
                    start_ms: w.start_ms,
                    end_ms: w.end_ms,
                    probability: w.probability,
                })
                .collect(),
            avg_logprob: turn.avg_logprob,
            no_speech_prob: turn.no_speech_prob,
            prosody: turn.prosody.map(|p| proto::Prosody {
                energy_db: p.energy_db,
                energy_sd_db: p.energy_sd_db,
                pitch_hz: p.pitch_hz,
                pitch_sd_semitones: p.pitch_sd_semitones,
                voiced_ratio: p.voiced_ratio,
            }),
        })
        .collect();
    proto::TranscribeResponse {
        language: t.language,
        duration_ms: t.duration_ms,
        channels: t.channels as u32,
        layout: layout.into(),
        turns,
    }
}

pub struct TranscriptionService {
    engines: Loaded,
    slots: Arc<Semaphore>,
    max_concurrent: usize,
}

impl TranscriptionService {
    pub fn new(engines: Loaded, max_concurrent: usize) -> Self {
        Self {
            engines,
            slots: Arc::new(Semaphore::new(max_concurrent)),
            max_concurrent,
        }
    }

    async fn transcribe(
        &self,
        req: proto::TranscribeRequest,
    ) -> Result<proto::TranscribeResponse, ServiceError> {
        let engines = self
            .engines
            .engines
            .get()
            .cloned()
            .ok_or(ServiceError::NotReady)?;
        // Reject at once when full: a caller should back off, not queue without bound.
        let permit = self
            .slots
            .clone()
            .try_acquire_owned()
            .map_err(|_| ServiceError::Overloaded(self.max_concurrent))?;
        let opts = CallOptions {
            language: match proto::Language::try_from(req.language).unwrap_or(proto::Language::Auto)
            {
                proto::Language::Auto => Language::Auto,
                proto::Language::Zh => Language::Zh,
                proto::Language::En => Language::En,
            },
            channel_roles: req
                .channel_roles
                .iter()
                .map(|&r| role_from_proto(r))
                .collect(),
            hotwords: req.hotwords,
            ..CallOptions::default()
        };
        let audio = req.audio;
        tokio::task::spawn_blocking(move || {
            let _permit = permit;
            let decoder = StreamDecoder::from_bytes(audio)?;
            Ok(to_proto(engines.transcribe(decoder, &opts)?))
        })
        .await
        .map_err(|e| ServiceError::Internal(format!("worker failed: {e}")))?
    }
}

#[tonic::async_trait]
impl Transcription for TranscriptionService {
    async fn transcribe(
        &self,
        request: Request<proto::TranscribeRequest>,
    ) -> Result<Response<proto::TranscribeResponse>, Status> {
        Ok(Response::new(
            TranscriptionService::transcribe(self, request.into_inner()).await?,
        ))
    }
}

/// Serves on `listener` until `shutdown` resolves. Health is NOT_SERVING until `load` has
/// filled in the engines, then SERVING.
pub async fn serve(
    listener: tokio::net::TcpListener,
    max_concurrent: usize,
    load: impl FnOnce(Loaded) -> Result<(), String> + Send + 'static,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> Result<(), Box<dyn std::error::Error + Send + Sync>> {
    let (health, health_service) = tonic_health::server::health_reporter();
    health
        .set_service_status("", ServingStatus::NotServing)
        .await;
    health
        .set_not_serving::<TranscriptionServer<TranscriptionService>>()
        .await;

    let loaded = Loaded::default();
    let loading = {
        let loaded = loaded.clone();
        let health = health.clone();
        tokio::spawn(async move {
            match tokio::task::spawn_blocking(move || load(loaded)).await {
                Ok(Ok(())) => {
                    health.set_service_status("", ServingStatus::Serving).await;
                    health
                        .set_serving::<TranscriptionServer<TranscriptionService>>()
                        .await;
                    tracing::info!("models loaded; health is SERVING");
                }
                Ok(Err(e)) => {
                    tracing::error!("models failed to load, health stays NOT_SERVING: {e}")
                }
                Err(e) => tracing::error!("model loading panicked: {e}"),
            }
        })
    };

    let reflection = tonic_reflection::server::Builder::configure()
        .register_encoded_file_descriptor_set(proto::FILE_DESCRIPTOR_SET)
        .register_encoded_file_descriptor_set(tonic_health::pb::FILE_DESCRIPTOR_SET)
        .build_v1()?;
    let service = TranscriptionServer::new(TranscriptionService::new(loaded, max_concurrent))
        .max_decoding_message_size(MAX_MESSAGE_BYTES);
    let result = tonic::transport::Server::builder()
        .add_service(health_service)
        .add_service(reflection)
        .add_service(service)
        .serve_with_incoming_shutdown(
            tokio_stream::wrappers::TcpListenerStream::new(listener),
            shutdown,
        )
        .await;
    loading.abort();
    result?;
    Ok(())
}

/// Binds the address (port 0 picks a free port) and returns the listener and its real address.
pub async fn bind(addr: SocketAddr) -> std::io::Result<(tokio::net::TcpListener, SocketAddr)> {
    let listener = tokio::net::TcpListener::bind(addr).await?;
    let local = listener.local_addr()?;
    Ok((listener, local))
}
