//! One repository as the request handlers see it: its refs and its objects.

use std::sync::Arc;

use gix_hash::ObjectId;
use objectstore::layout::RepoKeys;
use objectstore::odb::{self, Reader};
use objectstore::{ObjectDb, PackCache};
use protocol::advertisement::{AdvertisedRef, RefsView};
use refs::{RefStore, Snapshot};

use crate::storage::{RepoId, Storage};

/// A small JSON document of the repository (`T::default()` when none was written), read
/// through `cache` and revalidated by tag.
async fn read_revalidated<T>(
    repo: &Repo,
    cache: &objectstore::bucket::Revalidated<T>,
    key: String,
    what: &str,
) -> Result<T, objectstore::bucket::Error>
where
    T: Clone + Default + serde::de::DeserializeOwned + Send + Sync + 'static,
{
    let read = cache
        .read(repo.storage.bucket.as_ref(), &key, |data| {
            serde_json::from_slice::<T>(data)
        })
        .await;
    match read {
        Ok(Ok(read)) => Ok((*read.value).clone()),
        Ok(Err(e)) => Err(objectstore::bucket::Error::Backend {
            key,
            message: format!("unreadable {what}: {e}"),
        }),
        Err(e) if e.is_not_found() => {
            // None is the default; kept under a tag no object has, so the next read is a
            // plain one and finds the file once it is written.
            let absent = objectstore::ETag("\"absent\"".into());
            cache.remember(&key, absent, T::default());
            Ok(T::default())
        }
        Err(e) => Err(e),
    }
}

/// A repository of the storage.
#[derive(Debug, Clone)]
pub struct Repo {
    pub id: RepoId,
    pub keys: RepoKeys,
    pub refs: RefStore,
    storage: Storage,
}

impl Repo {
    pub fn new(storage: &Storage, id: RepoId) -> Self {
        let keys = storage.artifact_keys(&id).repo();
        Repo {
            refs: RefStore::cached(
                storage.bucket.clone(),
                keys.clone(),
                storage.refs_cache.clone(),
            ),
            id,
            keys,
            storage: storage.clone(),
        }
    }

    /// The refs now; [`refs::Error::NotFound`] when the repository does not exist.
    pub async fn snapshot(&self) -> Result<Snapshot, refs::Error> {
        self.refs.snapshot().await
    }

    /// The objects, from a pack list that may be a moment old. `object_hash` is the
    /// repository's format, as its refs say ([`Snapshot::object_hash`]).
    pub async fn objects(
        &self,
        cache: &Arc<PackCache>,
        object_hash: gix_hash::Kind,
    ) -> Result<ObjectDb, odb::Error> {
        ObjectDb::open(
            self.storage.bucket.clone(),
            self.keys.clone(),
            cache.clone(),
            object_hash,
        )
        .await
    }

    /// The objects, with a pack list that holds every one of `needed`: packs are published
    /// before the refs that need them, so a briefly cached list that misses one is read again
    /// (another replica may just have stored the pack).
    pub async fn objects_having(
        &self,
        cache: &Arc<PackCache>,
        object_hash: gix_hash::Kind,
        needed: impl IntoIterator<Item = &gix_hash::ObjectId>,
    ) -> Result<ObjectDb, odb::Error> {
        let mut db = self.objects(cache, object_hash).await?;
        complete(&mut db, needed).await?;
        Ok(db)
    }

    /// The objects, from a pack list read now.
    pub async fn fresh_objects(
        &self,
        cache: &Arc<PackCache>,
        object_hash: gix_hash::Kind,
    ) -> Result<ObjectDb, odb::Error> {
        ObjectDb::open_with(
            self.storage.bucket.clone(),
            self.keys.clone(),
            cache.clone(),
            object_hash,
            std::time::Duration::ZERO,
        )
        .await
    }
}

/// List `db`'s packs again until they hold every one of `needed`: a listing that lags behind
/// a write (as an eventually consistent listing may) is read a few times before the objects
/// are taken to be missing.
pub async fn complete(
    db: &mut ObjectDb,
    needed: impl IntoIterator<Item = &gix_hash::ObjectId>,
) -> Result<(), odb::Error> {
    let needed: Vec<&gix_hash::ObjectId> = needed.into_iter().collect();
    for pause_ms in [0, 50, 200] {
        if needed.iter().all(|id| db.contains(id)) {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(pause_ms)).await;
        db.refresh().await?;
    }
    Ok(())
}

/// The advertised form of a refs snapshot.
pub fn refs_view(snapshot: &Snapshot) -> RefsView {
    RefsView {
        object_hash: snapshot.object_hash,
        to_be_created: false,
        head_symref: snapshot.head.clone(),
        refs: snapshot
            .refs
            .iter()
            .map(|(name, v)| AdvertisedRef {
                name: name.clone(),
                target: v.target,
                peeled: v.peeled,
            })
            .collect(),
    }
}

/// Negotiation's view of the object database.
pub struct History<'a, 'b>(pub &'a Reader<'b>);

fn storage_error(e: odb::Error) -> protocol::Error {
    protocol::Error::Storage(e.to_string())
}

impl protocol::negotiate::History for History<'_, '_> {
    fn has_object(&self, id: &ObjectId) -> protocol::Result<bool> {
        Ok(self.0.db().contains(id))
    }

    fn commit(&self, id: &ObjectId) -> protocol::Result<Option<(i64, Vec<ObjectId>)>> {
        let mut buf = Vec::new();
        match self.0.try_read(id, &mut buf).map_err(storage_error)? {
            Some(gix_object::Kind::Commit) => {
                let c = odb::Commit::parse(id, &buf).map_err(storage_error)?;
                Ok(Some((c.time, c.parents)))
            }
            _ => Ok(None),
        }
    }

    fn peel(&self, id: &ObjectId) -> protocol::Result<ObjectId> {
        match self.0.peel(id) {
            Ok((peeled, _)) => Ok(peeled),
            Err(odb::Error::Missing(_)) => Ok(*id),
            Err(e) => Err(storage_error(e)),
        }
    }
}

pub use crate::storage::Settings;

impl Repo {
    /// The repository's settings (defaults when none were written), revalidated by tag.
    pub async fn settings(&self) -> Result<Settings, objectstore::bucket::Error> {
        let cache = &self.storage.settings_cache;
        read_revalidated(self, cache, self.keys.settings(), "settings").await
    }

    /// The repository's push policy (empty when none was set), revalidated by tag.
    pub async fn push_policy(
        &self,
    ) -> Result<crate::policy::PushPolicy, objectstore::bucket::Error> {
        let cache = &self.storage.policy_cache;
        read_revalidated(self, cache, self.keys.push_policy(), "push policy").await
    }

    /// Replace the push policy.
    pub async fn write_push_policy(
        &self,
        policy: &crate::policy::PushPolicy,
    ) -> Result<(), objectstore::bucket::Error> {
        let data = serde_json::to_vec_pretty(policy).unwrap_or_default();
        let key = self.keys.push_policy();
        let etag = self
            .storage
            .bucket
            .put(&key, data.into(), objectstore::PutMode::Overwrite)
            .await?;
        (self.storage.policy_cache).remember(&key, etag, policy.clone());
        Ok(())
    }

    /// Whether the settings read within `max_age` said the repository is private: a refusal
    /// of an anonymous caller needs no read then (git asks again with credentials, and a
    /// repository made public a moment ago is seen on the next read).
    pub fn known_private(&self, max_age: std::time::Duration) -> bool {
        self.storage
            .settings_cache
            .peek(&self.keys.settings(), max_age)
            .is_some_and(|s| !s.public)
    }

    pub async fn write_settings(
        &self,
        settings: &Settings,
    ) -> Result<(), objectstore::bucket::Error> {
        let data = serde_json::to_vec_pretty(settings).unwrap_or_default();
        let key = self.keys.settings();
        let etag = self
            .storage
            .bucket
            .put(&key, data.into(), objectstore::PutMode::Overwrite)
            .await?;
        // This replica's next request (an anonymous one refused from the cache included)
        // sees the change at once.
        (self.storage.settings_cache).remember(&key, etag, settings.clone());
        Ok(())
    }

    pub fn storage(&self) -> &Storage {
        &self.storage
    }
}
