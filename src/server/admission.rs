//! Refuses the requests that need a slot as soon as their headers arrive when every slot is
//! taken: their bodies (up to 64 MiB of audio) are then never read, stored or held in memory.
//! The handler checks again when it takes its slot; this only makes the common refusal cheap.

use super::Loaded;
use crate::service::ServiceError;
use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};
use tonic::Status;

/// The methods that run under a slot.
const NEEDS_A_SLOT: &[&str] = &[
    "/callqa.v1.CallQa/AnalyzeCall",
    "/callqa.v1.CallQa/StreamCall",
    "/callqa.v1.CallQa/TestPlaybook",
    "/callqa.v1.Transcription/Transcribe",
];

#[derive(Clone)]
pub struct Admission(pub Loaded);

impl<S> tower_layer::Layer<S> for Admission {
    type Service = Admit<S>;

    fn layer(&self, inner: S) -> Admit<S> {
        Admit {
            inner,
            loaded: self.0.clone(),
        }
    }
}

#[derive(Clone)]
pub struct Admit<S> {
    inner: S,
    loaded: Loaded,
}

type Reply<R, E> = Pin<Box<dyn Future<Output = Result<R, E>> + Send>>;

impl<S, B, RB> tower_service::Service<http::Request<B>> for Admit<S>
where
    S: tower_service::Service<http::Request<B>, Response = http::Response<RB>>,
    S::Future: Send + 'static,
    RB: Default + Send + 'static,
{
    type Response = S::Response;
    type Error = S::Error;
    type Future = Reply<Self::Response, Self::Error>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, req: http::Request<B>) -> Self::Future {
        let full = self.loaded.get().ok().filter(|i| i.is_full());
        if let Some(inspector) = full
            && NEEDS_A_SLOT.contains(&req.uri().path())
        {
            let refused = Status::from(ServiceError::Overloaded(inspector.max_concurrent()));
            crate::metrics::metrics().request(
                req.uri().path().rsplit('/').next().unwrap_or_default(),
                refused.code(),
                std::time::Duration::ZERO,
            );
            return Box::pin(async move { Ok(refused.into_http()) });
        }
        Box::pin(self.inner.call(req))
    }
}
