//! The gRPC service: callqa.v1 (Transcription, CallQa), grpc.health.v1 and server reflection.
//! The handlers translate between messages and the inspection service (`crate::service`); every
//! error reaches the client through the one `From<ServiceError> for Status` below.

mod admission;
mod auth;
mod calls;
mod playbooks;
mod transcription;
pub mod validate;

pub use auth::{ApiKeys, KeysError, PiiReader, Tenant};
pub use playbooks::{PlaybookLookupError, Playbooks};

use crate::api::MAX_MESSAGE_BYTES;
use crate::asr::AsrError;
use crate::proto;
use crate::proto::call_qa_server::CallQaServer;
use crate::proto::transcription_server::TranscriptionServer;
use crate::service::engines::LoadError;
use crate::service::{Inspector, ServiceError};
use crate::store::Store;
use crate::transcript::TranscribeError;
use std::net::SocketAddr;
use std::sync::{Arc, OnceLock};
use tokio_util::sync::CancellationToken;
use tonic::Status;
use tonic::service::interceptor::InterceptedService;
use tonic_health::ServingStatus;

impl From<ServiceError> for Status {
    fn from(e: ServiceError) -> Status {
        let msg = e.to_string();
        match e {
            ServiceError::NotReady => Status::unavailable(msg),
            ServiceError::Overloaded(_) => Status::resource_exhausted(msg),
            ServiceError::Busy(_) => Status::aborted(msg),
            ServiceError::DeadlineExceeded(_) => Status::deadline_exceeded(msg),
            ServiceError::BadAudio(_)
            | ServiceError::InvalidArgument(_)
            | ServiceError::Playbook(_)
            | ServiceError::Transcribe(
                TranscribeError::Decode(_)
                | TranscribeError::Options(_)
                | TranscribeError::Asr(AsrError::EnglishOnly(_)),
            ) => Status::invalid_argument(msg),
            ServiceError::NotFound(_) => Status::not_found(msg),
            ServiceError::Unauthenticated(_) => Status::unauthenticated(msg),
            ServiceError::PermissionDenied(_) => Status::permission_denied(msg),
            ServiceError::Cancelled | ServiceError::Transcribe(TranscribeError::Cancelled) => {
                Status::cancelled(msg)
            }
            ServiceError::Transcribe(_)
            | ServiceError::Analysis(_)
            | ServiceError::Store(_)
            | ServiceError::Worker(_) => Status::internal(msg),
        }
    }
}

impl From<PlaybookLookupError> for ServiceError {
    fn from(e: PlaybookLookupError) -> Self {
        match e {
            PlaybookLookupError::NotFound(..) | PlaybookLookupError::Empty(_) => {
                ServiceError::NotFound(e.to_string())
            }
            PlaybookLookupError::Invalid(p) => ServiceError::Playbook(p),
        }
    }
}

/// The inspection service, filled in once its models have loaded.
#[derive(Default, Clone)]
pub struct Loaded(Arc<OnceLock<Arc<Inspector>>>);

impl Loaded {
    fn set(&self, inspector: Inspector) {
        let _ = self.0.set(Arc::new(inspector));
    }

    fn get(&self) -> Result<Arc<Inspector>, ServiceError> {
        self.0.get().cloned().ok_or(ServiceError::NotReady)
    }
}

/// Runs blocking work (decoding, inference, the store) off the async threads.
async fn blocking<T: Send + 'static>(
    f: impl FnOnce() -> Result<T, ServiceError> + Send + 'static,
) -> Result<T, ServiceError> {
    tokio::task::spawn_blocking(f)
        .await
        .map_err(|e| ServiceError::Worker(e.to_string()))?
}

/// Runs a handler, counting its request and timing it for the metrics.
async fn measured<T>(
    method: &str,
    handler: impl std::future::Future<Output = Result<T, ServiceError>>,
) -> Result<T, Status> {
    let started = std::time::Instant::now();
    let out = handler.await.map_err(Status::from);
    let code = out.as_ref().err().map_or(tonic::Code::Ok, Status::code);
    crate::metrics::metrics().request(method, code, started.elapsed());
    out
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
    pub streams: StreamLimits,
}

/// How long a `StreamCall` may wait for its client: for the config that opens it, and between
/// two messages after that (a live call streams audio through its silences too).
#[derive(Debug, Clone, Copy)]
pub struct StreamLimits {
    pub config_timeout: std::time::Duration,
    pub idle_timeout: std::time::Duration,
}

impl Default for StreamLimits {
    fn default() -> Self {
        Self {
            config_timeout: std::time::Duration::from_secs(10),
            idle_timeout: std::time::Duration::from_secs(30),
        }
    }
}

/// The models, opened on a worker thread while the service already answers health checks.
pub type Load = Box<dyn FnOnce() -> Result<crate::service::Models, LoadError> + Send>;

/// How a service stops, as a tree of cancellation tokens: `begin` (a child of `deadline`) stops
/// new work and ends event streams; `deadline` also stops the calls still running, whose
/// accepted requests stay pending for the next start. Every call's own token is a child of
/// `deadline`, cancelled too when its client leaves.
#[derive(Clone, Default)]
pub struct Shutdown {
    pub begin: CancellationToken,
    pub deadline: CancellationToken,
}

impl Shutdown {
    pub fn new() -> Self {
        let deadline = CancellationToken::new();
        Self {
            begin: deadline.child_token(),
            deadline,
        }
    }
}

/// Serves on `listener` until `shutdown.begin` is cancelled, then waits for the calls in progress
/// (which `shutdown.deadline` cuts short). Health is NOT_SERVING until `load` has opened the
/// models, then SERVING; calls left pending by an earlier process are then analysed.
pub async fn serve(
    listener: tokio::net::TcpListener,
    config: ServerConfig,
    load: Load,
    shutdown: Shutdown,
) -> Result<(), Box<dyn std::error::Error + Send + Sync>> {
    let (health, health_service) = tonic_health::server::health_reporter();
    health
        .set_service_status("", ServingStatus::NotServing)
        .await;
    if config.api_keys.is_open() {
        tracing::warn!("no API keys configured: every caller is tenant \"default\"");
    }
    let loaded = Loaded::default();
    let calls = Arc::new(calls::CallQaService::new(
        loaded.clone(),
        config.store.clone(),
        config.playbooks.clone(),
        shutdown.clone(),
        config.streams,
    ));
    if let Some(listener) = config.metrics {
        let loaded = loaded.clone();
        let load = move || {
            loaded.get().map_or((0, 0), |i| {
                let queued = i.engines().map_or(0, |e| e.whisper.queued());
                (i.in_progress(), queued)
            })
        };
        let stop = shutdown.begin.clone().cancelled_owned();
        tokio::spawn(async move {
            if let Err(e) = crate::metrics::serve(listener, load, stop).await {
                tracing::error!("metrics server: {e}");
            }
        });
    }
    tokio::spawn(expire_suspensions(config.store.clone()));
    for endpoint in config.webhooks {
        tracing::info!(tenant = %endpoint.tenant, url = %endpoint.shown_url(), "delivering events");
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
        let max_concurrent = config.max_concurrent;
        tokio::spawn(async move {
            match tokio::task::spawn_blocking(load).await {
                Ok(Ok(models)) => {
                    loaded.set(Inspector::new(models, max_concurrent));
                    health.set_service_status("", ServingStatus::Serving).await;
                    tracing::info!("models loaded; health is SERVING");
                    tokio::spawn(watch_workers(loaded.clone(), health.clone()));
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
    let admitted = loaded.clone();
    let keys = config.api_keys.clone();
    let transcription = InterceptedService::new(
        TranscriptionServer::new(transcription::TranscriptionService {
            loaded,
            playbooks: config.playbooks.clone(),
            calls: shutdown.deadline.clone(),
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
        .layer(admission::Admission(admitted))
        .add_service(health_service)
        .add_service(reflection)
        .add_service(reflection_v1alpha)
        .add_service(transcription)
        .add_service(call_qa)
        .serve_with_incoming_shutdown(
            tokio_stream::wrappers::TcpListenerStream::new(listener),
            shutdown.begin.clone().cancelled_owned(),
        )
        .await;
    loading.abort();
    result?;
    Ok(())
}

/// Turns health NOT_SERVING if no Whisper worker is left to decode, so that a load balancer
/// sends calls elsewhere instead of to a service that can only fail them.
async fn watch_workers(loaded: Loaded, health: tonic_health::server::HealthReporter) {
    let mut tick = tokio::time::interval(std::time::Duration::from_secs(2));
    loop {
        tick.tick().await;
        let alive = loaded
            .get()
            .ok()
            .and_then(|i| i.engines().ok().map(|e| e.whisper.alive()));
        if alive == Some(0) {
            tracing::error!("no Whisper worker is left; health is NOT_SERVING");
            health
                .set_service_status("", ServingStatus::NotServing)
                .await;
            return;
        }
    }
}

/// Ends suspensions whose training camp's time is up, every minute, with a rep.reinstated event
/// each.
async fn expire_suspensions(store: Arc<dyn Store>) {
    let mut tick = tokio::time::interval(std::time::Duration::from_secs(60));
    loop {
        tick.tick().await;
        let store = store.clone();
        match blocking(move || Ok(store.expire_suspensions(chrono::Utc::now())?)).await {
            Ok(events) => {
                for e in events {
                    tracing::info!(rep = %e.payload["rep_id"], tenant = %e.tenant, "rep reinstated: suspension expired");
                }
            }
            Err(e) => tracing::error!("expiring suspensions: {e}"),
        }
    }
}

/// Binds the address (port 0 picks a free port) and returns the listener and its real address.
pub async fn bind(addr: SocketAddr) -> std::io::Result<(tokio::net::TcpListener, SocketAddr)> {
    let listener = tokio::net::TcpListener::bind(addr).await?;
    let local = listener.local_addr()?;
    Ok((listener, local))
}
