//! LFS objects of one repository in the bucket: what to answer to a batch request, and the
//! checks that keep every stored object true to its oid.

use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::Duration;

use objectstore::bucket::{self, Bucket, ByteStream, PutMode};
use objectstore::layout::RepoKeys;
use sha2::Digest;
use tokio::io::{AsyncRead, AsyncReadExt, ReadBuf};

use crate::Oid;

/// How objects move.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Transfer {
    /// How long presigned URLs (and the server's own actions) are valid.
    pub url_ttl: Duration,
    /// Uploads larger than this go through the server (streamed to the bucket in parts while
    /// hashed) instead of to a presigned URL: S3 takes at most 5 GiB in one PUT.
    pub proxy_above: u64,
    /// The largest object accepted.
    pub max_object: u64,
}

impl Default for Transfer {
    fn default() -> Self {
        Transfer {
            url_ttl: Duration::from_secs(3600),
            proxy_above: 5 << 30,
            max_object: 100 << 30,
        }
    }
}

/// The server's own endpoints for one repository, for actions that point at it.
#[derive(Debug, Clone)]
pub struct Links {
    /// `<repository URL>/info/lfs/objects/`: an oid appended is where to GET or PUT it.
    pub objects: String,
    /// `<repository URL>/info/lfs/verify`.
    pub verify: String,
    /// Headers the verify action carries: the caller's own `Authorization`. `git lfs` sends no
    /// credentials with any action of an object whose upload is presigned (`authenticated`),
    /// yet verify is the server's endpoint and needs them. (Uploads and downloads through the
    /// server carry a token of their own in the URL instead: a header would follow the URL
    /// wherever `--public-url` points, another origin included.)
    pub caller_headers: Vec<(String, String)>,
    /// Signs the server's object URLs (a token in the query, good for that object alone), for
    /// clients that send no credentials with an action at all.
    pub signer: Option<UrlSigner>,
}

/// Given an oid and whether it is for an upload, the token of that object's URL.
pub type MintToken = dyn Fn(&str, bool) -> Option<String> + Send + Sync;

/// Mints the token of one object's URL.
#[derive(Clone)]
pub struct UrlSigner(pub Arc<MintToken>);

impl std::fmt::Debug for UrlSigner {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("UrlSigner")
    }
}

impl Links {
    /// The server's URL of object `oid` (with `query`, and the signed token when there is a
    /// signer).
    fn object_url(&self, oid: &Oid, write: bool, query: &[(&str, String)]) -> String {
        let mut q = url_query(query);
        if let Some(token) = self
            .signer
            .as_ref()
            .and_then(|s| (s.0)(oid.as_str(), write))
        {
            q.push(if q.is_empty() { '?' } else { '&' });
            q.push_str("token=");
            q.push_str(&token);
        }
        format!("{}{oid}{q}", self.objects)
    }
}

fn url_query(pairs: &[(&str, String)]) -> String {
    pairs
        .iter()
        .enumerate()
        .map(|(i, (k, v))| format!("{}{k}={v}", if i == 0 { '?' } else { '&' }))
        .collect()
}

/// How long an upload waits in quarantine for its verify before maintenance deletes it
/// ([`Store::sweep_incoming`]): longer than any presigned URL lives (S3 allows 7 days). It is
/// also how long a verify action is valid: the verify checks a quarantined upload, not a
/// signature, and an upload may start just before its URL expires and take hours. A verify
/// action that expired with its upload URL made `git lfs` ask again after every upload that
/// took longer than the URLs' life less its 5 s margin, and upload the object again, forever.
pub const UNVERIFIED_UPLOADS_KEPT_FOR: Duration = Duration::from_secs(8 * 24 * 3600);

/// What [`Store::verify`] found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verified {
    /// The object was stored before (by an upload through the server, or another client).
    AlreadyStored,
    /// The quarantined upload checked out and is now the stored object.
    Stored,
}

/// One action of a batch answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Action {
    /// Where (a presigned URL is a secret: never logged).
    pub href: String,
    /// Headers to send with it.
    pub headers: Vec<(String, String)>,
    /// How long it stays valid.
    pub expires_in: Duration,
}

/// What to answer for one object of a batch.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ObjectPlan {
    /// The size to report.
    pub size: u64,
    /// `download`, `upload`, `verify`; none for an upload the store already has.
    pub actions: Vec<(&'static str, Action)>,
    /// The actions need no credentials (presigned).
    pub authenticated: bool,
    /// A per-object error: code and message.
    pub error: Option<(u16, String)>,
    /// The server will carry the bytes itself.
    pub proxied: bool,
}

/// A failure of the store (not of what a client sent).
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// The bucket failed.
    #[error(transparent)]
    Bucket(#[from] bucket::Error),
    /// Reading a stream failed.
    #[error("reading an object failed: {0}")]
    Io(#[from] std::io::Error),
}

/// Why an upload was not stored.
#[derive(Debug, thiserror::Error)]
pub enum VerifyError {
    /// Nothing was uploaded for this oid.
    #[error("object {0} was not uploaded")]
    NotUploaded(Oid),
    /// The uploaded bytes have another size.
    #[error("object {oid} has {actual} bytes, not {expected}")]
    SizeMismatch {
        /// The object.
        oid: Oid,
        /// What the client declared.
        expected: u64,
        /// What was uploaded.
        actual: u64,
    },
    /// The uploaded bytes do not hash to the oid.
    #[error("the uploaded content does not hash to {0}")]
    HashMismatch(Oid),
    /// The store failed.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// The upload stopped before its end (the client went away, or stalled past the
    /// timeout): the client's failure, not the store's.
    #[error("the upload was cut short: {0}")]
    Incomplete(String),
}

impl From<bucket::Error> for VerifyError {
    fn from(e: bucket::Error) -> Self {
        VerifyError::Store(StoreError::Bucket(e))
    }
}

/// A stream that hashes and counts what passes through it, and notes why it failed if it
/// did (so that a store failure can be told from the client's).
struct Hashing {
    inner: ByteStream,
    state: Arc<Mutex<(sha2::Sha256, u64)>>,
    failed: Arc<Mutex<Option<String>>>,
}

impl AsyncRead for Hashing {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<std::io::Result<()>> {
        let before = buf.filled().len();
        let polled = self.inner.as_mut().poll_read(cx, buf);
        match &polled {
            Poll::Ready(Ok(())) => {
                let new = &buf.filled()[before..];
                let mut state = self.state.lock().unwrap_or_else(|p| p.into_inner());
                state.0.update(new);
                state.1 += new.len() as u64;
            }
            Poll::Ready(Err(e)) => {
                *self.failed.lock().unwrap_or_else(|p| p.into_inner()) = Some(e.to_string());
            }
            Poll::Pending => {}
        }
        polled
    }
}

/// Hash and count a whole stream.
async fn hash_stream(mut stream: ByteStream) -> Result<(Oid, u64), StoreError> {
    let mut hasher = sha2::Sha256::new();
    let mut buf = vec![0u8; 256 << 10];
    let mut total = 0u64;
    loop {
        let n = stream.read(&mut buf).await?;
        if n == 0 {
            break;
        }
        hasher.update(&buf[..n]);
        total += n as u64;
    }
    Ok((Oid::from_hasher(hasher), total))
}

/// A nonce for a quarantine key: 16 random bytes, hex.
fn nonce() -> Result<String, StoreError> {
    let mut bytes = [0u8; 16];
    getrandom::getrandom(&mut bytes)
        .map_err(|e| StoreError::Io(std::io::Error::other(e.to_string())))?;
    Ok(hex::encode(bytes))
}

/// The LFS objects of one repository.
#[derive(Debug, Clone)]
pub struct Store {
    bucket: Arc<dyn Bucket>,
    keys: RepoKeys,
    transfer: Transfer,
}

impl Store {
    /// The objects of the repository whose keys are `keys`.
    pub fn new(bucket: Arc<dyn Bucket>, keys: RepoKeys, transfer: Transfer) -> Self {
        Store {
            bucket,
            keys,
            transfer,
        }
    }

    /// The stored size of an object, if it is stored.
    pub async fn stored_size(&self, oid: &Oid) -> Result<Option<u64>, StoreError> {
        match self.bucket.head(&self.keys.lfs_object(oid.as_str())).await {
            Ok(meta) => Ok(Some(meta.size)),
            Err(e) if e.is_not_found() => Ok(None),
            Err(e) => Err(e.into()),
        }
    }

    /// What to answer to a download request for `oid`.
    pub async fn plan_download(&self, oid: &Oid, links: &Links) -> Result<ObjectPlan, StoreError> {
        let Some(size) = self.stored_size(oid).await? else {
            return Ok(ObjectPlan {
                error: Some((404, "object does not exist".into())),
                ..ObjectPlan::default()
            });
        };
        let key = self.keys.lfs_object(oid.as_str());
        Ok(
            match self.bucket.presign_get(&key, self.transfer.url_ttl).await? {
                Some(url) => ObjectPlan {
                    size,
                    actions: vec![(
                        "download",
                        Action {
                            href: url.url,
                            headers: url.headers,
                            expires_in: url.expires_in,
                        },
                    )],
                    authenticated: true,
                    error: None,
                    proxied: false,
                },
                None => ObjectPlan {
                    size,
                    actions: vec![(
                        "download",
                        Action {
                            href: links.object_url(oid, false, &[]),
                            headers: Vec::new(),
                            expires_in: self.transfer.url_ttl,
                        },
                    )],
                    authenticated: false,
                    error: None,
                    proxied: true,
                },
            },
        )
    }

    /// What to answer to an upload request for `oid` of `size` bytes.
    pub async fn plan_upload(
        &self,
        oid: &Oid,
        size: u64,
        links: &Links,
    ) -> Result<ObjectPlan, StoreError> {
        if size > self.transfer.max_object {
            return Ok(ObjectPlan {
                size,
                error: Some((
                    422,
                    format!(
                        "object of {size} bytes exceeds the limit of {} bytes",
                        self.transfer.max_object
                    ),
                )),
                ..ObjectPlan::default()
            });
        }
        if self.stored_size(oid).await? == Some(size) {
            // Already stored: no actions, the client skips it.
            return Ok(ObjectPlan {
                size,
                ..ObjectPlan::default()
            });
        }
        let ttl = self.transfer.url_ttl;
        let verify = |href: String| Action {
            href,
            headers: links.caller_headers.clone(),
            expires_in: UNVERIFIED_UPLOADS_KEPT_FOR,
        };
        if size <= self.transfer.proxy_above {
            let nonce = nonce()?;
            let key = self.keys.lfs_incoming(oid.as_str(), &nonce);
            if let Some(url) = self.bucket.presign_put(&key, ttl, size).await? {
                return Ok(ObjectPlan {
                    size,
                    actions: vec![
                        (
                            "upload",
                            Action {
                                href: url.url,
                                headers: url.headers,
                                expires_in: url.expires_in,
                            },
                        ),
                        ("verify", verify(format!("{}?upload={nonce}", links.verify))),
                    ],
                    authenticated: true,
                    error: None,
                    proxied: false,
                });
            }
        }
        Ok(ObjectPlan {
            size,
            actions: vec![
                (
                    "upload",
                    Action {
                        // The declared size travels with the URL, so an upload of another
                        // size is refused as it would be by a presigned URL.
                        href: links.object_url(oid, true, &[("size", size.to_string())]),
                        headers: Vec::new(),
                        expires_in: ttl,
                    },
                ),
                ("verify", verify(links.verify.clone())),
            ],
            authenticated: false,
            error: None,
            proxied: true,
        })
    }

    /// Check an upload: when the object is stored with this size already, fine; otherwise the
    /// quarantined upload `nonce` must have `size` bytes hashing to `oid`, and only then is it
    /// copied to its final key. A rejected upload is deleted.
    pub async fn verify(
        &self,
        oid: &Oid,
        size: u64,
        nonce: Option<&str>,
    ) -> Result<Verified, VerifyError> {
        match self.stored_size(oid).await? {
            Some(stored) if stored == size => return Ok(Verified::AlreadyStored),
            Some(stored) => {
                return Err(VerifyError::SizeMismatch {
                    oid: oid.clone(),
                    expected: size,
                    actual: stored,
                })
            }
            None => {}
        }
        let Some(nonce) =
            nonce.filter(|n| n.len() == 32 && n.bytes().all(|b| b.is_ascii_hexdigit()))
        else {
            return Err(VerifyError::NotUploaded(oid.clone()));
        };
        let quarantine = self.keys.lfs_incoming(oid.as_str(), nonce);
        let uploaded = match self.bucket.head(&quarantine).await {
            Ok(meta) => meta.size,
            Err(e) if e.is_not_found() => return Err(VerifyError::NotUploaded(oid.clone())),
            Err(e) => return Err(e.into()),
        };
        let outcome = if uploaded != size {
            Err(VerifyError::SizeMismatch {
                oid: oid.clone(),
                expected: size,
                actual: uploaded,
            })
        } else {
            let (actual, bytes) = hash_stream(self.bucket.get_stream(&quarantine).await?).await?;
            if actual != *oid || bytes != size {
                Err(VerifyError::HashMismatch(oid.clone()))
            } else {
                match self
                    .bucket
                    .copy(
                        &quarantine,
                        &self.keys.lfs_object(oid.as_str()),
                        PutMode::Create,
                    )
                    .await
                {
                    Ok(_) => Ok(Verified::Stored),
                    Err(bucket::Error::PreconditionFailed(_)) => Ok(Verified::AlreadyStored),
                    Err(e) => Err(e.into()),
                }
            }
        };
        self.bucket.delete(&quarantine).await?;
        outcome
    }

    /// Store an upload that comes through the server: `body` is hashed as it streams to the
    /// bucket, and the object becomes visible only if it has `size` bytes hashing to `oid`.
    pub async fn receive(&self, oid: &Oid, size: u64, body: ByteStream) -> Result<(), VerifyError> {
        let state = Arc::new(Mutex::new((sha2::Sha256::new(), 0u64)));
        let failed = Arc::new(Mutex::new(None));
        let stream: ByteStream = Box::pin(Hashing {
            // One byte more than declared is enough to see that it is too much.
            inner: Box::pin(body.take(size.saturating_add(1))),
            state: state.clone(),
            failed: failed.clone(),
        });
        let result = Arc::new(Mutex::new(None));
        let accept = {
            let (state, result, expected) = (state.clone(), result.clone(), oid.clone());
            move || {
                let state = state.lock().unwrap_or_else(|p| p.into_inner());
                let actual = Oid::from_hasher(state.0.clone());
                let ok = actual == expected && state.1 == size;
                *result.lock().unwrap_or_else(|p| p.into_inner()) = Some(state.1);
                ok
            }
        };
        match self
            .bucket
            .put_stream(
                &self.keys.lfs_object(oid.as_str()),
                stream,
                PutMode::Create,
                &accept,
            )
            .await
        {
            Ok(Some(_)) | Err(bucket::Error::PreconditionFailed(_)) => Ok(()),
            Ok(None) => {
                let actual = result
                    .lock()
                    .unwrap_or_else(|p| p.into_inner())
                    .unwrap_or(0);
                if actual != size {
                    Err(VerifyError::SizeMismatch {
                        oid: oid.clone(),
                        expected: size,
                        actual,
                    })
                } else {
                    Err(VerifyError::HashMismatch(oid.clone()))
                }
            }
            // The upload itself failed (the put fails with it): the client's doing.
            Err(e) => match failed.lock().unwrap_or_else(|p| p.into_inner()).take() {
                Some(reason) => Err(VerifyError::Incomplete(reason)),
                None => Err(e.into()),
            },
        }
    }

    /// A URL the client may fetch the object from itself (with a `Range` of its own), when
    /// the bucket signs URLs and the request needs no headers: a secret, never logged. The
    /// bucket answers it with `content_disposition` (the file's name for a browser).
    pub async fn presigned_download(
        &self,
        oid: &Oid,
        content_disposition: &str,
    ) -> Result<Option<String>, StoreError> {
        let key = self.keys.lfs_object(oid.as_str());
        Ok(self
            .bucket
            .presign_get_as(&key, self.transfer.url_ttl, content_disposition)
            .await?
            .filter(|p| p.headers.is_empty())
            .map(|p| p.url))
    }

    /// `len` bytes of a stored object from `start`, streamed: from the file in place on a
    /// filesystem bucket, skipping to `start` in the object's stream otherwise.
    pub async fn read_range(
        &self,
        oid: &Oid,
        start: u64,
        len: u64,
    ) -> Result<ByteStream, StoreError> {
        let key = self.keys.lfs_object(oid.as_str());
        if let Some(path) = self.bucket.local_path(&key) {
            use tokio::io::AsyncSeekExt;
            let mut file = tokio::fs::File::open(&path).await?;
            file.seek(std::io::SeekFrom::Start(start)).await?;
            return Ok(Box::pin(file.take(len)));
        }
        let mut stream = self.bucket.get_stream(&key).await?;
        let skipped =
            tokio::io::copy(&mut (&mut stream).take(start), &mut tokio::io::sink()).await?;
        if skipped < start {
            return Err(StoreError::Io(std::io::Error::new(
                std::io::ErrorKind::UnexpectedEof,
                "the object is shorter than its pointer says",
            )));
        }
        Ok(Box::pin(stream.take(len)))
    }

    /// A stored object and its size, for a download through the server.
    pub async fn send(&self, oid: &Oid) -> Result<Option<(ByteStream, u64)>, StoreError> {
        let Some(size) = self.stored_size(oid).await? else {
            return Ok(None);
        };
        let stream = self
            .bucket
            .get_stream(&self.keys.lfs_object(oid.as_str()))
            .await?;
        Ok(Some((stream, size)))
    }

    /// Store the object at `key` of the same bucket (an artifact's file) as an LFS object,
    /// hashing it as it streams and copying it inside the bucket: its oid and size.
    pub async fn import(&self, key: &str) -> Result<(Oid, u64), StoreError> {
        let (oid, size) = hash_stream(self.bucket.get_stream(key).await?).await?;
        match self
            .bucket
            .copy(key, &self.keys.lfs_object(oid.as_str()), PutMode::Create)
            .await
        {
            Ok(_) | Err(bucket::Error::PreconditionFailed(_)) => Ok((oid, size)),
            Err(e) => Err(e.into()),
        }
    }

    /// Delete uploads that waited for verification longer than `max_age`.
    pub async fn sweep_incoming(&self, max_age: Duration) -> Result<usize, StoreError> {
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_secs() as i64);
        let mut deleted = 0;
        for meta in self.bucket.list(&self.keys.lfs_incoming_dir()).await? {
            if now - meta.last_modified >= max_age.as_secs() as i64 {
                self.bucket.delete(&meta.key).await?;
                deleted += 1;
            }
        }
        Ok(deleted)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use objectstore::MemoryBucket;

    fn stream(data: &[u8]) -> ByteStream {
        Box::pin(std::io::Cursor::new(data.to_vec()))
    }

    fn links() -> Links {
        Links {
            objects: "http://server/ws/git/a/info/lfs/objects/".into(),
            verify: "http://server/ws/git/a/info/lfs/verify".into(),
            caller_headers: Vec::new(),
            signer: None,
        }
    }

    #[tokio::test]
    async fn uploads_are_stored_only_under_the_oid_they_hash_to() -> Result<(), VerifyError> {
        let bucket = Arc::new(MemoryBucket::new());
        let store = Store::new(bucket.clone(), RepoKeys::at("r/"), Transfer::default());
        let data = b"large file content";
        let oid = Oid::of(data);
        // A memory bucket has no presigned URLs: the upload goes through the server.
        let plan = store.plan_upload(&oid, data.len() as u64, &links()).await?;
        assert!(plan.proxied);
        assert_eq!(
            plan.actions[0].1.href,
            format!("{}{oid}?size={}", links().objects, data.len())
        );
        // The verify outlives the upload URL: an upload may take longer than the URL's life.
        assert_eq!(plan.actions[1].0, "verify");
        assert_eq!(plan.actions[0].1.expires_in, Transfer::default().url_ttl);
        assert_eq!(plan.actions[1].1.expires_in, UNVERIFIED_UPLOADS_KEPT_FOR);
        assert!(UNVERIFIED_UPLOADS_KEPT_FOR > Duration::from_secs(7 * 24 * 3600));
        // Other bytes, or too many, or too few: refused, nothing stored.
        assert!(matches!(
            store
                .receive(&oid, data.len() as u64, stream(b"other content!!!!!"))
                .await,
            Err(VerifyError::HashMismatch(_))
        ));
        assert!(matches!(
            store
                .receive(
                    &oid,
                    data.len() as u64,
                    stream(b"large file content and more")
                )
                .await,
            Err(VerifyError::SizeMismatch { .. })
        ));
        assert!(matches!(
            store
                .receive(&oid, data.len() as u64, stream(b"large"))
                .await,
            Err(VerifyError::SizeMismatch { .. })
        ));
        assert_eq!(store.stored_size(&oid).await?, None);
        assert!(store.plan_download(&oid, &links()).await?.error.is_some());
        store.receive(&oid, data.len() as u64, stream(data)).await?;
        assert_eq!(store.stored_size(&oid).await?, Some(data.len() as u64));
        // Stored now: an upload of it has nothing to do; a download is served.
        assert!(store
            .plan_upload(&oid, data.len() as u64, &links())
            .await?
            .actions
            .is_empty());
        let download = store.plan_download(&oid, &links()).await?;
        assert_eq!(download.actions[0].0, "download");
        assert_eq!(
            store.verify(&oid, data.len() as u64, None).await?,
            Verified::AlreadyStored
        );
        Ok(())
    }

    #[tokio::test]
    async fn quarantined_uploads_are_verified_before_they_are_copied() -> Result<(), VerifyError> {
        let bucket = Arc::new(MemoryBucket::new());
        let keys = RepoKeys::at("r/");
        let store = Store::new(bucket.clone(), keys.clone(), Transfer::default());
        let data = b"verified content";
        let oid = Oid::of(data);
        let nonce = "0123456789abcdef0123456789abcdef";
        // Tampered: other bytes under the quarantine key.
        bucket
            .put(
                &keys.lfs_incoming(oid.as_str(), nonce),
                bytes::Bytes::from_static(b"tampered content"),
                PutMode::Overwrite,
            )
            .await?;
        assert!(matches!(
            store.verify(&oid, data.len() as u64, Some(nonce)).await,
            Err(VerifyError::HashMismatch(_))
        ));
        assert_eq!(store.stored_size(&oid).await?, None);
        assert!(matches!(
            store.verify(&oid, data.len() as u64, Some(nonce)).await,
            Err(VerifyError::NotUploaded(_))
        ));
        // Wrong size.
        bucket
            .put(
                &keys.lfs_incoming(oid.as_str(), nonce),
                bytes::Bytes::from_static(b"short"),
                PutMode::Overwrite,
            )
            .await?;
        assert!(matches!(
            store.verify(&oid, data.len() as u64, Some(nonce)).await,
            Err(VerifyError::SizeMismatch { .. })
        ));
        // A hostile nonce never reaches a key.
        assert!(matches!(
            store.verify(&oid, 1, Some("../../../packed-refs")).await,
            Err(VerifyError::NotUploaded(_))
        ));
        bucket
            .put(
                &keys.lfs_incoming(oid.as_str(), nonce),
                bytes::Bytes::from_static(data),
                PutMode::Overwrite,
            )
            .await?;
        assert_eq!(
            store.verify(&oid, data.len() as u64, Some(nonce)).await?,
            Verified::Stored
        );
        assert_eq!(store.stored_size(&oid).await?, Some(data.len() as u64));
        assert!(bucket.list(&keys.lfs_incoming_dir()).await?.is_empty());
        Ok(())
    }

    #[tokio::test]
    async fn abandoned_uploads_are_swept() -> Result<(), VerifyError> {
        let bucket = Arc::new(MemoryBucket::new());
        let keys = RepoKeys::at("r/");
        let store = Store::new(bucket.clone(), keys.clone(), Transfer::default());
        let oid = Oid::of(b"never verified");
        let key = keys.lfs_incoming(oid.as_str(), "0123456789abcdef0123456789abcdef");
        bucket
            .put(
                &key,
                bytes::Bytes::from_static(b"never verified"),
                PutMode::Overwrite,
            )
            .await?;
        store.receive(&Oid::of(b"kept"), 4, stream(b"kept")).await?;
        // Young uploads stay; old ones go; stored objects are never touched.
        assert_eq!(store.sweep_incoming(Duration::from_secs(3600)).await?, 0);
        assert_eq!(store.sweep_incoming(Duration::ZERO).await?, 1);
        assert!(bucket.list(&keys.lfs_incoming_dir()).await?.is_empty());
        assert_eq!(store.stored_size(&Oid::of(b"kept")).await?, Some(4));
        Ok(())
    }
}
