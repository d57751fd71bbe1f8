//! Small objects read on every request (a repository's refs, `HEAD`, settings), kept parsed in
//! memory and revalidated by their tag: each read is still one round trip, so every replica
//! sees every change at once, but an unchanged object costs a 304 with no body and no parsing.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use bytes::Bytes;

use super::{Bucket, ETag, Result};

/// The most objects kept; past it the cache starts over (a cache miss is one full GET).
const MAX_ENTRIES: usize = 16_384;

/// Parsed objects by key, each with the tag it was read at.
pub struct Revalidated<T> {
    entries: Mutex<HashMap<String, Entry<T>>>,
}

/// A parsed object, the tag it was read at, and when it was last known current.
struct Entry<T> {
    etag: ETag,
    value: Arc<T>,
    checked: Instant,
}

impl<T> Default for Revalidated<T> {
    fn default() -> Self {
        Revalidated {
            entries: Mutex::new(HashMap::new()),
        }
    }
}

impl<T> std::fmt::Debug for Revalidated<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Revalidated").finish_non_exhaustive()
    }
}

/// A read through a [`Revalidated`] cache.
#[derive(Debug)]
pub struct Read<T> {
    /// The parsed object.
    pub value: Arc<T>,
    /// Its tag, for a conditional write.
    pub etag: ETag,
}

impl<T> Clone for Read<T> {
    fn clone(&self) -> Self {
        Read {
            value: self.value.clone(),
            etag: self.etag.clone(),
        }
    }
}

impl<T> Revalidated<T> {
    /// The object at `key` as stored now, parsed by `parse` unless the copy kept is still
    /// current. Errors (a missing object included) are the bucket's, and forget the copy.
    pub async fn read<E>(
        &self,
        bucket: &dyn Bucket,
        key: &str,
        parse: impl FnOnce(&Bytes) -> std::result::Result<T, E>,
    ) -> Result<std::result::Result<Read<T>, E>> {
        let kept = self
            .lock()
            .get(key)
            .map(|e| (e.etag.clone(), e.value.clone()));
        let fetched = match &kept {
            Some((etag, _)) => bucket.get_if_changed(key, etag).await,
            None => bucket.get(key).await.map(Some),
        };
        let got = match fetched {
            Ok(got) => got,
            Err(e) => {
                self.lock().remove(key);
                return Err(e);
            }
        };
        match (got, kept) {
            (None, Some((etag, value))) => {
                if let Some(e) = self.lock().get_mut(key) {
                    e.checked = Instant::now();
                }
                Ok(Ok(Read { value, etag }))
            }
            (Some(got), _) => {
                let value = match parse(&got.data) {
                    Ok(v) => Arc::new(v),
                    Err(e) => return Ok(Err(e)),
                };
                self.insert(key, got.etag.clone(), value.clone());
                Ok(Ok(Read {
                    value,
                    etag: got.etag,
                }))
            }
            // "Unchanged" without a kept copy cannot happen: nothing was compared against.
            (None, None) => Err(super::Error::Backend {
                key: key.to_owned(),
                message: "answered 'not modified' to an unconditional read".into(),
            }),
        }
    }

    /// Remember `value`, just written at `key` with tag `etag` (the writer's own change is
    /// then current without a read).
    pub fn remember(&self, key: &str, etag: ETag, value: T) {
        self.insert(key, etag, Arc::new(value));
    }

    /// The copy kept for `key` if it was known current within `max_age`, without a read: only
    /// for answers that are safe when stale (a refusal that the caller's retry with
    /// credentials revisits), never for serving data.
    pub fn peek(&self, key: &str, max_age: Duration) -> Option<Arc<T>> {
        self.lock()
            .get(key)
            .filter(|e| e.checked.elapsed() <= max_age)
            .map(|e| e.value.clone())
    }

    fn insert(&self, key: &str, etag: ETag, value: Arc<T>) {
        let mut entries = self.lock();
        if entries.len() >= MAX_ENTRIES {
            entries.clear();
        }
        let checked = Instant::now();
        entries.insert(
            key.to_owned(),
            Entry {
                etag,
                value,
                checked,
            },
        );
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, Entry<T>>> {
        // Every mutation is one insert, remove or clear: a poisoned map is still consistent.
        self.entries.lock().unwrap_or_else(|p| p.into_inner())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::bucket::{MemoryBucket, MeteredBucket, PutMode, BUCKET_CALLS};
    use metrics_util::debugging::{DebugValue, DebuggingRecorder, Snapshotter};

    /// Calls of each kind the metered bucket counted since the last look (a snapshot of the
    /// debugging recorder drains its counters).
    fn counted(snapshotter: &Snapshotter) -> std::collections::HashMap<String, u64> {
        let mut out = std::collections::HashMap::new();
        for (key, _, _, value) in snapshotter.snapshot().into_vec() {
            let (DebugValue::Counter(n), true) = (value, key.key().name() == BUCKET_CALLS) else {
                continue;
            };
            for label in key.key().labels().filter(|l| l.key() == "kind") {
                *out.entry(label.value().to_owned()).or_insert(0) += n;
            }
        }
        out
    }

    #[test]
    fn unchanged_objects_are_not_parsed_again_and_changes_are_seen_at_once() {
        let recorder = DebuggingRecorder::new();
        let snapshotter = recorder.snapshotter();
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        // The calls are counted by this thread's recorder: the runtime runs on it.
        metrics::with_local_recorder(&recorder, || {
            runtime.block_on(unchanged_objects_body(&snapshotter))
        });
    }

    async fn unchanged_objects_body(snapshotter: &Snapshotter) {
        let memory: Arc<dyn Bucket> = Arc::new(MemoryBucket::new());
        let bucket = MeteredBucket::new(memory.clone(), "memory");
        let cache: Revalidated<String> = Revalidated::default();
        let parses = std::sync::atomic::AtomicUsize::new(0);
        let parse = |b: &Bytes| {
            parses.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            String::from_utf8(b.to_vec())
        };
        memory
            .put("k", Bytes::from_static(b"one"), PutMode::Overwrite)
            .await
            .unwrap();
        for _ in 0..3 {
            let read = cache.read(&bucket, "k", parse).await.unwrap().unwrap();
            assert_eq!(*read.value, "one");
        }
        assert_eq!(parses.load(std::sync::atomic::Ordering::Relaxed), 1);
        // One full read, then revalidations: each still a round trip.
        let calls = counted(snapshotter);
        let count = |kind| calls.get(kind).copied().unwrap_or(0);
        assert_eq!((count("get"), count("get_if_changed")), (1, 2));
        // Another writer's change is seen by the next read.
        memory
            .put("k", Bytes::from_static(b"two"), PutMode::Overwrite)
            .await
            .unwrap();
        let read = cache.read(&bucket, "k", parse).await.unwrap().unwrap();
        assert_eq!(*read.value, "two");
        assert_eq!(read.etag, memory.get("k").await.unwrap().etag);
        // A deleted object is an error, and is forgotten.
        memory.delete("k").await.unwrap();
        let gone = cache.read(&bucket, "k", parse).await;
        assert!(gone.is_err_and(|e| e.is_not_found()));
        assert!(cache.lock().is_empty());
        // A parse error is the caller's, and keeps nothing.
        memory
            .put("k", Bytes::from_static(b"\xff"), PutMode::Overwrite)
            .await
            .unwrap();
        assert!(cache.read(&bucket, "k", parse).await.unwrap().is_err());
        assert!(cache.lock().is_empty());
    }
}
