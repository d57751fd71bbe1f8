//! Packs and push requests built byte by byte, for what a hostile or broken client could send
//! (stock git never would).

use std::io::Write;

use flate2::write::{GzEncoder, ZlibEncoder};
use flate2::Compression;

/// Pack entry types.
pub const BLOB: u8 = 3;
pub const OFS_DELTA: u8 = 6;
pub const REF_DELTA: u8 = 7;

/// A pack being written entry by entry.
#[derive(Default)]
pub struct PackWriter {
    body: Vec<u8>,
    count: u32,
}

impl PackWriter {
    pub fn new() -> Self {
        Self::default()
    }

    /// Where the next entry starts in the pack.
    pub fn next_offset(&self) -> u64 {
        12 + self.body.len() as u64
    }

    /// An entry header: type and declared size.
    pub fn header(&mut self, kind: u8, declared: u64) -> &mut Self {
        let mut size = declared;
        let mut byte = (kind << 4) | (size & 0x0f) as u8;
        size >>= 4;
        while size != 0 {
            self.body.push(byte | 0x80);
            byte = (size & 0x7f) as u8;
            size >>= 7;
        }
        self.body.push(byte);
        self.count += 1;
        self
    }

    /// The base distance of an OFS delta entry starting at `at`, whose base is at `base`.
    pub fn ofs(&mut self, at: u64, base: u64) -> &mut Self {
        let mut distance = at - base;
        let mut bytes = vec![(distance & 0x7f) as u8];
        while {
            distance >>= 7;
            distance != 0
        } {
            distance -= 1;
            bytes.push(0x80 | (distance & 0x7f) as u8);
        }
        bytes.reverse();
        self.body.extend_from_slice(&bytes);
        self
    }

    /// Raw bytes (a REF delta's base id, a compressed stream).
    pub fn raw(&mut self, bytes: &[u8]) -> &mut Self {
        self.body.extend_from_slice(bytes);
        self
    }

    /// `data`, zlib-compressed.
    pub fn deflated(&mut self, data: &[u8]) -> &mut Self {
        self.body.extend_from_slice(&zlib(data));
        self
    }

    /// A whole blob.
    pub fn blob(&mut self, data: &[u8]) -> &mut Self {
        self.header(BLOB, data.len() as u64).deflated(data)
    }

    /// An OFS delta of the entry at `base`.
    pub fn ofs_delta(&mut self, base: u64, delta: &[u8]) -> &mut Self {
        let at = self.next_offset();
        self.header(OFS_DELTA, delta.len() as u64)
            .ofs(at, base)
            .deflated(delta)
    }

    /// The pack: header, entries, checksum.
    pub fn finish(&self) -> Vec<u8> {
        let mut out = b"PACK".to_vec();
        out.extend_from_slice(&2u32.to_be_bytes());
        out.extend_from_slice(&self.count.to_be_bytes());
        out.extend_from_slice(&self.body);
        // The checksum is a hash of this run's object format, as git writes it.
        let format = match crate::object_format() {
            "sha256" => gix_hash::Kind::Sha256,
            _ => gix_hash::Kind::Sha1,
        };
        let mut hasher = gix_hash::hasher(format);
        hasher.update(&out);
        let sum = hasher.try_finalize().expect("a pack of test objects");
        out.extend_from_slice(sum.as_slice());
        out
    }
}

pub fn zlib(data: &[u8]) -> Vec<u8> {
    let mut z = ZlibEncoder::new(Vec::new(), Compression::fast());
    z.write_all(data).unwrap();
    z.finish().unwrap()
}

/// `n` zero bytes, zlib-compressed, without holding them.
pub fn zlib_zeros(n: u64) -> Vec<u8> {
    let mut z = ZlibEncoder::new(Vec::new(), Compression::best());
    let chunk = vec![0u8; 1 << 20];
    let mut left = n;
    while left > 0 {
        let k = left.min(chunk.len() as u64) as usize;
        z.write_all(&chunk[..k]).unwrap();
        left -= k as u64;
    }
    z.finish().unwrap()
}

pub fn gzip(data: &[u8]) -> Vec<u8> {
    let mut z = GzEncoder::new(Vec::new(), Compression::best());
    z.write_all(data).unwrap();
    z.finish().unwrap()
}

fn varint(mut n: u64, out: &mut Vec<u8>) {
    loop {
        let b = (n & 0x7f) as u8;
        n >>= 7;
        if n == 0 {
            out.push(b);
            return;
        }
        out.push(b | 0x80);
    }
}

/// A delta: base size, result size, then `copies` of (offset, size) from the base and the
/// bytes `insert` (at most 127). Copies of up to 16 MiB each take eight bytes: the cheapest
/// way to promise a large result.
pub fn copy_delta(base_size: u64, copies: &[(u32, u32)], insert: &[u8]) -> Vec<u8> {
    let mut d = Vec::new();
    varint(base_size, &mut d);
    varint(
        copies.iter().map(|c| u64::from(c.1)).sum::<u64>() + insert.len() as u64,
        &mut d,
    );
    for (offset, size) in copies {
        d.push(0x80 | 0x0f | 0x70);
        d.extend_from_slice(&offset.to_le_bytes());
        d.extend_from_slice(&size.to_le_bytes()[..3]);
    }
    if !insert.is_empty() {
        d.push(insert.len() as u8);
        d.extend_from_slice(insert);
    }
    d
}

/// A push request body: one command line with capabilities, a flush, then `pack`.
pub fn push_request(old: &str, new: &str, name: &str, pack: &[u8]) -> Vec<u8> {
    let format = crate::v0_format_caps();
    let mut body = crate::http::pkt(&format!(
        "{old} {new} {name}\0report-status side-band-64k agent=test{format}\n"
    ));
    body.extend_from_slice(b"0000");
    body.extend_from_slice(pack);
    body
}

/// The null object id of this run's object format, as pushes write it.
pub static ZERO: std::sync::LazyLock<String> = std::sync::LazyLock::new(crate::null_id);
