//! `git-upload-pack` over Smart HTTP: clone and fetch, protocol v0/v1 and v2.
//!
//! The request body is small (wants, haves, arguments): it is read whole, within a size limit
//! and a time limit, and parsed before anything else happens. Only a valid request that may
//! send a pack takes a slot and reserves memory; its pack is then written on a blocking thread
//! into a channel that streams the response.

use std::io::Read;
use std::sync::Arc;

use gix_hash::ObjectId;
use http::Request;
use hyper::body::Incoming;
use protocol::advertisement::write_ls_refs;
use protocol::pktline::write_line;
use protocol::upload_pack::{Command, FetchRequest};
use refs::Snapshot;

use crate::app::App;
use crate::body::{self, full, ResponseBody};
use crate::fetch::{fetch_request_v2, serve_v0, serve_v2, Error, Output, Source};
use crate::repo::{refs_view, Repo};
use crate::request::{is_gzip, protocol_version};
use crate::response::{git_response, HttpError};

/// Whether a v2 command asks for `packfile-uris`.
fn asks_packfile_uris(command: &Command) -> bool {
    command
        .args
        .iter()
        .any(|a| a.starts_with(b"packfile-uris "))
}

/// An upload-pack request, parsed.
enum Parsed {
    /// v0/v1: wants, haves and capabilities.
    V0(FetchRequest),
    /// One v2 command.
    V2(Command),
    /// Nothing to do.
    Empty,
}

impl Parsed {
    /// Whether answering may build a pack: such requests take a slot and reserve memory.
    fn is_heavy(&self) -> bool {
        match self {
            Parsed::V0(r) => !r.wants.is_empty(),
            Parsed::V2(c) => c.name == "fetch",
            Parsed::Empty => false,
        }
    }

    /// The objects the request wants (for a v2 fetch, named refs resolved).
    fn wants(&self, snapshot: &Snapshot) -> Vec<ObjectId> {
        match self {
            Parsed::V0(r) => r.wants.clone(),
            Parsed::V2(c) if c.name == "fetch" => fetch_request_v2(snapshot, c)
                .map(|(r, _)| r.wants)
                .unwrap_or_default(),
            _ => Vec::new(),
        }
    }
}

/// Decode (gzip) and parse a request body.
fn parse(raw: Vec<u8>, gzip: bool, v2: bool, limit: u64) -> Result<Parsed, Error> {
    let mut request = Vec::new();
    body::decoded(std::io::Cursor::new(raw), gzip, limit).read_to_end(&mut request)?;
    if v2 {
        Ok(Command::read(&request[..])?.map_or(Parsed::Empty, Parsed::V2))
    } else {
        Ok(Parsed::V0(FetchRequest::parse_v0(&request[..])?))
    }
}

/// Refuse a request in another object format than the repository's `object_hash`: a v2
/// client names its format (`object-format`, SHA-1 when it names none) and hears git's
/// `serve` message on a mismatch; every id any request sends must have the format's length.
fn check_object_format(parsed: &Parsed, object_hash: gix_hash::Kind) -> Result<(), String> {
    let (capabilities, request) = match parsed {
        Parsed::V0(r) => (&r.capabilities, Some(r.clone())),
        Parsed::V2(c) => {
            let request = (c.name == "fetch")
                .then(|| FetchRequest::parse_v2(c).ok())
                .flatten();
            (&c.capabilities, request)
        }
        Parsed::Empty => return Ok(()),
    };
    let shown = |n: &str| n.chars().take(40).collect::<String>();
    match capabilities
        .value("object-format")
        .map(|n| (n, objectstore::format::by_name(n)))
    {
        Some((n, None)) => return Err(format!("unknown object format '{}'", shown(n))),
        Some((_, Some(client))) if client != object_hash => {
            return Err(format!(
                "mismatched object format: server {object_hash}; client {client}"
            ))
        }
        // A v2 client that names no format speaks SHA-1 (v0 has no such rule in git: its
        // ids say it, below).
        None if matches!(parsed, Parsed::V2(_)) && object_hash != gix_hash::Kind::Sha1 => {
            return Err(format!(
                "mismatched object format: server {object_hash}; client sha1"
            ))
        }
        _ => {}
    }
    if let Some(r) = request {
        let ids = r.wants.iter().chain(&r.haves).chain(&r.shallows);
        protocol::check_object_format(object_hash, ids).map_err(|e| e.to_string())?;
    }
    Ok(())
}

fn refusal(message: &str) -> http::Response<ResponseBody> {
    let mut out = Vec::new();
    write_line(&mut out, &format!("ERR {message}"));
    git_response("application/x-git-upload-pack-result", body::full(out))
}

/// The answer when the repository's packs cannot be opened.
pub(crate) fn storage_error(
    repo: &Repo,
    e: objectstore::odb::Error,
) -> http::Response<ResponseBody> {
    HttpError::Storage(format!("{}: {e}", repo.id)).into_response()
}

/// Serve a clone, fetch, `ls-refs` or `object-info` request.
pub async fn handle(
    app: Arc<App>,
    repo: Repo,
    snapshot: Snapshot,
    req: Request<Incoming>,
) -> http::Response<ResponseBody> {
    let started = std::time::Instant::now();
    let base_url = crate::request::base_url(&req, &app.config.public.url);
    let v2 = protocol_version(&req) == 2;
    let gzip = is_gzip(&req);
    let limit = app.config.limits.max_request_bytes;
    let raw = match body::read_all(req.into_body(), limit, app.config.timeouts.request_body).await {
        Ok(raw) => raw,
        Err(e) => return HttpError::from(e).into_response(),
    };
    let parsed = match tokio::task::spawn_blocking(move || parse(raw, gzip, v2, limit)).await {
        Ok(Ok(p)) => p,
        Ok(Err(e)) => {
            tracing::warn!(repo = %repo.id, error = %e, "upload-pack request refused");
            return refusal(&e.to_string());
        }
        Err(e) => {
            return HttpError::Internal(format!("the request failed unexpectedly: {e}"))
                .into_response()
        }
    };
    if let Err(message) = check_object_format(&parsed, snapshot.object_hash) {
        tracing::warn!(repo = %repo.id, error = %message, "upload-pack request refused");
        return refusal(&message);
    }
    // The refs are all an `ls-refs` answer needs: no pack list, no objects.
    if let Parsed::V2(command) = &parsed {
        if command.name == "ls-refs" {
            let mut buf = Vec::new();
            return match command.ls_refs_args() {
                Ok(args) => {
                    write_ls_refs(&mut buf, &refs_view(&snapshot), &args);
                    crate::metrics::observe(crate::metrics::LS_REFS_SECONDS, started);
                    git_response("application/x-git-upload-pack-result", full(buf))
                }
                Err(e) => refusal(&e.to_string()),
            };
        }
    }
    // The bundle list: the refs and the list object (see `crate::bundle_uri`).
    if let Parsed::V2(command) = &parsed {
        if command.name == "bundle-uri" {
            return match crate::bundle_list::answer(&app, &repo, &snapshot, &base_url).await {
                Ok(list) => git_response("application/x-git-upload-pack-result", full(list)),
                Err(e) => {
                    tracing::error!(repo = %repo.id, error = %e, "bundle-uri failed");
                    refusal("the bundle list cannot be read now")
                }
            };
        }
    }
    if let Parsed::Empty = parsed {
        return git_response("application/x-git-upload-pack-result", full(Vec::new()));
    }
    let heavy = parsed.is_heavy();
    let slot = match heavy {
        false => None,
        true => match app.slots.try_take() {
            Some(slot) => Some(slot),
            None => return HttpError::Busy.into_response(),
        },
    };
    let wants = parsed.wants(&snapshot);
    let needed = snapshot.refs.values().map(|v| &v.target).chain(&wants);
    let db = match repo
        .objects_having(&app.cache, snapshot.object_hash, needed)
        .await
    {
        Ok(db) => db,
        Err(e) => return storage_error(&repo, e),
    };
    let pack_uris = match &parsed {
        Parsed::V2(c) if c.name == "fetch" && asks_packfile_uris(c) => {
            crate::packfile_uris::uris(&app, &repo, &db, &base_url).await
        }
        _ => Vec::new(),
    };
    let (writer, response_body) = body::channel();
    let id = repo.id.clone();
    tokio::task::spawn_blocking(move || {
        let mut out = Output::new(writer);
        let _memory = match heavy {
            false => None,
            true => match app
                .budget
                .reserve(app.config.limits.fetch_memory, app.config.timeouts.queue)
            {
                Ok(r) => Some(r),
                Err(e) => {
                    crate::metrics::inc(crate::metrics::REJECTED_BUSY);
                    out.fail(&e.to_string());
                    return;
                }
            },
        };
        let source = Source {
            snapshot,
            db,
            pack_uris,
            answers: Some(app.answers.clone()),
        };
        let result = match &parsed {
            Parsed::V0(r) => serve_v0(&source, r, &mut out),
            Parsed::V2(c) => serve_v2(&source, c, &mut out),
            Parsed::Empty => Ok(()),
        };
        if let Err(e) = result {
            tracing::warn!(repo = %id, error = %e, "upload-pack failed");
            out.fail(&e.to_string());
        }
        if heavy {
            crate::metrics::observe(crate::metrics::FETCH_SECONDS, started);
        }
    });
    let body = match slot {
        Some(slot) => slot.hold(response_body),
        None => response_body,
    };
    git_response("application/x-git-upload-pack-result", body)
}
