//! A bucket that counts its calls: each call is one round trip to S3 (or one file operation),
//! so the counts say what an operation costs, for operators (`/metrics`) and for tests that
//! keep that cost from growing.

use std::ops::Range;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use bytes::Bytes;

use super::{Accept, Bucket, ByteStream, ETag, GetResult, ObjectMeta, Presigned, PutMode, Result};

/// The kinds of call, as the `kind` label names them.
pub const CALL_KINDS: [&str; 8] = [
    "get",
    "get_if_changed",
    "get_range",
    "put",
    "list",
    "head",
    "delete",
    "copy",
];

/// Calls to the bucket, by `kind` and `backend` (a counter).
pub const BUCKET_CALLS: &str = "artifact_git_bucket_calls_total";
/// How long each call to the bucket took, by `kind` and `backend` (a histogram, seconds).
pub const BUCKET_CALL_SECONDS: &str = "artifact_git_bucket_call_seconds";

const GET: usize = 0;
const GET_IF_CHANGED: usize = 1;
const GET_RANGE: usize = 2;
const PUT: usize = 3;
const LIST: usize = 4;
const HEAD: usize = 5;
const DELETE: usize = 6;
const COPY: usize = 7;

/// Wraps a bucket, counting and timing each call through the `metrics` facade
/// ([`BUCKET_CALLS`], [`BUCKET_CALL_SECONDS`]; whole-object reads and streams count as `get`,
/// every kind of write as `put`).
#[derive(Debug)]
pub struct MeteredBucket {
    inner: Arc<dyn Bucket>,
    backend: &'static str,
}

impl MeteredBucket {
    /// Meter the calls made to `inner`, labelled with its `backend` (`s3`, `fs`, ...).
    pub fn new(inner: Arc<dyn Bucket>, backend: &'static str) -> Self {
        MeteredBucket { inner, backend }
    }

    /// Count a call of `kind` and time it.
    async fn timed<T>(
        &self,
        kind: usize,
        key: &str,
        call: impl std::future::Future<Output = T>,
    ) -> T {
        let labels = [("kind", CALL_KINDS[kind]), ("backend", self.backend)];
        metrics::counter!(BUCKET_CALLS, &labels).increment(1);
        let started = std::time::Instant::now();
        let out = call.await;
        let took = started.elapsed();
        metrics::histogram!(BUCKET_CALL_SECONDS, &labels).record(took.as_secs_f64());
        tracing::trace!(
            kind = CALL_KINDS[kind],
            key,
            micros = took.as_micros() as u64,
            "bucket call"
        );
        out
    }
}

#[async_trait]
impl Bucket for MeteredBucket {
    async fn get(&self, key: &str) -> Result<GetResult> {
        self.timed(GET, key, self.inner.get(key)).await
    }

    async fn get_if_changed(&self, key: &str, etag: &ETag) -> Result<Option<GetResult>> {
        self.timed(GET_IF_CHANGED, key, self.inner.get_if_changed(key, etag))
            .await
    }

    async fn get_range(&self, key: &str, range: Range<u64>) -> Result<Bytes> {
        self.timed(GET_RANGE, key, self.inner.get_range(key, range))
            .await
    }

    async fn get_to_file(&self, key: &str, path: &Path) -> Result<u64> {
        self.timed(GET, key, self.inner.get_to_file(key, path))
            .await
    }

    async fn put(&self, key: &str, data: Bytes, mode: PutMode) -> Result<ETag> {
        self.timed(PUT, key, self.inner.put(key, data, mode)).await
    }

    async fn put_file(&self, key: &str, path: &Path, mode: PutMode) -> Result<ETag> {
        self.timed(PUT, key, self.inner.put_file(key, path, mode))
            .await
    }

    async fn list(&self, prefix: &str) -> Result<Vec<ObjectMeta>> {
        self.timed(LIST, prefix, self.inner.list(prefix)).await
    }

    async fn delete(&self, key: &str) -> Result<()> {
        self.timed(DELETE, key, self.inner.delete(key)).await
    }

    async fn list_folders(&self, prefix: &str) -> Result<Vec<String>> {
        self.timed(LIST, prefix, self.inner.list_folders(prefix))
            .await
    }

    async fn delete_many(&self, keys: &[String]) -> Result<()> {
        let first = keys.first().map(String::as_str).unwrap_or_default();
        self.timed(DELETE, first, self.inner.delete_many(keys))
            .await
    }

    async fn head(&self, key: &str) -> Result<ObjectMeta> {
        self.timed(HEAD, key, self.inner.head(key)).await
    }

    async fn get_stream(&self, key: &str) -> Result<ByteStream> {
        self.timed(GET, key, self.inner.get_stream(key)).await
    }

    async fn put_stream(
        &self,
        key: &str,
        data: ByteStream,
        mode: PutMode,
        accept: &Accept,
    ) -> Result<Option<ETag>> {
        self.timed(PUT, key, self.inner.put_stream(key, data, mode, accept))
            .await
    }

    async fn copy(&self, from: &str, to: &str, mode: PutMode) -> Result<ETag> {
        self.timed(COPY, from, self.inner.copy(from, to, mode))
            .await
    }

    async fn presign_get(&self, key: &str, ttl: Duration) -> Result<Option<Presigned>> {
        self.inner.presign_get(key, ttl).await
    }

    async fn presign_get_as(
        &self,
        key: &str,
        ttl: Duration,
        content_disposition: &str,
    ) -> Result<Option<Presigned>> {
        self.inner
            .presign_get_as(key, ttl, content_disposition)
            .await
    }

    async fn presign_put(&self, key: &str, ttl: Duration, size: u64) -> Result<Option<Presigned>> {
        self.inner.presign_put(key, ttl, size).await
    }

    fn local_path(&self, key: &str) -> Option<PathBuf> {
        self.inner.local_path(key)
    }

    fn put_stream_memory(&self) -> u64 {
        self.inner.put_stream_memory()
    }
}
