//! pkt-line framing: a 4-hex-digit length (including itself) followed by the payload, plus the
//! special packets `0000` (flush), `0001` (delimiter) and `0002` (response end).

use std::io::Read;

use crate::{Error, Result};

/// The largest packet git sends or accepts, header included.
pub const MAX_PACKET_LEN: usize = 65520;
/// The largest payload of one packet.
pub const MAX_PAYLOAD_LEN: usize = MAX_PACKET_LEN - 4;

/// One packet as read from the wire.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Packet<'a> {
    /// A data packet's payload.
    Data(&'a [u8]),
    /// `0000`: end of a section or message.
    Flush,
    /// `0001`: v2's delimiter between a command's capabilities and its arguments.
    Delim,
    /// `0002`: v2's end of a stateless response.
    ResponseEnd,
}

impl<'a> Packet<'a> {
    /// The payload of a data packet with one trailing newline removed, as git compares lines.
    pub fn line(&self) -> Option<&'a [u8]> {
        match self {
            Packet::Data(d) => Some(d.strip_suffix(b"\n").unwrap_or(d)),
            _ => None,
        }
    }
}

/// Append a data packet holding `payload` to `out`. Payloads longer than [`MAX_PAYLOAD_LEN`] are
/// a programming error of the caller and are split instead of producing an invalid packet.
pub fn write_data(out: &mut Vec<u8>, payload: &[u8]) {
    for chunk in payload.chunks(MAX_PAYLOAD_LEN) {
        write_len(out, chunk.len() + 4);
        out.extend_from_slice(chunk);
    }
}

/// Append a text line (a newline is added) as one data packet.
pub fn write_line(out: &mut Vec<u8>, line: &str) {
    let len = line.len() + 5;
    write_len(out, len);
    out.extend_from_slice(line.as_bytes());
    out.push(b'\n');
}

/// Append a flush packet (`0000`).
pub fn write_flush(out: &mut Vec<u8>) {
    out.extend_from_slice(b"0000");
}

/// Append a delimiter packet (`0001`).
pub fn write_delim(out: &mut Vec<u8>) {
    out.extend_from_slice(b"0001");
}

fn write_len(out: &mut Vec<u8>, len: usize) {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    let len = len.min(0xffff);
    out.extend_from_slice(&[
        HEX[(len >> 12) & 0xf],
        HEX[(len >> 8) & 0xf],
        HEX[(len >> 4) & 0xf],
        HEX[len & 0xf],
    ]);
}

/// Reads packets one at a time from any reader, never reading past the packet it returns, so
/// that the pack data following a receive-pack command list stays in the underlying reader.
pub struct PktReader<R> {
    inner: R,
    buf: Vec<u8>,
}

impl<R: Read> PktReader<R> {
    /// Read packets from `inner`.
    pub fn new(inner: R) -> Self {
        PktReader {
            inner,
            buf: Vec::with_capacity(1024),
        }
    }

    /// The next packet, or `None` at a clean end of input (no partial header).
    pub fn read(&mut self) -> Result<Option<Packet<'_>>> {
        let mut header = [0u8; 4];
        let mut filled = 0;
        while filled < 4 {
            match self.inner.read(&mut header[filled..]) {
                Ok(0) if filled == 0 => return Ok(None),
                Ok(0) => return Err(Error::Truncated),
                Ok(n) => filled += n,
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
                Err(e) => return Err(e.into()),
            }
        }
        let len = parse_len(header)?;
        match len {
            0 => return Ok(Some(Packet::Flush)),
            1 => return Ok(Some(Packet::Delim)),
            2 => return Ok(Some(Packet::ResponseEnd)),
            3 => return Err(Error::InvalidLength(header)),
            _ => {}
        }
        if len > MAX_PACKET_LEN {
            return Err(Error::TooLong(len));
        }
        self.buf.resize(len - 4, 0);
        self.inner.read_exact(&mut self.buf).map_err(|e| {
            if e.kind() == std::io::ErrorKind::UnexpectedEof {
                Error::Truncated
            } else {
                Error::Io(e)
            }
        })?;
        Ok(Some(Packet::Data(&self.buf)))
    }

    /// Like [`PktReader::read`], but a missing packet is an error.
    pub fn read_required(&mut self) -> Result<Packet<'_>> {
        self.read()?.ok_or(Error::Truncated)
    }

    /// The reader, positioned right after the last packet read (never past it).
    pub fn into_inner(self) -> R {
        self.inner
    }
}

fn parse_len(header: [u8; 4]) -> Result<usize> {
    let mut len = 0usize;
    for b in header {
        let digit = match b {
            b'0'..=b'9' => b - b'0',
            b'a'..=b'f' => b - b'a' + 10,
            b'A'..=b'F' => b - b'A' + 10,
            _ => return Err(Error::InvalidLength(header)),
        };
        len = (len << 4) | digit as usize;
    }
    Ok(len)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip() -> Result<()> {
        let mut out = Vec::new();
        write_line(&mut out, "hello");
        write_delim(&mut out);
        write_data(&mut out, b"raw");
        write_flush(&mut out);
        assert_eq!(out, b"000ahello\n00010007raw0000");
        let mut r = PktReader::new(&out[..]);
        assert_eq!(r.read()?.and_then(|p| p.line()), Some(&b"hello"[..]));
        assert_eq!(r.read()?, Some(Packet::Delim));
        assert_eq!(r.read()?, Some(Packet::Data(b"raw")));
        assert_eq!(r.read()?, Some(Packet::Flush));
        assert_eq!(r.read()?, None);
        Ok(())
    }

    #[test]
    fn rejects_garbage_and_truncation() {
        assert!(matches!(
            PktReader::new(&b"zzzz"[..]).read(),
            Err(Error::InvalidLength(_))
        ));
        assert!(matches!(
            PktReader::new(&b"0003"[..]).read(),
            Err(Error::InvalidLength(_))
        ));
        assert!(matches!(
            PktReader::new(&b"000ahel"[..]).read(),
            Err(Error::Truncated)
        ));
        assert!(matches!(
            PktReader::new(&b"00"[..]).read(),
            Err(Error::Truncated)
        ));
    }

    #[test]
    fn long_payload_is_split() {
        let mut out = Vec::new();
        write_data(&mut out, &vec![b'x'; MAX_PAYLOAD_LEN + 10]);
        let mut r = PktReader::new(&out[..]);
        assert!(matches!(r.read(), Ok(Some(Packet::Data(d))) if d.len() == MAX_PAYLOAD_LEN));
        assert!(matches!(r.read(), Ok(Some(Packet::Data(d))) if d.len() == 10));
    }
}
