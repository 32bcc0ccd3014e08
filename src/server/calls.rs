//! `callqa.v1.CallQa`: analysis of recordings against playbooks, stored per tenant, with the
//! coaching that follows and the events it writes.

use super::{Loaded, PiiReader, Tenant, blocking, measured, validate};
use crate::analysis::Analysis;
use crate::api::convert;
use crate::audio::channels::Role;
use crate::proto;
use crate::service::{self, CallMeta, Permit, Recording, ServiceError};
use crate::store::{ListQuery, Store};
use crate::transcript::{CallOptions, RoleHints};
use chrono::NaiveDate;
use prost::Message;
use std::sync::Arc;
use tokio::sync::Notify;
use tokio_stream::wrappers::ReceiverStream;
use tokio_util::sync::CancellationToken;
use tonic::{Request, Response, Status};

mod stream;

pub struct CallQaService {
    loaded: Loaded,
    store: Arc<dyn Store>,
    playbooks: Arc<super::Playbooks>,
    /// Woken whenever events are written, so that watchers need not poll hard.
    new_events: Arc<Notify>,
    /// Cancelled when the server begins to shut down (event streams end then), and when its
    /// drain time is over (calls in progress stop then).
    shutdown: super::Shutdown,
    streams: super::StreamLimits,
}

fn tenant<T>(req: &Request<T>) -> Result<String, ServiceError> {
    req.extensions()
        .get::<Tenant>()
        .map(|t| t.0.clone())
        .ok_or_else(|| ServiceError::Unauthenticated("no tenant".into()))
}

fn date(s: &str, field: &str) -> Result<Option<NaiveDate>, ServiceError> {
    if s.is_empty() {
        return Ok(None);
    }
    s.parse()
        .map(Some)
        .map_err(|_| ServiceError::InvalidArgument(format!("{field}: {s:?} is not YYYY-MM-DD")))
}

fn roles(channel_roles: &[i32]) -> Vec<Role> {
    channel_roles
        .iter()
        .map(|&r| convert::role_from(r))
        .collect()
}

/// A random id for a request that holds a pending call.
fn uuid_like() -> String {
    use std::sync::atomic::{AtomicU64, Ordering};
    static NEXT: AtomicU64 = AtomicU64::new(0);
    let n = NEXT.fetch_add(1, Ordering::Relaxed);
    service::sha256_hex(
        format!(
            "{n}-{:?}-{}",
            std::time::SystemTime::now(),
            std::process::id()
        )
        .as_bytes(),
    )[..16]
        .to_owned()
}

/// What an AnalyzeCall request says about its call.
fn call_meta(req: &proto::AnalyzeCallRequest) -> Result<CallMeta, ServiceError> {
    validate::call_ids(&req.call_id, &req.rep_id, &req.customer_id, &req.playbook)?;
    Ok(CallMeta {
        call_id: Some(req.call_id.clone()),
        rep_id: Some(req.rep_id.clone()),
        customer_id: Some(req.customer_id.clone()),
        call_date: date(&req.call_date, "call_date")?,
    })
}

impl CallQaService {
    pub fn new(
        loaded: Loaded,
        store: Arc<dyn Store>,
        playbooks: Arc<super::Playbooks>,
        shutdown: super::Shutdown,
        streams: super::StreamLimits,
    ) -> Self {
        Self {
            loaded,
            store,
            playbooks,
            new_events: Arc::new(Notify::new()),
            shutdown,
            streams,
        }
    }

    /// Notified whenever this service writes events.
    pub fn new_events(&self) -> Arc<Notify> {
        self.new_events.clone()
    }

    /// A call's own token: cancelled when the drain time is over.
    fn call_token(&self) -> CancellationToken {
        self.shutdown.deadline.child_token()
    }

    /// Transcribes, analyses and records one accepted request (already in the pending table),
    /// under `permit`. Answers with the Analysis as stored, so that a repeated request, answered
    /// from the store, gets exactly the same reply.
    async fn run(
        &self,
        tenant: String,
        req: proto::AnalyzeCallRequest,
        content_hash: String,
        permit: Permit,
    ) -> Result<Analysis, ServiceError> {
        let inspector = self.loaded.get()?;
        let playbook = self.playbooks.get(&req.playbook)?;
        let meta = call_meta(&req)?;
        let store = self.store.clone();
        let opts = CallOptions {
            language: convert::language_from(req.language),
            channel_roles: roles(&req.channel_roles),
            max_speakers: convert::max_speakers_from(req.max_speakers),
            roles: RoleHints {
                direction: convert::direction_from(req.direction),
                ..RoleHints::default()
            },
            cancel: self.call_token(),
            ..CallOptions::default()
        };
        let recording = Recording {
            bytes: req.audio,
            content_hash,
            recorded_at: None,
        };
        let result = blocking(move || {
            let opts = service::with_rep_voice(&*store, &tenant, meta.rep_id.as_deref(), opts)?;
            let analysis = inspector.recording(&permit, &playbook, recording, meta, &opts)?;
            service::record(&*store, &tenant, &analysis, &playbook)?;
            Ok(analysis)
        })
        .await;
        if result.is_ok() {
            self.new_events.notify_waiters();
        }
        result
    }

    async fn analyze_call(
        &self,
        tenant: String,
        req: proto::AnalyzeCallRequest,
    ) -> Result<proto::Analysis, ServiceError> {
        if req.audio.is_empty() {
            return Err(ServiceError::InvalidArgument("audio: empty".into()));
        }
        let hash = service::sha256_hex(&req.audio);
        let call_id = call_meta(&req)?.call_id_or(&hash);
        let playbook = self.playbooks.get(&req.playbook)?;
        // Idempotent: the same audio under the same playbook revision is answered from the store.
        let store = self.store.clone();
        let (t, c) = (tenant.clone(), call_id.clone());
        if let Some(stored) = blocking(move || Ok(store.identity(&t, &c)?)).await?
            && stored.content_hash.as_deref() == Some(hash.as_str())
            && stored.playbook_revision == playbook.revision
        {
            return self.get_analysis(tenant, call_id).await;
        }
        // Refused for load before anything is kept: a refusal costs no disk.
        let permit = self.loaded.get()?.permit()?;
        // Durable before any work: a crash from here on is picked up again at start. The row
        // is this request's: a second request with the same call id cannot take it over.
        let owner = format!("request-{}", uuid_like());
        let store = self.store.clone();
        let (t, c, o, bytes) = (
            tenant.clone(),
            call_id.clone(),
            owner.clone(),
            req.encode_to_vec(),
        );
        let held =
            blocking(move || Ok(store.put_pending(&t, &c, &bytes, &o, chrono::Utc::now())?));
        if !held.await? {
            return Err(ServiceError::Busy(format!(
                "call {call_id} is being analysed by another request; retry when it is done"
            )));
        }
        match self.run(tenant.clone(), req, hash, permit).await {
            Ok(a) => Ok(convert::analysis(a)),
            Err(ServiceError::Cancelled) => Err(ServiceError::Cancelled), // stays for the restart
            Err(e) => {
                // A request that cannot succeed is answered and forgotten.
                let store = self.store.clone();
                let _ = blocking(move || Ok(store.drop_pending(&tenant, &call_id, &owner)?)).await;
                Err(e)
            }
        }
    }

    /// Analyses the calls an earlier process accepted but did not finish. A call refused for
    /// load waits for a slot; one that fails is forgotten, and says why in the log.
    pub async fn resume_pending(&self) {
        let store = self.store.clone();
        let pending = match blocking(move || Ok(store.pending()?)).await {
            Ok(p) => p,
            Err(e) => {
                tracing::error!("reading pending calls: {e}");
                return;
            }
        };
        for p in pending {
            let (tenant, call_id, owner) = (p.tenant, p.call_id, p.owner);
            let outcome = match proto::AnalyzeCallRequest::decode(p.request.as_slice()) {
                Ok(req) => {
                    let hash = service::sha256_hex(&req.audio);
                    match self.slot().await {
                        Ok(permit) => self
                            .run(tenant.clone(), req, hash, permit)
                            .await
                            .map(|_| ()),
                        Err(e) => Err(e),
                    }
                }
                Err(e) => Err(ServiceError::InvalidArgument(format!(
                    "undecodable pending request: {e}"
                ))),
            };
            match outcome {
                Ok(()) => tracing::info!(%tenant, %call_id, "pending call analysed after restart"),
                Err(ServiceError::Cancelled) => return, // shutting down: it stays pending
                Err(e) => {
                    tracing::error!(%tenant, %call_id, "pending call failed: {e}");
                    let store = self.store.clone();
                    let _ =
                        blocking(move || Ok(store.drop_pending(&tenant, &call_id, &owner)?)).await;
                }
            }
        }
    }

    /// A slot for resumed work: waits while the service is busy, until shutdown.
    async fn slot(&self) -> Result<Permit, ServiceError> {
        loop {
            match self.loaded.get()?.permit() {
                Err(ServiceError::Overloaded(_)) => {}
                other => return other,
            }
            tokio::select! {
                _ = tokio::time::sleep(std::time::Duration::from_millis(500)) => {}
                _ = self.shutdown.begin.cancelled() => return Err(ServiceError::Cancelled),
            }
        }
    }

    async fn get_analysis(
        &self,
        tenant: String,
        call_id: String,
    ) -> Result<proto::Analysis, ServiceError> {
        let store = self.store.clone();
        let analysis = blocking(move || Ok(store.analysis(&tenant, &call_id)?)).await?;
        Ok(convert::analysis(analysis))
    }

    async fn original_transcript(
        &self,
        tenant: String,
        call_id: String,
    ) -> Result<proto::OriginalTranscript, ServiceError> {
        let store = self.store.clone();
        let (t, c) = (tenant, call_id.clone());
        let turns = blocking(move || Ok(store.original_turns(&t, &c)?)).await?;
        Ok(proto::OriginalTranscript {
            call_id,
            turns: turns.into_iter().map(convert::turn).collect(),
        })
    }

    async fn list(
        &self,
        tenant: String,
        req: proto::ListAnalysesRequest,
    ) -> Result<proto::ListAnalysesResponse, ServiceError> {
        let limit = match req.page_size {
            0 => 50,
            n => n.min(500) as usize,
        };
        let before_seq = if req.page_token.is_empty() {
            None
        } else {
            Some(req.page_token.parse::<i64>().map_err(|_| {
                ServiceError::InvalidArgument(format!(
                    "page_token {:?} is not one of ours",
                    req.page_token
                ))
            })?)
        };
        let non_empty = |s: String| (!s.is_empty()).then_some(s);
        let query = ListQuery {
            before_seq,
            rep_id: non_empty(req.rep_id),
            customer_id: non_empty(req.customer_id),
            from_date: date(&req.from_date, "from_date")?,
            to_date: date(&req.to_date, "to_date")?,
            min_score: req.min_score,
            max_score: req.max_score,
            limit: limit + 1,
        };
        let store = self.store.clone();
        let mut rows = blocking(move || Ok(store.list(&tenant, &query)?)).await?;
        let more = rows.len() > limit;
        rows.truncate(limit);
        let next_page_token = if more {
            rows.last().map(|r| r.seq.to_string()).unwrap_or_default()
        } else {
            String::new()
        };
        Ok(proto::ListAnalysesResponse {
            analyses: rows
                .into_iter()
                .map(|r| proto::AnalysisSummary {
                    call_id: r.call_id,
                    rep_id: r.rep_id.unwrap_or_default(),
                    customer_id: r.customer_id.unwrap_or_default(),
                    call_date: r.call_date.to_string(),
                    duration_ms: r.duration_ms,
                    playbook_revision: r.playbook_revision,
                    coverage_percent: r.coverage_percent,
                    score: r.score,
                    analysed_at: r.analysed_at.to_rfc3339(),
                })
                .collect(),
            next_page_token,
        })
    }

    async fn test_playbook(
        &self,
        req: proto::TestPlaybookRequest,
    ) -> Result<proto::Analysis, ServiceError> {
        let inspector = self.loaded.get()?;
        let playbook = if req.playbook_toml.is_empty() {
            self.playbooks.get(&req.playbook)?
        } else {
            Arc::new(validate::playbook_toml(&req.playbook_toml)?)
        };
        let turns = validate::turns(req.turns)?;
        let meta = CallMeta {
            call_date: date(&req.call_date, "call_date")?,
            ..CallMeta::default()
        };
        let permit = inspector.permit()?;
        // The handler's future is dropped when its client leaves; the guard then stops the work.
        let cancel = self.call_token();
        let _guard = cancel.clone().drop_guard();
        blocking(move || {
            let analysis = inspector.text(&permit, &playbook, turns, meta, &cancel)?;
            Ok(convert::analysis(analysis))
        })
        .await
    }
}

impl CallQaService {
    async fn rescore(
        &self,
        tenant: String,
        req: proto::RescoreCallsRequest,
    ) -> Result<proto::RescoreCallsResponse, ServiceError> {
        validate::call_ids("", &req.rep_id, "", &req.playbook)?;
        for id in &req.call_ids {
            validate::call_ids(id, "", "", "")?;
        }
        let inspector = self.loaded.get()?;
        let playbook = self.playbooks.get(&req.playbook)?;
        let which = service::Rescore {
            call_ids: req.call_ids,
            rep_id: (!req.rep_id.is_empty()).then_some(req.rep_id),
            since: date(&req.since, "since")?,
        };
        let permit = inspector.permit()?;
        let cancel = self.call_token();
        let _guard = cancel.clone().drop_guard();
        let store = self.store.clone();
        let revision = playbook.revision.clone();
        let done = blocking(move || {
            inspector.rescore(&permit, &*store, &tenant, &playbook, &which, &cancel)
        })
        .await?;
        self.new_events.notify_waiters();
        Ok(proto::RescoreCallsResponse {
            playbook_revision: revision,
            calls: done
                .into_iter()
                .map(|r| proto::RescoredCall {
                    call_id: r.call_id,
                    old_score: r.old_score,
                    new_score: r.analysis.overall.score,
                    old_revision: r.old_revision,
                })
                .collect(),
        })
    }
}

/// The service as tonic holds it.
pub struct Shared(pub Arc<CallQaService>);

#[tonic::async_trait]
impl proto::call_qa_server::CallQa for Shared {
    async fn analyze_call(
        &self,
        request: Request<proto::AnalyzeCallRequest>,
    ) -> Result<Response<proto::Analysis>, Status> {
        measured("AnalyzeCall", async move {
            let tenant = tenant(&request)?;
            Ok(Response::new(
                self.0.analyze_call(tenant, request.into_inner()).await?,
            ))
        })
        .await
    }

    async fn get_analysis(
        &self,
        request: Request<proto::GetAnalysisRequest>,
    ) -> Result<Response<proto::Analysis>, Status> {
        measured("GetAnalysis", async move {
            let tenant = tenant(&request)?;
            let call_id = request.into_inner().call_id;
            Ok(Response::new(self.0.get_analysis(tenant, call_id).await?))
        })
        .await
    }

    async fn get_original_transcript(
        &self,
        request: Request<proto::GetAnalysisRequest>,
    ) -> Result<Response<proto::OriginalTranscript>, Status> {
        measured("GetOriginalTranscript", async move {
            let tenant = tenant(&request)?;
            if request.extensions().get::<PiiReader>().is_none() {
                return Err(ServiceError::PermissionDenied(
                    "unredacted transcripts need an API key with the pii permission".into(),
                ));
            }
            let call_id = request.into_inner().call_id;
            Ok(Response::new(
                self.0.original_transcript(tenant, call_id).await?,
            ))
        })
        .await
    }

    async fn list_analyses(
        &self,
        request: Request<proto::ListAnalysesRequest>,
    ) -> Result<Response<proto::ListAnalysesResponse>, Status> {
        measured("ListAnalyses", async move {
            let tenant = tenant(&request)?;
            Ok(Response::new(
                self.0.list(tenant, request.into_inner()).await?,
            ))
        })
        .await
    }

    async fn get_rep_profile(
        &self,
        request: Request<proto::GetRepProfileRequest>,
    ) -> Result<Response<proto::RepProfile>, Status> {
        measured("GetRepProfile", async move {
            let tenant = tenant(&request)?;
            let rep = request.into_inner().rep_id;
            let store = self.0.store.clone();
            let profile = blocking(move || Ok(store.rep_profile(&tenant, &rep, None)?)).await?;
            Ok(Response::new(convert::rep_profile(profile)))
        })
        .await
    }

    async fn complete_training(
        &self,
        request: Request<proto::CompleteTrainingRequest>,
    ) -> Result<Response<proto::Event>, Status> {
        measured("CompleteTraining", async move {
            let tenant = tenant(&request)?;
            let rep = request.into_inner().rep_id;
            let store = self.0.store.clone();
            let event = blocking(move || {
                store
                    .complete_training(&tenant, &rep, chrono::Utc::now())?
                    .ok_or_else(|| {
                        ServiceError::NotFound(format!("no active suspension for rep {rep}"))
                    })
            })
            .await?;
            self.0.new_events.notify_waiters();
            Ok(Response::new(convert::event(event)))
        })
        .await
    }

    type StreamCallStream = ReceiverStream<Result<proto::StreamCallResponse, Status>>;

    async fn stream_call(
        &self,
        request: Request<tonic::Streaming<proto::StreamCallRequest>>,
    ) -> Result<Response<Self::StreamCallStream>, Status> {
        measured("StreamCall", async move {
            let tenant = tenant(&request)?;
            let events = self.0.stream_call(tenant, request.into_inner()).await?;
            Ok(Response::new(ReceiverStream::new(events)))
        })
        .await
    }

    type WatchEventsStream = ReceiverStream<Result<proto::Event, Status>>;

    async fn watch_events(
        &self,
        request: Request<proto::WatchEventsRequest>,
    ) -> Result<Response<Self::WatchEventsStream>, Status> {
        measured("WatchEvents", async move {
            let tenant = tenant(&request)?;
            let mut cursor = request.into_inner().after_seq;
            let (tx, rx) = tokio::sync::mpsc::channel(64);
            let store = self.0.store.clone();
            let wake = self.0.new_events.clone();
            let closing = self.0.shutdown.begin.clone();
            tokio::spawn(async move {
                loop {
                    // Register before reading, so that an event written in between still wakes us.
                    let notified = wake.notified();
                    let (s, t) = (store.clone(), tenant.clone());
                    let batch = match blocking(move || Ok(s.events_after(&t, cursor, 100)?)).await {
                        Ok(b) => b,
                        Err(e) => {
                            let _ = tx.send(Err(Status::from(e))).await;
                            return;
                        }
                    };
                    let empty = batch.is_empty();
                    for e in batch {
                        cursor = e.seq;
                        if tx.send(Ok(convert::event(e))).await.is_err() {
                            return; // the watcher went away
                        }
                    }
                    if empty {
                        // Events also come from other processes on the same store: look again soon.
                        tokio::select! {
                            _ = notified => {}
                            _ = tokio::time::sleep(std::time::Duration::from_secs(1)) => {}
                            _ = tx.closed() => return,
                            _ = closing.cancelled() => return,
                        }
                    }
                }
            });
            Ok(Response::new(ReceiverStream::new(rx)))
        })
        .await
    }

    async fn rescore_calls(
        &self,
        request: Request<proto::RescoreCallsRequest>,
    ) -> Result<Response<proto::RescoreCallsResponse>, Status> {
        measured("RescoreCalls", async move {
            let tenant = tenant(&request)?;
            Ok(Response::new(
                self.0.rescore(tenant, request.into_inner()).await?,
            ))
        })
        .await
    }

    async fn test_playbook(
        &self,
        request: Request<proto::TestPlaybookRequest>,
    ) -> Result<Response<proto::Analysis>, Status> {
        measured("TestPlaybook", async move {
            tenant(&request)?;
            Ok(Response::new(
                self.0.test_playbook(request.into_inner()).await?,
            ))
        })
        .await
    }
}
