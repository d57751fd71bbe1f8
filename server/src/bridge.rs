//! An async byte stream read from a blocking thread: an archive written on a blocking thread
//! takes a Git LFS object's bytes from the bucket this way, and an upstream's pack is indexed
//! on a blocking thread as it arrives. The async side runs as a task on the runtime and hands
//! chunks over a small channel; the blocking side waits on the channel (not on the runtime),
//! so no runtime is ever blocked on.

use std::future::Future;
use std::io::{self, Read};

use bytes::Bytes;
use tokio::sync::mpsc;

/// Chunks in flight.
const CHUNKS: usize = 4;

/// A reader of the stream `open` produces, started on `runtime`.
pub fn blocking_reader<F>(runtime: &tokio::runtime::Handle, open: F) -> BlockingReader
where
    F: Future<Output = io::Result<objectstore::bucket::ByteStream>> + Send + 'static,
{
    let (tx, rx) = mpsc::channel(CHUNKS);
    runtime.spawn(crate::body::pump(open, tx));
    BlockingReader {
        rx,
        current: Bytes::new(),
    }
}

/// See [`blocking_reader`]; read it only on a blocking thread.
pub struct BlockingReader {
    rx: mpsc::Receiver<io::Result<Bytes>>,
    current: Bytes,
}

impl Read for BlockingReader {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        while self.current.is_empty() {
            match self.rx.blocking_recv() {
                Some(Ok(chunk)) => self.current = chunk,
                Some(Err(e)) => return Err(e),
                None => return Ok(0),
            }
        }
        let n = buf.len().min(self.current.len());
        buf[..n].copy_from_slice(&self.current[..n]);
        let _ = self.current.split_to(n);
        Ok(n)
    }
}
