//! `GET|HEAD …/resolve/{rev}/{path}`: one file at a revision.
//!
//! A regular file is streamed from its pack (inflated a buffer at a time when stored whole;
//! a delta is rebuilt within a memory reservation). A Git LFS pointer is answered with the
//! object it names: a redirect to a short-lived presigned URL where the bucket signs them
//! (the server moves none of its bytes, and the caller's token stays here), streamed from
//! the bucket otherwise. The entity tag is the blob id, or the LFS object's SHA-256; with a
//! full commit id as the revision the answer never changes and says so (`immutable`).
//!
//! Headers a client can rely on: `ETag`, `X-Repo-Commit` (the commit the revision named),
//! `Content-Length`/`Content-Range`, and for LFS files `X-Linked-Etag` and `X-Linked-Size`
//! (the names the Hugging Face Hub uses, so its client reads them too) and `X-Lfs-Oid`.

use std::io::{Read, Write};
use std::sync::Arc;

use gix_hash::ObjectId;
use http::{header, HeaderMap, HeaderValue, Response, StatusCode};

use super::range::{none_match, part, range_applies, Part};
use super::AtRevision;
use crate::app::App;
use crate::body::{self, full, ResponseBody};
use crate::response::HttpError;

/// What a request asks of a file, from its headers.
#[derive(Debug, Clone, Default)]
pub struct FileRequest {
    /// `HEAD`: headers only.
    pub head: bool,
    /// The `Range` header.
    pub range: Option<String>,
    /// The `If-None-Match` header.
    pub if_none_match: Option<String>,
    /// The `If-Range` header.
    pub if_range: Option<String>,
}

impl FileRequest {
    /// Read the headers that matter.
    pub fn from_headers(headers: &HeaderMap, head: bool) -> Self {
        let get = |name: header::HeaderName| {
            headers
                .get(name)
                .and_then(|v| v.to_str().ok())
                .map(str::to_owned)
        };
        FileRequest {
            head,
            range: get(header::RANGE),
            if_none_match: get(header::IF_NONE_MATCH),
            if_range: get(header::IF_RANGE),
        }
    }
}

/// How the files of these routes may be presented (kept for the adapters that mount them).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FileView {
    /// As the plain routes serve them.
    Plain,
}

/// What is at a path, found on a blocking thread.
enum Found {
    /// A blob (its bytes in hand when small).
    Blob {
        id: ObjectId,
        size: u64,
        small: Option<Vec<u8>>,
    },
    /// A blob that is a Git LFS pointer.
    Lfs { id: ObjectId, pointer: lfs::Pointer },
}

/// Bytes of a large file per chunk of the response (a few chunks are in flight at most).
const SEND_CHUNK: usize = 1 << 20;

/// Blobs read whole to see whether they are LFS pointers (a pointer is at most 1 KiB).
const POINTER_MAX: u64 = 1024;

fn find(at: &AtRevision, path: &str) -> Result<Found, HttpError> {
    let reader = at.db.reader();
    let entry = history::entry_at(&reader, &at.tree, path).map_err(super::history_error)?;
    let Some((mode, id)) = entry else {
        return Err(HttpError::EntryNotFound(format!(
            "no file {path:?} at {}",
            at.rev
        )));
    };
    if mode == 0o040000 || mode == 0o160000 {
        return Err(HttpError::EntryNotFound(format!(
            "{path:?} is a {}, not a file",
            if mode == 0o040000 {
                "folder"
            } else {
                "submodule"
            }
        )));
    }
    let size = reader
        .header(&id)?
        .map(|(_, size)| size)
        .ok_or_else(|| HttpError::Storage(format!("blob {id} is missing")))?;
    if size > POINTER_MAX {
        return Ok(Found::Blob {
            id,
            size,
            small: None,
        });
    }
    let mut data = Vec::new();
    reader.read(&id, &mut data)?;
    // A symbolic link's target is never read as a pointer.
    if mode != 0o120000 {
        if let Some(pointer) = lfs::Pointer::parse(&data) {
            return Ok(Found::Lfs { id, pointer });
        }
    }
    Ok(Found::Blob {
        id,
        size,
        small: Some(data),
    })
}

/// The answer to a request for `path` at `at`.
pub async fn serve_file(
    app: &Arc<App>,
    at: &AtRevision,
    path: &str,
    ask: &FileRequest,
    _view: FileView,
) -> Result<Response<ResponseBody>, HttpError> {
    let found = {
        let (at, path) = (at.clone(), path.to_owned());
        tokio::task::spawn_blocking(move || find(&at, &path))
            .await
            .map_err(|e| HttpError::Internal(format!("task failed: {e}")))??
    };
    match found {
        Found::Blob { id, size, small } => serve_blob(app, at, id, size, small, ask),
        Found::Lfs { id, pointer } => serve_lfs(app, at, id, pointer, path, ask).await,
    }
}

/// A `Content-Disposition` that saves a download as `name`: a plain ASCII `filename` (what
/// old clients read; quotes, backslashes and control characters replaced) and the exact name
/// as RFC 5987 `filename*`.
fn attachment(name: &str) -> String {
    let ascii: String = name
        .chars()
        .map(|c| match c {
            '"' | '\\' => '_',
            c if c.is_ascii() && !c.is_ascii_control() => c,
            _ => '_',
        })
        .collect();
    let exact = percent_encoding::utf8_percent_encode(name, percent_encoding::NON_ALPHANUMERIC);
    format!("attachment; filename=\"{ascii}\"; filename*=UTF-8''{exact}")
}

/// The headers every answer about a file carries.
fn describe(at: &AtRevision, etag: &str) -> Response<ResponseBody> {
    let mut resp = Response::new(full(Vec::new()));
    let h = resp.headers_mut();
    insert(h, header::ETAG, etag);
    insert(h, "x-repo-commit", &at.commit.to_string());
    insert(h, header::ACCEPT_RANGES, "bytes");
    // Opened in a browser, a pushed HTML or SVG file runs no script as this origin.
    insert(
        h,
        header::CONTENT_SECURITY_POLICY,
        webview::RAW_CONTENT_SECURITY_POLICY,
    );
    let cache = match at.immutable {
        true => "private, max-age=31536000, immutable",
        false => "private, no-cache",
    };
    insert(h, header::CACHE_CONTROL, cache);
    resp
}

fn insert<K: header::IntoHeaderName>(h: &mut HeaderMap, name: K, value: &str) {
    if let Ok(v) = HeaderValue::from_str(value) {
        h.insert(name, v);
    }
}

/// Which part to send, and the status and length headers for it; `None` when the client
/// already has it (`304`).
fn plan_part(
    resp: &mut Response<ResponseBody>,
    ask: &FileRequest,
    etag: &str,
    size: u64,
) -> Result<Option<(u64, u64)>, HttpError> {
    if none_match(ask.if_none_match.as_deref(), etag) {
        *resp.status_mut() = StatusCode::NOT_MODIFIED;
        return Ok(None);
    }
    let range = match range_applies(ask.if_range.as_deref(), etag) {
        true => ask.range.as_deref(),
        false => None,
    };
    let (start, len) = match part(range, size) {
        Part::Whole => (0, size),
        Part::Unsatisfiable => return Err(HttpError::RangeNotSatisfiable(size)),
        Part::Range { start, len } => {
            *resp.status_mut() = StatusCode::PARTIAL_CONTENT;
            let end = start + len - 1;
            insert(
                resp.headers_mut(),
                header::CONTENT_RANGE,
                &format!("bytes {start}-{end}/{size}"),
            );
            (start, len)
        }
    };
    let h = resp.headers_mut();
    h.insert(header::CONTENT_LENGTH, HeaderValue::from(len));
    insert(h, header::CONTENT_TYPE, "application/octet-stream");
    // Content from users is never rendered as a page of this origin.
    insert(h, header::X_CONTENT_TYPE_OPTIONS, "nosniff");
    insert(h, header::CONTENT_SECURITY_POLICY, "sandbox");
    Ok(Some((start, len)))
}

fn serve_blob(
    app: &Arc<App>,
    at: &AtRevision,
    id: ObjectId,
    size: u64,
    small: Option<Vec<u8>>,
    ask: &FileRequest,
) -> Result<Response<ResponseBody>, HttpError> {
    let etag = format!("\"{id}\"");
    let mut resp = describe(at, &etag);
    let Some((start, len)) = plan_part(&mut resp, ask, &etag, size)? else {
        return Ok(resp);
    };
    if ask.head {
        return Ok(resp);
    }
    *resp.body_mut() = match small {
        Some(data) => {
            let end = (start + len) as usize;
            full(data[start as usize..end].to_vec())
        }
        None => stream_blob(app.clone(), at.db.clone(), id, size, start, len),
    };
    Ok(resp)
}

/// Stream `len` bytes from `start` of a large blob, from a blocking thread.
fn stream_blob(
    app: Arc<App>,
    db: objectstore::ObjectDb,
    id: ObjectId,
    size: u64,
    start: u64,
    len: u64,
) -> ResponseBody {
    let (mut writer, response_body) = body::channel();
    tokio::task::spawn_blocking(move || {
        let sent = (|| -> Result<(), String> {
            if let Some(mut stream) = db.stream(&id).map_err(|e| e.to_string())? {
                let skipped = std::io::copy(&mut (&mut stream).take(start), &mut std::io::sink())
                    .map_err(|e| e.to_string())?;
                if skipped != start {
                    return Err(format!("blob {id} is shorter than it says"));
                }
                // Inflated straight into the buffers that go out, a few at a time in flight.
                let mut left = len;
                while left > 0 {
                    let mut chunk = vec![0u8; SEND_CHUNK.min(left as usize)];
                    let mut filled = 0;
                    while filled < chunk.len() {
                        match stream
                            .read(&mut chunk[filled..])
                            .map_err(|e| e.to_string())?
                        {
                            0 => return Err(format!("blob {id} is shorter than it says")),
                            n => filled += n,
                        }
                    }
                    left -= filled as u64;
                    writer.send_owned(chunk).map_err(|e| e.to_string())?;
                }
                return writer.flush().map_err(|e| e.to_string());
            }
            // Stored as a delta: rebuilt whole, within what the budget allows.
            let _held = app
                .budget
                .reserve(size, app.config.timeouts.queue)
                .map_err(|e| e.to_string())?;
            let mut data = Vec::new();
            db.reader()
                .read(&id, &mut data)
                .map_err(|e| e.to_string())?;
            let part = data
                .get(start as usize..(start + len) as usize)
                .ok_or_else(|| format!("blob {id} is shorter than it says"))?;
            writer.write_all(part).map_err(|e| e.to_string())?;
            writer.flush().map_err(|e| e.to_string())
        })();
        if let Err(e) = sent {
            tracing::warn!(blob = %id, error = %e, "sending a file failed");
            writer.abort(&e);
        }
    });
    response_body
}

async fn serve_lfs(
    app: &Arc<App>,
    at: &AtRevision,
    blob: ObjectId,
    pointer: lfs::Pointer,
    path: &str,
    ask: &FileRequest,
) -> Result<Response<ResponseBody>, HttpError> {
    let store = lfs::Store::new(
        app.storage.bucket.clone(),
        at.repo.keys.clone(),
        app.config.lfs,
    );
    let storage = |e: lfs::StoreError| HttpError::Storage(e.to_string());
    // Where the bucket signs URLs the object's existence is the bucket's to answer (a
    // pushed pointer names a stored object: pushes check it); a round trip saved.
    let name = path.rsplit('/').next().unwrap_or(path);
    let presigned = store
        .presigned_download(&pointer.oid, &attachment(name))
        .await
        .map_err(storage)?;
    if presigned.is_none() {
        match store.stored_size(&pointer.oid).await.map_err(storage)? {
            Some(stored) if stored == pointer.size => {}
            Some(stored) => {
                return Err(HttpError::Storage(format!(
                    "the Git LFS object {} has {stored} bytes, its pointer says {}",
                    pointer.oid, pointer.size
                )))
            }
            None => {
                return Err(HttpError::NotFound(format!(
                    "the Git LFS object {} of this file is not stored",
                    pointer.oid
                )))
            }
        }
    }
    let etag = format!("\"{}\"", pointer.oid);
    let mut resp = describe(at, &etag);
    let h = resp.headers_mut();
    insert(h, "x-linked-etag", &etag);
    insert(h, "x-linked-size", &pointer.size.to_string());
    insert(h, "x-lfs-oid", pointer.oid.as_str());
    insert(h, "x-pointer-blob", &blob.to_string());
    if none_match(ask.if_none_match.as_deref(), &etag) {
        *resp.status_mut() = StatusCode::NOT_MODIFIED;
        return Ok(resp);
    }
    if let Some(url) = presigned {
        *resp.status_mut() = StatusCode::FOUND;
        insert(resp.headers_mut(), header::LOCATION, &url);
        // The URL is a credential of its own: no cache keeps the answer.
        insert(resp.headers_mut(), header::CACHE_CONTROL, "no-store");
        resp.headers_mut()
            .insert(header::CONTENT_LENGTH, HeaderValue::from(0));
        return Ok(resp);
    }
    let Some((start, len)) = plan_part(&mut resp, ask, &etag, pointer.size)? else {
        return Ok(resp);
    };
    if ask.head {
        return Ok(resp);
    }
    let stream = store
        .read_range(&pointer.oid, start, len)
        .await
        .map_err(storage)?;
    *resp.body_mut() = body::stream(stream);
    Ok(resp)
}
