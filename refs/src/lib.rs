//! The ref container of a repository: `HEAD` plus one `packed-refs` object holding every ref,
//! replaced as a whole by compare-and-swap.
//!
//! That single object is the commit point of every push, so a [`RefTransaction`] is atomic
//! across any number of refs and any number of server replicas, with the bucket's conditional
//! write as the only coordination. [`RefStore::commit`] applies a transaction with git's rules:
//! each update must name the value the client saw ([`Refusal::FetchFirst`] otherwise), names
//! follow `git check-ref-format` ([`validate_ref_name`]), a ref and a ref below it cannot both
//! exist ([`Refusal::DirectoryConflict`]), and one push may not update a ref twice
//! ([`Refusal::MultipleUpdates`]).
#![forbid(unsafe_code)]
#![warn(missing_docs, unreachable_pub)]

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use gix_hash::ObjectId;
use objectstore::bucket::{self, Bucket, ETag, PutMode, Revalidated};
use objectstore::layout::RepoKeys;

mod name;
mod packed;

pub use name::{
    is_pull_request_ref, parse_pull_request_head, pull_request_head, validate_branch_name,
    validate_ref_name, InvalidName, PULL_REQUEST_REFS,
};
pub use packed::{
    deleted_marker, parse_packed_refs, write_packed_refs, PackedRefs, Quota, RefValue, Usage,
};

/// What reading or writing refs can fail with (a refused update is a [`Refusal`], not an error).
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The bucket failed.
    #[error(transparent)]
    Bucket(#[from] bucket::Error),
    /// The refs object exists but cannot be understood: never treated as "no refs".
    #[error("the refs of this repository are corrupt: {0}")]
    Corrupt(String),
    /// The repository (its `HEAD`) does not exist.
    #[error("repository not found")]
    NotFound,
    /// `init` of a repository that exists.
    #[error("repository already exists")]
    AlreadyExists,
    /// A branch name that is not a valid ref name.
    #[error("invalid ref name {0:?}")]
    InvalidName(String),
    /// Writing the refs failed in a way that leaves open whether the write took effect (a
    /// timeout after the request was sent): neither "done" nor "refused" would be true.
    #[error(
        "the refs write failed and its outcome is unknown ({0}); fetch to see whether it landed"
    )]
    Unknown(String),
}

/// The result type of this crate.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// All refs of a repository at one moment, with the tag to compare-and-swap against.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Snapshot {
    /// Every ref by full name.
    pub refs: BTreeMap<String, RefValue>,
    /// The ref `HEAD` points at (it may not exist yet).
    pub head: Option<String>,
    /// `None` when the refs object does not exist yet.
    pub etag: Option<ETag>,
    /// How many changes led to these refs.
    pub seq: u64,
    /// The SHA-1 of the refs object's bytes (empty when it does not exist): what names this
    /// state in the event log.
    pub content_id: String,
    /// No endpoint watches the repository: a change of these refs is committed without an
    /// event record ([`RefStore::watch`] ends that).
    pub unwatched: bool,
    /// The hash that names the repository's objects (see `objectstore::format`).
    pub object_hash: gix_hash::Kind,
    /// The bytes the repository stores, as the refs object counts them.
    pub usage: Usage,
    /// The repository's own limits.
    pub quota: Quota,
}

impl Snapshot {
    /// The target of a ref, if it exists.
    pub fn get(&self, name: &str) -> Option<ObjectId> {
        self.refs.get(name).map(|v| v.target)
    }

    /// The id that stands for "no object" in this repository (a ref that does not exist).
    pub fn null_id(&self) -> ObjectId {
        ObjectId::null(self.object_hash)
    }
}

/// One requested ref change.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RefUpdate {
    /// The full name, `refs/...`.
    pub name: String,
    /// The value the client saw; the null id means "must not exist".
    pub old: ObjectId,
    /// The new value; the null id deletes the ref.
    pub new: ObjectId,
    /// For a new annotated tag, the object it peels to (stored as git's `^` line).
    pub peeled: Option<ObjectId>,
}

/// A set of ref updates applied together.
#[derive(Debug, Clone, Default)]
pub struct RefTransaction {
    /// The updates, in the order the client sent them.
    pub updates: Vec<RefUpdate>,
    /// All or nothing: one refused update refuses every update.
    pub atomic: bool,
    /// How the repository's usage changes with it (a push adds its pack).
    pub usage: UsageChange,
    /// The repository's limits from now on (`None`: as they are).
    pub quota: Option<Quota>,
    /// Record the change in the journal even when no ref moves (a pull request closed or
    /// reopened is an event of a watched repository, though no ref changes): the refs
    /// object is written again under the next number. Ignored for an unwatched repository,
    /// whose changes are not recorded.
    pub announce: bool,
}

/// How a change moves the repository's usage.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum UsageChange {
    /// As it was.
    #[default]
    Keep,
    /// Plus (or minus) these bytes, never below zero.
    Add {
        /// Pack and index bytes.
        pack_bytes: i64,
        /// LFS bytes.
        lfs_bytes: i64,
    },
    /// Counted anew (by maintenance).
    Set(Usage),
}

impl UsageChange {
    /// The usage after this change of `before`.
    pub fn apply(self, before: Usage) -> Usage {
        let add = |v: u64, d: i64| match d >= 0 {
            true => v.saturating_add(d as u64),
            false => v.saturating_sub(d.unsigned_abs()),
        };
        match self {
            UsageChange::Keep => before,
            UsageChange::Add {
                pack_bytes,
                lfs_bytes,
            } => Usage {
                pack_bytes: add(before.pack_bytes, pack_bytes),
                lfs_bytes: add(before.lfs_bytes, lfs_bytes),
            },
            UsageChange::Set(usage) => usage,
        }
    }
}

/// Why one ref update was not applied. `Display` is git's own wording, what the client prints
/// after `[remote rejected]`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Refusal {
    /// The ref moved since the client read it.
    #[error("fetch first")]
    FetchFirst,
    /// The client expected the ref to exist, and it no longer does.
    #[error("stale info")]
    StaleInfo,
    /// The client expected to create the ref, and it exists.
    #[error("already exists")]
    AlreadyExists,
    /// A delete of a ref that does not exist.
    #[error("no such ref")]
    NoSuchRef,
    /// Another update of an atomic push was refused.
    #[error("atomic push failed")]
    AtomicPushFailed,
    /// The name breaks `git check-ref-format`.
    #[error("funny refname: {0}")]
    InvalidName(InvalidName),
    /// Another ref (stored, or created earlier in the same push) is this ref's directory or
    /// lies below it (`refs/heads/x` against `refs/heads/x/y`): a repository cannot hold both.
    #[error("cannot lock ref '{name}': '{existing}' exists; cannot create '{name}'")]
    DirectoryConflict {
        /// The refused ref.
        name: String,
        /// The ref it conflicts with.
        existing: String,
    },
    /// The push names this ref in more than one command.
    #[error("multiple updates for ref '{0}' not allowed")]
    MultipleUpdates(String),
    /// Every compare-and-swap attempt lost a race.
    #[error("too many concurrent pushes to this repository; try again")]
    Contention,
    /// An id of another object format than the repository's.
    #[error("object id of the wrong object format: this repository uses {0}")]
    ObjectFormat(gix_hash::Kind),
}

/// Outcome of one update: applied, or refused with a reason.
pub type UpdateResult = std::result::Result<(), Refusal>;

/// One ref that a change moved.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Moved {
    /// The ref.
    pub name: String,
    /// Its value before (null: created).
    pub before: ObjectId,
    /// Its value after (null: deleted).
    pub after: ObjectId,
}

/// A change of the refs, as the journal records it before it is committed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Change {
    /// The change's number: one more than the refs it starts from.
    pub seq: u64,
    /// The content id of the refs it starts from.
    pub prev: String,
    /// The content id of the refs it makes.
    pub id: String,
    /// The refs it moves, in the order they were asked for.
    pub moved: Vec<Moved>,
    /// When it creates a ref: the distinct values of the refs it leaves alone, as they were
    /// (at most [`MAX_OTHER_TIPS`]), so what is new on the created ref can be told later,
    /// whatever the other refs became since. Empty otherwise.
    pub other_tips: Vec<ObjectId>,
}

/// The most values of untouched refs a [`Change`] carries.
pub const MAX_OTHER_TIPS: usize = 1000;

/// Where changes are recorded before they are committed (the event log). A record whose
/// change then loses its compare-and-swap is never valid: readers follow the chain of records
/// back from the refs' current content id, and a losing record is not on it.
#[async_trait::async_trait]
pub trait Journal: Send + Sync {
    /// Store the record of `change` durably.
    async fn record(&self, change: &Change) -> std::result::Result<(), bucket::Error>;
}

/// How many times a transaction re-reads and retries after losing a compare-and-swap race.
pub const MAX_ATTEMPTS: u32 = 12;

/// How long a cached `HEAD` is used without a read. The refs themselves are revalidated on
/// every read; `HEAD` names the default branch, which a first push of another branch or a
/// rename changes: another replica may show the previous name for this long afterwards.
pub const HEAD_TTL: Duration = Duration::from_secs(1);

/// Parsed `HEAD`s and refs objects of any number of repositories, shared by the
/// [`RefStore`]s of one process: each read is revalidated by its tag (one round trip that
/// carries no body when nothing changed), so a cached copy is never served stale.
#[derive(Debug, Default)]
pub struct RefsCache {
    head: Revalidated<Option<String>>,
    packed: Revalidated<(PackedRefs, String)>,
}

/// The refs of one repository.
#[derive(Debug, Clone)]
pub struct RefStore {
    bucket: Arc<dyn Bucket>,
    keys: RepoKeys,
    cache: Option<Arc<RefsCache>>,
}

impl RefStore {
    /// The refs of the repository whose keys are `keys`, read afresh each time.
    pub fn new(bucket: Arc<dyn Bucket>, keys: RepoKeys) -> Self {
        RefStore {
            bucket,
            keys,
            cache: None,
        }
    }

    /// The refs of the repository whose keys are `keys`, kept parsed in `cache` between reads.
    pub fn cached(bucket: Arc<dyn Bucket>, keys: RepoKeys, cache: Arc<RefsCache>) -> Self {
        RefStore {
            bucket,
            keys,
            cache: Some(cache),
        }
    }

    /// Whether the repository exists (its `HEAD` does).
    pub async fn exists(&self) -> Result<bool> {
        match self.head().await {
            Ok(_) => Ok(true),
            Err(Error::NotFound) => Ok(false),
            Err(e) => Err(e),
        }
    }

    /// Create the files of an empty bare repository whose `HEAD` names `default_branch` and
    /// whose objects are named by `object_hash`. `HEAD` is written last and create-only: it
    /// marks the repository as existing.
    pub async fn init(&self, default_branch: &str, object_hash: gix_hash::Kind) -> Result<()> {
        let head_ref = format!("refs/heads/{default_branch}");
        validate_branch_name(default_branch)
            .map_err(|_| Error::InvalidName(default_branch.to_owned()))?;
        if self.exists().await? {
            return Err(Error::AlreadyExists);
        }
        for (key, data) in self.keys.init_files(object_hash) {
            self.bucket
                .put(&key, Bytes::from_static(data), PutMode::Overwrite)
                .await?;
        }
        // Nothing watches a new repository: its pushes record no events until an endpoint is
        // added.
        let empty = PackedRefs {
            unwatched: true,
            object_hash,
            ..PackedRefs::default()
        };
        match self
            .bucket
            .put(
                &self.keys.packed_refs(),
                Bytes::from(write_packed_refs(&empty)),
                PutMode::Create,
            )
            .await
        {
            Ok(_) | Err(bucket::Error::PreconditionFailed(_)) => {}
            Err(e) => return Err(e.into()),
        }
        match self
            .bucket
            .put(
                &self.keys.head(),
                Bytes::from(format!("ref: {head_ref}\n")),
                PutMode::Create,
            )
            .await
        {
            Ok(_) => Ok(()),
            Err(bucket::Error::PreconditionFailed(_)) => Err(Error::AlreadyExists),
            Err(e) => Err(e.into()),
        }
    }

    /// Read `HEAD` and every ref (both objects fetched concurrently: on S3 each is a round
    /// trip; with a [`RefsCache`], a revalidation).
    pub async fn snapshot(&self) -> Result<Snapshot> {
        // Without a shared cache, an empty one: every read is then a plain GET.
        let uncached;
        let cache = match &self.cache {
            Some(cache) => cache,
            None => {
                uncached = RefsCache::default();
                &uncached
            }
        };
        let head_key = self.keys.head();
        let refs_key = self.keys.packed_refs();
        let bucket = self.bucket.as_ref();
        let head_read = async {
            // `HEAD` changes only when a first push re-points an unborn default branch or the
            // default branch is renamed: re-read at most every HEAD_TTL (the refs, always).
            match cache.head.peek(&head_key, HEAD_TTL) {
                Some(head) => Ok(Ok(bucket::Read {
                    value: head,
                    etag: ETag(String::new()),
                })),
                None => {
                    cache
                        .head
                        .read(bucket, &head_key, |data| Ok::<_, Error>(parse_head(data)))
                        .await
                }
            }
        };
        let (head, packed) = tokio::join!(
            head_read,
            cache.packed.read(bucket, &refs_key, |data| {
                Ok::<_, Error>((parse_packed_refs(data)?, content_id(data)))
            }),
        );
        let head = match head {
            Ok(Ok(h)) => (*h.value).clone(),
            Ok(Err(e)) => return Err(e),
            Err(e) if e.is_not_found() => return Err(Error::NotFound),
            Err(e) => return Err(e.into()),
        };
        let (packed, etag, content_id) = match packed {
            // A deleted repository is not found, whatever its `HEAD` says.
            Ok(Ok(read)) if read.value.0.deleted => return Err(Error::NotFound),
            Ok(Ok(read)) => (read.value.0.clone(), Some(read.etag), read.value.1.clone()),
            Ok(Err(e)) => return Err(e),
            Err(e) if e.is_not_found() => (PackedRefs::default(), None, String::new()),
            Err(e) => return Err(e.into()),
        };
        Ok(Snapshot {
            refs: packed.refs,
            head,
            etag,
            seq: packed.seq,
            content_id,
            unwatched: packed.unwatched,
            object_hash: packed.object_hash,
            usage: packed.usage,
            quota: packed.quota,
        })
    }

    /// Write the refs object (`data`, the encoding of `packed`, whose content id is `id`) by
    /// `mode`, and keep what was written in the cache: this process's next read revalidates
    /// against it instead of fetching it again.
    async fn put_refs(
        &self,
        data: Vec<u8>,
        mode: PutMode,
        packed: PackedRefs,
        id: String,
    ) -> std::result::Result<ETag, bucket::Error> {
        let etag = self
            .bucket
            .put(&self.keys.packed_refs(), Bytes::from(data), mode)
            .await?;
        if let Some(cache) = &self.cache {
            cache
                .packed
                .remember(&self.keys.packed_refs(), etag.clone(), (packed, id));
        }
        Ok(etag)
    }

    /// The refs object as stored, and its tag (`None`: none written yet), bypassing the
    /// cache: what a deletion keeps aside to restore exactly.
    pub async fn raw(&self) -> Result<(Vec<u8>, Option<ETag>)> {
        match self.bucket.get(&self.keys.packed_refs()).await {
            Ok(got) => Ok((got.data.to_vec(), Some(got.etag))),
            Err(e) if e.is_not_found() => Ok((Vec::new(), None)),
            Err(e) => Err(e.into()),
        }
    }

    /// Whether the repository was deleted (its refs object carries the mark).
    pub async fn is_deleted(&self) -> Result<bool> {
        let (data, _) = self.raw().await?;
        Ok(!data.is_empty() && parse_packed_refs(&data)?.deleted)
    }

    /// Replace the refs object read as `expected` (`None`: there was none) by `data`, by
    /// compare-and-swap: a change that read the refs before loses its race. Delete marks the
    /// repository deleted (no refs, same number and mark, so that restoring the kept bytes
    /// gives the very refs object back, content id and event chain included); restore puts
    /// the kept bytes back. `Ok(false)`: the refs changed since they were read.
    pub async fn replace_raw(&self, data: Vec<u8>, expected: Option<ETag>) -> Result<bool> {
        let mode = match expected {
            Some(tag) => PutMode::Update(tag),
            None => PutMode::Create,
        };
        let packed = parse_packed_refs(&data)?;
        let id = content_id(&data);
        match self.put_refs(data, mode, packed, id).await {
            Ok(_) => Ok(true),
            Err(bucket::Error::PreconditionFailed(_)) => Ok(false),
            Err(e) => Err(e.into()),
        }
    }

    /// Make the repository watched, so that every later change is recorded in the journal,
    /// and return the refs from which it is: where a new endpoint starts. Called before an
    /// endpoint is added. An unwatched repository's refs are rewritten without the mark (same
    /// refs, same number) by compare-and-swap, so a change that read them before loses its
    /// race and is retried against the watched refs, with its record. A watched repository
    /// stays watched: removing the last endpoint leaves it so, because putting the mark back
    /// could not be ordered against an endpoint being added at the same time.
    pub async fn watch(&self) -> Result<Snapshot> {
        for attempt in 0..MAX_ATTEMPTS {
            let snapshot = self.snapshot().await?;
            if !snapshot.unwatched {
                return Ok(snapshot);
            }
            let watched = PackedRefs {
                refs: snapshot.refs.clone(),
                seq: snapshot.seq,
                unwatched: false,
                deleted: false,
                usage: snapshot.usage,
                quota: snapshot.quota,
                object_hash: snapshot.object_hash,
            };
            let data = write_packed_refs(&watched);
            let written_id = content_id(&data);
            let mode = match &snapshot.etag {
                Some(tag) => PutMode::Update(tag.clone()),
                None => PutMode::Create,
            };
            match self
                .put_refs(data, mode, watched.clone(), written_id.clone())
                .await
            {
                Ok(etag) => {
                    return Ok(Snapshot {
                        refs: watched.refs,
                        etag: Some(etag),
                        content_id: written_id,
                        unwatched: false,
                        ..snapshot
                    });
                }
                // Lost a race (or the answer to a write that landed was lost): read again;
                // the next snapshot says whether the mark is gone.
                Err(bucket::Error::PreconditionFailed(_)) => {
                    tokio::time::sleep(backoff(attempt)).await
                }
                Err(e) => return Err(e.into()),
            }
        }
        Err(Error::Unknown(
            "the refs kept changing while the repository was being watched".into(),
        ))
    }

    /// `HEAD` alone (the branch it names): whether the repository exists, for a request that
    /// needs no refs (a v2 capability advertisement), in one read.
    pub async fn head(&self) -> Result<Option<String>> {
        let key = self.keys.head();
        let read = match &self.cache {
            Some(cache) => cache
                .head
                .read(self.bucket.as_ref(), &key, |data| {
                    Ok::<_, Error>(parse_head(data))
                })
                .await
                .map(|r| r.map(|r| (*r.value).clone())),
            None => self.bucket.get(&key).await.map(|g| Ok(parse_head(&g.data))),
        };
        match read {
            Ok(head) => head,
            Err(e) if e.is_not_found() => Err(Error::NotFound),
            Err(e) => Err(e.into()),
        }
    }

    /// The repository's object format when its `HEAD` and refs were read within `max_age`
    /// (so it existed then), without a read: for answers that reveal nothing of the
    /// repository but its format (a v2 capability advertisement, whose next request reads
    /// the refs anyway).
    pub fn known_format(&self, max_age: Duration) -> Option<gix_hash::Kind> {
        let cache = self.cache.as_ref()?;
        cache.head.peek(&self.keys.head(), max_age)?;
        let packed = cache.packed.peek(&self.keys.packed_refs(), max_age)?;
        Some(packed.0.object_hash)
    }

    /// Point `HEAD` at `target` if it still names `expected` (a ref that does not exist):
    /// after a first push of another branch, clones then check that branch out.
    pub async fn repoint_unborn_head(&self, expected: &str, target: &str) -> Result<bool> {
        validate_ref_name(target).map_err(|_| Error::InvalidName(target.to_owned()))?;
        let current = self.bucket.get(&self.keys.head()).await?;
        if current.data.as_ref() != format!("ref: {expected}\n").as_bytes() {
            return Ok(false);
        }
        match self
            .bucket
            .put(
                &self.keys.head(),
                Bytes::from(format!("ref: {target}\n")),
                PutMode::Update(current.etag),
            )
            .await
        {
            Ok(etag) => {
                if let Some(cache) = &self.cache {
                    cache
                        .head
                        .remember(&self.keys.head(), etag, Some(target.to_owned()));
                }
                Ok(true)
            }
            Err(bucket::Error::PreconditionFailed(_)) => Ok(false),
            Err(e) => Err(e.into()),
        }
    }

    /// Whether the stored refs are the content whose id is `written` (`None`: they could not
    /// be read). Content ids include the change's sequence number, so equal ids mean this
    /// very write.
    async fn landed(&self, written: &str) -> Option<bool> {
        for attempt in 0..LANDED_READS {
            match self.bucket.get(&self.keys.packed_refs()).await {
                Ok(got) => return Some(content_id(&got.data) == written),
                Err(e) if e.is_not_found() => return Some(false),
                Err(_) => tokio::time::sleep(backoff(attempt)).await,
            }
        }
        None
    }

    /// Apply `tx`: each update whose old value matches the current one is applied, by one
    /// compare-and-swap of the refs object; on losing a race the current refs are re-read and
    /// every update is checked again.
    ///
    /// A write whose answer was a failure is checked against the refs as stored: if it took
    /// effect, the transaction is reported done; if that cannot be told, the error is
    /// [`Error::Unknown`], never a refusal.
    pub async fn commit(&self, tx: &RefTransaction) -> Result<Vec<UpdateResult>> {
        self.commit_with(tx, None).await
    }

    /// [`RefStore::commit`], recording the change in `journal` (when given) before the
    /// compare-and-swap that commits it.
    pub async fn commit_with(
        &self,
        tx: &RefTransaction,
        journal: Option<&dyn Journal>,
    ) -> Result<Vec<UpdateResult>> {
        self.commit_from(tx, journal, None).await
    }

    /// [`RefStore::commit_with`], trying first against `start`, refs the caller read a moment
    /// ago (a push reads them when its request arrives): a round trip saved when they are
    /// still current, and an ordinary lost race, re-read and retried, when they are not.
    pub async fn commit_from(
        &self,
        tx: &RefTransaction,
        journal: Option<&dyn Journal>,
        mut start: Option<Snapshot>,
    ) -> Result<Vec<UpdateResult>> {
        let precheck = precheck(tx);
        // The outcome of an attempt whose write was answered `PreconditionFailed`: usually a
        // lost race, but possibly this very write, retried by the client after it landed and
        // then built upon by another writer before it could be read back.
        let mut maybe_landed: Option<Vec<UpdateResult>> = None;
        for attempt in 0..MAX_ATTEMPTS {
            let read = match start.take() {
                Some(start) => Ok(start),
                None => self.snapshot().await,
            };
            let snapshot = match read {
                Ok(s) => s,
                // After a write that may have landed, a failure leaves the outcome open.
                Err(e) if maybe_landed.is_some() => return Err(Error::Unknown(e.to_string())),
                Err(e) => return Err(e),
            };
            if let Some(previous) = &maybe_landed {
                // The earlier write was one object holding every update it applied: if a ref
                // it moved is now where it put it, it landed (others may have moved other refs
                // on since), or someone wanted the same value, which is as good.
                let landed = tx.updates.iter().zip(previous).any(|(u, r)| {
                    r.is_ok()
                        && u.old != u.new
                        && snapshot.get(&u.name) == Some(u.new).filter(|n| !n.is_null())
                });
                if landed {
                    return Ok(previous.clone());
                }
            }
            let (refs, results) = apply(&snapshot.refs, snapshot.object_hash, tx, &precheck);
            let announced = tx.announce && journal.is_some() && !snapshot.unwatched;
            let usage = tx.usage.apply(snapshot.usage);
            let quota = tx.quota.unwrap_or(snapshot.quota);
            let all_refused = !results.is_empty() && results.iter().all(Result::is_err);
            let nothing_moves = all_refused
                || (refs == snapshot.refs && usage == snapshot.usage && quota == snapshot.quota);
            if nothing_moves && !(announced && results.iter().all(Result::is_ok)) {
                return Ok(results);
            }
            let mode = match &snapshot.etag {
                Some(tag) => PutMode::Update(tag.clone()),
                None => PutMode::Create,
            };
            let written = PackedRefs {
                refs,
                seq: snapshot.seq + 1,
                unwatched: snapshot.unwatched,
                deleted: false,
                usage,
                quota,
                object_hash: snapshot.object_hash,
            };
            let data = write_packed_refs(&written);
            let written_id = content_id(&data);
            // An unwatched repository's changes need no record: the compare-and-swap below
            // fails if an endpoint was added (and the mark taken away) since the snapshot.
            if let Some(journal) = journal.filter(|_| !snapshot.unwatched) {
                let moved: Vec<Moved> = tx
                    .updates
                    .iter()
                    .zip(&results)
                    .filter(|(_, r)| r.is_ok())
                    .map(|(u, _)| Moved {
                        name: u.name.clone(),
                        before: snapshot
                            .get(&u.name)
                            .unwrap_or_else(|| ObjectId::null(u.new.kind())),
                        after: u.new,
                    })
                    .collect();
                let other_tips = if moved.iter().any(|m: &Moved| m.before.is_null()) {
                    let mut tips: Vec<ObjectId> = snapshot
                        .refs
                        .iter()
                        .filter(|(name, _)| !moved.iter().any(|m| &m.name == *name))
                        .map(|(_, v)| v.target)
                        .collect();
                    tips.sort();
                    tips.dedup();
                    tips.truncate(MAX_OTHER_TIPS);
                    tips
                } else {
                    Vec::new()
                };
                journal
                    .record(&Change {
                        seq: snapshot.seq + 1,
                        prev: snapshot.content_id.clone(),
                        id: written_id.clone(),
                        moved,
                        other_tips,
                    })
                    .await
                    .map_err(|e| match maybe_landed {
                        Some(_) => Error::Unknown(e.to_string()),
                        None => e.into(),
                    })?;
            }
            match self.put_refs(data, mode, written, written_id.clone()).await {
                Ok(_) => return Ok(results),
                // A failure may come after the write took effect (a timeout once the request
                // was processed, or a client's retry of a write that had succeeded answered
                // `PreconditionFailed`): the refs as stored say which.
                Err(e) => match (self.landed(&written_id).await, &e) {
                    (Some(true), _) => {
                        tracing::debug!(attempt, error = %e, "the refs write failed after it took effect");
                        return Ok(results);
                    }
                    (Some(false), bucket::Error::PreconditionFailed(_)) => {
                        tracing::debug!(attempt, "lost the refs compare-and-swap; retrying");
                        maybe_landed = Some(results);
                        tokio::time::sleep(backoff(attempt)).await;
                    }
                    // Not stored, or not known: a write that failed otherwise may still land
                    // (a request that timed out is not a request that was dropped).
                    _ => return Err(Error::Unknown(e.to_string())),
                },
            }
        }
        if maybe_landed.is_some() {
            return Err(Error::Unknown(
                "the refs kept changing after a write that may have landed".into(),
            ));
        }
        Ok(precheck
            .into_iter()
            .map(|r| r.and(Err(Refusal::Contention)))
            .collect())
    }
}

/// The ref a `HEAD` file names (`None`: detached or unreadable, which the server never writes).
fn parse_head(data: &[u8]) -> Option<String> {
    std::str::from_utf8(data)
        .ok()
        .and_then(|h| h.trim_end().strip_prefix("ref: "))
        .map(str::to_owned)
}

/// Reads of the refs tried, after a failed write, to learn whether it took effect.
const LANDED_READS: u32 = 4;

/// The content id of a refs object: the SHA-1 of its bytes, in hex.
pub fn content_id(data: &[u8]) -> String {
    objectstore::bucket::content_etag(data).0
}

/// What can be refused without looking at the stored refs: invalid names and refs named twice.
fn precheck(tx: &RefTransaction) -> Vec<UpdateResult> {
    let mut count: HashMap<&str, usize> = HashMap::new();
    for u in &tx.updates {
        *count.entry(u.name.as_str()).or_default() += 1;
    }
    tx.updates
        .iter()
        .map(|u| {
            validate_ref_name(&u.name).map_err(Refusal::InvalidName)?;
            if count.get(u.name.as_str()).copied().unwrap_or(0) > 1 {
                return Err(Refusal::MultipleUpdates(u.name.clone()));
            }
            Ok(())
        })
        .collect()
}

/// The refs after `tx` is applied to `current`, and the outcome of each update.
fn apply(
    current: &BTreeMap<String, RefValue>,
    object_hash: gix_hash::Kind,
    tx: &RefTransaction,
    precheck: &[UpdateResult],
) -> (BTreeMap<String, RefValue>, Vec<UpdateResult>) {
    let mut refs = current.clone();
    let mut results = precheck.to_vec();
    let mut created: Vec<usize> = Vec::new();
    for (i, u) in tx.updates.iter().enumerate() {
        if results[i].is_err() {
            continue;
        }
        let ids = [Some(u.old), Some(u.new), u.peeled];
        if ids.into_iter().flatten().any(|id| id.kind() != object_hash) {
            results[i] = Err(Refusal::ObjectFormat(object_hash));
            continue;
        }
        let stored = current.get(&u.name).map(|v| v.target);
        let refusal = match stored {
            Some(cur) if cur == u.old => None,
            None if u.old.is_null() => None,
            Some(_) if u.old.is_null() => Some(Refusal::AlreadyExists),
            Some(_) => Some(Refusal::FetchFirst),
            None if u.new.is_null() => Some(Refusal::NoSuchRef),
            None => Some(Refusal::StaleInfo),
        };
        if let Some(r) = refusal {
            results[i] = Err(r);
            continue;
        }
        if u.new.is_null() {
            refs.remove(&u.name);
        } else {
            if stored.is_none() {
                created.push(i);
            }
            refs.insert(
                u.name.clone(),
                RefValue {
                    target: u.new,
                    peeled: u.peeled,
                },
            );
        }
    }
    // A created ref may not be the directory of another ref, nor lie below one. As in git, the
    // refs are judged as they would be afterwards (deleting `x` and creating `x/y` in one push
    // is fine), and among the refs a push creates the first one wins.
    for &i in &created {
        refs.remove(&tx.updates[i].name);
    }
    for &i in &created {
        let u = &tx.updates[i];
        match directory_conflict(&refs, &u.name) {
            Some(existing) => {
                results[i] = Err(Refusal::DirectoryConflict {
                    name: u.name.clone(),
                    existing,
                })
            }
            None => {
                refs.insert(
                    u.name.clone(),
                    RefValue {
                        target: u.new,
                        peeled: u.peeled,
                    },
                );
            }
        }
    }
    if tx.atomic && results.iter().any(Result::is_err) {
        let results = results
            .into_iter()
            .map(|r| r.and(Err(Refusal::AtomicPushFailed)))
            .collect();
        return (current.clone(), results);
    }
    (refs, results)
}

/// A ref of `refs` that is a directory of `name` (`refs/heads/x` for `refs/heads/x/y`) or lies
/// below it (`refs/heads/x/y` for `refs/heads/x`).
fn directory_conflict(refs: &BTreeMap<String, RefValue>, name: &str) -> Option<String> {
    let mut end = 0;
    while let Some(slash) = name[end..].find('/') {
        end += slash;
        if refs.contains_key(&name[..end]) {
            return Some(name[..end].to_owned());
        }
        end += 1;
    }
    let below = format!("{name}/");
    refs.range(below.clone()..)
        .next()
        .filter(|(k, _)| k.starts_with(&below))
        .map(|(k, _)| k.clone())
}

/// Exponential backoff with jitter, so that racing replicas spread out.
fn backoff(attempt: u32) -> Duration {
    let base = 5u64 << attempt.min(6);
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.subsec_nanos() as u64);
    Duration::from_millis(base + nanos % (base + 1))
}

#[cfg(test)]
mod tests {
    use super::*;
    use objectstore::MemoryBucket;

    fn id(n: u8) -> ObjectId {
        ObjectId::from_bytes_or_panic(&[n; 20])
    }

    fn update(name: &str, old: ObjectId, new: ObjectId) -> RefUpdate {
        RefUpdate {
            name: name.into(),
            old,
            new,
            peeled: None,
        }
    }

    fn null() -> ObjectId {
        ObjectId::null(gix_hash::Kind::Sha1)
    }

    fn store(bucket: Arc<dyn Bucket>) -> RefStore {
        RefStore::new(bucket, RepoKeys::at("ws/artifacts/a/git/"))
    }

    async fn commit(
        store: &RefStore,
        updates: Vec<RefUpdate>,
        atomic: bool,
    ) -> Result<Vec<UpdateResult>> {
        store
            .commit(&RefTransaction {
                updates,
                atomic,
                ..RefTransaction::default()
            })
            .await
    }

    #[tokio::test]
    async fn create_update_delete_and_stale() -> Result<()> {
        let store = store(Arc::new(MemoryBucket::new()));
        store.init("main", gix_hash::Kind::Sha1).await?;
        assert!(matches!(
            store.init("main", gix_hash::Kind::Sha1).await,
            Err(Error::AlreadyExists)
        ));
        let snap = store.snapshot().await?;
        assert_eq!(snap.head.as_deref(), Some("refs/heads/main"));
        assert!(snap.refs.is_empty());

        let r = commit(
            &store,
            vec![update("refs/heads/main", null(), id(1))],
            false,
        )
        .await?;
        assert_eq!(r, vec![Ok(())]);
        let r = commit(
            &store,
            vec![
                update("refs/heads/main", id(9), id(2)),
                update("refs/heads/dev", null(), id(3)),
                update("refs/heads/gone", id(4), id(5)),
                update("refs/heads/gone", id(4), null()),
            ],
            false,
        )
        .await?;
        assert_eq!(
            r,
            vec![
                Err(Refusal::FetchFirst),
                Ok(()),
                Err(Refusal::MultipleUpdates("refs/heads/gone".into())),
                Err(Refusal::MultipleUpdates("refs/heads/gone".into())),
            ]
        );
        let r = commit(
            &store,
            vec![
                update("refs/heads/x", id(4), id(5)),
                update("refs/heads/y", id(4), null()),
                update("refs/heads/main", null(), id(5)),
            ],
            false,
        )
        .await?;
        assert_eq!(
            r,
            vec![
                Err(Refusal::StaleInfo),
                Err(Refusal::NoSuchRef),
                Err(Refusal::AlreadyExists)
            ]
        );
        let r = commit(
            &store,
            vec![
                update("refs/heads/dev", id(3), null()),
                update("refs/heads/main", id(9), id(2)),
            ],
            true,
        )
        .await?;
        assert_eq!(
            r,
            vec![Err(Refusal::AtomicPushFailed), Err(Refusal::FetchFirst)]
        );
        let snap = store.snapshot().await?;
        assert_eq!(snap.get("refs/heads/main"), Some(id(1)));
        assert_eq!(snap.get("refs/heads/dev"), Some(id(3)));
        let r = commit(
            &store,
            vec![update("refs/heads/bad..name", null(), id(1))],
            false,
        )
        .await?;
        assert!(matches!(r[0], Err(Refusal::InvalidName(_))));
        assert_eq!(
            Refusal::MultipleUpdates("refs/heads/x".into()).to_string(),
            "multiple updates for ref 'refs/heads/x' not allowed"
        );
        Ok(())
    }

    #[tokio::test]
    async fn directory_and_file_conflicts_are_refused() -> Result<()> {
        let store = store(Arc::new(MemoryBucket::new()));
        store.init("main", gix_hash::Kind::Sha1).await?;
        // Within one push, as git does: the first one is created, the later one refused.
        let r = commit(
            &store,
            vec![
                update("refs/heads/x", null(), id(1)),
                update("refs/heads/x/y", null(), id(2)),
                update("refs/heads/main", null(), id(3)),
            ],
            false,
        )
        .await?;
        assert_eq!(
            r,
            vec![
                Ok(()),
                Err(Refusal::DirectoryConflict {
                    name: "refs/heads/x/y".into(),
                    existing: "refs/heads/x".into()
                }),
                Ok(()),
            ]
        );
        assert_eq!(store.snapshot().await?.refs.len(), 2);
        commit(&store, vec![update("refs/heads/x", id(1), null())], false).await?;
        // Against stored refs, in both directions.
        commit(
            &store,
            vec![update("refs/heads/a/b/c", null(), id(1))],
            false,
        )
        .await?;
        let r = commit(
            &store,
            vec![
                update("refs/heads/a", null(), id(1)),
                update("refs/heads/a/b", null(), id(1)),
                update("refs/heads/main/sub", null(), id(1)),
                update("refs/heads/a/bc", null(), id(1)),
            ],
            false,
        )
        .await?;
        assert_eq!(
            r[0],
            Err(Refusal::DirectoryConflict {
                name: "refs/heads/a".into(),
                existing: "refs/heads/a/b/c".into()
            })
        );
        assert!(matches!(r[1], Err(Refusal::DirectoryConflict { .. })));
        assert_eq!(
            r[2],
            Err(Refusal::DirectoryConflict {
                name: "refs/heads/main/sub".into(),
                existing: "refs/heads/main".into()
            })
        );
        assert_eq!(r[3], Ok(()));
        assert_eq!(
            r[2].clone().unwrap_err().to_string(),
            "cannot lock ref 'refs/heads/main/sub': 'refs/heads/main' exists; cannot create 'refs/heads/main/sub'"
        );
        // Deleting the file and creating below it in one push leaves no conflict.
        let r = commit(
            &store,
            vec![
                update("refs/heads/main", id(3), null()),
                update("refs/heads/main/sub", null(), id(1)),
            ],
            false,
        )
        .await?;
        assert_eq!(r, vec![Ok(()), Ok(())]);
        Ok(())
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
    async fn racing_transactions_lose_nothing() -> Result<()> {
        let store = store(Arc::new(MemoryBucket::new()));
        store.init("main", gix_hash::Kind::Sha1).await?;
        let mut tasks = Vec::new();
        for t in 0..8u8 {
            let store = store.clone();
            tasks.push(tokio::spawn(async move {
                let mut applied = 0;
                for n in 0..10u8 {
                    let name = format!("refs/heads/t{t}-{n}");
                    let r = commit(&store, vec![update(&name, null(), id(n + 1))], false).await?;
                    if r[0].is_ok() {
                        applied += 1;
                    }
                }
                Ok::<_, Error>(applied)
            }));
        }
        let mut total = 0;
        for t in tasks {
            total += t.await.map_err(|e| Error::Corrupt(e.to_string()))??;
        }
        assert_eq!(total, 80);
        assert_eq!(store.snapshot().await?.refs.len(), 80);
        Ok(())
    }

    #[tokio::test]
    async fn corrupt_refs_are_an_error() -> Result<()> {
        let bucket: Arc<dyn Bucket> = Arc::new(MemoryBucket::new());
        let store = store(bucket.clone());
        store.init("main", gix_hash::Kind::Sha1).await?;
        bucket
            .put(
                "ws/artifacts/a/git/packed-refs",
                Bytes::from_static(b"garbage line\n"),
                PutMode::Overwrite,
            )
            .await?;
        assert!(matches!(store.snapshot().await, Err(Error::Corrupt(_))));
        Ok(())
    }
}
