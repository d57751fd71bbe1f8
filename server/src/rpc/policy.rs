//! `set_push_policy`, `get_push_policy` and `validate_push_policy` (scope `a`): the
//! repository's push policy ([`crate::policy`]) as one JSON document. An admin may always
//! change it (nobody is locked out), but is held to it like everyone else unless a rule's
//! `bypass` names them. A proposed policy can be tried on the repository's recent writes
//! first: the event log keeps the last [`events::log::KEPT_EVENTS`] changes of a watched
//! repository, and validating watches a repository that was not, so that its next writes are
//! kept.

use std::sync::Arc;

use serde::Deserialize;
use serde_json::{json, Value};

use super::history::open_without_revisions;
use super::{params, RpcError};
use crate::app::App;
use crate::auth::{Access, Grants};
use crate::landing::policy::{enforce, Writer};
use crate::policy::PushPolicy;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct SetParams {
    artifact_id: String,
    policy: Value,
}

/// `set_push_policy`: replace the policy (`{}` removes every rule and limit).
pub(super) async fn set_push_policy(
    app: &Arc<App>,
    identity: Option<&Grants>,
    p: Value,
) -> Result<Value, RpcError> {
    let p: SetParams = params(p)?;
    let text = serde_json::to_vec(&p.policy).unwrap_or_default();
    let policy = PushPolicy::parse(&text).map_err(|e| RpcError::InvalidParams(e.to_string()))?;
    let o = open_without_revisions(app, identity, &p.artifact_id, Access::Admin).await?;
    o.repo.write_push_policy(&policy).await?;
    tracing::info!(repo = %o.repo.id, rules = policy.rules.len(), "push policy set");
    Ok(json!({ "policy": policy }))
}

/// `get_push_policy`: the policy in force (`{}` when none is set).
pub(super) async fn get_push_policy(
    app: &Arc<App>,
    identity: Option<&Grants>,
    p: Value,
) -> Result<Value, RpcError> {
    let p: super::ArtifactOnly = params(p)?;
    let o = open_without_revisions(app, identity, &p.artifact_id, Access::Admin).await?;
    let policy = o.repo.push_policy().await?;
    Ok(json!({ "policy": policy }))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ValidateParams {
    artifact_id: String,
    policy: Value,
    /// How many of the latest recorded changes to try (default 50).
    #[serde(default)]
    last: Option<u64>,
}

/// `validate_push_policy {policy, last?}`: which of the last `last` recorded changes of the
/// refs `policy` would have refused, and why; nothing is saved.
pub(super) async fn validate_push_policy(
    app: &Arc<App>,
    identity: Option<&Grants>,
    p: Value,
) -> Result<Value, RpcError> {
    let p: ValidateParams = params(p)?;
    let last = p.last.unwrap_or(50).clamp(1, events::log::KEPT_EVENTS);
    let text = serde_json::to_vec(&p.policy).unwrap_or_default();
    let policy = PushPolicy::parse(&text).map_err(|e| RpcError::InvalidParams(e.to_string()))?;
    let o = open_without_revisions(app, identity, &p.artifact_id, Access::Admin).await?;
    if o.snapshot.unwatched {
        // Nothing was recorded: record from now on.
        o.repo.refs.watch().await?;
        return Ok(json!({"checked": 0, "refused": [], "recording_started": true}));
    }
    let bucket = o.repo.storage().bucket.clone();
    let head = events::log::Cursor {
        seq: o.snapshot.seq,
        id: o.snapshot.content_id.clone(),
    };
    let from = events::log::Cursor {
        seq: head.seq.saturating_sub(last),
        id: String::new(),
    };
    let chain = events::log::events_after(bucket.as_ref(), &o.repo.keys, &from, &head).await?;
    let default_head = (o.snapshot.head.as_deref()).and_then(|h| o.snapshot.get(h));
    let (db, checked) = (o.db.clone(), chain.events.len());
    let refused = super::history::blocking(move || {
        let mut refused = Vec::new();
        for event in &chain.events {
            let updates: Vec<refs::RefUpdate> = (event.refs.iter())
                .filter(|m| !refs::is_pull_request_ref(&m.name))
                .map(|m| refs::RefUpdate {
                    name: m.name.clone(),
                    old: m.before,
                    new: m.after,
                    peeled: None,
                })
                .collect();
            let writer = Writer {
                subject: event.meta.pusher.as_deref(),
                via_pull_request: event.meta.source == events::log::Source::PullRequest,
                head: default_head,
            };
            let applying = vec![true; updates.len()];
            let decisions = enforce(&policy, &db, &updates, &applying, &writer);
            for (update, decision) in updates.iter().zip(decisions) {
                if let Some(why) = decision {
                    refused.push(json!({
                        "seq": event.seq, "time": event.time, "pusher": event.meta.pusher,
                        "source": event.meta.source, "ref": update.name,
                        "before": update.old.to_string(), "after": update.new.to_string(),
                        "reason": why.to_string(),
                    }));
                }
            }
        }
        Ok(refused)
    })
    .await?;
    Ok(json!({
        "checked": checked,
        "not_recorded": chain.missing,
        "refused": refused,
        "recording_started": false,
    }))
}
