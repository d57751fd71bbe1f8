//! A bucket in memory, for unit tests.

use std::collections::BTreeMap;
use std::ops::Range;
use std::path::Path;
use std::sync::Mutex;

use async_trait::async_trait;
use bytes::Bytes;

use super::{
    content_etag, validate_key, Bucket, ETag, Error, GetResult, ObjectMeta, PutMode, Result,
};

#[derive(Debug, Default)]
pub struct MemoryBucket {
    objects: Mutex<BTreeMap<String, Bytes>>,
}

impl MemoryBucket {
    pub fn new() -> Self {
        Self::default()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, BTreeMap<String, Bytes>> {
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
            .cloned()
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
            (PutMode::Update(tag), Some(existing)) => content_etag(existing) == *tag,
            (PutMode::Update(_), None) => false,
        };
        if !ok {
            return Err(Error::PreconditionFailed(key.to_owned()));
        }
        let etag = content_etag(&data);
        objects.insert(key.to_owned(), data);
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
                size: v.len() as u64,
                last_modified: 0,
            })
            .collect())
    }

    async fn delete(&self, key: &str) -> Result<()> {
        validate_key(key)?;
        self.lock().remove(key);
        Ok(())
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
