//! Folders and paths as the Hub lists them: `tree/{rev}/{path}` a page at a time (1000
//! entries, 50 with `expand`, the next page in a `Link` header), and `paths-info/{rev}` for
//! a list of paths. Files carry their blob id, size and LFS details; with `expand`, every
//! entry its last commit.

use std::sync::Arc;

use http::{header, HeaderValue, Request, Response, StatusCode};
use hyper::body::Incoming;
use serde_json::{json, Value};

use super::repos::{hub_date, kind_api};
use super::Kind;
use crate::app::App;
use crate::body::{self, ResponseBody};
use crate::files::{FolderQuery, Listed};
use crate::repo::Repo;
use crate::response::{json as json_response, HttpError};
use crate::storage::RepoId;

/// Entries per page, and with `expand`.
const PAGE: usize = 1000;
const EXPANDED_PAGE: usize = 50;
/// Paths one `paths-info` may ask about.
const MAX_PATHS: usize = 1000;
/// The largest `paths-info` form.
const MAX_FORM: u64 = 1 << 20;

/// Where a listing lives, to link its next page.
pub struct Link<'a> {
    pub base: &'a str,
    pub kind: Kind,
    pub id: &'a RepoId,
    pub rev: &'a str,
    pub path: &'a [String],
}

/// An entry as the Hub writes it.
fn entry_json(l: &Listed) -> Value {
    let e = &l.entry;
    let folder = e.kind != history::EntryKind::Blob;
    let mut out = json!({
        "type": if folder { "directory" } else { "file" },
        "oid": e.id.to_string(),
        "size": l.lfs.as_ref().map_or(e.size.unwrap_or(0), |p| p.size),
        "path": e.path,
    });
    if let Some(p) = &l.lfs {
        out["lfs"] = json!({"oid": p.oid.as_str(), "size": p.size, "pointerSize": e.size});
    }
    if let Some(c) = &l.last_commit {
        out["lastCommit"] =
            json!({"id": c.id.to_string(), "title": c.title, "date": hub_date(c.time)});
    }
    out
}

/// `GET tree/{rev}[/{path}]?recursive=&expand=&cursor=`.
pub async fn tree(
    app: &Arc<App>,
    repo: Repo,
    snapshot: refs::Snapshot,
    link: Link<'_>,
    query: &str,
) -> Result<Response<ResponseBody>, HttpError> {
    let mut q = FolderQuery::parse(query)?;
    let asked_limit = form_urlencoded::parse(query.as_bytes()).any(|(k, _)| k == "limit");
    if !asked_limit {
        q.limit = if q.expand { EXPANDED_PAGE } else { PAGE };
    }
    let rev = crate::files::decode_segment(link.rev)?;
    let path: Vec<String> = link
        .path
        .iter()
        .map(|s| crate::files::decode_segment(s))
        .collect::<Result<_, _>>()?;
    let path = history::normalize_path(&path.join("/"))
        .map_err(|e| HttpError::BadRequest(e.to_string()))?;
    let at = crate::files::open_at(app, repo, snapshot, rev).await?;
    let (listed, more) = {
        let (at, path, q) = (at.clone(), path.clone(), q.clone());
        tokio::task::spawn_blocking(move || crate::files::list_entries(&at, &path, &q))
            .await
            .map_err(|e| HttpError::Internal(format!("task failed: {e}")))??
    };
    // Listing a file is not listing a folder.
    if listed.len() == 1
        && listed[0].entry.path == path
        && !path.is_empty()
        && listed[0].entry.kind == history::EntryKind::Blob
    {
        return Err(HttpError::EntryNotFound(format!(
            "{path:?} is a file, not a folder"
        )));
    }
    let entries: Vec<Value> = listed.iter().map(entry_json).collect();
    let mut resp = json_response(StatusCode::OK, &json!(entries));
    if more {
        let mut next = form_urlencoded::Serializer::new(String::new());
        next.append_pair("recursive", if q.recursive { "True" } else { "False" })
            .append_pair("expand", if q.expand { "True" } else { "False" })
            .append_pair("limit", &q.limit.to_string())
            .append_pair("cursor", &(q.offset + listed.len()).to_string());
        let tail = if link.path.is_empty() {
            String::new()
        } else {
            format!("/{}", link.path.join("/"))
        };
        let url = format!(
            "{}/api/{}s/{}/tree/{}{tail}?{}",
            link.base,
            kind_api(link.kind),
            link.id,
            link.rev,
            next.finish()
        );
        if let Ok(v) = HeaderValue::from_str(&format!("<{url}>; rel=\"next\"")) {
            resp.headers_mut().insert(header::LINK, v);
        }
    }
    Ok(resp)
}

/// `POST paths-info/{rev}` with a form of `paths` (repeated) and `expand`: what is at each
/// path that exists, in the order asked.
pub async fn paths_info(
    app: &Arc<App>,
    repo: Repo,
    snapshot: refs::Snapshot,
    rev: &str,
    req: Request<Incoming>,
) -> Result<Response<ResponseBody>, HttpError> {
    let form = body::read_all(req.into_body(), MAX_FORM, app.config.timeouts.request_body).await?;
    let mut paths = Vec::new();
    let mut expand = false;
    for (k, v) in form_urlencoded::parse(&form) {
        match &*k {
            "paths" => {
                if paths.len() == MAX_PATHS {
                    return Err(HttpError::BadRequest(format!("at most {MAX_PATHS} paths")));
                }
                paths.push(
                    history::normalize_path(&v)
                        .map_err(|e| HttpError::BadRequest(e.to_string()))?,
                );
            }
            "expand" => expand = matches!(&*v, "1" | "true" | "True"),
            _ => {}
        }
    }
    let at = crate::files::open_at(app, repo, snapshot, crate::files::decode_segment(rev)?).await?;
    let listed = tokio::task::spawn_blocking(move || {
        let reader = at.db.reader();
        let mut listed = Vec::new();
        let mut buf = Vec::new();
        for path in paths {
            if path.is_empty() {
                continue;
            }
            let Some((mode, id)) =
                history::entry_at(&reader, &at.tree, &path).map_err(crate::files::history_error)?
            else {
                continue;
            };
            let kind = match mode {
                0o040000 => history::EntryKind::Tree,
                0o160000 => history::EntryKind::Commit,
                _ => history::EntryKind::Blob,
            };
            let size = match kind {
                history::EntryKind::Blob => reader.header(&id)?.map(|(_, s)| s),
                _ => None,
            };
            let entry = history::Entry {
                path,
                mode,
                kind,
                id,
                size,
            };
            let lfs = crate::files::pointer_of(&reader, &entry, &mut buf)?;
            listed.push(Listed {
                entry,
                lfs,
                last_commit: None,
            });
        }
        if expand {
            crate::files::expand(&at, &reader, &mut listed)?;
        }
        Ok::<_, HttpError>(listed)
    })
    .await
    .map_err(|e| HttpError::Internal(format!("task failed: {e}")))??;
    let entries: Vec<Value> = listed.iter().map(entry_json).collect();
    Ok(json_response(StatusCode::OK, &json!(entries)))
}
