//! Side-band multiplexing: pack data on band 1, progress on band 2, a fatal error on band 3.

use crate::pktline::{write_data, MAX_PACKET_LEN};

/// Band 1: pack data (or the report of a push).
pub const DATA: u8 = 1;
/// Band 2: progress messages git shows as `remote: ...`.
pub const PROGRESS: u8 = 2;
/// Band 3: a fatal error; the client stops.
pub const ERROR: u8 = 3;

/// Which side-band flavour the client asked for, which decides the packet size.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// No multiplexing: pack bytes are sent raw and progress is dropped.
    None,
    /// `side-band`: packets of at most 1000 bytes.
    Small,
    /// `side-band-64k` (and protocol v2): packets of at most 65520 bytes.
    Large,
}

impl Mode {
    /// The largest payload one band packet can carry (the band byte not included).
    pub fn max_payload(self) -> usize {
        match self {
            Mode::None => usize::MAX,
            Mode::Small => 1000 - 5,
            Mode::Large => MAX_PACKET_LEN - 5,
        }
    }
}

/// Append `data` to `out` as one or more packets on `band`.
pub fn write_band(out: &mut Vec<u8>, mode: Mode, band: u8, data: &[u8]) {
    if mode == Mode::None {
        if band == DATA {
            out.extend_from_slice(data);
        }
        return;
    }
    let mut packet = Vec::with_capacity(mode.max_payload().min(data.len()) + 1);
    for chunk in data.chunks(mode.max_payload()) {
        packet.clear();
        packet.push(band);
        packet.extend_from_slice(chunk);
        write_data(out, &packet);
    }
}

/// A writer whose bytes go to `inner` as band-1 packets; it ends with a flush, or with a
/// fatal error on band 3 and a flush.
pub struct BandWriter<W> {
    inner: W,
    mode: Mode,
    buf: Vec<u8>,
}

impl<W: std::io::Write> BandWriter<W> {
    /// Multiplex onto `inner` with packets of `mode`'s size.
    pub fn new(inner: W, mode: Mode) -> Self {
        BandWriter {
            inner,
            mode,
            buf: Vec::new(),
        }
    }

    /// End the stream: a flush packet.
    pub fn finish(mut self) -> std::io::Result<W> {
        self.inner.write_all(b"0000")?;
        self.inner.flush()?;
        Ok(self.inner)
    }

    /// End the stream with `error` on band 3, which the client shows and stops at.
    pub fn fail(mut self, error: &str) -> std::io::Result<W> {
        self.buf.clear();
        write_band(
            &mut self.buf,
            self.mode,
            ERROR,
            format!("{error}\n").as_bytes(),
        );
        self.inner.write_all(&self.buf)?;
        self.finish()
    }
}

impl<W: std::io::Write> std::io::Write for BandWriter<W> {
    fn write(&mut self, data: &[u8]) -> std::io::Result<usize> {
        self.buf.clear();
        write_band(&mut self.buf, self.mode, DATA, data);
        self.inner.write_all(&self.buf)?;
        Ok(data.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        self.inner.flush()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::pktline::{Packet, PktReader};

    #[test]
    fn splits_at_the_mode_limit() {
        let mut out = Vec::new();
        write_band(&mut out, Mode::Small, DATA, &[7u8; 2000]);
        let mut r = PktReader::new(&out[..]);
        let mut total = 0;
        while let Ok(Some(Packet::Data(d))) = r.read() {
            assert_eq!(d[0], DATA);
            assert!(d.len() <= 1000 - 4);
            total += d.len() - 1;
        }
        assert_eq!(total, 2000);
    }

    #[test]
    fn no_sideband_drops_progress() {
        let mut out = Vec::new();
        write_band(&mut out, Mode::None, PROGRESS, b"counting");
        write_band(&mut out, Mode::None, DATA, b"PACK");
        assert_eq!(out, b"PACK");
    }
}
