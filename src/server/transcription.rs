//! `callqa.v1.Transcription`: a recording in, role-attributed turns out.

use super::{Loaded, Playbooks, ServiceError, Slots, convert};
use crate::analysis::playbook::Redaction;
use crate::audio::StreamDecoder;
use crate::audio::channels::Layout;
use crate::pipeline::{CallOptions, CallTranscript};
use crate::proto;
use crate::proto::transcription_server::Transcription;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use tonic::{Request, Response, Status};

fn to_proto(t: CallTranscript) -> proto::TranscribeResponse {
    let layout = match t.layout {
        Layout::Mono => "mono",
        Layout::Duplicated { .. } => "duplicated",
        Layout::PerChannel { .. } => "per_channel",
    };
    proto::TranscribeResponse {
        language: t.language,
        duration_ms: t.duration_ms,
        channels: t.channels as u32,
        layout: layout.into(),
        turns: t.turns.into_iter().map(convert::turn).collect(),
    }
}

struct CancelOnDrop(Arc<AtomicBool>);

impl Drop for CancelOnDrop {
    fn drop(&mut self) {
        self.0.store(true, Ordering::Relaxed);
    }
}

pub struct TranscriptionService {
    pub(super) models: Loaded,
    pub(super) slots: Slots,
    pub(super) playbooks: Arc<Playbooks>,
}

impl TranscriptionService {
    async fn transcribe(
        &self,
        req: proto::TranscribeRequest,
    ) -> Result<proto::TranscribeResponse, ServiceError> {
        let redaction = match req.playbook.as_str() {
            "" => Redaction::default(),
            name => self.playbooks.get(name)?.redaction.clone(),
        };
        let models = self.models.get()?;
        let permit = self.slots.acquire()?;
        // The handler's future is dropped when its client goes away; the guard then stops the
        // transcription it started.
        let cancel = Arc::new(AtomicBool::new(false));
        let _guard = CancelOnDrop(cancel.clone());
        let opts = CallOptions {
            language: super::language(req.language),
            channel_roles: req
                .channel_roles
                .iter()
                .map(|&r| convert::role_from(r))
                .collect(),
            hotwords: req.hotwords,
            cancel: Some(cancel),
            ..CallOptions::default()
        };
        let audio = req.audio;
        tokio::task::spawn_blocking(move || {
            let _permit = permit;
            let decoder = StreamDecoder::from_bytes(audio)?;
            let mut transcript = models.engines.transcribe(decoder, &opts)?;
            crate::redact::redact(&mut transcript.turns, &redaction);
            Ok(to_proto(transcript))
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
        super::measured("Transcribe", async move {
            Ok(Response::new(
                TranscriptionService::transcribe(self, request.into_inner()).await?,
            ))
        })
        .await
    }
}
