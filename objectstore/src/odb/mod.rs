//! The pack-only object database of one repository.
//!
//! Objects live only in packs: a [`Pack`] is a `.pack` of entries with its `.idx`, visible
//! once the `.idx` exists, immutable and named after its checksum. [`ObjectDb`] is a snapshot
//! of a repository's visible packs, opened from local files (in place on a filesystem bucket,
//! from the process-wide [`PackCache`] otherwise): each `.idx` mapped by gix-pack, each
//! `.pack` read with positioned reads so that no pack's pages count in the process's memory;
//! a [`Reader`] decodes objects from it. On top: [`index`] turns a received pack into a stored one, [`walk`] answers
//! what a fetch must send and whether a push connects, [`generate`] writes packs for fetches,
//! [`build`] writes new objects, [`maintain`] merges packs. Everything but opening and
//! publishing is synchronous: callers run it on a blocking thread.

use gix_hash::ObjectId;
use gix_object::Kind;

use crate::bucket;

pub mod build;
mod cache;
mod db;
mod delta;
pub mod generate;
pub mod index;
pub mod maintain;
pub mod object;
mod pack;
mod pack_data;
mod reader;
mod stream;
pub mod walk;

pub use cache::PackCache;
pub use db::{Ambiguous, ObjectDb};
pub use index::Refused;
pub use object::{Commit, TreeEntry};
pub use pack::{Pack, Reach};
pub use reader::Reader;
pub use stream::ObjectStream;

/// What the object database can fail with.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The bucket failed.
    #[error(transparent)]
    Bucket(#[from] bucket::Error),
    /// A stored pack cannot be used.
    #[error("pack {pack}: {message}")]
    Pack {
        /// The pack's name.
        pack: String,
        /// What is wrong.
        message: String,
    },
    /// An object that should exist does not.
    #[error("object {0} is missing")]
    Missing(ObjectId),
    /// An object cannot be decoded.
    #[error("object {id} is corrupt: {message}")]
    Corrupt {
        /// The object.
        id: ObjectId,
        /// What is wrong.
        message: String,
    },
    /// An object is not of the kind its use needs.
    #[error("object {id} is a {actual}, expected a {expected}")]
    WrongKind {
        /// The object.
        id: ObjectId,
        /// The kind needed.
        expected: Kind,
        /// The kind it has.
        actual: Kind,
    },
    /// A pack a client sent (or a pack being written) is refused.
    #[error(transparent)]
    Refused(Refused),
    /// A request this database cannot serve (too many objects for one pack, ...).
    #[error("{0}")]
    Rejected(String),
    /// Local disk I/O.
    #[error("local I/O error: {0}")]
    Io(#[from] std::io::Error),
}

impl Error {
    /// Whether the failure is the storage's (the bucket, local disk, a stored pack that
    /// cannot be used) rather than the input's: trying again may succeed, and the writer is
    /// told so, not that what it sent was bad.
    pub fn is_storage(&self) -> bool {
        matches!(self, Error::Bucket(_) | Error::Io(_) | Error::Pack { .. })
    }
}

/// The result type of the object database.
pub type Result<T, E = Error> = std::result::Result<T, E>;
