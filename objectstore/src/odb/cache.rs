//! What every request of a process shares: local copies of remote packs, opened packs, briefly
//! each repository's pack list, and parsed commits.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use gix_hash::{oid, ObjectId};

use super::object::Commit;
use super::pack::{next_unique, Pack, Reach};
use super::Result;
use crate::bucket::Bucket;
use crate::layout::{PackFile, RepoKeys};

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
    commits: Mutex<HashMap<ObjectId, Commit>>,
}

/// One visible pack as a listing shows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Listed {
    pub(crate) name: String,
    /// The size and time of its `.tips` record, if it has one: a pack is immutable, its
    /// record may be rewritten (by maintenance, with a stronger claim).
    pub(crate) tips: Option<(u64, i64)>,
}

#[derive(Debug, Default)]
struct CacheState {
    /// Opened packs by their `.idx` key, ordered so that one repository's packs are a range.
    open: BTreeMap<String, CachedPack>,
    /// Bytes of remote packs copied to the cache directory.
    cached_bytes: u64,
    clock: u64,
    lists: HashMap<String, (Instant, Vec<Listed>)>,
}

#[derive(Debug)]
struct CachedPack {
    pack: Arc<Pack>,
    /// The `.tips` record the pack's `reach` was read from.
    tips: Option<(u64, i64)>,
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
    pub const LIST_TTL: Duration = Duration::from_secs(2);

    /// How many parsed commits are kept (about 100 bytes each).
    const MAX_COMMITS: usize = 100_000;

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

    pub(crate) fn cached_commit(&self, id: &oid) -> Option<Commit> {
        let commits = self.commits.lock().unwrap_or_else(|p| p.into_inner());
        commits.get(id).cloned()
    }

    pub(crate) fn remember_commit(&self, id: &oid, commit: &Commit) {
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

    /// Add a pack this process just published to the repository's cached pack list (when
    /// there is one), so its next reader need not list again. The pack's `.tips` record is
    /// read when a later listing shows it; until then its reach is unknown, the safe answer.
    ///
    /// `files` are the local `.pack` and `.idx` it was uploaded from. For a bucket that is not
    /// a local directory they are copied (hard-linked where the disk allows) into the cache
    /// and the pack opened from there, so that its next reader does not download what was
    /// just uploaded (two round trips, and the pack's bytes, per push). Failing that, the
    /// pack is downloaded when first read, as any other.
    pub fn add_published(
        &self,
        bucket: &dyn Bucket,
        keys: &RepoKeys,
        name: &str,
        files: Option<(&Path, &Path)>,
    ) {
        if let Some((pack, idx)) = files {
            if let Err(e) = self.adopt(bucket, keys, name, pack, idx) {
                tracing::debug!(pack = name, error = %e, "keeping a published pack failed");
            }
        }
        if let Some((_, list)) = self.lock().lists.get_mut(keys.prefix()) {
            if let Err(at) = list.binary_search_by(|l| l.name.as_str().cmp(name)) {
                list.insert(
                    at,
                    Listed {
                        name: name.to_owned(),
                        tips: None,
                    },
                );
            }
        }
    }

    /// Where the local copy of a remote pack whose index is `idx_key` lives: (`.idx`, `.pack`).
    fn copy_paths(&self, idx_key: &str) -> Result<(PathBuf, PathBuf)> {
        let local = self.dir()?.join(idx_key.replace('/', "%"));
        Ok((local.with_extension("idx"), local.with_extension("pack")))
    }

    /// Put `from` at `to` (a hard link, else a copy) under a temporary name first, so a
    /// reader never sees a partial file.
    fn place(from: &Path, to: &Path) -> Result<()> {
        if to.exists() {
            return Ok(());
        }
        let tmp = to.with_extension(format!("tmp-{}-{}", std::process::id(), next_unique()));
        if std::fs::hard_link(from, &tmp).is_err() {
            if let Err(e) = std::fs::copy(from, &tmp) {
                let _ = std::fs::remove_file(&tmp);
                return Err(e.into());
            }
        }
        std::fs::rename(&tmp, to)?;
        Ok(())
    }

    /// Keep the local files of a pack just published as the cached copy of a remote pack,
    /// opened.
    fn adopt(
        &self,
        bucket: &dyn Bucket,
        keys: &RepoKeys,
        name: &str,
        pack: &Path,
        idx: &Path,
    ) -> Result<()> {
        let idx_key = keys.pack_file(name, PackFile::Idx);
        if bucket.local_path(&idx_key).is_some() || self.lock().open.contains_key(&idx_key) {
            return Ok(());
        }
        let (idx_copy, pack_copy) = self.copy_paths(&idx_key)?;
        Self::place(pack, &pack_copy)?;
        Self::place(idx, &idx_copy)?;
        let bytes = std::fs::metadata(&pack_copy)?.len() + std::fs::metadata(&idx_copy)?.len();
        let opened = Arc::new(Pack::open(
            name,
            &idx_copy,
            &pack_copy,
            Reach::Unknown,
            format_of(name)?,
        )?);
        let mut state = self.lock();
        if state.open.contains_key(&idx_key) {
            return Ok(());
        }
        state.clock += 1;
        let now = state.clock;
        state.cached_bytes += bytes;
        state.open.insert(
            idx_key,
            CachedPack {
                pack: opened,
                tips: None,
                copy: Some((idx_copy, pack_copy, bytes)),
                last_used: now,
            },
        );
        self.evict(&mut state);
        Ok(())
    }

    /// Forget the pack list of a repository, so the next open lists again (after this process
    /// changed it).
    pub fn forget_list(&self, keys: &RepoKeys) {
        self.lock().lists.remove(keys.prefix());
    }

    /// Open a listed pack of a repository whose objects are named by `object_hash`; a pack
    /// of another format (its name says) is an error, never read with the wrong id length.
    pub(crate) async fn open(
        &self,
        bucket: &dyn Bucket,
        keys: &RepoKeys,
        listed: &Listed,
        object_hash: gix_hash::Kind,
    ) -> Result<Arc<Pack>> {
        if format_of(&listed.name)? != object_hash {
            return Err(super::Error::Pack {
                pack: listed.name.clone(),
                message: format!("not a pack of this {object_hash} repository"),
            });
        }
        let idx_key = keys.pack_file(&listed.name, PackFile::Idx);
        {
            let mut state = self.lock();
            state.clock += 1;
            let now = state.clock;
            if let Some(entry) = state.open.get_mut(&idx_key) {
                if entry.tips == listed.tips {
                    entry.last_used = now;
                    return Ok(entry.pack.clone());
                }
            }
        }
        let pack_key = keys.pack_file(&listed.name, PackFile::Pack);
        let reach = if listed.tips.is_some() {
            // Maintenance may rewrite or delete the record between the listing and this read:
            // a record that is gone says nothing, which is the safe answer.
            match bucket
                .get(&keys.pack_file(&listed.name, PackFile::Tips))
                .await
            {
                Ok(tips) => Reach::decode(&tips.data),
                Err(e) if e.is_not_found() => Reach::Unknown,
                Err(e) => return Err(e.into()),
            }
        } else {
            Reach::Unknown
        };
        let (idx, pack, copy) = match (bucket.local_path(&idx_key), bucket.local_path(&pack_key)) {
            (Some(i), Some(p)) => (i, p, None),
            _ => {
                let (idx, pack) = self.copy_paths(&idx_key)?;
                let mut bytes = 0;
                for (key, path) in [(&pack_key, &pack), (&idx_key, &idx)] {
                    if !path.exists() {
                        // Concurrent downloads of one pack each use their own temporary name;
                        // the renames put identical bytes in place.
                        let tmp = path.with_extension(format!(
                            "tmp-{}-{}",
                            std::process::id(),
                            next_unique()
                        ));
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
        let opened = Arc::new(Pack::open(&listed.name, &idx, &pack, reach, object_hash)?);
        let mut state = self.lock();
        if let Some(existing) = state.open.get_mut(&idx_key) {
            if existing.tips != listed.tips {
                // The same files with a newer record: keep the copy, take the record.
                existing.pack = opened.clone();
                existing.tips = listed.tips;
            }
            return Ok(existing.pack.clone());
        }
        state.clock += 1;
        let now = state.clock;
        if let Some((_, _, bytes)) = &copy {
            state.cached_bytes += bytes;
        }
        state.open.insert(
            idx_key,
            CachedPack {
                pack: opened.clone(),
                tips: listed.tips,
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
            Self::close(state, &key);
        }
    }

    /// Close the opened packs of the repository that a fresh listing no longer shows
    /// (maintenance replaced them), and delete their local copies: otherwise a long-running
    /// process would hold every pack it ever opened, and on a filesystem bucket the disk
    /// space of deleted packs would not come back until it exits. Requests still using one
    /// hold it open until they finish. A listing that merely lags costs a second open.
    fn forget_unlisted(state: &mut CacheState, keys: &RepoKeys, listed: &[Listed]) {
        let dir = keys.pack_dir();
        let gone: Vec<String> = state
            .open
            .range(dir.clone()..)
            .map(|(k, _)| k)
            .take_while(|k| k.starts_with(&dir))
            .filter(|k| {
                keys.parse_pack_file(k).is_some_and(|(name, _)| {
                    listed
                        .binary_search_by(|l| l.name.as_str().cmp(name))
                        .is_err()
                })
            })
            .cloned()
            .collect();
        for key in gone {
            Self::close(state, &key);
        }
    }

    /// Drop an opened pack from the cache, and its local copy if it has one.
    fn close(state: &mut CacheState, key: &str) {
        if let Some(CachedPack {
            copy: Some((idx, pack, bytes)),
            ..
        }) = state.open.remove(key)
        {
            let _ = std::fs::remove_file(idx);
            let _ = std::fs::remove_file(pack);
            state.cached_bytes = state.cached_bytes.saturating_sub(bytes);
        }
    }

    /// Every visible pack of the repository: an `.idx` with its `.pack`, not replaced.
    pub(crate) async fn list(
        &self,
        bucket: &dyn Bucket,
        keys: &RepoKeys,
        max_age: Duration,
    ) -> Result<Vec<Listed>> {
        if let Some((at, list)) = self.lock().lists.get(keys.prefix()) {
            if at.elapsed() <= max_age {
                return Ok(list.clone());
            }
        }
        let listing = bucket.list(&keys.pack_dir()).await?;
        let mut files: HashMap<&str, HashSet<PackFile>> = HashMap::new();
        let mut tips: HashMap<&str, (u64, i64)> = HashMap::new();
        for meta in &listing {
            if let Some((name, file)) = keys.parse_pack_file(&meta.key) {
                files.entry(name).or_default().insert(file);
                if file == PackFile::Tips {
                    tips.insert(name, (meta.size, meta.last_modified));
                }
            }
        }
        // A pack maintenance replaced is skipped: the pack that replaced it, stored before the
        // marker was written, holds everything of it worth keeping.
        let mut packs: Vec<Listed> = files
            .into_iter()
            .filter(|(_, f)| {
                f.contains(&PackFile::Idx)
                    && f.contains(&PackFile::Pack)
                    && !f.contains(&PackFile::Replaced)
            })
            .map(|(name, _)| Listed {
                name: name.to_owned(),
                tips: tips.get(name).copied(),
            })
            .collect();
        packs.sort_by(|a, b| a.name.cmp(&b.name));
        let mut state = self.lock();
        Self::forget_unlisted(&mut state, keys, &packs);
        if state.lists.len() > 10_000 {
            state.lists.clear();
        }
        state
            .lists
            .insert(keys.prefix().to_owned(), (Instant::now(), packs.clone()));
        Ok(packs)
    }
}

/// The object format of the pack named `name` (`pack-<checksum>`: the checksum is a hash of
/// that format).
fn format_of(name: &str) -> Result<gix_hash::Kind> {
    crate::format::of_pack_name(name).ok_or_else(|| super::Error::Pack {
        pack: name.to_owned(),
        message: "its name is no pack checksum".into(),
    })
}

#[cfg(test)]
mod tests {
    const SHA1: gix_hash::Kind = gix_hash::Kind::Sha1;
    use super::*;
    use crate::bucket::MemoryBucket;
    use crate::odb::{build, index, ObjectDb};
    use gix_object::Kind;
    use std::path::Path;

    /// A pack holding one blob, indexed and staged under `staging` (not published).
    fn index_blob(staging: &Path, content: &[u8]) -> Result<(ObjectId, index::Indexed)> {
        let mut builder = build::PackBuilder::new(staging, gix_hash::Kind::Sha1)?;
        let id = builder.add(Kind::Blob, content)?;
        let (path, _built) = builder.finish()?;
        let indexed = index::index_file(
            &path,
            staging,
            gix_hash::Kind::Sha1,
            &index::Limits::default(),
            &crate::budget::MemoryBudget::new(1 << 30),
            index::Checks::STRICT,
            &mut |_| Ok(None),
        )?;
        Ok((id, indexed))
    }

    /// Publish a pack holding one blob into the repository of `db`.
    async fn publish_blob(db: &ObjectDb, staging: &Path, content: &[u8]) -> Result<ObjectId> {
        let (id, indexed) = index_blob(staging, content)?;
        indexed
            .publish(db.bucket().as_ref(), db.keys(), &Reach::Unknown)
            .await?;
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
            let keys = RepoKeys::at(&format!("r{r}/"));
            let empty = ObjectDb::open(bucket.clone(), keys, setup.clone(), SHA1).await?;
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
                let db = ObjectDb::open(
                    bucket.clone(),
                    RepoKeys::at(&format!("r{r}/")),
                    cache.clone(),
                    SHA1,
                )
                .await?;
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

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_published_pack_is_read_from_the_files_it_was_uploaded_from() -> Result<()> {
        let dir = tempfile::tempdir()?;
        let staging = dir.path().join("staging");
        let bucket: Arc<dyn Bucket> = Arc::new(MemoryBucket::new());
        let keys = RepoKeys::at("r/");
        let cache = Arc::new(PackCache::new(Some(dir.path().join("cache")), u64::MAX));
        // The pack list is cached (empty), as after a push's advertisement.
        let empty = ObjectDb::open(bucket.clone(), keys.clone(), cache.clone(), SHA1).await?;
        assert!(empty.packs().is_empty());
        let (id, indexed) = index_blob(&staging, b"just pushed")?;
        indexed
            .publish(bucket.as_ref(), &keys, &Reach::Unknown)
            .await?;
        let name = indexed
            .name
            .clone()
            .ok_or(super::super::Error::Missing(id))?;
        cache.add_published(bucket.as_ref(), &keys, &name, indexed.paths());
        // The staged files go away with the push, and a download of the pack would now fail:
        // only the kept copy can answer.
        drop(indexed);
        bucket
            .delete(&keys.pack_file(&name, PackFile::Pack))
            .await?;
        let db = ObjectDb::open(bucket.clone(), keys.clone(), cache.clone(), SHA1).await?;
        let mut buf = Vec::new();
        assert_eq!(db.reader().read(&id, &mut buf)?, Kind::Blob);
        assert_eq!(buf, b"just pushed");
        assert!(
            cache.cached_bytes() > 0,
            "the copy counts against the bound"
        );
        Ok(())
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn packs_gone_from_the_listing_are_closed_and_their_copies_deleted() -> Result<()> {
        let dir = tempfile::tempdir()?;
        let staging = dir.path().join("staging");
        let cache_dir = dir.path().join("cache");
        let bucket: Arc<dyn Bucket> = Arc::new(MemoryBucket::new());
        let keys = RepoKeys::at("r/");
        let cache = Arc::new(PackCache::new(Some(cache_dir.clone()), u64::MAX));
        let empty = ObjectDb::open(bucket.clone(), keys.clone(), cache.clone(), SHA1).await?;
        let old = publish_blob(&empty, &staging, b"old").await?;
        // Each open lists the bucket again (no listing is taken as fresh).
        let reopen = || {
            ObjectDb::open_with(
                bucket.clone(),
                keys.clone(),
                cache.clone(),
                SHA1,
                Duration::ZERO,
            )
        };
        let db = reopen().await?;
        let old_pack = db.packs()[0].clone();
        let files = || {
            std::fs::read_dir(&cache_dir)
                .map(|d| d.count())
                .unwrap_or(0)
        };
        assert_eq!(files(), 2);
        // Maintenance replaced it: a new pack in, the old one's files deleted.
        let new = publish_blob(&empty, &staging, b"new").await?;
        for file in [PackFile::Idx, PackFile::Pack] {
            bucket.delete(&keys.pack_file(&old_pack.name, file)).await?;
        }
        let db2 = reopen().await?;
        assert_eq!(db2.packs().len(), 1);
        assert!(db2.contains(&new) && !db2.contains(&old));
        // Only the new pack stays open and copied...
        assert_eq!(cache.lock().open.len(), 1);
        assert_eq!(files(), 2);
        // ...while a request that opened the old one still reads it.
        let mut buf = Vec::new();
        db.reader().read(&old, &mut buf)?;
        assert_eq!(buf, b"old");
        Ok(())
    }
}
