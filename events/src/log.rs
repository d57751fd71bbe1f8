//! The push event log: one record per change of a repository's refs, written before the change
//! is committed, and read back as the chain that leads to the refs as they are.
//!
//! A change is recorded under its number and the content ids of the refs before and after it
//! ([`RepoKeys::event`]). The record is written before the refs' compare-and-swap, so once git
//! printed `ok` the event exists; a push that loses the race (or crashes in between) leaves a
//! record whose `id` never becomes the refs' content id, and a reader that follows the chain
//! back from the current refs never reaches it. Nothing needs cleaning up for correctness.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use bytes::Bytes;
use gix_hash::ObjectId;
use objectstore::bucket::{self, Bucket, PutMode};
use objectstore::layout::{RepoKeys, StorageKeys};
use serde::{Deserialize, Serialize};

/// The content id of "no refs object yet", in keys.
pub const NO_REFS: &str = "0000000000000000000000000000000000000000";

fn key_id(id: &str) -> &str {
    if id.is_empty() {
        NO_REFS
    } else {
        id
    }
}

/// One ref moved by an event.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RefMove {
    /// The full ref name.
    pub name: String,
    /// Its value before (null: created); stored as hex.
    #[serde(with = "crate::hex_id")]
    pub before: ObjectId,
    /// Its value after (null: deleted); stored as hex.
    #[serde(with = "crate::hex_id")]
    pub after: ObjectId,
}

impl RefMove {
    /// The value before, if the ref existed.
    pub fn before_id(&self) -> Option<ObjectId> {
        Some(self.before).filter(|i| !i.is_null())
    }

    /// The value after, if the ref still exists.
    pub fn after_id(&self) -> Option<ObjectId> {
        Some(self.after).filter(|i| !i.is_null())
    }
}

/// What caused an event.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "snake_case")]
pub enum Source {
    /// A `git push`.
    #[default]
    Push,
    /// Files imported by `enable_git`.
    Import,
    /// A commit made through the API.
    Api,
    /// An artifact version committed by `commit_version`: never published back as a version.
    Version,
    /// A pull request merged.
    PullRequest,
    /// A sync from an upstream (another host's repository this one follows).
    Upstream,
}

/// Who and what besides the ref moves: recorded with every event.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct EventMeta {
    /// The pusher's `sub` claim, when the token had one.
    pub pusher: Option<String>,
    /// `git push -o` options.
    #[serde(default)]
    pub push_options: Vec<String>,
    /// What made the change.
    #[serde(default)]
    pub source: Source,
    /// The pull request the change is about (opened, merged, closed, reopened), if any. A
    /// push that moves a pull request's head ref (`refs/pull/{n}/head`) has none: the
    /// moved ref says it synchronized the pull request.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pull_request: Option<crate::pull::PullRequestEvent>,
    /// The URL of the upstream a sync came from: a push mirror to the same remote does not
    /// send it back.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub upstream: Option<String>,
}

/// One recorded change of the refs.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Event {
    /// Its number: one more than the refs it started from.
    pub seq: u64,
    /// The content id of the refs before.
    pub prev: String,
    /// The content id of the refs after.
    pub id: String,
    /// When it was recorded, seconds since the epoch.
    pub time: i64,
    /// The refs it moved.
    pub refs: Vec<RefMove>,
    /// When it created a ref: the values of the other refs then (see
    /// [`refs::Change::other_tips`]); a new branch's payload lists only commits none has.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[serde(with = "crate::hex_id::list")]
    pub other_tips: Vec<ObjectId>,
    /// Who and how.
    #[serde(flatten)]
    pub meta: EventMeta,
}

/// A position in the log: the refs as they were after event `seq`, by content id.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
pub struct Cursor {
    /// The event number.
    pub seq: u64,
    /// The refs' content id then.
    pub id: String,
}

/// Seconds since the epoch.
pub fn now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs() as i64)
}

/// Records of the latest changes kept once every endpoint had them: what
/// `validate_push_policy` tries a proposed policy on.
pub const KEPT_EVENTS: u64 = 100;

/// Records each change of one repository's refs: the [`refs::Journal`] a push commits with.
/// A change of an unwatched repository is not recorded (see [`refs::RefStore::watch`]);
/// [`Recorder::recorded`] says whether anything was, so the dispatcher is woken only then.
pub struct Recorder {
    bucket: Arc<dyn Bucket>,
    keys: RepoKeys,
    marker: Box<dyn Fn(u64) -> String + Send + Sync>,
    meta: EventMeta,
    recorded: AtomicBool,
}

impl Recorder {
    /// A recorder for the repository `workspace/alias` of `storage`.
    pub fn new(
        bucket: Arc<dyn Bucket>,
        storage: &StorageKeys,
        workspace: &str,
        alias: &str,
        meta: EventMeta,
    ) -> Self {
        let keys = storage.artifact(workspace, alias).repo();
        let (storage, workspace, alias) = (storage.clone(), workspace.to_owned(), alias.to_owned());
        Recorder {
            bucket,
            keys,
            marker: Box::new(move |seq| storage.pending_event(&workspace, &alias, seq)),
            meta,
            recorded: AtomicBool::new(false),
        }
    }

    /// Whether a change was recorded (with its pending marker) through this recorder.
    pub fn recorded(&self) -> bool {
        self.recorded.load(Ordering::Relaxed)
    }
}

#[async_trait::async_trait]
impl refs::Journal for Recorder {
    async fn record(&self, change: &refs::Change) -> Result<(), bucket::Error> {
        let event = Event {
            seq: change.seq,
            prev: change.prev.clone(),
            id: change.id.clone(),
            time: now(),
            refs: change
                .moved
                .iter()
                .map(|m| RefMove {
                    name: m.name.clone(),
                    before: m.before,
                    after: m.after,
                })
                .collect(),
            other_tips: change.other_tips.clone(),
            meta: self.meta.clone(),
        };
        let body = serde_json::to_vec(&event).map_err(|e| bucket::Error::Backend {
            key: String::new(),
            message: e.to_string(),
        })?;
        let key = self
            .keys
            .event(event.seq, key_id(&event.prev), key_id(&event.id));
        let marker = (self.marker)(event.seq);
        let (record, marked) = tokio::join!(
            self.bucket.put(&key, Bytes::from(body), PutMode::Create),
            self.bucket.put(&marker, Bytes::new(), PutMode::Overwrite),
        );
        match record {
            // The same change recorded before (an identical retry): the record is the same.
            Ok(_) | Err(bucket::Error::PreconditionFailed(_)) => {}
            Err(e) => return Err(e),
        }
        marked?;
        self.recorded.store(true, Ordering::Relaxed);
        Ok(())
    }
}

/// The events after a cursor that the log's listing holds, and whether that is all of them.
#[derive(Debug, Default)]
pub struct EventChain {
    /// Oldest first, ending at the head.
    pub events: Vec<Event>,
    /// How many changes between the cursor and the first event have no record in the listing:
    /// zero when the chain reaches the cursor. Every change of a watched repository is
    /// recorded before it commits, so a gap is a listing that lags behind recent writes (a
    /// bucket whose listings are eventually consistent) far more often than a lost record:
    /// readers wait for it to close before moving past it.
    pub missing: u64,
}

impl EventChain {
    /// Whether the chain reaches the cursor.
    pub fn is_complete(&self) -> bool {
        self.missing == 0
    }
}

/// The events of a repository after `cursor`, up to the refs whose number and content id are
/// `head`: the chain followed back from `head` through each record's `prev`. Records of
/// changes that never committed are not on it. A gap (records not listed yet, or gone) ends
/// the walk: the events after it are returned and the gap is counted in
/// [`EventChain::missing`].
pub async fn events_after(
    bucket: &dyn Bucket,
    keys: &RepoKeys,
    cursor: &Cursor,
    head: &Cursor,
) -> Result<EventChain, bucket::Error> {
    if head.seq <= cursor.seq {
        return Ok(EventChain::default());
    }
    let listed = bucket.list(&keys.event_log_dir()).await?;
    // (seq, id) -> (prev, key), for the records after the cursor.
    let mut by_id = std::collections::HashMap::new();
    for meta in &listed {
        if let Some((seq, prev, id)) = keys.parse_event(&meta.key) {
            if seq > cursor.seq && seq <= head.seq {
                by_id.insert((seq, id.to_owned()), (prev.to_owned(), meta.key.clone()));
            }
        }
    }
    let mut chain = Vec::new();
    let (mut seq, mut id) = (head.seq, key_id(&head.id).to_owned());
    while seq > cursor.seq {
        let Some((prev, key)) = by_id.remove(&(seq, id.clone())) else {
            break;
        };
        chain.push(key);
        id = prev;
        seq -= 1;
    }
    let mut events = Vec::with_capacity(chain.len());
    for key in chain.iter().rev() {
        let data = bucket.get(key).await?.data;
        let event: Event = serde_json::from_slice(&data).map_err(|e| bucket::Error::Backend {
            key: key.clone(),
            message: format!("unreadable event record: {e}"),
        })?;
        events.push(event);
    }
    Ok(EventChain {
        events,
        missing: seq - cursor.seq,
    })
}

/// Delete the records of events up to `seq` (every endpoint has them) and the records of
/// changes that never committed below it. The mark [`forgotten`] reads is raised to `seq`
/// first.
pub async fn forget_through(
    bucket: &dyn Bucket,
    keys: &RepoKeys,
    seq: u64,
) -> Result<usize, bucket::Error> {
    let doomed: Vec<String> = bucket
        .list(&keys.event_log_dir())
        .await?
        .into_iter()
        .filter(|meta| {
            keys.parse_event(&meta.key)
                .is_some_and(|(s, _, _)| s <= seq)
        })
        .map(|meta| meta.key)
        .collect();
    if doomed.is_empty() {
        return Ok(0);
    }
    raise_forgotten(bucket, keys, seq).await?;
    for key in &doomed {
        bucket.delete(key).await?;
    }
    Ok(doomed.len())
}

/// Through which `seq` records were deleted on purpose ([`RepoKeys::event_log_forgotten`]);
/// 0 when none were.
pub async fn forgotten(bucket: &dyn Bucket, keys: &RepoKeys) -> Result<u64, bucket::Error> {
    match bucket.get(&keys.event_log_forgotten()).await {
        Ok(read) => Ok(parse_forgotten(&read.data)),
        Err(e) if e.is_not_found() => Ok(0),
        Err(e) => Err(e),
    }
}

fn parse_forgotten(data: &[u8]) -> u64 {
    std::str::from_utf8(data)
        .ok()
        .and_then(|s| s.trim().parse().ok())
        .unwrap_or(0)
}

/// Raise the mark to `seq` by compare-and-swap (never lower it: deleters run concurrently).
async fn raise_forgotten(
    bucket: &dyn Bucket,
    keys: &RepoKeys,
    seq: u64,
) -> Result<(), bucket::Error> {
    let key = keys.event_log_forgotten();
    for _ in 0..8 {
        let (current, mode) = match bucket.get(&key).await {
            Ok(read) => (parse_forgotten(&read.data), PutMode::Update(read.etag)),
            Err(e) if e.is_not_found() => (0, PutMode::Create),
            Err(e) => return Err(e),
        };
        if current >= seq {
            return Ok(());
        }
        match bucket.put(&key, Bytes::from(seq.to_string()), mode).await {
            Ok(_) => return Ok(()),
            // Another deleter moved it (or this write landed and its answer was lost): look
            // again.
            Err(bucket::Error::PreconditionFailed(_)) => {}
            Err(e) => return Err(e),
        }
    }
    Err(bucket::Error::PreconditionFailed(key))
}

#[cfg(test)]
mod tests {
    use super::*;
    use objectstore::MemoryBucket;
    use refs::{Journal, RefStore, RefTransaction, RefUpdate};

    fn id(n: u8) -> ObjectId {
        ObjectId::from_bytes_or_panic(&[n; 20])
    }

    fn update(name: &str, old: ObjectId, new: ObjectId) -> RefTransaction {
        RefTransaction {
            updates: vec![RefUpdate {
                name: name.into(),
                old,
                new,
                peeled: None,
            }],
            atomic: true,
            ..RefTransaction::default()
        }
    }

    /// A new (unwatched) repository `ws/repo` in a memory bucket.
    async fn new_repository(
    ) -> Result<(Arc<dyn Bucket>, StorageKeys, RepoKeys, RefStore), Box<dyn std::error::Error>>
    {
        let bucket: Arc<dyn Bucket> = Arc::new(MemoryBucket::new());
        let storage = StorageKeys::new("");
        let keys = storage.artifact("ws", "repo").repo();
        let refs = RefStore::new(bucket.clone(), keys.clone());
        refs.init("main", gix_hash::Kind::Sha1).await?;
        Ok((bucket, storage, keys, refs))
    }

    #[tokio::test]
    async fn the_chain_holds_exactly_the_committed_changes(
    ) -> Result<(), Box<dyn std::error::Error>> {
        let (bucket, storage, keys, refs) = new_repository().await?;
        refs.watch().await?;
        let zero = ObjectId::null(gix_hash::Kind::Sha1);
        let meta = |who: &str| EventMeta {
            pusher: Some(who.into()),
            ..EventMeta::default()
        };
        let alice = Recorder::new(bucket.clone(), &storage, "ws", "repo", meta("alice"));
        refs.commit_with(&update("refs/heads/main", zero, id(1)), Some(&alice))
            .await?;
        // A record whose change never committed (it lost the race, or the replica died).
        let start = refs.snapshot().await?;
        let lost = refs::Change {
            seq: start.seq + 1,
            prev: start.content_id.clone(),
            id: "f".repeat(40),
            moved: vec![],
            other_tips: vec![],
        };
        Recorder::new(bucket.clone(), &storage, "ws", "repo", meta("mallory"))
            .record(&lost)
            .await?;
        let bob = Recorder::new(bucket.clone(), &storage, "ws", "repo", meta("bob"));
        refs.commit_with(&update("refs/heads/main", id(1), id(2)), Some(&bob))
            .await?;
        refs.commit_with(&update("refs/heads/dev", zero, id(3)), Some(&bob))
            .await?;
        let head = refs.snapshot().await?;
        let head = Cursor {
            seq: head.seq,
            id: head.content_id,
        };
        let chain = events_after(bucket.as_ref(), &keys, &Cursor::default(), &head).await?;
        assert!(chain.is_complete());
        let all = chain.events;
        let who: Vec<_> = all
            .iter()
            .map(|e| e.meta.pusher.clone().unwrap_or_default())
            .collect();
        assert_eq!(who, ["alice", "bob", "bob"]);
        assert_eq!(all.iter().map(|e| e.seq).collect::<Vec<_>>(), [1, 2, 3]);
        assert_eq!(all[1].refs[0].before_id(), Some(id(1)));
        assert_eq!(all[2].refs[0].before_id(), None);
        // A created ref records the other refs as they were; a moved one does not.
        assert_eq!(all[2].other_tips, [id(2).to_string()]);
        assert!(all[1].other_tips.is_empty());
        // From a cursor, only what follows it.
        let cursor = Cursor {
            seq: all[0].seq,
            id: all[0].id.clone(),
        };
        let rest = events_after(bucket.as_ref(), &keys, &cursor, &head).await?;
        assert_eq!((rest.events.len(), rest.missing), (2, 0));
        // Markers name the repository and the event.
        let markers = bucket.list(&storage.pending_events_dir()).await?;
        assert!(markers.iter().all(|m| storage
            .parse_pending_event(&m.key)
            .is_some_and(|(w, a, _)| (w, a) == ("ws", "repo"))));
        assert_eq!(forget_through(bucket.as_ref(), &keys, 2).await?, 3);
        assert_eq!(forgotten(bucket.as_ref(), &keys).await?, 2);
        // Forgetting less does not lower the mark; nothing left to forget writes nothing.
        assert_eq!(forget_through(bucket.as_ref(), &keys, 1).await?, 0);
        assert_eq!(forgotten(bucket.as_ref(), &keys).await?, 2);
        // Below the forgotten records, the chain stops at the gap and says how wide it is.
        let after_gap = events_after(bucket.as_ref(), &keys, &cursor, &head).await?;
        assert_eq!(after_gap.events.len(), 1);
        assert_eq!(after_gap.events[0].seq, 3);
        assert_eq!(after_gap.missing, 1);
        assert!(!after_gap.is_complete());
        Ok(())
    }

    #[tokio::test]
    async fn an_announcement_is_recorded_though_no_ref_moves(
    ) -> Result<(), Box<dyn std::error::Error>> {
        let (bucket, storage, keys, refs) = new_repository().await?;
        let zero = ObjectId::null(gix_hash::Kind::Sha1);
        let closed = EventMeta {
            pull_request: Some(crate::pull::PullRequestEvent {
                number: 7,
                action: crate::pull::Action::Closed,
            }),
            ..EventMeta::default()
        };
        let announce = RefTransaction {
            announce: true,
            ..RefTransaction::default()
        };
        // Unwatched: nobody to tell, nothing written.
        let quiet = Recorder::new(bucket.clone(), &storage, "ws", "repo", closed.clone());
        refs.commit_with(&announce, Some(&quiet)).await?;
        assert!(!quiet.recorded());
        let before = refs.watch().await?;
        refs.commit_with(&update("refs/heads/main", zero, id(1)), None)
            .await?;
        let start = refs.snapshot().await?;
        let told = Recorder::new(bucket.clone(), &storage, "ws", "repo", closed.clone());
        refs.commit_with(&announce, Some(&told)).await?;
        assert!(told.recorded());
        let after = refs.snapshot().await?;
        assert_eq!(after.refs, start.refs, "no ref moved");
        assert_eq!(after.seq, start.seq + 1);
        let from = Cursor {
            seq: start.seq,
            id: start.content_id,
        };
        let head = Cursor {
            seq: after.seq,
            id: after.content_id,
        };
        let chain = events_after(bucket.as_ref(), &keys, &from, &head).await?;
        assert_eq!(chain.events.len(), 1);
        assert!(chain.events[0].refs.is_empty());
        assert_eq!(chain.events[0].meta, closed);
        // Without `announce`, a transaction that moves nothing writes nothing.
        refs.commit_with(&RefTransaction::default(), Some(&told))
            .await?;
        assert_eq!(refs.snapshot().await?.seq, after.seq);
        assert!(before.seq < after.seq);
        Ok(())
    }

    #[tokio::test]
    async fn an_unwatched_repository_records_nothing_until_it_is_watched(
    ) -> Result<(), Box<dyn std::error::Error>> {
        let (bucket, storage, keys, refs) = new_repository().await?;
        let zero = ObjectId::null(gix_hash::Kind::Sha1);
        let recorder =
            || Recorder::new(bucket.clone(), &storage, "ws", "repo", EventMeta::default());
        // A new repository is unwatched: its changes commit with no record and no marker.
        let first = recorder();
        refs.commit_with(&update("refs/heads/main", zero, id(1)), Some(&first))
            .await?;
        assert!(!first.recorded());
        assert!(bucket.list(&keys.event_log_dir()).await?.is_empty());
        assert!(bucket.list(&storage.pending_events_dir()).await?.is_empty());

        // A push read the refs before an endpoint was added (which watches the repository):
        // its compare-and-swap against those refs fails, and its retry is recorded.
        let stale = refs.snapshot().await?;
        assert!(stale.unwatched);
        let watched = refs.watch().await?;
        assert!(!watched.unwatched);
        assert_eq!((watched.seq, &watched.refs), (stale.seq, &stale.refs));
        assert_ne!(watched.content_id, stale.content_id);
        // Watching again changes nothing.
        assert_eq!(refs.watch().await?.content_id, watched.content_id);
        let second = recorder();
        let outcome = refs
            .commit_from(
                &update("refs/heads/main", id(1), id(2)),
                Some(&second),
                Some(stale),
            )
            .await?;
        assert!(outcome.iter().all(Result::is_ok), "{outcome:?}");
        assert!(second.recorded());
        let head = refs.snapshot().await?;
        assert!(!head.unwatched, "a change keeps the repository watched");
        let cursor = Cursor {
            seq: watched.seq,
            id: watched.content_id,
        };
        let head = Cursor {
            seq: head.seq,
            id: head.content_id,
        };
        let events = events_after(bucket.as_ref(), &keys, &cursor, &head)
            .await?
            .events;
        assert_eq!(events.len(), 1);
        assert_eq!(events[0].refs[0].after_id(), Some(id(2)));
        assert_eq!(events[0].refs[0].before_id(), Some(id(1)));
        Ok(())
    }
}
