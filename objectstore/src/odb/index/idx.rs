//! Writing a version 2 pack index (`gitformat-pack`): fanout, sorted ids, CRC-32s, offsets,
//! large offsets, the pack's checksum and the index's own.
//!
//! gix-pack writes this format too, but only from inside its own indexing pipeline.

use std::io::{BufWriter, Write};
use std::path::Path;

use gix_hash::ObjectId;

use super::{invalid, Entry};
use crate::odb::Result;

/// A writer that hashes what it writes (for the index's trailing checksum).
struct Hashing<W: Write> {
    inner: W,
    hasher: gix_hash::Hasher,
}

impl<W: Write> Hashing<W> {
    fn put(&mut self, bytes: &[u8]) -> Result<()> {
        self.inner.write_all(bytes)?;
        self.hasher.update(bytes);
        Ok(())
    }
}

/// Write the `.idx` of a pack whose entries are `entries` with ids `ids`.
pub(super) fn write(
    path: &Path,
    entries: &[Entry],
    ids: &[ObjectId],
    pack_checksum: &ObjectId,
) -> Result<()> {
    let mut order: Vec<u32> = (0..entries.len() as u32).collect();
    order.sort_unstable_by(|a, b| ids[*a as usize].cmp(&ids[*b as usize]));
    if let Some(pair) = order
        .windows(2)
        .find(|w| ids[w[0] as usize] == ids[w[1] as usize])
    {
        return Err(invalid(format!(
            "the pack holds object {} twice",
            ids[pair[0] as usize]
        )));
    }
    let mut out = Hashing {
        inner: BufWriter::with_capacity(256 << 10, std::fs::File::create(path)?),
        hasher: gix_hash::hasher(pack_checksum.kind()),
    };
    out.put(&[0xff, b't', b'O', b'c'])?;
    out.put(&2u32.to_be_bytes())?;
    let mut fanout = [0u32; 256];
    for i in &order {
        fanout[ids[*i as usize].as_bytes()[0] as usize] += 1;
    }
    let mut total = 0u32;
    for count in fanout.iter_mut() {
        total += *count;
        *count = total;
    }
    for count in fanout {
        out.put(&count.to_be_bytes())?;
    }
    for i in &order {
        out.put(ids[*i as usize].as_bytes())?;
    }
    for i in &order {
        out.put(&entries[*i as usize].crc32.to_be_bytes())?;
    }
    let mut large: Vec<u64> = Vec::new();
    for i in &order {
        let offset = entries[*i as usize].offset;
        if offset < 0x8000_0000 {
            out.put(&(offset as u32).to_be_bytes())?;
        } else {
            out.put(&(0x8000_0000 | large.len() as u32).to_be_bytes())?;
            large.push(offset);
        }
    }
    for offset in large {
        out.put(&offset.to_be_bytes())?;
    }
    out.put(pack_checksum.as_bytes())?;
    let digest = out
        .hasher
        .clone()
        .try_finalize()
        .map_err(|e| invalid(format!("{e}")))?;
    out.inner.write_all(digest.as_slice())?;
    out.inner.flush()?;
    Ok(())
}
