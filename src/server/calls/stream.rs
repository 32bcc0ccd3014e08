//! `StreamCall`: a call analysed while it happens (see `crate::live`), stored when it ends.

use super::{CallQaService, analyse_and_record, blocking, date, non_empty, roles};
use crate::analysis::CallInfo;
use crate::audio::raw::{Encoding, RawFormat};
use crate::live::{self, LiveError, StreamFormat};
use crate::proto::stream_call_request::Request as Message;
use crate::proto::{self, AudioEncoding, StreamCallResponse, stream_call_response::Event};
use crate::server::{ServiceError, convert, language};
use chrono::Utc;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use tokio::sync::mpsc;
use tonic::{Status, Streaming};

/// Audio messages that may wait between the network and the decoder: backpressure on the
/// client past that, through HTTP/2 flow control.
const AUDIO_QUEUE: usize = 32;
/// Events that may wait for a slow reader.
const EVENT_QUEUE: usize = 256;

pub type Responses = mpsc::Receiver<Result<StreamCallResponse, Status>>;

fn format(config: &proto::StreamConfig) -> Result<StreamFormat, ServiceError> {
    let encoding = match AudioEncoding::try_from(config.encoding) {
        Ok(AudioEncoding::Container) => return Ok(StreamFormat::Container),
        Ok(AudioEncoding::Linear16) => Encoding::Linear16,
        Ok(AudioEncoding::Mulaw) => Encoding::Mulaw,
        Ok(AudioEncoding::Alaw) => Encoding::Alaw,
        Err(_) => {
            return Err(ServiceError::InvalidArgument(format!(
                "encoding: unknown value {}",
                config.encoding
            )));
        }
    };
    let f = RawFormat::new(encoding, config.sample_rate_hz, config.channels as usize)?;
    Ok(StreamFormat::Raw(f))
}

/// An event's kind, as the metrics count it.
fn kind(e: &Event) -> &'static str {
    match e {
        Event::Turn(t) if t.is_final => "turn_final",
        Event::Turn(_) => "turn_interim",
        Event::CompetitorMention(_) => "competitor_mention",
        Event::EmotionAlert(_) => "emotion_alert",
        Event::KeyQuestionMissing(_) => "key_question_missing",
        Event::Analysis(_) => "analysis",
    }
}

impl CallQaService {
    /// Checks the config, then runs the call on a worker while a task forwards its audio.
    pub async fn stream_call(
        &self,
        tenant: String,
        mut inbound: Streaming<proto::StreamCallRequest>,
    ) -> Result<Responses, ServiceError> {
        let first = inbound
            .message()
            .await
            .map_err(|s| ServiceError::InvalidArgument(s.message().to_owned()))?;
        let Some(proto::StreamCallRequest {
            request: Some(Message::Config(config)),
        }) = first
        else {
            return Err(ServiceError::InvalidArgument(
                "the first message of a stream must be its config".into(),
            ));
        };
        let format = format(&config)?;
        let playbook = self.playbooks.get(&config.playbook)?;
        let call_date =
            date(&config.call_date, "call_date")?.unwrap_or_else(|| Utc::now().date_naive());
        let models = self.models.get()?;
        let permit = self.slots.acquire()?;

        let (audio_tx, audio_rx) = mpsc::channel::<Vec<u8>>(AUDIO_QUEUE);
        let (tx, rx) = mpsc::channel(EVENT_QUEUE);
        let cancelled = Arc::new(AtomicBool::new(false));
        {
            let (tx, cancelled) = (tx.clone(), cancelled.clone());
            tokio::spawn(async move {
                loop {
                    match inbound.message().await {
                        Ok(Some(proto::StreamCallRequest {
                            request: Some(Message::Audio(bytes)),
                        })) => {
                            if audio_tx.send(bytes).await.is_err() {
                                break; // the call ended (an error, already reported)
                            }
                        }
                        Ok(Some(_)) => {
                            cancelled.store(true, Ordering::Relaxed);
                            let _ = tx
                                .send(Err(Status::invalid_argument(
                                    "after the config, a stream carries only audio",
                                )))
                                .await;
                            break;
                        }
                        Ok(None) => break, // the client has sent everything
                        Err(_) => {
                            // The client went away: stop its work.
                            cancelled.store(true, Ordering::Relaxed);
                            break;
                        }
                    }
                }
            });
        }

        let store = self.store.clone();
        let new_events = self.new_events.clone();
        tokio::spawn(async move {
            let events = tx.clone();
            let outcome = blocking(move || {
                let _permit = permit;
                let opts =
                    playbook.call_options(language(config.language), roles(&config.channel_roles));
                let finished = live::run(
                    &models.engines,
                    &models.analysers,
                    &playbook,
                    &opts,
                    format,
                    audio_rx,
                    &cancelled,
                    |event, audio_received_ms| {
                        let event = convert::live_event(event);
                        crate::metrics::metrics().live_event(kind(&event));
                        events
                            .blocking_send(Ok(StreamCallResponse {
                                audio_received_ms,
                                event: Some(event),
                            }))
                            .is_ok()
                    },
                );
                let finished = match finished {
                    Ok(f) => f,
                    Err(LiveError::Cancelled) => return Ok(None),
                    Err(LiveError::Pipeline(e)) => return Err(e.into()),
                    Err(e @ (LiveError::Analysers(_) | LiveError::Internal(_))) => {
                        return Err(ServiceError::Internal(e.to_string()));
                    }
                };
                let call_id =
                    non_empty(config.call_id).unwrap_or_else(|| finished.content_hash.clone());
                let transcript = finished.transcript;
                let info = CallInfo {
                    rep_id: non_empty(config.rep_id),
                    customer_id: non_empty(config.customer_id),
                    call_date,
                    content_hash: Some(finished.content_hash),
                    ..CallInfo::of_transcript(call_id, &transcript, finished.transcription_ms)
                };
                let analysis = analyse_and_record(
                    &models,
                    &*store,
                    &tenant,
                    &playbook,
                    info,
                    transcript.turns,
                )?;
                Ok(Some((analysis, transcript.duration_ms)))
            })
            .await;
            let reply = match outcome {
                Ok(Some((analysis, duration_ms))) => {
                    new_events.notify_waiters();
                    Ok(StreamCallResponse {
                        audio_received_ms: duration_ms,
                        event: Some(Event::Analysis(convert::analysis(analysis))),
                    })
                }
                Ok(None) => return, // cancelled: nobody is listening
                Err(e) => Err(Status::from(e)),
            };
            let _ = tx.send(reply).await;
        });
        Ok(rx)
    }
}
