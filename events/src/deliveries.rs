//! The delivery log of a webhook: one record per attempt, readable over the API and the
//! source of redeliveries. Headers are kept without signatures; the payload is kept as sent.

use std::collections::BTreeMap;
use std::sync::Arc;

use bytes::Bytes;
use objectstore::bucket::{self, Bucket, PutMode};
use objectstore::layout::RepoKeys;
use serde::{Deserialize, Serialize};

/// Delivery records kept per webhook; older ones are deleted.
pub const KEEP: usize = 100;

/// One attempt to deliver a payload.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Delivery {
    /// The delivery's id (`X-GitHub-Delivery`, `webhook-id`): the same on every attempt and
    /// redelivery of one payload.
    pub id: String,
    /// `push` or `ping`.
    pub event: String,
    /// The event's number, for push deliveries.
    pub seq: Option<u64>,
    /// The ref, for push deliveries.
    pub ref_name: Option<String>,
    /// Which attempt this was (1 first).
    pub attempt: u32,
    /// Asked for over the API.
    pub redelivery: bool,
    /// When the attempt started, milliseconds since the epoch.
    pub time_ms: u64,
    /// The request's headers, signatures left out.
    pub request_headers: BTreeMap<String, String>,
    /// The body sent.
    pub payload: String,
    /// The answer's status, if one came.
    pub status: Option<u16>,
    /// How long the attempt took.
    pub duration_ms: u64,
    /// Why it failed, if it did.
    pub error: Option<String>,
    /// The start of the answer's body.
    pub response: Option<String>,
}

/// The delivery log of a repository's webhooks.
#[derive(Debug, Clone)]
pub struct DeliveryLog {
    bucket: Arc<dyn Bucket>,
    keys: RepoKeys,
}

impl DeliveryLog {
    /// The log of the repository whose keys are `keys`.
    pub fn new(bucket: Arc<dyn Bucket>, keys: RepoKeys) -> Self {
        DeliveryLog { bucket, keys }
    }

    /// Record an attempt, then drop the oldest records beyond [`KEEP`].
    pub async fn record(&self, hook: &str, delivery: &Delivery) -> Result<(), bucket::Error> {
        let data = serde_json::to_vec(delivery).map_err(|e| bucket::Error::Backend {
            key: hook.to_owned(),
            message: e.to_string(),
        })?;
        let key = self.keys.delivery(hook, delivery.time_ms, &delivery.id);
        self.bucket
            .put(&key, Bytes::from(data), PutMode::Overwrite)
            .await?;
        let listed = self.bucket.list(&self.keys.deliveries_dir(hook)).await?;
        if listed.len() > KEEP {
            for old in &listed[..listed.len() - KEEP] {
                self.bucket.delete(&old.key).await?;
            }
        }
        Ok(())
    }

    /// The newest `limit` attempts, newest first.
    pub async fn list(&self, hook: &str, limit: usize) -> Result<Vec<Delivery>, bucket::Error> {
        let listed = self.bucket.list(&self.keys.deliveries_dir(hook)).await?;
        let mut out = Vec::new();
        for meta in listed.iter().rev().take(limit) {
            let data = self.bucket.get(&meta.key).await?.data;
            if let Ok(d) = serde_json::from_slice::<Delivery>(&data) {
                out.push(d);
            }
        }
        Ok(out)
    }

    /// The newest attempt of delivery `id`.
    pub async fn get(&self, hook: &str, id: &str) -> Result<Option<Delivery>, bucket::Error> {
        let listed = self.bucket.list(&self.keys.deliveries_dir(hook)).await?;
        let suffix = format!("-{id}.json");
        match listed.iter().rev().find(|m| m.key.ends_with(&suffix)) {
            Some(meta) => {
                let data = self.bucket.get(&meta.key).await?.data;
                Ok(serde_json::from_slice(&data).ok())
            }
            None => Ok(None),
        }
    }

    /// Forget a removed webhook's log.
    pub async fn delete_all(&self, hook: &str) -> Result<(), bucket::Error> {
        for meta in self.bucket.list(&self.keys.deliveries_dir(hook)).await? {
            self.bucket.delete(&meta.key).await?;
        }
        Ok(())
    }
}
