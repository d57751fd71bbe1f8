//! Following upstreams: a sync fetches another host's refs and lands them like a push.
//!
//! One sync of an upstream runs at a time across replicas: it takes the lease in the
//! upstream's state by compare-and-swap ([`events::upstream::UpstreamStates`]), renews it while
//! it works, and gives it back with the outcome. A request that arrives meanwhile (a webhook,
//! `sync_upstream`) only marks the state; the syncing replica sees the mark when it gives the
//! lease back and syncs once more, so a flood of webhooks collapses into one more sync.
//!
//! A sync ([`fetch_and_land`]): discover the remote's refs (v2 when it speaks it), choose the
//! followed ones, fetch the objects we lack in one pack (our tips sent as `have`s), index it
//! under the same limits and fsck rules as a push (an upstream is untrusted), fetch the LFS
//! objects the new blobs point to (checked by SHA-256), decide per ref (create, fast-forward,
//! or diverged: left alone with ahead/behind counts unless the upstream overwrites), and hand
//! the pack and the updates to the one landing, where the push policy applies and the event is
//! recorded with the upstream as its source.

pub mod scheduler;
pub mod webhook;

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use events::config::Upstream;
use events::mirror::{MirrorError, Remote};
use events::state::now_ms;
use events::upstream::{FetchAdvertised, PackReader, RefSync, UpstreamStates};
use gix_hash::ObjectId;
use objectstore::odb::index::{self, Checks, Indexed};
use objectstore::odb::ObjectDb;
use refs::RefUpdate;

use crate::app::App;
use crate::landing::{land, Landing};
use crate::repo::Repo;
use crate::storage::RepoId;

/// Syncs one call makes at most when requests keep arriving during them.
const MAX_ROUNDS: usize = 4;
/// How long a fetch's answer may stall (the remote computes the pack before it sends it).
const IDLE: Duration = Duration::from_secs(120);
/// How long one fetch may last in all: a drip that keeps just under `IDLE` ends here.
const FETCH_DEADLINE: Duration = Duration::from_secs(6 * 3600);
/// How often a running sync renews its lease and records its progress.
const RENEW_EVERY: Duration = Duration::from_secs(5);
/// Our tips sent as `have`s at most.
const MAX_HAVES: usize = 256;
/// Commits counted at most for ahead/behind.
const MAX_COUNTED: usize = 100_000;

/// Why a sync failed.
#[derive(Debug, thiserror::Error)]
pub enum SyncError {
    /// The remote or the transfer failed.
    #[error(transparent)]
    Remote(#[from] MirrorError),
    /// The pack was refused (limits, fsck) or could not be stored.
    #[error("the upstream's pack was refused: {0}")]
    Pack(String),
    /// The repository could not be read or written.
    #[error("storage failed: {0}")]
    Storage(String),
}

impl From<objectstore::odb::Error> for SyncError {
    fn from(e: objectstore::odb::Error) -> Self {
        match e.is_storage() {
            true => SyncError::Storage(e.to_string()),
            false => SyncError::Pack(e.to_string()),
        }
    }
}

impl From<objectstore::bucket::Error> for SyncError {
    fn from(e: objectstore::bucket::Error) -> Self {
        SyncError::Storage(e.to_string())
    }
}

impl From<refs::Error> for SyncError {
    fn from(e: refs::Error) -> Self {
        SyncError::Storage(e.to_string())
    }
}

/// What one sync did.
#[derive(Debug, Default)]
struct Synced {
    refs: std::collections::BTreeMap<String, RefSync>,
    pack_bytes: u64,
    lfs_objects: u64,
}

/// Sync upstream `upstream` of `id` after `settle` (requests that arrive meanwhile are
/// served by this one sync), unless it is no longer due (another sync served the request) or
/// another replica is syncing it (it then syncs again when it is done, as the request is
/// marked first). Returns whether this call synced.
pub async fn sync(
    app: Arc<App>,
    id: RepoId,
    upstream: String,
    settle: Duration,
) -> Result<bool, SyncError> {
    let repo = Repo::new(&app.storage, id);
    let states = UpstreamStates::new(app.storage.bucket.clone(), repo.keys.clone());
    tokio::time::sleep(settle).await;
    if !states.load(&upstream).await?.is_due(now_ms()) {
        return Ok(false);
    }
    // A deleted repository (waiting to be purged with its upstreams) is not synced.
    if let Err(refs::Error::NotFound) = repo.snapshot().await {
        return Ok(false);
    }
    let (replica, lease) = (
        app.events.settings().replica.clone(),
        app.events.settings().lease,
    );
    for _ in 0..MAX_ROUNDS {
        let Some(started) = take_lease(&states, &upstream, &replica, lease).await? else {
            return Ok(false);
        };
        let progress = Arc::new(AtomicU64::new(0));
        let renewing = tokio::spawn(renew(
            states.clone(),
            upstream.clone(),
            replica.clone(),
            lease,
            progress.clone(),
        ));
        let outcome = sync_once(&app, &repo, &states, &upstream, progress).await;
        renewing.abort();
        match &outcome {
            Ok(_) => crate::metrics::outcome(crate::metrics::UPSTREAM_SYNCS, "ok"),
            Err(e) => {
                crate::metrics::outcome(crate::metrics::UPSTREAM_SYNCS, "failed");
                tracing::warn!(repo = %repo.id, upstream = %upstream, error = %e, "upstream sync failed");
            }
        }
        let again = give_back(&states, &upstream, &replica, lease, started, outcome).await?;
        if !again {
            return Ok(true);
        }
    }
    Ok(true)
}

/// Take the repository's sync lease for `upstream` and mark the sync started; the time it
/// started, or `None` when another sync of the repository holds the lease (the request stays
/// due, and the scheduler comes back to it).
async fn take_lease(
    states: &UpstreamStates,
    upstream: &str,
    replica: &str,
    lease: Duration,
) -> Result<Option<u64>, SyncError> {
    let now = now_ms();
    let until = now + lease.as_millis() as u64;
    if !states.take_lease(replica, upstream, now, until).await? {
        return Ok(None);
    }
    states
        .update(upstream, |s| {
            s.last_attempt_ms = Some(now);
            s.phase = Some("discovering".into());
            s.progress_bytes = 0;
            Some(())
        })
        .await?;
    Ok(Some(now))
}

/// Renew the lease while the sync runs, and record how far it got.
async fn renew(
    states: UpstreamStates,
    upstream: String,
    replica: String,
    lease: Duration,
    progress: Arc<AtomicU64>,
) {
    loop {
        tokio::time::sleep(RENEW_EVERY.min(lease / 3)).await;
        let now = now_ms();
        let renewed = states
            .renew_lease(&replica, &upstream, now, now + lease.as_millis() as u64)
            .await;
        let recorded = states
            .update(&upstream, |s| {
                s.progress_bytes = progress.load(Ordering::Relaxed);
                Some(())
            })
            .await;
        if let Err(e) = renewed.and(recorded) {
            tracing::warn!(upstream = %upstream, error = %e, "renewing an upstream's lease failed");
        }
    }
}

/// Record the outcome; give the lease back unless a sync was asked for meanwhile (the lease
/// is then kept for it). Whether to sync again.
async fn give_back(
    states: &UpstreamStates,
    upstream: &str,
    replica: &str,
    lease: Duration,
    started: u64,
    outcome: Result<Synced, SyncError>,
) -> Result<bool, SyncError> {
    let outcome = &outcome;
    let written = states
        .update(upstream, |s| {
            let now = now_ms();
            s.phase = None;
            s.last_finished_ms = Some(now);
            match outcome {
                Ok(synced) => {
                    s.last_success_ms = Some(now);
                    s.syncs += 1;
                    s.refs = synced.refs.clone();
                    s.last_pack_bytes = synced.pack_bytes;
                    s.last_lfs_objects = synced.lfs_objects;
                    s.last_error = (s.refs.iter())
                        .find(|(_, r)| r.status != "synced")
                        .map(|(name, r)| describe(name, r));
                }
                Err(e) => s.last_error = Some(e.to_string()),
            }
            Some(s.requested_ms > started)
        })
        .await?;
    let again = written.is_some_and(|(again, _)| again);
    match again {
        true => {
            let now = now_ms();
            let until = now + lease.as_millis() as u64;
            Ok(states.renew_lease(replica, upstream, now, until).await?)
        }
        false => {
            states.release_lease(replica).await?;
            Ok(false)
        }
    }
}

/// A ref that did not sync, in a line.
fn describe(name: &str, r: &RefSync) -> String {
    match (r.status.as_str(), r.ahead, r.behind, &r.reason) {
        ("diverged", Some(ahead), Some(behind), _) => format!(
            "{name} diverged from the upstream ({ahead} commits here, {behind} there); not moved"
        ),
        (status, _, _, Some(reason)) => format!("{name} {status}: {reason}"),
        (status, ..) => format!("{name} {status}"),
    }
}

async fn set_phase(states: &UpstreamStates, upstream: &str, phase: &str) {
    let set = states
        .update(upstream, |s| {
            s.phase = Some(phase.to_owned());
            Some(())
        })
        .await;
    if let Err(e) = set {
        tracing::debug!(error = %e, "recording a sync's phase failed");
    }
}

/// One sync of `upstream_id` into `repo`.
async fn sync_once(
    app: &Arc<App>,
    repo: &Repo,
    states: &UpstreamStates,
    upstream_id: &str,
    progress: Arc<AtomicU64>,
) -> Result<Synced, SyncError> {
    let endpoints =
        events::config::EndpointStore::new(app.storage.bucket.clone(), repo.keys.clone())
            .load()
            .await
            .map_err(|e| SyncError::Storage(e.to_string()))?;
    let Some(upstream) = endpoints
        .upstreams
        .into_iter()
        .find(|u| u.id == upstream_id)
    else {
        return Err(SyncError::Storage(format!("no upstream {upstream_id}")));
    };
    fetch_and_land(app, repo, states, &upstream, progress).await
}

/// The followed refs the remote has: `upstream.refs`' names and globs, or its default
/// branch.
fn followed(upstream: &Upstream, advertised: &FetchAdvertised) -> Vec<(String, ObjectId)> {
    let patterns: Vec<String> = match upstream.refs.is_empty() {
        false => upstream.refs.clone(),
        true => advertised.head.iter().cloned().collect(),
    };
    (advertised.refs.iter())
        .filter(|(name, _)| {
            !refs::is_pull_request_ref(name) && patterns.iter().any(|p| follows(p, name))
        })
        .map(|(name, id)| (name.clone(), *id))
        .collect()
}

/// Whether `pattern` names `name`: as a git refspec's source does when it is `prefix/*`
/// (every ref below, slashes included: `refs/heads/*` is every branch), as the push policy's
/// globs do otherwise.
fn follows(pattern: &str, name: &str) -> bool {
    match pattern.strip_suffix('*') {
        Some(prefix) if prefix.ends_with('/') && !prefix.contains(['*', '?']) => {
            name.starts_with(prefix)
        }
        _ => crate::policy::path_matches(pattern, name),
    }
}

async fn fetch_and_land(
    app: &Arc<App>,
    repo: &Repo,
    states: &UpstreamStates,
    upstream: &Upstream,
    progress: Arc<AtomicU64>,
) -> Result<Synced, SyncError> {
    let client = app.events.client();
    let timeout = app.events.settings().timeout;
    let remote = Remote::at(
        client,
        &upstream.url,
        upstream.username.as_deref(),
        upstream.password.as_deref(),
        timeout,
    );
    let advertised = remote.discover_fetch().await?;
    let wanted = followed(upstream, &advertised);
    let snapshot = repo.snapshot().await?;
    if advertised.object_hash != snapshot.object_hash {
        return Err(SyncError::Remote(MirrorError::Protocol(format!(
            "the upstream's object format is {}, this repository's {}",
            advertised.object_hash, snapshot.object_hash
        ))));
    }
    let db = repo
        .objects_having(
            &app.cache,
            snapshot.object_hash,
            snapshot.refs.values().map(|v| &v.target),
        )
        .await?;
    let mut wants: Vec<ObjectId> = wanted
        .iter()
        .map(|(_, id)| *id)
        .filter(|id| !db.contains(id))
        .collect();
    wants.sort();
    wants.dedup();
    let mut synced = Synced::default();
    let pack = match wants.is_empty() {
        true => None,
        false => {
            set_phase(states, &upstream.id, "fetching").await;
            // What the followed refs are at here first: the parents of what is new, usually.
            let mut haves: Vec<ObjectId> = (wanted.iter())
                .filter_map(|(name, _)| snapshot.get(name))
                .chain(snapshot.refs.values().map(|v| v.target))
                .collect();
            let mut seen = std::collections::HashSet::new();
            haves.retain(|h| seen.insert(*h));
            haves.truncate(MAX_HAVES);
            let deadline = tokio::time::Instant::now() + FETCH_DEADLINE;
            let answer = remote
                .fetch(&advertised, &wants, &haves, IDLE, deadline)
                .await?;
            let received = std::time::Instant::now();
            let (indexed, bytes) = receive_pack(app, &db, answer, progress).await?;
            tracing::info!(repo = %repo.id, bytes, seconds = received.elapsed().as_secs_f64(), "upstream pack received and indexed");
            synced.pack_bytes = bytes;
            Some(indexed)
        }
    };
    if let (true, Some(indexed)) = (upstream.lfs, &pack) {
        set_phase(states, &upstream.id, "lfs").await;
        let pointers: Vec<lfs::Pointer> = (indexed.kept_blobs.iter())
            .filter_map(|(_, data)| lfs::Pointer::parse(data))
            .collect();
        let store = lfs::Store::new(
            app.storage.bucket.clone(),
            repo.keys.clone(),
            app.config.lfs,
        );
        let (objects, bytes) = remote.download_lfs(&store, &pointers).await?;
        synced.lfs_objects = objects as u64;
        if bytes > 0 {
            crate::usage::account_lfs(repo, bytes as i64).await;
        }
    }
    set_phase(states, &upstream.id, "landing").await;
    let all = match &pack {
        Some(indexed) => match indexed.open()? {
            Some(p) => db.with_packs([db.packs(), &[p]].concat()),
            None => db.clone(),
        },
        None => db.clone(),
    };
    let (updates, mut outcomes) = {
        let (all, wanted, snapshot, overwrite) = (
            all.clone(),
            wanted.clone(),
            snapshot.clone(),
            upstream.overwrite,
        );
        tokio::task::spawn_blocking(move || decide(&all, &snapshot, &wanted, overwrite))
            .await
            .map_err(|e| SyncError::Storage(e.to_string()))??
    };
    if !updates.is_empty() {
        let landing = Landing {
            pack,
            updates: updates.clone(),
            atomic: false,
            origin: events::log::EventMeta {
                pusher: Some(format!("upstream:{}", upstream.id)),
                push_options: Vec::new(),
                source: events::log::Source::Upstream,
                pull_request: None,
                upstream: Some(upstream.url.clone()),
            },
            seen: Some(snapshot),
            policy: None,
        };
        let landing_started = std::time::Instant::now();
        let landed = land(app, repo, db, landing).await;
        tracing::info!(repo = %repo.id, updates = updates.len(), seconds = landing_started.elapsed().as_secs_f64(), "upstream sync landed");
        for (update, result) in updates.iter().zip(&landed.results) {
            if let (Err(why), Some(out)) = (result, outcomes.get_mut(&update.name)) {
                out.status = "refused".into();
                out.local = Some(update.old.to_string()).filter(|_| !update.old.is_null());
                out.reason = Some(match &landed.refused {
                    Some(r) => r.to_string(),
                    None => why.to_string(),
                });
            }
        }
    }
    synced.refs = std::mem::take(&mut outcomes);
    Ok(synced)
}

/// Stream the fetch's answer into a staged, indexed pack (thin packs completed from `db`);
/// and how many pack bytes came.
async fn receive_pack(
    app: &Arc<App>,
    db: &ObjectDb,
    answer: impl tokio::io::AsyncRead + Send + Unpin + 'static,
    progress: Arc<AtomicU64>,
) -> Result<(Indexed, u64), SyncError> {
    let (app, db, hash) = (app.clone(), db.clone(), db.object_hash());
    let stream: objectstore::bucket::ByteStream = Box::pin(answer);
    let runtime = tokio::runtime::Handle::current();
    let bridge = crate::bridge::blocking_reader(&runtime, async move { Ok(stream) });
    tokio::task::spawn_blocking(move || {
        let mut counted = Counting {
            inner: PackReader::new(bridge),
            count: progress,
        };
        let limits = app.pack_limits();
        let received = {
            let mut input = std::io::BufReader::with_capacity(256 << 10, &mut counted);
            index::receive(
                &mut input,
                &app.config.staging,
                hash,
                &limits,
                &app.budget,
                checks(&app),
            )
        }
        .map_err(|e| SyncError::Pack(e.to_string()))?;
        let (threads, _working_set) = received
            .reserve_working_set(&limits, &app.budget)
            .map_err(|e| SyncError::Pack(e.to_string()))?;
        let reader = db.reader();
        let mut bases = |id: &gix_hash::oid| {
            let mut buf = Vec::new();
            Ok(reader.try_read(id, &mut buf)?.map(|kind| (kind, buf)))
        };
        let indexed = received
            .resolve(&mut bases, &limits, checks(&app), threads)
            .map_err(|e| SyncError::Pack(e.to_string()))?;
        Ok((indexed, counted.count.load(Ordering::Relaxed)))
    })
    .await
    .map_err(|e| SyncError::Storage(e.to_string()))?
}

fn is_lfs_pointer(data: &[u8]) -> bool {
    lfs::Pointer::parse(data).is_some()
}

/// A push's checks, keeping LFS pointers whether or not pushes are checked for them: they
/// name the objects to fetch.
fn checks(app: &App) -> Checks<'static> {
    Checks {
        keep_blob: Some(&is_lfs_pointer),
        ..crate::landing::index_checks(app)
    }
}

/// A reader that counts the bytes read through it, where the lease renewal sees them.
struct Counting<R> {
    inner: R,
    count: Arc<AtomicU64>,
}

impl<R: std::io::Read> std::io::Read for Counting<R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.count.fetch_add(n as u64, Ordering::Relaxed);
        Ok(n)
    }
}

/// The updates a sync makes and each followed ref's outcome so far. Blocking.
fn decide(
    all: &ObjectDb,
    snapshot: &refs::Snapshot,
    wanted: &[(String, ObjectId)],
    overwrite: bool,
) -> Result<(Vec<RefUpdate>, std::collections::BTreeMap<String, RefSync>), SyncError> {
    let reader = all.reader();
    let mut updates = Vec::new();
    let mut outcomes = std::collections::BTreeMap::new();
    for (name, theirs) in wanted {
        let ours = snapshot.get(name);
        let mut out = RefSync {
            status: "synced".into(),
            local: ours.map(|o| o.to_string()),
            upstream: Some(theirs.to_string()),
            ahead: None,
            behind: None,
            reason: None,
        };
        let moves = match ours {
            Some(o) if o == *theirs => false,
            None => true,
            Some(o) => {
                let fast_forward = !name.starts_with("refs/tags/")
                    && history::is_ancestor(&reader, &o, theirs, MAX_COUNTED)
                        .map_err(|e| SyncError::Pack(e.to_string()))?
                        .unwrap_or(false);
                if !fast_forward {
                    let count = |from: &ObjectId, hide: &ObjectId| -> u64 {
                        let limits = history::LogLimits {
                            max_commits: MAX_COUNTED,
                            max_visited: MAX_COUNTED * 4,
                        };
                        history::log(&reader, &[*from], &[*hide], limits)
                            .map_or(0, |l| l.commits.len() as u64)
                    };
                    out.ahead = Some(count(&o, theirs));
                    out.behind = Some(count(theirs, &o));
                    out.status = "diverged".into();
                }
                fast_forward || overwrite
            }
        };
        if moves {
            out.status = "synced".into();
            out.local = Some(theirs.to_string());
            updates.push(RefUpdate {
                name: name.clone(),
                old: ours.unwrap_or_else(|| ObjectId::null(theirs.kind())),
                new: *theirs,
                peeled: None,
            });
        }
        outcomes.insert(name.clone(), out);
    }
    Ok((updates, outcomes))
}

#[cfg(test)]
mod tests {
    use super::*;
    use objectstore::layout::StorageKeys;
    use objectstore::MemoryBucket;

    #[test]
    fn patterns_follow_as_refspecs_do() {
        assert!(follows("refs/heads/*", "refs/heads/eliza/docs"));
        assert!(follows("refs/heads/main", "refs/heads/main"));
        assert!(!follows("refs/heads/main", "refs/heads/main2"));
        assert!(follows("refs/heads/release-*", "refs/heads/release-1"));
        assert!(!follows("refs/heads/*", "refs/tags/v1"));
    }

    #[tokio::test]
    async fn one_replica_syncs_at_a_time_and_requests_meanwhile_sync_again() -> Result<(), SyncError>
    {
        let bucket = Arc::new(MemoryBucket::new());
        let keys = StorageKeys::new("").artifact("ws", "repo").repo();
        let states = UpstreamStates::new(bucket, keys);
        let lease = Duration::from_secs(60);
        let started = take_lease(&states, "u", "a", lease).await?;
        assert!(started.is_some());
        assert_eq!(take_lease(&states, "u", "b", lease).await?, None, "b waits");
        // A webhook while `a` syncs: `a` keeps the lease and syncs again.
        tokio::time::sleep(Duration::from_millis(2)).await;
        states
            .update("u", |s| {
                s.requested_ms = now_ms();
                Some(())
            })
            .await?;
        let started = started.unwrap_or_default();
        let again = give_back(&states, "u", "a", lease, started, Ok(Synced::default())).await?;
        assert!(again);
        assert_eq!(take_lease(&states, "u", "b", lease).await?, None);
        // Done with nothing asked meanwhile: free, and the state says how it went.
        // (The lease was kept for the sync asked meanwhile: given back after it.)
        states.release_lease("a").await?;
        let second = take_lease(&states, "u", "a", lease)
            .await?
            .unwrap_or_default();
        let failed = Err(SyncError::Pack("bad pack".into()));
        assert!(!give_back(&states, "u", "a", lease, second, failed).await?);
        let state = states.load("u").await?;
        assert!(!states.lease().await?.is_held(now_ms()));
        assert_eq!(
            state.last_error.as_deref(),
            Some("the upstream's pack was refused: bad pack")
        );
        assert_eq!(state.syncs, 1);
        assert!(!state.is_due(now_ms()));
        // One sync of a repository at a time: another upstream of it waits too, and so does
        // a second sync of the same upstream on the same replica.
        assert!(take_lease(&states, "u", "a", lease).await?.is_some());
        assert_eq!(take_lease(&states, "v", "a", lease).await?, None);
        assert_eq!(take_lease(&states, "v", "b", lease).await?, None);
        assert_eq!(take_lease(&states, "u", "a", lease).await?, None);
        // A lease that ran out (its replica died) is taken over.
        states.release_lease("a").await?;
        take_lease(&states, "u", "a", Duration::ZERO).await?;
        assert!(take_lease(&states, "u", "b", lease).await?.is_some());
        Ok(())
    }
}
