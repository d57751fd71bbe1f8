//! Indexing a received pack, as git's `index-pack` does, with memory bounded by what the pack
//! weighs and by configured limits, never by what it declares.
//!
//! A pack is a header, a sequence of entries (whole objects, or deltas against another entry
//! by offset or against any object by id) and a checksum. Indexing it means finding every
//! object's id, which for a delta means applying it to its base, and writing an `.idx` that maps
//! ids to offsets. It runs in two passes so that a server can admit the expensive one only once
//! the cheap one has succeeded:
//!
//! 1. [`receive`] streams the pack from the client to a local file. Each entry's declared size
//!    is checked against [`Limits::max_object_bytes`] before a byte of it is inflated, and
//!    inflation stops at the declared size; whole objects are hashed as they stream and
//!    checked with git's fsck rules when small. Memory: a few buffers and ~50 bytes per entry,
//!    charged to the [`MemoryBudget`].
//! 2. [`Received::resolve`] applies the deltas, from the file, depth first from each base, on a
//!    few threads. Bases are kept for their deltas within [`Limits::base_cache_bytes`] per
//!    thread and re-derived when evicted (as git does), so memory is at most
//!    [`Received::working_set`], known before it starts. Bases a thin pack leaves out are taken
//!    from the repository and appended, so every stored pack is self-contained. Then the
//!    `.idx` is written and both files are named after the pack's checksum.
//!
//! gix-pack's `Bundle::write_to_directory` does the same job but maps the whole pack while it
//! resolves (peak memory grows with the pack), trusts declared sizes up to one allocation limit
//! (a 1 KB delta chain may expand to that limit at every level) and keeps its delta applier
//! and `.idx` encoder private; hence this module, built on gix-pack's entry header codec and
//! gix-hash's collision-detecting SHA-1.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use gix_hash::ObjectId;
use gix_object::Kind;

use super::{Error, Pack, Reach, Result};
use crate::bucket::{self, Bucket, PutMode};
use crate::budget::{MemoryBudget, OverBudget, Reservation};
use crate::fsck::{ObjectError, SpecialFile};
use crate::layout::{PackFile, RepoKeys};

mod idx;
mod receive;
mod resolve;

pub use receive::receive;

/// Limits on what a pack may hold.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// The largest object, delta result or delta, in bytes (at most 4 GiB - 1).
    pub max_object_bytes: u64,
    /// The most entries one pack may have.
    pub max_objects: u32,
    /// The longest delta chain.
    pub max_delta_depth: u32,
    /// Threads resolving deltas.
    pub threads: usize,
    /// Bytes of delta bases each thread keeps for later deltas.
    pub base_cache_bytes: u64,
    /// How long to wait for the memory budget before giving up.
    pub budget_wait: Duration,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_object_bytes: 100 << 20,
            max_objects: 10_000_000,
            max_delta_depth: 4096,
            threads: 2,
            base_cache_bytes: 32 << 20,
            budget_wait: Duration::from_secs(30),
        }
    }
}

impl Limits {
    /// Limits for packs this server wrote itself (maintenance): only what memory requires.
    pub fn trusted(max_object_bytes: u64) -> Self {
        Limits {
            max_object_bytes,
            max_objects: u32::MAX,
            max_delta_depth: u32::MAX,
            ..Limits::default()
        }
    }
}

/// Decides which small blobs [`Checks::keep_blob`] keeps.
pub type KeepBlob = dyn Fn(&[u8]) -> bool + Sync;

/// What to check and keep while indexing.
#[derive(Clone, Copy)]
pub struct Checks<'a> {
    /// Apply git's fsck rules to every commit, tree and tag (which findings refuse one).
    pub fsck: Option<crate::fsck::Rules>,
    /// Blobs up to [`KEPT_BLOB_MAX`] bytes for which this returns true are returned in
    /// [`Indexed::kept_blobs`] (Git LFS pointers, for one).
    pub keep_blob: Option<&'a KeepBlob>,
}

impl std::fmt::Debug for Checks<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Checks").field("fsck", &self.fsck).finish()
    }
}

impl Checks<'_> {
    /// Every check on, every fsck warning refused (git's `--strict`).
    pub const STRICT: Checks<'static> = Checks {
        fsck: Some(crate::fsck::Rules::Strict),
        keep_blob: None,
    };
    /// No checks (packs this server wrote from objects it had already checked).
    pub const NONE: Checks<'static> = Checks {
        fsck: None,
        keep_blob: None,
    };
}

/// The largest blob [`Checks::keep_blob`] is asked about.
pub const KEPT_BLOB_MAX: usize = 1024;

/// Why indexing refused a pack: what the client sent is wrong, or too big.
#[derive(Debug, thiserror::Error)]
pub enum Refused {
    /// The bytes are not a valid pack.
    #[error("invalid pack: {0}")]
    Invalid(String),
    /// An object or delta is larger than the limit.
    #[error(
        "object of {size} bytes exceeds the limit of {limit} bytes; store large files with Git LFS (git lfs track)"
    )]
    TooLarge {
        /// What the entry declares.
        size: u64,
        /// [`Limits::max_object_bytes`].
        limit: u64,
    },
    /// More entries than [`Limits::max_objects`].
    #[error("the pack holds {count} objects, more than the limit of {limit}")]
    TooManyObjects {
        /// What the pack header declares.
        count: u64,
        /// The limit.
        limit: u32,
    },
    /// A delta chain longer than [`Limits::max_delta_depth`].
    #[error("a delta chain is longer than the limit of {0}")]
    TooDeep(u32),
    /// An object breaks git's fsck rules.
    #[error(transparent)]
    Fsck(#[from] ObjectError),
    /// The memory budget is spent.
    #[error(transparent)]
    Busy(#[from] OverBudget),
}

impl From<Refused> for Error {
    fn from(r: Refused) -> Self {
        Error::Refused(r)
    }
}

pub(super) fn invalid(message: impl Into<String>) -> Error {
    Error::Refused(Refused::Invalid(message.into()))
}

/// The type of a pack entry.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum EntryKind {
    Object(Kind),
    OfsDelta,
    RefDelta,
}

/// One entry of a received pack. Kept small: a pack may hold millions.
#[derive(Debug, Clone, Copy)]
struct Entry {
    /// Where the entry starts in the pack.
    offset: u64,
    /// Bytes the entry's data inflates to: the object, or the delta instructions.
    size: u32,
    /// Bytes of the object: `size` for whole objects, the declared result for deltas.
    result_size: u32,
    crc32: u32,
    /// The base of a delta: an entry index (OFS), or an index into `ref_bases` (REF).
    base: u32,
    header_len: u8,
    kind: EntryKind,
    /// A whole commit, tree or tag too large to check while receiving: check when resolving.
    check_later: bool,
}

/// Bytes of bookkeeping per entry, charged to the budget: the entry, its id, and the child
/// lists and sort permutation built while resolving.
const ENTRY_BYTES: u64 = (std::mem::size_of::<Entry>() + 20 + 12) as u64;

/// A pack streamed to local disk by [`receive`], with every whole object hashed; its deltas
/// are not resolved yet.
#[derive(Debug)]
pub struct Received {
    dir: tempfile::TempDir,
    /// The pack without its trailing checksum.
    path: PathBuf,
    entries: Vec<Entry>,
    /// Ids of whole objects; null for deltas until resolved.
    ids: Vec<ObjectId>,
    ref_bases: Vec<ObjectId>,
    checksum: ObjectId,
    /// The largest declared size of any object, result or delta.
    largest: u64,
    kept_blobs: Vec<(ObjectId, Vec<u8>)>,
    specials: Vec<(SpecialFile, ObjectId)>,
    /// The budget held for `entries` and `ids`.
    _table: Reservation,
}

impl Received {
    /// How many objects the pack holds.
    pub fn num_objects(&self) -> usize {
        self.entries.len()
    }

    /// The largest object, delta result or delta the pack declares.
    pub fn largest_object(&self) -> u64 {
        self.largest
    }

    /// At most how many bytes [`Received::resolve`] allocates with `threads` threads (its
    /// bookkeeping was reserved while receiving). A thread holds its base cache, the base it
    /// applies a delta to, the delta and the result. Completing a thin pack happens after the
    /// threads are done, on one of them, and adds the 16 MiB cache of the reader its bases come
    /// from (a base may be as large as the largest size a delta of this pack declares).
    pub fn working_set(&self, limits: &Limits, threads: usize) -> u64 {
        let per_thread = limits.base_cache_bytes + 3 * self.largest + (1 << 20);
        // Only REF deltas can name a base the pack lacks.
        let thin = if self.ref_bases.is_empty() {
            0
        } else {
            16 << 20
        };
        threads.max(1) as u64 * per_thread + thin
    }

    /// Reserve the working set of [`Received::resolve`]: with as many threads as fit, at least
    /// one. Returns the thread count and the reservation.
    pub fn reserve_working_set(
        &self,
        limits: &Limits,
        budget: &Arc<MemoryBudget>,
    ) -> std::result::Result<(usize, Reservation), OverBudget> {
        let mut threads = limits.threads.max(1);
        while threads > 1 && self.working_set(limits, threads) > budget.limit() / 2 {
            threads -= 1;
        }
        let reservation = budget.reserve(self.working_set(limits, threads), limits.budget_wait)?;
        Ok((threads, reservation))
    }
}

/// A pack indexed in a local staging directory, named after its checksum, not yet visible to
/// anyone.
#[derive(Debug)]
pub struct Indexed {
    /// `pack-<checksum>`; `None` for an empty pack (git sends one when the server has every
    /// object already).
    pub name: Option<String>,
    /// How many objects the stored pack holds (thin-pack bases included).
    pub num_objects: usize,
    /// How many bases were taken from the repository to complete a thin pack.
    pub thin_bases: usize,
    /// Blobs [`Checks::keep_blob`] asked for.
    pub kept_blobs: Vec<(ObjectId, Vec<u8>)>,
    /// Blobs that trees name `.gitmodules` or `.gitattributes`: check them with
    /// [`crate::fsck::check_special_blob`] once every object can be read.
    pub specials: Vec<(SpecialFile, ObjectId)>,
    /// The hash that names the pack's objects.
    hash: gix_hash::Kind,
    paths: Option<(PathBuf, PathBuf)>,
    _dir: tempfile::TempDir,
}

impl Indexed {
    /// The local `.pack` and `.idx`, when the pack is not empty.
    pub fn paths(&self) -> Option<(&Path, &Path)> {
        self.paths.as_ref().map(|(p, i)| (p.as_path(), i.as_path()))
    }

    /// The pack, opened from the staging directory for lookups (connectivity checks); `None`
    /// for an empty pack.
    pub fn open(&self) -> Result<Option<Arc<Pack>>> {
        match (&self.name, &self.paths) {
            (Some(name), Some((pack, idx))) => Ok(Some(Arc::new(Pack::open(
                name,
                idx,
                pack,
                Reach::Unknown,
                self.hash,
            )?))),
            _ => Ok(None),
        }
    }

    /// Upload the `.pack` and its `.tips` record (when `reach` knows something), then the
    /// `.idx` that makes it visible. Packs are content-addressed, so finding a file already
    /// there means the same bytes are there (or, for `.tips`, an earlier record of the same
    /// pack, which is kept).
    pub async fn publish(&self, bucket: &dyn Bucket, keys: &RepoKeys, reach: &Reach) -> Result<()> {
        let (Some(name), Some((pack, idx))) = (&self.name, &self.paths) else {
            return Ok(());
        };
        let create = |r: std::result::Result<_, bucket::Error>| match r {
            Ok(_) | Err(bucket::Error::PreconditionFailed(_)) => Ok(()),
            Err(e) => Err(Error::Bucket(e)),
        };
        let pack_key = keys.pack_file(name, PackFile::Pack);
        let pack_upload = bucket.put_file(&pack_key, pack, PutMode::Create);
        // The record goes up beside the pack (nothing reads it before the `.idx` exists).
        let tips_upload = async {
            let Some(tips) = reach.encode() else {
                return Ok(());
            };
            // An exact record (maintenance, imports) is true of the same bytes written before
            // under a weaker one; a push's record never replaces one already there.
            let mode = match reach {
                Reach::Exactly(_) => PutMode::Overwrite,
                _ => PutMode::Create,
            };
            create(
                bucket
                    .put(&keys.pack_file(name, PackFile::Tips), tips.into(), mode)
                    .await,
            )
        };
        let (pack_done, tips_done) = tokio::join!(pack_upload, tips_upload);
        create(pack_done)?;
        tips_done?;
        create(
            bucket
                .put_file(&keys.pack_file(name, PackFile::Idx), idx, PutMode::Create)
                .await,
        )
    }
}

/// Index a local pack file (one this process wrote, or a test's): both passes, with the working
/// set reserved from `budget` in between.
pub fn index_file(
    path: &Path,
    staging: &Path,
    hash: gix_hash::Kind,
    limits: &Limits,
    budget: &Arc<MemoryBudget>,
    checks: Checks<'_>,
    bases: BaseSource<'_>,
) -> Result<Indexed> {
    let mut input = std::io::BufReader::with_capacity(1 << 20, std::fs::File::open(path)?);
    let received = receive(&mut input, staging, hash, limits, budget, checks)?;
    let (threads, _working_set) = received
        .reserve_working_set(limits, budget)
        .map_err(Refused::Busy)?;
    received.resolve(bases, limits, checks, threads)
}

/// Where a thin pack's missing bases come from: the repository's objects.
pub type BaseSource<'a> = &'a mut dyn FnMut(&gix_hash::oid) -> Result<Option<(Kind, Vec<u8>)>>;

#[cfg(test)]
mod tests;
