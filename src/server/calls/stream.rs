//! `StreamCall`: a call analysed while it happens (see `crate::service::live`), stored when it
//! ends.

use super::{CallQaService, blocking, date, roles};
use crate::api::convert;
use crate::audio::raw::{Encoding, RawFormat};
use crate::proto::stream_call_request::Request as Message;
use crate::proto::{self, AudioEncoding, StreamCallResponse, stream_call_response::Event};
use crate::service::live::{LiveAudio, StreamFormat};
use crate::service::{self, CallMeta, ServiceError};
use crate::transcript::{CallOptions, RoleHints};
use std::sync::{Arc, Mutex, PoisonError};
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
        let limits = self.streams;
        let first = tokio::time::timeout(limits.config_timeout, inbound.message())
            .await
            .map_err(|_| {
                ServiceError::DeadlineExceeded(format!(
                    "no config within {:?} of the stream's start",
                    limits.config_timeout
                ))
            })?
            .map_err(|s| ServiceError::InvalidArgument(s.message().to_owned()))?;
        let Some(proto::StreamCallRequest {
            request: Some(Message::Config(config)),
        }) = first
        else {
            return Err(ServiceError::InvalidArgument(
                "the first message of a stream must be its config".into(),
            ));
        };
        super::validate::call_ids(
            &config.call_id,
            &config.rep_id,
            &config.customer_id,
            &config.playbook,
        )?;
        let format = format(&config)?;
        let playbook = self.playbooks.get(&config.playbook)?;
        let meta = CallMeta {
            call_id: Some(config.call_id.clone()),
            rep_id: Some(config.rep_id.clone()),
            customer_id: Some(config.customer_id.clone()),
            call_date: date(&config.call_date, "call_date")?,
        };
        let inspector = self.loaded.get()?;
        let permit = inspector.permit()?;

        let (audio_tx, audio_rx) = mpsc::channel::<Vec<u8>>(AUDIO_QUEUE);
        let (tx, rx) = mpsc::channel(EVENT_QUEUE);
        let cancel = self.call_token();
        // Why the reader stopped the call, told to the client by the worker once it has let go of
        // its slot: a client told "closed" can start its next call at once.
        let closing = Arc::new(Mutex::new(None::<ServiceError>));
        {
            let (cancel, closing) = (cancel.clone(), closing.clone());
            tokio::spawn(async move {
                loop {
                    let Ok(next) =
                        tokio::time::timeout(limits.idle_timeout, inbound.message()).await
                    else {
                        // A client that holds its stream open without sending frees the slot.
                        *closing.lock().unwrap_or_else(PoisonError::into_inner) =
                            Some(ServiceError::DeadlineExceeded(format!(
                                "no audio for {:?}: the stream is closed",
                                limits.idle_timeout
                            )));
                        cancel.cancel();
                        break;
                    };
                    match next {
                        Ok(Some(proto::StreamCallRequest {
                            request: Some(Message::Audio(bytes)),
                        })) => {
                            if audio_tx.send(bytes).await.is_err() {
                                break; // the call ended (an error, already reported)
                            }
                        }
                        Ok(Some(_)) => {
                            *closing.lock().unwrap_or_else(PoisonError::into_inner) =
                                Some(ServiceError::InvalidArgument(
                                    "after the config, a stream carries only audio".into(),
                                ));
                            cancel.cancel();
                            break;
                        }
                        Ok(None) => break, // the client has sent everything
                        Err(_) => {
                            // The client went away: stop its work.
                            cancel.cancel();
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
            let opts = CallOptions {
                language: convert::language_from(config.language),
                channel_roles: roles(&config.channel_roles),
                roles: RoleHints {
                    direction: convert::direction_from(config.direction),
                    ..RoleHints::default()
                },
                cancel,
                ..CallOptions::default()
            };
            let outcome = blocking(move || {
                let emit = |event, audio_received_ms| {
                    let event = convert::live_event(event);
                    crate::metrics::metrics().live_event(kind(&event));
                    events
                        .blocking_send(Ok(StreamCallResponse {
                            audio_received_ms,
                            event: Some(event),
                        }))
                        .is_ok()
                };
                let audio = LiveAudio {
                    format,
                    chunks: audio_rx,
                };
                let analysis = inspector.stream(&permit, &playbook, audio, meta, &opts, emit)?;
                service::record(&*store, &tenant, &analysis, &playbook)?;
                Ok(analysis)
            })
            .await;
            let reply = match outcome {
                Ok(analysis) => {
                    new_events.notify_waiters();
                    Ok(StreamCallResponse {
                        audio_received_ms: analysis.duration_ms,
                        event: Some(Event::Analysis(convert::analysis(analysis))),
                    })
                }
                Err(ServiceError::Cancelled) => {
                    // The reader stopped the call (and says why), or nobody is listening.
                    match closing
                        .lock()
                        .unwrap_or_else(PoisonError::into_inner)
                        .take()
                    {
                        Some(why) => Err(Status::from(why)),
                        None => return,
                    }
                }
                Err(e) => Err(Status::from(e)),
            };
            let _ = tx.send(reply).await;
        });
        Ok(rx)
    }
}
