//! Git LFS for artifact-git: large files stored beside the repository in the bucket, moved
//! between clients and the bucket directly where the bucket allows it.
//!
//! A file tracked by Git LFS is committed as a small [`Pointer`] blob naming the file's SHA-256
//! ([`Oid`]) and size; the file itself travels over the LFS API, which `git lfs` finds at
//! `<clone URL>/info/lfs`. [`api`] holds the API's JSON types. [`Store`] answers batch requests:
//! on S3 with presigned URLs, so the bytes never pass through the server (an upload goes to a
//! quarantine key and a `verify` call checks its hash and size in the bucket before it is
//! copied to its final key), on a local directory with URLs of the server itself, which hashes
//! what it receives before writing it. No object is ever stored under an oid it does not hash
//! to. [`Locks`] implements file locking, one small object per locked path written by
//! compare-and-swap, so two replicas never grant the same lock.
#![forbid(unsafe_code)]
#![warn(missing_docs, unreachable_pub)]

pub mod api;
pub mod attributes;
mod locks;
mod oid;
mod pointer;
mod store;

pub use locks::{Lock, LockError, Locks, MAX_PAGE};
pub use oid::Oid;
pub use pointer::{Pointer, MAX_POINTER_SIZE};
pub use store::{
    Action, Links, MintToken, ObjectPlan, Store, StoreError, Transfer, UrlSigner, Verified,
    VerifyError, UNVERIFIED_UPLOADS_KEPT_FOR,
};
