//! Writing packs for fetches, reusing what the stored packs already hold.
//!
//! Stored entries are copied as they are: whole objects keep their compressed bytes, deltas
//! keep their compressed delta data whenever their base is sent too (or, in a thin pack, is
//! known to the client). Only a delta whose base is neither is decoded and compressed afresh.
//! Entries are written in stored pack order, which keeps every OFS base ahead of its deltas.

use std::collections::HashSet;
use std::io::Write;

use gix_hash::ObjectId;
use gix_pack::data::entry::Header;

use super::{Error, ObjectDb, Pack, Result};

/// What the client accepts.
#[derive(Debug, Clone, Copy, Default)]
pub struct Options {
    /// The client takes deltas against a base by offset (`ofs-delta`).
    pub ofs_delta: bool,
    /// The client takes deltas against bases it has and the pack lacks (`thin-pack`).
    pub thin: bool,
}

/// Counts to report to the client once the pack is written.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Stats {
    /// Objects written.
    pub objects: usize,
    /// Of which deltas.
    pub deltas: usize,
    /// Objects copied from a stored pack as they were (no recompression).
    pub reused: usize,
    /// Of which deltas.
    pub reused_deltas: usize,
    /// Bytes of the pack, trailer included.
    pub bytes: u64,
}

/// Progress while writing: objects written so far out of the total.
pub type Progress<'a> = &'a mut dyn FnMut(usize, usize);

/// A writer that hashes and counts what passes through, for the trailer and the stats.
struct HashingWriter<'a> {
    inner: &'a mut dyn Write,
    hasher: gix_hash::Hasher,
    written: u64,
}

impl Write for HashingWriter<'_> {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        let n = self.inner.write(buf)?;
        self.hasher.update(&buf[..n]);
        self.written += n as u64;
        Ok(n)
    }
    fn flush(&mut self) -> std::io::Result<()> {
        self.inner.flush()
    }
}

impl<'a> HashingWriter<'a> {
    /// Start a pack of `count` objects on `out`.
    fn start_pack(
        out: &'a mut dyn Write,
        count: u32,
        hash: gix_hash::Kind,
    ) -> std::io::Result<Self> {
        let mut w = HashingWriter {
            inner: out,
            hasher: gix_hash::hasher(hash),
            written: 0,
        };
        w.write_all(&gix_pack::data::header::encode(
            gix_pack::data::Version::V2,
            count,
        ))?;
        Ok(w)
    }

    /// Write the trailing checksum; returns the pack's size.
    fn finish_pack(mut self) -> std::io::Result<u64> {
        let trailer = self
            .hasher
            .clone()
            .try_finalize()
            .map_err(|e| std::io::Error::other(e.to_string()))?;
        self.write_all(trailer.as_slice())?;
        self.flush()?;
        Ok(self.written)
    }
}

/// The base a stored entry is a delta of, if it is one.
fn delta_base(pack: &Pack, offset: u64, header: &Header) -> Result<Option<ObjectId>> {
    Ok(match header {
        Header::Commit | Header::Tree | Header::Blob | Header::Tag => None,
        Header::OfsDelta { base_distance } => {
            let base_offset = offset
                .checked_sub(*base_distance)
                .ok_or_else(|| pack_err(pack, "delta base before the start of the pack"))?;
            Some(
                pack.id_at_offset(base_offset)
                    .ok_or_else(|| pack_err(pack, "delta base is not an entry"))?,
            )
        }
        Header::RefDelta { base_id } => Some(*base_id),
    })
}

/// The entry header of a whole object of `kind`.
pub(crate) fn object_header(kind: gix_object::Kind) -> Header {
    match kind {
        gix_object::Kind::Commit => Header::Commit,
        gix_object::Kind::Tree => Header::Tree,
        gix_object::Kind::Blob => Header::Blob,
        gix_object::Kind::Tag => Header::Tag,
    }
}

/// Append an entry header to `out`.
fn write_header(out: &mut Vec<u8>, header: Header, size: u64) {
    // Writing to a Vec cannot fail.
    let _ = header.write_to(size, out);
}

fn pack_err(pack: &Pack, e: impl std::fmt::Display) -> Error {
    Error::Pack {
        pack: pack.name.clone(),
        message: e.to_string(),
    }
}

/// Write a pack holding exactly `objects` to `out`.
pub fn write_pack(
    db: &ObjectDb,
    objects: &[ObjectId],
    client_has: &HashSet<ObjectId>,
    options: Options,
    out: &mut dyn Write,
    progress: Progress<'_>,
) -> Result<Stats> {
    let packs = db.packs();
    // Every object by where it is stored, in stored order; where each went in the output is
    // kept beside it. Sorted vectors, not maps: a fetch of millions of objects stays small.
    let mut order: Vec<(usize, u64, ObjectId)> = Vec::with_capacity(objects.len());
    for id in objects {
        let (p, o) = db.locate(id).ok_or(Error::Missing(*id))?;
        order.push((p, o, *id));
    }
    order.sort_unstable();
    order.dedup_by_key(|e| (e.0, e.1));
    let position = |loc: (usize, u64)| order.binary_search_by(|e| (e.0, e.1).cmp(&loc)).ok();
    let mut written_at: Vec<u64> = vec![u64::MAX; order.len()];

    let count = u32::try_from(order.len())
        .map_err(|_| Error::Rejected("more objects than a pack can hold".into()))?;
    let mut w = HashingWriter::start_pack(out, count, db.object_hash())?;

    let reader = db.reader();
    let mut stats = Stats::default();
    let mut head = Vec::with_capacity(32);
    let mut decoded = Vec::new();
    let total = order.len();
    for (n, (pack_index, offset, id)) in order.iter().enumerate() {
        let pack = &packs[*pack_index];
        let entry = pack.data.entry(*offset).map_err(|e| pack.error(e))?;
        let data_end = pack.entry_end(*offset);
        let compressed_len = data_end
            .checked_sub(entry.data_offset)
            .ok_or_else(|| pack_err(pack, "an entry ends before its data"))?;
        let here = w.written;
        head.clear();
        let base = delta_base(pack, *offset, &entry.header)?;
        let reuse = match base {
            None => true,
            Some(base) => {
                // Where the base is sent from, if it is sent: where `order` put it.
                let sent = db
                    .locate(&base)
                    .and_then(|loc| Some((loc.0, position(loc)?)));
                let base_at = sent
                    .map(|(_, pos)| written_at[pos])
                    .filter(|at| *at != u64::MAX);
                // A base later in the same stored pack cannot form a cycle; a thin base is
                // resolved by the client from its own objects.
                let reusable = base_at.is_some()
                    || sent.is_some_and(|(p, _)| p == *pack_index)
                    || (options.thin && client_has.contains(&base));
                match base_at {
                    Some(at) if options.ofs_delta => write_header(
                        &mut head,
                        Header::OfsDelta {
                            base_distance: here - at,
                        },
                        entry.decompressed_size,
                    ),
                    _ if reusable => write_header(
                        &mut head,
                        Header::RefDelta { base_id: base },
                        entry.decompressed_size,
                    ),
                    _ => {}
                }
                reusable
            }
        };
        if reuse {
            if base.is_none() {
                write_header(&mut head, entry.header, entry.decompressed_size);
            } else {
                stats.deltas += 1;
                stats.reused_deltas += 1;
            }
            stats.reused += 1;
            w.write_all(&head)?;
            // Copied through a small buffer: a large entry never lies in memory whole.
            let mut compressed = pack.data.section(entry.data_offset, data_end);
            let copied = std::io::copy(&mut compressed, &mut w)?;
            if copied != compressed_len {
                return Err(pack_err(
                    pack,
                    "the pack file is shorter than its index says",
                ));
            }
        } else {
            let kind = reader.read(id, &mut decoded)?;
            write_header(&mut head, object_header(kind), decoded.len() as u64);
            w.write_all(&head)?;
            // Compressed straight into the stream: no second copy of a large object.
            let mut z = flate2::write::ZlibEncoder::new(&mut w, flate2::Compression::fast());
            z.write_all(&decoded)?;
            z.finish()?;
        }
        written_at[n] = here;
        stats.objects += 1;
        if n.is_multiple_of(4096) {
            progress(n, total);
        }
    }
    progress(total, total);
    stats.bytes = w.finish_pack()?;
    Ok(stats)
}

/// Every stored object, once, for a full clone of a repository held in several packs.
///
/// Packs are read front to back as files, not mapped and not indexed into maps: memory is a
/// few bytes per object whatever the repository's size, and each entry is copied as stored.
/// The largest pack goes first, so only the entries of the smaller ones are looked up in the
/// packs before them; an entry found there was already sent and is skipped. A delta whose base
/// was sent names it by offset (or, when the base comes later in its pack, by id).
///
/// With `skip_blobs`, blobs are left out (a partial clone's `blob:none`): the kind of every
/// entry comes from a first read of the entry headers, a delta taking its base's kind.
pub fn write_all_objects(
    packs: &[std::sync::Arc<Pack>],
    hash: gix_hash::Kind,
    skip_blobs: bool,
    out: &mut dyn Write,
    progress: Progress<'_>,
) -> Result<Stats> {
    use std::io::{BufReader, Read};
    let mut order: Vec<&Pack> = packs.iter().map(|p| p.as_ref()).collect();
    order.sort_by_key(|p| std::cmp::Reverse(p.num_objects()));
    // Positions (in offset order) of the entries sent earlier from another pack.
    let mut duplicate: Vec<Vec<bool>> = Vec::with_capacity(order.len());
    let mut total = 0usize;
    for (i, pack) in order.iter().enumerate() {
        let index = &pack.index;
        let mut dup: Vec<bool> = pack
            .by_offset()
            .iter()
            .map(|(_, at)| {
                let id = index.oid_at_index(*at);
                order[..i]
                    .iter()
                    .any(|earlier| earlier.lookup(id).is_some())
            })
            .collect();
        if skip_blobs {
            for (d, kind) in dup.iter_mut().zip(entry_kinds(pack)?) {
                *d |= kind == gix_object::Kind::Blob;
            }
        }
        total += dup.iter().filter(|d| !**d).count();
        duplicate.push(dup);
    }
    let count = u32::try_from(total)
        .map_err(|_| Error::Rejected("more objects than a pack can hold".into()))?;

    let mut w = HashingWriter::start_pack(out, count, hash)?;

    // Where each sent entry starts in the output, by pack and position; u64::MAX: not sent.
    let mut sent_at: Vec<Vec<u64>> = Vec::with_capacity(order.len());
    let written_at = |sent_at: &[Vec<u64>], upto: usize, id: &gix_hash::oid| -> Option<u64> {
        order[..=upto].iter().zip(sent_at).find_map(|(p, at)| {
            let pos = p.position_at(p.lookup(id)?)?;
            at.get(pos).copied().filter(|o| *o != u64::MAX)
        })
    };
    let mut stats = Stats::default();
    let mut head = Vec::with_capacity(32);
    let mut n = 0usize;
    for (i, pack) in order.iter().enumerate() {
        let by_offset = pack.by_offset();
        sent_at.push(vec![u64::MAX; by_offset.len()]);
        let Some(&(first, _)) = by_offset.first() else {
            continue;
        };
        let mut file = BufReader::with_capacity(1 << 20, pack.read_from(first));
        let mut position = first;
        for (k, (offset, _)) in by_offset.iter().enumerate() {
            if position != *offset {
                return Err(pack_err(pack, "entries are not contiguous"));
            }
            let end = pack.entry_end(*offset);
            let len = end
                .checked_sub(*offset)
                .ok_or_else(|| pack_err(pack, "entry ends before it starts"))?;
            position = end;
            if duplicate[i][k] {
                std::io::copy(&mut (&mut file).take(len), &mut std::io::sink())?;
                continue;
            }
            let entry = gix_pack::data::Entry::from_read(
                &mut file,
                *offset,
                pack.object_hash().len_in_bytes(),
            )
            .map_err(|e| pack_err(pack, e))?;
            let header_len = entry.data_offset - offset;
            let here = w.written;
            head.clear();
            let base = delta_base(pack, *offset, &entry.header)?;
            match base {
                None => write_header(&mut head, entry.header, entry.decompressed_size),
                Some(base) => {
                    match written_at(&sent_at, i, &base) {
                        Some(base_at) => write_header(
                            &mut head,
                            Header::OfsDelta {
                                base_distance: here - base_at,
                            },
                            entry.decompressed_size,
                        ),
                        // Later in this pack: the client resolves it by id.
                        None if pack.lookup(&base).is_some() => write_header(
                            &mut head,
                            Header::RefDelta { base_id: base },
                            entry.decompressed_size,
                        ),
                        None => return Err(Error::Missing(base)),
                    }
                    stats.deltas += 1;
                    stats.reused_deltas += 1;
                }
            }
            w.write_all(&head)?;
            let copied = std::io::copy(&mut (&mut file).take(len - header_len), &mut w)?;
            if copied != len - header_len {
                return Err(pack_err(
                    pack,
                    "the pack file is shorter than its index says",
                ));
            }
            if let Some(at) = sent_at.last_mut().and_then(|v| v.get_mut(k)) {
                *at = here;
            }
            stats.objects += 1;
            stats.reused += 1;
            n += 1;
            if n.is_multiple_of(4096) {
                progress(n, total);
            }
        }
    }
    progress(total, total);
    stats.bytes = w.finish_pack()?;
    Ok(stats)
}

/// The kind of every entry of `pack`, by position in offset order, from one sequential read of
/// the entry headers; a delta has its base's kind (bases later in the pack are resolved after).
fn entry_kinds(pack: &Pack) -> Result<Vec<gix_object::Kind>> {
    use std::io::{BufReader, Read};
    let by_offset = pack.by_offset();
    let mut kinds: Vec<Option<gix_object::Kind>> = vec![None; by_offset.len()];
    let Some(&(first, _)) = by_offset.first() else {
        return Ok(Vec::new());
    };
    let position = |offset: u64| pack.position_at(offset);
    // Entries whose base's kind was not known yet: (entry, base).
    let mut pending: Vec<(usize, usize)> = Vec::new();
    let mut file = BufReader::with_capacity(1 << 20, pack.read_from(first));
    for (k, (offset, _)) in by_offset.iter().enumerate() {
        let entry =
            gix_pack::data::Entry::from_read(&mut file, *offset, pack.object_hash().len_in_bytes())
                .map_err(|e| pack_err(pack, e))?;
        let rest = pack
            .entry_end(*offset)
            .checked_sub(entry.data_offset)
            .ok_or_else(|| pack_err(pack, "entry ends before its data"))?;
        std::io::copy(&mut (&mut file).take(rest), &mut std::io::sink())?;
        let base = match entry.header {
            Header::OfsDelta { base_distance } => offset
                .checked_sub(base_distance)
                .and_then(position)
                .ok_or_else(|| pack_err(pack, "delta base is not an entry"))?,
            Header::RefDelta { base_id } => pack
                .lookup(&base_id)
                .and_then(position)
                .ok_or(Error::Missing(base_id))?,
            header => {
                kinds[k] = header.as_kind();
                continue;
            }
        };
        match kinds.get(base).copied().flatten() {
            Some(kind) => kinds[k] = Some(kind),
            None => pending.push((k, base)),
        }
    }
    while !pending.is_empty() {
        let before = pending.len();
        pending.retain(|(k, base)| match kinds[*base] {
            Some(kind) => {
                kinds[*k] = Some(kind);
                false
            }
            None => true,
        });
        if pending.len() == before {
            return Err(pack_err(pack, "a delta chain has no base"));
        }
    }
    kinds
        .into_iter()
        .map(|k| k.ok_or_else(|| pack_err(pack, "an entry without a kind")))
        .collect()
}

/// Stream a stored pack unchanged: the fast path of a full clone of a one-pack repository.
/// The file is read, not mapped, so a clone of any size adds no pages to the process.
pub fn write_verbatim(pack: &Pack, out: &mut dyn Write) -> Result<u64> {
    use std::io::Read;
    let mut file = pack.read_from(0);
    let mut buf = vec![0u8; 256 * 1024];
    let mut total = 0u64;
    loop {
        let n = file.read(&mut buf)?;
        if n == 0 {
            break;
        }
        out.write_all(&buf[..n])?;
        total += n as u64;
    }
    out.flush()?;
    if total != pack.file_size() {
        return Err(pack_err(
            pack,
            "the pack file changed size while it was sent",
        ));
    }
    Ok(total)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn headers_are_encoded_as_git_writes_them() {
        let mut v = Vec::new();
        write_header(&mut v, Header::Blob, 15);
        assert_eq!(v, [0x3f]);
        v.clear();
        write_header(&mut v, Header::Commit, 16);
        assert_eq!(v, [0x90, 0x01]);
        v.clear();
        write_header(&mut v, Header::OfsDelta { base_distance: 127 }, 1);
        assert_eq!(v, [0x61, 0x7f]);
        v.clear();
        write_header(&mut v, Header::OfsDelta { base_distance: 128 }, 1);
        assert_eq!(v, [0x61, 0x80, 0x00]);
    }
}
