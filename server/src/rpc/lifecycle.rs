//! A repository's life by API: `list_repositories` (workspace admins), `delete_repository`,
//! `restore_repository` and `disable_git` (scope `a`). The steps are [`crate::lifecycle`].

use std::sync::Arc;

use serde::Deserialize;
use serde_json::{json, Value};

use super::events::admin_repo;
use super::{params, ArtifactOnly, RpcError};
use crate::app::App;
use crate::auth::{Access, Grants};
use crate::lifecycle::{self, LifecycleError};
use crate::repo::Repo;
use crate::storage::{valid_name, RepoId};

/// Repositories one `list_repositories` page holds at most.
const MAX_PAGE: usize = 100;

impl From<LifecycleError> for RpcError {
    fn from(e: LifecycleError) -> Self {
        match e {
            LifecycleError::NotFound(m) => RpcError::NotFound(m),
            LifecycleError::Contention => RpcError::Conflict(e.to_string()),
            LifecycleError::Storage(m) => RpcError::Internal(m),
        }
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct DeleteParams {
    artifact_id: String,
    #[serde(default)]
    purge: bool,
}

/// `delete_repository {purge?}` (and `disable_git`): gone at once on every replica;
/// restorable for `--deleted-retention`, or purged at once with `purge`.
pub(crate) async fn delete_repository(
    app: &Arc<App>,
    identity: Option<&Grants>,
    p: Value,
) -> Result<Value, RpcError> {
    let p: DeleteParams = params(p)?;
    let repo = admin_repo(app, identity, &p.artifact_id).await?;
    let retention = match p.purge {
        true => std::time::Duration::ZERO,
        false => app.config.deleted_retention,
    };
    let by = identity.and_then(|g| g.subject.clone());
    let stone = lifecycle::delete(app, &repo, by, retention).await?;
    if p.purge {
        // In the background (a large repository's keys take a while); if this replica dies
        // first, any replica's purger finishes it.
        let app = app.clone();
        tokio::spawn(async move {
            if let Err(e) = lifecycle::purge(&app, &repo).await {
                tracing::warn!(repo = %repo.id, error = %e, "purging a repository failed");
            }
        });
    }
    Ok(json!({
        "deleted": true,
        "purging": p.purge,
        "restorable_until": (!p.purge).then_some(stone.purge_after),
    }))
}

/// `restore_repository`: a deleted repository back exactly as it was, within the retention.
pub(super) async fn restore_repository(
    app: &Arc<App>,
    identity: Option<&Grants>,
    p: Value,
) -> Result<Value, RpcError> {
    let p: ArtifactOnly = params(p)?;
    let repo = admin_repo(app, identity, &p.artifact_id).await?;
    match lifecycle::tombstone(&repo).await? {
        Some(stone) if stone.purge_after <= events::log::now() => {
            return Err(RpcError::Conflict(format!(
                "{} is past its retention and is being purged; it cannot be restored",
                repo.id
            )))
        }
        _ => {}
    }
    lifecycle::restore(app, &repo).await?;
    Ok(json!({"restored": true}))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ListParams {
    workspace: String,
    #[serde(default)]
    cursor: Option<String>,
    #[serde(default)]
    limit: Option<usize>,
}

/// `list_repositories {workspace, cursor?, limit?}`: the workspace's repositories by alias,
/// with their size (packs and LFS objects), last change and whether they are deleted.
pub(super) async fn list_repositories(
    app: &Arc<App>,
    identity: Option<&Grants>,
    p: Value,
) -> Result<Value, RpcError> {
    let p: ListParams = params(p)?;
    if !valid_name(&p.workspace) {
        return Err(RpcError::InvalidParams("invalid workspace name".into()));
    }
    let admin = identity.and_then(|g| g.workspace_level(&p.workspace));
    if admin < Some(Access::Admin) {
        return Err(RpcError::Forbidden(format!(
            "listing needs a token with `a` on the workspace {}",
            p.workspace
        )));
    }
    let limit = p.limit.unwrap_or(50).clamp(1, MAX_PAGE);
    let keys = app.storage.keys();
    let aliases = app
        .storage
        .bucket
        .list_folders(&keys.artifacts_dir(&p.workspace))
        .await?;
    let mut out = Vec::new();
    let mut next = None;
    for alias in aliases
        .into_iter()
        .filter(|a| p.cursor.as_ref().is_none_or(|c| a > c) && valid_name(a))
    {
        if out.len() == limit {
            next = out
                .last()
                .and_then(|v: &Value| v["alias"].as_str().map(str::to_owned));
            break;
        }
        let repo = Repo::new(
            &app.storage,
            RepoId {
                workspace: p.workspace.clone(),
                alias: alias.clone(),
            },
        );
        if let Some(entry) = describe(&repo).await? {
            out.push(entry);
        }
    }
    Ok(json!({"repositories": out, "next_cursor": next}))
}

/// A repository's usage and own limits: from its refs object, or from its tombstone's copy of it when it is
/// deleted; `None` when there is no repository.
async fn usage_of(
    repo: &Repo,
) -> Result<Option<(refs::Usage, refs::Quota, Option<lifecycle::Tombstone>)>, RpcError> {
    if repo.refs.head().await.is_err() {
        return Ok(None);
    }
    match repo.snapshot().await {
        Ok(snapshot) => Ok(Some((snapshot.usage, snapshot.quota, None))),
        Err(refs::Error::NotFound) => match lifecycle::tombstone(repo).await? {
            Some(stone) => {
                let kept = refs::parse_packed_refs(stone.refs.as_bytes()).unwrap_or_default();
                Ok(Some((kept.usage, kept.quota, Some(stone))))
            }
            None => Ok(None),
        },
        Err(e) => Err(e.into()),
    }
}

/// A repository as listed; `None` when the folder holds no repository.
async fn describe(repo: &Repo) -> Result<Option<Value>, RpcError> {
    let Some((usage, _, stone)) = usage_of(repo).await? else {
        return Ok(None);
    };
    let bucket = &repo.storage().bucket;
    let last_change = match bucket.head(&repo.keys.packed_refs()).await {
        Ok(meta) => Some(meta.last_modified),
        Err(e) if e.is_not_found() => None,
        Err(e) => return Err(e.into()),
    };
    Ok(Some(json!({
        "artifact_id": repo.id.to_string(),
        "alias": repo.id.alias,
        "bytes": usage.total(),
        "pack_bytes": usage.pack_bytes,
        "lfs_bytes": usage.lfs_bytes,
        "last_change": last_change,
        "deleted": stone.is_some(),
        "restorable_until": stone.map(|s| s.purge_after),
    })))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct QuotaParams {
    #[serde(default)]
    artifact_id: Option<String>,
    #[serde(default)]
    workspace: Option<String>,
    #[serde(default)]
    soft_limit_bytes: Option<u64>,
    #[serde(default)]
    hard_limit_bytes: Option<u64>,
}

/// `set_quota {artifact_id | workspace, soft_limit_bytes?, hard_limit_bytes?}`: the
/// repository's own limits on what it stores (packs and LFS objects), or the workspace's on
/// what its repositories store together; an absent limit is none (the server's default then
/// applies).
pub(super) async fn set_quota(
    app: &Arc<App>,
    identity: Option<&Grants>,
    p: Value,
) -> Result<Value, RpcError> {
    let p: QuotaParams = params(p)?;
    let quota = refs::Quota {
        soft: p.soft_limit_bytes,
        hard: p.hard_limit_bytes,
    };
    if quota.soft == Some(0) || quota.hard == Some(0) {
        return Err(RpcError::InvalidParams(
            "a limit of 0 bytes: leave it out to have no limit".into(),
        ));
    }
    if let (Some(soft), Some(hard)) = (quota.soft, quota.hard) {
        if soft > hard {
            return Err(RpcError::InvalidParams(
                "the soft limit is above the hard limit".into(),
            ));
        }
    }
    match (p.artifact_id, p.workspace) {
        (Some(artifact_id), None) => {
            let repo = admin_repo(app, identity, &artifact_id).await?;
            crate::usage::set_quota(&repo, quota).await?;
        }
        (None, Some(workspace)) => {
            workspace_admin(identity, &workspace)?;
            let limits = crate::quota::WorkspaceLimits {
                soft_limit_bytes: quota.soft,
                hard_limit_bytes: quota.hard,
            };
            crate::quota::write_limits(&app.storage, &workspace, limits).await?;
            app.workspaces.forget(&workspace);
        }
        _ => {
            return Err(RpcError::InvalidParams(
                "give an artifact_id or a workspace".into(),
            ))
        }
    }
    Ok(json!({"soft_limit_bytes": quota.soft, "hard_limit_bytes": quota.hard}))
}

/// Refuse a caller without `a` on all of `workspace`.
fn workspace_admin(identity: Option<&Grants>, workspace: &str) -> Result<(), RpcError> {
    if !valid_name(workspace) {
        return Err(RpcError::InvalidParams("invalid workspace name".into()));
    }
    match identity.and_then(|g| g.workspace_level(workspace)) >= Some(Access::Admin) {
        true => Ok(()),
        false => Err(RpcError::Forbidden(format!(
            "this needs a token with `a` on the workspace {workspace}"
        ))),
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct UsageParams {
    #[serde(default)]
    artifact_id: Option<String>,
    #[serde(default)]
    workspace: Option<String>,
}

/// `get_usage {artifact_id | workspace}` → `{bytes, pack_bytes, lfs_bytes}`: what the
/// repository stores as its refs object counts it (kept up to date by every push, LFS upload
/// and deletion, counted anew by maintenance), or the sum over the workspace's repositories
/// (deleted ones until they are purged). Needs `a` on the artifact, or on the workspace.
pub(super) async fn get_usage(
    app: &Arc<App>,
    identity: Option<&Grants>,
    p: Value,
) -> Result<Value, RpcError> {
    let p: UsageParams = params(p)?;
    match (p.artifact_id, p.workspace) {
        (Some(artifact_id), None) => {
            let repo = admin_repo(app, identity, &artifact_id).await?;
            let Some((usage, own, _)) = usage_of(&repo).await? else {
                return Err(RpcError::NotFound(format!("no repository {}", repo.id)));
            };
            let quota = crate::quota::effective(own, app.config.default_quota);
            Ok(
                json!({"bytes": usage.total(), "pack_bytes": usage.pack_bytes,
                "lfs_bytes": usage.lfs_bytes, "soft_limit_bytes": quota.soft,
                "hard_limit_bytes": quota.hard}),
            )
        }
        (None, Some(workspace)) => {
            workspace_admin(identity, &workspace)?;
            let keys = app.storage.keys();
            let aliases = app
                .storage
                .bucket
                .list_folders(&keys.artifacts_dir(&workspace))
                .await?;
            let mut total = refs::Usage::default();
            let mut repositories = 0;
            for alias in aliases.into_iter().filter(|a| valid_name(a)) {
                let repo = Repo::new(
                    &app.storage,
                    RepoId {
                        workspace: workspace.clone(),
                        alias,
                    },
                );
                if let Some((usage, _, _)) = usage_of(&repo).await? {
                    total.pack_bytes += usage.pack_bytes;
                    total.lfs_bytes += usage.lfs_bytes;
                    repositories += 1;
                }
            }
            crate::metrics::workspace_usage(&workspace, total.total());
            let own = crate::quota::read_limits(&app.storage, &workspace)
                .await?
                .quota();
            let quota = crate::quota::effective(own, app.config.default_workspace_quota);
            Ok(
                json!({"bytes": total.total(), "pack_bytes": total.pack_bytes,
                "lfs_bytes": total.lfs_bytes, "repositories": repositories,
                "soft_limit_bytes": quota.soft, "hard_limit_bytes": quota.hard}),
            )
        }
        _ => Err(RpcError::InvalidParams(
            "give an artifact_id or a workspace".into(),
        )),
    }
}
