//! Pass 2: apply every delta, depth first from each base, complete a thin pack, write the
//! `.idx`.

use std::collections::HashMap;
use std::fs::File;
use std::io::{BufWriter, Read, Seek, SeekFrom, Write};
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::Mutex;

use gix_hash::ObjectId;
use gix_object::Kind;

use super::{
    idx, invalid, BaseSource, Checks, Entry, EntryKind, Indexed, Limits, Received, Refused,
    KEPT_BLOB_MAX,
};
use crate::fsck::{self, ObjectError, SpecialFile};
use crate::odb::pack_data::{inflate_range, Inflater, PackDataError};
use crate::odb::{delta, Error, Result};

/// How many times its declared results a pack's delta resolution may produce (bases evicted
/// from the cache are derived again), beyond a first GiB.
const WORK_FACTOR: u64 = 32;

/// What every worker reads.
struct Shared<'a> {
    /// The hash that names the pack's objects.
    hash: gix_hash::Kind,
    entries: &'a [Entry],
    ids: &'a [ObjectId],
    /// Children of entry `i`: `list[first[i]..first[i + 1]]`.
    first: &'a [u32],
    list: &'a [u32],
    /// Deltas whose base is named by an id no whole object of the pack has: a delta result of
    /// the pack, or (in a thin pack) an object of the repository.
    pending: Mutex<HashMap<ObjectId, Vec<u32>>>,
    has_pending: bool,
    /// Where the last entry ends.
    data_end: u64,
    limits: &'a Limits,
    checks: Checks<'a>,
    abort: AtomicBool,
    /// Bytes produced by applying deltas so far, and the most allowed.
    work: AtomicU64,
    work_limit: u64,
}

/// What a worker found.
#[derive(Default)]
struct Found {
    ids: Vec<(u32, ObjectId)>,
    kept_blobs: Vec<(ObjectId, Vec<u8>)>,
    specials: Vec<(SpecialFile, ObjectId)>,
}

/// A base on the path from a root to the delta being applied, with deltas left to apply.
struct Frame {
    /// Deltas between it and the root.
    depth: u32,
    /// Its content, unless evicted to stay within the base cache.
    bytes: Option<Vec<u8>>,
    children: Vec<u32>,
    next: usize,
}

struct Worker<'a> {
    shared: &'a Shared<'a>,
    file: File,
    inflater: Inflater,
    delta: Vec<u8>,
    found: Found,
}

impl<'a> Worker<'a> {
    fn new(shared: &'a Shared<'a>, path: &'a std::path::Path) -> Result<Self> {
        Ok(Worker {
            shared,
            file: File::open(path)?,
            inflater: Inflater::default(),
            delta: Vec::new(),
            found: Found::default(),
        })
    }

    /// Inflate entry `index`'s data from the file into `out`, exactly its declared size.
    fn inflate(&mut self, entries: &[Entry], index: u32, out: &mut Vec<u8>) -> Result<()> {
        let i = index as usize;
        let e = entries[i];
        let start = e.offset + u64::from(e.header_len);
        let end = entries
            .get(i + 1)
            .map_or(self.shared.data_end, |n| n.offset);
        inflate_range(
            &self.file,
            &mut self.inflater,
            start,
            end,
            u64::from(e.size),
            out,
        )
        .map_err(|e| match e {
            PackDataError::Io(e) => Error::Io(e),
            PackDataError::Corrupt(m) => invalid(m),
        })
    }

    /// The children of an entry (or of a delta result with id `id`).
    fn children(&self, entry: u32, id: &ObjectId) -> Vec<u32> {
        let i = entry as usize;
        let mut children: Vec<u32> = match (self.shared.first.get(i), self.shared.first.get(i + 1))
        {
            (Some(&a), Some(&b)) => self.shared.list[a as usize..b as usize].to_vec(),
            _ => Vec::new(),
        };
        if self.shared.has_pending {
            let mut pending = self
                .shared
                .pending
                .lock()
                .unwrap_or_else(|p| p.into_inner());
            if let Some(more) = pending.remove(id) {
                children.extend(more);
            }
        }
        children
    }

    /// Check a resolved object and keep what the caller asked for.
    fn inspect(&mut self, kind: Kind, id: ObjectId, data: &[u8]) -> Result<()> {
        let checks = self.shared.checks;
        if kind == Kind::Blob {
            if let Some(keep) = checks.keep_blob {
                if data.len() <= KEPT_BLOB_MAX && keep(data) {
                    self.found.kept_blobs.push((id, data.to_vec()));
                }
            }
            return Ok(());
        }
        if let Some(rules) = checks.fsck {
            let specials = &mut self.found.specials;
            fsck::check(kind, data, rules, id.kind(), &mut |which, blob| {
                specials.push((which, blob))
            })
            .map_err(|finding| Refused::Fsck(ObjectError { id, finding }))?;
        }
        Ok(())
    }

    /// Resolve every delta below the whole object `root` (whose content is `bytes`, or read
    /// from the file).
    ///
    /// Depth first, keeping on a stack only the bases that still have deltas to apply, within
    /// [`Limits::base_cache_bytes`] (the newest base always): an evicted base is derived again
    /// from its nearest kept ancestor when its next delta comes, as git's `index-pack` does.
    fn resolve_root(&mut self, root: u32, bytes: Option<Vec<u8>>) -> Result<()> {
        let shared = self.shared;
        let entries = shared.entries;
        let e = entries[root as usize];
        let EntryKind::Object(kind) = e.kind else {
            return Err(invalid("a delta was taken for a base"));
        };
        let id = shared.ids[root as usize];
        let children = self.children(root, &id);
        if children.is_empty() && !e.check_later {
            return Ok(());
        }
        let bytes = match bytes {
            Some(b) => b,
            None => {
                let mut b = Vec::new();
                self.inflate(entries, root, &mut b)?;
                b
            }
        };
        if e.check_later {
            self.inspect(kind, id, &bytes)?;
        }
        if children.is_empty() {
            return Ok(());
        }
        let mut held = bytes.len() as u64;
        // The entries from the root to the newest base: what an evicted base is derived from.
        let mut path: Vec<u32> = vec![root];
        let mut stack = vec![Frame {
            depth: 0,
            bytes: Some(bytes),
            children,
            next: 0,
        }];
        let mut result = Vec::new();
        let mut delta = std::mem::take(&mut self.delta);
        while let Some(top) = stack.last_mut() {
            if shared.abort.load(Ordering::Relaxed) {
                return Err(invalid("indexing was aborted"));
            }
            let Some(&child) = top.children.get(top.next) else {
                if let Some(done) = stack.pop() {
                    held -= done.bytes.map_or(0, |b| b.len() as u64);
                }
                continue;
            };
            top.next += 1;
            let depth = top.depth + 1;
            path.truncate(depth as usize);
            if stack.last().is_some_and(|f| f.bytes.is_none()) {
                let rederived = self.rederive(&stack, &path)?;
                held += rederived.len() as u64;
                if let Some(top) = stack.last_mut() {
                    top.bytes = Some(rederived);
                }
            }
            self.inflate(entries, child, &mut delta)?;
            let c = entries[child as usize];
            self.charge(u64::from(c.result_size))?;
            if result.capacity() < c.result_size as usize {
                result = Vec::with_capacity(c.result_size as usize);
            }
            let base = stack
                .last()
                .and_then(|f| f.bytes.as_deref())
                .ok_or_else(|| invalid("a delta base went missing"))?;
            delta::apply(base, &delta, &mut result).map_err(|e| invalid(e.0))?;
            let mut hasher = gix_hash::hasher(self.shared.hash);
            hasher.update(&gix_object::encode::loose_header(kind, result.len() as u64));
            hasher.update(&result);
            let child_id = hasher.try_finalize().map_err(|e| invalid(format!("{e}")))?;
            self.inspect(kind, child_id, &result)?;
            self.found.ids.push((child, child_id));
            let grandchildren = self.children(child, &child_id);
            if grandchildren.is_empty() {
                continue;
            }
            if depth >= shared.limits.max_delta_depth {
                return Err(Refused::TooDeep(shared.limits.max_delta_depth).into());
            }
            // A base whose deltas are all applied is not needed any more: a plain chain keeps
            // two objects in memory, however long it is.
            if stack.last().is_some_and(|f| f.next == f.children.len()) {
                if let Some(done) = stack.pop() {
                    held -= done.bytes.map_or(0, |b| b.len() as u64);
                }
            }
            path.push(child);
            held += result.len() as u64;
            stack.push(Frame {
                depth,
                bytes: Some(std::mem::take(&mut result)),
                children: grandchildren,
                next: 0,
            });
            // Keep the bases below the newest within the cache, dropping the oldest first.
            let top_len = stack
                .last()
                .and_then(|f| f.bytes.as_ref())
                .map_or(0, Vec::len) as u64;
            let below = stack.len() - 1;
            for frame in stack[..below].iter_mut() {
                if held - top_len <= shared.limits.base_cache_bytes {
                    break;
                }
                if let Some(b) = frame.bytes.take() {
                    held -= b.len() as u64;
                }
            }
        }
        self.delta = delta;
        Ok(())
    }

    /// Count bytes produced by applying deltas against the pack's allowance: evicted bases are
    /// derived again, and a pack built to make that quadratic is stopped here.
    fn charge(&self, bytes: u64) -> Result<()> {
        let total = self.shared.work.fetch_add(bytes, Ordering::Relaxed) + bytes;
        if total > self.shared.work_limit {
            return Err(invalid(
                "resolving this pack's deltas takes more work than allowed (a delta tree built to defeat caching?)",
            ));
        }
        Ok(())
    }

    /// The content of the top frame, whose bytes were evicted: from the nearest kept base on
    /// its path from the root (or the root, read again), applying the deltas in between.
    fn rederive(&mut self, stack: &[Frame], path: &[u32]) -> Result<Vec<u8>> {
        let entries = self.shared.entries;
        let Some(top) = stack.last() else {
            return Err(invalid("no base to derive"));
        };
        let kept = stack[..stack.len() - 1]
            .iter()
            .rev()
            .find_map(|f| f.bytes.as_ref().map(|b| (f.depth, b)));
        let (from, mut current) = match kept {
            Some((depth, b)) => (depth as usize, b.clone()),
            None => {
                let mut b = Vec::new();
                self.inflate(entries, path[0], &mut b)?;
                (0, b)
            }
        };
        let mut delta = Vec::new();
        for &entry in &path[from + 1..=top.depth as usize] {
            self.inflate(entries, entry, &mut delta)?;
            let size = entries[entry as usize].result_size;
            self.charge(u64::from(size))?;
            let mut next = Vec::with_capacity(size as usize);
            delta::apply(&current, &delta, &mut next).map_err(|e| invalid(e.0))?;
            current = next;
        }
        Ok(current)
    }
}

/// A writer that keeps the CRC-32 of what passes through.
struct CrcWriter<'w, W: Write> {
    inner: &'w mut W,
    crc: crc32fast::Hasher,
    written: u64,
}

impl<W: Write> Write for CrcWriter<'_, W> {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        let n = self.inner.write(buf)?;
        self.crc.update(&buf[..n]);
        self.written += n as u64;
        Ok(n)
    }
    fn flush(&mut self) -> std::io::Result<()> {
        self.inner.flush()
    }
}

impl Received {
    /// Resolve every delta (pass 2), completing a thin pack from `bases`, and write the `.idx`.
    /// Call with the [`Received::reserve_working_set`] reservation held.
    pub fn resolve(
        mut self,
        bases: BaseSource<'_>,
        limits: &Limits,
        checks: Checks<'_>,
        threads: usize,
    ) -> Result<Indexed> {
        if self.entries.is_empty() {
            return Ok(Indexed {
                name: None,
                num_objects: 0,
                thin_bases: 0,
                kept_blobs: self.kept_blobs,
                specials: self.specials,
                hash: self.checksum.kind(),
                paths: None,
                _dir: self.dir,
            });
        }
        let n = self.entries.len();
        // Whole objects by id, for REF deltas against them.
        let mut by_id: Vec<(ObjectId, u32)> = Vec::new();
        if self.entries.iter().any(|e| e.kind == EntryKind::RefDelta) {
            by_id = self
                .entries
                .iter()
                .enumerate()
                .filter(|(_, e)| matches!(e.kind, EntryKind::Object(_)))
                .map(|(i, _)| (self.ids[i], i as u32))
                .collect();
            by_id.sort_unstable();
        }
        let mut parent: Vec<u32> = vec![u32::MAX; n];
        let mut pending: HashMap<ObjectId, Vec<u32>> = HashMap::new();
        for (i, e) in self.entries.iter().enumerate() {
            match e.kind {
                EntryKind::Object(_) => {}
                EntryKind::OfsDelta => parent[i] = e.base,
                EntryKind::RefDelta => {
                    let base_id = self.ref_bases[e.base as usize];
                    match by_id.binary_search_by_key(&base_id, |(id, _)| *id) {
                        Ok(at) => parent[i] = by_id[at].1,
                        Err(_) => pending.entry(base_id).or_default().push(i as u32),
                    }
                }
            }
        }
        drop(by_id);
        let mut first = vec![0u32; n + 1];
        for p in parent.iter().filter(|p| **p != u32::MAX) {
            first[*p as usize + 1] += 1;
        }
        for i in 0..n {
            first[i + 1] += first[i];
        }
        let mut fill = first.clone();
        let mut list = vec![0u32; first[n] as usize];
        for (i, p) in parent.iter().enumerate().filter(|(_, p)| **p != u32::MAX) {
            list[fill[*p as usize] as usize] = i as u32;
            fill[*p as usize] += 1;
        }
        drop(fill);
        drop(parent);
        let roots: Vec<u32> = (0..n as u32)
            .filter(|&i| {
                let e = self.entries[i as usize];
                matches!(e.kind, EntryKind::Object(_))
                    && (first[i as usize + 1] > first[i as usize] || e.check_later)
            })
            .collect();
        let data_end = std::fs::metadata(&self.path)?.len();
        // Each delta's result once, derived again a few times where the cache evicted it.
        let declared: u64 = self
            .entries
            .iter()
            .filter(|e| !matches!(e.kind, EntryKind::Object(_)))
            .map(|e| u64::from(e.result_size))
            .sum();
        let work_limit = declared.saturating_mul(WORK_FACTOR).saturating_add(1 << 30);

        let shared = Shared {
            hash: self.checksum.kind(),
            entries: &self.entries,
            ids: &self.ids,
            first: &first,
            list: &list,
            has_pending: !pending.is_empty(),
            pending: Mutex::new(pending),
            data_end,
            limits,
            checks,
            abort: AtomicBool::new(false),
            work: AtomicU64::new(0),
            work_limit,
        };
        let next = AtomicUsize::new(0);
        let path = self.path.clone();
        let outcomes: Vec<Result<Found>> = std::thread::scope(|scope| {
            let workers: Vec<_> = (0..threads.clamp(1, roots.len().max(1)))
                .map(|_| {
                    scope.spawn(|| -> Result<Found> {
                        let mut worker = Worker::new(&shared, &path)?;
                        loop {
                            let i = next.fetch_add(1, Ordering::Relaxed);
                            let Some(&root) = roots.get(i) else { break };
                            if let Err(e) = worker.resolve_root(root, None) {
                                shared.abort.store(true, Ordering::Relaxed);
                                return Err(e);
                            }
                        }
                        Ok(worker.found)
                    })
                })
                .collect();
            workers
                .into_iter()
                .map(|w| {
                    w.join()
                        .unwrap_or_else(|_| Err(invalid("a resolving thread failed")))
                })
                .collect()
        });
        let mut found = Found::default();
        let mut first_error = None;
        for outcome in outcomes {
            match outcome {
                Ok(f) => {
                    found.ids.extend(f.ids);
                    found.kept_blobs.extend(f.kept_blobs);
                    found.specials.extend(f.specials);
                }
                // A refusal says more than the "aborted" of the other threads.
                Err(e)
                    if first_error.is_none() || matches!(e, Error::Refused(Refused::Fsck(_))) =>
                {
                    first_error = Some(e)
                }
                Err(_) => {}
            }
        }
        if let Some(e) = first_error {
            return Err(e);
        }
        let mut pending = shared
            .pending
            .into_inner()
            .unwrap_or_else(|p| p.into_inner());
        for (i, id) in found.ids.drain(..) {
            self.ids[i as usize] = id;
        }

        // Thin pack: bases the repository has are appended as whole objects.
        let mut thin_bases = 0;
        if !pending.is_empty() {
            let mut file = std::fs::OpenOptions::new().append(true).open(&self.path)?;
            let mut end = data_end;
            while !pending.is_empty() {
                let mut wanted: Vec<ObjectId> = pending.keys().copied().collect();
                wanted.sort_unstable();
                let mut appended = Vec::new();
                let mut kept_bytes = 0u64;
                for id in &wanted {
                    let Some((kind, data)) = bases(id)? else {
                        continue;
                    };
                    let size = u32::try_from(data.len())
                        .ok()
                        .filter(|s| u64::from(*s) <= limits.max_object_bytes)
                        .ok_or(Refused::TooLarge {
                            size: data.len() as u64,
                            limit: limits.max_object_bytes,
                        })?;
                    let mut writer = BufWriter::new(&mut file);
                    let mut crc = CrcWriter {
                        inner: &mut writer,
                        crc: crc32fast::Hasher::new(),
                        written: 0,
                    };
                    let header = match kind {
                        Kind::Commit => gix_pack::data::entry::Header::Commit,
                        Kind::Tree => gix_pack::data::entry::Header::Tree,
                        Kind::Blob => gix_pack::data::entry::Header::Blob,
                        Kind::Tag => gix_pack::data::entry::Header::Tag,
                    };
                    let header_len = header.write_to(u64::from(size), &mut crc)?;
                    let mut z =
                        flate2::write::ZlibEncoder::new(&mut crc, flate2::Compression::fast());
                    z.write_all(&data)?;
                    z.finish()?;
                    let (crc32, written) = (crc.crc.finalize(), crc.written);
                    writer.flush()?;
                    drop(writer);
                    self.entries.push(Entry {
                        offset: end,
                        size,
                        result_size: size,
                        crc32,
                        base: u32::MAX,
                        header_len: header_len as u8,
                        kind: EntryKind::Object(kind),
                        check_later: false,
                    });
                    self.ids.push(*id);
                    end += written;
                    // Kept for their deltas within the base cache; beyond it, inflated again
                    // from the file when their turn comes: memory stays flat however many
                    // large bases a thin pack leaves out.
                    let keep = kept_bytes + data.len() as u64 <= limits.base_cache_bytes;
                    if keep {
                        kept_bytes += data.len() as u64;
                    }
                    appended.push((self.entries.len() as u32 - 1, keep.then_some(data)));
                }
                if appended.is_empty() {
                    let missing = wanted.len();
                    return Err(invalid(format!(
                        "{missing} deltas refer to objects neither the pack nor the repository has (first: {})",
                        wanted[0]
                    )));
                }
                thin_bases += appended.len();
                // Their deltas, resolved here; they may name further pending bases.
                let first_ext = {
                    let mut f = first.clone();
                    f.resize(self.entries.len() + 1, first[n]);
                    f
                };
                let shared = Shared {
                    hash: self.checksum.kind(),
                    entries: &self.entries,
                    ids: &self.ids,
                    first: &first_ext,
                    list: &list,
                    has_pending: true,
                    pending: Mutex::new(std::mem::take(&mut pending)),
                    data_end: end,
                    limits,
                    checks,
                    abort: AtomicBool::new(false),
                    work: AtomicU64::new(0),
                    work_limit,
                };
                let mut worker = Worker::new(&shared, &self.path)?;
                for (index, data) in appended {
                    worker.resolve_root(index, data)?;
                }
                let found_here = worker.found;
                pending = shared
                    .pending
                    .into_inner()
                    .unwrap_or_else(|p| p.into_inner());
                for (i, id) in found_here.ids {
                    self.ids[i as usize] = id;
                }
                found.kept_blobs.extend(found_here.kept_blobs);
                found.specials.extend(found_here.specials);
            }
        }
        if let Some(i) = self.ids.iter().position(|id| id.is_null()) {
            return Err(invalid(format!(
                "the delta at offset {} cannot be resolved (its base chain has no start)",
                self.entries[i].offset
            )));
        }
        let checksum = if thin_bases > 0 {
            rewrite_count_and_checksum(&self.path, self.entries.len(), self.checksum.kind())?
        } else {
            self.checksum
        };
        let mut file = std::fs::OpenOptions::new().append(true).open(&self.path)?;
        file.write_all(checksum.as_bytes())?;
        drop(file);
        let name = format!("pack-{checksum}");
        let pack_path = self.dir.path().join(format!("{name}.pack"));
        let idx_path = self.dir.path().join(format!("{name}.idx"));
        idx::write(&idx_path, &self.entries, &self.ids, &checksum)?;
        std::fs::rename(&self.path, &pack_path)?;
        let mut kept_blobs = self.kept_blobs;
        kept_blobs.extend(found.kept_blobs);
        let mut specials = self.specials;
        specials.extend(found.specials);
        Ok(Indexed {
            name: Some(name),
            num_objects: self.entries.len(),
            thin_bases,
            kept_blobs,
            specials,
            hash: checksum.kind(),
            paths: Some((pack_path, idx_path)),
            _dir: self.dir,
        })
    }
}

/// After bases were appended: write the new object count into the header and return the
/// checksum of the whole file (which does not hold one yet).
fn rewrite_count_and_checksum(
    path: &std::path::Path,
    count: usize,
    hash: gix_hash::Kind,
) -> Result<ObjectId> {
    let count = u32::try_from(count).map_err(|_| invalid("too many objects"))?;
    let mut file = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .open(path)?;
    file.seek(SeekFrom::Start(8))?;
    file.write_all(&count.to_be_bytes())?;
    file.seek(SeekFrom::Start(0))?;
    let mut hasher = gix_hash::hasher(hash);
    let mut buf = vec![0u8; 1 << 20];
    loop {
        let n = file.read(&mut buf)?;
        if n == 0 {
            break;
        }
        hasher.update(&buf[..n]);
    }
    hasher.try_finalize().map_err(|e| invalid(format!("{e}")))
}
