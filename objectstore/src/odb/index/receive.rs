//! Pass 1: stream the pack to a local file, checking every declared size before inflating,
//! hashing whole objects and checking the small ones with fsck.

use std::fs::File;
use std::io::{BufRead, BufWriter, Write};
use std::path::Path;
use std::sync::Arc;

use flate2::{Decompress, FlushDecompress, Status};
use gix_hash::ObjectId;
use gix_object::Kind;
use gix_pack::data::entry::Header;

use super::{
    invalid, Checks, Entry, EntryKind, Limits, Received, Refused, ENTRY_BYTES, KEPT_BLOB_MAX,
};
use crate::budget::MemoryBudget;
use crate::fsck::{self, ObjectError};
use crate::odb::{delta, Error, Result};

/// Whole commits, trees and tags up to this size are checked while they stream in; larger
/// ones when resolving.
const CHECK_INLINE_MAX: u64 = 1 << 20;

/// Entries are accounted to the budget in chunks of this many.
const TABLE_CHUNK: usize = 1 << 16;

/// A reader that records the bytes read through it (an entry's header, to store it as sent).
struct Recording<'a> {
    inner: &'a mut dyn BufRead,
    bytes: Vec<u8>,
}

impl std::io::Read for Recording<'_> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.bytes.extend_from_slice(&buf[..n]);
        Ok(n)
    }
}

/// Where the pack goes: the file, its running checksum and the current entry's CRC-32.
struct Output {
    file: BufWriter<File>,
    checksum: gix_hash::Hasher,
    written: u64,
}

impl Output {
    fn write(&mut self, bytes: &[u8], crc: &mut crc32fast::Hasher) -> Result<()> {
        self.file.write_all(bytes)?;
        self.checksum.update(bytes);
        crc.update(bytes);
        self.written += bytes.len() as u64;
        Ok(())
    }
}

/// Inflate one entry's zlib stream from `input`, storing the compressed bytes in `out` and
/// handing the inflated bytes to `sink`. Stops with an error as soon as more than `declared`
/// bytes come out.
fn inflate_entry(
    input: &mut dyn BufRead,
    z: &mut Decompress,
    scratch: &mut [u8],
    out: &mut Output,
    crc: &mut crc32fast::Hasher,
    declared: u64,
    sink: &mut dyn FnMut(&[u8]),
) -> Result<()> {
    z.reset(true);
    let mut produced_total = 0u64;
    loop {
        let buf = input.fill_buf()?;
        if buf.is_empty() {
            return Err(invalid("the pack ends in the middle of an entry"));
        }
        let (in_before, out_before) = (z.total_in(), z.total_out());
        let status = z
            .decompress(buf, scratch, FlushDecompress::None)
            .map_err(|e| invalid(format!("corrupt compressed data: {e}")))?;
        let consumed = (z.total_in() - in_before) as usize;
        let produced = (z.total_out() - out_before) as usize;
        out.write(&buf[..consumed], crc)?;
        input.consume(consumed);
        produced_total += produced as u64;
        if produced_total > declared {
            return Err(invalid(format!(
                "an entry inflates to more than the {declared} bytes it declares"
            )));
        }
        sink(&scratch[..produced]);
        match status {
            Status::StreamEnd => break,
            _ if consumed == 0 && produced == 0 => {
                return Err(invalid("corrupt compressed data: no progress"))
            }
            _ => {}
        }
    }
    if produced_total != declared {
        return Err(invalid(format!(
            "an entry inflates to {produced_total} bytes but declares {declared}"
        )));
    }
    Ok(())
}

fn to_u32(size: u64, limits: &Limits) -> Result<u32> {
    if size > limits.max_object_bytes {
        return Err(Refused::TooLarge {
            size,
            limit: limits.max_object_bytes,
        }
        .into());
    }
    u32::try_from(size).map_err(|_| {
        Refused::TooLarge {
            size,
            limit: u64::from(u32::MAX),
        }
        .into()
    })
}

/// Stream a pack of objects named by `hash` from `input` into a new directory under
/// `staging`: pass 1 of indexing.
pub fn receive(
    input: &mut dyn BufRead,
    staging: &Path,
    hash: gix_hash::Kind,
    limits: &Limits,
    budget: &Arc<MemoryBudget>,
    checks: Checks<'_>,
) -> Result<Received> {
    std::fs::create_dir_all(staging)?;
    let dir = tempfile::Builder::new()
        .prefix("incoming-")
        .tempdir_in(staging)?;
    let path = dir.path().join("incoming.pack");
    let mut out = Output {
        file: BufWriter::with_capacity(256 << 10, File::create(&path)?),
        checksum: gix_hash::hasher(hash),
        written: 0,
    };

    let mut header = [0u8; 12];
    input.read_exact(&mut header).map_err(|e| match e.kind() {
        std::io::ErrorKind::UnexpectedEof => invalid("the pack is shorter than its header"),
        _ => Error::Io(e),
    })?;
    let (_version, count) = gix_pack::data::header::decode(&header)
        .map_err(|e| invalid(format!("bad pack header: {e}")))?;
    if count > limits.max_objects {
        return Err(Refused::TooManyObjects {
            count: u64::from(count),
            limit: limits.max_objects,
        }
        .into());
    }
    out.write(&header, &mut crc32fast::Hasher::new())?;

    let mut table = budget.empty();
    let mut entries: Vec<Entry> = Vec::new();
    let mut ids: Vec<ObjectId> = Vec::new();
    let mut ref_bases: Vec<ObjectId> = Vec::new();
    let mut kept_blobs = Vec::new();
    let mut specials = Vec::new();
    let mut largest = 0u64;
    let mut z = Decompress::new(true);
    let mut scratch = vec![0u8; 64 << 10];
    let mut content: Vec<u8> = Vec::new();
    let null = ObjectId::null(hash);

    for n in 0..count as usize {
        if n == entries.capacity() {
            let chunk = TABLE_CHUNK.min(count as usize - n);
            table
                .grow(chunk as u64 * ENTRY_BYTES, limits.budget_wait)
                .map_err(Refused::Busy)?;
            entries.reserve_exact(chunk);
            ids.reserve_exact(chunk);
        }
        let offset = out.written;
        let mut recording = Recording {
            inner: &mut *input,
            bytes: Vec::with_capacity(32),
        };
        let parsed = gix_pack::data::Entry::from_read(&mut recording, offset, hash.len_in_bytes())
            .map_err(|e| match e.kind() {
                std::io::ErrorKind::UnexpectedEof => {
                    invalid("the pack ends in the middle of an entry header")
                }
                std::io::ErrorKind::InvalidData | std::io::ErrorKind::Other => {
                    invalid(format!("bad entry header at offset {offset}: {e}"))
                }
                _ => Error::Io(e),
            })?;
        let raw_header = recording.bytes;
        let size = to_u32(parsed.decompressed_size, limits)?;
        let mut crc = crc32fast::Hasher::new();
        out.write(&raw_header, &mut crc)?;
        let header_len =
            u8::try_from(raw_header.len()).map_err(|_| invalid("an entry header is too long"))?;
        largest = largest.max(u64::from(size));

        let (kind, base) = match parsed.header {
            Header::Commit => (EntryKind::Object(Kind::Commit), u32::MAX),
            Header::Tree => (EntryKind::Object(Kind::Tree), u32::MAX),
            Header::Blob => (EntryKind::Object(Kind::Blob), u32::MAX),
            Header::Tag => (EntryKind::Object(Kind::Tag), u32::MAX),
            Header::OfsDelta { base_distance } => {
                let base_offset = offset
                    .checked_sub(base_distance)
                    .filter(|_| base_distance > 0)
                    .ok_or_else(|| invalid("a delta's base lies before the start of the pack"))?;
                let base = entries
                    .binary_search_by_key(&base_offset, |e| e.offset)
                    .map_err(|_| invalid("a delta's base offset is not the start of an entry"))?;
                (EntryKind::OfsDelta, base as u32)
            }
            Header::RefDelta { base_id } => {
                ref_bases.push(base_id);
                (EntryKind::RefDelta, (ref_bases.len() - 1) as u32)
            }
        };

        let mut entry = Entry {
            offset,
            size,
            result_size: size,
            crc32: 0,
            base,
            header_len,
            kind,
            check_later: false,
        };
        content.clear();
        match kind {
            EntryKind::Object(object_kind) => {
                let mut hasher = gix_hash::hasher(hash);
                hasher.update(&gix_object::encode::loose_header(
                    object_kind,
                    u64::from(size),
                ));
                let keep = match object_kind {
                    Kind::Blob => checks.keep_blob.is_some() && (size as usize) <= KEPT_BLOB_MAX,
                    _ => checks.fsck.is_some() && u64::from(size) <= CHECK_INLINE_MAX,
                };
                inflate_entry(
                    input,
                    &mut z,
                    &mut scratch,
                    &mut out,
                    &mut crc,
                    u64::from(size),
                    &mut |bytes| {
                        hasher.update(bytes);
                        if keep {
                            content.extend_from_slice(bytes);
                        }
                    },
                )?;
                let id = hasher.try_finalize().map_err(|e| invalid(format!("{e}")))?;
                match object_kind {
                    Kind::Blob => {
                        if let (true, Some(keep_blob)) = (keep, checks.keep_blob) {
                            if keep_blob(&content) {
                                kept_blobs.push((id, content.clone()));
                            }
                        }
                    }
                    _ if keep => {
                        let rules = checks.fsck.unwrap_or_default();
                        fsck::check(
                            object_kind,
                            &content,
                            rules,
                            id.kind(),
                            &mut |which, blob| specials.push((which, blob)),
                        )
                        .map_err(|finding| Refused::Fsck(ObjectError { id, finding }))?;
                    }
                    _ => entry.check_later = checks.fsck.is_some(),
                }
                ids.push(id);
            }
            EntryKind::OfsDelta | EntryKind::RefDelta => {
                inflate_entry(
                    input,
                    &mut z,
                    &mut scratch,
                    &mut out,
                    &mut crc,
                    u64::from(size),
                    &mut |bytes| {
                        if content.len() < 20 {
                            let take = bytes.len().min(20 - content.len());
                            content.extend_from_slice(&bytes[..take]);
                        }
                    },
                )?;
                let (base_size, result_size) = delta::sizes(&content).map_err(|e| invalid(e.0))?;
                let base_size = to_u32(base_size, limits)?;
                entry.result_size = to_u32(result_size, limits)?;
                largest = largest
                    .max(u64::from(base_size))
                    .max(u64::from(entry.result_size));
                ids.push(null);
            }
        }
        entry.crc32 = crc.finalize();
        entries.push(entry);
    }

    let mut trailer = vec![0u8; hash.len_in_bytes()];
    input.read_exact(&mut trailer).map_err(|e| match e.kind() {
        std::io::ErrorKind::UnexpectedEof => invalid("the pack ends before its checksum"),
        _ => Error::Io(e),
    })?;
    let computed = (out.checksum.clone())
        .try_finalize()
        .map_err(|e| invalid(format!("{e}")))?;
    if computed.as_slice() != trailer.as_slice() {
        return Err(invalid("the pack's checksum does not match its content"));
    }
    if !input.fill_buf()?.is_empty() {
        return Err(invalid("unexpected data after the pack"));
    }
    out.file.flush()?;
    drop(out);
    Ok(Received {
        dir,
        path,
        entries,
        ids,
        ref_bases,
        checksum: computed,
        largest,
        kept_blobs,
        specials,
        _table: table,
    })
}
