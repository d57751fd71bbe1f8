//! The pack-only object database of one repository.
//!
//! Objects live only in packs (`objects/pack/pack-<hash>.pack` with its `.idx`); a pack becomes
//! visible when its `.idx` exists. [`ObjectDb`] holds a snapshot of the visible packs, opened with
//! gix-pack from local files (in place on a filesystem bucket, from the [`PackCache`] otherwise),
//! and answers lookups across them. Walks ([`walk`]), ingestion ([`ingest`]) and pack generation
//! ([`generate`]) are built on it. Everything but opening is synchronous: callers run it on a
//! blocking thread, where pack files are memory-mapped.

use std::cell::RefCell;
use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Arc, Mutex, OnceLock};

use gix_hash::{oid, ObjectId};
use gix_object::Kind;

use crate::bucket::{self, Bucket};

pub mod build;
pub mod generate;
pub mod ingest;
pub mod maintain;
pub mod object;
pub mod walk;

pub use object::{Commit, TreeEntry};

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error(transparent)]
    Bucket(#[from] bucket::Error),
    #[error("pack {pack}: {message}")]
    Pack { pack: String, message: String },
    #[error("object {0} is missing")]
    Missing(ObjectId),
    #[error("object {id} is corrupt: {message}")]
    Corrupt { id: ObjectId, message: String },
    #[error("object {id} is a {actual}, expected a {expected}")]
    WrongKind {
        id: ObjectId,
        expected: Kind,
        actual: Kind,
    },
    #[error("invalid pack: {0}")]
    InvalidPack(String),
    #[error("{0}")]
    Rejected(String),
    #[error("local I/O error: {0}")]
    Io(#[from] std::io::Error),
}

pub type Result<T, E = Error> = std::result::Result<T, E>;

/// One immutable pack with its index, opened from local files.
pub struct Pack {
    /// `pack-<hex>`, the common stem of the `.pack` and `.idx` keys.
    pub name: String,
    pub bundle: gix_pack::Bundle,
    /// Unique in this process, so decoded-object caches can key on it.
    pub id: u32,
    /// (offset, index position) of every entry, sorted by offset: the end of each entry's
    /// compressed data is the next entry's offset, and OFS deltas name their base by offset.
    by_offset: OnceLock<Vec<(u64, u32)>>,
}

impl std::fmt::Debug for Pack {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Pack").field("name", &self.name).finish()
    }
}

static NEXT_PACK_ID: AtomicU32 = AtomicU32::new(1);

impl Pack {
    /// Open a pack from its local `.idx` path (the `.pack` beside it).
    pub fn open(name: &str, idx: &Path, pack: &Path) -> Result<Self> {
        let err = |e: gix_error::Error| Error::Pack {
            pack: name.to_owned(),
            message: format!("{e:#}"),
        };
        let index = gix_pack::index::File::at(idx, gix_hash::Kind::Sha1).map_err(err)?;
        let data = gix_pack::data::File::at(pack, gix_hash::Kind::Sha1).map_err(err)?;
        if index.num_objects() != data.num_objects() {
            return Err(Error::Pack {
                pack: name.to_owned(),
                message: "index and pack disagree on the number of objects".into(),
            });
        }
        Ok(Pack {
            name: name.to_owned(),
            bundle: gix_pack::Bundle { pack: data, index },
            id: NEXT_PACK_ID.fetch_add(1, Ordering::Relaxed),
            by_offset: OnceLock::new(),
        })
    }

    pub fn num_objects(&self) -> u32 {
        self.bundle.index.num_objects()
    }

    pub fn lookup(&self, id: &oid) -> Option<u64> {
        let idx = self.bundle.index.lookup(id)?;
        Some(self.bundle.index.pack_offset_at_index(idx))
    }

    pub fn by_offset(&self) -> &[(u64, u32)] {
        self.by_offset.get_or_init(|| {
            let index = &self.bundle.index;
            let mut v: Vec<(u64, u32)> = (0..index.num_objects())
                .map(|i| (index.pack_offset_at_index(i), i))
                .collect();
            v.sort_unstable();
            v
        })
    }

    /// The position in [`Pack::by_offset`] of the entry at `offset`, if an entry starts there.
    pub fn position_at(&self, offset: u64) -> Option<usize> {
        self.by_offset()
            .binary_search_by_key(&offset, |(o, _)| *o)
            .ok()
    }

    /// The id of the entry at `offset`, if an entry starts there.
    pub fn id_at_offset(&self, offset: u64) -> Option<ObjectId> {
        let pos = self.position_at(offset)?;
        Some(
            self.bundle
                .index
                .oid_at_index(self.by_offset()[pos].1)
                .to_owned(),
        )
    }

    /// Where the entry starting at `offset` ends: the next entry or the trailing checksum.
    pub fn entry_end(&self, offset: u64) -> u64 {
        let v = self.by_offset();
        let pos = v.partition_point(|(o, _)| *o <= offset);
        match v.get(pos) {
            Some((next, _)) => *next,
            None => self.bundle.pack.pack_end() as u64,
        }
    }

    /// The pack's bytes, memory-mapped.
    pub fn data(&self) -> &[u8] {
        self.bundle
            .pack
            .entry_slice(0..self.bundle.pack.data_len() as u64)
            .unwrap_or_default()
    }

    pub fn path(&self) -> &Path {
        self.bundle.pack.path()
    }

    /// The pack's bytes from `offset` on, read from the file, so streaming a whole pack adds
    /// no mapped pages to the process. A pack that maintenance deleted after this request
    /// listed it is read from the mapping, which outlives the file.
    pub fn read_from(&self, offset: u64) -> Result<Box<dyn std::io::Read + Send + '_>> {
        use std::io::{Seek, SeekFrom};
        match std::fs::File::open(self.path()) {
            Ok(mut file) => {
                file.seek(SeekFrom::Start(offset))?;
                Ok(Box::new(file))
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                let data = self.data();
                let start = usize::try_from(offset)
                    .unwrap_or(usize::MAX)
                    .min(data.len());
                Ok(Box::new(&data[start..]))
            }
            Err(e) => Err(e.into()),
        }
    }
}

/// Local copies of packs for buckets that are not a local directory, the opened packs of every
/// repository, and briefly each repository's pack list; shared by all requests of the process.
///
/// Packs are immutable and content-addressed, so an opened pack is never stale. Copies of
/// remote packs are kept within `max_bytes`: past it, the least recently used packs that no
/// request holds are dropped from memory and disk. The pack list is the only thing that can
/// go stale; it is kept for [`PackCache::LIST_TTL`] at most, and readers re-list when an object
/// they were promised is missing.
#[derive(Debug)]
pub struct PackCache {
    dir: Option<PathBuf>,
    /// Without `dir`: a temporary directory, made on first use and removed with the cache, so
    /// a short-lived command (`maintain` from cron) leaves nothing behind.
    temp: Mutex<Option<tempfile::TempDir>>,
    max_bytes: u64,
    state: Mutex<CacheState>,
    /// Parsed commits by id, shared by every repository of the process: a commit's content is
    /// its id, and walks read the same recent commits fetch after fetch (through delta chains
    /// when the pack deltifies commits). Emptied when full.
    commits: Mutex<HashMap<ObjectId, object::Commit>>,
}

#[derive(Debug, Default)]
struct CacheState {
    open: HashMap<String, CachedPack>,
    /// Bytes of remote packs copied to the cache directory.
    cached_bytes: u64,
    clock: u64,
    lists: HashMap<String, (std::time::Instant, Vec<(String, String)>)>,
}

#[derive(Debug)]
struct CachedPack {
    pack: Arc<Pack>,
    /// Local copy (for eviction); `None` when read in place from a filesystem bucket.
    copy: Option<(PathBuf, PathBuf, u64)>,
    last_used: u64,
}

impl Default for PackCache {
    fn default() -> Self {
        PackCache::new(None, u64::MAX)
    }
}

impl PackCache {
    /// How long a listing of a repository's packs is reused.
    pub const LIST_TTL: std::time::Duration = std::time::Duration::from_secs(2);

    /// `dir` is where remote packs are copied to (a temporary directory without it).
    pub fn new(dir: Option<PathBuf>, max_bytes: u64) -> Self {
        PackCache {
            dir,
            temp: Mutex::new(None),
            commits: Mutex::new(HashMap::new()),
            max_bytes,
            state: Mutex::new(CacheState::default()),
        }
    }

    fn dir(&self) -> Result<PathBuf> {
        if let Some(dir) = &self.dir {
            std::fs::create_dir_all(dir)?;
            return Ok(dir.clone());
        }
        let mut temp = self.temp.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(t) = temp.as_ref() {
            return Ok(t.path().to_owned());
        }
        let t = tempfile::Builder::new()
            .prefix("artifact-git-cache-")
            .tempdir()?;
        let dir = t.path().to_owned();
        *temp = Some(t);
        Ok(dir)
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, CacheState> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// How many parsed commits are kept (about 100 bytes each).
    const MAX_COMMITS: usize = 100_000;

    fn cached_commit(&self, id: &oid) -> Option<object::Commit> {
        let commits = self.commits.lock().unwrap_or_else(|p| p.into_inner());
        commits.get(id).cloned()
    }

    fn remember_commit(&self, id: &oid, commit: &object::Commit) {
        let mut commits = self.commits.lock().unwrap_or_else(|p| p.into_inner());
        if commits.len() >= Self::MAX_COMMITS {
            commits.clear();
        }
        commits.insert(id.to_owned(), commit.clone());
    }

    /// Bytes of remote packs currently copied locally.
    pub fn cached_bytes(&self) -> u64 {
        self.lock().cached_bytes
    }

    async fn open(&self, bucket: &dyn Bucket, stem_key: &str, name: &str) -> Result<Arc<Pack>> {
        {
            let mut state = self.lock();
            state.clock += 1;
            let now = state.clock;
            if let Some(entry) = state.open.get_mut(stem_key) {
                entry.last_used = now;
                return Ok(entry.pack.clone());
            }
        }
        let idx_key = format!("{stem_key}.idx");
        let pack_key = format!("{stem_key}.pack");
        let (idx, pack, copy) = match (bucket.local_path(&idx_key), bucket.local_path(&pack_key)) {
            (Some(i), Some(p)) => (i, p, None),
            _ => {
                let dir = self.dir()?;
                let local = dir.join(stem_key.replace('/', "%"));
                let idx = local.with_extension("idx");
                let pack = local.with_extension("pack");
                let mut bytes = 0;
                for (key, path) in [(&pack_key, &pack), (&idx_key, &idx)] {
                    if !path.exists() {
                        // Concurrent downloads of one pack each use their own temporary name;
                        // the renames put identical bytes in place.
                        let n = NEXT_PACK_ID.fetch_add(1, Ordering::Relaxed);
                        let tmp = path.with_extension(format!("tmp-{}-{n}", std::process::id()));
                        if let Err(e) = bucket.get_to_file(key, &tmp).await {
                            let _ = std::fs::remove_file(&tmp);
                            return Err(e.into());
                        }
                        std::fs::rename(&tmp, path)?;
                    }
                    bytes += std::fs::metadata(path)?.len();
                }
                (idx.clone(), pack.clone(), Some((idx, pack, bytes)))
            }
        };
        let opened = Arc::new(Pack::open(name, &idx, &pack)?);
        let mut state = self.lock();
        if let Some(existing) = state.open.get(stem_key) {
            return Ok(existing.pack.clone());
        }
        state.clock += 1;
        let now = state.clock;
        if let Some((_, _, bytes)) = &copy {
            state.cached_bytes += bytes;
        }
        state.open.insert(
            stem_key.to_owned(),
            CachedPack {
                pack: opened.clone(),
                copy,
                last_used: now,
            },
        );
        self.evict(&mut state);
        Ok(opened)
    }

    /// Drop least recently used local copies nobody holds until within `max_bytes`.
    fn evict(&self, state: &mut CacheState) {
        while state.cached_bytes > self.max_bytes {
            let victim = state
                .open
                .iter()
                .filter(|(_, e)| e.copy.is_some() && Arc::strong_count(&e.pack) == 1)
                .min_by_key(|(_, e)| e.last_used)
                .map(|(k, _)| k.clone());
            let Some(key) = victim else { break };
            if let Some(CachedPack {
                copy: Some((idx, pack, bytes)),
                ..
            }) = state.open.remove(&key)
            {
                let _ = std::fs::remove_file(idx);
                let _ = std::fs::remove_file(pack);
                state.cached_bytes = state.cached_bytes.saturating_sub(bytes);
            }
        }
    }

    /// The (stem key, name) of every visible pack of the repository at `prefix`.
    async fn list(
        &self,
        bucket: &dyn Bucket,
        prefix: &str,
        max_age: std::time::Duration,
    ) -> Result<Vec<(String, String)>> {
        if let Some((at, list)) = self.lock().lists.get(prefix) {
            if at.elapsed() <= max_age {
                return Ok(list.clone());
            }
        }
        let dir = format!("{prefix}objects/pack/");
        let listing = bucket.list(&dir).await?;
        let keys: std::collections::HashSet<&str> =
            listing.iter().map(|m| m.key.as_str()).collect();
        let mut packs = Vec::new();
        for meta in &listing {
            let Some(stem) = meta.key.strip_suffix(".idx") else {
                continue;
            };
            let Some(name) = stem.strip_prefix(&dir) else {
                continue;
            };
            // A pack maintenance replaced is skipped: the pack that replaced it, stored before
            // the marker was written, holds everything of it worth keeping.
            if name.starts_with("pack-")
                && keys.contains(format!("{stem}.pack").as_str())
                && !keys.contains(format!("{stem}.replaced").as_str())
            {
                packs.push((stem.to_owned(), name.to_owned()));
            }
        }
        let mut state = self.lock();
        if state.lists.len() > 10_000 {
            state.lists.clear();
        }
        state.lists.insert(
            prefix.to_owned(),
            (std::time::Instant::now(), packs.clone()),
        );
        Ok(packs)
    }
}

/// The objects of one repository: a snapshot of its visible packs.
#[derive(Debug, Clone)]
pub struct ObjectDb {
    bucket: Arc<dyn Bucket>,
    /// The repository's key prefix, ending in `/`.
    prefix: String,
    cache: Arc<PackCache>,
    packs: Arc<Vec<Arc<Pack>>>,
}

impl ObjectDb {
    /// Open the visible packs of the repository at `prefix` (ending in `/`), from a pack list
    /// at most [`PackCache::LIST_TTL`] old.
    pub async fn open(
        bucket: Arc<dyn Bucket>,
        prefix: &str,
        cache: Arc<PackCache>,
    ) -> Result<Self> {
        Self::open_with(bucket, prefix, cache, PackCache::LIST_TTL).await
    }

    /// Open from a pack list at most `max_age` old (zero: list now).
    pub async fn open_with(
        bucket: Arc<dyn Bucket>,
        prefix: &str,
        cache: Arc<PackCache>,
        max_age: std::time::Duration,
    ) -> Result<Self> {
        let mut db = ObjectDb {
            bucket,
            prefix: prefix.to_owned(),
            cache,
            packs: Arc::new(Vec::new()),
        };
        db.load(max_age).await?;
        Ok(db)
    }

    /// Re-list the packs now, picking up packs written since the snapshot was taken.
    pub async fn refresh(&mut self) -> Result<()> {
        self.load(std::time::Duration::ZERO).await
    }

    async fn load(&mut self, max_age: std::time::Duration) -> Result<()> {
        let mut max_age = max_age;
        let mut attempt = 0;
        let mut packs = loop {
            let list = self
                .cache
                .list(self.bucket.as_ref(), &self.prefix, max_age)
                .await?;
            let mut packs = Vec::with_capacity(list.len());
            let mut failed = None;
            for (stem, name) in &list {
                match self.cache.open(self.bucket.as_ref(), stem, name).await {
                    Ok(p) => packs.push(p),
                    Err(e) => {
                        failed = Some(e);
                        break;
                    }
                }
            }
            match failed {
                None => break packs,
                // Maintenance may have deleted a replaced pack after it was listed: list again.
                Some(e) if attempt < 3 => {
                    tracing::debug!(error = %e, "a listed pack could not be opened; listing again");
                    attempt += 1;
                    max_age = std::time::Duration::ZERO;
                }
                Some(e) => return Err(e),
            }
        };
        // Larger packs first: most lookups hit the big, maintained pack.
        packs.sort_by_key(|p| std::cmp::Reverse(p.num_objects()));
        self.packs = Arc::new(packs);
        Ok(())
    }

    /// The same repository seen through other packs only (for example a pack being received).
    pub fn with_packs(&self, packs: Vec<Arc<Pack>>) -> Self {
        ObjectDb {
            bucket: self.bucket.clone(),
            prefix: self.prefix.clone(),
            cache: self.cache.clone(),
            packs: Arc::new(packs),
        }
    }

    pub fn bucket(&self) -> &Arc<dyn Bucket> {
        &self.bucket
    }

    pub fn prefix(&self) -> &str {
        &self.prefix
    }

    pub fn packs(&self) -> &[Arc<Pack>] {
        &self.packs
    }

    pub fn contains(&self, id: &oid) -> bool {
        self.locate(id).is_some()
    }

    /// The pack (position in [`ObjectDb::packs`]) and offset an object is stored at.
    pub fn locate(&self, id: &oid) -> Option<(usize, u64)> {
        self.packs
            .iter()
            .enumerate()
            .find_map(|(i, p)| p.lookup(id).map(|ofs| (i, ofs)))
    }

    /// A reader with its own decompression state and a 16 MiB cache of delta bases.
    pub fn reader(&self) -> Reader<'_> {
        Reader {
            db: self,
            state: RefCell::new(ReaderState {
                inflate: gix_zlib::Inflate::default(),
                cache: gix_pack::cache::lru::MemoryCappedHashmap::new(16 << 20),
            }),
        }
    }
}

struct ReaderState {
    inflate: gix_zlib::Inflate,
    cache: gix_pack::cache::lru::MemoryCappedHashmap,
}

/// Reads and decodes objects; not shared between threads (each has its own caches).
pub struct Reader<'a> {
    db: &'a ObjectDb,
    state: RefCell<ReaderState>,
}

impl<'a> Reader<'a> {
    pub fn db(&self) -> &'a ObjectDb {
        self.db
    }

    /// Decode an object into `out`, returning its kind, or `None` when it does not exist.
    pub fn try_read(&self, id: &oid, out: &mut Vec<u8>) -> Result<Option<Kind>> {
        for pack in self.db.packs.iter() {
            if let Some(idx) = pack.bundle.index.lookup(id) {
                let mut state = self.state.borrow_mut();
                let ReaderState { inflate, cache } = &mut *state;
                let (data, _) = pack
                    .bundle
                    .get_object_by_index(idx, out, inflate, cache)
                    .map_err(|e| Error::Corrupt {
                        id: id.to_owned(),
                        message: format!("{e:#}"),
                    })?;
                return Ok(Some(data.kind));
            }
        }
        Ok(None)
    }

    pub fn read(&self, id: &oid, out: &mut Vec<u8>) -> Result<Kind> {
        self.try_read(id, out)?
            .ok_or_else(|| Error::Missing(id.to_owned()))
    }

    pub fn read_kind(&self, id: &oid, expected: Kind, out: &mut Vec<u8>) -> Result<()> {
        let actual = self.read(id, out)?;
        if actual != expected {
            return Err(Error::WrongKind {
                id: id.to_owned(),
                expected,
                actual,
            });
        }
        Ok(())
    }

    pub fn commit(&self, id: &oid) -> Result<Commit> {
        // The cache is shared between repositories: only an object this one has may come from it.
        if let Some(commit) = self.db.cache.cached_commit(id) {
            if self.db.contains(id) {
                return Ok(commit);
            }
        }
        let mut buf = Vec::new();
        self.read_kind(id, Kind::Commit, &mut buf)?;
        let commit = Commit::parse(id, &buf)?;
        self.db.cache.remember_commit(id, &commit);
        Ok(commit)
    }

    /// The kind of an object, if it exists, read from pack entry headers alone.
    pub fn kind(&self, id: &oid) -> Result<Option<Kind>> {
        Ok(self.header(id)?.map(|(kind, _)| kind))
    }

    /// The kind and size of an object, if it exists, without decoding it: a delta chain is
    /// followed through entry headers down to its base, and only the first bytes of the
    /// outermost delta are inflated (they hold the result's size). Stored packs are
    /// self-contained, so every REF base is in the same pack.
    pub fn header(&self, id: &oid) -> Result<Option<(Kind, u64)>> {
        let Some((at, offset)) = self.db.locate(id) else {
            return Ok(None);
        };
        let pack = &self.db.packs[at];
        let corrupt = |e: gix_error::Error| Error::Corrupt {
            id: id.to_owned(),
            message: format!("{e:#}"),
        };
        let data = &pack.bundle.pack;
        let entry = data.entry(offset).map_err(corrupt)?;
        let resolve = |base: &oid| -> gix_error::Result<
            Option<gix_pack::data::decode::header::ResolvedBase>,
        > {
            match pack.lookup(base) {
                Some(ofs) => Ok(Some(gix_pack::data::decode::header::ResolvedBase::InPack(
                    data.entry(ofs)?,
                ))),
                None => Ok(None),
            }
        };
        let mut state = self.state.borrow_mut();
        let outcome = data
            .decode_header(entry, &mut state.inflate, &resolve)
            .map_err(corrupt)?;
        Ok(Some((outcome.kind, outcome.object_size)))
    }

    /// Follow annotated tags until a non-tag object.
    pub fn peel(&self, id: &oid) -> Result<(ObjectId, Kind)> {
        let mut current = id.to_owned();
        let mut buf = Vec::new();
        for _ in 0..64 {
            match self.read(&current, &mut buf)? {
                Kind::Tag => current = object::tag_target(&current, &buf)?,
                kind => return Ok((current, kind)),
            }
        }
        Err(Error::Corrupt {
            id: id.to_owned(),
            message: "tag chain longer than 64".into(),
        })
    }
}

impl gix_object::Find for Reader<'_> {
    fn try_find<'b>(
        &self,
        id: &oid,
        buffer: &'b mut Vec<u8>,
    ) -> gix_error::Result<Option<gix_object::Data<'b>>> {
        match self.try_read(id, buffer) {
            Ok(Some(kind)) => Ok(Some(gix_object::Data::new(
                buffer,
                kind,
                gix_hash::Kind::Sha1,
            ))),
            Ok(None) => Ok(None),
            Err(e) => Err(gix_error::Error::from(gix_error::Message::new(
                e.to_string(),
            ))),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::bucket::MemoryBucket;

    /// Publish a pack holding one blob into the repository at `prefix`.
    async fn publish_blob(db: &ObjectDb, staging: &Path, content: &[u8]) -> Result<ObjectId> {
        let mut builder = build::PackBuilder::new(staging)?;
        let id = builder.add(Kind::Blob, content)?;
        let (path, _guard) = builder.finish()?;
        let ingested = {
            let mut input = std::io::BufReader::new(std::fs::File::open(&path)?);
            ingest::index_pack(db, &mut input, staging, ingest::Limits::default())?
        };
        ingested.publish(db).await?;
        Ok(id)
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn remote_packs_are_cached_within_the_bound() -> Result<()> {
        let dir = tempfile::tempdir()?;
        let staging = dir.path().join("staging");
        let cache_dir = dir.path().join("cache");
        let bucket: Arc<dyn Bucket> = Arc::new(MemoryBucket::new());
        let setup = Arc::new(PackCache::new(Some(dir.path().join("setup")), u64::MAX));
        // Three repositories with one pack of ~20 KB each (different content, different names).
        let mut blobs = Vec::new();
        for r in 0..3u8 {
            let prefix = format!("r{r}/");
            let empty = ObjectDb::open(bucket.clone(), &prefix, setup.clone()).await?;
            // Incompressible, so each pack really is ~20 KB.
            let mut x = 0x9e37_79b9_7f4a_7c15u64 ^ u64::from(r);
            let content: Vec<u8> = (0..20_000)
                .map(|_| {
                    x ^= x << 13;
                    x ^= x >> 7;
                    x ^= x << 17;
                    x as u8
                })
                .collect();
            blobs.push(publish_blob(&empty, &staging, &content).await?);
        }
        // Room for one of them.
        let cache = Arc::new(PackCache::new(Some(cache_dir.clone()), 30_000));
        let files = || {
            std::fs::read_dir(&cache_dir)
                .map(|d| d.count())
                .unwrap_or(0)
        };
        for round in 0..2 {
            for (r, blob) in blobs.iter().enumerate() {
                let db = ObjectDb::open(bucket.clone(), &format!("r{r}/"), cache.clone()).await?;
                let mut buf = Vec::new();
                assert_eq!(
                    db.reader().read(blob, &mut buf)?,
                    Kind::Blob,
                    "round {round}, repo {r}"
                );
                assert_eq!(buf.len(), 20_000);
                drop(db);
                // The pack just used is kept; the ones before it were evicted from disk too.
                assert!(
                    cache.cached_bytes() <= 30_000,
                    "cached {} bytes",
                    cache.cached_bytes()
                );
                assert_eq!(files(), 2, "one .pack and its .idx");
            }
        }
        Ok(())
    }
}
