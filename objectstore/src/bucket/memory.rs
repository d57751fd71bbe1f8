//! A bucket in memory, for unit tests.

use std::collections::BTreeMap;
use std::ops::Range;
use std::path::Path;
use std::sync::Mutex;

use async_trait::async_trait;
use bytes::Bytes;

use super::{
    content_etag, validate_key, Accept, Bucket, ByteStream, ETag, Error, GetResult, ObjectMeta,
    PutMode, Result,
};

/// An object and when it was written (seconds since the epoch).
#[derive(Debug, Clone)]
struct Stored {
    data: Bytes,
    modified: i64,
}

#[derive(Debug, Default)]
/// A bucket in memory, for unit tests: same contract as the others, nothing persisted.
pub struct MemoryBucket {
    objects: Mutex<BTreeMap<String, Stored>>,
}

fn now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs() as i64)
}

impl MemoryBucket {
    /// An empty bucket.
    pub fn new() -> Self {
        Self::default()
    }

    /// A second bucket holding the same objects now; later writes to either are not seen by
    /// the other (a test's fixture, kept aside).
    pub fn duplicate(&self) -> Self {
        MemoryBucket {
            objects: Mutex::new(self.lock().clone()),
        }
    }

    /// Make this bucket hold exactly what `from` holds (a fixture restored between cases).
    pub fn restore(&self, from: &MemoryBucket) {
        let copy = from.lock().clone();
        *self.lock() = copy;
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, BTreeMap<String, Stored>> {
        // A poisoned map is still consistent: every mutation is a single insert or remove.
        self.objects.lock().unwrap_or_else(|p| p.into_inner())
    }
}

#[async_trait]
impl Bucket for MemoryBucket {
    async fn get(&self, key: &str) -> Result<GetResult> {
        validate_key(key)?;
        let data = self
            .lock()
            .get(key)
            .map(|s| s.data.clone())
            .ok_or_else(|| Error::NotFound(key.to_owned()))?;
        Ok(GetResult {
            etag: content_etag(&data),
            data,
        })
    }

    async fn get_range(&self, key: &str, range: Range<u64>) -> Result<Bytes> {
        let data = self.get(key).await?.data;
        let end = (range.end as usize).min(data.len());
        let start = (range.start as usize).min(end);
        Ok(data.slice(start..end))
    }

    async fn get_to_file(&self, key: &str, path: &Path) -> Result<u64> {
        let data = self.get(key).await?.data;
        std::fs::write(path, &data).map_err(|e| Error::io(key, e))?;
        Ok(data.len() as u64)
    }

    async fn put(&self, key: &str, data: Bytes, mode: PutMode) -> Result<ETag> {
        validate_key(key)?;
        let mut objects = self.lock();
        let ok = match (&mode, objects.get(key)) {
            (PutMode::Overwrite, _) => true,
            (PutMode::Create, existing) => existing.is_none(),
            (PutMode::Update(tag), Some(existing)) => content_etag(&existing.data) == *tag,
            (PutMode::Update(_), None) => false,
        };
        if !ok {
            return Err(Error::PreconditionFailed(key.to_owned()));
        }
        let etag = content_etag(&data);
        objects.insert(
            key.to_owned(),
            Stored {
                data,
                modified: now(),
            },
        );
        Ok(etag)
    }

    async fn put_file(&self, key: &str, path: &Path, mode: PutMode) -> Result<ETag> {
        let data = std::fs::read(path).map_err(|e| Error::io(key, e))?;
        self.put(key, Bytes::from(data), mode).await
    }

    async fn list(&self, prefix: &str) -> Result<Vec<ObjectMeta>> {
        Ok(self
            .lock()
            .range(prefix.to_owned()..)
            .take_while(|(k, _)| k.starts_with(prefix))
            .map(|(k, v)| ObjectMeta {
                key: k.clone(),
                size: v.data.len() as u64,
                last_modified: v.modified,
            })
            .collect())
    }

    async fn delete(&self, key: &str) -> Result<()> {
        validate_key(key)?;
        self.lock().remove(key);
        Ok(())
    }

    async fn head(&self, key: &str) -> Result<ObjectMeta> {
        validate_key(key)?;
        let stored = self
            .lock()
            .get(key)
            .cloned()
            .ok_or_else(|| Error::NotFound(key.to_owned()))?;
        Ok(ObjectMeta {
            key: key.to_owned(),
            size: stored.data.len() as u64,
            last_modified: stored.modified,
        })
    }

    async fn get_stream(&self, key: &str) -> Result<ByteStream> {
        let data = self.get(key).await?.data;
        Ok(Box::pin(std::io::Cursor::new(data)))
    }

    async fn put_stream(
        &self,
        key: &str,
        mut data: ByteStream,
        mode: PutMode,
        accept: &Accept,
    ) -> Result<Option<ETag>> {
        let mut buf = Vec::new();
        tokio::io::AsyncReadExt::read_to_end(&mut data, &mut buf)
            .await
            .map_err(|e| Error::io(key, e))?;
        if !accept() {
            return Ok(None);
        }
        self.put(key, Bytes::from(buf), mode).await.map(Some)
    }

    async fn copy(&self, from: &str, to: &str, mode: PutMode) -> Result<ETag> {
        let data = self.get(from).await?.data;
        self.put(to, data, mode).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;

    #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
    async fn meets_the_contract() -> Result<()> {
        super::super::contract::check(Arc::new(MemoryBucket::new())).await
    }
}
