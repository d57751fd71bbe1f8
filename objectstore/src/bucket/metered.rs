//! A bucket that counts its calls: each call is one round trip to S3 (or one file operation),
//! so the counts say what an operation costs, for operators (`/metrics`) and for tests that
//! keep that cost from growing.

use std::ops::Range;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use bytes::Bytes;

use super::{Accept, Bucket, ByteStream, ETag, GetResult, ObjectMeta, Presigned, PutMode, Result};

/// The kinds of call counted, in the order [`BucketCalls::counts`] gives them.
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

/// Calls made, by kind.
#[derive(Debug, Default)]
pub struct BucketCalls {
    counts: [AtomicU64; 8],
}

impl BucketCalls {
    fn inc(&self, kind: usize) {
        self.counts[kind].fetch_add(1, Ordering::Relaxed);
    }

    /// Each kind of [`CALL_KINDS`] with its count.
    pub fn counts(&self) -> Vec<(&'static str, u64)> {
        CALL_KINDS
            .iter()
            .zip(&self.counts)
            .map(|(k, c)| (*k, c.load(Ordering::Relaxed)))
            .collect()
    }
}

/// Run one call, logging (at trace level) its kind, key and duration.
async fn timed<T>(kind: usize, key: &str, call: impl std::future::Future<Output = T>) -> T {
    let started = std::time::Instant::now();
    let out = call.await;
    tracing::trace!(
        kind = CALL_KINDS[kind],
        key,
        micros = started.elapsed().as_micros() as u64,
        "bucket call"
    );
    out
}

const GET: usize = 0;
const GET_IF_CHANGED: usize = 1;
const GET_RANGE: usize = 2;
const PUT: usize = 3;
const LIST: usize = 4;
const HEAD: usize = 5;
const DELETE: usize = 6;
const COPY: usize = 7;

/// Wraps a bucket, counting each call in a [`BucketCalls`] (whole-object reads and streams
/// count as `get`, every kind of write as `put`).
#[derive(Debug)]
pub struct MeteredBucket {
    inner: Arc<dyn Bucket>,
    calls: Arc<BucketCalls>,
}

impl MeteredBucket {
    /// Count the calls made to `inner` in `calls`.
    pub fn new(inner: Arc<dyn Bucket>, calls: Arc<BucketCalls>) -> Self {
        MeteredBucket { inner, calls }
    }
}

#[async_trait]
impl Bucket for MeteredBucket {
    async fn get(&self, key: &str) -> Result<GetResult> {
        self.calls.inc(GET);
        timed(GET, key, self.inner.get(key)).await
    }

    async fn get_if_changed(&self, key: &str, etag: &ETag) -> Result<Option<GetResult>> {
        self.calls.inc(GET_IF_CHANGED);
        timed(GET_IF_CHANGED, key, self.inner.get_if_changed(key, etag)).await
    }

    async fn get_range(&self, key: &str, range: Range<u64>) -> Result<Bytes> {
        self.calls.inc(GET_RANGE);
        timed(GET_RANGE, key, self.inner.get_range(key, range)).await
    }

    async fn get_to_file(&self, key: &str, path: &Path) -> Result<u64> {
        self.calls.inc(GET);
        timed(GET, key, self.inner.get_to_file(key, path)).await
    }

    async fn put(&self, key: &str, data: Bytes, mode: PutMode) -> Result<ETag> {
        self.calls.inc(PUT);
        timed(PUT, key, self.inner.put(key, data, mode)).await
    }

    async fn put_file(&self, key: &str, path: &Path, mode: PutMode) -> Result<ETag> {
        self.calls.inc(PUT);
        timed(PUT, key, self.inner.put_file(key, path, mode)).await
    }

    async fn list(&self, prefix: &str) -> Result<Vec<ObjectMeta>> {
        self.calls.inc(LIST);
        timed(LIST, prefix, self.inner.list(prefix)).await
    }

    async fn delete(&self, key: &str) -> Result<()> {
        self.calls.inc(DELETE);
        timed(DELETE, key, self.inner.delete(key)).await
    }

    async fn head(&self, key: &str) -> Result<ObjectMeta> {
        self.calls.inc(HEAD);
        timed(HEAD, key, self.inner.head(key)).await
    }

    async fn get_stream(&self, key: &str) -> Result<ByteStream> {
        self.calls.inc(GET);
        timed(GET, key, self.inner.get_stream(key)).await
    }

    async fn put_stream(
        &self,
        key: &str,
        data: ByteStream,
        mode: PutMode,
        accept: &Accept,
    ) -> Result<Option<ETag>> {
        self.calls.inc(PUT);
        timed(PUT, key, self.inner.put_stream(key, data, mode, accept)).await
    }

    async fn copy(&self, from: &str, to: &str, mode: PutMode) -> Result<ETag> {
        self.calls.inc(COPY);
        timed(COPY, from, self.inner.copy(from, to, mode)).await
    }

    async fn presign_get(&self, key: &str, ttl: Duration) -> Result<Option<Presigned>> {
        self.inner.presign_get(key, ttl).await
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
