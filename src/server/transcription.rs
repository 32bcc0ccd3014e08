//! `callqa.v1.Transcription`: a recording in, role-attributed turns out.

use super::{Loaded, Playbooks, blocking, measured};
use crate::api::convert;
use crate::audio::channels::Layout;
use crate::proto;
use crate::proto::transcription_server::Transcription;
use crate::redact::Redaction;
use crate::service::ServiceError;
use crate::transcript::{CallOptions, CallTranscript};
use std::sync::Arc;
use tokio_util::sync::CancellationToken;
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

pub struct TranscriptionService {
    pub(super) loaded: Loaded,
    pub(super) playbooks: Arc<Playbooks>,
    /// The parent of every call's token: cancelled when the drain time is over.
    pub(super) calls: CancellationToken,
}

impl TranscriptionService {
    async fn transcribe(
        &self,
        req: proto::TranscribeRequest,
    ) -> Result<proto::TranscribeResponse, ServiceError> {
        super::validate::hotwords(&req.hotwords)?;
        let redaction = match req.playbook.as_str() {
            "" => Redaction::default(),
            name => self.playbooks.get(name)?.redaction.clone(),
        };
        let inspector = self.loaded.get()?;
        let permit = inspector.permit()?;
        // The handler's future is dropped when its client goes away; the guard then stops the
        // transcription it started.
        let cancel = self.calls.child_token();
        let _guard = cancel.clone().drop_guard();
        let opts = CallOptions {
            language: convert::language_from(req.language),
            channel_roles: req
                .channel_roles
                .iter()
                .map(|&r| convert::role_from(r))
                .collect(),
            hotwords: req.hotwords,
            cancel,
            ..CallOptions::default()
        };
        let audio = req.audio;
        blocking(move || {
            let transcript = inspector.transcribe(&permit, audio, &opts, &redaction)?;
            Ok(to_proto(transcript))
        })
        .await
    }
}

#[tonic::async_trait]
impl Transcription for TranscriptionService {
    async fn transcribe(
        &self,
        request: Request<proto::TranscribeRequest>,
    ) -> Result<Response<proto::TranscribeResponse>, Status> {
        measured("Transcribe", async move {
            Ok(Response::new(
                TranscriptionService::transcribe(self, request.into_inner()).await?,
            ))
        })
        .await
    }
}
