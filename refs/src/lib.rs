//! The ref container of a repository: `HEAD` plus one `packed-refs` object holding every ref,
//! replaced as a whole by compare-and-swap. That single object is the commit point of every
//! push, so a [`RefTransaction`] is atomic across any number of refs and any number of server
//! replicas, with the bucket's conditional write as the only coordination.
#![forbid(unsafe_code)]

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use gix_hash::ObjectId;
use objectstore::bucket::{self, Bucket, ETag, PutMode};

mod name;
mod packed;

pub use name::validate_ref_name;
pub use packed::{parse_packed_refs, write_packed_refs, RefValue};

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error(transparent)]
    Bucket(#[from] bucket::Error),
    /// The refs object exists but cannot be understood: never treated as "no refs".
    #[error("the refs of this repository are corrupt: {0}")]
    Corrupt(String),
    #[error("repository not found")]
    NotFound,
    #[error("repository already exists")]
    AlreadyExists,
    #[error("invalid ref name {0:?}")]
    InvalidName(String),
}

pub type Result<T, E = Error> = std::result::Result<T, E>;

/// All refs of a repository at one moment, with the tag to compare-and-swap against.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Snapshot {
    pub refs: BTreeMap<String, RefValue>,
    /// The ref `HEAD` points at (it may not exist yet).
    pub head: Option<String>,
    /// `None` when the refs object does not exist yet.
    pub etag: Option<ETag>,
}

impl Snapshot {
    pub fn get(&self, name: &str) -> Option<ObjectId> {
        self.refs.get(name).map(|v| v.target)
    }
}

/// One requested ref change.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RefUpdate {
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
    pub updates: Vec<RefUpdate>,
    /// All or nothing: one refused update refuses every update.
    pub atomic: bool,
}

/// Outcome of one update: `None` if applied, else the reason.
pub type UpdateResult = Option<String>;

/// How many times a transaction re-reads and retries after losing a compare-and-swap race.
pub const MAX_ATTEMPTS: u32 = 12;

/// The refs of one repository (keys under `prefix`, which ends in `/`).
#[derive(Debug, Clone)]
pub struct RefStore {
    bucket: Arc<dyn Bucket>,
    prefix: String,
}

const PACKED_REFS: &str = "packed-refs";

impl RefStore {
    pub fn new(bucket: Arc<dyn Bucket>, prefix: &str) -> Self {
        RefStore {
            bucket,
            prefix: prefix.to_owned(),
        }
    }

    fn key(&self, name: &str) -> String {
        format!("{}{}", self.prefix, name)
    }

    /// Whether the repository exists (its `HEAD` does).
    pub async fn exists(&self) -> Result<bool> {
        match self.bucket.get(&self.key("HEAD")).await {
            Ok(_) => Ok(true),
            Err(e) if e.is_not_found() => Ok(false),
            Err(e) => Err(e.into()),
        }
    }

    /// Create the files of an empty bare repository whose `HEAD` names `default_branch`.
    /// `HEAD` is written last and create-only: it marks the repository as existing.
    pub async fn init(&self, default_branch: &str) -> Result<()> {
        let head_ref = format!("refs/heads/{default_branch}");
        validate_ref_name(&head_ref).map_err(|_| Error::InvalidName(default_branch.to_owned()))?;
        if self.exists().await? {
            return Err(Error::AlreadyExists);
        }
        let config = "[core]\n\trepositoryformatversion = 0\n\tfilemode = true\n\tbare = true\n";
        // Stock git recognises a directory as a repository only if `refs/` and `objects/`
        // exist; git ignores files whose names start with a dot there.
        for (key, data) in [
            ("config", config.as_bytes()),
            ("refs/heads/.keep", b"".as_slice()),
            ("objects/info/.keep", b"".as_slice()),
            ("description", b"artifact-git repository\n".as_slice()),
        ] {
            self.bucket
                .put(
                    &self.key(key),
                    Bytes::copy_from_slice(data),
                    PutMode::Overwrite,
                )
                .await?;
        }
        match self
            .bucket
            .put(
                &self.key(PACKED_REFS),
                Bytes::from(write_packed_refs(&BTreeMap::new())),
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
                &self.key("HEAD"),
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
    /// trip).
    pub async fn snapshot(&self) -> Result<Snapshot> {
        let head_key = self.key("HEAD");
        let refs_key = self.key(PACKED_REFS);
        let (head, packed) = tokio::join!(self.bucket.get(&head_key), self.bucket.get(&refs_key));
        let head = match head {
            Ok(h) => h.data,
            Err(e) if e.is_not_found() => return Err(Error::NotFound),
            Err(e) => return Err(e.into()),
        };
        let head = std::str::from_utf8(&head)
            .ok()
            .and_then(|h| h.trim_end().strip_prefix("ref: "))
            .map(str::to_owned);
        let (refs, etag) = match packed {
            Ok(got) => (parse_packed_refs(&got.data)?, Some(got.etag)),
            Err(e) if e.is_not_found() => (BTreeMap::new(), None),
            Err(e) => return Err(e.into()),
        };
        Ok(Snapshot { refs, head, etag })
    }

    /// Point `HEAD` at `target` if it still names `expected` (a ref that does not exist):
    /// after a first push of another branch, clones then check that branch out.
    pub async fn repoint_unborn_head(&self, expected: &str, target: &str) -> Result<bool> {
        validate_ref_name(target).map_err(|_| Error::InvalidName(target.to_owned()))?;
        let current = self.bucket.get(&self.key("HEAD")).await?;
        if current.data.as_ref() != format!("ref: {expected}\n").as_bytes() {
            return Ok(false);
        }
        match self
            .bucket
            .put(
                &self.key("HEAD"),
                Bytes::from(format!("ref: {target}\n")),
                PutMode::Update(current.etag),
            )
            .await
        {
            Ok(_) => Ok(true),
            Err(bucket::Error::PreconditionFailed(_)) => Ok(false),
            Err(e) => Err(e.into()),
        }
    }

    /// Apply `tx`: each update whose old value matches the current one is applied, by one
    /// compare-and-swap of the refs object; on losing a race the current refs are re-read and
    /// every update is checked again.
    pub async fn commit(&self, tx: &RefTransaction) -> Result<Vec<UpdateResult>> {
        let mut results: Vec<UpdateResult> = vec![None; tx.updates.len()];
        for (i, u) in tx.updates.iter().enumerate() {
            if let Err(e) = validate_ref_name(&u.name) {
                results[i] = Some(e.to_string());
            }
        }
        for attempt in 0..MAX_ATTEMPTS {
            let snapshot = self.snapshot().await?;
            let mut refs = snapshot.refs.clone();
            let mut attempt_results = results.clone();
            for (i, u) in tx.updates.iter().enumerate() {
                if attempt_results[i].is_some() {
                    continue;
                }
                let current = snapshot.get(&u.name);
                let matches = match current {
                    Some(cur) => cur == u.old,
                    None => u.old.is_null(),
                };
                if !matches {
                    attempt_results[i] = Some(match (current, u.old.is_null()) {
                        (Some(_), true) => "already exists".to_owned(),
                        (None, false) if u.new.is_null() => "ref does not exist".to_owned(),
                        _ => "fetch first".to_owned(),
                    });
                    continue;
                }
                if u.new.is_null() {
                    refs.remove(&u.name);
                } else {
                    refs.insert(
                        u.name.clone(),
                        RefValue {
                            target: u.new,
                            peeled: u.peeled,
                        },
                    );
                }
            }
            if tx.atomic && attempt_results.iter().any(Option::is_some) {
                return Ok(attempt_results
                    .into_iter()
                    .map(|r| Some(r.unwrap_or_else(|| "atomic push failed".to_owned())))
                    .collect());
            }
            if attempt_results.iter().all(Option::is_some) || refs == snapshot.refs {
                return Ok(attempt_results);
            }
            let mode = match &snapshot.etag {
                Some(tag) => PutMode::Update(tag.clone()),
                None => PutMode::Create,
            };
            match self
                .bucket
                .put(
                    &self.key(PACKED_REFS),
                    Bytes::from(write_packed_refs(&refs)),
                    mode,
                )
                .await
            {
                Ok(_) => return Ok(attempt_results),
                Err(bucket::Error::PreconditionFailed(_)) => {
                    tracing::debug!(attempt, "lost the refs compare-and-swap; retrying");
                    tokio::time::sleep(backoff(attempt)).await;
                }
                Err(e) => return Err(e.into()),
            }
        }
        Ok(results
            .into_iter()
            .map(|r| {
                Some(r.unwrap_or_else(|| {
                    "too many concurrent pushes to this repository; try again".to_owned()
                }))
            })
            .collect())
    }
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

    #[tokio::test]
    async fn create_update_delete_and_stale() -> Result<()> {
        let store = RefStore::new(Arc::new(MemoryBucket::new()), "ws/artifacts/a/git/");
        store.init("main").await?;
        assert!(matches!(
            store.init("main").await,
            Err(Error::AlreadyExists)
        ));
        let snap = store.snapshot().await?;
        assert_eq!(snap.head.as_deref(), Some("refs/heads/main"));
        assert!(snap.refs.is_empty());

        let r = store
            .commit(&RefTransaction {
                updates: vec![update("refs/heads/main", null(), id(1))],
                atomic: false,
            })
            .await?;
        assert_eq!(r, vec![None]);
        let r = store
            .commit(&RefTransaction {
                updates: vec![
                    update("refs/heads/main", id(9), id(2)),
                    update("refs/heads/dev", null(), id(3)),
                ],
                atomic: false,
            })
            .await?;
        assert_eq!(r, vec![Some("fetch first".into()), None]);
        let r = store
            .commit(&RefTransaction {
                updates: vec![
                    update("refs/heads/dev", id(3), null()),
                    update("refs/heads/main", id(9), id(2)),
                ],
                atomic: true,
            })
            .await?;
        assert!(r.iter().all(Option::is_some));
        let snap = store.snapshot().await?;
        assert_eq!(snap.get("refs/heads/main"), Some(id(1)));
        assert_eq!(snap.get("refs/heads/dev"), Some(id(3)));
        let r = store
            .commit(&RefTransaction {
                updates: vec![update("refs/heads/bad..name", null(), id(1))],
                atomic: false,
            })
            .await?;
        assert!(r[0].is_some());
        Ok(())
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
    async fn racing_transactions_lose_nothing() -> Result<()> {
        let bucket: Arc<dyn Bucket> = Arc::new(MemoryBucket::new());
        let store = RefStore::new(bucket, "r/");
        store.init("main").await?;
        let mut tasks = Vec::new();
        for t in 0..8u8 {
            let store = store.clone();
            tasks.push(tokio::spawn(async move {
                let mut applied = 0;
                for n in 0..10u8 {
                    let name = format!("refs/heads/t{t}-{n}");
                    let r = store
                        .commit(&RefTransaction {
                            updates: vec![update(&name, null(), id(n + 1))],
                            atomic: false,
                        })
                        .await?;
                    if r[0].is_none() {
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
        let store = RefStore::new(bucket.clone(), "r/");
        store.init("main").await?;
        bucket
            .put(
                "r/packed-refs",
                Bytes::from_static(b"garbage line\n"),
                PutMode::Overwrite,
            )
            .await?;
        assert!(matches!(store.snapshot().await, Err(Error::Corrupt(_))));
        Ok(())
    }
}
