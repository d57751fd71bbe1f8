//! How far each endpoint got, and who is delivering to it: one small object per endpoint,
//! changed only by compare-and-swap. Taking the lease is such a change, so of several replicas
//! one delivers to an endpoint at a time; a lease that ran out (its replica died) is taken
//! over, and the event it was delivering is sent again (at least once).

use std::collections::BTreeMap;
use std::sync::Arc;

use bytes::Bytes;
use objectstore::bucket::{self, Bucket, PutMode};
use objectstore::layout::RepoKeys;
use objectstore::ETag;
use serde::{Deserialize, Serialize};

use crate::log::Cursor;

/// A replica's claim on an endpoint until a time.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Lease {
    /// The replica.
    pub owner: String,
    /// Until when, milliseconds since the epoch.
    pub until_ms: u64,
}

/// The next try of an event that failed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Retry {
    /// The event.
    pub seq: u64,
    /// Attempts made.
    pub attempts: u32,
    /// When the first attempt was made, milliseconds since the epoch.
    pub first_ms: u64,
    /// Not before, milliseconds since the epoch.
    pub next_ms: u64,
}

/// The outcome of one ref of a mirror push.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RefResult {
    /// The ref.
    pub name: String,
    /// What became of it; stored as `ok`, `up to date`, or the reason it was not pushed.
    pub status: RefStatus,
}

/// What became of one ref of a mirror push.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(from = "String", into = "String")]
pub enum RefStatus {
    /// Pushed.
    Ok,
    /// The remote had it already.
    UpToDate,
    /// Not pushed: the remote's (or our) reason.
    NotPushed(String),
}

impl RefStatus {
    /// Whether the ref is where it should be on the remote.
    pub fn is_success(&self) -> bool {
        matches!(self, RefStatus::Ok | RefStatus::UpToDate)
    }
}

impl From<String> for RefStatus {
    fn from(s: String) -> Self {
        match s.as_str() {
            "ok" => RefStatus::Ok,
            "up to date" => RefStatus::UpToDate,
            _ => RefStatus::NotPushed(s),
        }
    }
}

impl From<RefStatus> for String {
    fn from(s: RefStatus) -> Self {
        s.to_string()
    }
}

impl std::fmt::Display for RefStatus {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            RefStatus::Ok => f.write_str("ok"),
            RefStatus::UpToDate => f.write_str("up to date"),
            RefStatus::NotPushed(reason) => f.write_str(reason),
        }
    }
}

/// One endpoint's progress and status.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct EndpointState {
    /// The last event handled.
    pub cursor: Cursor,
    /// Who delivers now.
    #[serde(default)]
    pub lease: Option<Lease>,
    /// A failed event waiting for its next try.
    #[serde(default)]
    pub retry: Option<Retry>,
    /// Last attempt, milliseconds since the epoch.
    #[serde(default)]
    pub last_attempt_ms: Option<u64>,
    /// Last success, milliseconds since the epoch.
    #[serde(default)]
    pub last_success_ms: Option<u64>,
    /// The last error, if the last attempt failed.
    #[serde(default)]
    pub last_error: Option<String>,
    /// Authentication failures in a row (mirrors).
    #[serde(default)]
    pub auth_failures: u32,
    /// Why deliveries are paused (mirrors that failed authentication too often).
    #[serde(default)]
    pub paused: Option<String>,
    /// Mirrors: every ref must be pushed (new mirror, `sync_mirror`).
    #[serde(default)]
    pub full_sync: bool,
    /// Mirrors: the remote's refs as last seen or set by us (the expected old values).
    #[serde(default, with = "crate::hex_id::map")]
    pub remote_refs: BTreeMap<String, gix_hash::ObjectId>,
    /// Mirrors: the outcome of each ref in the last push.
    #[serde(default)]
    pub ref_results: Vec<RefResult>,
    /// Events delivered since the endpoint was added.
    #[serde(default)]
    pub delivered: u64,
    /// Version sync: the publish under way (saved before anything of it is written, so that
    /// whoever resumes it uses the same version number).
    #[serde(default)]
    pub publishing: Option<Publishing>,
    /// Version sync: the last version published.
    #[serde(default)]
    pub last_version: Option<u64>,
    /// Since when the event log has lacked records between the cursor and the refs,
    /// milliseconds since the epoch (see [`crate::log::EventChain::missing`]): deliveries
    /// wait for the listing to catch up, for a while.
    #[serde(default)]
    pub gap_since_ms: Option<u64>,
}

/// A version being published from a push event.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Publishing {
    /// The event.
    pub seq: u64,
    /// The commit; stored as hex.
    #[serde(with = "crate::hex_id")]
    pub commit: gix_hash::ObjectId,
    /// The version number taken (or being taken) for it.
    pub version: u64,
    /// When it started, seconds since the epoch.
    pub started: i64,
}

/// Milliseconds since the epoch.
pub fn now_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64)
}

/// The state objects of one repository's endpoints.
#[derive(Debug, Clone)]
pub struct StateStore {
    bucket: Arc<dyn Bucket>,
    keys: RepoKeys,
}

/// A state as read, with the tag a change must match.
#[derive(Debug, Clone)]
pub struct Versioned {
    /// The state.
    pub state: EndpointState,
    /// Its tag.
    pub etag: ETag,
}

impl StateStore {
    /// The states of the repository whose keys are `keys`.
    pub fn new(bucket: Arc<dyn Bucket>, keys: RepoKeys) -> Self {
        StateStore { bucket, keys }
    }

    /// Write `state` under `mode`.
    async fn write(
        &self,
        endpoint: &str,
        state: &EndpointState,
        mode: PutMode,
    ) -> Result<ETag, bucket::Error> {
        let data = serde_json::to_vec(state).map_err(|e| corrupt(endpoint, e))?;
        self.bucket
            .put(&self.keys.endpoint_state(endpoint), Bytes::from(data), mode)
            .await
    }

    /// Create the state of a new endpoint (an existing one is kept).
    pub async fn create(&self, endpoint: &str, state: &EndpointState) -> Result<(), bucket::Error> {
        match self.write(endpoint, state, PutMode::Create).await {
            Ok(_) | Err(bucket::Error::PreconditionFailed(_)) => Ok(()),
            Err(e) => Err(e),
        }
    }

    /// The state of `endpoint`, if it has one.
    pub async fn get(&self, endpoint: &str) -> Result<Option<Versioned>, bucket::Error> {
        match self.bucket.get(&self.keys.endpoint_state(endpoint)).await {
            Ok(got) => Ok(Some(Versioned {
                state: serde_json::from_slice(&got.data).map_err(|e| corrupt(endpoint, e))?,
                etag: got.etag,
            })),
            Err(e) if e.is_not_found() => Ok(None),
            Err(e) => Err(e),
        }
    }

    /// Write `state` whatever is there: an endpoint started again from a new position.
    pub async fn replace(
        &self,
        endpoint: &str,
        state: &EndpointState,
    ) -> Result<(), bucket::Error> {
        self.write(endpoint, state, PutMode::Overwrite)
            .await
            .map(|_| ())
    }

    /// Replace the state read as `read` with `state`; `None` when somebody changed it since.
    pub async fn put(
        &self,
        endpoint: &str,
        read: &ETag,
        state: &EndpointState,
    ) -> Result<Option<ETag>, bucket::Error> {
        match self
            .write(endpoint, state, PutMode::Update(read.clone()))
            .await
        {
            Ok(tag) => Ok(Some(tag)),
            Err(bucket::Error::PreconditionFailed(_)) => Ok(None),
            Err(e) => Err(e),
        }
    }

    /// Change the state by compare-and-swap, retrying on concurrent changes (API calls).
    pub async fn update(
        &self,
        endpoint: &str,
        mut change: impl FnMut(&mut EndpointState),
    ) -> Result<bool, bucket::Error> {
        for _ in 0..8 {
            let Some(mut read) = self.get(endpoint).await? else {
                return Ok(false);
            };
            change(&mut read.state);
            if self.put(endpoint, &read.etag, &read.state).await?.is_some() {
                return Ok(true);
            }
        }
        Ok(false)
    }

    /// Delete an endpoint's state (the endpoint was removed).
    pub async fn delete(&self, endpoint: &str) -> Result<(), bucket::Error> {
        self.bucket
            .delete(&self.keys.endpoint_state(endpoint))
            .await
    }

    /// Take the lease of `endpoint` for `owner` for `lease_ms`, if nobody else holds it: the
    /// state with its new tag, or `None`.
    pub async fn acquire(
        &self,
        endpoint: &str,
        owner: &str,
        lease_ms: u64,
    ) -> Result<Option<Versioned>, bucket::Error> {
        self.acquire_from(endpoint, owner, lease_ms, None).await
    }

    /// [`StateStore::acquire`], also taking a lease that `gone` (a replica known to have
    /// stopped) still holds.
    pub async fn acquire_from(
        &self,
        endpoint: &str,
        owner: &str,
        lease_ms: u64,
        gone: Option<&str>,
    ) -> Result<Option<Versioned>, bucket::Error> {
        let Some(mut read) = self.get(endpoint).await? else {
            return Ok(None);
        };
        let now = now_ms();
        if read
            .state
            .lease
            .as_ref()
            .is_some_and(|l| l.owner != owner && l.until_ms > now && Some(l.owner.as_str()) != gone)
        {
            return Ok(None);
        }
        read.state.lease = Some(Lease {
            owner: owner.to_owned(),
            until_ms: now + lease_ms,
        });
        Ok(self
            .put(endpoint, &read.etag, &read.state)
            .await?
            .map(|etag| Versioned {
                state: read.state,
                etag,
            }))
    }
}

fn corrupt(endpoint: &str, e: serde_json::Error) -> bucket::Error {
    bucket::Error::Backend {
        key: endpoint.to_owned(),
        message: format!("unreadable endpoint state: {e}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use objectstore::MemoryBucket;

    #[tokio::test]
    async fn one_replica_holds_the_lease_until_it_runs_out() -> Result<(), bucket::Error> {
        let store = StateStore::new(Arc::new(MemoryBucket::new()), RepoKeys::at("r/"));
        store.create("hook-1", &EndpointState::default()).await?;
        let a = store.acquire("hook-1", "replica-a", 60_000).await?;
        assert!(a.is_some());
        assert!(store
            .acquire("hook-1", "replica-b", 60_000)
            .await?
            .is_none());
        // Its own lease it may renew.
        assert!(store
            .acquire("hook-1", "replica-a", 60_000)
            .await?
            .is_some());
        // A stale tag loses.
        let a = a.map(|v| v.etag).unwrap_or_else(|| ETag(String::new()));
        store
            .update("hook-1", |s| s.last_error = Some("changed".into()))
            .await?;
        assert!(store
            .put("hook-1", &a, &EndpointState::default())
            .await?
            .is_none());
        // An expired lease is taken over.
        store
            .update("hook-1", |s| {
                s.lease = Some(Lease {
                    owner: "replica-a".into(),
                    until_ms: 1,
                })
            })
            .await?;
        assert!(store
            .acquire("hook-1", "replica-b", 60_000)
            .await?
            .is_some());
        Ok(())
    }
}
