//! A repository's history, read from its packs: who committed what, when, and which files each
//! commit changed.
//!
//! [`commit_info`] parses one commit in full (authors, message) with gix's parser. [`log`]
//! walks history newest first, as `git log` does, from some tips and hiding what other tips
//! reach (`git log A ^B`). [`diff_trees`] lists the files that differ between two trees, with
//! gix-diff's tree walk, which skips identical subtrees by id. Everything here is CPU work on
//! a [`Reader`](objectstore::odb::Reader): run it in `spawn_blocking`.
#![forbid(unsafe_code)]
#![warn(missing_docs, unreachable_pub)]

mod commit;
mod diff;
mod log;

pub use commit::{commit_info, CommitInfo, Signature};
pub use diff::{diff_trees, FileChange, FileChangeKind};
pub use log::{log, Log, LogLimits};

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
}

/// The result of a history question.
pub type Result<T, E = Error> = std::result::Result<T, E>;

#[cfg(test)]
mod tests;
