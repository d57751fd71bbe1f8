//! A stored pack's `.pack` file, read with positioned reads and never memory-mapped.
//!
//! gix-pack's `data::File` maps the whole file. Every page a clone, a fetch or maintenance then
//! touches is charged to the process's resident set: serving a 1 GiB pack grows the server by
//! up to 1 GiB, though the kernel's page cache holds those pages either way and could drop them
//! at will. Reading with `pread` into small buffers keeps the resident set at the buffers in
//! use, whatever the pack's size, for about a microsecond per read of a cached page.
//!
//! An open file outlives the deletion of its name, as a mapping does: a pack maintenance deletes
//! while a request still reads it stays readable to that request.

use std::fs::File;
use std::io::Read;
use std::path::Path;

use flate2::{Decompress, FlushDecompress, Status};
use gix_pack::data::Entry;

/// Bytes of a pack's header: `PACK`, the version, the number of entries.
const HEADER_BYTES: u64 = 12;
/// The longest entry header: a type and size varint (10 bytes) and a base id (32 bytes in a
/// SHA-256 repository, 20 in a SHA-1 one).
const MAX_ENTRY_HEADER: u64 = 10 + 32;
/// zlib cannot expand data by more than this ratio (deflate's best case is 1032:1): a size
/// declared beyond it is corruption, refused before anything of that size is allocated.
const MAX_INFLATE_RATIO: u64 = 1032;

/// What can be wrong while reading a stored pack; callers add the pack's or object's name.
#[derive(Debug, thiserror::Error)]
pub(crate) enum PackDataError {
    /// Reading the file failed.
    #[error("reading the pack failed: {0}")]
    Io(#[from] std::io::Error),
    /// The file is not what its index says.
    #[error("{0}")]
    Corrupt(String),
}

fn corrupt(message: impl Into<String>) -> PackDataError {
    PackDataError::Corrupt(message.into())
}

/// An open `.pack` file.
#[derive(Debug)]
pub(crate) struct PackData {
    file: File,
    len: u64,
    num_objects: u32,
    /// The hash that names the pack's objects (and its trailer).
    hash: gix_hash::Kind,
}

impl PackData {
    /// Open a pack file and check its header.
    pub(crate) fn open(path: &Path, hash: gix_hash::Kind) -> Result<Self, PackDataError> {
        let file = File::open(path)?;
        let len = file.metadata()?.len();
        if len < HEADER_BYTES + hash.len_in_bytes() as u64 {
            return Err(corrupt(
                "the pack file is shorter than a header and a checksum",
            ));
        }
        let mut header = [0u8; HEADER_BYTES as usize];
        read_exact_at(&file, &mut header, 0)?;
        let (_version, num_objects) = gix_pack::data::header::decode(&header)
            .map_err(|e| corrupt(format!("bad pack header: {e}")))?;
        Ok(PackData {
            file,
            len,
            num_objects,
            hash,
        })
    }

    /// How many entries the header declares.
    pub(crate) fn num_objects(&self) -> u32 {
        self.num_objects
    }

    /// The size of the file, checksum included.
    pub(crate) fn len(&self) -> u64 {
        self.len
    }

    /// Where the entries end and the trailing checksum starts.
    pub(crate) fn pack_end(&self) -> u64 {
        self.len - self.hash.len_in_bytes() as u64
    }

    /// The entry header at `offset`.
    pub(crate) fn entry(&self, offset: u64) -> Result<Entry, PackDataError> {
        let end = self.pack_end();
        if offset < HEADER_BYTES || offset >= end {
            return Err(corrupt(format!("no entry can start at offset {offset}")));
        }
        let n = MAX_ENTRY_HEADER.min(end - offset) as usize;
        let mut buf = [0u8; MAX_ENTRY_HEADER as usize];
        read_exact_at(&self.file, &mut buf[..n], offset)?;
        Entry::from_bytes(&buf[..n], offset, self.hash)
            .map_err(|e| corrupt(format!("bad entry header at offset {offset}: {e:#}")))
    }

    /// Read into `buf` at `offset` (fewer bytes at the end of the file).
    pub(crate) fn read_at(&self, buf: &mut [u8], offset: u64) -> std::io::Result<usize> {
        read_at(&self.file, buf, offset)
    }

    /// A reader of the bytes `start..end` (clamped to the file).
    pub(crate) fn section(&self, start: u64, end: u64) -> Section<'_> {
        Section {
            file: &self.file,
            at: start,
            end: end.min(self.len),
        }
    }

    /// Inflate the zlib stream stored in `start..end` into `out`, which must come to exactly
    /// `size` bytes.
    pub(crate) fn inflate(
        &self,
        buffers: &mut Inflater,
        start: u64,
        end: u64,
        size: u64,
        out: &mut Vec<u8>,
    ) -> Result<(), PackDataError> {
        inflate_range(&self.file, buffers, start, end, size, out)
    }

    /// Inflate the first bytes of the zlib stream in `start..end` into `out`; returns how
    /// many were written (fewer than `out.len()` only when the stream is shorter).
    pub(crate) fn inflate_prefix(
        &self,
        buffers: &mut Inflater,
        start: u64,
        end: u64,
        out: &mut [u8],
    ) -> Result<usize, PackDataError> {
        let Inflater { z, input } = buffers;
        z.reset(true);
        let n = (input.len() as u64)
            .min(end.saturating_sub(start))
            .min(4096) as usize;
        read_exact_at(&self.file, &mut input[..n], start)?;
        let before = z.total_out();
        z.decompress(&input[..n], out, FlushDecompress::None)
            .map_err(|e| corrupt(format!("corrupt compressed data: {e}")))?;
        Ok((z.total_out() - before) as usize)
    }
}

/// A reader of a range of a file by positioned reads: several may read one file at once.
pub(crate) struct Section<'a> {
    file: &'a File,
    at: u64,
    end: u64,
}

impl Read for Section<'_> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let n = (buf.len() as u64).min(self.end.saturating_sub(self.at)) as usize;
        if n == 0 {
            return Ok(0);
        }
        let got = read_at(self.file, &mut buf[..n], self.at)?;
        self.at += got as u64;
        Ok(got)
    }
}

/// A zlib stream and an input buffer, reused from entry to entry.
pub(crate) struct Inflater {
    z: Decompress,
    input: Vec<u8>,
}

impl Default for Inflater {
    fn default() -> Self {
        Inflater {
            z: Decompress::new(true),
            input: vec![0u8; 64 << 10],
        }
    }
}

/// Inflate the zlib stream stored in `start..end` of `file` into `out` (cleared first), which
/// must come to exactly `size` bytes: no more is ever inflated, and a size the compressed
/// bytes cannot hold is refused before `out` grows.
pub(crate) fn inflate_range(
    file: &File,
    buffers: &mut Inflater,
    start: u64,
    end: u64,
    size: u64,
    out: &mut Vec<u8>,
) -> Result<(), PackDataError> {
    let compressed = end.saturating_sub(start);
    if size
        > compressed
            .saturating_mul(MAX_INFLATE_RATIO)
            .saturating_add(64)
    {
        return Err(corrupt(format!(
            "an entry declares {size} bytes, more than its {compressed} compressed bytes can hold"
        )));
    }
    let size = usize::try_from(size).map_err(|_| corrupt("an entry too large to hold"))?;
    let Inflater { z, input } = buffers;
    out.clear();
    out.reserve_exact(size);
    z.reset(true);
    let mut at = start;
    let (mut lo, mut hi) = (0usize, 0usize);
    loop {
        if lo == hi {
            let n = (input.len() as u64).min(end.saturating_sub(at)) as usize;
            if n == 0 {
                return Err(corrupt("an entry's compressed data is truncated"));
            }
            read_exact_at(file, &mut input[..n], at)?;
            at += n as u64;
            (lo, hi) = (0, n);
        }
        let (in_before, out_before) = (z.total_in(), out.len());
        // `decompress_vec` writes only into spare capacity: at most `size` bytes in all.
        let status = z
            .decompress_vec(&input[lo..hi], out, FlushDecompress::None)
            .map_err(|e| corrupt(format!("corrupt compressed data: {e}")))?;
        let consumed = (z.total_in() - in_before) as usize;
        lo += consumed;
        match status {
            Status::StreamEnd => break,
            _ if consumed == 0 && out.len() == out_before => {
                return Err(corrupt("an entry inflates to more than it declares"))
            }
            _ => {}
        }
    }
    if out.len() != size {
        return Err(corrupt(
            "an entry inflates to another size than it declares",
        ));
    }
    Ok(())
}

/// Read exactly `buf.len()` bytes at `offset`, without moving a shared cursor.
fn read_exact_at(file: &File, mut buf: &mut [u8], mut offset: u64) -> std::io::Result<()> {
    while !buf.is_empty() {
        match read_at(file, buf, offset) {
            Ok(0) => {
                return Err(std::io::Error::new(
                    std::io::ErrorKind::UnexpectedEof,
                    "the file ends early",
                ))
            }
            Ok(n) => {
                buf = &mut buf[n..];
                offset += n as u64;
            }
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(())
}

#[cfg(unix)]
fn read_at(file: &File, buf: &mut [u8], offset: u64) -> std::io::Result<usize> {
    std::os::unix::fs::FileExt::read_at(file, buf, offset)
}

#[cfg(windows)]
fn read_at(file: &File, buf: &mut [u8], offset: u64) -> std::io::Result<usize> {
    std::os::windows::fs::FileExt::seek_read(file, buf, offset)
}
