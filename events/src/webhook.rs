//! Sending one payload to one webhook: headers, signatures, and what the answer means.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use http::header::{HeaderName, HeaderValue};
use http::Request;

use crate::client::{full, Client, ClientError};
use crate::config::Webhook;
use crate::deliveries::Delivery;
use crate::sign;

/// What an attempt's answer means for the next step.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    /// A 2xx answer.
    Delivered,
    /// Worth trying again (no answer, 408, 429, 5xx), not before the delay if one was asked.
    Retry(Option<Duration>),
    /// `410 Gone`: the receiver wants no more; the hook is turned off.
    Gone,
    /// Any other answer, or a target the policy refuses: trying again would not help.
    Failed,
}

/// What a receiver may ask us to wait, at most.
const MAX_RETRY_AFTER: Duration = Duration::from_secs(3600);
/// The start of an answer's body kept in the delivery log.
const KEPT_RESPONSE: usize = 1024;

/// A random delivery id, formatted like a UUID (version 4).
pub fn delivery_id() -> String {
    let mut b = [0u8; 16];
    if getrandom::getrandom(&mut b).is_err() {
        b = crate::state::now_ms()
            .to_le_bytes()
            .repeat(2)
            .try_into()
            .unwrap_or([0; 16]);
    }
    b[6] = (b[6] & 0x0f) | 0x40;
    b[8] = (b[8] & 0x3f) | 0x80;
    let h = hex::encode(b);
    format!(
        "{}-{}-{}-{}-{}",
        &h[..8],
        &h[8..12],
        &h[12..16],
        &h[16..20],
        &h[20..]
    )
}

/// Send `payload` (an `event` of delivery `id`) to `hook`: the attempt's record and verdict.
pub async fn send(
    client: &Client,
    hook: &Webhook,
    event: &str,
    id: &str,
    payload: &[u8],
    timeout: Duration,
) -> (Delivery, Verdict) {
    let started = Instant::now();
    let time_ms = crate::state::now_ms();
    let timestamp = (time_ms / 1000) as i64;
    let mut shown = BTreeMap::new();
    let mut headers: Vec<(&'static str, String)> = vec![
        ("content-type", "application/json".into()),
        (
            "user-agent",
            concat!("artifact-git-Hookshot/", env!("CARGO_PKG_VERSION")).into(),
        ),
        ("x-github-event", event.into()),
        ("x-github-delivery", id.into()),
        ("x-github-hook-id", hook.id.clone()),
    ];
    if let Some(key) = sign::standard_key(&hook.secret) {
        headers.push(("webhook-id", id.into()));
        headers.push(("webhook-timestamp", timestamp.to_string()));
        headers.push((
            "webhook-signature",
            sign::standard(&key, id, timestamp, payload),
        ));
    }
    headers.push(("x-hub-signature-256", sign::github(&hook.secret, payload)));
    let mut request = Request::post(&hook.url);
    for (name, value) in &headers {
        let redacted = name.contains("signature");
        shown.insert(
            (*name).to_owned(),
            if redacted {
                "(not kept)".to_owned()
            } else {
                value.clone()
            },
        );
        if let (Ok(n), Ok(v)) = (
            HeaderName::from_bytes(name.as_bytes()),
            HeaderValue::from_str(value),
        ) {
            request = request.header(n, v);
        }
    }
    let mut delivery = Delivery {
        id: id.to_owned(),
        event: event.to_owned(),
        seq: None,
        ref_name: None,
        attempt: 1,
        redelivery: false,
        time_ms,
        request_headers: shown,
        payload: String::from_utf8_lossy(payload).into_owned(),
        status: None,
        duration_ms: 0,
        error: None,
        response: None,
    };
    let verdict = match request.body(full(payload.to_vec())) {
        Err(e) => {
            delivery.error = Some(format!("invalid request: {e}"));
            Verdict::Failed
        }
        Ok(req) => match client.send(req, timeout, 64 << 10).await {
            Ok(answer) => {
                let status = answer.status.as_u16();
                delivery.status = Some(status);
                let body = &answer.body[..answer.body.len().min(KEPT_RESPONSE)];
                delivery.response = Some(String::from_utf8_lossy(body).into_owned());
                let retry_after = answer
                    .headers
                    .get(http::header::RETRY_AFTER)
                    .and_then(|v| v.to_str().ok())
                    .and_then(|v| v.trim().parse::<u64>().ok())
                    .map(|s| Duration::from_secs(s).min(MAX_RETRY_AFTER));
                match status {
                    200..=299 => Verdict::Delivered,
                    410 => {
                        delivery.error =
                            Some("410 Gone: the receiver asked for no more deliveries".into());
                        Verdict::Gone
                    }
                    408 | 429 | 500..=599 => {
                        delivery.error = Some(format!("the receiver answered {status}"));
                        Verdict::Retry(retry_after)
                    }
                    _ => {
                        delivery.error = Some(format!("the receiver answered {status}"));
                        Verdict::Failed
                    }
                }
            }
            Err(
                e @ (ClientError::Private { .. }
                | ClientError::InvalidUrl(_)
                | ClientError::Refused(_)),
            ) => {
                delivery.error = Some(e.to_string());
                Verdict::Failed
            }
            Err(e) => {
                delivery.error = Some(e.to_string());
                Verdict::Retry(None)
            }
        },
    };
    delivery.duration_ms = started.elapsed().as_millis() as u64;
    (delivery, verdict)
}
