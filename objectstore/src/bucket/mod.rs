//! The bucket: a flat key space of immutable-or-compare-and-swapped objects, as S3 offers it.
//!
//! Every backend gives the same guarantees, so the object database and the refs can be written
//! once and tested on the in-memory bucket:
//! - a `put` is atomic: readers see the whole old object or the whole new one, never a mix;
//! - a conditional `put` ([`PutMode::Create`], [`PutMode::Update`]) fails with
//!   [`Error::PreconditionFailed`] when the condition does not hold at the moment of the write,
//!   and of several writers racing on one key with the same precondition at most one succeeds;
//! - `list` returns only complete objects;
//! - an `Update` of a key that does not exist fails with [`Error::PreconditionFailed`] (the
//!   object compared against is gone), on every backend and every write method.

use std::ops::Range;
use std::path::{Path, PathBuf};
use std::pin::Pin;
use std::time::Duration;

use async_trait::async_trait;
use bytes::Bytes;

mod faulty;
mod fs;
mod memory;
mod metered;
mod revalidated;
#[cfg(feature = "s3")]
mod s3;

pub use faulty::{Faults, FaultyBucket};
pub use fs::FsBucket;
pub use memory::MemoryBucket;
pub use metered::{MeteredBucket, BUCKET_CALLS, BUCKET_CALL_SECONDS, CALL_KINDS};
pub use revalidated::{Read, Revalidated};
#[cfg(feature = "s3")]
pub use s3::{S3Bucket, S3Options};

/// An opaque version tag of an object; equal tags mean equal content.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct ETag(pub String);

/// The condition under which a `put` may happen.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PutMode {
    /// Write whatever is there.
    Overwrite,
    /// Write only if the key does not exist (`If-None-Match: *`).
    Create,
    /// Write only if the key exists with this tag (`If-Match`).
    Update(ETag),
}

/// An object as returned by `get`.
#[derive(Debug, Clone)]
pub struct GetResult {
    /// The object's bytes.
    pub data: Bytes,
    /// Its entity tag, for a later conditional write.
    pub etag: ETag,
}

/// An entry of a listing.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ObjectMeta {
    /// The full key.
    pub key: String,
    /// Size in bytes.
    pub size: u64,
    /// Seconds since the Unix epoch.
    pub last_modified: i64,
}

#[derive(Debug, thiserror::Error)]
/// Why a bucket operation failed.
pub enum Error {
    #[error("object {0:?} not found")]
    /// No object at this key.
    NotFound(String),
    /// The precondition of a conditional write did not hold: somebody else wrote first.
    #[error("precondition failed writing {0:?}: it was changed concurrently")]
    PreconditionFailed(String),
    #[error("invalid key {0:?}")]
    /// A key the layout never produces (empty, absolute, `..`, internal): refused before any I/O.
    InvalidKey(String),
    #[error("storage I/O error on {key:?}: {source}")]
    /// The local filesystem failed.
    Io {
        /// The key being read or written.
        key: String,
        #[source]
        /// The error.
        source: std::io::Error,
    },
    #[error("storage error on {key:?}: {message}")]
    /// The remote store (S3) failed; `message` is its error without credentials or URLs.
    Backend {
        /// The key being read or written.
        key: String,
        /// What the store said.
        message: String,
    },
}

impl Error {
    /// An [`Error::Io`] on `key`.
    pub fn io(key: &str, source: std::io::Error) -> Self {
        Error::Io {
            key: key.to_owned(),
            source,
        }
    }
    /// Whether the key does not exist (as opposed to a failure to find out).
    pub fn is_not_found(&self) -> bool {
        matches!(self, Error::NotFound(_))
    }
}

/// The result of a bucket operation.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Bytes read as they are consumed: memory stays bounded whatever the object's size.
pub type ByteStream = Pin<Box<dyn tokio::io::AsyncRead + Send>>;

/// Decides, once a [`Bucket::put_stream`] has read its whole stream, whether it is written.
pub type Accept = dyn Fn() -> bool + Send + Sync;

/// A request a client can make to the bucket itself, without credentials of its own.
#[derive(Clone, PartialEq, Eq)]
pub struct Presigned {
    /// The URL, signature included: a secret, never logged.
    pub url: String,
    /// Headers the request must carry.
    pub headers: Vec<(String, String)>,
    /// How long the URL is valid.
    pub expires_in: Duration,
}

impl std::fmt::Debug for Presigned {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // The URL grants access: never printed.
        f.debug_struct("Presigned")
            .field("expires_in", &self.expires_in)
            .finish_non_exhaustive()
    }
}

/// One bucket (or one directory standing in for it).
#[async_trait]
pub trait Bucket: Send + Sync + std::fmt::Debug + 'static {
    /// The whole object with its tag; [`Error::NotFound`] when missing.
    async fn get(&self, key: &str) -> Result<GetResult>;

    /// The object if its tag is no longer `etag`; `Ok(None)` when it is unchanged. On S3 this
    /// is a GET with `If-None-Match`, answered 304 without a body when nothing changed: a
    /// cached copy is revalidated in one round trip that carries no data.
    async fn get_if_changed(&self, key: &str, etag: &ETag) -> Result<Option<GetResult>> {
        let got = self.get(key).await?;
        Ok((got.etag != *etag).then_some(got))
    }

    /// Bytes `range` of an object; a range past the end is cut at the end.
    async fn get_range(&self, key: &str, range: Range<u64>) -> Result<Bytes>;

    /// Copy the whole object into a new local file at `path`, streaming, and return its size.
    async fn get_to_file(&self, key: &str, path: &Path) -> Result<u64>;

    /// Write `data` atomically under `mode`, returning the new tag.
    async fn put(&self, key: &str, data: Bytes, mode: PutMode) -> Result<ETag>;

    /// Write the content of the local file at `path` atomically under `mode`, streaming.
    async fn put_file(&self, key: &str, path: &Path, mode: PutMode) -> Result<ETag>;

    /// Every object whose key starts with `prefix`, in key order.
    async fn list(&self, prefix: &str) -> Result<Vec<ObjectMeta>>;

    /// Remove an object; removing a missing object is not an error.
    async fn delete(&self, key: &str) -> Result<()>;

    /// The names of the folders right below `prefix` (which ends in `/`): the next path
    /// component of every key under it that has one more `/`, each once, sorted. On S3 a
    /// listing with a delimiter, which does not read the keys inside the folders.
    async fn list_folders(&self, prefix: &str) -> Result<Vec<String>> {
        let mut out: Vec<String> = self
            .list(prefix)
            .await?
            .into_iter()
            .filter_map(|m| {
                let rest = m.key.strip_prefix(prefix)?;
                rest.split_once('/').map(|(folder, _)| folder.to_owned())
            })
            .collect();
        out.dedup();
        Ok(out)
    }

    /// Remove every key of `keys` (missing ones are fine). On S3 batches of 1,000 keys a call.
    async fn delete_many(&self, keys: &[String]) -> Result<()> {
        for key in keys {
            self.delete(key).await?;
        }
        Ok(())
    }

    /// An object's size and time, without its content; [`Error::NotFound`] when missing.
    async fn head(&self, key: &str) -> Result<ObjectMeta>;

    /// The whole object as a stream read as it is consumed; [`Error::NotFound`] when missing.
    async fn get_stream(&self, key: &str) -> Result<ByteStream>;

    /// Write everything `data` yields under `mode`, streaming (memory stays bounded), but only
    /// if `accept`, asked once the stream has ended, says so: a content checked while it
    /// passes (its hash, its size) is never visible under `key` unless it passed. Atomic like
    /// `put`. `Ok(None)`: refused by `accept`, nothing written.
    async fn put_stream(
        &self,
        key: &str,
        data: ByteStream,
        mode: PutMode,
        accept: &Accept,
    ) -> Result<Option<ETag>>;

    /// Copy an object to another key under `mode`, inside the bucket (no bytes pass through
    /// this process where the backend can avoid it); atomic like `put`.
    async fn copy(&self, from: &str, to: &str, mode: PutMode) -> Result<ETag>;

    /// A URL a client can GET the object from for `ttl`, when the backend has such URLs
    /// (S3); `None` for a local directory, whose objects the server must serve itself.
    async fn presign_get(&self, _key: &str, _ttl: Duration) -> Result<Option<Presigned>> {
        Ok(None)
    }

    /// [`Bucket::presign_get`], with the `Content-Disposition` the bucket answers the URL
    /// with (a browser saves the download under the file's name, not the key's).
    async fn presign_get_as(
        &self,
        key: &str,
        ttl: Duration,
        _content_disposition: &str,
    ) -> Result<Option<Presigned>> {
        self.presign_get(key, ttl).await
    }

    /// A URL a client can PUT exactly `size` bytes to for `ttl`, overwriting whatever is
    /// there; `None` when the backend has no such URLs.
    async fn presign_put(
        &self,
        _key: &str,
        _ttl: Duration,
        _size: u64,
    ) -> Result<Option<Presigned>> {
        Ok(None)
    }

    /// Where the object lives on the local disk, when the backend is a directory: readers can
    /// then use it in place instead of caching a copy.
    fn local_path(&self, _key: &str) -> Option<PathBuf> {
        None
    }

    /// The most memory one [`Bucket::put_stream`] holds at once (S3 buffers a part), so that
    /// callers can reserve it from a budget before they start one.
    fn put_stream_memory(&self) -> u64 {
        0
    }
}

/// Keys are relative, `/`-separated, with no empty, `.` or `..` components: a key can never
/// escape the bucket's root on a filesystem backend.
pub fn validate_key(key: &str) -> Result<()> {
    let ok = !key.is_empty()
        && !key.starts_with('/')
        && key.len() <= 1024
        && !key.contains('\\')
        && !key.contains('\0')
        && key
            .split('/')
            .all(|c| !c.is_empty() && c != "." && c != "..");
    if ok {
        Ok(())
    } else {
        Err(Error::InvalidKey(key.to_owned()))
    }
}

/// The tag of a content, as the filesystem and memory backends compute it.
pub fn content_etag(data: &[u8]) -> ETag {
    ETag(crate::format::content_id(data))
}

#[cfg(test)]
pub(crate) mod contract {
    //! The behaviour every backend must show, run against each of them.
    use super::*;
    use std::sync::Arc;

    /// Folders are listed one level deep, and many keys go at once.
    async fn check_folders(bucket: &dyn Bucket) -> Result<()> {
        for key in [
            "f/ws/a/x",
            "f/ws/a/y/z",
            "f/ws/b/x",
            "f/ws/top",
            "f/other/x",
        ] {
            bucket
                .put(key, Bytes::from_static(b"1"), PutMode::Overwrite)
                .await?;
        }
        assert_eq!(bucket.list_folders("f/ws/").await?, ["a", "b"]);
        assert_eq!(bucket.list_folders("f/none/").await?, Vec::<String>::new());
        let all: Vec<String> = bucket
            .list("f/")
            .await?
            .into_iter()
            .map(|m| m.key)
            .collect();
        bucket.delete_many(&all).await?;
        bucket.delete_many(&["f/never".to_owned()]).await?;
        assert!(bucket.list("f/").await?.is_empty());
        Ok(())
    }

    pub(crate) async fn check(bucket: Arc<dyn Bucket>) -> Result<()> {
        check_folders(bucket.as_ref()).await?;
        // create-only
        let e1 = bucket
            .put("r/a", Bytes::from_static(b"one"), PutMode::Create)
            .await?;
        assert!(matches!(
            bucket
                .put("r/a", Bytes::from_static(b"two"), PutMode::Create)
                .await,
            Err(Error::PreconditionFailed(_))
        ));
        // replace-only
        let e2 = bucket
            .put(
                "r/a",
                Bytes::from_static(b"two"),
                PutMode::Update(e1.clone()),
            )
            .await?;
        assert!(matches!(
            bucket
                .put("r/a", Bytes::from_static(b"three"), PutMode::Update(e1))
                .await,
            Err(Error::PreconditionFailed(_))
        ));
        assert!(matches!(
            bucket
                .put(
                    "r/missing",
                    Bytes::from_static(b"x"),
                    PutMode::Update(e2.clone())
                )
                .await,
            Err(Error::PreconditionFailed(_))
        ));
        let got = bucket.get("r/a").await?;
        assert_eq!(&got.data[..], b"two");
        assert_eq!(got.etag, e2);
        // revalidation: unchanged answers nothing, changed answers the new object
        assert!(bucket.get_if_changed("r/a", &e2).await?.is_none());
        let changed = bucket
            .get_if_changed("r/a", &ETag("other".into()))
            .await?
            .map(|g| (g.data, g.etag));
        assert_eq!(changed, Some((Bytes::from_static(b"two"), e2.clone())));
        assert!(bucket
            .get_if_changed("r/none", &e2)
            .await
            .is_err_and(|e| e.is_not_found()));
        // ranges
        bucket
            .put(
                "r/b/c",
                Bytes::from_static(b"0123456789"),
                PutMode::Overwrite,
            )
            .await?;
        assert_eq!(&bucket.get_range("r/b/c", 2..5).await?[..], b"234");
        assert_eq!(&bucket.get_range("r/b/c", 8..50).await?[..], b"89");
        // listing by prefix
        bucket
            .put("s/x", Bytes::from_static(b"x"), PutMode::Overwrite)
            .await?;
        let keys: Vec<String> = bucket
            .list("r/")
            .await?
            .into_iter()
            .map(|m| m.key)
            .collect();
        assert_eq!(keys, vec!["r/a".to_string(), "r/b/c".to_string()]);
        // files in and out
        let dir = tempfile::tempdir().map_err(|e| Error::io("tmp", e))?;
        let src = dir.path().join("src");
        std::fs::write(&src, b"file content").map_err(|e| Error::io("tmp", e))?;
        bucket.put_file("r/f", &src, PutMode::Create).await?;
        let dst = dir.path().join("dst");
        assert_eq!(bucket.get_to_file("r/f", &dst).await?, 12);
        assert_eq!(
            std::fs::read(&dst).map_err(|e| Error::io("tmp", e))?,
            b"file content"
        );
        // Update of a missing key, from a file too.
        let missing_src = dir.path().join("missing-src");
        std::fs::write(&missing_src, b"y").map_err(|e| Error::io("tmp", e))?;
        assert!(matches!(
            bucket
                .put_file("r/missing", &missing_src, PutMode::Update(e2.clone()))
                .await,
            Err(Error::PreconditionFailed(_))
        ));
        // head, streams, copies
        assert_eq!(bucket.head("r/f").await?.size, 12);
        assert!(bucket
            .head("r/nothing")
            .await
            .is_err_and(|e| e.is_not_found()));
        let mut read = Vec::new();
        tokio::io::AsyncReadExt::read_to_end(&mut bucket.get_stream("r/f").await?, &mut read)
            .await
            .map_err(|e| Error::io("r/f", e))?;
        assert_eq!(read, b"file content");
        let stream = |data: &'static [u8]| -> ByteStream { Box::pin(data) };
        let refused = bucket
            .put_stream("r/s", stream(b"rejected"), PutMode::Create, &|| false)
            .await?;
        assert!(refused.is_none());
        assert!(bucket.get("r/s").await.is_err_and(|e| e.is_not_found()));
        assert!(bucket
            .put_stream("r/s", stream(b"streamed"), PutMode::Create, &|| true)
            .await?
            .is_some());
        assert_eq!(&bucket.get("r/s").await?.data[..], b"streamed");
        assert!(matches!(
            bucket
                .put_stream("r/s", stream(b"again"), PutMode::Create, &|| true)
                .await,
            Err(Error::PreconditionFailed(_))
        ));
        bucket.copy("r/s", "r/copy", PutMode::Create).await?;
        assert_eq!(&bucket.get("r/copy").await?.data[..], b"streamed");
        assert!(matches!(
            bucket.copy("r/f", "r/copy", PutMode::Create).await,
            Err(Error::PreconditionFailed(_))
        ));
        assert!(bucket
            .copy("r/none", "r/x", PutMode::Create)
            .await
            .is_err_and(|e| e.is_not_found()));
        // delete
        bucket.delete("r/a").await?;
        bucket.delete("r/a").await?;
        assert!(bucket.get("r/a").await.is_err_and(|e| e.is_not_found()));
        assert!(matches!(
            bucket.get("../etc/passwd").await,
            Err(Error::InvalidKey(_))
        ));
        // racing compare-and-swap increments: no update is lost
        let e = bucket
            .put("counter", Bytes::from_static(b"0"), PutMode::Create)
            .await?;
        drop(e);
        let mut tasks = Vec::new();
        for _ in 0..8 {
            let bucket = bucket.clone();
            tasks.push(tokio::spawn(async move {
                let mut done = 0;
                while done < 20 {
                    let cur = bucket.get("counter").await?;
                    let n: u64 = std::str::from_utf8(&cur.data)
                        .ok()
                        .and_then(|s| s.parse().ok())
                        .unwrap_or(0);
                    match bucket
                        .put(
                            "counter",
                            Bytes::from((n + 1).to_string()),
                            PutMode::Update(cur.etag),
                        )
                        .await
                    {
                        Ok(_) => done += 1,
                        Err(Error::PreconditionFailed(_)) => {}
                        Err(e) => return Err(e),
                    }
                }
                Ok::<_, Error>(())
            }));
        }
        for t in tasks {
            t.await.map_err(|e| Error::Backend {
                key: "task".into(),
                message: e.to_string(),
            })??;
        }
        assert_eq!(&bucket.get("counter").await?.data[..], b"160");
        Ok(())
    }
}
