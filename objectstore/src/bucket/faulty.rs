//! A bucket that misbehaves as real ones do, on purpose and reproducibly: a wrapper for
//! simulations (as a retry or metrics layer would wrap a bucket), driven by a seed.
//!
//! What it injects, each with its own probability ([`Faults`]):
//! - **errors before the call takes effect**: nothing happened, the caller sees an error;
//! - **errors after the call took effect**: the write happened, the caller sees an error (a
//!   timeout, a connection reset after the request was processed) or, for a conditional
//!   write, `PreconditionFailed`, as a client's own retry of a write that had succeeded gets;
//! - **latency**: a random delay before each call;
//! - **stale listings**: keys written recently left out of a listing, as an eventually
//!   consistent listing (or a cache a moment old) shows them.
//!
//! [`FaultyBucket::heal`] turns every fault off (to check invariants at the end of a run).
//! The same seed and the same sequence of calls give the same faults.

use std::collections::HashMap;
use std::ops::Range;
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use async_trait::async_trait;
use bytes::Bytes;

use super::{Accept, Bucket, ByteStream, ETag, Error, GetResult, ObjectMeta, PutMode, Result};

/// How often each fault happens (each a probability from 0 to 1).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Faults {
    /// A call fails without taking effect.
    pub fail_before: f64,
    /// A write takes effect, then the caller is told it failed.
    pub fail_after: f64,
    /// Of the writes failed after taking effect, the share reported as `PreconditionFailed`
    /// (when conditional) instead of a plain error.
    pub after_as_precondition: f64,
    /// Most delay added before a call.
    pub max_latency: Duration,
    /// A key written within `stale_for` is left out of a listing.
    pub stale_list: f64,
    /// How long a write counts as recent for [`Faults::stale_list`].
    pub stale_for: Duration,
}

impl Default for Faults {
    fn default() -> Self {
        Faults {
            fail_before: 0.05,
            fail_after: 0.05,
            after_as_precondition: 0.5,
            max_latency: Duration::from_millis(5),
            stale_list: 0.3,
            stale_for: Duration::from_millis(200),
        }
    }
}

/// A small, seedable generator (splitmix64): reproducible faults without a dependency.
#[derive(Debug)]
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    fn chance(&mut self, p: f64) -> bool {
        p > 0.0 && (self.next() >> 11) as f64 / (1u64 << 53) as f64 <= p
    }
}

/// A bucket wrapper that injects [`Faults`].
#[derive(Debug)]
pub struct FaultyBucket {
    inner: Arc<dyn Bucket>,
    faults: Faults,
    rng: Mutex<Rng>,
    healed: AtomicBool,
    written: Mutex<HashMap<String, Instant>>,
    /// Reads of keys ending in one of these fail every time, until healed.
    failing_reads: Mutex<Vec<String>>,
}

/// Where a write's fault falls.
enum WriteFault {
    None,
    Before,
    After,
}

impl FaultyBucket {
    /// `inner` with `faults`, drawn from `seed`.
    pub fn new(inner: Arc<dyn Bucket>, faults: Faults, seed: u64) -> Self {
        FaultyBucket {
            inner,
            faults,
            rng: Mutex::new(Rng(seed)),
            healed: AtomicBool::new(false),
            written: Mutex::new(HashMap::new()),
            failing_reads: Mutex::new(Vec::new()),
        }
    }

    /// From now until healed, every read of a key ending in `suffix` fails before it takes
    /// effect (a fault at one known step, besides the random ones).
    pub fn fail_reads_of(&self, suffix: &str) {
        if let Ok(mut failing) = self.failing_reads.lock() {
            failing.push(suffix.to_owned());
        }
    }

    /// Stop injecting faults.
    pub fn heal(&self) {
        self.healed.store(true, Ordering::SeqCst);
    }

    fn draw<T>(&self, f: impl FnOnce(&mut Rng) -> T, healthy: T) -> T {
        if self.healed.load(Ordering::SeqCst) {
            return healthy;
        }
        match self.rng.lock() {
            Ok(mut rng) => f(&mut rng),
            Err(_) => healthy,
        }
    }

    async fn latency(&self) {
        let max = self.faults.max_latency.as_micros() as u64;
        let wait = self.draw(|r| if max == 0 { 0 } else { r.next() % max }, 0);
        if wait > 0 {
            tokio::time::sleep(Duration::from_micros(wait)).await;
        }
    }

    fn injected(key: &str, when: &str) -> Error {
        Error::Backend {
            key: key.to_owned(),
            message: format!("injected fault ({when} the call took effect)"),
        }
    }

    async fn read_fault(&self, key: &str) -> Result<()> {
        self.latency().await;
        let failing = !self.healed.load(Ordering::SeqCst)
            && self
                .failing_reads
                .lock()
                .is_ok_and(|f| f.iter().any(|s| key.ends_with(s.as_str())));
        if failing {
            return Err(Self::injected(key, "before"));
        }
        if self.draw(|r| r.chance(self.faults.fail_before), false) {
            return Err(Self::injected(key, "before"));
        }
        Ok(())
    }

    async fn write_fault(&self, key: &str) -> Result<WriteFault> {
        self.latency().await;
        let fault = self.draw(
            |r| {
                if r.chance(self.faults.fail_before) {
                    WriteFault::Before
                } else if r.chance(self.faults.fail_after) {
                    WriteFault::After
                } else {
                    WriteFault::None
                }
            },
            WriteFault::None,
        );
        if let WriteFault::Before = fault {
            return Err(Self::injected(key, "before"));
        }
        Ok(fault)
    }

    /// The result of a write that took effect, as the caller is told it.
    fn after<T>(&self, key: &str, mode: &PutMode, fault: WriteFault, done: Result<T>) -> Result<T> {
        if let WriteFault::After = fault {
            if done.is_ok() {
                let conditional = !matches!(mode, PutMode::Overwrite);
                let as_precondition = conditional
                    && self.draw(|r| r.chance(self.faults.after_as_precondition), false);
                return Err(if as_precondition {
                    Error::PreconditionFailed(key.to_owned())
                } else {
                    Self::injected(key, "after")
                });
            }
        }
        done
    }

    fn remember(&self, key: &str) {
        if let Ok(mut w) = self.written.lock() {
            // Only recent writes matter: the map stays as small as the stale window.
            w.retain(|_, at| at.elapsed() < self.faults.stale_for);
            w.insert(key.to_owned(), Instant::now());
        }
    }
}

#[async_trait]
impl Bucket for FaultyBucket {
    async fn get(&self, key: &str) -> Result<GetResult> {
        self.read_fault(key).await?;
        self.inner.get(key).await
    }

    async fn get_if_changed(&self, key: &str, etag: &ETag) -> Result<Option<GetResult>> {
        self.read_fault(key).await?;
        self.inner.get_if_changed(key, etag).await
    }

    async fn get_range(&self, key: &str, range: Range<u64>) -> Result<Bytes> {
        self.read_fault(key).await?;
        self.inner.get_range(key, range).await
    }

    async fn get_to_file(&self, key: &str, path: &Path) -> Result<u64> {
        self.read_fault(key).await?;
        self.inner.get_to_file(key, path).await
    }

    async fn put(&self, key: &str, data: Bytes, mode: PutMode) -> Result<ETag> {
        let fault = self.write_fault(key).await?;
        let done = self.inner.put(key, data, mode.clone()).await;
        if done.is_ok() {
            self.remember(key);
        }
        self.after(key, &mode, fault, done)
    }

    async fn put_file(&self, key: &str, path: &Path, mode: PutMode) -> Result<ETag> {
        let fault = self.write_fault(key).await?;
        let done = self.inner.put_file(key, path, mode.clone()).await;
        if done.is_ok() {
            self.remember(key);
        }
        self.after(key, &mode, fault, done)
    }

    async fn list(&self, prefix: &str) -> Result<Vec<ObjectMeta>> {
        self.read_fault(prefix).await?;
        let mut listed = self.inner.list(prefix).await?;
        let recent: Vec<String> = match self.written.lock() {
            Ok(w) => w
                .iter()
                .filter(|(_, at)| at.elapsed() < self.faults.stale_for)
                .map(|(k, _)| k.clone())
                .collect(),
            Err(_) => Vec::new(),
        };
        if !recent.is_empty() {
            listed.retain(|m| {
                !(recent.contains(&m.key) && self.draw(|r| r.chance(self.faults.stale_list), false))
            });
        }
        Ok(listed)
    }

    async fn delete(&self, key: &str) -> Result<()> {
        let fault = self.write_fault(key).await?;
        let done = self.inner.delete(key).await;
        self.after(key, &PutMode::Overwrite, fault, done)
    }

    async fn list_folders(&self, prefix: &str) -> Result<Vec<String>> {
        self.read_fault(prefix).await?;
        self.inner.list_folders(prefix).await
    }

    async fn head(&self, key: &str) -> Result<ObjectMeta> {
        self.read_fault(key).await?;
        self.inner.head(key).await
    }

    async fn get_stream(&self, key: &str) -> Result<ByteStream> {
        self.read_fault(key).await?;
        self.inner.get_stream(key).await
    }

    async fn put_stream(
        &self,
        key: &str,
        data: ByteStream,
        mode: PutMode,
        accept: &Accept,
    ) -> Result<Option<ETag>> {
        let fault = self.write_fault(key).await?;
        let done = self.inner.put_stream(key, data, mode.clone(), accept).await;
        if matches!(done, Ok(Some(_))) {
            self.remember(key);
        }
        self.after(key, &mode, fault, done)
    }

    async fn copy(&self, from: &str, to: &str, mode: PutMode) -> Result<ETag> {
        let fault = self.write_fault(to).await?;
        let done = self.inner.copy(from, to, mode.clone()).await;
        if done.is_ok() {
            self.remember(to);
        }
        self.after(to, &mode, fault, done)
    }

    fn local_path(&self, key: &str) -> Option<std::path::PathBuf> {
        self.inner.local_path(key)
    }

    fn put_stream_memory(&self) -> u64 {
        self.inner.put_stream_memory()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::MemoryBucket;

    #[tokio::test]
    async fn faults_are_reproducible_and_writes_after_faults_land() {
        let run = |seed| async move {
            let inner: Arc<dyn Bucket> = Arc::new(MemoryBucket::new());
            let faults = Faults {
                fail_before: 0.2,
                fail_after: 0.2,
                after_as_precondition: 1.0,
                max_latency: Duration::ZERO,
                stale_list: 0.0,
                stale_for: Duration::ZERO,
            };
            let bucket = FaultyBucket::new(inner.clone(), faults, seed);
            let mut outcomes = Vec::new();
            for i in 0..200 {
                let key = format!("k{i}");
                let told = bucket
                    .put(&key, Bytes::from_static(b"x"), PutMode::Create)
                    .await;
                let landed = inner.get(&key).await.is_ok();
                outcomes.push((told.is_ok(), landed));
                // A write reported as done always landed.
                assert!(told.is_err() || landed);
                if let Err(Error::PreconditionFailed(_)) = told {
                    assert!(landed, "a precondition failure injected after the write");
                }
            }
            outcomes
        };
        let a = run(7).await;
        assert_eq!(a, run(7).await, "the same seed gives the same faults");
        assert_ne!(a, run(8).await);
        assert!(
            a.iter().any(|(told, landed)| !told && *landed),
            "no fault after effect"
        );
        assert!(
            a.iter().any(|(told, landed)| !told && !landed),
            "no fault before effect"
        );
    }

    #[tokio::test]
    async fn healed_buckets_behave() {
        let bucket = FaultyBucket::new(
            Arc::new(MemoryBucket::new()),
            Faults {
                fail_before: 1.0,
                ..Faults::default()
            },
            1,
        );
        assert!(bucket.get("x").await.is_err());
        bucket.heal();
        bucket
            .put("x", Bytes::from_static(b"1"), PutMode::Create)
            .await
            .unwrap();
        assert_eq!(bucket.get("x").await.unwrap().data.as_ref(), b"1");
        assert_eq!(bucket.list("").await.unwrap().len(), 1);
    }
}
