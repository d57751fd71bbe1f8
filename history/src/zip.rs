//! A zip file written front to back, for a response body that cannot seek.
//!
//! Each file is a local header with zero sizes and the "data descriptor" flag, the deflated
//! data, then a descriptor with the CRC-32 and both sizes; the central directory at the end
//! repeats every header with the real values. Past 4 GiB (of an entry, or of offsets) or
//! 65,535 entries the ZIP64 extensions carry the values that no longer fit. Names are UTF-8
//! (flag bit 11); modes are Unix modes in the external attributes, as `git archive` and
//! Info-ZIP write them.

use std::io::{self, Read, Write};

use flate2::write::DeflateEncoder;
use flate2::Compression;

const LOCAL_HEADER: u32 = 0x0403_4b50;
const DATA_DESCRIPTOR: u32 = 0x0807_4b50;
const CENTRAL_HEADER: u32 = 0x0201_4b50;
const END_OF_CENTRAL: u32 = 0x0605_4b50;
const ZIP64_END_OF_CENTRAL: u32 = 0x0606_4b50;
const ZIP64_LOCATOR: u32 = 0x0706_4b50;
const ZIP64_EXTRA: u16 = 0x0001;
/// Bit 3: sizes in a data descriptor; bit 11: the name is UTF-8.
const FLAGS: u16 = 0x0008 | 0x0800;
const DEFLATE: u16 = 8;
const STORE: u16 = 0;
/// Made by Unix (3), spec version 4.5 (ZIP64).
const MADE_BY: u16 = (3 << 8) | 45;
/// Above this, a 32-bit field holds 0xFFFFFFFF and the ZIP64 extra field the value.
const MAX32: u64 = 0xFFFF_FFFF;

/// What the central directory says of one entry.
struct Central {
    name: Vec<u8>,
    method: u16,
    crc: u32,
    compressed: u64,
    size: u64,
    offset: u64,
    mode: u32,
    dos_time: u16,
    dos_date: u16,
}

/// A zip file being written to `out`.
pub(crate) struct ZipStream<W: Write> {
    out: Counting<W>,
    entries: Vec<Central>,
}

impl<W: Write> ZipStream<W> {
    pub(crate) fn new(out: W) -> Self {
        ZipStream {
            out: Counting {
                inner: out,
                written: 0,
            },
            entries: Vec::new(),
        }
    }

    /// A directory entry (`name` without the trailing `/`).
    pub(crate) fn directory(&mut self, name: &str, mtime: i64) -> io::Result<()> {
        let name = format!("{name}/");
        self.entry(&name, 0o040775, mtime, STORE, &mut io::empty())
    }

    /// A file (or a symbolic link, mode 0o120777, whose content is its target).
    pub(crate) fn file(
        &mut self,
        name: &str,
        mode: u32,
        mtime: i64,
        content: &mut dyn Read,
    ) -> io::Result<()> {
        self.entry(name, mode, mtime, DEFLATE, content)
    }

    fn entry(
        &mut self,
        name: &str,
        mode: u32,
        mtime: i64,
        method: u16,
        content: &mut dyn Read,
    ) -> io::Result<()> {
        let (dos_time, dos_date) = dos_time(mtime);
        let offset = self.out.written;
        let name = name.as_bytes().to_vec();
        let name_len = u16::try_from(name.len())
            .map_err(|_| io::Error::new(io::ErrorKind::InvalidInput, "a path too long for zip"))?;
        // The local header: version 4.5 so readers expect 64-bit descriptors where needed.
        let mut h = Vec::with_capacity(30 + name.len());
        put32(&mut h, LOCAL_HEADER);
        put16(&mut h, 45);
        put16(&mut h, FLAGS);
        put16(&mut h, method);
        put16(&mut h, dos_time);
        put16(&mut h, dos_date);
        put32(&mut h, 0);
        put32(&mut h, 0);
        put32(&mut h, 0);
        put16(&mut h, name_len);
        put16(&mut h, 0);
        h.extend_from_slice(&name);
        self.out.write_all(&h)?;
        let start = self.out.written;
        let mut hashing = Hashing {
            inner: content,
            crc: crc32fast::Hasher::new(),
            size: 0,
        };
        match method {
            DEFLATE => {
                let mut z = DeflateEncoder::new(&mut self.out, Compression::new(6));
                io::copy(&mut hashing, &mut z)?;
                z.finish()?;
            }
            _ => {
                io::copy(&mut hashing, &mut self.out)?;
            }
        }
        let compressed = self.out.written - start;
        let (crc, size) = (hashing.crc.finalize(), hashing.size);
        let mut d = Vec::with_capacity(24);
        put32(&mut d, DATA_DESCRIPTOR);
        put32(&mut d, crc);
        if compressed > MAX32 || size > MAX32 {
            put64(&mut d, compressed);
            put64(&mut d, size);
        } else {
            put32(&mut d, compressed as u32);
            put32(&mut d, size as u32);
        }
        self.out.write_all(&d)?;
        self.entries.push(Central {
            name,
            method,
            crc,
            compressed,
            size,
            offset,
            mode,
            dos_time,
            dos_date,
        });
        Ok(())
    }

    /// The central directory and its end records.
    pub(crate) fn finish(mut self) -> io::Result<W> {
        let start = self.out.written;
        let entries = std::mem::take(&mut self.entries);
        for e in &entries {
            self.central(e)?;
        }
        let count = entries.len() as u64;
        let size = self.out.written - start;
        let zip64 = count > 0xFFFF || start > MAX32 || size > MAX32;
        let mut t = Vec::new();
        if zip64 {
            let at = self.out.written;
            put32(&mut t, ZIP64_END_OF_CENTRAL);
            put64(&mut t, 44);
            put16(&mut t, MADE_BY);
            put16(&mut t, 45);
            put32(&mut t, 0);
            put32(&mut t, 0);
            put64(&mut t, count);
            put64(&mut t, count);
            put64(&mut t, size);
            put64(&mut t, start);
            put32(&mut t, ZIP64_LOCATOR);
            put32(&mut t, 0);
            put64(&mut t, at);
            put32(&mut t, 1);
        }
        put32(&mut t, END_OF_CENTRAL);
        put16(&mut t, 0);
        put16(&mut t, 0);
        let count16 = if zip64 { 0xFFFF } else { count as u16 };
        put16(&mut t, count16);
        put16(&mut t, count16);
        put32(&mut t, size.min(MAX32) as u32);
        put32(&mut t, if zip64 { MAX32 as u32 } else { start as u32 });
        put16(&mut t, 0);
        self.out.write_all(&t)?;
        self.out.flush()?;
        Ok(self.out.inner)
    }

    fn central(&mut self, e: &Central) -> io::Result<()> {
        let mut extra = Vec::new();
        if e.size > MAX32 {
            put64(&mut extra, e.size);
        }
        if e.compressed > MAX32 {
            put64(&mut extra, e.compressed);
        }
        if e.offset > MAX32 {
            put64(&mut extra, e.offset);
        }
        let mut h = Vec::with_capacity(46 + e.name.len() + extra.len() + 4);
        put32(&mut h, CENTRAL_HEADER);
        put16(&mut h, MADE_BY);
        put16(&mut h, 45);
        put16(&mut h, FLAGS);
        put16(&mut h, e.method);
        put16(&mut h, e.dos_time);
        put16(&mut h, e.dos_date);
        put32(&mut h, e.crc);
        put32(&mut h, e.compressed.min(MAX32) as u32);
        put32(&mut h, e.size.min(MAX32) as u32);
        put16(&mut h, e.name.len() as u16);
        put16(
            &mut h,
            if extra.is_empty() {
                0
            } else {
                extra.len() as u16 + 4
            },
        );
        put16(&mut h, 0);
        put16(&mut h, 0);
        put16(&mut h, 0);
        // Unix mode in the high half; MS-DOS directory bit in the low.
        let dos = if e.mode & 0o170000 == 0o040000 {
            0x10
        } else {
            0
        };
        put32(&mut h, (e.mode << 16) | dos);
        put32(&mut h, e.offset.min(MAX32) as u32);
        h.extend_from_slice(&e.name);
        if !extra.is_empty() {
            put16(&mut h, ZIP64_EXTRA);
            put16(&mut h, extra.len() as u16);
            h.extend_from_slice(&extra);
        }
        self.out.write_all(&h)
    }
}

/// MS-DOS time and date (2-second steps, 1980 to 2107) of a Unix time, in UTC.
fn dos_time(unix: i64) -> (u16, u16) {
    let unix = unix.clamp(315_532_800, 4_354_819_198);
    let days = unix.div_euclid(86_400);
    let secs = unix.rem_euclid(86_400);
    let (year, month, day) = crate::commit::civil_from_days(days);
    let (year, month, day) = (year, i64::from(month), i64::from(day));
    let time = ((secs / 3600) << 11) | (((secs % 3600) / 60) << 5) | ((secs % 60) / 2);
    let date = ((year - 1980) << 9) | (month << 5) | day;
    (time as u16, date as u16)
}

fn put16(out: &mut Vec<u8>, v: u16) {
    out.extend_from_slice(&v.to_le_bytes());
}

fn put32(out: &mut Vec<u8>, v: u32) {
    out.extend_from_slice(&v.to_le_bytes());
}

fn put64(out: &mut Vec<u8>, v: u64) {
    out.extend_from_slice(&v.to_le_bytes());
}

/// Counts what goes through, for offsets.
struct Counting<W> {
    inner: W,
    written: u64,
}

impl<W: Write> Write for Counting<W> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let n = self.inner.write(buf)?;
        self.written += n as u64;
        Ok(n)
    }
    fn flush(&mut self) -> io::Result<()> {
        self.inner.flush()
    }
}

/// Hashes and counts what is read through it.
struct Hashing<'a> {
    inner: &'a mut dyn Read,
    crc: crc32fast::Hasher,
    size: u64,
}

impl Read for Hashing<'_> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.crc.update(&buf[..n]);
        self.size += n as u64;
        Ok(n)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dos_times() {
        // 2023-11-14 22:13:20 UTC.
        let (time, date) = dos_time(1_700_000_000);
        assert_eq!(date >> 9, 2023 - 1980);
        assert_eq!((date >> 5) & 0xF, 11);
        assert_eq!(date & 0x1F, 14);
        assert_eq!(
            (time >> 11, (time >> 5) & 0x3F, (time & 0x1F) * 2),
            (22, 13, 20)
        );
    }
}
