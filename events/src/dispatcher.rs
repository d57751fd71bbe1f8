//! The worker every replica runs: it finds repositories with undelivered events (the pending
//! markers) and gives each endpoint its turn in the one delivery loop ([`delivery`]): lease,
//! what the endpoint has not had yet in order, cursor. The kinds of endpoint are
//! implementations of one trait: [`webhook`], [`mirror`], [`versions`]. Nothing here runs in a
//! push's path: a push only records its event and wakes the local worker.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use futures_util::StreamExt;
use objectstore::bucket::{self, Bucket};
use objectstore::layout::{RepoKeys, StorageKeys};
use objectstore::{ObjectDb, PackCache};
use refs::{RefStore, Snapshot};
use tokio::sync::Notify;
use tokio_util::sync::CancellationToken;

use crate::client::Client;
use crate::config::EndpointStore;
use crate::log::{forget_through, Cursor};
use crate::metrics;

mod delivery;
mod mirror;
mod versions;
mod webhook;

use delivery::Endpoint;

/// How the worker behaves.
#[derive(Debug, Clone)]
pub struct Settings {
    /// This replica's name in leases.
    pub replica: String,
    /// How often it looks for work without being woken.
    pub poll: Duration,
    /// How long a lease lasts (renewed after each event).
    pub lease: Duration,
    /// Time for one request to an endpoint.
    pub timeout: Duration,
    /// How long a failing webhook delivery is retried before it is given up.
    pub retry_for: Duration,
    /// The first retry's delay; each next one doubles, with jitter.
    pub backoff_base: Duration,
    /// The longest delay between retries.
    pub backoff_max: Duration,
    /// Authentication failures in a row after which a mirror is paused.
    pub auth_failures_before_pause: u32,
    /// How long a webhook or version sync waits for event records missing from the log's
    /// listing (a bucket whose listings lag behind writes) before it carries on without them.
    pub gap_grace: Duration,
    /// The server's public URL, for clone URLs in payloads.
    pub public_url: String,
    /// Where mirror packs are written before they are sent.
    pub staging: PathBuf,
}

/// Why a round failed (per-endpoint failures are recorded in their state instead).
#[derive(Debug, thiserror::Error)]
pub enum DispatchError {
    /// The bucket failed.
    #[error(transparent)]
    Bucket(#[from] bucket::Error),
    /// The refs could not be read.
    #[error(transparent)]
    Refs(#[from] refs::Error),
    /// The endpoints could not be read.
    #[error(transparent)]
    Config(#[from] crate::config::ConfigError),
    /// The objects could not be read.
    #[error("reading objects failed: {0}")]
    Objects(String),
    /// Publishing an artifact version failed.
    #[error("publishing a version failed: {0}")]
    Versions(#[from] ::versions::Error),
}

/// Where an endpoint stands after its turn.
enum Progress {
    /// It has every event up to the refs read.
    CaughtUp(u64),
    /// It is behind (retrying, or another replica is on it), at this cursor.
    Behind(u64),
}

/// The worker.
pub struct Dispatcher {
    bucket: Arc<dyn Bucket>,
    storage: StorageKeys,
    cache: Arc<PackCache>,
    /// The process's refs, kept parsed and revalidated by tag: a round after a push on this
    /// replica reads them with one conditional request (usually a 304).
    refs_cache: Arc<refs::RefsCache>,
    client: Client,
    settings: Settings,
    wake: Notify,
}

impl std::fmt::Debug for Dispatcher {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Dispatcher")
            .field("replica", &self.settings.replica)
            .finish()
    }
}

/// A random replica name.
pub fn replica_name() -> String {
    let mut b = [0u8; 6];
    let _ = getrandom::getrandom(&mut b);
    format!("replica-{}", hex::encode(b))
}

impl Dispatcher {
    /// A worker over the storage whose keys start with `storage`.
    pub fn new(
        bucket: Arc<dyn Bucket>,
        storage: StorageKeys,
        cache: Arc<PackCache>,
        client: Client,
        settings: Settings,
    ) -> Self {
        Dispatcher {
            bucket,
            storage,
            cache,
            refs_cache: Arc::default(),
            client,
            settings,
            wake: Notify::new(),
        }
    }

    /// Read refs through the process's cache (the one the server's requests use).
    pub fn with_refs_cache(mut self, cache: Arc<refs::RefsCache>) -> Self {
        self.refs_cache = cache;
        self
    }

    fn refs(&self, keys: &RepoKeys) -> RefStore {
        RefStore::cached(self.bucket.clone(), keys.clone(), self.refs_cache.clone())
    }

    /// The client requests go out through.
    pub fn client(&self) -> &Client {
        &self.client
    }

    /// The settings.
    pub fn settings(&self) -> &Settings {
        &self.settings
    }

    /// Look for work now (after a push on this replica).
    pub fn wake(&self) {
        self.wake.notify_one();
    }

    /// Work until `stop` is cancelled.
    pub async fn run(self: Arc<Self>, stop: CancellationToken) {
        let heartbeats = tokio::spawn(self.clone().heartbeats(stop.clone()));
        loop {
            tokio::select! {
                _ = stop.cancelled() => break,
                _ = self.wake.notified() => {}
                _ = tokio::time::sleep(self.settings.poll) => {}
            }
            if let Err(e) = self.round().await {
                tracing::warn!(error = %e, "event delivery round failed");
            }
        }
        let _ = heartbeats.await;
    }

    /// Say this replica is alive, every poll interval until `stop` (its own task: a round
    /// that waits on a slow endpoint must not look like a dead replica).
    async fn heartbeats(self: Arc<Self>, stop: CancellationToken) {
        let key = self.storage.replica_heartbeat(&self.settings.replica);
        loop {
            let now = crate::state::now_ms().to_string();
            let beat = self
                .bucket
                .put(&key, now.into(), bucket::PutMode::Overwrite);
            if let Err(e) = beat.await {
                tracing::debug!(error = %e, "writing the replica's heartbeat failed");
            }
            tokio::select! {
                _ = stop.cancelled() => return,
                _ = tokio::time::sleep(self.settings.poll) => {}
            }
        }
    }

    /// Whether `replica` stopped: its heartbeat is older than three poll intervals (at least
    /// three seconds). A replica with no heartbeat (an older version) is not taken for gone.
    pub(super) async fn is_gone(&self, replica: &str) -> Result<bool, DispatchError> {
        let key = self.storage.replica_heartbeat(replica);
        let beat = match self.bucket.get(&key).await {
            Ok(got) => got.data,
            Err(e) if e.is_not_found() => return Ok(false),
            Err(e) => return Err(e.into()),
        };
        let Some(at) = std::str::from_utf8(&beat)
            .ok()
            .and_then(|t| t.trim().parse::<u64>().ok())
        else {
            return Ok(false);
        };
        let silence = (3 * self.settings.poll).max(Duration::from_secs(3));
        Ok(crate::state::now_ms().saturating_sub(at) > silence.as_millis() as u64)
    }

    /// One pass over every repository with pending markers.
    pub async fn round(&self) -> Result<(), DispatchError> {
        let listed = self.bucket.list(&self.storage.pending_events_dir()).await?;
        let mut repos: BTreeMap<(String, String), Vec<Marker>> = BTreeMap::new();
        for meta in listed {
            if let Some((ws, alias, seq)) = self.storage.parse_pending_event(&meta.key) {
                repos
                    .entry((ws.to_owned(), alias.to_owned()))
                    .or_default()
                    .push(Marker {
                        seq,
                        key: meta.key.clone(),
                        modified: meta.last_modified,
                    });
            }
        }
        metrics::set(metrics::PENDING_REPOSITORIES, repos.len() as u64);
        let results: Vec<_> = futures_util::stream::iter(repos)
            .map(|((ws, alias), markers)| async move {
                let outcome = self.repository(&ws, &alias, &markers).await;
                if let Err(e) = &outcome {
                    tracing::warn!(repo = %format!("{ws}/{alias}"), error = %e, "delivering events failed");
                }
                outcome.unwrap_or(0)
            })
            .buffer_unordered(4)
            .collect()
            .await;
        metrics::set(metrics::PENDING_EVENTS, results.iter().sum());
        Ok(())
    }

    /// Deliver a repository's events: how many remain undelivered somewhere.
    async fn repository(
        &self,
        ws: &str,
        alias: &str,
        markers: &[Marker],
    ) -> Result<u64, DispatchError> {
        let keys = self.storage.artifact(ws, alias).repo();
        let snapshot = match self.refs(&keys).snapshot().await {
            Ok(s) => s,
            Err(refs::Error::NotFound) => {
                for marker in markers {
                    self.bucket.delete(&marker.key).await?;
                }
                return Ok(0);
            }
            Err(e) => return Err(e.into()),
        };
        let head = Cursor {
            seq: snapshot.seq,
            id: snapshot.content_id.clone(),
        };
        let endpoints = EndpointStore::new(self.bucket.clone(), keys.clone())
            .load()
            .await?;
        let repo = Repository {
            ws: ws.to_owned(),
            alias: alias.to_owned(),
            keys: keys.clone(),
            snapshot,
            head,
        };
        let hooks = endpoints
            .webhooks
            .iter()
            .filter(|h| h.active && (h.wants("push") || h.wants("pull_request")))
            .map(|h| Box::new(webhook::HookEndpoint(h)) as Box<dyn Endpoint + '_>);
        let mirrors = (endpoints.mirrors.iter())
            .map(|m| Box::new(mirror::MirrorEndpoint(m)) as Box<dyn Endpoint + '_>);
        let version_sync = (endpoints.versions.is_some())
            .then(|| Box::new(versions::VersionsEndpoint) as Box<dyn Endpoint + '_>);
        let mut lowest = repo.head.seq;
        let mut all_caught_up = true;
        let mut lag = 0;
        for endpoint in hooks.chain(mirrors).chain(version_sync) {
            match self.deliver_to(&repo, endpoint.as_ref()).await {
                Ok(Progress::CaughtUp(at)) => lowest = lowest.min(at),
                Ok(Progress::Behind(at)) => {
                    lowest = lowest.min(at);
                    if endpoint.kind() == "mirror" {
                        lag = lag.max(repo.head.seq.saturating_sub(at));
                    }
                    all_caught_up = false;
                }
                Err(e) => {
                    tracing::warn!(endpoint = %endpoint.id(), kind = endpoint.kind(), error = %e, "delivery round failed");
                    all_caught_up = false;
                    lowest = 0;
                }
            }
        }
        metrics::mirror_lag(lag);
        // The latest records stay (KEPT_EVENTS) for a policy to be tried on.
        let through = lowest.saturating_sub(crate::log::KEPT_EVENTS);
        if through > 0 {
            forget_through(self.bucket.as_ref(), &keys, through).await?;
        }
        let now = crate::log::now();
        for Marker { seq, key, modified } in markers {
            // A marker past the refs belongs to a push still committing, or to one that lost
            // its race (or died): the latter are dropped once surely stale.
            let done = if *seq <= repo.head.seq {
                all_caught_up
            } else {
                now - modified > 600
            };
            if done {
                self.bucket.delete(key).await?;
            }
        }
        Ok(repo.head.seq.saturating_sub(lowest))
    }

    /// The repository's objects, from a pack list read now.
    async fn objects(&self, repo: &Repository) -> Result<ObjectDb, DispatchError> {
        ObjectDb::open_with(
            self.bucket.clone(),
            repo.keys.clone(),
            self.cache.clone(),
            repo.snapshot.object_hash,
            Duration::ZERO,
        )
        .await
        .map_err(|e| DispatchError::Objects(e.to_string()))
    }
}

/// A pending marker as a round listed it.
struct Marker {
    /// The refs' sequence number the marker was written at.
    seq: u64,
    key: String,
    /// Seconds since the epoch.
    modified: i64,
}

/// A repository as one round sees it.
struct Repository {
    ws: String,
    alias: String,
    keys: RepoKeys,
    snapshot: Snapshot,
    head: Cursor,
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::log::EventChain;
    use crate::state::EndpointState;
    use objectstore::MemoryBucket;

    fn dispatcher(gap_grace: Duration) -> Result<Dispatcher, Box<dyn std::error::Error>> {
        Ok(Dispatcher::new(
            Arc::new(MemoryBucket::new()),
            StorageKeys::new(""),
            Arc::new(PackCache::new(None, 0)),
            Client::new(false)?,
            Settings {
                replica: "test".into(),
                poll: Duration::from_secs(1),
                lease: Duration::from_secs(1),
                timeout: Duration::from_secs(1),
                retry_for: Duration::from_secs(1),
                backoff_base: Duration::from_secs(1),
                backoff_max: Duration::from_secs(1),
                auth_failures_before_pause: 1,
                public_url: String::new(),
                staging: PathBuf::new(),
                gap_grace,
            },
        ))
    }

    fn chain(missing: u64) -> delivery::GappedChain {
        delivery::GappedChain {
            chain: EventChain {
                events: Vec::new(),
                missing,
            },
            forgotten: false,
        }
    }

    #[test]
    fn a_gap_in_the_log_is_waited_for_then_skipped_with_a_note(
    ) -> Result<(), Box<dyn std::error::Error>> {
        let patient = dispatcher(Duration::from_secs(3600))?;
        let mut state = EndpointState::default();
        // A complete chain goes ahead.
        assert!(patient.past_gap("hook", &mut state, &chain(0)));
        assert_eq!(state.gap_since_ms, None);
        // A gap is waited for, from when it was first seen, without an error to show.
        assert!(!patient.past_gap("hook", &mut state, &chain(2)));
        let since = state.gap_since_ms;
        assert!(since.is_some());
        assert!(!patient.past_gap("hook", &mut state, &chain(1)));
        assert_eq!(state.gap_since_ms, since);
        assert_eq!(state.last_error, None);
        // Once the listing caught up, the wait is over.
        assert!(patient.past_gap("hook", &mut state, &chain(0)));
        assert_eq!(state.gap_since_ms, None);
        // Records deleted on purpose (below the log's forgotten mark) are no reason to wait.
        let mut deleted = chain(2);
        deleted.forgotten = true;
        assert!(patient.past_gap("hook", &mut state, &deleted));
        assert_eq!((state.gap_since_ms, &state.last_error), (None, &None));
        // Past the grace period the endpoint goes on and says what it skipped.
        let impatient = dispatcher(Duration::ZERO)?;
        state.cursor.seq = 7;
        assert!(impatient.past_gap("hook", &mut state, &chain(3)));
        assert_eq!(state.gap_since_ms, None);
        let note = state.last_error.unwrap_or_default();
        assert!(note.contains("3 event(s) after #7"), "{note}");
        Ok(())
    }
}
