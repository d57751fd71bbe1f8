//! A repository's history, read from its packs: who committed what, when, and which files each
//! commit changed.
//!
//! [`commit_info`] parses one commit in full (authors, message) with gix's parser. [`log`]
//! walks history newest first, as `git log` does, from some tips and hiding what other tips
//! reach (`git log A ^B`). [`diff_trees`] lists the files that differ between two trees, with
//! gix-diff's tree walk, which skips identical subtrees by id. Everything here is CPU work on
//! a [`Reader`](objectstore::odb::Reader): run it in `spawn_blocking`.
//!
//! Around them: [`resolve_commit`] reads revisions as `git rev-parse` does, [`log_page`] is
//! `git log [-- path]` with git's history simplification, [`list`] and [`entry_at`] answer
//! what a tree holds, [`patch`] writes unified diffs in git's format, and [`edit_tree`],
//! [`write_commit`] and [`write_tag`] make new commits without a work tree.
#![forbid(unsafe_code)]
#![warn(missing_docs, unreachable_pub)]

pub mod archive;
mod bundle;
mod commit;
mod diff;
mod last_change;
mod log;
pub mod merge;
mod patch;
mod reach;
mod rev;
mod tree;
mod write;
mod zip;

pub use bundle::{
    bundle_is_empty, bundle_refs, write_bundle_header, BundlePlan, BUNDLE_SIGNATURE,
    BUNDLE_SIGNATURE_SHA256, MAX_BUNDLE_NAMES,
};
pub use commit::{commit_info, CommitInfo, Signature};
pub use diff::{detect_renames, diff_at_path, diff_trees, FileChange, FileChangeKind};
pub use last_change::last_changes;
pub use log::{log, log_page, Log, LogLimits};
pub use patch::{is_binary, patch, FilePatch, Patch, PatchLimits};
pub use reach::{is_ancestor, Reachable};
pub use rev::resolve_commit;
pub use tree::{entry_at, list, normalize_path, Depth, Entry, EntryKind};
pub use write::{edit_tree, write_commit, write_tag, Person, TreeEdit};

/// Why a history question could not be answered.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// Reading objects failed (or one is missing or corrupt).
    #[error(transparent)]
    Objects(#[from] objectstore::odb::Error),
    /// An object is not what its parent says it is.
    #[error("object {id} is corrupt: {message}")]
    Corrupt {
        /// The object.
        id: gix_hash::ObjectId,
        /// What is wrong.
        message: String,
    },
    /// Comparing trees failed.
    #[error("comparing trees failed: {0}")]
    Diff(String),
    /// The revision names nothing (or nothing that leads to a commit).
    #[error("unknown revision {0:?}")]
    UnknownRevision(String),
    /// The abbreviated id names several objects.
    #[error("the abbreviated id {0:?} is ambiguous; give more digits")]
    AmbiguousRevision(String),
    /// The path is not one a repository can hold, or an edit does not fit the tree.
    #[error("invalid path or edit: {0}")]
    InvalidPath(String),
    /// Nothing is at the path.
    #[error("no such path: {0}")]
    NoSuchPath(String),
    /// The work is past a limit set to bound time and memory.
    #[error("too large: {0}")]
    TooLarge(String),
}

/// The result of a history question.
pub type Result<T, E = Error> = std::result::Result<T, E>;

#[cfg(test)]
mod tests;
