//! Generated fetch answers kept for the next identical request.
//!
//! A fleet of clients cloning the same repository sends the same request again and again:
//! after a bundle-uri clone, every client has the same bundle tips and wants the same tags;
//! CI jobs fetch the same new commits on top of the same old ones. Working out such an
//! answer walks the history from the client's haves (all of it, for a repository's whole
//! history) and writes a pack; its bytes depend on nothing but the request and the
//! repository's refs, so the pack the first request produced is the answer to every later
//! one while the refs stay as they were (GitLab's Gitaly keeps a "pack-objects cache" for the
//! same reason). Answers that are the stored packs sent as they are cost nothing to produce
//! and are not kept.
//!
//! The key is a SHA-256 of everything the pack depends on: the repository, the content id of
//! its refs (any ref moved, created or deleted gives a new key, so a deleted branch's objects
//! are never served from here), the wants and haves (the haves as far as the repository has
//! them), the shallow boundary, the filter and the pack options. Entries are held in memory,
//! each under a reservation of the server's memory budget (none is kept when the budget is
//! short), at most [`AnswerCache::MAX_ENTRY`] bytes each and the configured total, the
//! least recently used dropped first.

use std::collections::{HashMap, VecDeque};
use std::io::Write;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use gix_hash::ObjectId;
use objectstore::budget::{MemoryBudget, Reservation};
use sha2::{Digest, Sha256};

/// What names one answer.
pub type AnswerKey = [u8; 32];

/// Kept answers, by key.
#[derive(Debug)]
pub struct AnswerCache {
    max_total: u64,
    budget: Arc<MemoryBudget>,
    state: Mutex<State>,
}

#[derive(Debug, Default)]
struct State {
    entries: HashMap<AnswerKey, (Arc<Vec<u8>>, Reservation)>,
    /// Keys, least recently used first.
    order: VecDeque<AnswerKey>,
    bytes: u64,
}

/// What a fetch answer depends on (see the module's documentation).
pub struct Question<'a> {
    pub repository: &'a str,
    pub refs: &'a str,
    pub wants: &'a [ObjectId],
    pub haves: &'a [ObjectId],
    pub shallow: &'a [ObjectId],
    /// The filter, pack options and anything else that shapes the pack, as text.
    pub shape: &'a str,
}

impl AnswerCache {
    /// The largest answer kept.
    pub const MAX_ENTRY: u64 = 8 << 20;

    /// A cache of at most `max_total` bytes, taken from `budget` (0 keeps nothing).
    pub fn new(max_total: u64, budget: Arc<MemoryBudget>) -> Self {
        AnswerCache {
            max_total,
            budget,
            state: Mutex::default(),
        }
    }

    /// Whether answers are kept at all.
    pub fn enabled(&self) -> bool {
        self.max_total > 0
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The key of `question`; sets are sorted, so their order in the request does not matter.
    pub fn key(question: &Question<'_>) -> AnswerKey {
        let mut hasher = Sha256::new();
        let mut field = |label: &str, data: &[u8]| {
            hasher.update(label.as_bytes());
            hasher.update((data.len() as u64).to_be_bytes());
            hasher.update(data);
        };
        field("repository", question.repository.as_bytes());
        field("refs", question.refs.as_bytes());
        for (label, ids) in [
            ("wants", question.wants),
            ("haves", question.haves),
            ("shallow", question.shallow),
        ] {
            let mut sorted: Vec<&ObjectId> = ids.iter().collect();
            sorted.sort();
            sorted.dedup();
            let bytes: Vec<u8> = sorted
                .iter()
                .flat_map(|id| id.as_bytes())
                .copied()
                .collect();
            field(label, &bytes);
        }
        field("shape", question.shape.as_bytes());
        hasher.finalize().into()
    }

    /// The answer kept under `key`.
    pub fn get(&self, key: &AnswerKey) -> Option<Arc<Vec<u8>>> {
        let mut state = self.lock();
        let answer = state.entries.get(key).map(|(a, _)| a.clone())?;
        if let Some(at) = state.order.iter().position(|k| k == key) {
            state.order.remove(at);
        }
        state.order.push_back(*key);
        Some(answer)
    }

    /// The largest answer this cache keeps.
    fn max_entry(&self) -> u64 {
        Self::MAX_ENTRY.min(self.max_total)
    }

    /// A writer passing an answer on to `inner` and copying it for [`AnswerCache::keep`],
    /// the copy held under the memory budget as it grows (no copy past the largest answer
    /// kept, or once the budget has no room).
    pub fn record<W: Write>(&self, inner: W) -> Recording<W> {
        Recording {
            inner,
            copy: Some((Vec::new(), self.budget.empty())),
            limit: self.max_entry(),
        }
    }

    /// Keep `answer` under `key` (see [`AnswerCache::keep`]), reserving its memory first.
    #[cfg(test)]
    fn put(&self, key: AnswerKey, answer: Vec<u8>) {
        if answer.len() as u64 > self.max_entry() {
            return;
        }
        if let Ok(reservation) = self.budget.reserve(answer.len() as u64, Duration::ZERO) {
            self.keep(key, answer, reservation);
        }
    }

    /// Keep `answer`, whose memory `reservation` holds, under `key`, dropping the least
    /// recently used answers to make room; nothing is kept when it is too large.
    pub fn keep(&self, key: AnswerKey, answer: Vec<u8>, reservation: Reservation) {
        let size = answer.len() as u64;
        if size > self.max_entry() {
            return;
        }
        let mut state = self.lock();
        if state.entries.contains_key(&key) {
            return;
        }
        while state.bytes + size > self.max_total {
            let Some(oldest) = state.order.pop_front() else {
                break;
            };
            if let Some((dropped, _)) = state.entries.remove(&oldest) {
                state.bytes -= dropped.len() as u64;
            }
        }
        state.bytes += size;
        state.order.push_back(key);
        state.entries.insert(key, (Arc::new(answer), reservation));
    }

    /// Bytes of answers kept.
    pub fn bytes(&self) -> u64 {
        self.lock().bytes
    }
}

/// See [`AnswerCache::record`].
pub struct Recording<W> {
    inner: W,
    /// The copy and the memory it holds; `None` once it cannot be kept.
    copy: Option<(Vec<u8>, Reservation)>,
    limit: u64,
}

impl<W: Write> Recording<W> {
    /// A writer that only passes the answer on (no cache to keep it in).
    pub fn pass_through(inner: W) -> Self {
        Recording {
            inner,
            copy: None,
            limit: 0,
        }
    }

    /// The writer, and the whole answer with its reservation if it was copied in full.
    pub fn finish(self) -> (W, Option<(Vec<u8>, Reservation)>) {
        (self.inner, self.copy)
    }
}

impl<W: Write> Write for Recording<W> {
    fn write(&mut self, data: &[u8]) -> std::io::Result<usize> {
        let n = self.inner.write(data)?;
        if let Some((copy, reservation)) = &mut self.copy {
            let fits = (copy.len() + n) as u64 <= self.limit
                && reservation.grow(n as u64, Duration::ZERO).is_ok();
            match fits {
                true => copy.extend_from_slice(&data[..n]),
                false => self.copy = None,
            }
        }
        Ok(n)
    }

    fn flush(&mut self) -> std::io::Result<()> {
        self.inner.flush()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn id(n: u8) -> ObjectId {
        ObjectId::from_bytes_or_panic(&[n; 20])
    }

    fn question<'a>(refs: &'a str, wants: &'a [ObjectId], haves: &'a [ObjectId]) -> Question<'a> {
        Question {
            repository: "ws/artifacts/a/git/",
            refs,
            wants,
            haves,
            shallow: &[],
            shape: "ofs-delta",
        }
    }

    #[test]
    fn keys_follow_every_input_but_order() {
        let (a, b) = (id(1), id(2));
        let both = [a, b];
        let base = AnswerCache::key(&question("r1", &both, &[]));
        assert_eq!(base, AnswerCache::key(&question("r1", &[b, a], &[])));
        assert_ne!(base, AnswerCache::key(&question("r2", &[a, b], &[])));
        assert_ne!(base, AnswerCache::key(&question("r1", &[a], &[b])));
        let mut other = question("r1", &both, &[]);
        other.shape = "thin-pack";
        assert_ne!(base, AnswerCache::key(&other));
    }

    #[test]
    fn bounded_by_size_and_budget_least_recently_used_first() {
        let budget = MemoryBudget::new(1 << 20);
        let cache = AnswerCache::new(300, budget.clone());
        let key = |n: u8| AnswerCache::key(&question("r", &[id(n)], &[]));
        cache.put(key(1), vec![1; 100]);
        cache.put(key(2), vec![2; 100]);
        cache.put(key(3), vec![3; 100]);
        assert_eq!(budget.in_use(), 300);
        assert!(cache.get(&key(1)).is_some());
        cache.put(key(4), vec![4; 100]);
        assert!(cache.get(&key(2)).is_none(), "the least recently used went");
        assert!(cache.get(&key(1)).is_some() && cache.get(&key(4)).is_some());
        cache.put(key(5), vec![5; 301]);
        assert!(cache.get(&key(5)).is_none(), "over the total");
        assert_eq!((cache.bytes(), budget.in_use()), (300, 300));
        let tight = AnswerCache::new(1 << 20, MemoryBudget::new(50));
        tight.put(key(6), vec![6; 100]);
        assert!(tight.get(&key(6)).is_none(), "no room in the budget");
    }

    #[test]
    fn a_recording_passes_everything_on_and_copies_under_the_budget() -> std::io::Result<()> {
        let budget = MemoryBudget::new(150);
        let cache = AnswerCache::new(1 << 20, budget.clone());
        let mut recording = cache.record(Vec::new());
        recording.write_all(&[1; 100])?;
        assert_eq!(budget.in_use(), 100, "the copy is held under the budget");
        let (out, copy) = recording.finish();
        let (copy, reservation) = copy.ok_or(std::io::ErrorKind::Other)?;
        assert_eq!((out, copy.len()), (vec![1; 100], 100));
        cache.keep(
            AnswerCache::key(&question("r", &[id(1)], &[])),
            copy,
            reservation,
        );
        assert_eq!((cache.bytes(), budget.in_use()), (100, 100));
        // Past the budget's room, the answer still goes out whole and no copy is kept.
        let mut recording = cache.record(Vec::new());
        recording.write_all(&[2; 60])?;
        let (out, copy) = recording.finish();
        assert_eq!(out, vec![2; 60]);
        assert!(copy.is_none());
        assert_eq!(
            budget.in_use(),
            100,
            "the partial copy's memory was returned"
        );
        // Past the largest answer kept, likewise.
        let small = AnswerCache::new(10, MemoryBudget::new(1 << 20));
        let mut recording = small.record(Vec::new());
        recording.write_all(&[3; 11])?;
        assert!(recording.finish().1.is_none());
        Ok(())
    }
}
