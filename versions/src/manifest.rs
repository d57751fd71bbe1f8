//! `v{N}.json`: the manifest of an artifact version published from git.
//!
//! The artifact service writes its own manifests in its own shape; this module reads only
//! what it needs from any manifest ([`published_commit`]: was this version published from
//! git, and from which commit) and writes [`Manifest`] for the versions it publishes.

use gix_hash::ObjectId;
use serde::{Deserialize, Serialize};

/// The `published_by` of versions this server publishes.
pub const PUBLISHER: &str = "artifact-git";

/// Where a published version came from.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct GitOrigin {
    /// Always [`PUBLISHER`]: the marker `commit_version` checks.
    pub published_by: String,
    /// The commit whose files the version holds.
    pub commit: String,
    /// The branch it was the tip of.
    pub branch: String,
    /// The push event that moved the branch there.
    pub event_seq: u64,
}

/// One file of a published version.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ManifestFile {
    /// Its path inside `v{N}/`.
    pub path: String,
    /// Its size in bytes (of the content, for LFS files too).
    pub size: u64,
    /// The blob in git (the pointer, for LFS files).
    pub git_oid: String,
    /// The Git LFS object (its SHA-256), for files stored in LFS.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub lfs_oid: Option<String>,
}

/// A tree entry that is not in the version, and why.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SkippedFile {
    /// Its path in the commit.
    pub path: String,
    /// Why (a submodule, a symbolic link, an LFS object never uploaded...).
    pub reason: String,
}

/// The manifest of a version published from a commit.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Manifest {
    /// The version number.
    pub version: u64,
    /// Whether every file is written; `false` while a publish is under way (the number is
    /// taken, the files are not all there yet).
    pub complete: bool,
    /// When the publish started, seconds since the epoch.
    pub created: i64,
    /// The commit.
    pub git: GitOrigin,
    /// Its files, when there are at most [`MAX_LISTED_FILES`].
    #[serde(default)]
    pub files: Vec<ManifestFile>,
    /// The number of files written.
    #[serde(default)]
    pub file_count: usize,
    /// Entries of the commit that are not files of the version.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub skipped: Vec<SkippedFile>,
}

/// Files listed in a manifest at most (the count is always there).
pub const MAX_LISTED_FILES: usize = 100_000;

impl Manifest {
    /// The JSON written to `v{N}.json`.
    pub fn to_json(&self) -> Vec<u8> {
        // A struct of strings and numbers always serializes.
        serde_json::to_vec_pretty(self).unwrap_or_default()
    }
}

/// The commit a manifest says its version was published from by this server; `None` for a
/// version the artifact service wrote (or an unreadable manifest).
pub fn published_commit(data: &[u8]) -> Option<ObjectId> {
    let value: serde_json::Value = serde_json::from_slice(data).ok()?;
    let git = value.get("git")?;
    if git.get("published_by")?.as_str()? != PUBLISHER {
        return None;
    }
    ObjectId::from_hex(git.get("commit")?.as_str()?.as_bytes()).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn published_versions_are_told_from_the_services_own() {
        let commit = "0123456789abcdef0123456789abcdef01234567";
        let m = Manifest {
            version: 3,
            complete: true,
            created: 1,
            git: GitOrigin {
                published_by: PUBLISHER.into(),
                commit: commit.into(),
                branch: "main".into(),
                event_seq: 7,
            },
            files: vec![],
            file_count: 0,
            skipped: vec![],
        };
        assert_eq!(
            published_commit(&m.to_json()).map(|c| c.to_string()),
            Some(commit.to_owned())
        );
        let service = br#"{"version": 4, "files": ["a.txt"], "git": {"commit": "x"}}"#;
        assert_eq!(published_commit(service), None);
        assert_eq!(published_commit(b"not json"), None);
    }
}
