//! The one delivery loop. Every kind of endpoint (webhooks, push mirrors, version sync, and
//! the upstream followers to come) implements [`Endpoint`]: it delivers an event, or every
//! pending event at once, and answers an [`Outcome`]. Everything else is written here, once:
//! the endpoint's state (created at the refs' head when missing), its lease (taken by
//! compare-and-swap, renewed at each checkpoint, released at the end), the walk of the event
//! chain after its cursor and the wait for records a listing has not caught up with, retries
//! with exponential backoff and jitter, and the cursor, stored after each event.

use std::time::Duration;

use objectstore::{ETag, ObjectDb};

use super::{DispatchError, Dispatcher, Progress, Repository};
use crate::log::{events_after, forgotten, Cursor, Event, EventChain};
use crate::metrics;
use crate::state::{now_ms, EndpointState, Lease, Retry, StateStore, Versioned};

/// What delivering answered.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) enum Outcome {
    /// Delivered: the cursor moves past it.
    Done,
    /// Not delivered: try the same again, not before this long (nor before the backoff).
    RetryAfter(Option<Duration>),
    /// Not delivered and never will be: the cursor moves past it, the reason is shown.
    GiveUp(String),
    /// The endpoint is gone for good (it was turned off): the cursor moves to the head.
    Gone,
    /// Deliveries stop until someone resumes them, for this reason.
    Paused(String),
    /// The lease was lost on the way: another replica carries on.
    LeaseLost,
}

/// One kind of event endpoint.
#[async_trait::async_trait]
pub(super) trait Endpoint: Send + Sync {
    /// The endpoint's id: its state's key.
    fn id(&self) -> &str;

    /// What it is, for logs and metrics.
    fn kind(&self) -> &'static str;

    /// Whether a new endpoint first receives everything (a mirror pushes every ref).
    fn starts_with_full_sync(&self) -> bool {
        false
    }

    /// Whether there is something to deliver with the refs at `head`.
    fn pending(&self, state: &EndpointState, head: u64) -> bool {
        state.cursor.seq < head
    }

    /// Every pending event in one delivery (a mirror pushes the refs as they are), instead of
    /// one event at a time, each checkpointed.
    fn batched(&self) -> bool {
        false
    }

    /// Whether missing records are waited for (see [`Dispatcher::past_gap`]); an endpoint
    /// that does not wait is told the chain is incomplete ([`Turn::chain_complete`]).
    fn waits_for_gaps(&self) -> bool {
        true
    }

    /// Deliver `events` (one, or every pending one when batched: maybe none, for a full
    /// sync), updating what the endpoint keeps in [`Turn::state`].
    async fn deliver(
        &self,
        turn: &mut Turn<'_>,
        events: &[Event],
    ) -> Result<Outcome, DispatchError>;

    /// Called once the endpoint has every event up to the head.
    fn caught_up(&self, _state: &mut EndpointState) {}
}

/// One endpoint's turn, held with its lease: what [`Endpoint::deliver`] works with.
pub(super) struct Turn<'a> {
    /// The worker (its client, settings and bucket).
    pub(super) dispatcher: &'a Dispatcher,
    /// The repository as this round read it.
    pub(super) repo: &'a Repository,
    /// The endpoint's state; stored at each checkpoint.
    pub(super) state: EndpointState,
    /// Whether the events handed over are every event after the cursor.
    pub(super) chain_complete: bool,
    /// This attempt at the event being delivered (1: the first), and when the first was made.
    pub(super) attempt: u32,
    pub(super) first_ms: u64,
    id: &'a str,
    states: StateStore,
    etag: ETag,
    db: Option<ObjectDb>,
}

impl Turn<'_> {
    /// The repository's objects (a pack list read now, once per turn).
    pub(super) async fn objects(&mut self) -> Result<ObjectDb, DispatchError> {
        if let Some(db) = &self.db {
            return Ok(db.clone());
        }
        let db = self.dispatcher.objects(self.repo).await?;
        self.db = Some(db.clone());
        Ok(db)
    }

    /// Store the state and renew the lease; `false` when the lease was lost meanwhile.
    pub(super) async fn checkpoint(&mut self) -> Result<bool, DispatchError> {
        self.state.lease = Some(Lease {
            owner: self.dispatcher.settings.replica.clone(),
            until_ms: now_ms() + self.dispatcher.settings.lease.as_millis() as u64,
        });
        self.put().await
    }

    /// Store the state as it is; `false` when the lease was lost meanwhile.
    async fn put(&mut self) -> Result<bool, DispatchError> {
        match self.states.put(self.id, &self.etag, &self.state).await? {
            Some(tag) => {
                self.etag = tag;
                Ok(true)
            }
            None => Ok(false),
        }
    }

    /// Release the lease and store the state: `progress` when stored, else `Behind(stored)`.
    async fn finish(mut self, progress: Progress, stored: u64) -> Result<Progress, DispatchError> {
        self.state.lease = None;
        Ok(match self.put().await? {
            true => progress,
            false => Progress::Behind(stored),
        })
    }
}

/// The events after an endpoint's cursor, and whether the records missing between them were
/// deleted on purpose: at or below the log's [`forgotten`] mark.
pub(super) struct GappedChain {
    pub(super) chain: EventChain,
    pub(super) forgotten: bool,
}

impl Dispatcher {
    /// Give `endpoint` its turn: what it has not had yet, in order.
    pub(super) async fn deliver_to(
        &self,
        repo: &Repository,
        endpoint: &dyn Endpoint,
    ) -> Result<Progress, DispatchError> {
        let head = repo.head.seq;
        let states = StateStore::new(self.bucket.clone(), repo.keys.clone());
        let full = endpoint.starts_with_full_sync();
        let Some(state) = self
            .state_or_start(&states, endpoint.id(), &repo.head, full)
            .await?
        else {
            if full {
                // Just created: the next round (woken now) sends everything.
                self.wake();
                return Ok(Progress::Behind(head));
            }
            return Ok(Progress::CaughtUp(head));
        };
        if state.paused.is_some() {
            return Ok(Progress::CaughtUp(head));
        }
        if !endpoint.pending(&state, head) {
            return Ok(Progress::CaughtUp(state.cursor.seq));
        }
        if state.retry.as_ref().is_some_and(|r| r.next_ms > now_ms()) {
            return Ok(Progress::Behind(state.cursor.seq));
        }
        let lease_ms = self.settings.lease.as_millis() as u64;
        let me = &self.settings.replica;
        let mut acquired = states.acquire(endpoint.id(), me, lease_ms).await?;
        // Held by another: taken over at once when that replica has stopped (its heartbeat
        // went quiet), rather than when its lease runs out.
        if let (None, Some(lease)) = (&acquired, &state.lease) {
            if lease.owner != *me && self.is_gone(&lease.owner).await? {
                tracing::info!(endpoint = endpoint.id(), holder = %lease.owner, "taking over from a stopped replica");
                let gone = Some(lease.owner.as_str());
                acquired = states
                    .acquire_from(endpoint.id(), me, lease_ms, gone)
                    .await?;
            }
        }
        let Some(Versioned { state, etag }) = acquired else {
            return Ok(Progress::Behind(state.cursor.seq));
        };
        // The cursor as stored: what this turn reports, whatever it did, so that the records
        // after it are kept until a stored cursor passes them (a replica that lost its lease
        // must not have the records its successor still needs deleted).
        let stored = state.cursor.seq;
        let mut turn = Turn {
            dispatcher: self,
            repo,
            state,
            chain_complete: true,
            attempt: 1,
            first_ms: now_ms(),
            id: endpoint.id(),
            states,
            etag,
            db: None,
        };
        let gapped = self.chain_after(repo, &turn.state.cursor).await?;
        turn.chain_complete = gapped.chain.is_complete();
        if endpoint.waits_for_gaps() && !self.past_gap(endpoint.id(), &mut turn.state, &gapped) {
            return turn.finish(Progress::Behind(stored), stored).await;
        }
        let events = gapped.chain.events;
        match endpoint.batched() {
            true => self.deliver_batch(endpoint, turn, &events, stored).await,
            false => self.deliver_each(endpoint, turn, &events, stored).await,
        }
    }

    /// Every event in one delivery; the cursor goes to the head when it is done.
    async fn deliver_batch(
        &self,
        endpoint: &dyn Endpoint,
        mut turn: Turn<'_>,
        events: &[Event],
        stored: u64,
    ) -> Result<Progress, DispatchError> {
        let head = turn.repo.head.clone();
        self.set_attempt(&mut turn, head.seq);
        turn.state.last_attempt_ms = Some(now_ms());
        match endpoint.deliver(&mut turn, events).await? {
            Outcome::LeaseLost => Ok(Progress::Behind(stored)),
            Outcome::Done | Outcome::GiveUp(_) | Outcome::Gone => {
                turn.state.cursor = head.clone();
                turn.state.retry = None;
                endpoint.caught_up(&mut turn.state);
                turn.finish(Progress::CaughtUp(head.seq), stored).await
            }
            outcome => {
                let at = turn.state.cursor.seq;
                self.not_delivered(&mut turn, head.seq, outcome);
                turn.finish(Progress::Behind(at), stored).await
            }
        }
    }

    /// One event at a time, the cursor stored after each.
    async fn deliver_each(
        &self,
        endpoint: &dyn Endpoint,
        mut turn: Turn<'_>,
        events: &[Event],
        mut stored: u64,
    ) -> Result<Progress, DispatchError> {
        let head = turn.repo.head.clone();
        for event in events {
            self.set_attempt(&mut turn, event.seq);
            match endpoint
                .deliver(&mut turn, std::slice::from_ref(event))
                .await?
            {
                Outcome::LeaseLost => return Ok(Progress::Behind(stored)),
                Outcome::Gone => {
                    turn.state.cursor = head.clone();
                    turn.state.retry = None;
                    return turn.finish(Progress::CaughtUp(head.seq), stored).await;
                }
                Outcome::Done => {}
                Outcome::GiveUp(reason) => turn.state.last_error = Some(reason),
                outcome => {
                    self.not_delivered(&mut turn, event.seq, outcome);
                    return turn.finish(Progress::Behind(stored), stored).await;
                }
            }
            turn.state.cursor = Cursor {
                seq: event.seq,
                id: event.id.clone(),
            };
            turn.state.retry = None;
            // Lost: another replica took over; it carries on (and sends this event again:
            // at least once).
            if !turn.checkpoint().await? {
                return Ok(Progress::Behind(stored));
            }
            stored = event.seq;
        }
        if turn.state.cursor.seq < head.seq {
            // Every record up to the head was missing and the wait for them is over.
            turn.state.cursor = head.clone();
        }
        endpoint.caught_up(&mut turn.state);
        let at = turn.state.cursor.seq;
        turn.finish(Progress::CaughtUp(at), stored).await
    }

    /// This attempt's number at event `seq`, and when the first attempt was made.
    fn set_attempt(&self, turn: &mut Turn<'_>, seq: u64) {
        let retry = turn.state.retry.as_ref().filter(|r| r.seq == seq);
        (turn.attempt, turn.first_ms) =
            retry.map_or((1, now_ms()), |r| (r.attempts + 1, r.first_ms));
    }

    /// Record a delivery of event `seq` that did not happen: a retry after a backoff, or a
    /// pause.
    fn not_delivered(&self, turn: &mut Turn<'_>, seq: u64, outcome: Outcome) {
        match outcome {
            Outcome::Paused(reason) => turn.state.paused = Some(reason),
            Outcome::RetryAfter(asked) => {
                let wait = asked
                    .unwrap_or_default()
                    .max(self.backoff(turn.attempt.saturating_sub(1)));
                turn.state.retry = Some(Retry {
                    seq,
                    attempts: turn.attempt,
                    first_ms: turn.first_ms,
                    next_ms: now_ms() + wait.as_millis() as u64,
                });
            }
            _ => {}
        }
    }

    /// The wait before attempt `attempts + 1`: exponential from the base, capped, with
    /// jitter (between half and the whole delay).
    pub(super) fn backoff(&self, attempts: u32) -> Duration {
        let base = self.settings.backoff_base.as_millis() as u64;
        let exp = base.saturating_mul(1u64 << attempts.min(20));
        let capped = exp.min(self.settings.backoff_max.as_millis() as u64).max(1);
        let mut b = [0u8; 8];
        let _ = getrandom::getrandom(&mut b);
        let jitter = u64::from_le_bytes(b) % (capped / 2 + 1);
        Duration::from_millis(capped / 2 + jitter)
    }

    /// The state of an endpoint, created at the refs' head when it has none (added while this
    /// round ran, or its creation was lost): `None` then.
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
    /// for [`super::Settings::gap_grace`] from when the gap was first seen; after that the
    /// records are taken to be lost (a bucket that dropped them), the endpoint carries on
    /// without them, and its status says how many were skipped.
    pub(super) fn past_gap(
        &self,
        endpoint: &str,
        state: &mut EndpointState,
        gapped: &GappedChain,
    ) -> bool {
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
}

#[cfg(test)]
mod tests {
    use std::sync::{Arc, Mutex};

    use gix_hash::ObjectId;
    use objectstore::bucket::{Bucket, Faults, FaultyBucket};
    use objectstore::layout::StorageKeys;
    use objectstore::{MemoryBucket, PackCache};
    use refs::{RefStore, RefTransaction, RefUpdate};

    use super::*;
    use crate::log::{EventMeta, Recorder};

    /// An endpoint that takes note of what it is given; the first attempt at each event fails
    /// (with a retry asked for at once) when `flaky`.
    struct Noting {
        flaky: bool,
        seen: Mutex<Vec<u64>>,
    }

    #[async_trait::async_trait]
    impl Endpoint for Noting {
        fn id(&self) -> &str {
            "noting"
        }

        fn kind(&self) -> &'static str {
            "test"
        }

        async fn deliver(
            &self,
            turn: &mut Turn<'_>,
            events: &[Event],
        ) -> Result<Outcome, DispatchError> {
            if self.flaky && turn.attempt == 1 {
                return Ok(Outcome::RetryAfter(Some(Duration::ZERO)));
            }
            let mut seen = self.seen.lock().unwrap_or_else(|p| p.into_inner());
            seen.extend(events.iter().map(|e| e.seq));
            Ok(Outcome::Done)
        }
    }

    fn settings(replica: &str) -> super::super::Settings {
        super::super::Settings {
            replica: replica.into(),
            poll: Duration::from_millis(10),
            lease: Duration::from_secs(30),
            timeout: Duration::from_secs(1),
            retry_for: Duration::from_secs(60),
            backoff_base: Duration::from_millis(1),
            backoff_max: Duration::from_millis(2),
            auth_failures_before_pause: 3,
            gap_grace: Duration::from_secs(3600),
            public_url: String::new(),
            staging: std::path::PathBuf::new(),
        }
    }

    fn id(n: u8) -> ObjectId {
        ObjectId::from_bytes_or_panic(&[n; 20])
    }

    /// Two replicas, each through its own faulty link to one bucket (errors before and after
    /// calls take effect, listings that miss recent records), take turns delivering ten
    /// events to a flaky endpoint: every event arrives, first seen in order, and the stored
    /// cursor ends at the head.
    #[tokio::test]
    async fn every_event_arrives_in_order_through_faults_and_retries(
    ) -> Result<(), Box<dyn std::error::Error>> {
        let shared: Arc<dyn Bucket> = Arc::new(MemoryBucket::new());
        let storage = StorageKeys::new("");
        let keys = storage.artifact("ws", "repo").repo();
        let refs = RefStore::new(shared.clone(), keys.clone());
        refs.init("main", gix_hash::Kind::Sha1).await?;
        let start = refs.watch().await?;
        let states = StateStore::new(shared.clone(), keys.clone());
        let cursor = Cursor {
            seq: start.seq,
            id: start.content_id.clone(),
        };
        states
            .create(
                "noting",
                &EndpointState {
                    cursor,
                    ..Default::default()
                },
            )
            .await?;
        let recorder = Recorder::new(shared.clone(), &storage, "ws", "repo", EventMeta::default());
        let mut at = ObjectId::null(gix_hash::Kind::Sha1);
        for n in 1..=10u8 {
            let update = RefUpdate {
                name: "refs/heads/main".into(),
                old: at,
                new: id(n),
                peeled: None,
            };
            let tx = RefTransaction {
                updates: vec![update],
                atomic: true,
                ..RefTransaction::default()
            };
            refs.commit_with(&tx, Some(&recorder)).await?;
            at = id(n);
        }
        let snapshot = refs.snapshot().await?;
        let repo = Repository {
            ws: "ws".into(),
            alias: "repo".into(),
            keys: keys.clone(),
            head: Cursor {
                seq: snapshot.seq,
                id: snapshot.content_id.clone(),
            },
            snapshot,
        };
        let faults = Faults {
            fail_before: 0.1,
            fail_after: 0.1,
            after_as_precondition: 0.5,
            max_latency: Duration::from_millis(1),
            stale_list: 0.5,
            stale_for: Duration::from_millis(30),
        };
        let mut links = Vec::new();
        let mut replicas = Vec::new();
        for r in 0..2u64 {
            let link = Arc::new(FaultyBucket::new(shared.clone(), faults, 7 + r));
            links.push(link.clone());
            replicas.push(Dispatcher::new(
                link,
                storage.clone(),
                Arc::new(PackCache::new(None, 0)),
                crate::client::Client::new(false)?,
                settings(&format!("replica-{r}")),
            ));
        }
        let endpoint = Noting {
            flaky: true,
            seen: Mutex::new(Vec::new()),
        };
        let mut caught_up = false;
        for round in 0..400 {
            if round == 300 {
                links.iter().for_each(|l| l.heal());
            }
            let replica = &replicas[round % 2];
            if let Ok(Progress::CaughtUp(seq)) = replica.deliver_to(&repo, &endpoint).await {
                if seq == repo.head.seq {
                    caught_up = true;
                    break;
                }
            }
            tokio::time::sleep(Duration::from_millis(3)).await;
        }
        assert!(caught_up, "the endpoint never caught up");
        let seen = endpoint
            .seen
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone();
        let mut first_seen: Vec<u64> = Vec::new();
        for seq in &seen {
            if !first_seen.contains(seq) {
                first_seen.push(*seq);
            }
        }
        let expected: Vec<u64> = (start.seq + 1..=repo.head.seq).collect();
        assert_eq!(
            first_seen, expected,
            "every event, first seen in order: {seen:?}"
        );
        let stored = states.get("noting").await?.map(|v| v.state);
        assert_eq!(stored.map(|s| s.cursor.seq), Some(repo.head.seq));
        Ok(())
    }
}
