//! `bundle {artifact_id, refs?, since?}`: the URL of a git bundle of the repository (scope `r`).

use std::sync::Arc;

use serde::Deserialize;
use serde_json::{json, Value};

use super::history::{blocking, open};
use super::{git_url, params, RpcError};
use crate::app::App;
use crate::auth::{Access, Grants};
use crate::bundle::BundleQuery;
use history::{BundlePlan, MAX_BUNDLE_NAMES};

/// One revision or several.
#[derive(Deserialize)]
#[serde(untagged)]
enum Revs {
    One(String),
    Many(Vec<String>),
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct BundleParams {
    artifact_id: String,
    /// Ref names (short or full, or `HEAD`); every branch and tag by default.
    #[serde(default)]
    refs: Option<Vec<String>>,
    /// Revisions the receiver has: an incremental bundle with them as prerequisites.
    #[serde(default)]
    since: Option<Revs>,
}

/// `bundle`: check what the bundle would hold now and answer with its URL.
pub(super) async fn bundle(
    app: &Arc<App>,
    identity: Option<&Grants>,
    base_url: &str,
    p: Value,
) -> Result<Value, RpcError> {
    let p: BundleParams = params(p)?;
    let since = match p.since {
        None => Vec::new(),
        Some(Revs::One(r)) => vec![r],
        Some(Revs::Many(r)) => r,
    };
    let names = p.refs.as_ref().map_or(0, Vec::len);
    if names > MAX_BUNDLE_NAMES || since.len() > MAX_BUNDLE_NAMES {
        return Err(RpcError::InvalidParams(format!(
            "refs and since: at most {MAX_BUNDLE_NAMES} each"
        )));
    }
    if p.refs.as_ref().is_some_and(Vec::is_empty) {
        return Err(RpcError::InvalidParams(
            "refs is empty: leave it out to bundle every branch and tag".into(),
        ));
    }
    let o = open(app, identity, &p.artifact_id, Access::Read).await?;
    let id = o.repo.id.clone();
    let refs = p.refs;
    let (plan, refs) = blocking(move || {
        let reader = o.db.reader();
        let mut prerequisites = Vec::new();
        for rev in &since {
            let commit = history::resolve_commit(&reader, &o.snapshot, &o.visible, rev)?;
            if !prerequisites.contains(&commit) {
                prerequisites.push(commit);
            }
        }
        let plan = BundlePlan {
            refs: history::bundle_refs(&o.snapshot, refs.as_deref())?,
            prerequisites,
        };
        if plan.refs.is_empty() {
            return Err(RpcError::NotFound(
                "the repository has no branches or tags to bundle".into(),
            ));
        }
        if history::bundle_is_empty(&reader, &plan)? {
            return Err(RpcError::InvalidParams(
                "nothing to bundle: every ref is reachable from since (git refuses empty bundles)"
                    .into(),
            ));
        }
        Ok((plan, refs))
    })
    .await?;
    let query = BundleQuery {
        refs,
        since: plan.prerequisites.clone(),
    }
    .to_query();
    let mut url = format!("{}/bundle", git_url(base_url, &id));
    if !query.is_empty() {
        url = format!("{url}?{query}");
    }
    Ok(json!({
        "url": url,
        "method": "GET",
        "needs_token": true,
        "refs": plan.refs.iter().map(|(name, id)| json!({"name": name, "oid": id.to_string()})).collect::<Vec<_>>(),
        "prerequisites": plan.prerequisites.iter().map(ToString::to_string).collect::<Vec<_>>(),
    }))
}
