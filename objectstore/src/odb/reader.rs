//! [`Reader`]: decoding objects of an [`ObjectDb`], with a cache of delta bases.

use std::cell::RefCell;

use gix_hash::{oid, ObjectId};
use gix_object::Kind;

use super::db::ObjectDb;
use super::object::{self, Commit};
use super::{Error, Result};

struct ReaderState {
    inflate: gix_zlib::Inflate,
    cache: gix_pack::cache::lru::MemoryCappedHashmap,
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
                inflate: gix_zlib::Inflate::default(),
                cache: gix_pack::cache::lru::MemoryCappedHashmap::new(16 << 20),
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
            if let Some(idx) = pack.bundle.index.lookup(id) {
                let mut state = self.state.borrow_mut();
                let ReaderState { inflate, cache } = &mut *state;
                let (data, _) = pack
                    .bundle
                    .get_object_by_index(idx, out, inflate, cache)
                    .map_err(|e| Error::Corrupt {
                        id: id.to_owned(),
                        message: format!("{e:#}"),
                    })?;
                return Ok(Some(data.kind));
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
        let corrupt = |e: gix_error::Error| Error::Corrupt {
            id: id.to_owned(),
            message: format!("{e:#}"),
        };
        let data = &pack.bundle.pack;
        let entry = data.entry(offset).map_err(corrupt)?;
        let resolve = |base: &oid| -> gix_error::Result<
            Option<gix_pack::data::decode::header::ResolvedBase>,
        > {
            match pack.lookup(base) {
                Some(ofs) => Ok(Some(gix_pack::data::decode::header::ResolvedBase::InPack(
                    data.entry(ofs)?,
                ))),
                None => Ok(None),
            }
        };
        let mut state = self.state.borrow_mut();
        let outcome = data
            .decode_header(entry, &mut state.inflate, &resolve)
            .map_err(corrupt)?;
        Ok(Some((outcome.kind, outcome.object_size)))
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
                gix_hash::Kind::Sha1,
            ))),
            Ok(None) => Ok(None),
            Err(e) => Err(gix_error::Error::from(gix_error::Message::new(
                e.to_string(),
            ))),
        }
    }
}
