//! A repository's end: deleted, restored within the retention, purged after it.
//!
//! **Delete.** The refs object as it is is kept in a tombstone
//! ([`objectstore::layout::RepoKeys::tombstone`]), then replaced by compare-and-swap with one
//! that carries the deleted mark and no refs ([`refs::deleted_marker`]). From that write on,
//! every replica reads the repository as not found (every read revalidates the refs), and a
//! push that read the refs before loses its compare-and-swap: it landed before the deletion
//! or is refused, never after. The repository is listed under
//! [`objectstore::layout::StorageKeys::deleted`] for the purgers.
//!
//! **Restore.** The kept bytes go back by compare-and-swap against the deleted mark: the very
//! refs object, so its content id, the event log's chain and every endpoint's cursor are as
//! they were.
//!
//! **Purge.** After the retention (or at once with `purge: true`), every key under the
//! repository's prefix (packs, refs, LFS objects, events, deliveries, settings, endpoints,
//! pull requests) is removed in batches, `HEAD` and the tombstone last, so a purge that dies
//! midway is found and finished by the next round of any replica. The artifact's own files
//! (`v{N}/`) lie outside the prefix and stay: `disable_git` is this deletion.

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use objectstore::bucket::{self, PutMode};
use serde::{Deserialize, Serialize};
use tokio_util::sync::CancellationToken;

use crate::app::App;
use crate::repo::Repo;
use crate::storage::RepoId;

/// Attempts at the deletion's compare-and-swap while pushes keep landing.
const ATTEMPTS: usize = 12;

/// A deleted repository's tombstone.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Tombstone {
    /// When it was deleted, seconds since the epoch.
    pub deleted_at: i64,
    /// Who deleted it (the token's subject).
    pub by: Option<String>,
    /// When it may be purged, seconds since the epoch.
    pub purge_after: i64,
    /// The refs object as it was.
    pub refs: String,
}

/// Why a lifecycle step did not happen.
#[derive(Debug, thiserror::Error)]
pub enum LifecycleError {
    /// No such repository (or it is deleted already).
    #[error("{0}")]
    NotFound(String),
    /// Writers kept moving the refs.
    #[error("the repository kept changing; try again")]
    Contention,
    /// The bucket failed.
    #[error("storage failed: {0}")]
    Storage(String),
}

impl From<bucket::Error> for LifecycleError {
    fn from(e: bucket::Error) -> Self {
        LifecycleError::Storage(e.to_string())
    }
}

impl From<refs::Error> for LifecycleError {
    fn from(e: refs::Error) -> Self {
        match e {
            refs::Error::NotFound => LifecycleError::NotFound("repository not found".into()),
            e => LifecycleError::Storage(e.to_string()),
        }
    }
}

/// The tombstone of `repo`, if it is deleted.
pub async fn tombstone(repo: &Repo) -> Result<Option<Tombstone>, LifecycleError> {
    match repo.storage().bucket.get(&repo.keys.tombstone()).await {
        Ok(got) => serde_json::from_slice(&got.data)
            .map(Some)
            .map_err(|e| LifecycleError::Storage(format!("unreadable tombstone: {e}"))),
        Err(e) if e.is_not_found() => Ok(None),
        Err(e) => Err(e.into()),
    }
}

/// Delete `repo`: unreadable and unwritable on every replica from now, restorable until
/// `retention` has passed.
pub async fn delete(
    app: &App,
    repo: &Repo,
    by: Option<String>,
    retention: Duration,
) -> Result<Tombstone, LifecycleError> {
    let bucket = &repo.storage().bucket;
    for _ in 0..ATTEMPTS {
        let (original, etag) = repo.refs.raw().await?;
        if repo.refs.head().await.is_err() || (!original.is_empty() && is_deleted(&original)?) {
            return Err(LifecycleError::NotFound(format!(
                "{} is not a repository (or is deleted already)",
                repo.id
            )));
        }
        let now = events::log::now();
        let stone = Tombstone {
            deleted_at: now,
            by: by.clone(),
            purge_after: now.saturating_add(retention.as_secs() as i64),
            refs: String::from_utf8(original.clone())
                .map_err(|_| LifecycleError::Storage("the refs are not UTF-8".into()))?,
        };
        let data = serde_json::to_vec(&stone).unwrap_or_default();
        bucket
            .put(
                &repo.keys.tombstone(),
                Bytes::from(data),
                PutMode::Overwrite,
            )
            .await?;
        let marker = refs::deleted_marker(&original)?;
        if repo.refs.replace_raw(marker, etag).await? {
            let listed = app
                .storage
                .keys()
                .deleted(&repo.id.workspace, &repo.id.alias);
            bucket
                .put(&listed, Bytes::new(), PutMode::Overwrite)
                .await?;
            tracing::info!(repo = %repo.id, purge_after = stone.purge_after, "repository deleted");
            return Ok(stone);
        }
        // A push landed meanwhile: keep its refs instead.
    }
    Err(LifecycleError::Contention)
}

fn is_deleted(data: &[u8]) -> Result<bool, LifecycleError> {
    Ok(refs::parse_packed_refs(data)?.deleted)
}

/// Restore a deleted `repo` exactly as it was.
pub async fn restore(app: &App, repo: &Repo) -> Result<(), LifecycleError> {
    let Some(stone) = tombstone(repo).await? else {
        return Err(LifecycleError::NotFound(format!(
            "{} is not deleted (or was purged already)",
            repo.id
        )));
    };
    let (current, etag) = repo.refs.raw().await?;
    if current.is_empty() || !is_deleted(&current)? {
        return Err(LifecycleError::NotFound(format!(
            "{} is not deleted",
            repo.id
        )));
    }
    if !repo.refs.replace_raw(stone.refs.into_bytes(), etag).await? {
        return Err(LifecycleError::Contention);
    }
    let bucket = &repo.storage().bucket;
    bucket.delete(&repo.keys.tombstone()).await?;
    let listed = app
        .storage
        .keys()
        .deleted(&repo.id.workspace, &repo.id.alias);
    bucket.delete(&listed).await?;
    tracing::info!(repo = %repo.id, "repository restored");
    Ok(())
}

/// Remove every key of deleted `repo`; how many.
pub async fn purge(app: &App, repo: &Repo) -> Result<usize, LifecycleError> {
    if tombstone(repo).await?.is_none() {
        return Err(LifecycleError::NotFound(format!(
            "{} is not deleted",
            repo.id
        )));
    }
    let bucket = &repo.storage().bucket;
    let keys = app.storage.keys();
    let (head, stone) = (repo.keys.head(), repo.keys.tombstone());
    let mut doomed: Vec<String> = bucket
        .list(repo.keys.prefix())
        .await?
        .into_iter()
        .map(|m| m.key)
        .filter(|k| *k != head && *k != stone)
        .collect();
    for dir in keys.repository_entries(&repo.id.workspace, &repo.id.alias) {
        doomed.extend(bucket.list(&dir).await?.into_iter().map(|m| m.key));
    }
    bucket.delete_many(&doomed).await?;
    // Last: `HEAD` (the repository no longer exists), the tombstone, the listing.
    let listed = keys.deleted(&repo.id.workspace, &repo.id.alias);
    bucket.delete_many(&[head, stone, listed]).await?;
    tracing::info!(repo = %repo.id, keys = doomed.len() + 2, "repository purged");
    Ok(doomed.len() + 2)
}

/// Every replica's purger: each `poll`, the deleted repositories whose retention is over are
/// purged (a purge that died midway is finished).
pub async fn run_purger(app: Arc<App>, poll: Duration, stop: CancellationToken) {
    loop {
        tokio::select! {
            _ = stop.cancelled() => return,
            _ = tokio::time::sleep(poll) => {}
        }
        if let Err(e) = purge_due(&app).await {
            tracing::warn!(error = %e, "purging deleted repositories failed");
        }
    }
}

async fn purge_due(app: &Arc<App>) -> Result<(), LifecycleError> {
    let keys = app.storage.keys();
    let listed = app.storage.bucket.list(&keys.deleted_dir()).await?;
    for meta in listed {
        let Some((ws, alias)) = keys.parse_deleted(&meta.key) else {
            continue;
        };
        let repo = Repo::new(
            &app.storage,
            RepoId {
                workspace: ws.to_owned(),
                alias: alias.to_owned(),
            },
        );
        match tombstone(&repo).await? {
            Some(stone) if stone.purge_after <= events::log::now() => {
                purge(app, &repo).await?;
            }
            Some(_) => {}
            // Restored, or purged but for the listing.
            None => app.storage.bucket.delete(&meta.key).await?,
        }
    }
    Ok(())
}
