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

use refs::{Quota, Usage};

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
                "repository quota exceeded: {} stored, {} more would pass the hard limit of {}",
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

/// The bytes a write may still add before the hard limit (`None`: no hard limit).
pub fn room(quota: Quota, usage: Usage) -> Option<u64> {
    quota.hard.map(|hard| hard.saturating_sub(usage.total()))
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
