//! Artifact versions and git history as one history.
//!
//! The artifact service stores each version of an artifact as a folder of files, `v{N}/`, and a
//! manifest, `v{N}.json`, beside the artifact's git repository (`git/`). With versions in step
//! (opt-in per repository) the two move together:
//!
//! - **git → versions** ([`publish`]): a push that moves the default branch becomes version
//!   `v{N+1}`: the tip's files are written under `v{N+1}/` (files stored in Git LFS are copied
//!   inside the bucket from their LFS object, never downloaded), then a manifest that names the
//!   commit ([`manifest::Manifest`], `git.published_by = "artifact-git"`). The number is taken
//!   by creating the manifest first with `If-None-Match: *` (marked incomplete), so a version
//!   the service writes at the same time is never overwritten; the files and the final
//!   manifest are idempotent writes, so an interrupted publish is finished by running it again.
//! - **versions → git** ([`files`]): `commit_version` (and `enable_git`'s import) list a
//!   version's files and commit them on the default branch.
//!
//! Neither direction loops: the event of a commit made from a version carries its source, and
//! the publisher skips it; a version whose manifest says it was published from git is never
//! committed back ([`manifest::published_commit`]). Who publishes, and when, is the push event
//! dispatcher's business (one replica at a time, by lease); this crate is the mapping.
#![forbid(unsafe_code)]
#![warn(missing_docs, unreachable_pub)]

pub mod files;
pub mod manifest;
pub mod publish;

/// Why a version could not be read or written.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The bucket failed.
    #[error(transparent)]
    Bucket(#[from] objectstore::bucket::Error),
    /// The commit or its files could not be read.
    #[error(transparent)]
    History(#[from] history::Error),
    /// Reading objects failed.
    #[error(transparent)]
    Objects(#[from] objectstore::odb::Error),
    /// A manifest could not be written or read.
    #[error("manifest: {0}")]
    Manifest(String),
    /// A blocking task failed.
    #[error("task failed: {0}")]
    Task(String),
    /// No version number could be taken (the service kept taking them).
    #[error("no free version number after {0} tries")]
    NoFreeVersion(u32),
}

/// The result of a version operation.
pub type Result<T, E = Error> = std::result::Result<T, E>;
