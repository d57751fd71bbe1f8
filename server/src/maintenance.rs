//! Running maintenance: on demand (`artifact-git maintain`) and after pushes once a
//! repository has too many packs.

use std::collections::HashSet;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};

use objectstore::odb::maintain::{self, Options, Report};
use objectstore::PackCache;

use crate::repo::Repo;

/// What a maintenance run does.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// Everything reachable (and everything recent) into one pack; old unreachable objects go.
    Full,
    /// The smallest packs merged, geometrically; nothing dropped. What runs after pushes.
    Geometric,
}

/// Maintain `repo` now.
pub async fn run(
    repo: &Repo,
    cache: &Arc<PackCache>,
    staging: PathBuf,
    options: Options,
    kind: Kind,
) -> anyhow::Result<Report> {
    let snapshot = repo.snapshot().await?;
    let db = repo.fresh_objects(cache).await?;
    let mut tips: Vec<_> = snapshot.refs.values().map(|v| v.target).collect();
    tips.sort();
    tips.dedup();
    let runtime = tokio::runtime::Handle::current();
    let report = tokio::task::spawn_blocking(move || match kind {
        Kind::Full => maintain::repack(&db, &tips, &staging, options, &runtime),
        Kind::Geometric => maintain::roll_up(&db, &staging, options, &runtime),
    })
    .await??;
    crate::metrics::inc(&crate::metrics::MAINTENANCE_RUNS);
    tracing::info!(repo = %repo.id, ?report, "maintenance");
    Ok(report)
}

/// Starts background geometric roll-ups after pushes, one at a time per repository in this process.
#[derive(Debug, Default)]
pub struct AutoMaintenance {
    /// Repack once a repository has more packs than this (0: never).
    pub threshold: usize,
    pub options: Options,
    running: Mutex<HashSet<String>>,
}

impl AutoMaintenance {
    pub fn new(threshold: usize, options: Options) -> Self {
        AutoMaintenance {
            threshold,
            options,
            running: Mutex::new(HashSet::new()),
        }
    }

    /// Called after a push that left `packs` packs.
    pub fn after_push(
        self: &Arc<Self>,
        repo: Repo,
        packs: usize,
        cache: Arc<PackCache>,
        staging: PathBuf,
    ) {
        if self.threshold == 0 || packs <= self.threshold {
            return;
        }
        {
            let mut running = self.running.lock().unwrap_or_else(|p| p.into_inner());
            if !running.insert(repo.prefix.clone()) {
                return;
            }
        }
        let this = self.clone();
        tokio::spawn(async move {
            if let Err(e) = run(&repo, &cache, staging, this.options, Kind::Geometric).await {
                tracing::warn!(repo = %repo.id, error = %e, "background maintenance failed");
            }
            this.running
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .remove(&repo.prefix);
        });
    }
}
