//! Versions in step with git: `set_git_settings {sync_versions}` (and `enable_git`'s) turns
//! publishing on or off; `commit_version` commits a version the artifact service wrote.
//! Publishing itself is done by the event dispatcher (`events::dispatcher`), the mapping by
//! the `versions` crate.

use std::sync::Arc;

use events::config::{EndpointStore, VersionSync, VERSIONS_ENDPOINT};
use events::state::{EndpointState, StateStore};
use objectstore::bucket::PutMode;
use serde::Deserialize;
use serde_json::{json, Value};

use super::{artifact, authorize, params, RpcError};
use crate::app::App;
use crate::auth::{Access, Grants};
use crate::import::{commit_version_files, ImportError, VersionCommit};
use crate::repo::{Repo, Settings};

/// Turn publishing on (from the refs as they are now: later pushes publish) or off; whether
/// it was on before.
pub(super) async fn set_sync(app: &App, repo: &Repo, on: bool) -> Result<bool, RpcError> {
    let store = EndpointStore::new(app.storage.bucket.clone(), repo.keys.clone());
    let was_on = store.load().await?.versions.is_some();
    if on && !was_on {
        // The state first, at the refs as they are, so the next push is the first published.
        let start = EndpointState {
            cursor: super::events::watched_head(repo).await?,
            ..EndpointState::default()
        };
        StateStore::new(app.storage.bucket.clone(), repo.keys.clone())
            .replace(VERSIONS_ENDPOINT, &start)
            .await?;
    }
    if on != was_on {
        store
            .update(|endpoints| {
                endpoints.versions = on.then(|| VersionSync {
                    since: events::log::now(),
                });
                Ok(())
            })
            .await?;
        tracing::info!(repo = %repo.id, on, "version sync changed");
    }
    Ok(was_on)
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct SettingsParams {
    artifact_id: String,
    #[serde(default)]
    public: Option<bool>,
    #[serde(default)]
    sync_versions: Option<bool>,
}

/// `set_git_settings`: change what is given, answer every setting.
pub(super) async fn set_git_settings(
    app: &Arc<App>,
    identity: Option<&Grants>,
    p: Value,
) -> Result<Value, RpcError> {
    let p: SettingsParams = params(p)?;
    let id = artifact(&p.artifact_id)?;
    let repo = Repo::new(&app.storage, id.clone());
    if !authorize(&repo, identity, Access::Admin).await? {
        return Err(RpcError::NotFound(format!(
            "git is not enabled for artifact {id}"
        )));
    }
    let mut settings = repo.settings().await?;
    if let Some(public) = p.public {
        if public != settings.public {
            settings.public = public;
            repo.write_settings(&Settings { public }).await?;
        }
    }
    let sync = match p.sync_versions {
        Some(on) => {
            set_sync(app, &repo, on).await?;
            on
        }
        None => EndpointStore::new(app.storage.bucket.clone(), repo.keys.clone())
            .load()
            .await?
            .versions
            .is_some(),
    };
    Ok(json!({"public": settings.public, "sync_versions": sync}))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct CommitVersionParams {
    artifact_id: String,
    version: u64,
}

/// The trailer that names the version a commit was made from.
fn trailer(version: u64) -> String {
    format!("Artifact-Version: v{version}")
}

/// `commit_version`: the files of version N as a new commit on the default branch.
pub(super) async fn commit_version(
    app: &Arc<App>,
    identity: Option<&Grants>,
    p: Value,
) -> Result<Value, RpcError> {
    let p: CommitVersionParams = params(p)?;
    let id = artifact(&p.artifact_id)?;
    let repo = Repo::new(&app.storage, id.clone());
    if !authorize(&repo, identity, Access::Write).await? {
        return Err(RpcError::NotFound(format!(
            "git is not enabled for artifact {id}"
        )));
    }
    let version = p.version;
    let bucket = app.storage.bucket.clone();
    let marker = repo.keys.imported_version(version);
    let done = |commit: String, reason: &str| json!({"version": version, "commit": commit, "created": false, "reason": reason});
    match bucket.get(&marker).await {
        Ok(got) => {
            let commit = String::from_utf8_lossy(&got.data).trim().to_owned();
            return Ok(done(commit, "the version was committed before"));
        }
        Err(e) if e.is_not_found() => {}
        Err(e) => return Err(e.into()),
    }
    let artifact_keys = app.storage.artifact_keys(&repo.id);
    let manifest = versions::files::version_manifest(bucket.as_ref(), &artifact_keys, version)
        .await
        .map_err(|e| RpcError::Internal(e.to_string()))?;
    if let Some(commit) = manifest
        .as_deref()
        .and_then(versions::manifest::published_commit)
    {
        return Ok(done(
            commit.to_string(),
            "the version was published from this commit; it is in git already",
        ));
    }
    let snapshot = repo.snapshot().await?;
    let Some(head_ref) = snapshot.head.clone() else {
        return Err(RpcError::Internal("the repository has no HEAD".into()));
    };
    let branch = head_ref
        .strip_prefix("refs/heads/")
        .unwrap_or(&head_ref)
        .to_owned();
    let parent = snapshot.get(&head_ref);
    // A commit of this version that moved the branch, its marker lost in a crash.
    if let Some(parent) = parent {
        let db = repo.fresh_objects(&app.cache, snapshot.object_hash).await?;
        let info = tokio::task::spawn_blocking(move || history::commit_info(&db.reader(), &parent))
            .await
            .map_err(|e| RpcError::Internal(e.to_string()))??;
        if info.message.lines().any(|l| l.trim() == trailer(version)) {
            bucket
                .put(
                    &marker,
                    bytes::Bytes::from(parent.to_string()),
                    PutMode::Overwrite,
                )
                .await?;
            return Ok(done(parent.to_string(), "the version was committed before"));
        }
    }
    let settings_threshold = app.config.lfs_threshold;
    let message = format!(
        "Artifact version v{version}\n\nThe files of artifact version v{version}.\n\n{}\n",
        trailer(version)
    );
    let imported = commit_version_files(
        app,
        &repo,
        VersionCommit {
            branch: branch.clone(),
            version,
            parent,
            message,
            source: events::log::Source::Version,
            lfs_threshold: settings_threshold,
        },
    )
    .await
    .map_err(|e| match e {
        ImportError::Refused(r) => RpcError::Conflict(format!(
            "{branch} moved while the version was being committed ({r}); call commit_version again"
        )),
        e => RpcError::from(e),
    })?;
    let Some(head) = imported.head else {
        return Err(RpcError::NotFound(format!(
            "version v{version} of {id} has no files"
        )));
    };
    bucket
        .put(
            &marker,
            bytes::Bytes::from(head.to_string()),
            PutMode::Overwrite,
        )
        .await?;
    tracing::info!(repo = %id, version, commit = %head, unchanged = imported.unchanged, "version committed");
    Ok(json!({
        "version": version,
        "commit": head.to_string(),
        "branch": branch,
        "created": !imported.unchanged,
        "files": imported.files,
        "lfs_files": imported.lfs_files,
    }))
}
