//! A blocking client of a running `callqa serve`, for `callqa analyze --server`: recordings are
//! scored through `AnalyzeCall`, retried while the service is busy or still loading.

use super::convert;
use crate::analysis::Analysis;
use crate::asr::Language;
use crate::audio::channels::Role;
use crate::proto;
use crate::proto::call_qa_client::CallQaClient;
use crate::service::CallMeta;
use std::time::Duration;
use tonic::transport::Channel;

/// Largest message either side sends (a bit over an hour of 8 kHz stereo WAV).
pub const MAX_MESSAGE_BYTES: usize = 64 * 1024 * 1024;

#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    #[error("cannot start the client runtime: {0}")]
    Runtime(#[from] std::io::Error),
    #[error("{addr}: {source}")]
    Address {
        addr: String,
        source: tonic::transport::Error,
    },
    #[error("cannot connect to {addr}: {source}")]
    Connect {
        addr: String,
        source: tonic::transport::Error,
    },
    #[error("the API key is not a valid header value")]
    ApiKey,
    #[error("{code:?}: {message}")]
    Status { code: tonic::Code, message: String },
    #[error("the service's reply: {0}")]
    Reply(#[from] serde_json::Error),
    #[error("the service's playbook {name:?} is revision {theirs}, the local file {ours}")]
    Revision {
        name: String,
        theirs: String,
        ours: String,
    },
}

/// Scores recordings on a running service.
pub struct Remote {
    runtime: tokio::runtime::Runtime,
    client: CallQaClient<Channel>,
    api_key: Option<String>,
    /// The playbook's name on the service.
    playbook: String,
}

impl Remote {
    pub fn connect(
        addr: &str,
        api_key: Option<String>,
        playbook: String,
    ) -> Result<Self, ClientError> {
        let runtime = tokio::runtime::Runtime::new()?;
        let url = if addr.contains("://") {
            addr.to_owned()
        } else {
            format!("http://{addr}")
        };
        let endpoint = tonic::transport::Endpoint::from_shared(url).map_err(|source| {
            ClientError::Address {
                addr: addr.to_owned(),
                source,
            }
        })?;
        let channel =
            runtime
                .block_on(endpoint.connect())
                .map_err(|source| ClientError::Connect {
                    addr: addr.to_owned(),
                    source,
                })?;
        let client = CallQaClient::new(channel)
            .max_decoding_message_size(MAX_MESSAGE_BYTES)
            .max_encoding_message_size(MAX_MESSAGE_BYTES);
        Ok(Self {
            runtime,
            client,
            api_key,
            playbook,
        })
    }

    /// Scores one recording under the service's playbook, which must be at `revision`.
    pub fn analyse(
        &self,
        audio: Vec<u8>,
        meta: &CallMeta,
        language: Language,
        channel_roles: &[Role],
        revision: &str,
    ) -> Result<Analysis, ClientError> {
        let request = proto::AnalyzeCallRequest {
            audio,
            call_id: meta.call_id.clone().unwrap_or_default(),
            rep_id: meta.rep_id.clone().unwrap_or_default(),
            customer_id: meta.customer_id.clone().unwrap_or_default(),
            channel_roles: channel_roles.iter().map(|&r| convert::role(r)).collect(),
            language: convert::language(language),
            playbook: self.playbook.clone(),
            call_date: meta.call_date.map(|d| d.to_string()).unwrap_or_default(),
            ..Default::default()
        };
        let mut busy = Duration::from_millis(200);
        let reply = loop {
            let mut req = tonic::Request::new(request.clone());
            if let Some(key) = &self.api_key {
                let value = format!("Bearer {key}")
                    .parse()
                    .map_err(|_| ClientError::ApiKey)?;
                req.metadata_mut().insert("authorization", value);
            }
            match self.runtime.block_on(self.client.clone().analyze_call(req)) {
                Ok(r) => break r.into_inner(),
                // Busy or loading: wait, up to a minute between tries.
                Err(s)
                    if matches!(
                        s.code(),
                        tonic::Code::ResourceExhausted | tonic::Code::Unavailable
                    ) && busy < Duration::from_secs(60) =>
                {
                    std::thread::sleep(busy);
                    busy *= 2;
                }
                Err(s) => {
                    return Err(ClientError::Status {
                        code: s.code(),
                        message: s.message().to_owned(),
                    });
                }
            }
        };
        let analysis = convert::analysis_from(reply)?;
        if analysis.playbook_revision != revision {
            return Err(ClientError::Revision {
                name: self.playbook.clone(),
                theirs: analysis.playbook_revision,
                ours: revision.to_owned(),
            });
        }
        Ok(analysis)
    }
}
