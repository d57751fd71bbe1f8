//! [`ObjectStream`]: a stored object read as it inflates, for objects too large to hold.
//!
//! A [`Reader`](super::Reader) decodes whole objects into memory, as it must for a delta (a
//! delta's instructions copy from anywhere in its base). An object stored whole (git stores
//! most large files so: `core.bigFileThreshold` turns off deltas for them) is one zlib stream
//! in its pack, and can be inflated a buffer at a time: serving a 2 GiB file then takes the
//! buffers, not 2 GiB.

use std::io::Read;
use std::sync::Arc;

use flate2::{Decompress, FlushDecompress, Status};
use gix_hash::{oid, ObjectId};
use gix_object::Kind;

use super::db::ObjectDb;
use super::pack::Pack;
use super::Result;

/// Compressed bytes read from the pack at a time.
const INPUT_BYTES: usize = 256 << 10;

/// An object stored whole, inflated as it is read. Reading yields exactly [`Self::size`]
/// bytes, or an error (the data is corrupt or truncated).
pub struct ObjectStream {
    pack: Arc<Pack>,
    id: ObjectId,
    kind: Kind,
    size: u64,
    produced: u64,
    /// The next compressed byte to read from the pack, and where the entry ends.
    at: u64,
    end: u64,
    z: Decompress,
    input: Vec<u8>,
    lo: usize,
    hi: usize,
}

impl ObjectStream {
    /// The object's kind.
    pub fn kind(&self) -> Kind {
        self.kind
    }

    /// The object's size in bytes.
    pub fn size(&self) -> u64 {
        self.size
    }

    /// The object's id.
    pub fn id(&self) -> &oid {
        &self.id
    }

    fn corrupt(&self, message: &str) -> std::io::Error {
        std::io::Error::new(
            std::io::ErrorKind::InvalidData,
            format!("object {} is corrupt: {message}", self.id),
        )
    }
}

impl Read for ObjectStream {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let remaining = self.size - self.produced;
        if remaining == 0 || buf.is_empty() {
            return Ok(0);
        }
        let want = (buf.len() as u64).min(remaining) as usize;
        loop {
            if self.lo == self.hi {
                let n = (self.input.len() as u64).min(self.end.saturating_sub(self.at)) as usize;
                if n == 0 {
                    return Err(self.corrupt("its compressed data is truncated"));
                }
                let got = self.pack.data.read_at(&mut self.input[..n], self.at)?;
                if got == 0 {
                    return Err(self.corrupt("the pack file ends early"));
                }
                self.at += got as u64;
                (self.lo, self.hi) = (0, got);
            }
            let (in_before, out_before) = (self.z.total_in(), self.z.total_out());
            let status = self
                .z
                .decompress(
                    &self.input[self.lo..self.hi],
                    &mut buf[..want],
                    FlushDecompress::None,
                )
                .map_err(|e| self.corrupt(&format!("corrupt compressed data: {e}")))?;
            self.lo += (self.z.total_in() - in_before) as usize;
            let out = (self.z.total_out() - out_before) as usize;
            self.produced += out as u64;
            if out > 0 {
                return Ok(out);
            }
            if status == Status::StreamEnd {
                return Err(self.corrupt("it inflates to fewer bytes than it declares"));
            }
        }
    }
}

impl ObjectDb {
    /// The object `id` as a stream, when a pack stores it whole; `None` when no pack has it
    /// or it is stored as a delta (read those with a [`Reader`](super::Reader)).
    pub fn stream(&self, id: &oid) -> Result<Option<ObjectStream>> {
        let Some((at, offset)) = self.locate(id) else {
            return Ok(None);
        };
        let pack = self.packs()[at].clone();
        let entry = pack.data.entry(offset).map_err(|e| pack.error(e))?;
        let Some(kind) = entry.header.as_kind() else {
            return Ok(None);
        };
        let end = pack.entry_end(offset);
        Ok(Some(ObjectStream {
            id: id.to_owned(),
            kind,
            size: entry.decompressed_size,
            produced: 0,
            at: entry.data_offset,
            end,
            z: Decompress::new(true),
            input: vec![0u8; INPUT_BYTES],
            lo: 0,
            hi: 0,
            pack,
        }))
    }
}
