//! The gRPC service: callqa.v1, grpc.health.v1 and server reflection.

use crate::asr::{AsrError, Language, WhisperEngine};
use crate::audio::{self, AudioError};
use crate::proto;
use crate::proto::transcription_server::{Transcription, TranscriptionServer};
use std::net::SocketAddr;
use std::sync::{Arc, OnceLock};
use tokio::sync::Semaphore;
use tonic::{Request, Response, Status};
use tonic_health::ServingStatus;

/// Largest request we accept (a recording of a bit over an hour of 8 kHz stereo WAV).
pub const MAX_MESSAGE_BYTES: usize = 64 * 1024 * 1024;

/// Errors of the service layer, mapped to gRPC status codes in one place.
#[derive(Debug, thiserror::Error)]
pub enum ServiceError {
    #[error("models are still loading")]
    NotReady,
    #[error("too many transcriptions in progress ({0} allowed); retry later")]
    Overloaded(usize),
    #[error("audio: {0}")]
    BadAudio(#[from] AudioError),
    #[error(transparent)]
    Asr(#[from] AsrError),
}

impl From<ServiceError> for Status {
    fn from(e: ServiceError) -> Status {
        let msg = e.to_string();
        match e {
            ServiceError::NotReady => Status::unavailable(msg),
            ServiceError::Overloaded(_) => Status::resource_exhausted(msg),
            ServiceError::BadAudio(_) | ServiceError::Asr(AsrError::EnglishOnly(_)) => {
                Status::invalid_argument(msg)
            }
            ServiceError::Asr(_) => Status::internal(msg),
        }
    }
}

/// The loaded models, filled in once loading finishes.
#[derive(Default, Clone)]
pub struct Engines {
    whisper: Arc<OnceLock<Arc<WhisperEngine>>>,
}

impl Engines {
    pub fn set_whisper(&self, engine: WhisperEngine) {
        let _ = self.whisper.set(Arc::new(engine));
    }
}

pub struct TranscriptionService {
    engines: Engines,
    slots: Arc<Semaphore>,
    max_concurrent: usize,
}

impl TranscriptionService {
    pub fn new(engines: Engines, max_concurrent: usize) -> Self {
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
        let whisper = self
            .engines
            .whisper
            .get()
            .cloned()
            .ok_or(ServiceError::NotReady)?;
        // Reject at once when full: a caller should back off, not queue without bound.
        let permit = self
            .slots
            .clone()
            .try_acquire_owned()
            .map_err(|_| ServiceError::Overloaded(self.max_concurrent))?;
        let language =
            match proto::Language::try_from(req.language).unwrap_or(proto::Language::Auto) {
                proto::Language::Auto => Language::Auto,
                proto::Language::Zh => Language::Zh,
                proto::Language::En => Language::En,
            };
        let audio_bytes = req.audio;
        tokio::task::spawn_blocking(move || {
            let _permit = permit;
            let (decoded, mono) = audio::load_16k_mono(audio_bytes)?;
            let transcript = whisper.transcribe(&mono, language)?;
            Ok(proto::TranscribeResponse {
                language: transcript.language,
                duration_ms: decoded.duration_ms(),
                segments: transcript
                    .segments
                    .into_iter()
                    .map(|s| proto::Segment {
                        start_ms: s.start_ms,
                        end_ms: s.end_ms,
                        text: s.text,
                        avg_logprob: s.avg_logprob,
                        no_speech_prob: s.no_speech_prob,
                    })
                    .collect(),
            })
        })
        .await
        .map_err(|e| ServiceError::Asr(AsrError::Run(format!("worker failed: {e}"))))?
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
    load: impl FnOnce(Engines) -> Result<(), String> + Send + 'static,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> Result<(), Box<dyn std::error::Error + Send + Sync>> {
    let (health, health_service) = tonic_health::server::health_reporter();
    health
        .set_service_status("", ServingStatus::NotServing)
        .await;
    health
        .set_not_serving::<TranscriptionServer<TranscriptionService>>()
        .await;

    let engines = Engines::default();
    let loading = {
        let engines = engines.clone();
        let health = health.clone();
        tokio::spawn(async move {
            match tokio::task::spawn_blocking(move || load(engines)).await {
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
    let service = TranscriptionServer::new(TranscriptionService::new(engines, max_concurrent))
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
