//! [`Reader`]: decoding objects of an [`ObjectDb`], with a cache of delta bases.

use std::cell::RefCell;

use gix_hash::{oid, ObjectId};
use gix_object::Kind;

use gix_pack::cache::DecodeEntry;
use gix_pack::data::entry::Header;

use super::db::ObjectDb;
use super::delta;
use super::object::{self, Commit};
use super::pack::Pack;
use super::pack_data::{Inflater, PackDataError};
use super::{Error, Result};

/// The longest delta chain followed: deeper is a cycle of REF deltas or corruption (git's
/// own limit when it writes packs is 4095, ours at ingest is [`super::index::Limits`]'s).
const MAX_CHAIN: usize = 10_000;

struct ReaderState {
    inflater: Inflater,
    cache: gix_pack::cache::lru::MemoryCappedHashmap,
    /// A delta's instructions, then the result being built: reused from object to object.
    delta: Vec<u8>,
    next: Vec<u8>,
}

/// One delta of a chain being resolved: where its data lies and how large it inflates.
#[derive(Clone, Copy)]
struct Link {
    data_start: u64,
    data_end: u64,
    size: u64,
}

/// Reads and decodes objects; not shared between threads (each has its own caches).
pub struct Reader<'a> {
    db: &'a ObjectDb,
    state: RefCell<ReaderState>,
}

impl<'a> Reader<'a> {
    pub(crate) fn new(db: &'a ObjectDb) -> Self {
        Reader {
            db,
            state: RefCell::new(ReaderState {
                inflater: Inflater::default(),
                cache: gix_pack::cache::lru::MemoryCappedHashmap::new(16 << 20),
                delta: Vec::new(),
                next: Vec::new(),
            }),
        }
    }

    /// The repository read from.
    pub fn db(&self) -> &'a ObjectDb {
        self.db
    }

    /// Decode an object into `out`, returning its kind, or `None` when it does not exist.
    pub fn try_read(&self, id: &oid, out: &mut Vec<u8>) -> Result<Option<Kind>> {
        for pack in self.db.packs() {
            if let Some(offset) = pack.lookup(id) {
                let mut state = self.state.borrow_mut();
                return decode(pack, offset, &mut state, out)
                    .map(Some)
                    .map_err(|e| corrupt(id, e));
            }
        }
        Ok(None)
    }

    /// Read an object into `out`; [`Error::Missing`] when the repository does not have it.
    pub fn read(&self, id: &oid, out: &mut Vec<u8>) -> Result<Kind> {
        self.try_read(id, out)?
            .ok_or_else(|| Error::Missing(id.to_owned()))
    }

    /// Read an object that must be of kind `expected` ([`Error::WrongKind`] otherwise).
    pub fn read_kind(&self, id: &oid, expected: Kind, out: &mut Vec<u8>) -> Result<()> {
        let actual = self.read(id, out)?;
        if actual != expected {
            return Err(Error::WrongKind {
                id: id.to_owned(),
                expected,
                actual,
            });
        }
        Ok(())
    }

    /// A commit's tree, parents and committer time, parsed once and cached.
    pub fn commit(&self, id: &oid) -> Result<Commit> {
        // The cache is shared between repositories: only an object this one has may come from it.
        if let Some(commit) = self.db.cache().cached_commit(id) {
            if self.db.contains(id) {
                return Ok(commit);
            }
        }
        let mut buf = Vec::new();
        self.read_kind(id, Kind::Commit, &mut buf)?;
        let commit = Commit::parse(id, &buf)?;
        self.db.cache().remember_commit(id, &commit);
        Ok(commit)
    }

    /// The kind of an object, if it exists, read from pack entry headers alone.
    pub fn kind(&self, id: &oid) -> Result<Option<Kind>> {
        Ok(self.header(id)?.map(|(kind, _)| kind))
    }

    /// The kind and size of an object, if it exists, without decoding it: a delta chain is
    /// followed through entry headers down to its base, and only the first bytes of the
    /// outermost delta are inflated (they hold the result's size). Stored packs are
    /// self-contained, so every REF base is in the same pack.
    pub fn header(&self, id: &oid) -> Result<Option<(Kind, u64)>> {
        let Some((at, offset)) = self.db.locate(id) else {
            return Ok(None);
        };
        let pack = &self.db.packs()[at];
        let mut state = self.state.borrow_mut();
        header(pack, offset, &mut state)
            .map(Some)
            .map_err(|e| corrupt(id, e))
    }

    /// Follow annotated tags until a non-tag object.
    pub fn peel(&self, id: &oid) -> Result<(ObjectId, Kind)> {
        let mut current = id.to_owned();
        let mut buf = Vec::new();
        for _ in 0..64 {
            match self.read(&current, &mut buf)? {
                Kind::Tag => current = object::tag_target(&current, &buf)?,
                kind => return Ok((current, kind)),
            }
        }
        Err(Error::Corrupt {
            id: id.to_owned(),
            message: "tag chain longer than 64".into(),
        })
    }
}

fn corrupt(id: &oid, e: PackDataError) -> Error {
    match e {
        PackDataError::Io(e) => Error::Io(e),
        PackDataError::Corrupt(message) => Error::Corrupt {
            id: id.to_owned(),
            message,
        },
    }
}

fn bad(message: impl Into<String>) -> PackDataError {
    PackDataError::Corrupt(message.into())
}

/// Where the base of the delta entry at `offset` starts, in the same pack: stored packs are
/// self-contained, so a REF base is there too.
fn base_offset(pack: &Pack, offset: u64, header: &Header) -> Result<Option<u64>, PackDataError> {
    match header {
        Header::OfsDelta { base_distance } => offset
            .checked_sub(*base_distance)
            .filter(|_| *base_distance > 0)
            .map(Some)
            .ok_or_else(|| bad("a delta's base lies outside the pack")),
        Header::RefDelta { base_id } => pack
            .lookup(base_id)
            .map(Some)
            .ok_or_else(|| bad(format!("a delta's base {base_id} is not in its pack"))),
        _ => Ok(None),
    }
}

/// Decode the entry at `offset` of `pack` into `out`: follow the delta chain down to a whole
/// object (or to a base kept in the cache), inflate it, then apply the deltas from the
/// innermost out. The chain's base and the result are cached for the deltas read next.
fn decode(
    pack: &Pack,
    offset: u64,
    state: &mut ReaderState,
    out: &mut Vec<u8>,
) -> Result<Kind, PackDataError> {
    let ReaderState {
        inflater,
        cache,
        delta,
        next,
    } = state;
    let mut chain: Vec<Link> = Vec::new();
    let mut at = offset;
    let kind = loop {
        if let Some((kind, _)) = cache.get(pack.id, at, out) {
            break kind;
        }
        let entry = pack.data.entry(at)?;
        let data_end = pack.entry_end(at);
        match base_offset(pack, at, &entry.header)? {
            Some(base) => {
                chain.push(Link {
                    data_start: entry.data_offset,
                    data_end,
                    size: entry.decompressed_size,
                });
                if chain.len() > MAX_CHAIN {
                    return Err(bad("a delta chain is too long (or loops)"));
                }
                at = base;
            }
            None => {
                let kind = entry
                    .header
                    .as_kind()
                    .ok_or_else(|| bad("an entry without a kind"))?;
                pack.data.inflate(
                    inflater,
                    entry.data_offset,
                    data_end,
                    entry.decompressed_size,
                    out,
                )?;
                if !chain.is_empty() {
                    cache.put(pack.id, at, out, kind, 0);
                }
                break kind;
            }
        }
    };
    if chain.is_empty() {
        return Ok(kind);
    }
    for link in chain.iter().rev() {
        pack.data
            .inflate(inflater, link.data_start, link.data_end, link.size, delta)?;
        delta::apply(out, delta, next).map_err(|e| bad(e.0))?;
        std::mem::swap(out, next);
    }
    cache.put(pack.id, offset, out, kind, 0);
    Ok(kind)
}

/// The kind and size of the entry at `offset` of `pack`, from entry headers and the first
/// bytes of the outermost delta.
fn header(pack: &Pack, offset: u64, state: &mut ReaderState) -> Result<(Kind, u64), PackDataError> {
    let mut at = offset;
    let mut outermost: Option<Link> = None;
    for _ in 0..=MAX_CHAIN {
        let entry = pack.data.entry(at)?;
        let Some(base) = base_offset(pack, at, &entry.header)? else {
            let kind = entry
                .header
                .as_kind()
                .ok_or_else(|| bad("an entry without a kind"))?;
            let Some(link) = outermost else {
                return Ok((kind, entry.decompressed_size));
            };
            // A delta starts with two varints: its base's size and its result's.
            let mut first = [0u8; 20];
            let n = pack.data.inflate_prefix(
                &mut state.inflater,
                link.data_start,
                link.data_end,
                &mut first,
            )?;
            let (_, size) = delta::sizes(&first[..n]).map_err(|e| bad(e.0))?;
            return Ok((kind, size));
        };
        if outermost.is_none() {
            outermost = Some(Link {
                data_start: entry.data_offset,
                data_end: pack.entry_end(at),
                size: entry.decompressed_size,
            });
        }
        at = base;
    }
    Err(bad("a delta chain is too long (or loops)"))
}

impl gix_object::Find for Reader<'_> {
    fn try_find<'b>(
        &self,
        id: &oid,
        buffer: &'b mut Vec<u8>,
    ) -> gix_error::Result<Option<gix_object::Data<'b>>> {
        match self.try_read(id, buffer) {
            Ok(Some(kind)) => Ok(Some(gix_object::Data::new(
                buffer,
                kind,
                self.db.object_hash(),
            ))),
            Ok(None) => Ok(None),
            Err(e) => Err(gix_error::Error::from(gix_error::Message::new(
                e.to_string(),
            ))),
        }
    }
}
