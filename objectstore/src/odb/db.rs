//! [`ObjectDb`]: the objects of one repository, a snapshot of its visible packs.

use std::sync::Arc;
use std::time::Duration;

use gix_hash::oid;

use super::cache::PackCache;
use super::pack::Pack;
use super::reader::Reader;
use super::Result;

/// Several objects start with the abbreviated id that was asked for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Ambiguous;
use crate::bucket::Bucket;
use crate::layout::RepoKeys;

/// The objects of one repository: a snapshot of its visible packs.
#[derive(Debug, Clone)]
pub struct ObjectDb {
    bucket: Arc<dyn Bucket>,
    keys: RepoKeys,
    cache: Arc<PackCache>,
    packs: Arc<Vec<Arc<Pack>>>,
    object_hash: gix_hash::Kind,
}

impl ObjectDb {
    /// Open the visible packs of the repository whose objects `object_hash` names (its refs
    /// say which, see [`crate::format`]), from a pack list at most [`PackCache::LIST_TTL`] old.
    pub async fn open(
        bucket: Arc<dyn Bucket>,
        keys: RepoKeys,
        cache: Arc<PackCache>,
        object_hash: gix_hash::Kind,
    ) -> Result<Self> {
        Self::open_with(bucket, keys, cache, object_hash, PackCache::LIST_TTL).await
    }

    /// Open from a pack list at most `max_age` old (zero: list now).
    pub async fn open_with(
        bucket: Arc<dyn Bucket>,
        keys: RepoKeys,
        cache: Arc<PackCache>,
        object_hash: gix_hash::Kind,
        max_age: Duration,
    ) -> Result<Self> {
        let mut db = ObjectDb {
            object_hash,
            bucket,
            keys,
            cache,
            packs: Arc::new(Vec::new()),
        };
        db.load(max_age).await?;
        Ok(db)
    }

    /// Re-list the packs now, picking up packs written since the snapshot was taken.
    pub async fn refresh(&mut self) -> Result<()> {
        self.load(Duration::ZERO).await
    }

    async fn load(&mut self, max_age: Duration) -> Result<()> {
        let mut max_age = max_age;
        let mut attempt = 0;
        let mut packs = loop {
            let list = self
                .cache
                .list(self.bucket.as_ref(), &self.keys, max_age)
                .await?;
            let mut packs = Vec::with_capacity(list.len());
            let mut failed = None;
            for listed in &list {
                match self
                    .cache
                    .open(self.bucket.as_ref(), &self.keys, listed, self.object_hash)
                    .await
                {
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
                    max_age = Duration::ZERO;
                }
                Some(e) => return Err(e),
            }
        };
        // Larger packs first: most lookups hit the big, maintained pack.
        packs.sort_by_key(|p| std::cmp::Reverse(p.num_objects()));
        self.packs = Arc::new(packs);
        Ok(())
    }

    /// Packs on their own, with no repository behind them: to read a pack just indexed
    /// (tests, fuzzing, tools). Nothing is ever listed or fetched.
    pub fn detached(packs: Vec<Arc<Pack>>) -> Self {
        let keys = RepoKeys::at("detached/");
        ObjectDb {
            object_hash: packs
                .first()
                .map_or(crate::format::DEFAULT, |p| p.object_hash()),
            bucket: Arc::new(crate::bucket::MemoryBucket::new()),
            keys,
            cache: Arc::new(PackCache::default()),
            packs: Arc::new(packs),
        }
    }

    /// The same repository seen through other packs only (for example a pack being received).
    pub fn with_packs(&self, packs: Vec<Arc<Pack>>) -> Self {
        ObjectDb {
            bucket: self.bucket.clone(),
            keys: self.keys.clone(),
            cache: self.cache.clone(),
            packs: Arc::new(packs),
            object_hash: self.object_hash,
        }
    }

    /// The hash that names the repository's objects (see [`crate::format`]).
    pub fn object_hash(&self) -> gix_hash::Kind {
        self.object_hash
    }

    /// The id that stands for "no object" in this repository.
    pub fn null_id(&self) -> gix_hash::ObjectId {
        gix_hash::ObjectId::null(self.object_hash)
    }

    /// The bucket the repository lives in.
    pub fn bucket(&self) -> &Arc<dyn Bucket> {
        &self.bucket
    }

    /// The repository's keys.
    pub fn keys(&self) -> &RepoKeys {
        &self.keys
    }

    /// The process-wide cache the packs came from.
    pub fn cache(&self) -> &Arc<PackCache> {
        &self.cache
    }

    /// The visible packs, largest first.
    pub fn packs(&self) -> &[Arc<Pack>] {
        &self.packs
    }

    /// Whether any pack holds the object.
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

    /// The one object whose id starts with `prefix` (git asks for at least 4 hex digits):
    /// `Ok(None)` when there is none, `Err(Ambiguous)` when several objects share it.
    pub fn lookup_prefix(
        &self,
        prefix: gix_hash::Prefix,
    ) -> std::result::Result<Option<gix_hash::ObjectId>, Ambiguous> {
        let mut found = None;
        for pack in self.packs.iter() {
            match pack.lookup_prefix(prefix) {
                None => {}
                Some(Err(())) => return Err(Ambiguous),
                Some(Ok(id)) => match found {
                    Some(other) if other != id => return Err(Ambiguous),
                    _ => found = Some(id),
                },
            }
        }
        Ok(found)
    }

    /// A reader with its own decompression state and a 16 MiB cache of delta bases.
    pub fn reader(&self) -> Reader<'_> {
        Reader::new(self)
    }
}
