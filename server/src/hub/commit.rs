//! Writing through the Hub API: `preupload/{rev}` says which files go through Git LFS (the
//! client then uploads them with the LFS batch API this server speaks), and `commit/{rev}`
//! takes the client's ndjson commit (a header, files inline in base64, LFS files by
//! reference, deletions) and makes it one commit through the one commit path.

use std::sync::Arc;

use base64::Engine;
use gix_hash::ObjectId;
use http::{Request, Response, StatusCode};
use hyper::body::Incoming;
use serde::Deserialize;
use serde_json::{json, Value};

use super::Kind;
use crate::app::App;
use crate::auth::Grants;
use crate::body::{self, ResponseBody};
use crate::repo::Repo;
use crate::response::{json as json_response, HttpError};
use crate::rpc::commit::{Change, CommitRequest, Expected};

/// Files one `preupload` may ask about (the client sends 256 at a time).
const MAX_PREUPLOAD: usize = 1000;
/// The largest `preupload` body (samples of 512 bytes, base64).
const MAX_PREUPLOAD_BODY: u64 = 2 << 20;

#[derive(Deserialize)]
struct Preupload {
    files: Vec<PreuploadFile>,
}

#[derive(Deserialize)]
struct PreuploadFile {
    path: String,
    #[serde(default)]
    sample: String,
    size: u64,
}

/// The branch a write names (`main`, `refs/heads/main`); commits go to branches only.
fn branch_of(rev: &str) -> Result<String, HttpError> {
    let rev = crate::files::decode_segment(rev)?;
    let short = rev.strip_prefix("refs/heads/").unwrap_or(&rev).to_owned();
    if short.starts_with("refs/") || refs::validate_branch_name(&short).is_err() {
        return Err(HttpError::BadRequest(format!(
            "{rev:?} is not a branch: commits go to branches (pull requests are not supported)"
        )));
    }
    Ok(short)
}

/// The branch's commit; a missing branch is only writable in an empty repository.
fn base_of(snapshot: &refs::Snapshot, branch: &str) -> Result<Option<ObjectId>, HttpError> {
    match snapshot.get(&format!("refs/heads/{branch}")) {
        Some(c) => Ok(Some(c)),
        None if snapshot.refs.is_empty() => Ok(None),
        None => Err(HttpError::RevisionNotFound(format!(
            "no branch {branch:?}: create it first"
        ))),
    }
}

/// `POST preupload/{rev}`: per file, `lfs` when the branch's `.gitattributes` tracks it, it
/// is larger than the server's threshold, or its first bytes are binary; `regular`
/// otherwise; with the id of what is at the path now (so unchanged files are skipped).
pub async fn preupload(
    app: &Arc<App>,
    repo: Repo,
    snapshot: refs::Snapshot,
    rev: &str,
    req: Request<Incoming>,
) -> Result<Response<ResponseBody>, HttpError> {
    let branch = branch_of(rev)?;
    let data = body::read_all(
        req.into_body(),
        MAX_PREUPLOAD_BODY,
        app.config.timeouts.request_body,
    )
    .await?;
    let asked: Preupload = serde_json::from_slice(&data)
        .map_err(|e| HttpError::BadRequest(format!("invalid JSON: {e}")))?;
    if asked.files.len() > MAX_PREUPLOAD {
        return Err(HttpError::BadRequest(format!(
            "at most {MAX_PREUPLOAD} files"
        )));
    }
    let base = base_of(&snapshot, &branch)?;
    let db = repo
        .objects_having(
            &app.cache,
            snapshot.object_hash,
            snapshot.refs.values().map(|v| &v.target),
        )
        .await?;
    let threshold = app.config.lfs_threshold;
    let files = tokio::task::spawn_blocking(move || {
        let reader = db.reader();
        let tree = base.map(|c| reader.commit(&c)).transpose()?.map(|c| c.tree);
        let mut buf = Vec::new();
        let attributes = match tree.map(|t| history::entry_at(&reader, &t, ".gitattributes")) {
            Some(Ok(Some((_, id)))) => {
                reader.read(&id, &mut buf)?;
                buf.clone()
            }
            Some(Err(e)) => return Err(crate::files::history_error(e)),
            _ => Vec::new(),
        };
        let patterns = lfs::attributes::lfs_patterns(&attributes);
        let mut out = Vec::with_capacity(asked.files.len());
        for f in asked.files {
            let path = history::normalize_path(&f.path)
                .map_err(|e| HttpError::BadRequest(e.to_string()))?;
            let sample = base64::engine::general_purpose::STANDARD
                .decode(f.sample.as_bytes())
                .unwrap_or_default();
            let tracked = lfs::attributes::tracked_by_lfs(&patterns, &path);
            let binary = sample.contains(&0);
            let lfs = f.size > 0
                && (crate::placement::goes_to_lfs(tracked, f.size, Some(threshold)) || binary);
            // What is there now: the blob id, or for an LFS file the object's SHA-256 (what
            // the client compares its own file with).
            let existing = match tree.map(|t| history::entry_at(&reader, &t, &path)) {
                Some(Ok(Some((mode, id)))) if mode != 0o040000 && mode != 0o160000 => {
                    let size = reader.header(&id)?.map_or(0, |(_, s)| s);
                    let pointer = match size <= 1024 {
                        true => {
                            reader.read(&id, &mut buf)?;
                            lfs::Pointer::parse(&buf)
                        }
                        false => None,
                    };
                    Some(pointer.map_or(id.to_string(), |p| p.oid.as_str().to_owned()))
                }
                _ => None,
            };
            out.push(json!({
                "path": f.path,
                "uploadMode": if lfs { "lfs" } else { "regular" },
                "shouldIgnore": false,
                "oid": existing,
            }));
        }
        Ok::<_, HttpError>(out)
    })
    .await
    .map_err(|e| HttpError::Internal(format!("task failed: {e}")))??;
    Ok(json_response(StatusCode::OK, &json!({"files": files})))
}

/// One line of the commit payload.
#[derive(Deserialize)]
struct Line {
    key: String,
    value: Value,
}

#[derive(Deserialize)]
struct Header {
    summary: String,
    #[serde(default)]
    description: String,
    #[serde(default, rename = "parentCommit")]
    parent_commit: Option<String>,
}

#[derive(Deserialize)]
struct InlineFile {
    path: String,
    content: String,
    #[serde(default)]
    encoding: Option<String>,
}

#[derive(Deserialize)]
struct LfsFile {
    path: String,
    oid: String,
    #[serde(default)]
    size: Option<u64>,
    #[serde(default)]
    algo: Option<String>,
}

#[derive(Deserialize)]
struct Deleted {
    path: String,
}

fn field<T: for<'de> Deserialize<'de>>(key: &str, value: Value) -> Result<T, HttpError> {
    serde_json::from_value(value).map_err(|e| HttpError::BadRequest(format!("{key}: {e}")))
}

/// The header and changes of an ndjson commit payload.
fn parse_payload(data: &[u8]) -> Result<(Header, Vec<Change>), HttpError> {
    let mut header = None;
    let mut changes = Vec::new();
    for line in data.split(|b| *b == b'\n') {
        if line.iter().all(u8::is_ascii_whitespace) {
            continue;
        }
        let Line { key, value } = serde_json::from_slice(line)
            .map_err(|e| HttpError::BadRequest(format!("invalid payload line: {e}")))?;
        match key.as_str() {
            "header" => header = Some(field::<Header>(&key, value)?),
            "file" => {
                let f: InlineFile = field(&key, value)?;
                let bytes = match f.encoding.as_deref() {
                    None | Some("base64") => base64::engine::general_purpose::STANDARD
                        .decode(f.content.as_bytes())
                        .map_err(|e| HttpError::BadRequest(format!("{}: {e}", f.path)))?,
                    Some("utf-8" | "utf8") => f.content.into_bytes(),
                    Some(other) => {
                        return Err(HttpError::BadRequest(format!("unknown encoding {other:?}")))
                    }
                };
                changes.push(Change::Put {
                    path: f.path,
                    bytes,
                    executable: false,
                });
            }
            "lfsFile" => {
                let f: LfsFile = field(&key, value)?;
                if f.algo.as_deref().is_some_and(|a| a != "sha256") {
                    return Err(HttpError::BadRequest(
                        "LFS objects are named by sha256".into(),
                    ));
                }
                let oid = lfs::Oid::parse(&f.oid)
                    .ok_or_else(|| HttpError::BadRequest(format!("{}: invalid oid", f.path)))?;
                changes.push(Change::Lfs {
                    path: f.path,
                    oid,
                    size: f.size,
                    executable: false,
                });
            }
            "deletedFile" | "deletedFolder" => {
                let d: Deleted = field(&key, value)?;
                changes.push(Change::Delete {
                    path: d.path.trim_end_matches('/').to_owned(),
                });
            }
            other => {
                return Err(HttpError::BadRequest(format!(
                    "unsupported commit operation {other:?}"
                )))
            }
        }
    }
    let header = header.ok_or_else(|| HttpError::BadRequest("the payload has no header".into()))?;
    Ok((header, changes))
}

/// How many changes an ndjson commit payload holds, or why it is refused (for fuzzing).
pub(super) fn count_changes(data: &[u8]) -> Result<usize, HttpError> {
    parse_payload(data).map(|(_, changes)| changes.len())
}

/// Where a commit goes, to answer its URL.
pub struct Target<'a> {
    pub base: &'a str,
    pub kind: Kind,
    pub rev: &'a str,
}

/// `POST commit/{rev}`: one commit on the branch, on top of `parentCommit` when given
/// (refused if the branch moved), on top of whatever is there otherwise.
pub async fn commit(
    app: &Arc<App>,
    identity: Option<&Grants>,
    repo: Repo,
    snapshot: refs::Snapshot,
    target: Target<'_>,
    req: Request<Incoming>,
) -> Result<Response<ResponseBody>, HttpError> {
    if form_urlencoded::parse(req.uri().query().unwrap_or("").as_bytes())
        .any(|(k, v)| k == "create_pr" && v != "0" && v != "false")
    {
        return Err(HttpError::BadRequest(
            "pull requests are not supported by this server: commit to a branch".into(),
        ));
    }
    let branch = branch_of(target.rev)?;
    let current = base_of(&snapshot, &branch)?;
    let limit = app.config.limits.max_hub_commit_bytes;
    // The payload is held in memory (decoded, about twice): reserved before it is read.
    let declared = req
        .headers()
        .get(http::header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok())
        .unwrap_or(limit)
        .min(limit);
    let _held = app
        .budget
        .reserve(declared.saturating_mul(2), app.config.timeouts.queue)
        .map_err(|_| HttpError::Busy)?;
    let data = body::read_all(req.into_body(), limit, app.config.timeouts.request_body).await?;
    let (header, changes) = parse_payload(&data)?;
    drop(data);
    let expected = match header.parent_commit.as_deref() {
        None => Expected::Latest,
        Some(parent) => {
            let parent = parent.to_ascii_lowercase();
            if parent.len() < 7 || !parent.bytes().all(|b| b.is_ascii_hexdigit()) {
                return Err(HttpError::BadRequest(
                    "parentCommit is not a commit id".into(),
                ));
            }
            match current {
                Some(c) if c.to_string().starts_with(&parent) => Expected::At(Some(c)),
                _ => {
                    return Err(HttpError::Conflict(format!(
                        "the branch {branch:?} is not at the parent commit {parent}"
                    )))
                }
            }
        }
    };
    let message = match header.description.trim() {
        "" => header.summary,
        description => format!("{}\n\n{description}", header.summary),
    };
    let request = CommitRequest {
        artifact_id: repo.id.to_string(),
        branch,
        expected,
        message,
        author: None,
        changes,
    };
    let committed = crate::rpc::commit::commit(app, identity, request)
        .await
        .map_err(|e| match e {
            // The repository was found: what is missing is a path (or an LFS object).
            crate::rpc::RpcError::NotFound(m) => HttpError::EntryNotFound(m),
            e => e.into(),
        })?;
    let url = format!(
        "{}/commit/{}",
        super::repos::repo_url(target.base, target.kind, &repo.id),
        committed.commit
    );
    Ok(json_response(
        StatusCode::OK,
        &json!({
            "commitUrl": url,
            "commitOid": committed.commit.to_string(),
            "pullRequestUrl": null,
            "success": true,
        }),
    ))
}
