//! Webhooks: every event of a tenant is POSTed as JSON to the tenant's endpoints, signed with
//! HMAC-SHA256, at least once, in order. Each endpoint has its own cursor in the store and its own
//! task: a dead endpoint retries with exponential backoff and never holds up analysis or the
//! other endpoints. An event that still fails after the last attempt is recorded as failed (see
//! `callqa events failed`) and the endpoint moves on; `callqa events replay` sends it again.
//!
//! The signature header is `callqa-signature: t=UNIX_SECONDS,v1=HEX`, where HEX is the
//! HMAC-SHA256 of `"{t}.{body}"` under the endpoint's secret, as Stripe does it: receivers
//! recompute it and reject old timestamps.

use crate::store::{Event, Store, StoreError};
use hmac::{Hmac, Mac};
use sha2::Sha256;
use std::sync::Arc;
use std::time::Duration;

#[derive(Debug, thiserror::Error)]
pub enum DeliveryError {
    #[error("webhook {line}: {detail}")]
    Config { line: usize, detail: String },
    #[error("encoding the event: {0}")]
    Encode(#[from] serde_json::Error),
    #[error("{0}")]
    Http(#[from] Box<ureq::Error>),
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("a delivery worker failed: {0}")]
    Worker(#[from] tokio::task::JoinError),
}

/// Where one tenant's events go.
#[derive(Debug, Clone, PartialEq)]
pub struct Endpoint {
    pub tenant: String,
    pub url: String,
    pub secret: String,
}

impl Endpoint {
    /// Endpoints as `TENANT URL SECRET` per line (or `;`-separated); `#` starts a comment.
    pub fn parse_list(text: &str) -> Result<Vec<Endpoint>, DeliveryError> {
        let mut out = Vec::new();
        for (i, line) in text
            .split(['\n', ';'])
            .map(|l| l.split('#').next().unwrap_or("").trim())
            .enumerate()
            .filter(|(_, l)| !l.is_empty())
        {
            let fail = |detail: String| DeliveryError::Config {
                line: i + 1,
                detail,
            };
            let parts: Vec<&str> = line.split_whitespace().collect();
            let [tenant, url, secret] = parts[..] else {
                return Err(fail("expected TENANT URL SECRET".into()));
            };
            if !(url.starts_with("http://") || url.starts_with("https://")) {
                return Err(fail(format!("{url:?} is not an http(s) URL")));
            }
            if secret.len() < 16 {
                return Err(fail("the secret needs 16 characters or more".into()));
            }
            out.push(Endpoint {
                tenant: tenant.into(),
                url: url.into(),
                secret: secret.into(),
            });
        }
        Ok(out)
    }
}

impl Endpoint {
    /// An error's text with the endpoint's URL (and any secret in it) replaced by `shown_url`.
    pub fn scrub(&self, text: &str) -> String {
        text.replace(&self.url, &self.shown_url())
    }

    /// The URL as logs may show it: without user info or query, where secrets travel.
    pub fn shown_url(&self) -> String {
        let (scheme, rest) = self.url.split_once("://").unwrap_or(("", &self.url));
        let end = rest.find(['/', '?', '#']).unwrap_or(rest.len());
        let (authority, path) = rest.split_at(end);
        let host = authority.rsplit_once('@').map_or(authority, |(_, h)| h);
        let path = path.split(['?', '#']).next().unwrap_or_default();
        let hidden = if authority.contains('@') { "…@" } else { "" };
        let query = if self.url.contains('?') { "?…" } else { "" };
        format!("{scheme}://{hidden}{host}{path}{query}")
    }
}

/// The signature header value for a body sent at `t` (Unix seconds).
pub fn sign(secret: &str, t: i64, body: &[u8]) -> String {
    let mut mac = Hmac::<Sha256>::new_from_slice(secret.as_bytes()).expect("any key length");
    mac.update(format!("{t}.").as_bytes());
    mac.update(body);
    format!("t={t},v1={}", hex::encode(mac.finalize().into_bytes()))
}

/// Checks a signature header against the body, refusing timestamps older than `tolerance`.
pub fn verify(secret: &str, header: &str, body: &[u8], now: i64, tolerance: Duration) -> bool {
    let mut t = None;
    let mut v1 = None;
    for part in header.split(',') {
        match part.split_once('=') {
            Some(("t", value)) => t = value.parse::<i64>().ok(),
            Some(("v1", value)) => v1 = hex::decode(value).ok(),
            _ => {}
        }
    }
    let (Some(t), Some(v1)) = (t, v1) else {
        return false;
    };
    if (now - t).unsigned_abs() > tolerance.as_secs() {
        return false;
    }
    let mut mac = Hmac::<Sha256>::new_from_slice(secret.as_bytes()).expect("any key length");
    mac.update(format!("{t}.").as_bytes());
    mac.update(body);
    mac.verify_slice(&v1).is_ok()
}

/// How hard to try one event.
#[derive(Debug, Clone)]
pub struct Retry {
    pub first_delay: Duration,
    pub max_delay: Duration,
    pub attempts: u32,
}

impl Default for Retry {
    /// 1 s, 2 s, 4 s … capped at 5 minutes, 12 attempts: about half an hour of outage.
    fn default() -> Self {
        Self {
            first_delay: Duration::from_secs(1),
            max_delay: Duration::from_secs(300),
            attempts: 12,
        }
    }
}

/// POSTs one event; Ok on a 2xx answer.
fn post(agent: &ureq::Agent, endpoint: &Endpoint, event: &Event) -> Result<(), DeliveryError> {
    let body = serde_json::to_vec(event)?;
    let signature = sign(&endpoint.secret, chrono::Utc::now().timestamp(), &body);
    agent
        .post(&endpoint.url)
        .header("content-type", "application/json")
        .header("callqa-event-id", &event.id)
        .header("callqa-signature", &signature)
        .send(&body[..])
        .map(|_| ())
        .map_err(|e| DeliveryError::Http(Box::new(e)))
}

async fn blocking<T: Send + 'static>(
    f: impl FnOnce() -> Result<T, StoreError> + Send + 'static,
) -> Result<T, DeliveryError> {
    Ok(tokio::task::spawn_blocking(f).await??)
}

/// Delivers one event with backoff; the last error when every attempt failed.
async fn deliver(
    agent: &ureq::Agent,
    endpoint: &Endpoint,
    event: &Event,
    retry: &Retry,
) -> Result<(), DeliveryError> {
    let mut delay = retry.first_delay;
    let attempts = retry.attempts.max(1);
    let mut attempt = 1;
    loop {
        let (a, e, ev) = (agent.clone(), endpoint.clone(), event.clone());
        let sent = tokio::task::spawn_blocking(move || post(&a, &e, &ev)).await;
        let last = match sent.map_err(DeliveryError::from).and_then(|r| r) {
            Ok(()) => return Ok(()),
            Err(err) => err,
        };
        let said = endpoint.scrub(&last.to_string());
        tracing::warn!(url = %endpoint.shown_url(), event = %event.id, attempt, "webhook failed: {said}");
        if attempt >= attempts {
            return Err(last);
        }
        attempt += 1;
        tokio::time::sleep(delay).await;
        delay = (delay * 2).min(retry.max_delay);
    }
}

/// Runs one endpoint's delivery until the task is dropped: replays first, then new events from
/// its cursor, waking on `new_events` or every second.
pub async fn run_endpoint(
    store: Arc<dyn Store>,
    endpoint: Endpoint,
    retry: Retry,
    new_events: Arc<tokio::sync::Notify>,
) {
    let agent: ureq::Agent = ureq::Agent::config_builder()
        .timeout_global(Some(Duration::from_secs(10)))
        .http_status_as_error(true)
        .build()
        .into();
    loop {
        let notified = new_events.notified();
        let (s, e) = (store.clone(), endpoint.clone());
        let work = blocking(move || {
            let replays = s.webhook_replays(&e.url, &e.tenant)?;
            let cursor = s.webhook_cursor(&e.url, &e.tenant)?;
            let fresh = s.events_after(&e.tenant, cursor, 50)?;
            Ok((replays, fresh))
        })
        .await;
        let (replays, fresh) = match work {
            Ok(w) => w,
            Err(err) => {
                tracing::error!(url = %endpoint.shown_url(), "webhook store: {err}");
                tokio::time::sleep(Duration::from_secs(1)).await;
                continue;
            }
        };
        let idle = replays.is_empty() && fresh.is_empty();
        for (failure_id, event) in replays {
            let outcome = deliver(&agent, &endpoint, &event, &retry).await;
            crate::metrics::metrics().delivery(outcome.is_ok());
            let s = store.clone();
            let error = outcome.err().map(|e| endpoint.scrub(&e.to_string()));
            if let Err(err) =
                blocking(move || s.webhook_replayed(failure_id, error.as_deref())).await
            {
                tracing::error!(url = %endpoint.shown_url(), "webhook store: {err}");
            }
        }
        for event in fresh {
            let outcome = deliver(&agent, &endpoint, &event, &retry).await;
            crate::metrics::metrics().delivery(outcome.is_ok());
            let (s, e, ev) = (store.clone(), endpoint.clone(), event.clone());
            let saved = blocking(move || {
                if let Err(err) = &outcome {
                    s.webhook_failed(&e.url, &e.tenant, &ev, &e.scrub(&err.to_string()))?;
                }
                s.set_webhook_cursor(&e.url, &e.tenant, ev.seq)
            })
            .await;
            if let Err(err) = saved {
                tracing::error!(url = %endpoint.shown_url(), "webhook store: {err}");
                break;
            }
        }
        if idle {
            tokio::select! {
                _ = notified => {}
                _ = tokio::time::sleep(Duration::from_secs(1)) => {}
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn signatures_verify_and_tampering_is_caught() {
        let body = br#"{"kind":"rep.suspended"}"#;
        let header = sign("0123456789abcdef", 1_700_000_000, body);
        let tol = Duration::from_secs(300);
        assert!(verify(
            "0123456789abcdef",
            &header,
            body,
            1_700_000_100,
            tol
        ));
        assert!(!verify(
            "0123456789abcdef",
            &header,
            b"{}",
            1_700_000_100,
            tol
        ));
        assert!(!verify(
            "another-secret-xx",
            &header,
            body,
            1_700_000_100,
            tol
        ));
        assert!(
            !verify("0123456789abcdef", &header, body, 1_700_009_999, tol),
            "too old"
        );
        assert!(!verify(
            "0123456789abcdef",
            "v1=00",
            body,
            1_700_000_000,
            tol
        ));
    }

    #[test]
    fn endpoints_parse_and_bad_ones_are_named() {
        let e =
            Endpoint::parse_list("acme https://crm.example/hook 0123456789abcdef # CRM\n").unwrap();
        assert_eq!(e[0].tenant, "acme");
        let secret = Endpoint::parse_list(
            "acme https://u:pa55word@crm.example:8443/hook?token=SECRET 0123456789abcdef",
        )
        .unwrap();
        assert_eq!(secret[0].shown_url(), "https://…@crm.example:8443/hook?…");
        assert!(
            Endpoint::parse_list("acme ftp://x 0123456789abcdef")
                .unwrap_err()
                .to_string()
                .contains("http")
        );
        assert!(
            Endpoint::parse_list("acme https://x short")
                .unwrap_err()
                .to_string()
                .contains("secret")
        );
    }
}
