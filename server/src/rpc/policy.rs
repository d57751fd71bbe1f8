//! `set_push_policy` and `get_push_policy` (scope `a`): the repository's push policy
//! ([`crate::policy`]) as one JSON document. An admin may always change it (nobody is locked
//! out), but is held to it like everyone else unless a rule's `bypass` names them.

use std::sync::Arc;

use serde::Deserialize;
use serde_json::{json, Value};

use super::history::open_without_revisions;
use super::{params, RpcError};
use crate::app::App;
use crate::auth::{Access, Grants};
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
