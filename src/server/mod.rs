//! The gRPC service: callqa.v1 (Transcription, CallQa), grpc.health.v1 and server reflection.

mod auth;
mod calls;
pub mod convert;
mod playbooks;
mod transcription;

pub use auth::{ApiKeys, PiiReader, Tenant};
pub use playbooks::Playbooks;

use crate::analysis::playbook::PlaybookError;
use crate::asr::{AsrError, Language};
use crate::audio::DecodeError;
use crate::engines::AnalyserPool;
use crate::pipeline::{Engines, PipelineError};
use crate::proto;
use crate::proto::call_qa_server::CallQaServer;
use crate::proto::transcription_server::TranscriptionServer;
use crate::store::{Store, StoreError};
use std::net::SocketAddr;
use std::sync::{Arc, OnceLock};
use tokio::sync::{OwnedSemaphorePermit, Semaphore};
use tonic::Status;
use tonic::service::interceptor::InterceptedService;
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
    #[error("{0}")]
    InvalidArgument(String),
    #[error("{0}")]
    NotFound(String),
    #[error("{0}")]
    PermissionDenied(String),
    #[error(transparent)]
    Playbook(#[from] PlaybookError),
    #[error(transparent)]
    Store(StoreError),
    #[error("internal error: {0}")]
    Internal(String),
}

impl From<StoreError> for ServiceError {
    fn from(e: StoreError) -> Self {
        match e {
            StoreError::NotFound(what) => ServiceError::NotFound(what),
            other => ServiceError::Store(other),
        }
    }
}

impl From<playbooks::PlaybookLookupError> for ServiceError {
    fn from(e: playbooks::PlaybookLookupError) -> Self {
        match e {
            playbooks::PlaybookLookupError::NotFound(..) => ServiceError::NotFound(e.to_string()),
            playbooks::PlaybookLookupError::Invalid(p) => ServiceError::Playbook(p),
        }
    }
}

impl From<ServiceError> for Status {
    fn from(e: ServiceError) -> Status {
        let msg = e.to_string();
        match e {
            ServiceError::NotReady => Status::unavailable(msg),
            ServiceError::Overloaded(_) => Status::resource_exhausted(msg),
            ServiceError::BadAudio(_)
            | ServiceError::InvalidArgument(_)
            | ServiceError::Playbook(_)
            | ServiceError::Pipeline(
                PipelineError::Decode(_)
                | PipelineError::Options(_)
                | PipelineError::Asr(AsrError::EnglishOnly(_)),
            ) => Status::invalid_argument(msg),
            ServiceError::NotFound(_) => Status::not_found(msg),
            ServiceError::PermissionDenied(_) => Status::permission_denied(msg),
            ServiceError::Pipeline(PipelineError::Cancelled) => Status::cancelled(msg),
            ServiceError::Pipeline(_) | ServiceError::Store(_) | ServiceError::Internal(_) => {
                Status::internal(msg)
            }
        }
    }
}

/// The models a running service uses: the transcription engines and the analysers.
pub struct Models {
    pub engines: Engines,
    pub analysers: AnalyserPool,
}

/// The models, filled in once loading finishes.
#[derive(Default, Clone)]
pub struct Loaded(Arc<OnceLock<Arc<Models>>>);

impl Loaded {
    pub fn set(&self, models: Models) {
        let _ = self.0.set(Arc::new(models));
    }

    fn get(&self) -> Result<Arc<Models>, ServiceError> {
        self.0.get().cloned().ok_or(ServiceError::NotReady)
    }
}

/// Calls that may run at once. Past the limit a caller is refused at once: it should back off,
/// not queue without bound.
#[derive(Clone)]
struct Slots(Arc<Semaphore>, usize);

impl Slots {
    fn new(n: usize) -> Self {
        Self(Arc::new(Semaphore::new(n)), n)
    }
    fn in_use(&self) -> usize {
        self.1 - self.0.available_permits()
    }

    fn acquire(&self) -> Result<OwnedSemaphorePermit, ServiceError> {
        self.0
            .clone()
            .try_acquire_owned()
            .map_err(|_| ServiceError::Overloaded(self.1))
    }
}

/// Runs a handler, counting its request and timing it for the metrics.
async fn measured<T>(
    method: &str,
    handler: impl std::future::Future<Output = Result<T, Status>>,
) -> Result<T, Status> {
    let started = std::time::Instant::now();
    let out = handler.await;
    let code = out.as_ref().err().map_or(tonic::Code::Ok, Status::code);
    crate::metrics::metrics().request(method, code, started.elapsed());
    out
}

fn language(l: i32) -> Language {
    match proto::Language::try_from(l).unwrap_or(proto::Language::Auto) {
        proto::Language::Auto => Language::Auto,
        proto::Language::Zh => Language::Zh,
        proto::Language::En => Language::En,
    }
}

/// What a service instance serves from.
pub struct ServerConfig {
    pub max_concurrent: usize,
    pub store: Arc<dyn Store>,
    pub playbooks: Arc<Playbooks>,
    pub api_keys: ApiKeys,
    /// Where each tenant's events are POSTed.
    pub webhooks: Vec<crate::delivery::Endpoint>,
    /// PEM certificate chain and private key: serve TLS instead of plaintext.
    pub tls: Option<(Vec<u8>, Vec<u8>)>,
    /// Where to serve Prometheus metrics (`/metrics`), if anywhere.
    pub metrics: Option<tokio::net::TcpListener>,
}

/// Serves on `listener` until `shutdown` resolves. Health is NOT_SERVING until `load` has
/// filled in the models, then SERVING; calls left pending by an earlier process are then
/// analysed.
pub async fn serve(
    listener: tokio::net::TcpListener,
    config: ServerConfig,
    load: impl FnOnce(Loaded) -> Result<(), String> + Send + 'static,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> Result<(), Box<dyn std::error::Error + Send + Sync>> {
    let (health, health_service) = tonic_health::server::health_reporter();
    health
        .set_service_status("", ServingStatus::NotServing)
        .await;
    if config.api_keys.is_open() {
        tracing::warn!("no API keys configured: every caller is tenant \"default\"");
    }
    let loaded = Loaded::default();
    let slots = Slots::new(config.max_concurrent);
    // Long-lived streams end when shutdown begins, so that it does not wait on them forever.
    let (closing_tx, closing) = tokio::sync::watch::channel(false);
    let shutdown = async move {
        shutdown.await;
        let _ = closing_tx.send(true);
    };
    let calls = Arc::new(calls::CallQaService::new(
        loaded.clone(),
        slots.clone(),
        config.store.clone(),
        config.playbooks.clone(),
        closing.clone(),
    ));
    if let Some(listener) = config.metrics {
        let (loaded, slots) = (loaded.clone(), slots.clone());
        let load = move || {
            let queued = loaded.get().map_or(0, |m| m.engines.whisper.queued());
            (slots.in_use(), queued)
        };
        let mut closing = closing;
        tokio::spawn(async move {
            let stop = async move {
                let _ = closing.wait_for(|&c| c).await;
            };
            if let Err(e) = crate::metrics::serve(listener, load, stop).await {
                tracing::error!("metrics server: {e}");
            }
        });
    }
    for endpoint in config.webhooks {
        tracing::info!(tenant = %endpoint.tenant, url = %endpoint.url, "delivering events");
        tokio::spawn(crate::delivery::run_endpoint(
            config.store.clone(),
            endpoint,
            crate::delivery::Retry::default(),
            calls.new_events(),
        ));
    }
    let loading = {
        let loaded = loaded.clone();
        let health = health.clone();
        let calls = calls.clone();
        tokio::spawn(async move {
            match tokio::task::spawn_blocking(move || load(loaded)).await {
                Ok(Ok(())) => {
                    health.set_service_status("", ServingStatus::Serving).await;
                    tracing::info!("models loaded; health is SERVING");
                    calls.resume_pending().await;
                }
                Ok(Err(e)) => {
                    tracing::error!("models failed to load, health stays NOT_SERVING: {e}")
                }
                Err(e) => tracing::error!("model loading panicked: {e}"),
            }
        })
    };

    // Reflection in both versions: v1, and v1alpha that many clients (grpcio's, older grpcurl)
    // still speak.
    let reflection = || {
        tonic_reflection::server::Builder::configure()
            .register_encoded_file_descriptor_set(proto::FILE_DESCRIPTOR_SET)
            .register_encoded_file_descriptor_set(tonic_health::pb::FILE_DESCRIPTOR_SET)
    };
    let reflection_v1alpha = reflection().build_v1alpha()?;
    let reflection = reflection().build_v1()?;
    let keys = config.api_keys.clone();
    let transcription = InterceptedService::new(
        TranscriptionServer::new(transcription::TranscriptionService {
            models: loaded,
            slots,
            playbooks: config.playbooks.clone(),
        })
        .max_decoding_message_size(MAX_MESSAGE_BYTES),
        move |req| keys.check(req),
    );
    let keys = config.api_keys.clone();
    let call_qa = InterceptedService::new(
        CallQaServer::new(calls::Shared(calls)).max_decoding_message_size(MAX_MESSAGE_BYTES),
        move |req| keys.check(req),
    );
    let mut builder = tonic::transport::Server::builder();
    if let Some((cert, key)) = &config.tls {
        builder = builder.tls_config(
            tonic::transport::ServerTlsConfig::new()
                .identity(tonic::transport::Identity::from_pem(cert, key)),
        )?;
    }
    let result = builder
        .add_service(health_service)
        .add_service(reflection)
        .add_service(reflection_v1alpha)
        .add_service(transcription)
        .add_service(call_qa)
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
