//! Repository quotas: a soft limit that warns and a hard limit that refuses, on what the
//! repository stores (packs and LFS objects, as its refs object counts them: [`refs::Usage`]).
//! The limits ride on the refs object too ([`refs::Quota`], set by `set_quota`), with the
//! server's defaults (`--default-soft-limit`, `--default-hard-limit`) where a repository has
//! none, so every writer knows them from the refs it read, without another read.
//!
//! Writers check before they store: the one landing refuses a pack that would cross the hard
//! limit before publishing it (pushes, API commits, merges, syncs), a push's body is cut as it
//! streams once it passes what is left, and the LFS batch API answers 507 for an object that
//! would cross it. Concurrent writers each check against the usage they read, so together
//! they may pass the hard limit by at most one write each.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use refs::{Quota, Usage};
use serde::{Deserialize, Serialize};

use crate::repo::Repo;
use crate::storage::{valid_name, RepoId, Storage};

/// How long a replica uses a workspace's limits and usage before it counts them again.
pub const WORKSPACE_TTL: Duration = Duration::from_secs(30);

/// The limits in force for a repository whose refs say `own`.
pub fn effective(own: Quota, defaults: Quota) -> Quota {
    Quota {
        soft: own.soft.or(defaults.soft),
        hard: own.hard.or(defaults.hard),
    }
}

/// What adding `bytes` to `usage` means under `quota`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verdict {
    /// Within the limits.
    Fine,
    /// Past the soft limit: the write goes on, with this warning.
    Warn(String),
    /// Past the hard limit: refused, with this reason.
    Refuse(String),
}

fn mib(bytes: u64) -> String {
    format!("{:.1} MiB", bytes as f64 / (1 << 20) as f64)
}

/// The verdict on adding `bytes` to `usage` under `quota`.
pub fn check(quota: Quota, usage: Usage, bytes: u64) -> Verdict {
    let after = usage.total().saturating_add(bytes);
    if let Some(hard) = quota.hard {
        if bytes > 0 && after > hard {
            return Verdict::Refuse(format!(
                "quota exceeded: {} stored, {} more would pass the hard limit of {}",
                mib(usage.total()),
                mib(bytes),
                mib(hard)
            ));
        }
    }
    match quota.soft {
        Some(soft) if after > soft => Verdict::Warn(format!(
            "the repository stores {} of its soft limit of {}{}",
            mib(after),
            mib(soft),
            quota
                .hard
                .map(|h| format!(" (hard limit {})", mib(h)))
                .unwrap_or_default()
        )),
        _ => Verdict::Fine,
    }
}

/// The stricter of two verdicts: a refusal over a warning over nothing.
pub fn stricter(a: Verdict, b: Verdict) -> Verdict {
    match (a, b) {
        (r @ Verdict::Refuse(_), _) | (_, r @ Verdict::Refuse(_)) => r,
        (w @ Verdict::Warn(_), _) | (_, w @ Verdict::Warn(_)) => w,
        _ => Verdict::Fine,
    }
}

/// The bytes a write may still add before the hard limit (`None`: no hard limit).
pub fn room(quota: Quota, usage: Usage) -> Option<u64> {
    quota.hard.map(|hard| hard.saturating_sub(usage.total()))
}

/// A workspace's limits as stored.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct WorkspaceLimits {
    /// Past it, writes are warned.
    pub soft_limit_bytes: Option<u64>,
    /// Past it, writes are refused.
    pub hard_limit_bytes: Option<u64>,
}

impl WorkspaceLimits {
    /// As a [`Quota`].
    pub fn quota(self) -> Quota {
        Quota {
            soft: self.soft_limit_bytes,
            hard: self.hard_limit_bytes,
        }
    }
}

/// What a workspace's repositories store together, and its limits, as this replica last
/// counted them (every [`WORKSPACE_TTL`]; its own writes are added as they land). Writers on
/// several replicas may so pass a workspace's hard limit by what the others wrote within that
/// window.
#[derive(Debug, Default)]
pub struct Workspaces {
    counted: Mutex<HashMap<String, (Instant, Quota, Usage)>>,
}

impl Workspaces {
    /// The limits and usage of `workspace`, counted again when older than the TTL.
    pub async fn state(
        &self,
        storage: &Storage,
        workspace: &str,
        defaults: Quota,
    ) -> Result<(Quota, Usage), objectstore::bucket::Error> {
        if let Some((at, quota, usage)) = self.lock().get(workspace).copied() {
            if at.elapsed() < WORKSPACE_TTL {
                return Ok((quota, usage));
            }
        }
        let own = read_limits(storage, workspace).await?.quota();
        let quota = effective(own, defaults);
        let usage = match quota == Quota::default() {
            true => Usage::default(),
            false => count(storage, workspace).await?,
        };
        if quota != Quota::default() {
            crate::metrics::workspace_usage(workspace, usage.total());
        }
        self.lock()
            .insert(workspace.to_owned(), (Instant::now(), quota, usage));
        Ok((quota, usage))
    }

    /// `bytes` more stored in `workspace` by this replica.
    pub fn add(&self, workspace: &str, bytes: u64) {
        if let Some(entry) = self.lock().get_mut(workspace) {
            entry.2.pack_bytes = entry.2.pack_bytes.saturating_add(bytes);
        }
    }

    /// Forget what was counted of `workspace` (its limits changed).
    pub fn forget(&self, workspace: &str) {
        self.lock().remove(workspace);
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, (Instant, Quota, Usage)>> {
        self.counted.lock().unwrap_or_else(|p| p.into_inner())
    }
}

/// The limits `set_quota` gave `workspace` (none: default).
pub async fn read_limits(
    storage: &Storage,
    workspace: &str,
) -> Result<WorkspaceLimits, objectstore::bucket::Error> {
    match storage
        .bucket
        .get(&storage.keys().workspace_quota(workspace))
        .await
    {
        Ok(got) => Ok(serde_json::from_slice(&got.data).unwrap_or_default()),
        Err(e) if e.is_not_found() => Ok(WorkspaceLimits::default()),
        Err(e) => Err(e),
    }
}

/// Give `workspace` these limits.
pub async fn write_limits(
    storage: &Storage,
    workspace: &str,
    limits: WorkspaceLimits,
) -> Result<(), objectstore::bucket::Error> {
    let data = serde_json::to_vec(&limits).unwrap_or_default();
    storage
        .bucket
        .put(
            &storage.keys().workspace_quota(workspace),
            data.into(),
            objectstore::PutMode::Overwrite,
        )
        .await
        .map(|_| ())
}

/// What `workspace`'s repositories store, from their refs objects (deleted ones aside).
pub async fn count(
    storage: &Storage,
    workspace: &str,
) -> Result<Usage, objectstore::bucket::Error> {
    let aliases = storage
        .bucket
        .list_folders(&storage.keys().artifacts_dir(workspace))
        .await?;
    let mut total = Usage::default();
    for alias in aliases.into_iter().filter(|a| valid_name(a)) {
        let id = RepoId {
            workspace: workspace.to_owned(),
            alias,
        };
        match Repo::new(storage, id).snapshot().await {
            Ok(s) => {
                total.pack_bytes = total.pack_bytes.saturating_add(s.usage.pack_bytes);
                total.lfs_bytes = total.lfs_bytes.saturating_add(s.usage.lfs_bytes);
            }
            Err(refs::Error::NotFound) => {}
            Err(refs::Error::Bucket(e)) => return Err(e),
            Err(e) => tracing::warn!(workspace, error = %e, "a repository could not be counted"),
        }
    }
    Ok(total)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn limits_warn_then_refuse() {
        let quota = Quota {
            soft: Some(100),
            hard: Some(200),
        };
        let usage = Usage {
            pack_bytes: 60,
            lfs_bytes: 30,
        };
        assert_eq!(check(quota, usage, 5), Verdict::Fine);
        assert!(matches!(check(quota, usage, 50), Verdict::Warn(_)));
        assert!(matches!(check(quota, usage, 111), Verdict::Refuse(_)));
        // Removing nothing and adding nothing is never refused, even past the limit.
        let over = Usage {
            pack_bytes: 500,
            lfs_bytes: 0,
        };
        assert!(matches!(check(quota, over, 0), Verdict::Warn(_)));
        assert_eq!(room(quota, usage), Some(110));
        assert_eq!(room(quota, over), Some(0));
        let defaults = Quota {
            soft: Some(1),
            hard: None,
        };
        assert_eq!(
            effective(Quota::default(), defaults),
            Quota {
                soft: Some(1),
                hard: None
            }
        );
        assert_eq!(effective(quota, defaults), quota);
    }
}
