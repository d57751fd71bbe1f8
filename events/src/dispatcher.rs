//! The worker every replica runs: it finds repositories with undelivered events (the pending
//! markers), and for each endpoint takes its lease, sends what the endpoint has not had yet in
//! order, and moves its cursor. Nothing here runs in a push's path: a push only records its
//! event and wakes the local worker.

use std::collections::{BTreeMap, BTreeSet};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use futures_util::StreamExt;
use gix_hash::ObjectId;
use objectstore::bucket::{self, Bucket};
use objectstore::layout::{RepoKeys, StorageKeys};
use objectstore::{ObjectDb, PackCache};
use refs::{RefStore, Snapshot};
use tokio::sync::Notify;
use tokio_util::sync::CancellationToken;

use crate::client::Client;
use crate::config::{EndpointStore, Mirror, Webhook};
use crate::deliveries::DeliveryLog;
use crate::log::{events_after, forget_through, forgotten, Cursor, Event, EventChain};
use crate::metrics;
use crate::mirror::{self, Command, MirrorError, Remote};
use crate::payload::{self, RepoInfo};
use crate::state::{now_ms, EndpointState, Retry, StateStore, Versioned};
use crate::webhook::{self, Verdict};

mod versions;

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

/// The events after an endpoint's cursor, and whether the records missing between them were
/// deleted on purpose: at or below the log's [`forgotten`] mark.
struct GappedChain {
    chain: EventChain,
    forgotten: bool,
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

/// A delivery id for one ref of one event to one hook: the same on every retry, so receivers
/// can drop a second delivery after a crash.
fn stable_delivery_id(hook: &str, event: &Event, index: usize) -> String {
    use sha2::Digest;
    let digest = sha2::Sha256::digest(format!("{hook}\n{}\n{}\n{index}", event.seq, event.id));
    let h = hex::encode(&digest[..16]);
    format!(
        "{}-{}-4{}-a{}-{}",
        &h[..8],
        &h[8..12],
        &h[13..16],
        &h[17..20],
        &h[20..32]
    )
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
        let mut lowest = repo.head.seq;
        let mut all_caught_up = true;
        for hook in endpoints
            .webhooks
            .iter()
            .filter(|h| h.active && h.wants("push"))
        {
            match self.webhook(&repo, hook).await {
                Ok(Progress::CaughtUp(at)) => lowest = lowest.min(at),
                Ok(Progress::Behind(at)) => {
                    lowest = lowest.min(at);
                    all_caught_up = false;
                }
                Err(e) => {
                    tracing::warn!(hook = %hook.id, error = %e, "webhook round failed");
                    all_caught_up = false;
                    lowest = 0;
                }
            }
        }
        let mut lag = 0;
        for mirror in &endpoints.mirrors {
            match self.mirror(&repo, mirror).await {
                Ok(Progress::CaughtUp(at)) => lowest = lowest.min(at),
                Ok(Progress::Behind(at)) => {
                    lowest = lowest.min(at);
                    lag = lag.max(repo.head.seq.saturating_sub(at));
                    all_caught_up = false;
                }
                Err(e) => {
                    tracing::warn!(mirror = %mirror.id, error = %e, "mirror round failed");
                    all_caught_up = false;
                    lowest = 0;
                }
            }
        }
        if endpoints.versions.is_some() {
            match self.versions(&repo).await {
                Ok(Progress::CaughtUp(at)) => lowest = lowest.min(at),
                Ok(Progress::Behind(at)) => {
                    lowest = lowest.min(at);
                    all_caught_up = false;
                }
                Err(e) => {
                    tracing::warn!(error = %e, "version sync round failed");
                    all_caught_up = false;
                    lowest = 0;
                }
            }
        }
        metrics::mirror_lag(lag);
        if lowest > 0 {
            forget_through(self.bucket.as_ref(), &keys, lowest).await?;
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

    fn backoff(&self, attempts: u32) -> Duration {
        let base = self.settings.backoff_base.as_millis() as u64;
        let exp = base.saturating_mul(1u64 << attempts.min(20));
        let capped = exp.min(self.settings.backoff_max.as_millis() as u64).max(1);
        // Jitter: between half and the whole delay.
        let mut b = [0u8; 8];
        let _ = getrandom::getrandom(&mut b);
        let jitter = u64::from_le_bytes(b) % (capped / 2 + 1);
        Duration::from_millis(capped / 2 + jitter)
    }

    /// The state of an endpoint, created at the refs' head when it has none (added while this
    /// round ran, or its creation was lost).
    async fn state_or_start(
        &self,
        states: &StateStore,
        id: &str,
        head: &Cursor,
        full_sync: bool,
    ) -> Result<Option<EndpointState>, DispatchError> {
        match states.get(id).await? {
            Some(v) => Ok(Some(v.state)),
            None => {
                let state = EndpointState {
                    cursor: head.clone(),
                    full_sync,
                    ..EndpointState::default()
                };
                states.create(id, &state).await?;
                Ok(None)
            }
        }
    }

    async fn objects(&self, keys: &RepoKeys) -> Result<ObjectDb, DispatchError> {
        ObjectDb::open_with(
            self.bucket.clone(),
            keys.clone(),
            self.cache.clone(),
            Duration::ZERO,
        )
        .await
        .map_err(|e| DispatchError::Objects(e.to_string()))
    }

    async fn webhook(&self, repo: &Repository, hook: &Webhook) -> Result<Progress, DispatchError> {
        let states = StateStore::new(self.bucket.clone(), repo.keys.clone());
        let Some(state) = self
            .state_or_start(&states, &hook.id, &repo.head, false)
            .await?
        else {
            return Ok(Progress::CaughtUp(repo.head.seq));
        };
        if state.cursor.seq >= repo.head.seq {
            return Ok(Progress::CaughtUp(state.cursor.seq));
        }
        if state.retry.as_ref().is_some_and(|r| r.next_ms > now_ms()) {
            return Ok(Progress::Behind(state.cursor.seq));
        }
        let lease_ms = self.settings.lease.as_millis() as u64;
        let Some(Versioned {
            mut state,
            mut etag,
        }) = states
            .acquire(&hook.id, &self.settings.replica, lease_ms)
            .await?
        else {
            return Ok(Progress::Behind(state.cursor.seq));
        };
        // The cursor as stored: what this round reports, whatever it did, so that the records
        // after it are kept until a stored cursor passes them (a replica that lost its lease
        // must not have the records its successor still needs deleted).
        let mut stored = state.cursor.seq;
        let chain = self.chain_after(repo, &state.cursor).await?;
        if !self.past_gap(&hook.id, &mut state, &chain) {
            state.lease = None;
            states.put(&hook.id, &etag, &state).await?;
            return Ok(Progress::Behind(stored));
        }
        let events = chain.chain.events;
        let db = self.objects(&repo.keys).await?;
        let log = DeliveryLog::new(self.bucket.clone(), repo.keys.clone());
        for event in &events {
            let retry = state.retry.clone().filter(|r| r.seq == event.seq);
            let (attempt, first_ms) = retry
                .as_ref()
                .map_or((1, now_ms()), |r| (r.attempts + 1, r.first_ms));
            let mut given_up = false;
            for (index, moved) in event.refs.iter().enumerate() {
                let id = stable_delivery_id(&hook.id, event, index);
                let body = self.push_payload(&db, repo, event, moved).await?;
                let (mut delivery, verdict) = webhook::send(
                    &self.client,
                    hook,
                    "push",
                    &id,
                    &body,
                    self.settings.timeout,
                )
                .await;
                delivery.seq = Some(event.seq);
                delivery.ref_name = Some(moved.name.clone());
                delivery.attempt = attempt;
                state.last_attempt_ms = Some(delivery.time_ms);
                state.last_error = delivery.error.clone();
                if let Err(e) = log.record(&hook.id, &delivery).await {
                    tracing::warn!(hook = %hook.id, error = %e, "recording a delivery failed");
                }
                match verdict {
                    Verdict::Delivered => {
                        metrics::outcome(metrics::WEBHOOK_DELIVERIES, "delivered");
                        state.last_success_ms = Some(delivery.time_ms);
                    }
                    Verdict::Failed => metrics::outcome(metrics::WEBHOOK_DELIVERIES, "failed"),
                    Verdict::Gone => {
                        metrics::outcome(metrics::WEBHOOK_DELIVERIES, "gone");
                        self.disable(repo, &hook.id, "the receiver answered 410 Gone")
                            .await?;
                        state.cursor = repo.head.clone();
                        state.retry = None;
                        state.lease = None;
                        return Ok(match states.put(&hook.id, &etag, &state).await? {
                            Some(_) => Progress::CaughtUp(repo.head.seq),
                            None => Progress::Behind(stored),
                        });
                    }
                    Verdict::Retry(asked) => {
                        let elapsed = now_ms().saturating_sub(first_ms);
                        if elapsed < self.settings.retry_for.as_millis() as u64 {
                            metrics::outcome(metrics::WEBHOOK_DELIVERIES, "retry");
                            let wait = asked
                                .unwrap_or_default()
                                .max(self.backoff(attempt.saturating_sub(1)));
                            state.retry = Some(Retry {
                                seq: event.seq,
                                attempts: attempt,
                                first_ms,
                                next_ms: now_ms() + wait.as_millis() as u64,
                            });
                            state.lease = None;
                            states.put(&hook.id, &etag, &state).await?;
                            return Ok(Progress::Behind(stored));
                        }
                        metrics::outcome(metrics::WEBHOOK_DELIVERIES, "failed");
                        given_up = true;
                        state.last_error = Some(format!(
                            "gave up after {attempt} attempts over {} s: {}",
                            elapsed / 1000,
                            delivery.error.unwrap_or_default()
                        ));
                    }
                }
            }
            if !given_up && state.last_error.is_none() {
                state.delivered += 1;
            }
            state.cursor = Cursor {
                seq: event.seq,
                id: event.id.clone(),
            };
            state.retry = None;
            state.lease = Some(crate::state::Lease {
                owner: self.settings.replica.clone(),
                until_ms: now_ms() + lease_ms,
            });
            match states.put(&hook.id, &etag, &state).await? {
                Some(tag) => (etag, stored) = (tag, event.seq),
                // The lease ran out and another replica took over: it carries on (and sends
                // this event again: at least once).
                None => return Ok(Progress::Behind(stored)),
            }
        }
        if state.cursor.seq < repo.head.seq {
            // Every record up to the head was missing and the wait for them is over.
            state.cursor = repo.head.clone();
        }
        state.lease = None;
        Ok(match states.put(&hook.id, &etag, &state).await? {
            Some(_) => Progress::CaughtUp(state.cursor.seq),
            None => Progress::Behind(stored),
        })
    }

    /// The events after `cursor` up to the refs of this round, and, when records are missing,
    /// whether they were deleted on purpose (see [`GappedChain`]).
    async fn chain_after(
        &self,
        repo: &Repository,
        cursor: &Cursor,
    ) -> Result<GappedChain, DispatchError> {
        let chain = events_after(self.bucket.as_ref(), &repo.keys, cursor, &repo.head).await?;
        let forgotten = if chain.is_complete() {
            false
        } else {
            cursor.seq + chain.missing <= forgotten(self.bucket.as_ref(), &repo.keys).await?
        };
        Ok(GappedChain { chain, forgotten })
    }

    /// Whether an endpoint may go on with `chain`, the events after its cursor. Records
    /// deleted on purpose (another round found every endpoint it knew past them, while this
    /// one was being added) are passed at once: the endpoint did not exist for them. Otherwise
    /// a chain that does not reach the cursor is most likely a listing that has not caught up
    /// with recent records: moving past the gap would skip those pushes for good (their
    /// records are then deleted as delivered). So the endpoint waits, re-listing each round,
    /// for [`Settings::gap_grace`] from when the gap was first seen; after that the records
    /// are taken to be lost (a bucket that dropped them), the endpoint carries on without
    /// them, and its status says how many were skipped.
    fn past_gap(&self, endpoint: &str, state: &mut EndpointState, gapped: &GappedChain) -> bool {
        let chain = &gapped.chain;
        if chain.is_complete() {
            state.gap_since_ms = None;
            return true;
        }
        if gapped.forgotten {
            tracing::info!(
                endpoint,
                missing = chain.missing,
                after = state.cursor.seq,
                "events deleted while the endpoint was being added: starting after them"
            );
            state.gap_since_ms = None;
            return true;
        }
        let since = *state.gap_since_ms.get_or_insert_with(now_ms);
        if now_ms().saturating_sub(since) < self.settings.gap_grace.as_millis() as u64 {
            ::metrics::counter!(metrics::GAPS_WAITED).increment(1);
            tracing::debug!(
                endpoint,
                missing = chain.missing,
                after = state.cursor.seq,
                "event records not listed yet: waiting for them"
            );
            return false;
        }
        tracing::warn!(
            endpoint,
            missing = chain.missing,
            after = state.cursor.seq,
            "event records missing from the log past the grace period: skipped"
        );
        state.last_error = Some(format!(
            "{} event(s) after #{} were missing from the event log and were skipped",
            chain.missing, state.cursor.seq
        ));
        state.gap_since_ms = None;
        true
    }

    async fn disable(
        &self,
        repo: &Repository,
        id: &str,
        reason: &str,
    ) -> Result<(), DispatchError> {
        EndpointStore::new(self.bucket.clone(), repo.keys.clone())
            .update(|endpoints| {
                if let Some(h) = endpoints.webhooks.iter_mut().find(|h| h.id == id) {
                    h.active = false;
                    h.disabled_reason = Some(reason.to_owned());
                }
                Ok(())
            })
            .await?;
        tracing::info!(repo = %format!("{}/{}", repo.ws, repo.alias), hook = id, reason, "webhook turned off");
        Ok(())
    }

    fn repo_info(&self, repo: &Repository) -> RepoInfo {
        RepoInfo {
            workspace: repo.ws.clone(),
            alias: repo.alias.clone(),
            clone_url: format!(
                "{}/{}/git/{}",
                self.settings.public_url, repo.ws, repo.alias
            ),
            default_branch: repo
                .snapshot
                .head
                .as_deref()
                .and_then(|h| h.strip_prefix("refs/heads/"))
                .map(str::to_owned),
        }
    }

    async fn push_payload(
        &self,
        db: &ObjectDb,
        repo: &Repository,
        event: &Event,
        moved: &crate::log::RefMove,
    ) -> Result<Vec<u8>, DispatchError> {
        let info = self.repo_info(repo);
        // The other refs as they were at the push (recorded with the event); events recorded
        // without them fall back to the refs now.
        let others: Vec<ObjectId> = if event.other_tips.is_empty() {
            repo.snapshot
                .refs
                .iter()
                .filter(|(name, _)| **name != moved.name)
                .map(|(_, v)| v.target)
                .collect()
        } else {
            event
                .other_tips
                .iter()
                .filter_map(|t| ObjectId::from_hex(t.as_bytes()).ok())
                .collect()
        };
        let (db, event, moved) = (db.clone(), event.clone(), moved.clone());
        let payload = tokio::task::spawn_blocking(move || {
            payload::push(&db.reader(), &info, &event, &moved, &others)
        })
        .await
        .map_err(|e| DispatchError::Objects(e.to_string()))?
        .map_err(|e| DispatchError::Objects(e.to_string()))?;
        serde_json::to_vec(&payload).map_err(|e| DispatchError::Objects(e.to_string()))
    }

    /// Send the `ping` event to a new webhook (recorded in its delivery log).
    pub async fn ping(
        &self,
        ws: &str,
        alias: &str,
        hook: &Webhook,
    ) -> Result<crate::deliveries::Delivery, DispatchError> {
        let keys = self.storage.artifact(ws, alias).repo();
        let snapshot = self.refs(&keys).snapshot().await?;
        let repo = Repository {
            ws: ws.to_owned(),
            alias: alias.to_owned(),
            head: Cursor {
                seq: snapshot.seq,
                id: snapshot.content_id.clone(),
            },
            keys: keys.clone(),
            snapshot,
        };
        let body = serde_json::to_vec(&payload::ping(&self.repo_info(&repo), hook))
            .map_err(|e| DispatchError::Objects(e.to_string()))?;
        let (delivery, verdict) = webhook::send(
            &self.client,
            hook,
            "ping",
            &webhook::delivery_id(),
            &body,
            self.settings.timeout,
        )
        .await;
        if verdict == Verdict::Delivered {
            metrics::outcome(metrics::WEBHOOK_DELIVERIES, "delivered");
        }
        DeliveryLog::new(self.bucket.clone(), keys)
            .record(&hook.id, &delivery)
            .await?;
        Ok(delivery)
    }

    /// Send a logged delivery again, as it was (same id and payload).
    pub async fn redeliver(
        &self,
        ws: &str,
        alias: &str,
        hook: &Webhook,
        original: &crate::deliveries::Delivery,
    ) -> Result<crate::deliveries::Delivery, DispatchError> {
        let keys = self.storage.artifact(ws, alias).repo();
        let (mut delivery, verdict) = webhook::send(
            &self.client,
            hook,
            &original.event,
            &original.id,
            original.payload.as_bytes(),
            self.settings.timeout,
        )
        .await;
        if verdict == Verdict::Delivered {
            metrics::outcome(metrics::WEBHOOK_DELIVERIES, "delivered");
        }
        delivery.seq = original.seq;
        delivery.ref_name = original.ref_name.clone();
        delivery.attempt = original.attempt + 1;
        delivery.redelivery = true;
        DeliveryLog::new(self.bucket.clone(), keys)
            .record(&hook.id, &delivery)
            .await?;
        Ok(delivery)
    }

    async fn mirror(&self, repo: &Repository, mirror: &Mirror) -> Result<Progress, DispatchError> {
        let states = StateStore::new(self.bucket.clone(), repo.keys.clone());
        let Some(state) = self
            .state_or_start(&states, &mirror.id, &repo.head, true)
            .await?
        else {
            // Just created: the next round (woken now) pushes everything.
            self.wake();
            return Ok(Progress::Behind(repo.head.seq));
        };
        if state.paused.is_some() {
            return Ok(Progress::CaughtUp(repo.head.seq));
        }
        if !state.full_sync && state.cursor.seq >= repo.head.seq {
            return Ok(Progress::CaughtUp(state.cursor.seq));
        }
        if state.retry.as_ref().is_some_and(|r| r.next_ms > now_ms()) {
            return Ok(Progress::Behind(state.cursor.seq));
        }
        let lease_ms = self.settings.lease.as_millis() as u64;
        let Some(Versioned { mut state, etag }) = states
            .acquire(&mirror.id, &self.settings.replica, lease_ms)
            .await?
        else {
            return Ok(Progress::Behind(state.cursor.seq));
        };
        let stored = state.cursor.seq;
        let mut names: BTreeSet<String> = BTreeSet::new();
        if state.full_sync {
            names.extend(repo.snapshot.refs.keys().cloned());
        } else {
            let chain =
                events_after(self.bucket.as_ref(), &repo.keys, &state.cursor, &repo.head).await?;
            if !chain.is_complete() {
                // A mirror pushes the refs as they are, not the events: with records missing
                // (not listed yet, or gone) every ref it has or set on the remote is compared,
                // so that nothing the missing changes moved or deleted is left out.
                names.extend(repo.snapshot.refs.keys().cloned());
                names.extend(state.remote_refs.keys().cloned());
            }
            for event in &chain.events {
                names.extend(event.refs.iter().map(|m| m.name.clone()));
            }
        }
        state.last_attempt_ms = Some(now_ms());
        let outcome = self.mirror_push(repo, mirror, &names, &mut state).await;
        let progress = match outcome {
            Ok(()) => {
                metrics::outcome(metrics::MIRROR_PUSHES, "ok");
                state.cursor = repo.head.clone();
                state.full_sync = false;
                state.retry = None;
                state.auth_failures = 0;
                state.last_success_ms = Some(now_ms());
                state.delivered += 1;
                state.last_error = state
                    .ref_results
                    .iter()
                    .find(|r| r.status != "ok" && r.status != "up to date")
                    .map(|r| format!("{}: {}", r.name, r.status));
                Progress::CaughtUp(repo.head.seq)
            }
            Err(e) => {
                metrics::outcome(metrics::MIRROR_PUSHES, "failed");
                let attempts = state.retry.as_ref().map_or(0, |r| r.attempts) + 1;
                state.last_error = Some(e.to_string());
                if let MirrorError::Auth(_) = e {
                    state.auth_failures += 1;
                    if state.auth_failures >= self.settings.auth_failures_before_pause {
                        state.paused = Some(format!(
                            "paused after {} authentication failures in a row; fix the credentials (remove and add the mirror) and call sync_mirror",
                            state.auth_failures
                        ));
                    }
                }
                state.retry = Some(Retry {
                    seq: repo.head.seq,
                    attempts,
                    first_ms: state.retry.as_ref().map_or(now_ms(), |r| r.first_ms),
                    next_ms: now_ms() + self.backoff(attempts - 1).as_millis() as u64,
                });
                tracing::warn!(mirror = %mirror.id, error = %state.last_error.as_deref().unwrap_or_default(), "mirror push failed");
                Progress::Behind(state.cursor.seq)
            }
        };
        state.lease = None;
        Ok(match states.put(&mirror.id, &etag, &state).await? {
            Some(_) => progress,
            // Another replica took over: the stored cursor is the one it read.
            None => Progress::Behind(stored),
        })
    }

    async fn mirror_push(
        &self,
        repo: &Repository,
        mirror: &Mirror,
        names: &BTreeSet<String>,
        state: &mut EndpointState,
    ) -> Result<(), MirrorError> {
        let remote = Remote::new(&self.client, mirror, self.settings.timeout);
        let advertised = remote.discover().await?;
        let db = self
            .objects(&repo.keys)
            .await
            .map_err(|e| MirrorError::Objects(e.to_string()))?;
        let mut results = Vec::new();
        let mut commands = Vec::new();
        let null = ObjectId::null(db.object_hash());
        for name in names {
            let ours = repo.snapshot.refs.get(name).map(|v| v.target);
            let theirs = advertised.refs.get(name).copied();
            let new = ours.unwrap_or(null);
            if theirs == ours {
                state.remote_refs.insert(name.clone(), new.to_string());
                results.push((name.clone(), "up to date".to_owned()));
                continue;
            }
            if ours.is_none() && theirs.is_none() {
                state.remote_refs.remove(name);
                continue;
            }
            let old = if mirror.force {
                theirs.unwrap_or(null)
            } else {
                match state
                    .remote_refs
                    .get(name)
                    .and_then(|k| ObjectId::from_hex(k.as_bytes()).ok())
                {
                    Some(known)
                        if Some(known) != theirs && !(known.is_null() && theirs.is_none()) =>
                    {
                        results.push((
                            name.clone(),
                            format!(
                                "the remote's ref moved on its own (expected {known}, found {}); not overwritten (the mirror is not set to force)",
                                theirs.map_or("nothing".to_owned(), |t| t.to_string())
                            ),
                        ));
                        continue;
                    }
                    Some(known) => known,
                    None => match theirs {
                        None => null,
                        Some(t) => {
                            let contained = ours.is_some() && db.contains(&t) && {
                                let (db, new) = (db.clone(), new);
                                tokio::task::spawn_blocking(move || {
                                    history::log(
                                        &db.reader(),
                                        &[t],
                                        &[new],
                                        history::LogLimits {
                                            max_commits: 1,
                                            max_visited: 1_000_000,
                                        },
                                    )
                                    .map(|l| l.commits.is_empty())
                                    .unwrap_or(false)
                                })
                                .await
                                .unwrap_or(false)
                            };
                            if !contained {
                                results.push((
                                    name.clone(),
                                    "the remote's ref has commits this repository does not have; not overwritten (the mirror is not set to force)".to_owned(),
                                ));
                                continue;
                            }
                            t
                        }
                    },
                }
            };
            commands.push(Command {
                name: name.clone(),
                old,
                new,
            });
        }
        if !commands.is_empty() {
            let pack = if commands.iter().any(|c| !c.new.is_null()) {
                let (db2, cmds, has, ofs, dir) = (
                    db.clone(),
                    commands.clone(),
                    advertised.refs.values().copied().collect::<Vec<_>>(),
                    mirror::takes_ofs_delta(&advertised),
                    self.settings.staging.clone(),
                );
                Some(
                    tokio::task::spawn_blocking(move || {
                        std::fs::create_dir_all(&dir)
                            .map_err(|e| MirrorError::Objects(e.to_string()))?;
                        mirror::build_pack(&db2, &cmds, &has, ofs, &dir)
                    })
                    .await
                    .map_err(|e| MirrorError::Objects(e.to_string()))??,
                )
            } else {
                None
            };
            if let Some((_, pointers)) = &pack {
                if !pointers.is_empty() {
                    let store = lfs::Store::new(
                        self.bucket.clone(),
                        repo.keys.clone(),
                        lfs::Transfer::default(),
                    );
                    remote.upload_lfs(&store, pointers).await?;
                }
            }
            let report = remote
                .push(&commands, pack.as_ref().map(|(f, _)| f.path()))
                .await?;
            for (name, result) in report {
                match result {
                    Ok(()) => {
                        if let Some(c) = commands.iter().find(|c| c.name == name) {
                            if c.new.is_null() {
                                state.remote_refs.remove(&name);
                            } else {
                                state.remote_refs.insert(name.clone(), c.new.to_string());
                            }
                        }
                        results.push((name, "ok".to_owned()));
                    }
                    Err(reason) => results.push((name, format!("refused by the remote: {reason}"))),
                }
            }
        }
        state.ref_results = results
            .into_iter()
            .map(|(name, status)| crate::state::RefResult { name, status })
            .collect();
        Ok(())
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

    fn chain(missing: u64) -> GappedChain {
        GappedChain {
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
