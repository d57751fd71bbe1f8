//! Running maintenance: on demand (`artifact-git maintain`) and after pushes once a
//! repository has too many packs.

use std::collections::HashSet;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use objectstore::odb::maintain::{self, Options, Workspace};
use objectstore::PackCache;
use tokio_util::task::TaskTracker;

use crate::repo::Repo;

/// What a maintenance run does.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// Everything reachable into one pack (young unreachable objects into a second one); old
    /// unreachable objects go.
    Full,
    /// The smallest packs merged, geometrically; nothing dropped. What runs after pushes.
    Geometric,
}

/// Why a run failed.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// Reading the refs failed.
    #[error(transparent)]
    Refs(#[from] refs::Error),
    /// Reading or writing packs failed.
    #[error(transparent)]
    Objects(#[from] objectstore::odb::Error),
    /// Sweeping abandoned LFS uploads failed.
    #[error(transparent)]
    Lfs(#[from] lfs::StoreError),
    /// Sweeping unreferenced LFS objects failed.
    #[error(transparent)]
    Reclaim(#[from] crate::reclaim::ReclaimError),
}

/// What a run did.
#[derive(Debug, Clone)]
pub struct Report {
    /// To the packs.
    pub report: maintain::Report,
    /// To the LFS objects.
    pub lfs: crate::reclaim::Swept,
}

/// Maintain `repo` now.
pub async fn run(
    repo: &Repo,
    cache: &Arc<PackCache>,
    workspace: &Workspace,
    options: Options,
    kind: Kind,
) -> Result<Report, Error> {
    let snapshot = repo.snapshot().await?;
    let mut tips: Vec<_> = snapshot.refs.values().map(|v| v.target).collect();
    tips.sort();
    tips.dedup();
    let mut db = repo.fresh_objects(cache, snapshot.object_hash).await?;
    crate::repo::complete(&mut db, &tips).await?;
    let report = match kind {
        Kind::Full => maintain::repack(&db, &tips, workspace, options).await?,
        Kind::Geometric => maintain::roll_up(&db, workspace, options).await?,
    };
    // LFS objects no ref reaches go with the unreachable objects, after the same grace.
    let lfs_swept = match kind {
        Kind::Full => crate::reclaim::sweep_lfs(repo, &db, &snapshot, options.prune_after).await?,
        Kind::Geometric => crate::reclaim::Swept::default(),
    };
    let lfs = lfs::Store::new(
        repo.storage().bucket.clone(),
        repo.keys.clone(),
        lfs::Transfer::default(),
    );
    let swept = lfs.sweep_incoming(lfs::UNVERIFIED_UPLOADS_KEPT_FOR).await?;
    // What the repository stores now, counted anew: packs merged and dropped, LFS objects
    // removed, whatever the increments missed.
    let bucket = &repo.storage().bucket;
    let packs = bucket
        .list(&repo.keys.pack_dir())
        .await
        .map_err(objectstore::odb::Error::from)?;
    let stored = bucket
        .list(&repo.keys.lfs_objects_dir())
        .await
        .map_err(objectstore::odb::Error::from)?;
    let usage = refs::Usage {
        pack_bytes: packs
            .iter()
            .filter(|m| crate::reclaim::counted_pack_file(&m.key))
            .map(|m| m.size)
            .sum(),
        lfs_bytes: stored.iter().map(|m| m.size).sum(),
    };
    crate::usage::change_usage(repo, refs::UsageChange::Set(usage)).await;
    // The bundles clients may clone from, brought up to the refs (a failure here costs
    // clones their shortcut, never the repository: they fall back to a plain fetch).
    let refreshed = async {
        if kind == Kind::Geometric && !crate::bundle_uri::due(repo).await? {
            return Ok(crate::bundle_uri::Refreshed::Unchanged);
        }
        let mut db = repo.fresh_objects(cache, snapshot.object_hash).await?;
        crate::repo::complete(&mut db, &tips).await?;
        crate::bundle_uri::refresh(repo, &db, &snapshot, &workspace.staging).await
    };
    if let Err(e) = refreshed.await {
        tracing::warn!(repo = %repo.id, error = %e, "bundles not refreshed");
    }
    crate::metrics::inc(crate::metrics::MAINTENANCE_RUNS);
    tracing::info!(repo = %repo.id, ?report, abandoned_lfs_uploads = swept, lfs_objects_removed = lfs_swept.objects, lfs_bytes_removed = lfs_swept.bytes, "maintenance");
    Ok(Report {
        report,
        lfs: lfs_swept,
    })
}

/// Starts background geometric roll-ups after pushes, one at a time per repository in this
/// process, and lets shutdown wait for those in flight.
#[derive(Debug)]
pub struct AutoMaintenance {
    /// Roll up once a repository has more packs than this (0: never).
    pub threshold: usize,
    /// How unreachable objects and replaced packs are treated.
    pub options: Options,
    /// The packs the server reads (kept in step with what a run writes).
    cache: Arc<PackCache>,
    /// Where runs write their packs, and the memory they reserve.
    workspace: Workspace,
    running: Mutex<HashSet<String>>,
    tasks: TaskTracker,
}

impl AutoMaintenance {
    /// Roll up repositories with more than `threshold` packs, reading through `cache` and
    /// writing in `workspace`.
    pub fn new(
        threshold: usize,
        options: Options,
        cache: Arc<PackCache>,
        workspace: Workspace,
    ) -> Self {
        AutoMaintenance {
            threshold,
            options,
            cache,
            workspace,
            running: Mutex::new(HashSet::new()),
            tasks: TaskTracker::new(),
        }
    }

    /// Called after a push that left `packs` packs.
    pub fn after_push(self: &Arc<Self>, repo: Repo, packs: usize) {
        if self.threshold == 0 || packs <= self.threshold {
            return;
        }
        {
            let mut running = self.running.lock().unwrap_or_else(|p| p.into_inner());
            if !running.insert(repo.keys.prefix().to_owned()) {
                return;
            }
        }
        let this = self.clone();
        self.tasks.spawn(async move {
            let (cache, workspace) = (&this.cache, &this.workspace);
            if let Err(e) = run(&repo, cache, workspace, this.options, Kind::Geometric).await {
                tracing::warn!(repo = %repo.id, error = %e, "background maintenance failed");
            }
            this.running
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .remove(repo.keys.prefix());
        });
    }

    /// Stop starting runs and wait up to `max` for those in flight.
    pub async fn wait(&self, max: Duration) {
        self.tasks.close();
        if tokio::time::timeout(max, self.tasks.wait()).await.is_err() {
            tracing::warn!("background maintenance still running at shutdown");
        }
    }
}
