//! Running maintenance: on demand (`artifact-git maintain`) and after pushes once a
//! repository has too many packs.

use std::collections::HashSet;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};

use objectstore::odb::maintain::{self, Options, Report};
use objectstore::PackCache;

use crate::repo::Repo;

/// Repack `repo` now.
pub async fn run(
    repo: &Repo,
    cache: &Arc<PackCache>,
    staging: PathBuf,
    options: Options,
) -> anyhow::Result<Report> {
    let snapshot = repo.snapshot().await?;
    let db = repo.fresh_objects(cache).await?;
    let mut tips: Vec<_> = snapshot.refs.values().map(|v| v.target).collect();
    tips.sort();
    tips.dedup();
    let runtime = tokio::runtime::Handle::current();
    let report = tokio::task::spawn_blocking(move || {
        maintain::repack(&db, &tips, &staging, options, &runtime)
    })
    .await??;
    crate::metrics::inc(&crate::metrics::MAINTENANCE_RUNS);
    tracing::info!(repo = %repo.id, ?report, "maintenance");
    Ok(report)
}

/// Starts background repacks after pushes, one at a time per repository in this process.
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
            if let Err(e) = run(&repo, &cache, staging, this.options).await {
                tracing::warn!(repo = %repo.id, error = %e, "background maintenance failed");
            }
            this.running
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .remove(&repo.prefix);
        });
    }
}
