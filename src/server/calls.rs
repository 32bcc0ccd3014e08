//! `callqa.v1.CallQa`: analysis of recordings against playbooks, stored per tenant, with the
//! coaching that follows and the events it writes.

use super::{Loaded, PiiReader, ServiceError, Slots, Tenant, convert, language, measured};
use crate::analysis::playbook::Playbook;
use crate::analysis::{Analysis, CallInfo};
use crate::audio::StreamDecoder;
use crate::pipeline::Turn;
use crate::proto;
use crate::store::{ListQuery, Store};
use chrono::{NaiveDate, Utc};
use prost::Message;
use sha2::{Digest, Sha256};
use std::sync::Arc;
use tokio::sync::Notify;
use tokio_stream::wrappers::ReceiverStream;
use tonic::{Request, Response, Status};

mod stream;

pub struct CallQaService {
    models: Loaded,
    slots: Slots,
    store: Arc<dyn Store>,
    playbooks: Arc<super::Playbooks>,
    /// Woken whenever events are written, so that watchers need not poll hard.
    new_events: Arc<Notify>,
    /// Becomes true when the server shuts down: event streams end then.
    closing: tokio::sync::watch::Receiver<bool>,
}

fn tenant<T>(req: &Request<T>) -> Result<String, Status> {
    req.extensions()
        .get::<Tenant>()
        .map(|t| t.0.clone())
        .ok_or_else(|| Status::unauthenticated("no tenant"))
}

fn date(s: &str, field: &str) -> Result<Option<NaiveDate>, ServiceError> {
    if s.is_empty() {
        return Ok(None);
    }
    s.parse()
        .map(Some)
        .map_err(|_| ServiceError::InvalidArgument(format!("{field}: {s:?} is not YYYY-MM-DD")))
}

/// The recording's sha256: the default call id, and the idempotency check.
fn audio_hash(audio: &[u8]) -> String {
    hex::encode(Sha256::digest(audio))
}

fn non_empty(s: String) -> Option<String> {
    (!s.is_empty()).then_some(s)
}

async fn blocking<T: Send + 'static>(
    f: impl FnOnce() -> Result<T, ServiceError> + Send + 'static,
) -> Result<T, ServiceError> {
    tokio::task::spawn_blocking(f)
        .await
        .map_err(|e| ServiceError::Internal(format!("worker failed: {e}")))?
}

fn roles(channel_roles: &[i32]) -> Vec<crate::audio::channels::Role> {
    channel_roles
        .iter()
        .map(|&r| convert::role_from(r))
        .collect()
}

/// Runs the analysers over a transcribed call and stores the result with its events. Answers
/// with the Analysis as stored, so that a repeated request, answered from the store, gets
/// exactly the same reply.
fn analyse_and_record(
    models: &super::Models,
    store: &dyn Store,
    tenant: &str,
    playbook: &Playbook,
    info: CallInfo,
    turns: Vec<Turn>,
) -> Result<Analysis, ServiceError> {
    let analysis = models
        .analysers
        .with(|a| a.run(playbook, info, turns))
        .map_err(|e| ServiceError::Internal(e.to_string()))?;
    store.record(tenant, &analysis, playbook, Utc::now())?;
    crate::metrics::metrics().analysed(&analysis.timings);
    // The store keeps the JSON text and reads it back into a Value: the same path here, so
    // that every float parses to the same bits.
    serde_json::to_string(&analysis)
        .and_then(|text| serde_json::from_str::<serde_json::Value>(&text))
        .and_then(serde_json::from_value)
        .map_err(|e| ServiceError::Internal(e.to_string()))
}

impl CallQaService {
    pub fn new(
        models: Loaded,
        slots: Slots,
        store: Arc<dyn Store>,
        playbooks: Arc<super::Playbooks>,
        closing: tokio::sync::watch::Receiver<bool>,
    ) -> Self {
        Self {
            models,
            slots,
            store,
            playbooks,
            new_events: Arc::new(Notify::new()),
            closing,
        }
    }

    /// Notified whenever this service writes events.
    pub fn new_events(&self) -> Arc<Notify> {
        self.new_events.clone()
    }

    /// Transcribes, analyses and records one accepted request (already in the pending table).
    async fn run(
        &self,
        tenant: String,
        call_id: String,
        req: proto::AnalyzeCallRequest,
        content_hash: String,
    ) -> Result<Analysis, ServiceError> {
        let models = self.models.get()?;
        let playbook = self.playbooks.get(&req.playbook)?;
        let call_date =
            date(&req.call_date, "call_date")?.unwrap_or_else(|| Utc::now().date_naive());
        let permit = self.slots.acquire()?;
        let store = self.store.clone();
        let result = blocking(move || {
            let _permit = permit;
            let opts = playbook.call_options(language(req.language), roles(&req.channel_roles));
            let started = std::time::Instant::now();
            let transcript = models
                .engines
                .transcribe(StreamDecoder::from_bytes(req.audio)?, &opts)?;
            let info = CallInfo {
                rep_id: non_empty(req.rep_id),
                customer_id: non_empty(req.customer_id),
                call_date,
                content_hash: Some(content_hash),
                ..CallInfo::of_transcript(
                    call_id,
                    &transcript,
                    started.elapsed().as_millis() as u64,
                )
            };
            analyse_and_record(&models, &*store, &tenant, &playbook, info, transcript.turns)
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
        let hash = audio_hash(&req.audio);
        let call_id = if req.call_id.is_empty() {
            hash.clone()
        } else {
            req.call_id.clone()
        };
        let playbook = self.playbooks.get(&req.playbook)?;
        // Idempotent: the same audio under the same playbook revision is answered from the store.
        let store = self.store.clone();
        let (t, c) = (tenant.clone(), call_id.clone());
        if let Some((Some(stored_hash), revision)) =
            blocking(move || Ok(store.identity(&t, &c)?)).await?
            && stored_hash == hash
            && revision == playbook.revision
        {
            return self.get_analysis(tenant, call_id).await;
        }
        self.models.get()?;
        // Durable before any work: a crash from here on is picked up again at start.
        let store = self.store.clone();
        let (t, c, bytes) = (tenant.clone(), call_id.clone(), req.encode_to_vec());
        blocking(move || Ok(store.put_pending(&t, &c, &bytes, Utc::now())?)).await?;
        match self.run(tenant.clone(), call_id.clone(), req, hash).await {
            Ok(a) => Ok(convert::analysis(a)),
            Err(e) => {
                // A request that cannot succeed is answered and forgotten; one refused for load
                // or readiness stays for the caller's retry, and is not left half-accepted.
                let store = self.store.clone();
                let _ = blocking(move || Ok(store.drop_pending(&tenant, &call_id)?)).await;
                Err(e)
            }
        }
    }

    /// Analyses the calls an earlier process accepted but did not finish.
    pub async fn resume_pending(&self) {
        let store = self.store.clone();
        let pending = match blocking(move || Ok(store.pending()?)).await {
            Ok(p) => p,
            Err(e) => {
                tracing::error!("reading pending calls: {e}");
                return;
            }
        };
        for (tenant, call_id, bytes) in pending {
            let outcome = match proto::AnalyzeCallRequest::decode(bytes.as_slice()) {
                Ok(req) => {
                    let hash = audio_hash(&req.audio);
                    self.run(tenant.clone(), call_id.clone(), req, hash)
                        .await
                        .map(|_| ())
                }
                Err(e) => Err(ServiceError::Internal(format!(
                    "undecodable pending request: {e}"
                ))),
            };
            match outcome {
                Ok(()) => tracing::info!(%tenant, %call_id, "pending call analysed after restart"),
                Err(e) => {
                    tracing::error!(%tenant, %call_id, "pending call failed: {e}");
                    let store = self.store.clone();
                    let _ = blocking(move || Ok(store.drop_pending(&tenant, &call_id)?)).await;
                }
            }
        }
    }

    async fn get_analysis(
        &self,
        tenant: String,
        call_id: String,
    ) -> Result<proto::Analysis, ServiceError> {
        let store = self.store.clone();
        blocking(move || {
            let value = store.analysis(&tenant, &call_id)?;
            let analysis: Analysis = serde_json::from_value(value)
                .map_err(|e| ServiceError::Internal(format!("stored analysis: {e}")))?;
            Ok(convert::analysis(analysis))
        })
        .await
    }

    async fn original_transcript(
        &self,
        tenant: String,
        call_id: String,
    ) -> Result<proto::OriginalTranscript, ServiceError> {
        let store = self.store.clone();
        blocking(move || {
            let value = store.original_turns(&tenant, &call_id)?;
            let turns: Vec<crate::pipeline::Turn> = serde_json::from_value(value)
                .map_err(|e| ServiceError::Internal(format!("stored transcript: {e}")))?;
            Ok(proto::OriginalTranscript {
                call_id,
                turns: turns.into_iter().map(convert::turn).collect(),
            })
        })
        .await
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
        let models = self.models.get()?;
        let playbook: Arc<Playbook> = if req.playbook_toml.is_empty() {
            self.playbooks.get(&req.playbook)?
        } else {
            Arc::new(Playbook::parse(&req.playbook_toml, "playbook_toml")?)
        };
        let mut turns = Vec::new();
        for (i, t) in req.turns.into_iter().enumerate() {
            if t.end_ms < t.start_ms {
                return Err(ServiceError::InvalidArgument(format!(
                    "turns[{i}]: end_ms is before start_ms"
                )));
            }
            let json = serde_json::json!({
                "role": convert::role_from(t.role), "start_ms": t.start_ms, "end_ms": t.end_ms,
                "text": t.text,
            });
            turns.push(
                serde_json::from_value::<Turn>(json)
                    .map_err(|e| ServiceError::Internal(e.to_string()))?,
            );
        }
        turns.sort_by_key(|t| t.start_ms);
        let info = CallInfo {
            call_id: "test".into(),
            call_date: date(&req.call_date, "call_date")?
                .unwrap_or_else(|| Utc::now().date_naive()),
            duration_ms: turns.iter().map(|t| t.end_ms).max().unwrap_or(0),
            ..CallInfo::default()
        };
        blocking(move || {
            models
                .analysers
                .with(|a| a.run(&playbook, info, turns))
                .map(convert::analysis)
                .map_err(|e| ServiceError::Internal(e.to_string()))
        })
        .await
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
                )
                .into());
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
            let profile = blocking(move || Ok(store.rep_profile(&tenant, &rep)?)).await?;
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
                    .complete_training(&tenant, &rep, Utc::now())?
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
            let mut closing = self.0.closing.clone();
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
                            _ = closing.wait_for(|&c| c) => return,
                        }
                    }
                }
            });
            Ok(Response::new(ReceiverStream::new(rx)))
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
