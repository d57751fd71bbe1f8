//! Push mirrors: the client side of a Smart HTTP push to another git host. Ref discovery and
//! report-status are parsed with our pkt-line reader; the pack comes from the pack writer the
//! server uses for fetches; LFS objects the pushed commits point to go first, through the
//! remote's LFS batch API.

use std::collections::{BTreeMap, HashSet};
use std::time::Duration;

use base64::Engine;
use bytes::Bytes;
use futures_util::{StreamExt, TryStreamExt};
use gix_hash::ObjectId;
use http::Request;
use http_body_util::{BodyExt, StreamBody};
use objectstore::odb::{generate, walk, ObjectDb};
use protocol::pktline::{self, Packet, PktReader};

use crate::client::{full, Body, Client, ClientError};
use crate::config::Mirror;

/// Why a mirror push did not happen (per-ref refusals are results, not errors).
#[derive(Debug, thiserror::Error)]
pub enum MirrorError {
    /// The remote refused the credentials (401/403).
    #[error("the remote refused the credentials ({0})")]
    Auth(u16),
    /// The request failed or the target is not allowed.
    #[error(transparent)]
    Client(#[from] ClientError),
    /// The remote answered something that is not the git protocol.
    #[error("the remote is not a git Smart HTTP server: {0}")]
    Protocol(String),
    /// The remote rejected the pack as a whole.
    #[error("the remote refused the pack: {0}")]
    Unpack(String),
    /// Reading our objects failed.
    #[error("reading the repository failed: {0}")]
    Objects(String),
    /// Uploading LFS objects failed.
    #[error("uploading LFS objects failed: {0}")]
    Lfs(String),
}

/// The remote's answer per ref: `Ok` or its reason for refusing.
pub type RefReport = Vec<(String, Result<(), String>)>;

/// Limits on what a remote may answer.
pub(crate) const MAX_ADVERTISEMENT: usize = 64 << 20;
const MAX_REPORT: usize = 16 << 20;
pub(crate) const MAX_LFS_ANSWER: usize = 16 << 20;
/// LFS objects asked about per batch request.
pub(crate) const LFS_BATCH: usize = 100;

/// A remote's refs and capabilities, from `info/refs?service=git-receive-pack`.
#[derive(Debug, Clone, Default)]
pub struct Advertised {
    /// Ref name to value.
    pub refs: BTreeMap<String, ObjectId>,
    /// The capabilities of the first line.
    pub capabilities: Vec<String>,
}

impl Advertised {
    fn has(&self, cap: &str) -> bool {
        self.capabilities.iter().any(|c| c == cap)
    }

    /// Whether the remote takes objects named by `object_hash`: any format it offers
    /// (`object-format=`, SHA-1 when it names none), as git's `send-pack` checks.
    pub fn takes_format(&self, object_hash: gix_hash::Kind) -> bool {
        let mut offered = self
            .capabilities
            .iter()
            .filter_map(|c| c.strip_prefix("object-format="))
            .peekable();
        match offered.peek() {
            None => object_hash == gix_hash::Kind::Sha1,
            Some(_) => offered.any(|name| name == object_hash.to_string()),
        }
    }
}

/// One ref to set on the remote: the value it must have now, and the new one (null: delete).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Command {
    /// The ref.
    pub name: String,
    /// What the remote must have (null: nothing).
    pub old: ObjectId,
    /// What it gets (null: deleted).
    pub new: ObjectId,
}

/// Another host's repository, with its credentials: a mirror's remote, or an upstream.
pub struct Remote<'a> {
    pub(crate) client: &'a Client,
    url: &'a str,
    username: Option<&'a str>,
    password: Option<&'a str>,
    pub(crate) timeout: Duration,
}

/// A URL's origin: scheme, host (lowercase) and port (the scheme's default when absent).
fn origin(url: &str) -> Option<(String, String, u16)> {
    let uri: http::Uri = url.parse().ok()?;
    let scheme = uri.scheme_str()?.to_ascii_lowercase();
    let host = uri.host()?.to_ascii_lowercase();
    let port = uri.port_u16().or(match scheme.as_str() {
        "https" => Some(443),
        "http" => Some(80),
        _ => None,
    })?;
    Some((scheme, host, port))
}

impl<'a> Remote<'a> {
    /// The remote of `mirror`, reached through `client` with requests of at most `timeout`.
    pub fn new(client: &'a Client, mirror: &'a Mirror, timeout: Duration) -> Self {
        Self::at(
            client,
            &mirror.url,
            mirror.username.as_deref(),
            mirror.password.as_deref(),
            timeout,
        )
    }

    /// The repository at `url`, with a password (or token) and a user name (`git` if none).
    pub fn at(
        client: &'a Client,
        url: &'a str,
        username: Option<&'a str>,
        password: Option<&'a str>,
        timeout: Duration,
    ) -> Self {
        Remote {
            client,
            url,
            username,
            password,
            timeout,
        }
    }

    pub(crate) fn url(&self, path: &str) -> String {
        format!("{}/{path}", self.url.trim_end_matches('/'))
    }

    fn authorization(&self) -> Option<String> {
        let password = self.password?;
        let user = self.username.unwrap_or("git");
        let pair = format!("{user}:{password}");
        Some(format!(
            "Basic {}",
            base64::engine::general_purpose::STANDARD.encode(pair)
        ))
    }

    pub(crate) fn request(&self, method: http::Method, url: &str) -> http::request::Builder {
        let mut req = Request::builder().method(method).uri(url).header(
            "user-agent",
            concat!("git/2.0 (artifact-git/", env!("CARGO_PKG_VERSION"), ")"),
        );
        if let Some(auth) = self.authorization() {
            req = req.header(http::header::AUTHORIZATION, auth);
        }
        req
    }

    /// The remote's refs.
    pub async fn discover(&self) -> Result<Advertised, MirrorError> {
        let url = self.url("info/refs?service=git-receive-pack");
        let req = self
            .request(http::Method::GET, &url)
            .body(full(Bytes::new()))
            .map_err(|e| MirrorError::Protocol(e.to_string()))?;
        let answer = self
            .client
            .send(req, self.timeout, MAX_ADVERTISEMENT)
            .await?;
        match answer.status.as_u16() {
            200 => {}
            s @ (401 | 403) => return Err(MirrorError::Auth(s)),
            s => return Err(MirrorError::Protocol(format!("info/refs answered {s}"))),
        }
        parse_advertisement(&answer.body)
    }

    /// Send `commands` with a pack of `objects` from `pack_file` (`None`: no pack, every
    /// command a delete): each ref's result, `ok` or the remote's reason.
    pub async fn push(
        &self,
        commands: &[Command],
        pack_file: Option<&std::path::Path>,
    ) -> Result<RefReport, MirrorError> {
        let mut head = Vec::new();
        for (i, c) in commands.iter().enumerate() {
            let line = if i == 0 {
                // A SHA-256 push says so (a SHA-1 one need not: it is every server's default).
                let format = match c.new.kind() {
                    gix_hash::Kind::Sha1 => String::new(),
                    other => format!(" object-format={other}"),
                };
                format!(
                    "{} {} {}\0report-status agent=artifact-git{format}\n",
                    c.old, c.new, c.name
                )
            } else {
                format!("{} {} {}\n", c.old, c.new, c.name)
            };
            pktline::write_data(&mut head, line.as_bytes());
        }
        pktline::write_flush(&mut head);
        let (body, length): (Body, u64) = match pack_file {
            None => (full(head.clone()), head.len() as u64),
            Some(path) => {
                let file = tokio::fs::File::open(path)
                    .await
                    .map_err(|e| MirrorError::Objects(e.to_string()))?;
                let size = file
                    .metadata()
                    .await
                    .map_err(|e| MirrorError::Objects(e.to_string()))?
                    .len();
                let head_len = head.len() as u64;
                let first = futures_util::stream::once(async move {
                    Ok::<Bytes, std::io::Error>(Bytes::from(head))
                });
                let rest = tokio_util::io::ReaderStream::with_capacity(file, 256 << 10);
                let frames = first.chain(rest).map_ok(hyper::body::Frame::data);
                (
                    BodyExt::boxed_unsync(StreamBody::new(frames)),
                    head_len + size,
                )
            }
        };
        let req = self
            .request(http::Method::POST, &self.url("git-receive-pack"))
            .header(
                http::header::CONTENT_TYPE,
                "application/x-git-receive-pack-request",
            )
            .header(
                http::header::ACCEPT,
                "application/x-git-receive-pack-result",
            )
            .header(http::header::CONTENT_LENGTH, length)
            .body(body)
            .map_err(|e| MirrorError::Protocol(e.to_string()))?;
        // A pack may take a while to send: a minute per 100 MiB beyond the request timeout.
        let timeout = self.timeout + Duration::from_secs(60 * (length / (100 << 20) + 1));
        let answer = self.client.send(req, timeout, MAX_REPORT).await?;
        match answer.status.as_u16() {
            200 => {}
            s @ (401 | 403) => return Err(MirrorError::Auth(s)),
            s => {
                return Err(MirrorError::Protocol(format!(
                    "git-receive-pack answered {s}"
                )))
            }
        }
        parse_report(&answer.body)
    }

    /// Upload LFS objects (oid, size) the remote does not have, from `store`.
    pub async fn upload_lfs(
        &self,
        store: &lfs::Store,
        objects: &[lfs::Pointer],
    ) -> Result<usize, MirrorError> {
        let mut uploaded = 0;
        for chunk in objects.chunks(LFS_BATCH) {
            let listed: Vec<_> = chunk
                .iter()
                .map(|p| serde_json::json!({"oid": p.oid.as_str(), "size": p.size}))
                .collect();
            let body = serde_json::json!({"operation": "upload", "transfers": ["basic"], "objects": listed});
            let req = self
                .request(http::Method::POST, &self.url("info/lfs/objects/batch"))
                .header(http::header::CONTENT_TYPE, lfs::api::MEDIA_TYPE)
                .header(http::header::ACCEPT, lfs::api::MEDIA_TYPE)
                .body(full(body.to_string()))
                .map_err(|e| MirrorError::Lfs(e.to_string()))?;
            let answer = self.client.send(req, self.timeout, MAX_LFS_ANSWER).await?;
            match answer.status.as_u16() {
                200 => {}
                s @ (401 | 403) => return Err(MirrorError::Auth(s)),
                s => {
                    return Err(MirrorError::Lfs(format!(
                        "the remote's LFS batch API answered {s}"
                    )))
                }
            }
            let parsed: serde_json::Value = serde_json::from_slice(&answer.body)
                .map_err(|e| MirrorError::Lfs(format!("unreadable batch answer: {e}")))?;
            for object in parsed["objects"]
                .as_array()
                .map(Vec::as_slice)
                .unwrap_or_default()
            {
                if let Some(error) = object.get("error") {
                    return Err(MirrorError::Lfs(format!(
                        "the remote refused {}: {}",
                        object["oid"], error["message"]
                    )));
                }
                let Some(upload) = object["actions"].get("upload") else {
                    continue; // The remote has it.
                };
                let oid = object["oid"]
                    .as_str()
                    .and_then(lfs::Oid::parse)
                    .ok_or_else(|| {
                        MirrorError::Lfs("the batch answer names an invalid oid".into())
                    })?;
                let authenticated = object["authenticated"].as_bool().unwrap_or(false);
                self.lfs_action(store, &oid, upload, authenticated).await?;
                if let Some(verify) = object["actions"].get("verify") {
                    self.lfs_verify(
                        &oid,
                        object["size"].as_u64().unwrap_or(0),
                        verify,
                        authenticated,
                    )
                    .await?;
                }
                uploaded += 1;
            }
        }
        Ok(uploaded)
    }

    pub(crate) fn action_request(
        &self,
        method: http::Method,
        action: &serde_json::Value,
        authenticated: bool,
    ) -> Result<http::request::Builder, MirrorError> {
        let href = action["href"]
            .as_str()
            .ok_or_else(|| MirrorError::Lfs("an action has no href".into()))?;
        self.client.check_url(href)?;
        let has_auth = action["header"]
            .as_object()
            .is_some_and(|h| h.keys().any(|k| k.eq_ignore_ascii_case("authorization")));
        // Credentials never leave their origin: an action on another host gets only the
        // headers the remote gave for it (git-lfs's rule), whatever the remote's answer says.
        let same_origin = origin(href).is_some() && origin(href) == origin(self.url);
        let mut req = if authenticated || has_auth || !same_origin {
            Request::builder().method(method).uri(href)
        } else {
            self.request(method, href)
        };
        for (k, v) in action["header"].as_object().into_iter().flatten() {
            if let Some(v) = v.as_str() {
                req = req.header(k.as_str(), v);
            }
        }
        Ok(req)
    }

    async fn lfs_action(
        &self,
        store: &lfs::Store,
        oid: &lfs::Oid,
        action: &serde_json::Value,
        authenticated: bool,
    ) -> Result<(), MirrorError> {
        let Some((stream, size)) = store
            .send(oid)
            .await
            .map_err(|e| MirrorError::Lfs(e.to_string()))?
        else {
            return Err(MirrorError::Lfs(format!("object {oid} is not stored here")));
        };
        let frames = tokio_util::io::ReaderStream::with_capacity(stream, 256 << 10)
            .map_ok(hyper::body::Frame::data);
        let req = self
            .action_request(http::Method::PUT, action, authenticated)?
            .header(http::header::CONTENT_TYPE, "application/octet-stream")
            .header(http::header::CONTENT_LENGTH, size)
            .body(BodyExt::boxed_unsync(StreamBody::new(frames)))
            .map_err(|e| MirrorError::Lfs(e.to_string()))?;
        let timeout = self.timeout + Duration::from_secs(60 * (size / (100 << 20) + 1));
        let answer = self.client.send(req, timeout, 64 << 10).await?;
        if !answer.status.is_success() {
            return Err(MirrorError::Lfs(format!(
                "uploading {oid} answered {}",
                answer.status
            )));
        }
        Ok(())
    }

    async fn lfs_verify(
        &self,
        oid: &lfs::Oid,
        size: u64,
        action: &serde_json::Value,
        authenticated: bool,
    ) -> Result<(), MirrorError> {
        let body = serde_json::json!({"oid": oid.as_str(), "size": size}).to_string();
        let req = self
            .action_request(http::Method::POST, action, authenticated)?
            .header(http::header::CONTENT_TYPE, lfs::api::MEDIA_TYPE)
            .header(http::header::ACCEPT, lfs::api::MEDIA_TYPE)
            .body(full(body))
            .map_err(|e| MirrorError::Lfs(e.to_string()))?;
        let answer = self.client.send(req, self.timeout, 64 << 10).await?;
        if !answer.status.is_success() {
            return Err(MirrorError::Lfs(format!(
                "verifying {oid} answered {}",
                answer.status
            )));
        }
        Ok(())
    }
}

pub(crate) fn parse_advertisement(body: &[u8]) -> Result<Advertised, MirrorError> {
    let bad = |m: &str| MirrorError::Protocol(m.to_owned());
    let mut reader = PktReader::new(body);
    let mut out = Advertised::default();
    let mut first = true;
    let mut saw_service = false;
    loop {
        let packet = reader
            .read()
            .map_err(|e| MirrorError::Protocol(e.to_string()))?;
        let line = match packet {
            None => break,
            Some(Packet::Flush) => {
                if saw_service && first {
                    continue; // The flush after `# service=...`.
                }
                break;
            }
            Some(Packet::Data(d)) => d.strip_suffix(b"\n").unwrap_or(d).to_vec(),
            Some(_) => return Err(bad("unexpected packet")),
        };
        if line.starts_with(b"# service=") {
            saw_service = true;
            continue;
        }
        let (refpart, caps) = match line.iter().position(|b| *b == 0) {
            Some(nul) => (&line[..nul], Some(&line[nul + 1..])),
            None => (&line[..], None),
        };
        if let (true, Some(caps)) = (first, caps) {
            out.capabilities = String::from_utf8_lossy(caps)
                .split_whitespace()
                .map(str::to_owned)
                .collect();
        }
        first = false;
        let text = std::str::from_utf8(refpart).map_err(|_| bad("a ref line is not UTF-8"))?;
        let (id, name) = text
            .split_once(' ')
            .ok_or_else(|| bad("a ref line has no name"))?;
        let id =
            ObjectId::from_hex(id.as_bytes()).map_err(|_| bad("a ref line has no object id"))?;
        if name == "capabilities^{}" || name.ends_with("^{}") {
            continue;
        }
        out.refs.insert(name.to_owned(), id);
    }
    if !saw_service && out.refs.is_empty() && out.capabilities.is_empty() {
        return Err(bad("no ref advertisement"));
    }
    Ok(out)
}

fn parse_report(body: &[u8]) -> Result<RefReport, MirrorError> {
    let mut reader = PktReader::new(body);
    let mut results = Vec::new();
    let mut unpacked = false;
    while let Some(packet) = reader
        .read()
        .map_err(|e| MirrorError::Protocol(e.to_string()))?
    {
        let Packet::Data(data) = packet else { break };
        let line = String::from_utf8_lossy(data.strip_suffix(b"\n").unwrap_or(data)).into_owned();
        if let Some(status) = line.strip_prefix("unpack ") {
            if status != "ok" {
                return Err(MirrorError::Unpack(status.to_owned()));
            }
            unpacked = true;
        } else if let Some(name) = line.strip_prefix("ok ") {
            results.push((name.to_owned(), Ok(())));
        } else if let Some(rest) = line.strip_prefix("ng ") {
            let (name, reason) = rest.split_once(' ').unwrap_or((rest, "refused"));
            results.push((name.to_owned(), Err(reason.to_owned())));
        } else if let Some(message) = line.strip_prefix("ERR ") {
            return Err(MirrorError::Unpack(message.to_owned()));
        }
    }
    if !unpacked {
        return Err(MirrorError::Protocol(
            "no report-status in the answer".into(),
        ));
    }
    Ok(results)
}

/// The pack for `commands`: every object the new values reach that the remote's advertised
/// values do not, written to a file in `dir`; and the LFS pointers among its blobs. Blocking.
pub fn build_pack(
    db: &ObjectDb,
    commands: &[Command],
    remote_has: &[ObjectId],
    ofs_delta: bool,
    dir: &std::path::Path,
) -> Result<(tempfile::NamedTempFile, Vec<lfs::Pointer>), MirrorError> {
    let err = |e: &dyn std::fmt::Display| MirrorError::Objects(e.to_string());
    let reader = db.reader();
    let wants: Vec<ObjectId> = commands
        .iter()
        .map(|c| c.new)
        .filter(|n| !n.is_null())
        .collect();
    let haves: Vec<ObjectId> = remote_has
        .iter()
        .copied()
        .filter(|h| db.contains(h))
        .collect();
    let selection = walk::select(&reader, &wants, &haves, &HashSet::new(), None, &mut |_| {})
        .map_err(|e| err(&e))?;
    let mut pointers = Vec::new();
    let mut buf = Vec::new();
    for id in &selection.objects {
        if let Some((gix_object::Kind::Blob, size)) = reader.header(id).map_err(|e| err(&e))? {
            if size as usize <= lfs::MAX_POINTER_SIZE {
                reader.read(id, &mut buf).map_err(|e| err(&e))?;
                if let Some(pointer) = lfs::Pointer::parse(&buf) {
                    pointers.push(pointer);
                }
            }
        }
    }
    pointers.sort_by(|a, b| a.oid.cmp(&b.oid));
    pointers.dedup();
    let file = tempfile::NamedTempFile::new_in(dir).map_err(|e| err(&e))?;
    let mut out = std::io::BufWriter::new(file.as_file());
    generate::write_pack(
        db,
        &selection.objects,
        &HashSet::new(),
        generate::Options {
            ofs_delta,
            thin: false,
        },
        &mut out,
        &mut |_, _| {},
    )
    .map_err(|e| err(&e))?;
    std::io::Write::flush(&mut out).map_err(|e| err(&e))?;
    drop(out);
    Ok((file, pointers))
}

/// Whether the advertised capabilities take OFS deltas.
pub fn takes_ofs_delta(advertised: &Advertised) -> bool {
    advertised.has("ofs-delta")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pkt(out: &mut Vec<u8>, line: &[u8]) {
        pktline::write_data(out, line);
    }

    #[test]
    fn advertisements_and_reports_are_read() -> Result<(), MirrorError> {
        let a = "1".repeat(40);
        let mut body = Vec::new();
        pkt(&mut body, b"# service=git-receive-pack\n");
        pktline::write_flush(&mut body);
        pkt(
            &mut body,
            format!("{a} refs/heads/main\0report-status ofs-delta atomic\n").as_bytes(),
        );
        pkt(&mut body, format!("{a} refs/tags/v1\n").as_bytes());
        pktline::write_flush(&mut body);
        let adv = parse_advertisement(&body)?;
        assert_eq!(adv.refs.len(), 2);
        assert!(takes_ofs_delta(&adv));
        // An empty repository.
        let mut empty = Vec::new();
        pkt(&mut empty, b"# service=git-receive-pack\n");
        pktline::write_flush(&mut empty);
        pkt(
            &mut empty,
            format!("{} capabilities^{{}}\0report-status\n", "0".repeat(40)).as_bytes(),
        );
        pktline::write_flush(&mut empty);
        assert!(parse_advertisement(&empty)?.refs.is_empty());
        assert!(parse_advertisement(b"<html>nope</html>").is_err());
        let mut report = Vec::new();
        pkt(&mut report, b"unpack ok\n");
        pkt(&mut report, b"ok refs/heads/main\n");
        pkt(&mut report, b"ng refs/heads/dev fetch first\n");
        pktline::write_flush(&mut report);
        let results = parse_report(&report)?;
        assert_eq!(results[0], ("refs/heads/main".into(), Ok(())));
        assert_eq!(
            results[1],
            ("refs/heads/dev".into(), Err("fetch first".into()))
        );
        let mut failed = Vec::new();
        pkt(&mut failed, b"unpack index-pack failed\n");
        assert!(matches!(parse_report(&failed), Err(MirrorError::Unpack(_))));
        Ok(())
    }

    /// One HTTP/1.1 exchange on `listener`: the request's head (lowercased), then `answer`.
    async fn answer_once(listener: &tokio::net::TcpListener, answer: String) -> String {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        let (mut socket, _) = listener.accept().await.unwrap_or_else(|e| panic!("{e}"));
        let mut seen = Vec::new();
        let mut buf = [0u8; 8192];
        // The head, then the body its Content-Length announces.
        let body_start = loop {
            let n = socket.read(&mut buf).await.unwrap_or(0);
            seen.extend_from_slice(&buf[..n]);
            if let Some(at) = seen.windows(4).position(|w| w == b"\r\n\r\n") {
                break at + 4;
            }
            if n == 0 {
                break seen.len();
            }
        };
        let head = String::from_utf8_lossy(&seen[..body_start]).to_ascii_lowercase();
        let length: usize = head
            .lines()
            .find_map(|l| l.strip_prefix("content-length:"))
            .and_then(|v| v.trim().parse().ok())
            .unwrap_or(0);
        while seen.len() < body_start + length {
            let n = socket.read(&mut buf).await.unwrap_or(0);
            if n == 0 {
                break;
            }
            seen.extend_from_slice(&buf[..n]);
        }
        let _ = socket.write_all(answer.as_bytes()).await;
        let _ = socket.shutdown().await;
        head
    }

    fn ok_json(body: &str) -> String {
        format!(
            "HTTP/1.1 200 OK\r\ncontent-type: application/vnd.git-lfs+json\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
            body.len()
        )
    }

    /// A remote whose LFS batch answer sends the upload to another host: the mirror's
    /// credentials go to the remote's own origin only; the other host sees no
    /// `Authorization`, only the headers the remote gave for it.
    #[tokio::test]
    async fn credentials_never_leave_their_origin() -> Result<(), Box<dyn std::error::Error>> {
        let remote = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
        let other = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
        let mirror = Mirror {
            id: "mirror-0123456789abcdef".into(),
            url: format!("http://{}/ws/git/repo", remote.local_addr()?),
            username: Some("bot".into()),
            password: Some("hunter2-secret".into()),
            force: false,
            created: 0,
        };
        let bucket: std::sync::Arc<dyn objectstore::Bucket> =
            std::sync::Arc::new(objectstore::MemoryBucket::new());
        let keys = objectstore::layout::RepoKeys::at("ws/artifacts/repo/git/");
        let store = lfs::Store::new(bucket, keys, lfs::Transfer::default());
        let data = b"a large model".to_vec();
        let pointer = lfs::Pointer {
            oid: lfs::Oid::of(&data),
            size: data.len() as u64,
        };
        let body: objectstore::bucket::ByteStream = Box::pin(std::io::Cursor::new(data));
        store.receive(&pointer.oid, pointer.size, body).await?;
        let batch = format!(
            r#"{{"objects":[{{"oid":"{}","size":{},"actions":{{"upload":{{"href":"http://{}/upload","header":{{"X-Upload-Token":"given-by-remote"}}}}}}}}]}}"#,
            pointer.oid.as_str(),
            pointer.size,
            other.local_addr()?
        );
        let client = crate::client::Client::new(true)?;
        let to_remote = Remote::new(&client, &mirror, Duration::from_secs(10));
        let (uploaded, remote_head, other_head) = tokio::join!(
            to_remote.upload_lfs(&store, std::slice::from_ref(&pointer)),
            answer_once(&remote, ok_json(&batch)),
            answer_once(&other, ok_json("")),
        );
        assert_eq!(uploaded?, 1);
        assert!(
            remote_head.contains("authorization: basic"),
            "{remote_head}"
        );
        assert!(!other_head.contains("authorization"), "{other_head}");
        assert!(
            other_head.contains("x-upload-token: given-by-remote"),
            "{other_head}"
        );
        Ok(())
    }
}
