//! Storage for artifact-git: the [`bucket`] abstraction (S3, a local directory, memory) and the
//! pack-only git object database built on it ([`odb`]).
//!
//! A repository is a prefix of a bucket laid out as a bare git repository: `HEAD`, `config`,
//! `packed-refs` and `objects/pack/pack-<hash>.{pack,idx}`, never loose objects. Packs are
//! immutable and content-addressed, so any number of servers may read and cache them; the
//! only mutable object is `packed-refs`, replaced by compare-and-swap (see the `refs` crate).
//!
//! [`layout`] names every key a repository (and its artifact) has, with who writes it and
//! under which precondition. Pushed packs are indexed by [`odb::index`] within limits and a
//! memory [`budget`], and their objects checked with git's [`fsck`] rules before anything is
//! published.
#![forbid(unsafe_code)]
#![warn(missing_docs, unreachable_pub)]

pub mod bucket;
pub mod budget;
pub mod format;
pub mod fsck;
pub mod layout;
pub mod odb;

pub use bucket::{Bucket, ETag, FsBucket, MemoryBucket, PutMode};
pub use odb::{ObjectDb, PackCache};
