//! Prometheus metrics of the service, served as text at `/metrics` on their own HTTP port
//! (`callqa serve --metrics-addr`).

use crate::analysis::Timings;
use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::Registry;
use std::sync::OnceLock;
use std::time::Duration;

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct Rpc {
    method: String,
    code: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct Method {
    method: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct Stage {
    stage: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct Outcome {
    outcome: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct Kind {
    kind: String,
}

/// 10 ms to about 3 minutes.
fn seconds() -> Histogram {
    Histogram::new(exponential_buckets(0.01, 2.0, 15))
}

pub struct Metrics {
    registry: Registry,
    requests: Family<Rpc, Counter>,
    latency: Family<Method, Histogram, fn() -> Histogram>,
    stages: Family<Stage, Histogram, fn() -> Histogram>,
    real_time_factor: Histogram,
    calls_in_progress: Gauge,
    asr_queue: Gauge,
    live_events: Family<Kind, Counter>,
    deliveries: Family<Outcome, Counter>,
}

impl Metrics {
    fn new() -> Self {
        let mut registry = Registry::with_prefix("callqa");
        let requests = Family::<Rpc, Counter>::default();
        registry.register(
            "requests",
            "gRPC requests by method and status code",
            requests.clone(),
        );
        let latency = Family::new_with_constructor(seconds as fn() -> Histogram);
        registry.register(
            "request_duration_seconds",
            "Time to answer a request (for streams: until the stream opened)",
            latency.clone(),
        );
        let stages = Family::new_with_constructor(seconds as fn() -> Histogram);
        registry.register(
            "stage_duration_seconds",
            "Time per analysed call and stage (transcription, analysis)",
            stages.clone(),
        );
        let real_time_factor = Histogram::new(exponential_buckets(0.01, 1.5, 16));
        registry.register(
            "real_time_factor",
            "Processing time over call time, per analysed call",
            real_time_factor.clone(),
        );
        let calls_in_progress = Gauge::default();
        registry.register(
            "calls_in_progress",
            "Calls being transcribed or analysed (recordings and streams)",
            calls_in_progress.clone(),
        );
        let asr_queue = Gauge::default();
        registry.register(
            "asr_queue_depth",
            "Whisper windows waiting for a decoder",
            asr_queue.clone(),
        );
        let live_events = Family::<Kind, Counter>::default();
        registry.register(
            "stream_events",
            "Events sent on StreamCall streams, by kind",
            live_events.clone(),
        );
        let deliveries = Family::<Outcome, Counter>::default();
        registry.register(
            "webhook_deliveries",
            "Webhook deliveries, by outcome (delivered, failed)",
            deliveries.clone(),
        );
        Self {
            registry,
            requests,
            latency,
            stages,
            real_time_factor,
            calls_in_progress,
            asr_queue,
            live_events,
            deliveries,
        }
    }

    pub fn request(&self, method: &str, code: tonic::Code, elapsed: Duration) {
        let code = format!("{code:?}");
        self.requests
            .get_or_create(&Rpc {
                method: method.into(),
                code,
            })
            .inc();
        self.latency
            .get_or_create(&Method {
                method: method.into(),
            })
            .observe(elapsed.as_secs_f64());
    }

    /// A call analysed from audio: its stage times and real-time factor.
    pub fn analysed(&self, t: &Timings) {
        if let Some(ms) = t.transcription_ms {
            self.stage("transcription", ms);
        }
        self.stage("analysis", t.analysis_ms);
        if let Some(rtf) = t.real_time_factor {
            self.real_time_factor.observe(rtf);
        }
    }

    fn stage(&self, stage: &str, ms: u64) {
        self.stages
            .get_or_create(&Stage {
                stage: stage.into(),
            })
            .observe(ms as f64 / 1000.0);
    }

    pub fn live_event(&self, kind: &str) {
        self.live_events
            .get_or_create(&Kind { kind: kind.into() })
            .inc();
    }

    pub fn delivery(&self, delivered: bool) {
        let outcome = if delivered { "delivered" } else { "failed" };
        self.deliveries
            .get_or_create(&Outcome {
                outcome: outcome.into(),
            })
            .inc();
    }

    /// The text exposition, with the load gauges read now.
    pub fn encode(&self, calls_in_progress: usize, asr_queue: usize) -> String {
        self.calls_in_progress.set(calls_in_progress as i64);
        self.asr_queue.set(asr_queue as i64);
        let mut out = String::new();
        prometheus_client::encoding::text::encode(&mut out, &self.registry)
            .expect("writing to a String cannot fail");
        out
    }
}

/// The process's metrics.
pub fn metrics() -> &'static Metrics {
    static METRICS: OnceLock<Metrics> = OnceLock::new();
    METRICS.get_or_init(Metrics::new)
}

/// Serves `/metrics` on `listener` until `shutdown` resolves. `load` reads the gauges at each
/// scrape: (calls in progress, Whisper windows queued).
pub async fn serve(
    listener: tokio::net::TcpListener,
    load: impl Fn() -> (usize, usize) + Clone + Send + Sync + 'static,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    let app = axum::Router::new().route(
        "/metrics",
        axum::routing::get(move || {
            let load = load.clone();
            async move {
                let (calls, queue) = load();
                (
                    [(
                        axum::http::header::CONTENT_TYPE,
                        "text/plain; version=0.0.4; charset=utf-8",
                    )],
                    metrics().encode(calls, queue),
                )
            }
        }),
    );
    axum::serve(listener, app)
        .with_graceful_shutdown(shutdown)
        .await
}
