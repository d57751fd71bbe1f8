//! The webhook URL of an upstream, `POST {clone URL}/upstreams/{id}/webhook`, for GitHub,
//! Gitea, GitLab or any Standard Webhooks sender. No token: the signature, checked with the
//! upstream's secret before anything else, is the authentication. A verified push marks a
//! sync as asked for (by compare-and-swap, with the delivery id remembered so a replay is
//! refused) and starts it on this replica at once, unless another replica is syncing (it
//! syncs again when done). Unsigned, forged, replayed or stale deliveries get 401 and change
//! nothing.

use std::sync::Arc;

use events::state::now_ms;
use events::upstream::{verify_webhook, UpstreamStates, WebhookSeen};
use http::{Request, Response, StatusCode};
use hyper::body::Incoming;
use serde_json::json;

use crate::app::App;
use crate::body::ResponseBody;
use crate::repo::Repo;
use crate::response::HttpError;
use crate::storage::RepoId;

/// How long a sync a webhook asks for waits before it starts: the deliveries of a burst
/// (a push of many branches, a flood) are served by one sync.
const SETTLE: std::time::Duration = std::time::Duration::from_millis(250);

/// The largest webhook body read (GitHub caps its payloads at 25 MB; a push's is far smaller).
const MAX_BODY: u64 = 8 << 20;

/// Handle a delivery to upstream `upstream` of `id`.
pub async fn handle(
    app: Arc<App>,
    id: RepoId,
    upstream: &str,
    req: Request<Incoming>,
) -> Result<Response<ResponseBody>, HttpError> {
    if req.method() != http::Method::POST {
        return Err(HttpError::MethodNotAllowed("POST webhooks here"));
    }
    let repo = Repo::new(&app.storage, id.clone());
    let endpoints =
        events::config::EndpointStore::new(app.storage.bucket.clone(), repo.keys.clone())
            .load()
            .await
            .map_err(|e| HttpError::Storage(e.to_string()))?;
    let secret = endpoints
        .upstreams
        .iter()
        .find(|u| u.id == upstream)
        .and_then(|u| u.secret.clone());
    let Some(secret) = secret else {
        return Err(HttpError::NotFound("no such upstream webhook".into()));
    };
    let (parts, body) = req.into_parts();
    let body = crate::body::read_all(body, MAX_BODY, app.config.timeouts.request_body).await?;
    let verified = match verify_webhook(&parts.headers, &body, &secret, events::log::now()) {
        Ok(v) => v,
        Err(e) => {
            crate::metrics::outcome(crate::metrics::UPSTREAM_WEBHOOKS, "refused");
            tracing::warn!(repo = %id, upstream, reason = %e, "upstream webhook refused");
            return Err(HttpError::Unauthorized(format!("webhook refused: {e}")));
        }
    };
    let states = UpstreamStates::new(app.storage.bucket.clone(), repo.keys.clone());
    let now = now_ms();
    let recorded = states
        .update(upstream, |s| {
            // A replay writes nothing.
            if let Some(d) = &verified.delivery {
                if !s.remember(d) {
                    return None;
                }
            }
            s.last_webhook = Some(WebhookSeen {
                time_ms: now,
                event: verified.event.clone(),
                outcome: if verified.is_push {
                    "accepted"
                } else {
                    "ignored"
                }
                .into(),
            });
            if verified.is_push {
                s.requested_ms = now;
            }
            Some(())
        })
        .await
        .map_err(|e| HttpError::Storage(e.to_string()))?;
    if recorded.is_none() {
        crate::metrics::outcome(crate::metrics::UPSTREAM_WEBHOOKS, "replayed");
        return Err(HttpError::Unauthorized(
            "webhook refused: a replayed delivery".into(),
        ));
    }
    if !verified.is_push {
        crate::metrics::outcome(crate::metrics::UPSTREAM_WEBHOOKS, "ignored");
        return Ok(crate::response::json(
            StatusCode::OK,
            &json!({"ignored": verified.event}),
        ));
    }
    crate::metrics::outcome(crate::metrics::UPSTREAM_WEBHOOKS, "accepted");
    let upstream = upstream.to_owned();
    tokio::spawn(async move {
        if let Err(e) = super::sync(app, id, upstream, SETTLE).await {
            tracing::warn!(error = %e, "an upstream sync a webhook asked for failed");
        }
    });
    Ok(crate::response::json(
        StatusCode::ACCEPTED,
        &json!({"accepted": true}),
    ))
}
