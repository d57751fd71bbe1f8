//! Moving bytes between hyper's async bodies and the blocking protocol code.
//!
//! Pack work (indexing, walking, writing) is synchronous and runs on blocking threads. A
//! request body reaches it through [`BodyReader`], an `io::Read` fed by a bounded channel; a
//! response leaves it through [`ChannelWriter`], an `io::Write` feeding a bounded channel that
//! [`ChannelBody`] streams to the client. The channels hold a few chunks at most, so memory
//! stays bounded whatever the size of the pack, and a slow client slows the producer down.

use std::io::{self, Read, Write};
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;

use bytes::Bytes;
use http_body::{Body, Frame};
use http_body_util::BodyExt;
use tokio::sync::mpsc;

/// The boxed body type of every response.
pub type ResponseBody = http_body_util::combinators::BoxBody<Bytes, io::Error>;

/// Chunks in flight between a producer and the socket.
const CHANNEL_CHUNKS: usize = 8;
/// Size at which [`ChannelWriter`] hands a chunk over.
const CHUNK_BYTES: usize = 64 * 1024;

/// `body`, keeping `guard` (a slot, a memory reservation) until the body has been sent or
/// dropped: what an answer holds is held while it goes out.
pub fn holding<G: Send + Sync + Unpin + 'static>(body: ResponseBody, guard: G) -> ResponseBody {
    Holding {
        body,
        _guard: guard,
    }
    .boxed()
}

struct Holding<G> {
    body: ResponseBody,
    _guard: G,
}

impl<G: Unpin> http_body::Body for Holding<G> {
    type Data = Bytes;
    type Error = std::io::Error;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<http_body::Frame<Bytes>, std::io::Error>>> {
        Pin::new(&mut self.body).poll_frame(cx)
    }

    fn is_end_stream(&self) -> bool {
        self.body.is_end_stream()
    }
}

pub fn full(data: impl Into<Bytes>) -> ResponseBody {
    http_body_util::Full::new(data.into())
        .map_err(|never| match never {})
        .boxed()
}

/// A response body streamed from a channel.
pub struct ChannelBody {
    rx: mpsc::Receiver<io::Result<Bytes>>,
}

impl Body for ChannelBody {
    type Data = Bytes;
    type Error = io::Error;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, io::Error>>> {
        match self.rx.poll_recv(cx) {
            Poll::Ready(Some(Ok(b))) => Poll::Ready(Some(Ok(Frame::data(b)))),
            Poll::Ready(Some(Err(e))) => Poll::Ready(Some(Err(e))),
            Poll::Ready(None) => Poll::Ready(None),
            Poll::Pending => Poll::Pending,
        }
    }
}

/// A blocking writer whose bytes become the response body.
pub struct ChannelWriter {
    tx: mpsc::Sender<io::Result<Bytes>>,
    buf: Vec<u8>,
}

/// A writer and the body it feeds.
pub fn channel() -> (ChannelWriter, ResponseBody) {
    let (tx, rx) = mpsc::channel(CHANNEL_CHUNKS);
    (
        ChannelWriter {
            tx,
            buf: Vec::with_capacity(CHUNK_BYTES),
        },
        ChannelBody { rx }.boxed(),
    )
}

impl ChannelWriter {
    fn send(&mut self) -> io::Result<()> {
        if self.buf.is_empty() {
            return Ok(());
        }
        let chunk = Bytes::from(std::mem::replace(
            &mut self.buf,
            Vec::with_capacity(CHUNK_BYTES),
        ));
        self.tx
            .blocking_send(Ok(chunk))
            .map_err(|_| io::Error::new(io::ErrorKind::BrokenPipe, "the client went away"))
    }

    /// Send `chunk` as it is (no copy), after what is buffered: for producers that fill their
    /// own buffers (a file inflated a megabyte at a time).
    pub fn send_owned(&mut self, chunk: Vec<u8>) -> io::Result<()> {
        self.send()?;
        if chunk.is_empty() {
            return Ok(());
        }
        self.tx
            .blocking_send(Ok(Bytes::from(chunk)))
            .map_err(|_| io::Error::new(io::ErrorKind::BrokenPipe, "the client went away"))
    }

    /// End the body as failed: the connection is cut before the end of the response, so the
    /// client sees an incomplete transfer instead of a short body that looks whole. For bodies
    /// with no in-band way to report an error (a bundle file).
    pub fn abort(mut self, reason: &str) {
        self.buf.clear();
        let _ = self
            .tx
            .blocking_send(Err(io::Error::other(reason.to_owned())));
    }
}

impl Write for ChannelWriter {
    fn write(&mut self, data: &[u8]) -> io::Result<usize> {
        if self.buf.len() + data.len() > CHUNK_BYTES && !self.buf.is_empty() {
            self.send()?;
        }
        if data.len() >= CHUNK_BYTES {
            self.buf.extend_from_slice(data);
            self.send()?;
        } else {
            self.buf.extend_from_slice(data);
        }
        Ok(data.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        self.send()
    }
}

impl Drop for ChannelWriter {
    fn drop(&mut self) {
        let _ = self.send();
    }
}

/// The request body as a blocking reader, with a limit on its size.
pub struct BodyReader {
    rx: mpsc::Receiver<io::Result<Bytes>>,
    current: Bytes,
    remaining: u64,
    limit: u64,
}

/// Start forwarding `body` into a [`BodyReader`]; at most `limit` bytes are accepted, and a
/// client that sends nothing for `idle` gets an error.
pub fn reader(body: hyper::body::Incoming, limit: u64, idle: Duration) -> BodyReader {
    BodyReader {
        rx: forward(body, idle),
        current: Bytes::new(),
        remaining: limit,
        limit,
    }
}

/// The request body as an async stream of bytes, for code that streams it on (an LFS upload
/// to the bucket): at most `limit` bytes, and none missing for `idle`.
pub fn async_reader(
    body: hyper::body::Incoming,
    limit: u64,
    idle: Duration,
) -> objectstore::bucket::ByteStream {
    Box::pin(AsyncBodyReader {
        rx: forward(body, idle),
        current: Bytes::new(),
        remaining: limit,
        limit,
    })
}

/// A response body streamed from an async reader (an LFS object from the bucket), through the
/// same small channel as every streamed response. A read error cuts the body, which the client
/// sees as an incomplete transfer.
pub fn stream(reader: objectstore::bucket::ByteStream) -> ResponseBody {
    let (tx, rx) = mpsc::channel(CHANNEL_CHUNKS);
    tokio::spawn(pump(async move { Ok(reader) }, tx));
    ChannelBody { rx }.boxed()
}

/// Open a stream and send its bytes into `tx` in chunks, then its error if it fails; stops
/// when the receiver goes away. Run as a task.
pub async fn pump<F>(open: F, tx: mpsc::Sender<io::Result<Bytes>>)
where
    F: std::future::Future<Output = io::Result<objectstore::bucket::ByteStream>>,
{
    use tokio::io::AsyncReadExt;
    let mut reader = match open.await {
        Ok(r) => r,
        Err(e) => {
            let _ = tx.send(Err(e)).await;
            return;
        }
    };
    loop {
        let mut chunk = vec![0u8; CHUNK_BYTES];
        match reader.read(&mut chunk).await {
            Ok(0) => return,
            Ok(n) => {
                chunk.truncate(n);
                if tx.send(Ok(Bytes::from(chunk))).await.is_err() {
                    return;
                }
            }
            Err(e) => {
                tracing::warn!(error = %e, "reading a streamed body failed");
                let _ = tx.send(Err(e)).await;
                return;
            }
        }
    }
}

/// Forward the body's data frames into a small channel, failing when none comes for `idle`.
fn forward(body: hyper::body::Incoming, idle: Duration) -> mpsc::Receiver<io::Result<Bytes>> {
    let (tx, rx) = mpsc::channel(CHANNEL_CHUNKS);
    tokio::spawn(async move {
        let mut body = body;
        loop {
            let Ok(frame) = tokio::time::timeout(idle, body.frame()).await else {
                let _ = tx
                    .send(Err(io::Error::new(
                        io::ErrorKind::TimedOut,
                        format!("the client sent nothing for {} s", idle.as_secs()),
                    )))
                    .await;
                return;
            };
            match frame {
                Some(Ok(frame)) => {
                    if let Ok(data) = frame.into_data() {
                        if tx.send(Ok(data)).await.is_err() {
                            return;
                        }
                    }
                }
                Some(Err(e)) => {
                    let _ = tx.send(Err(io::Error::other(e))).await;
                    return;
                }
                None => return,
            }
        }
    });
    rx
}

/// [`BodyReader`]'s async twin.
struct AsyncBodyReader {
    rx: mpsc::Receiver<io::Result<Bytes>>,
    current: Bytes,
    remaining: u64,
    limit: u64,
}

impl tokio::io::AsyncRead for AsyncBodyReader {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut tokio::io::ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        while self.current.is_empty() {
            match self.rx.poll_recv(cx) {
                Poll::Ready(Some(Ok(b))) => self.current = b,
                Poll::Ready(Some(Err(e))) => return Poll::Ready(Err(e)),
                Poll::Ready(None) => return Poll::Ready(Ok(())),
                Poll::Pending => return Poll::Pending,
            }
        }
        let n = buf.remaining().min(self.current.len());
        if n as u64 > self.remaining {
            let limit = self.limit;
            return Poll::Ready(Err(io::Error::new(
                io::ErrorKind::InvalidData,
                format!("the request body exceeds the limit of {limit} bytes"),
            )));
        }
        let chunk = self.current.split_to(n);
        buf.put_slice(&chunk);
        self.remaining -= n as u64;
        Poll::Ready(Ok(()))
    }
}

impl Read for BodyReader {
    fn read(&mut self, out: &mut [u8]) -> io::Result<usize> {
        while self.current.is_empty() {
            match self.rx.blocking_recv() {
                Some(Ok(b)) => self.current = b,
                Some(Err(e)) => return Err(e),
                None => return Ok(0),
            }
        }
        let n = out.len().min(self.current.len());
        if n as u64 > self.remaining {
            return Err(io::Error::new(
                io::ErrorKind::InvalidData,
                format!("the request body exceeds the limit of {} bytes", self.limit),
            ));
        }
        out[..n].copy_from_slice(&self.current[..n]);
        self.current = self.current.slice(n..);
        self.remaining -= n as u64;
        Ok(n)
    }
}

/// Why a whole request body could not be read.
#[derive(Debug, thiserror::Error)]
pub enum BodyError {
    /// More than the limit.
    #[error("the request body is larger than {0} bytes")]
    TooLarge(u64),
    /// Not complete in time.
    #[error("the request body was not complete within {} s", .0.as_secs())]
    TimedOut(Duration),
    /// The connection failed.
    #[error("reading the request body failed: {0}")]
    Io(String),
}

/// Read a whole (small) request body: at most `limit` bytes, within `within`.
pub async fn read_all(
    body: hyper::body::Incoming,
    limit: u64,
    within: Duration,
) -> Result<Vec<u8>, BodyError> {
    let read = async move {
        let mut body = body;
        let mut out = Vec::new();
        while let Some(frame) = body.frame().await {
            let frame = frame.map_err(|e| BodyError::Io(e.to_string()))?;
            if let Ok(data) = frame.into_data() {
                if (out.len() + data.len()) as u64 > limit {
                    drop(out);
                    drain(&mut body, DRAINED).await;
                    return Err(BodyError::TooLarge(limit));
                }
                out.extend_from_slice(&data);
            }
        }
        Ok(out)
    };
    tokio::time::timeout(within, read)
        .await
        .unwrap_or(Err(BodyError::TimedOut(within)))
}

/// How much of an over-limit body is read and dropped before the refusal is answered.
const DRAINED: u64 = 256 << 20;

/// Read and drop up to `max` more bytes of `body`: a client such as git sends its whole
/// request before it reads a word, so an answer given mid-body reaches it as a broken pipe.
/// What is drained is bounded (then the connection closes) and so is the time (the caller's
/// deadline), as web servers linger.
async fn drain(body: &mut hyper::body::Incoming, max: u64) {
    let mut drained = 0u64;
    while drained < max {
        match body.frame().await {
            Some(Ok(frame)) => drained += frame.data_ref().map_or(0, |d| d.len() as u64),
            _ => return,
        }
    }
}

/// A reader that fails once more than `limit` bytes came out of it (a gzip bomb guard).
pub struct Limited<R> {
    inner: R,
    remaining: u64,
    limit: u64,
}

impl<R: Read> Limited<R> {
    pub fn new(inner: R, limit: u64) -> Self {
        Limited {
            inner,
            remaining: limit,
            limit,
        }
    }
}

impl<R: Read> Read for Limited<R> {
    fn read(&mut self, out: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(out)?;
        if n as u64 > self.remaining {
            return Err(io::Error::new(
                io::ErrorKind::InvalidData,
                format!("the request body exceeds the limit of {} bytes", self.limit),
            ));
        }
        self.remaining -= n as u64;
        Ok(n)
    }
}

/// The request body, decompressed when it is gzip-encoded, as a blocking reader. Call it on a
/// blocking thread: a gzip decoder reads the stream's header as it is made.
pub fn decoded<R: Read + Send + 'static>(body: R, gzip: bool, limit: u64) -> Box<dyn Read + Send> {
    if gzip {
        Box::new(Limited::new(flate2::read::MultiGzDecoder::new(body), limit))
    } else {
        Box::new(body)
    }
}
