//! One stored pack, opened from local files (its `.idx` with gix-pack, its `.pack` with
//! positioned reads), and what is known about the reachability of its objects.

use std::path::Path;
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::OnceLock;

use gix_hash::{oid, ObjectId};

use super::pack_data::{PackData, PackDataError};
use super::{Error, Result};

/// Which ref tips a pack's objects are reachable from, as recorded when it was written (the
/// pack's `.tips` file, see [`crate::layout::PackFile::Tips`]). A full clone may stream stored
/// packs as they are only when these records prove that they hold exactly what the refs reach.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub enum Reach {
    /// Nothing is known (no record, or a pack being received).
    #[default]
    Unknown,
    /// Every object of the pack is reachable from one of these ids (a pushed pack).
    Within(Vec<ObjectId>),
    /// The pack holds exactly what these ids reach, every object of their history (a pack
    /// maintenance wrote from the refs).
    Exactly(Vec<ObjectId>),
}

impl Reach {
    /// The tips, when known.
    pub fn tips(&self) -> Option<&[ObjectId]> {
        match self {
            Reach::Unknown => None,
            Reach::Within(t) | Reach::Exactly(t) => Some(t),
        }
    }

    /// The `.tips` file's content: `within` or `exactly`, then one hex id per line.
    pub fn encode(&self) -> Option<Vec<u8>> {
        let (word, tips) = match self {
            Reach::Unknown => return None,
            Reach::Within(t) => ("within\n", t),
            Reach::Exactly(t) => ("exactly\n", t),
        };
        let mut out = Vec::with_capacity(word.len() + tips.len() * 41);
        out.extend_from_slice(word.as_bytes());
        for tip in tips {
            out.extend_from_slice(tip.to_hex().to_string().as_bytes());
            out.push(b'\n');
        }
        Some(out)
    }

    /// Parse a `.tips` file; anything malformed is [`Reach::Unknown`] (the safe answer).
    pub fn decode(data: &[u8]) -> Reach {
        let mut lines = data.split(|b| *b == b'\n').filter(|l| !l.is_empty());
        let exactly = match lines.next() {
            Some(b"within") => false,
            Some(b"exactly") => true,
            _ => return Reach::Unknown,
        };
        let mut tips = Vec::new();
        for line in lines {
            match ObjectId::from_hex(line) {
                Ok(id) => tips.push(id),
                Err(_) => return Reach::Unknown,
            }
        }
        if exactly {
            Reach::Exactly(tips)
        } else {
            Reach::Within(tips)
        }
    }
}

/// One immutable pack with its index, opened from local files.
pub struct Pack {
    /// `pack-<hex>`, the common stem of the pack's keys.
    pub name: String,
    /// The `.idx`, memory-mapped by gix-pack (a few dozen bytes per object).
    pub index: gix_pack::index::File,
    /// The `.pack`, read with positioned reads (see [`PackData`] for why not mapped).
    pub(crate) data: PackData,
    /// Unique in this process, so decoded-object caches can key on it.
    pub id: u32,
    /// What the pack's `.tips` record says.
    pub reach: Reach,
    /// (offset, index position) of every entry, sorted by offset: the end of each entry's
    /// compressed data is the next entry's offset, and OFS deltas name their base by offset.
    by_offset: OnceLock<Vec<(u64, u32)>>,
}

impl std::fmt::Debug for Pack {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Pack").field("name", &self.name).finish()
    }
}

static NEXT_PACK_ID: AtomicU32 = AtomicU32::new(1);

/// A number unique in this process (pack ids, temporary file names).
pub(crate) fn next_unique() -> u32 {
    NEXT_PACK_ID.fetch_add(1, Ordering::Relaxed)
}

impl Pack {
    /// Open a pack of objects named by `hash` from its local `.idx` and `.pack` paths.
    pub fn open(
        name: &str,
        idx: &Path,
        pack: &Path,
        reach: Reach,
        hash: gix_hash::Kind,
    ) -> Result<Self> {
        let index = gix_pack::index::File::at(idx, hash).map_err(|e| Error::Pack {
            pack: name.to_owned(),
            message: format!("{e:#}"),
        })?;
        let data = PackData::open(pack, hash).map_err(|e| Error::Pack {
            pack: name.to_owned(),
            message: e.to_string(),
        })?;
        if index.num_objects() != data.num_objects() {
            return Err(Error::Pack {
                pack: name.to_owned(),
                message: "index and pack disagree on the number of objects".into(),
            });
        }
        Ok(Pack {
            name: name.to_owned(),
            index,
            data,
            id: next_unique(),
            reach,
            by_offset: OnceLock::new(),
        })
    }

    /// The hash that names the pack's objects.
    pub fn object_hash(&self) -> gix_hash::Kind {
        self.index.object_hash()
    }

    /// An error naming this pack.
    pub(crate) fn error(&self, e: PackDataError) -> Error {
        match e {
            PackDataError::Io(e) => Error::Io(e),
            PackDataError::Corrupt(message) => Error::Pack {
                pack: self.name.clone(),
                message,
            },
        }
    }

    /// The checksum of the pack's data (its trailer), which names it (`pack-<checksum>`) and
    /// which a client checks a pack it downloaded against.
    pub fn checksum(&self) -> ObjectId {
        self.index.pack_checksum()
    }

    /// How many objects the pack holds.
    pub fn num_objects(&self) -> u32 {
        self.index.num_objects()
    }

    /// Where an object starts in the pack, if the pack has it.
    pub fn lookup(&self, id: &oid) -> Option<u64> {
        let idx = self.index.lookup(id)?;
        Some(self.index.pack_offset_at_index(idx))
    }

    /// The objects whose id starts with `prefix`: none, the one, or `Err` when there are
    /// several.
    pub fn lookup_prefix(&self, prefix: gix_hash::Prefix) -> Option<Result<ObjectId, ()>> {
        let index = &self.index;
        index
            .lookup_prefix(prefix, None)
            .map(|found| found.map(|at| index.oid_at_index(at).to_owned()))
    }

    /// (offset, index position) of every entry, sorted by offset.
    pub fn by_offset(&self) -> &[(u64, u32)] {
        self.by_offset.get_or_init(|| {
            let index = &self.index;
            let mut v: Vec<(u64, u32)> = (0..index.num_objects())
                .map(|i| (index.pack_offset_at_index(i), i))
                .collect();
            v.sort_unstable();
            v
        })
    }

    /// The position in [`Pack::by_offset`] of the entry at `offset`, if an entry starts there.
    pub fn position_at(&self, offset: u64) -> Option<usize> {
        self.by_offset()
            .binary_search_by_key(&offset, |(o, _)| *o)
            .ok()
    }

    /// The id of the entry at `offset`, if an entry starts there.
    pub fn id_at_offset(&self, offset: u64) -> Option<ObjectId> {
        let pos = self.position_at(offset)?;
        Some(self.index.oid_at_index(self.by_offset()[pos].1).to_owned())
    }

    /// Where the entry starting at `offset` ends: the next entry or the trailing checksum.
    pub fn entry_end(&self, offset: u64) -> u64 {
        let v = self.by_offset();
        let pos = v.partition_point(|(o, _)| *o <= offset);
        match v.get(pos) {
            Some((next, _)) => *next,
            None => self.data.pack_end(),
        }
    }

    /// The size of the `.pack` file, checksum included.
    pub fn file_size(&self) -> u64 {
        self.data.len()
    }

    /// The pack's bytes from `offset` on, by positioned reads: any number of readers at once,
    /// and readable until the pack is dropped even if maintenance deletes its file meanwhile.
    pub fn read_from(&self, offset: u64) -> impl std::io::Read + Send + '_ {
        self.data.section(offset, u64::MAX)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reach_records_round_trip() {
        let a = ObjectId::from_bytes_or_panic(&[1; 20]);
        let b = ObjectId::from_bytes_or_panic(&[2; 20]);
        for reach in [
            Reach::Within(vec![a, b]),
            Reach::Exactly(vec![a]),
            Reach::Within(Vec::new()),
        ] {
            let data = reach.encode().unwrap_or_default();
            assert_eq!(Reach::decode(&data), reach);
        }
        assert_eq!(Reach::Unknown.encode(), None);
        assert_eq!(Reach::decode(b"within\nnot an id\n"), Reach::Unknown);
        assert_eq!(Reach::decode(b""), Reach::Unknown);
        assert_eq!(Reach::decode(b"maybe\n"), Reach::Unknown);
    }
}
