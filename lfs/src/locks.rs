//! File locks (`git lfs lock`): one object per locked path, created by compare-and-swap.

use std::sync::Arc;
use std::time::{SystemTime, UNIX_EPOCH};

use bytes::Bytes;
use objectstore::bucket::{self, Bucket, PutMode};
use objectstore::layout::RepoKeys;
use sha2::Digest;

use crate::api::{LockJson, Owner};

/// A lock.
pub type Lock = LockJson;

/// Why a lock operation did not happen.
#[derive(Debug, thiserror::Error)]
pub enum LockError {
    /// The path is locked already (HTTP 409), by this lock.
    #[error("{} is already locked by {}", .0.path, .0.owner.name)]
    Exists(Box<Lock>),
    /// No such lock (404).
    #[error("lock not found")]
    NotFound,
    /// Someone else's lock, and no `force` by an admin (403).
    #[error("the lock is held by {0}; only they (or an admin, with force) may unlock it")]
    NotOwner(String),
    /// A path that cannot be locked (422).
    #[error("invalid path: {0}")]
    InvalidPath(&'static str),
    /// The bucket failed, or holds a lock that is not readable.
    #[error(transparent)]
    Bucket(#[from] bucket::Error),
}

/// The most locks one page lists.
pub const MAX_PAGE: usize = 100;

/// The locks of one repository.
#[derive(Debug, Clone)]
pub struct Locks {
    bucket: Arc<dyn Bucket>,
    keys: RepoKeys,
}

/// `path` as a repository path: `.` components and repeated or trailing `/` dropped
/// (`data/./x.bin` and `data//x.bin` are `data/x.bin`, so one file has one lock); refused
/// when it cannot name a file of a repository (absolute, `..`, `.git`, NUL, empty, over 4096
/// bytes).
pub(crate) fn repository_path(path: &str) -> Result<String, LockError> {
    if path.is_empty() || path.len() > 4096 || path.contains('\0') {
        return Err(LockError::InvalidPath(
            "empty, longer than 4096 bytes or with NUL",
        ));
    }
    if path.starts_with('/') {
        return Err(LockError::InvalidPath(
            "absolute: a lock names a path inside the repository",
        ));
    }
    let mut parts = Vec::new();
    for part in path.split('/') {
        match part {
            "" | "." => {}
            ".." => return Err(LockError::InvalidPath("`..` leaves the repository")),
            p if p.eq_ignore_ascii_case(".git") => {
                return Err(LockError::InvalidPath(
                    "`.git` is not part of the repository",
                ))
            }
            p => parts.push(p),
        }
    }
    if parts.is_empty() {
        return Err(LockError::InvalidPath("names no file"));
    }
    Ok(parts.join("/"))
}

/// A lock's id: the SHA-256 of its path, so one path has one lock object.
fn id_of(path: &str) -> String {
    hex::encode(sha2::Sha256::digest(path.as_bytes()))
}

fn valid_id(id: &str) -> bool {
    id.len() == 64
        && id
            .bytes()
            .all(|b| b.is_ascii_hexdigit() && !b.is_ascii_uppercase())
}

/// `seconds` since the epoch as RFC 3339 in UTC.
fn rfc3339(seconds: u64) -> String {
    let days = seconds / 86_400;
    let rem = seconds % 86_400;
    // Civil date from days since 1970-01-01 (Howard Hinnant's algorithm).
    let z = days as i64 + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!(
        "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}Z",
        rem / 3600,
        rem % 3600 / 60,
        rem % 60
    )
}

impl Locks {
    /// The locks of the repository whose keys are `keys`.
    pub fn new(bucket: Arc<dyn Bucket>, keys: RepoKeys) -> Self {
        Locks { bucket, keys }
    }

    /// Lock `path` for `owner`. Of any number of concurrent lockers (on any replica), exactly
    /// one succeeds: the lock object is written only if it does not exist.
    pub async fn create(&self, path: &str, owner: &str) -> Result<Lock, LockError> {
        let path = &repository_path(path)?;
        let id = id_of(path);
        let now = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_secs());
        let lock = Lock {
            id: id.clone(),
            path: path.to_owned(),
            locked_at: rfc3339(now),
            owner: Owner {
                name: owner.to_owned(),
            },
        };
        let data = serde_json::to_vec(&lock).unwrap_or_default();
        match self
            .bucket
            .put(&self.keys.lfs_lock(&id), Bytes::from(data), PutMode::Create)
            .await
        {
            Ok(_) => Ok(lock),
            Err(bucket::Error::PreconditionFailed(_)) => match self.get(&id).await? {
                Some(existing) => Err(LockError::Exists(Box::new(existing))),
                // Unlocked meanwhile: the caller may try again.
                None => Err(LockError::NotFound),
            },
            Err(e) => Err(e.into()),
        }
    }

    /// The lock `id`, if it exists.
    pub async fn get(&self, id: &str) -> Result<Option<Lock>, LockError> {
        if !valid_id(id) {
            return Ok(None);
        }
        let key = self.keys.lfs_lock(id);
        match self.bucket.get(&key).await {
            Ok(got) => serde_json::from_slice(&got.data).map(Some).map_err(|e| {
                LockError::Bucket(bucket::Error::Backend {
                    key,
                    message: format!("unreadable lock: {e}"),
                })
            }),
            Err(e) if e.is_not_found() => Ok(None),
            Err(e) => Err(e.into()),
        }
    }

    /// The lock of `path`, if it is locked.
    pub async fn of_path(&self, path: &str) -> Result<Option<Lock>, LockError> {
        self.get(&id_of(&repository_path(path)?)).await
    }

    /// Up to `limit` locks in id order, after `cursor`; and the cursor of the next page.
    pub async fn list(
        &self,
        cursor: Option<&str>,
        limit: usize,
    ) -> Result<(Vec<Lock>, Option<String>), LockError> {
        let limit = limit.clamp(1, MAX_PAGE);
        let dir = self.keys.lfs_locks_dir();
        let ids: Vec<String> = self
            .bucket
            .list(&dir)
            .await?
            .into_iter()
            .filter_map(|m| {
                m.key
                    .strip_prefix(&dir)
                    .and_then(|k| k.strip_suffix(".json"))
                    .filter(|id| valid_id(id))
                    .map(str::to_owned)
            })
            .filter(|id| cursor.is_none_or(|c| id.as_str() > c))
            .collect();
        let mut locks = Vec::new();
        for id in ids.iter().take(limit) {
            if let Some(lock) = self.get(id).await? {
                locks.push(lock);
            }
        }
        let next = (ids.len() > limit).then(|| ids[limit - 1].clone());
        Ok((locks, next))
    }

    /// Remove lock `id`: its owner may, anyone else only with `force` (the caller checks
    /// that `force` comes from an admin).
    pub async fn unlock(&self, id: &str, requester: &str, force: bool) -> Result<Lock, LockError> {
        let lock = self.get(id).await?.ok_or(LockError::NotFound)?;
        if lock.owner.name != requester && !force {
            return Err(LockError::NotOwner(lock.owner.name));
        }
        self.bucket.delete(&self.keys.lfs_lock(id)).await?;
        Ok(lock)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lock_paths_are_repository_paths() {
        for (given, path) in [
            ("a//b", "a/b"),
            ("./c", "c"),
            ("data/./x.bin", "data/x.bin"),
            ("dir/", "dir"),
            ("a b/ü.bin", "a b/ü.bin"),
        ] {
            assert_eq!(
                repository_path(given).ok().as_deref(),
                Some(path),
                "{given}"
            );
        }
        for bad in [
            "",
            "/abs/x",
            "../../etc/passwd",
            "a/../b",
            ".git/config",
            "a/.GIT/x",
            "./",
            "a\0b",
        ] {
            assert!(repository_path(bad).is_err(), "{bad}");
        }
    }
    use objectstore::MemoryBucket;

    #[test]
    fn dates_are_rfc3339() {
        assert_eq!(rfc3339(0), "1970-01-01T00:00:00Z");
        assert_eq!(rfc3339(1_700_000_000), "2023-11-14T22:13:20Z");
        assert_eq!(rfc3339(951_782_400), "2000-02-29T00:00:00Z");
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
    async fn one_lock_per_path_whoever_races() -> Result<(), LockError> {
        let locks = Locks::new(Arc::new(MemoryBucket::new()), RepoKeys::at("r/"));
        let mut tasks = Vec::new();
        for n in 0..16 {
            let locks = locks.clone();
            tasks.push(tokio::spawn(async move {
                locks.create("model.bin", &format!("user{n}")).await
            }));
        }
        let mut won = 0;
        for t in tasks {
            match t
                .await
                .map_err(|e| LockError::InvalidPath(if e.is_panic() { "panic" } else { "join" }))?
            {
                Ok(_) => won += 1,
                Err(LockError::Exists(_)) => {}
                Err(e) => return Err(e),
            }
        }
        assert_eq!(won, 1);
        let lock = locks
            .of_path("model.bin")
            .await?
            .ok_or(LockError::NotFound)?;
        let other = if lock.owner.name == "user0" {
            "user1"
        } else {
            "user0"
        };
        assert!(matches!(
            locks.unlock(&lock.id, other, false).await,
            Err(LockError::NotOwner(_))
        ));
        locks.create("a.bin", "x").await?;
        locks.create("b.bin", "x").await?;
        let (page, next) = locks.list(None, 2).await?;
        assert_eq!(page.len(), 2);
        let (rest, end) = locks.list(next.as_deref(), 2).await?;
        assert_eq!((rest.len(), end), (1, None));
        locks.unlock(&lock.id, other, true).await?;
        assert!(locks.of_path("model.bin").await?.is_none());
        assert!(locks.get("../../packed-refs").await?.is_none());
        Ok(())
    }
}
