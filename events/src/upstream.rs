//! Upstreams: the client side of a fetch from another git host, and what a sync leaves behind.
//!
//! - [`Remote::discover_fetch`] reads the remote's refs: protocol v2 (`ls-refs`, with the
//!   default branch as a symref) when the remote speaks it, the v0 advertisement otherwise.
//! - [`Remote::fetch`] asks for a pack in one stateless round: the wanted tips, our own tips
//!   as `have`s and `done` (the remote leaves out everything our tips reach, so one new
//!   commit costs one small pack whenever what we have is an ancestor of what it has, which
//!   is what following means); the answer is read through [`PackReader`], which takes the
//!   pack out of side-band 1 and turns a side-band 3 message into an error.
//! - [`Remote::download_lfs`] fetches LFS objects through the remote's batch API into our
//!   store, which keeps them only if their SHA-256 and size match.
//! - [`verify_webhook`] checks an inbound webhook's signature (GitHub/Gitea
//!   `X-Hub-Signature-256`, GitLab `X-Gitlab-Token`, Standard Webhooks `webhook-signature`
//!   within its timestamp tolerance) before anything else happens.
//! - [`UpstreamState`] is a sync's status in the bucket, changed only by compare-and-swap
//!   ([`UpstreamStates`]): the lease that lets one replica at a time sync a repository's
//!   upstream, the time a sync was last asked for, and each followed ref's outcome.

use std::collections::BTreeMap;
use std::io::Read;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use futures_util::{StreamExt, TryStreamExt};
use gix_hash::ObjectId;
use hmac::{Hmac, KeyInit, Mac};
use objectstore::bucket::{self, Bucket, PutMode};
use objectstore::layout::RepoKeys;
use protocol::pktline::{self, Packet, PktReader};
use serde::{Deserialize, Serialize};

use crate::client::full;
use crate::mirror::{
    parse_advertisement, MirrorError, Remote, LFS_BATCH, MAX_ADVERTISEMENT, MAX_LFS_ANSWER,
};

/// Refs a remote may advertise at most.
pub const MAX_REFS: usize = 100_000;
/// How long a webhook's timestamp may be off (Standard Webhooks' tolerance).
pub const WEBHOOK_TOLERANCE: Duration = Duration::from_secs(300);
/// Delivery ids remembered per upstream, to refuse a replayed webhook.
const REMEMBERED_DELIVERIES: usize = 100;

/// A remote's refs, as a fetch sees them.
#[derive(Debug, Clone)]
pub struct FetchAdvertised {
    /// Ref name to value (tags as they are, not peeled).
    pub refs: BTreeMap<String, ObjectId>,
    /// The branch the remote's `HEAD` names.
    pub head: Option<String>,
    /// Whether the remote speaks protocol v2.
    pub v2: bool,
    /// The hash that names the remote's objects (its `object-format`; SHA-1 when it names
    /// none). A fetch asks in it, and every advertised id has its length.
    pub object_hash: gix_hash::Kind,
    /// The v0 capabilities.
    capabilities: Vec<String>,
}

impl Default for FetchAdvertised {
    fn default() -> Self {
        FetchAdvertised {
            refs: BTreeMap::new(),
            head: None,
            v2: false,
            object_hash: gix_hash::Kind::Sha1,
            capabilities: Vec::new(),
        }
    }
}

/// The object format a remote names in an `object-format=` capability (the first one, as
/// git reads it); SHA-1 when it names none, an error for a format we do not know.
fn object_format<'a>(
    mut capabilities: impl Iterator<Item = &'a str>,
) -> Result<gix_hash::Kind, MirrorError> {
    match capabilities.find_map(|c| c.strip_prefix("object-format=")) {
        None => Ok(gix_hash::Kind::Sha1),
        Some(name) => objectstore::format::by_name(name).ok_or_else(|| {
            let shown: String = name.chars().take(40).collect();
            MirrorError::Protocol(format!("the remote's object format {shown:?} is unknown"))
        }),
    }
}

/// The line a request names its object format with, when it is not SHA-1 (a remote that
/// knows nothing of formats speaks SHA-1 only, and may not know the capability).
fn format_request(object_hash: gix_hash::Kind) -> Option<String> {
    (object_hash != gix_hash::Kind::Sha1).then(|| format!("object-format={object_hash}"))
}

impl Remote<'_> {
    /// The remote's refs for a fetch (`info/refs?service=git-upload-pack`).
    pub async fn discover_fetch(&self) -> Result<FetchAdvertised, MirrorError> {
        let url = self.url("info/refs?service=git-upload-pack");
        let req = self
            .request(http::Method::GET, &url)
            .header("git-protocol", "version=2")
            .body(full(Bytes::new()))
            .map_err(|e| MirrorError::Protocol(e.to_string()))?;
        let answer = self
            .client
            .send(req, self.timeout, MAX_ADVERTISEMENT)
            .await?;
        check_status(answer.status.as_u16(), "info/refs")?;
        match parse_fetch_advertisement(&answer.body)? {
            Some(advertised) => Ok(advertised),
            None => self.ls_refs(v2_object_format(&answer.body)?).await,
        }
    }

    /// Protocol v2 `ls-refs` of branches, tags and `HEAD`, in `object_hash` (the format the
    /// capability advertisement named).
    async fn ls_refs(&self, object_hash: gix_hash::Kind) -> Result<FetchAdvertised, MirrorError> {
        let mut body = Vec::new();
        pktline::write_line(&mut body, "command=ls-refs");
        pktline::write_line(&mut body, "agent=artifact-git");
        if let Some(line) = format_request(object_hash) {
            pktline::write_line(&mut body, &line);
        }
        pktline::write_delim(&mut body);
        for arg in [
            "symrefs",
            "ref-prefix HEAD",
            "ref-prefix refs/heads/",
            "ref-prefix refs/tags/",
        ] {
            pktline::write_line(&mut body, arg);
        }
        pktline::write_flush(&mut body);
        let answer = self
            .client
            .send(self.upload_pack(body)?, self.timeout, MAX_ADVERTISEMENT)
            .await?;
        check_status(answer.status.as_u16(), "ls-refs")?;
        parse_ls_refs(&answer.body, object_hash)
    }

    fn upload_pack(
        &self,
        body: Vec<u8>,
    ) -> Result<http::Request<crate::client::Body>, MirrorError> {
        self.request(http::Method::POST, &self.url("git-upload-pack"))
            .header(
                http::header::CONTENT_TYPE,
                "application/x-git-upload-pack-request",
            )
            .header(http::header::ACCEPT, "application/x-git-upload-pack-result")
            .header("git-protocol", "version=2")
            .body(full(body))
            .map_err(|e| MirrorError::Protocol(e.to_string()))
    }

    /// Ask for the objects `wants` reach and `haves` do not: the answer's body, streamed
    /// (read it with [`PackReader`]). The remote may take `idle` to start answering and
    /// between reads (a pack is computed before it is sent), and all of it must arrive by
    /// `deadline` (a slow drip ends there).
    pub async fn fetch(
        &self,
        advertised: &FetchAdvertised,
        wants: &[ObjectId],
        haves: &[ObjectId],
        idle: Duration,
        deadline: tokio::time::Instant,
    ) -> Result<impl tokio::io::AsyncRead + Send + Unpin + 'static, MirrorError> {
        let mut body = Vec::new();
        if advertised.v2 {
            pktline::write_line(&mut body, "command=fetch");
            pktline::write_line(&mut body, "agent=artifact-git");
            if let Some(line) = format_request(advertised.object_hash) {
                pktline::write_line(&mut body, &line);
            }
            pktline::write_delim(&mut body);
            for arg in ["ofs-delta", "no-progress"] {
                pktline::write_line(&mut body, arg);
            }
        }
        for (i, want) in wants.iter().enumerate() {
            let caps = match (advertised.v2, i) {
                (false, 0) => {
                    let offered = |c: &str| advertised.capabilities.iter().any(|o| o == c);
                    let mut caps: Vec<&str> = ["side-band-64k", "ofs-delta", "no-progress"]
                        .into_iter()
                        .filter(|c| offered(c))
                        .collect();
                    caps.push("agent=artifact-git");
                    let format = format_request(advertised.object_hash);
                    caps.extend(format.as_deref());
                    format!(" {}", caps.join(" "))
                }
                _ => String::new(),
            };
            pktline::write_line(&mut body, &format!("want {want}{caps}"));
        }
        if !advertised.v2 {
            pktline::write_flush(&mut body);
        }
        for have in haves {
            pktline::write_line(&mut body, &format!("have {have}"));
        }
        pktline::write_line(&mut body, "done");
        if advertised.v2 {
            pktline::write_flush(&mut body);
        }
        let req = self.upload_pack(body)?;
        let (status, incoming) = self.client.open(req, idle).await?;
        check_status(status.as_u16(), "git-upload-pack")?;
        let frames = http_body_util::BodyStream::new(incoming)
            .map_ok(|frame| frame.into_data().unwrap_or_default())
            .map_err(std::io::Error::other);
        let timed_out = |why: String| Err(std::io::Error::new(std::io::ErrorKind::TimedOut, why));
        let idle_bounded = futures_util::stream::unfold(Some(frames), move |frames| async move {
            let mut frames = frames?;
            let wait = idle.min(deadline.saturating_duration_since(tokio::time::Instant::now()));
            match tokio::time::timeout(wait, frames.next()).await {
                Ok(Some(item)) => Some((item, Some(frames))),
                Ok(None) => None,
                Err(_) if tokio::time::Instant::now() >= deadline => {
                    Some((timed_out("the pack did not arrive in time".into()), None))
                }
                Err(_) => Some((
                    timed_out(format!("the remote sent nothing for {} s", idle.as_secs())),
                    None,
                )),
            }
        });
        Ok(tokio_util::io::StreamReader::new(Box::pin(idle_bounded)))
    }

    /// Fetch the LFS objects `pointers` name that `store` lacks through the remote's batch
    /// API; each is kept only if it hashes to its id. How many were fetched, and their bytes.
    pub async fn download_lfs(
        &self,
        store: &lfs::Store,
        pointers: &[lfs::Pointer],
    ) -> Result<(usize, u64), MirrorError> {
        let mut missing = Vec::new();
        for p in pointers {
            let stored = store.stored_size(&p.oid).await;
            if stored.map_err(|e| MirrorError::Lfs(e.to_string()))? != Some(p.size) {
                missing.push(p);
            }
        }
        let (mut fetched, mut bytes) = (0, 0);
        for chunk in missing.chunks(LFS_BATCH) {
            let listed: Vec<_> = chunk
                .iter()
                .map(|p| serde_json::json!({"oid": p.oid.as_str(), "size": p.size}))
                .collect();
            let body = serde_json::json!({"operation": "download", "transfers": ["basic"], "objects": listed});
            let req = self
                .request(http::Method::POST, &self.url("info/lfs/objects/batch"))
                .header(http::header::CONTENT_TYPE, lfs::api::MEDIA_TYPE)
                .header(http::header::ACCEPT, lfs::api::MEDIA_TYPE)
                .body(full(body.to_string()))
                .map_err(|e| MirrorError::Lfs(e.to_string()))?;
            let answer = self.client.send(req, self.timeout, MAX_LFS_ANSWER).await?;
            check_status(answer.status.as_u16(), "the LFS batch API")?;
            let parsed: serde_json::Value = serde_json::from_slice(&answer.body)
                .map_err(|e| MirrorError::Lfs(format!("unreadable batch answer: {e}")))?;
            for p in chunk {
                let object = (parsed["objects"].as_array().into_iter().flatten())
                    .find(|o| o["oid"].as_str() == Some(p.oid.as_str()))
                    .ok_or_else(|| {
                        MirrorError::Lfs(format!("the remote did not answer for {}", p.oid))
                    })?;
                if let Some(error) = object.get("error") {
                    return Err(MirrorError::Lfs(format!(
                        "the remote has no {}: {}",
                        p.oid, error["message"]
                    )));
                }
                let action = &object["actions"]["download"];
                let authenticated = object["authenticated"].as_bool().unwrap_or(false);
                let req = self
                    .action_request(http::Method::GET, action, authenticated)?
                    .body(full(Bytes::new()))
                    .map_err(|e| MirrorError::Lfs(e.to_string()))?;
                let timeout = self.timeout + Duration::from_secs(60 * (p.size / (100 << 20) + 1));
                let (status, incoming) = self.client.open(req, timeout).await?;
                if !status.is_success() {
                    return Err(MirrorError::Lfs(format!(
                        "downloading {} answered {status}",
                        p.oid
                    )));
                }
                let stream = http_body_util::BodyStream::new(incoming)
                    .map_ok(|frame| frame.into_data().unwrap_or_default())
                    .map_err(std::io::Error::other);
                let body: objectstore::bucket::ByteStream =
                    Box::pin(tokio_util::io::StreamReader::new(Box::pin(stream)));
                let received = tokio::time::timeout(timeout, store.receive(&p.oid, p.size, body));
                match received.await {
                    Ok(Ok(())) => {
                        fetched += 1;
                        bytes += p.size;
                    }
                    Ok(Err(e)) => return Err(MirrorError::Lfs(format!("{}: {e}", p.oid))),
                    Err(_) => {
                        return Err(MirrorError::Lfs(format!("downloading {} timed out", p.oid)))
                    }
                }
            }
        }
        Ok((fetched, bytes))
    }
}

/// A protocol v2 `ls-refs` answer (with `symrefs`) in `object_hash`: every ref name and id
/// checked, at most [`MAX_REFS`].
pub fn parse_ls_refs(
    body: &[u8],
    object_hash: gix_hash::Kind,
) -> Result<FetchAdvertised, MirrorError> {
    let bad = |m: &str| MirrorError::Protocol(format!("ls-refs: {m}"));
    let mut out = FetchAdvertised {
        v2: true,
        object_hash,
        ..FetchAdvertised::default()
    };
    let mut reader = PktReader::new(body);
    while let Some(Packet::Data(d)) = reader.read().map_err(|e| bad(&e.to_string()))? {
        let line = String::from_utf8_lossy(d).trim_end().to_owned();
        let mut parts = line.split(' ');
        let (id, name) = (parts.next().unwrap_or(""), parts.next().unwrap_or(""));
        let id = ObjectId::from_hex(id.as_bytes())
            .ok()
            .filter(|id| id.kind() == object_hash)
            .ok_or_else(|| bad("a line has no object id of the remote's format"))?;
        if name == "HEAD" {
            out.head = parts.find_map(|a| a.strip_prefix("symref-target:").map(str::to_owned));
            continue;
        }
        refs::validate_ref_name(name).map_err(|e| bad(&format!("{name:?}: {e}")))?;
        out.refs.insert(name.to_owned(), id);
        check_count(out.refs.len())?;
    }
    Ok(out)
}

/// A v0 `info/refs?service=git-upload-pack` answer; `None` when it is a v2 capability
/// advertisement (ask `ls-refs` then).
pub fn parse_fetch_advertisement(body: &[u8]) -> Result<Option<FetchAdvertised>, MirrorError> {
    if speaks_v2(body) {
        return Ok(None);
    }
    let advertised = parse_advertisement(body)?;
    let head = advertised
        .capabilities
        .iter()
        .find_map(|c| c.strip_prefix("symref=HEAD:"))
        .map(str::to_owned);
    let object_hash = object_format(advertised.capabilities.iter().map(String::as_str))?;
    let mut refs = advertised.refs;
    refs.remove("HEAD");
    check_count(refs.len())?;
    if refs.values().any(|id| id.kind() != object_hash) {
        return Err(MirrorError::Protocol(format!(
            "the remote advertised an id that is not {object_hash}"
        )));
    }
    Ok(Some(FetchAdvertised {
        refs,
        head,
        v2: false,
        object_hash,
        capabilities: advertised.capabilities,
    }))
}

/// The object format a v2 capability advertisement names.
pub fn v2_object_format(body: &[u8]) -> Result<gix_hash::Kind, MirrorError> {
    let mut reader = PktReader::new(body);
    let mut lines = Vec::new();
    while let Ok(Some(Packet::Data(d))) = reader.read() {
        if lines.len() >= 64 {
            break;
        }
        lines.push(String::from_utf8_lossy(d).trim_end().to_owned());
    }
    object_format(lines.iter().map(String::as_str))
}

fn check_status(status: u16, what: &str) -> Result<(), MirrorError> {
    match status {
        200 => Ok(()),
        401 | 403 => Err(MirrorError::Auth(status)),
        s => Err(MirrorError::Protocol(format!("{what} answered {s}"))),
    }
}

fn check_count(n: usize) -> Result<(), MirrorError> {
    match n > MAX_REFS {
        true => Err(MirrorError::Protocol(format!(
            "the remote has more than {MAX_REFS} refs"
        ))),
        false => Ok(()),
    }
}

/// Whether an `info/refs` answer is a protocol v2 capability advertisement.
fn speaks_v2(body: &[u8]) -> bool {
    let mut reader = PktReader::new(body);
    for _ in 0..3 {
        match reader.read() {
            Ok(Some(Packet::Data(d))) if d.starts_with(b"version 2") => return true,
            Ok(Some(Packet::Data(d))) if d.starts_with(b"# service=") => continue,
            Ok(Some(Packet::Flush)) => continue,
            _ => return false,
        }
    }
    false
}

/// The pack inside a fetch's answer: the lines before it are skipped (v0 `NAK`/`ACK`, v2
/// section headers up to `packfile`), then side-band 1 is the pack, 2 is progress (dropped), 3
/// an error the remote gives; a flush ends it.
pub struct PackReader<R> {
    lines: PktReader<R>,
    started: bool,
    pending: Vec<u8>,
    at: usize,
    done: bool,
}

impl<R: Read> PackReader<R> {
    /// Over the answer's bytes.
    pub fn new(answer: R) -> Self {
        PackReader {
            lines: PktReader::new(answer),
            started: false,
            pending: Vec::new(),
            at: 0,
            done: false,
        }
    }

    /// The next pack bytes into `pending`; false at the end.
    fn next_chunk(&mut self) -> std::io::Result<bool> {
        let bad = |m: String| std::io::Error::new(std::io::ErrorKind::InvalidData, m);
        loop {
            let packet = self.lines.read().map_err(|e| bad(e.to_string()))?;
            let data = match packet {
                Some(Packet::Data(d)) => d,
                Some(Packet::Flush) | None => return Ok(false),
                Some(_) => continue,
            };
            if !self.started {
                if data.starts_with(b"NAK")
                    || data.starts_with(b"ACK ")
                    || data.starts_with(b"acknowledgments")
                    || data.starts_with(b"ready")
                {
                    continue;
                }
                if data.starts_with(b"packfile") {
                    self.started = true;
                    continue;
                }
                if data.starts_with(b"ERR ") {
                    return Err(bad(format!(
                        "the remote refused: {}",
                        String::from_utf8_lossy(&data[4..]).trim_end()
                    )));
                }
                self.started = true;
            }
            match data.split_first() {
                Some((1, pack)) => {
                    self.pending.clear();
                    self.pending.extend_from_slice(pack);
                    self.at = 0;
                    return Ok(true);
                }
                Some((2, _)) => continue,
                Some((3, message)) => {
                    return Err(bad(format!(
                        "the remote failed: {}",
                        String::from_utf8_lossy(message).trim_end()
                    )))
                }
                _ => return Err(bad("the answer is not side-band".into())),
            }
        }
    }
}

impl<R: Read> Read for PackReader<R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        while self.at == self.pending.len() {
            if self.done || !self.next_chunk()? {
                self.done = true;
                return Ok(0);
            }
        }
        let n = buf.len().min(self.pending.len() - self.at);
        buf[..n].copy_from_slice(&self.pending[self.at..self.at + n]);
        self.at += n;
        Ok(n)
    }
}

/// What an inbound webhook asked for, once its signature checked.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InboundWebhook {
    /// The event's kind as the sender names it (`push`, `ping`, `Push Hook`, …).
    pub event: String,
    /// Whether it asks for a sync (a push, or a Standard Webhooks message).
    pub is_push: bool,
    /// The delivery's id, when the sender gives one.
    pub delivery: Option<String>,
}

/// Why an inbound webhook is refused (answered 401).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct WebhookRefused(pub String);

fn header<'h>(headers: &'h http::HeaderMap, name: &str) -> Option<&'h str> {
    headers.get(name).and_then(|v| v.to_str().ok())
}

fn mac(key: &[u8]) -> Option<Hmac<sha2::Sha256>> {
    <Hmac<sha2::Sha256> as KeyInit>::new_from_slice(key).ok()
}

/// Equal, in time that does not depend on where they differ.
fn same_secret(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |d, (x, y)| d | (x ^ y)) == 0
}

/// Check an inbound webhook signed with `secret`, at `now` (seconds since the epoch).
pub fn verify_webhook(
    headers: &http::HeaderMap,
    body: &[u8],
    secret: &str,
    now: i64,
) -> Result<InboundWebhook, WebhookRefused> {
    let refuse = |m: &str| Err(WebhookRefused(m.to_owned()));
    if let Some(signatures) = header(headers, "webhook-signature") {
        let (id, ts) = match (
            header(headers, "webhook-id"),
            header(headers, "webhook-timestamp"),
        ) {
            (Some(id), Some(ts)) => (id, ts),
            _ => return refuse("webhook-id and webhook-timestamp are required"),
        };
        let Ok(at) = ts.parse::<i64>() else {
            return refuse("webhook-timestamp is not a number");
        };
        if (now - at).unsigned_abs() > WEBHOOK_TOLERANCE.as_secs() {
            return refuse("webhook-timestamp is outside the tolerance (a replay?)");
        }
        let key = crate::sign::standard_key(secret).unwrap_or_else(|| secret.as_bytes().to_vec());
        let Some(expected) = mac(&key).map(|mut m| {
            m.update(format!("{id}.{at}.").as_bytes());
            m.update(body);
            m.finalize().into_bytes().to_vec()
        }) else {
            return refuse("no key");
        };
        let matches = signatures
            .split(' ')
            .filter_map(|s| s.strip_prefix("v1,"))
            .any(|s| {
                use base64::Engine;
                base64::engine::general_purpose::STANDARD
                    .decode(s)
                    .is_ok_and(|given| same_secret(&given, &expected))
            });
        if !matches {
            return refuse("webhook-signature does not match");
        }
        return Ok(InboundWebhook {
            event: "message".into(),
            is_push: true,
            delivery: Some(id.to_owned()),
        });
    }
    if let Some(signature) = header(headers, "x-hub-signature-256") {
        let Some(given) = signature
            .strip_prefix("sha256=")
            .and_then(|h| hex::decode(h).ok())
        else {
            return refuse("X-Hub-Signature-256 is not sha256=<hex>");
        };
        let Some(mut m) = mac(secret.as_bytes()) else {
            return refuse("no key");
        };
        m.update(body);
        if m.verify_slice(&given).is_err() {
            return refuse("X-Hub-Signature-256 does not match");
        }
        let event = header(headers, "x-github-event")
            .or_else(|| header(headers, "x-gitea-event"))
            .or_else(|| header(headers, "x-gogs-event"))
            .unwrap_or("push")
            .to_owned();
        let delivery = header(headers, "x-github-delivery")
            .or_else(|| header(headers, "x-gitea-delivery"))
            .map(str::to_owned);
        return Ok(InboundWebhook {
            is_push: event == "push",
            event,
            delivery,
        });
    }
    if let Some(token) = header(headers, "x-gitlab-token") {
        if !same_secret(token.as_bytes(), secret.as_bytes()) {
            return refuse("X-Gitlab-Token does not match");
        }
        let event = header(headers, "x-gitlab-event")
            .unwrap_or("Push Hook")
            .to_owned();
        return Ok(InboundWebhook {
            is_push: event == "Push Hook" || event == "Tag Push Hook",
            event,
            delivery: header(headers, "x-gitlab-event-uuid").map(str::to_owned),
        });
    }
    refuse("unsigned: send X-Hub-Signature-256, X-Gitlab-Token or webhook-signature")
}

/// The outcome of a sync for one followed ref.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RefSync {
    /// `synced`, `diverged`, `refused` (by the push policy or a race) or `deleted-upstream`.
    pub status: String,
    /// Our value.
    pub local: Option<String>,
    /// The remote's value.
    pub upstream: Option<String>,
    /// Commits we have that the remote does not (diverged refs).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ahead: Option<u64>,
    /// Commits the remote has that we do not.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub behind: Option<u64>,
    /// Why it was refused.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
}

/// Who is syncing which upstream of a repository, until when: one lease per repository, so
/// one sync of a repository runs at a time across replicas.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct SyncLease {
    /// The replica.
    pub replica: String,
    /// The upstream it syncs.
    pub upstream: String,
    /// Milliseconds since the epoch.
    pub until_ms: u64,
}

impl SyncLease {
    /// Whether it holds at `now_ms`.
    pub fn is_held(&self, now_ms: u64) -> bool {
        !self.replica.is_empty() && self.until_ms > now_ms
    }
}

/// The key of a repository's sync lease, beside the upstreams' states.
const LEASE_KEY: &str = "upstreams-lease";

/// The last inbound webhook.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct WebhookSeen {
    /// When, milliseconds since the epoch.
    pub time_ms: u64,
    /// The sender's event name.
    pub event: String,
    /// `accepted` (a sync asked for), `ignored` (not a push) or why it was refused.
    pub outcome: String,
}

/// An upstream's status (see [`RepoKeys::endpoint_state`]).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct UpstreamState {
    /// When a sync was last asked for (a webhook, `sync_upstream`).
    #[serde(default)]
    pub requested_ms: u64,
    /// When the last sync started.
    #[serde(default)]
    pub last_attempt_ms: Option<u64>,
    /// When a sync last finished without error.
    #[serde(default)]
    pub last_success_ms: Option<u64>,
    /// When a sync last finished, with or without error (a sync whose replica died never
    /// finishes: a request older than its start is still due).
    #[serde(default)]
    pub last_finished_ms: Option<u64>,
    /// Seconds between timed syncs (the upstream's, kept here for the scheduler).
    #[serde(default)]
    pub interval: u64,
    /// What went wrong last.
    #[serde(default)]
    pub last_error: Option<String>,
    /// Syncs finished.
    #[serde(default)]
    pub syncs: u64,
    /// What the sync is doing now (`discovering`, `fetching`, `lfs`, `landing`), for progress.
    #[serde(default)]
    pub phase: Option<String>,
    /// Pack bytes received so far by the sync running now.
    #[serde(default)]
    pub progress_bytes: u64,
    /// Per followed ref.
    #[serde(default)]
    pub refs: BTreeMap<String, RefSync>,
    /// Pack bytes received by the last sync.
    #[serde(default)]
    pub last_pack_bytes: u64,
    /// LFS objects fetched by the last sync.
    #[serde(default)]
    pub last_lfs_objects: u64,
    /// The last inbound webhook.
    #[serde(default)]
    pub last_webhook: Option<WebhookSeen>,
    /// The latest delivery ids (a replay of one is refused).
    #[serde(default)]
    pub deliveries: Vec<String>,
}

impl UpstreamState {
    /// Remember a delivery id; false when it was seen before.
    pub fn remember(&mut self, delivery: &str) -> bool {
        if self.deliveries.iter().any(|d| d == delivery) {
            return false;
        }
        self.deliveries.push(delivery.to_owned());
        let excess = self.deliveries.len().saturating_sub(REMEMBERED_DELIVERIES);
        self.deliveries.drain(..excess);
        true
    }

    /// Whether a sync is asked for and not finished since, or due on the timer at `now_ms`.
    pub fn is_due(&self, now_ms: u64) -> bool {
        let started = self.last_attempt_ms.unwrap_or(0);
        self.requested_ms > self.last_finished_ms.unwrap_or(0)
            || (self.interval > 0 && now_ms >= started.saturating_add(self.interval * 1000))
    }
}

/// Compare-and-swap attempts on one state before giving up.
const CAS_ATTEMPTS: u32 = 32;

/// A random wait before attempt `attempt + 1`: up to 5 ms doubled each time, at most 250 ms.
fn cas_backoff(attempt: u32) -> Duration {
    let ceiling = (5u64 << attempt.min(6)).min(250);
    let mut b = [0u8; 2];
    let _ = getrandom::getrandom(&mut b);
    Duration::from_millis(u64::from(u16::from_le_bytes(b)) % (ceiling + 1))
}

/// Upstream states in the bucket, changed by compare-and-swap.
#[derive(Debug, Clone)]
pub struct UpstreamStates {
    bucket: Arc<dyn Bucket>,
    keys: RepoKeys,
}

impl UpstreamStates {
    /// The states of the repository whose keys are `keys`.
    pub fn new(bucket: Arc<dyn Bucket>, keys: RepoKeys) -> Self {
        UpstreamStates { bucket, keys }
    }

    /// Upstream `id`'s state (default when none was written).
    pub async fn load(&self, id: &str) -> Result<UpstreamState, bucket::Error> {
        Ok(self.read(&self.keys.endpoint_state(id)).await?.0)
    }

    /// The repository's sync lease (default: none).
    pub async fn lease(&self) -> Result<SyncLease, bucket::Error> {
        Ok(self.read(&self.keys.endpoint_state(LEASE_KEY)).await?.0)
    }

    async fn read<T: Default + for<'de> Deserialize<'de>>(
        &self,
        key: &str,
    ) -> Result<(T, PutMode), bucket::Error> {
        match self.bucket.get(key).await {
            Ok(got) => {
                let state = serde_json::from_slice(&got.data).unwrap_or_default();
                Ok((state, PutMode::Update(got.etag)))
            }
            Err(e) if e.is_not_found() => Ok((T::default(), PutMode::Create)),
            Err(e) => Err(e),
        }
    }

    /// Apply `change` to what `key` holds by compare-and-swap (`None` from it: nothing to
    /// write); what it returned and what was written, or `None`.
    async fn update_at<S, T>(
        &self,
        key: &str,
        mut change: impl FnMut(&mut S) -> Option<T>,
    ) -> Result<Option<(T, S)>, bucket::Error>
    where
        S: Default + Serialize + for<'de> Deserialize<'de>,
    {
        for attempt in 0..CAS_ATTEMPTS {
            let (mut state, mode) = self.read::<S>(key).await?;
            let Some(out) = change(&mut state) else {
                return Ok(None);
            };
            let data = serde_json::to_vec(&state).unwrap_or_default();
            match self.bucket.put(key, data.into(), mode).await {
                Ok(_) => return Ok(Some((out, state))),
                // Lost to a concurrent writer (a burst of webhooks, a lease renewal): wait a
                // little, at random, so the contenders spread out, and read again.
                Err(bucket::Error::PreconditionFailed(_)) => {
                    tokio::time::sleep(cas_backoff(attempt)).await
                }
                Err(e) => return Err(e),
            }
        }
        Err(bucket::Error::PreconditionFailed(key.to_owned()))
    }

    /// Apply `change` to upstream `id`'s state by compare-and-swap.
    pub async fn update<T>(
        &self,
        id: &str,
        change: impl FnMut(&mut UpstreamState) -> Option<T>,
    ) -> Result<Option<(T, UpstreamState)>, bucket::Error> {
        self.update_at(&self.keys.endpoint_state(id), change).await
    }

    /// Take the repository's sync lease for `upstream` until `until_ms`, unless a sync holds
    /// it at `now_ms` (this replica's too: one sync at a time); whether it was taken.
    pub async fn take_lease(
        &self,
        replica: &str,
        upstream: &str,
        now_ms: u64,
        until_ms: u64,
    ) -> Result<bool, bucket::Error> {
        self.lease_if(replica, upstream, until_ms, |l| !l.is_held(now_ms))
            .await
    }

    /// Extend the lease `replica` holds for `upstream` until `until_ms`; false when it does
    /// not hold it any more.
    pub async fn renew_lease(
        &self,
        replica: &str,
        upstream: &str,
        now_ms: u64,
        until_ms: u64,
    ) -> Result<bool, bucket::Error> {
        self.lease_if(replica, upstream, until_ms, |l| {
            l.is_held(now_ms) && l.replica == replica && l.upstream == upstream
        })
        .await
    }

    async fn lease_if(
        &self,
        replica: &str,
        upstream: &str,
        until_ms: u64,
        allowed: impl Fn(&SyncLease) -> bool,
    ) -> Result<bool, bucket::Error> {
        let taken = self
            .update_at(&self.keys.endpoint_state(LEASE_KEY), |l: &mut SyncLease| {
                if !allowed(l) {
                    return None;
                }
                *l = SyncLease {
                    replica: replica.to_owned(),
                    upstream: upstream.to_owned(),
                    until_ms,
                };
                Some(())
            })
            .await?;
        Ok(taken.is_some())
    }

    /// Give the lease back, if `replica` holds it.
    pub async fn release_lease(&self, replica: &str) -> Result<(), bucket::Error> {
        self.update_at(&self.keys.endpoint_state(LEASE_KEY), |l: &mut SyncLease| {
            (l.replica == replica).then(|| *l = SyncLease::default())
        })
        .await?;
        Ok(())
    }

    /// Forget upstream `id`'s state.
    pub async fn remove(&self, id: &str) -> Result<(), bucket::Error> {
        match self.bucket.delete(&self.keys.endpoint_state(id)).await {
            Err(e) if !e.is_not_found() => Err(e),
            _ => Ok(()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(pairs: &[(&str, &str)]) -> http::HeaderMap {
        let mut h = http::HeaderMap::new();
        for (k, v) in pairs {
            if let (Ok(k), Ok(v)) = (
                http::header::HeaderName::from_bytes(k.as_bytes()),
                http::HeaderValue::from_str(v),
            ) {
                h.insert(k, v);
            }
        }
        h
    }

    #[test]
    fn inbound_webhooks_are_checked_for_each_sender() {
        let body = br#"{"ref":"refs/heads/main"}"#;
        let secret = "s3cret";
        let github = crate::sign::github(secret, body);
        let ok = verify_webhook(
            &headers(&[
                ("x-hub-signature-256", &github),
                ("x-github-event", "push"),
                ("x-github-delivery", "d1"),
            ]),
            body,
            secret,
            0,
        );
        assert_eq!(
            ok,
            Ok(InboundWebhook {
                event: "push".into(),
                is_push: true,
                delivery: Some("d1".into())
            })
        );
        // A ping is accepted but asks for nothing.
        let ping = verify_webhook(
            &headers(&[("x-hub-signature-256", &github), ("x-github-event", "ping")]),
            body,
            secret,
            0,
        );
        assert!(ping.is_ok_and(|w| !w.is_push));
        // Forged: another secret, another body, or none.
        for (h, b) in [
            (
                headers(&[("x-hub-signature-256", &crate::sign::github("other", body))]),
                &body[..],
            ),
            (headers(&[("x-hub-signature-256", &github)]), &b"{}"[..]),
            (headers(&[("x-hub-signature-256", "sha256=zz")]), &body[..]),
            (headers(&[]), &body[..]),
            (headers(&[("x-gitlab-token", "s3creT")]), &body[..]),
        ] {
            assert!(verify_webhook(&h, b, secret, 0).is_err(), "{h:?}");
        }
        let gitlab = verify_webhook(
            &headers(&[("x-gitlab-token", secret), ("x-gitlab-event", "Push Hook")]),
            body,
            secret,
            0,
        );
        assert!(gitlab.is_ok_and(|w| w.is_push));
        // Standard Webhooks: signed, and only within the tolerance.
        let key = b"0123456789abcdef".to_vec();
        use base64::Engine;
        let whsec = format!(
            "whsec_{}",
            base64::engine::general_purpose::STANDARD.encode(&key)
        );
        let now = 1_800_000_000;
        let sig = crate::sign::standard(&key, "msg_1", now, body);
        let signed = |at: i64| {
            headers(&[
                ("webhook-id", "msg_1"),
                ("webhook-timestamp", &at.to_string()),
                ("webhook-signature", &format!("v1,bm9wZQ== {sig}")),
            ])
        };
        assert!(verify_webhook(&signed(now), body, &whsec, now + 10).is_ok());
        assert!(
            verify_webhook(&signed(now), body, &whsec, now + 301).is_err(),
            "a replay later"
        );
        assert!(verify_webhook(&signed(now), &b"x"[..], &whsec, now).is_err());
    }

    #[test]
    fn the_pack_is_taken_out_of_side_band_one() {
        let mut answer = Vec::new();
        pktline::write_line(&mut answer, "NAK");
        let band = |b: u8, d: &[u8]| [&[b][..], d].concat();
        pktline::write_data(&mut answer, &band(2, b"counting\n"));
        pktline::write_data(&mut answer, &band(1, b"PACK"));
        pktline::write_data(&mut answer, &band(1, b"data"));
        pktline::write_flush(&mut answer);
        let mut out = Vec::new();
        PackReader::new(&answer[..]).read_to_end(&mut out).ok();
        assert_eq!(out, b"PACKdata");
        // v2: section headers, then the pack; an error on band 3 is an error.
        let mut answer = Vec::new();
        pktline::write_line(&mut answer, "packfile");
        pktline::write_data(&mut answer, &band(3, b"out of memory"));
        let err = PackReader::new(&answer[..]).read_to_end(&mut Vec::new());
        assert!(err.is_err_and(|e| e.to_string().contains("out of memory")));
    }

    #[test]
    fn a_state_remembers_deliveries_and_tells_when_a_sync_is_due() {
        let mut state = UpstreamState::default();
        assert!(state.remember("a"));
        assert!(!state.remember("a"));
        for i in 0..200 {
            state.remember(&i.to_string());
        }
        assert_eq!(state.deliveries.len(), REMEMBERED_DELIVERIES);
        assert!(state.remember("a"), "old ids are forgotten");
        state.last_attempt_ms = Some(10_000);
        state.last_finished_ms = Some(11_000);
        assert!(!state.is_due(20_000));
        state.interval = 5;
        assert!(state.is_due(15_000));
        state.interval = 60;
        assert!(!state.is_due(15_000));
        // Asked for after the last sync finished; or during a sync that never finished.
        state.requested_ms = 11_001;
        assert!(state.is_due(11_002));
        state.last_attempt_ms = Some(12_000);
        assert!(
            state.is_due(12_001),
            "a sync that died leaves the request due"
        );
    }
}
