//! A repository's files over plain HTTP, under its clone URL:
//!
//! - `GET|HEAD …/resolve/{rev}/{path}`: a file's bytes ([`resolve`]), a Git LFS file's
//!   content (a redirect to the bucket on S3), with ranges and validators;
//! - `GET …/tree/{rev}/{path}`: a folder as JSON ([`tree`]);
//! - `GET …/archive/{rev}.zip|.tar.gz|.tgz|.tar`: an archive of the tree or of a folder
//!   ([`archive`]);
//! - `GET …/revision/{rev}`: what a revision names (commit, tree);
//! - `POST …/git-upload-archive`: `git archive --remote` ([`upload_archive`]).
//!
//! `rev` is a branch, a tag, a commit id or any revision `resolve_commit` reads; a name with
//! `/` in it is given percent-encoded (`feature%2Fx`), or as is when it names a branch or tag
//! (the longest such name wins). Paths are percent-encoded segments. The router has
//! authorized the caller for reading; a revision resolves only within what the refs reach.

mod archive;
pub mod range;
mod resolve;
mod tree;
pub mod upload_archive;

use std::sync::Arc;

use gix_hash::ObjectId;
use http::{Method, Request, Response};
use hyper::body::Incoming;
use objectstore::ObjectDb;

use crate::app::App;
use crate::body::ResponseBody;
use crate::repo::Repo;
use crate::response::HttpError;

pub use resolve::{serve_file, FileRequest, FileView};
pub use tree::{
    entry_type, expand, folder_json, list_entries, list_files, pointer_of, FolderQuery, LastCommit,
    Listed,
};

/// Which file route a path names; segments still percent-encoded.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FilesRoute {
    /// `resolve/{rev}/{path}`.
    Resolve(Vec<String>),
    /// `tree/{rev}[/{path}]`.
    Tree(Vec<String>),
    /// `archive/{rev}.{ext}`.
    Archive(Vec<String>),
    /// `revision/{rev}`.
    Revision(Vec<String>),
}

impl FilesRoute {
    /// The route of the segments after the repository's URL.
    pub fn parse(rest: &[&str]) -> Option<FilesRoute> {
        let (first, tail) = rest.split_first()?;
        let tail: Vec<String> = tail.iter().map(|s| (*s).to_owned()).collect();
        if tail.is_empty() {
            return None;
        }
        Some(match *first {
            "resolve" => FilesRoute::Resolve(tail),
            "tree" => FilesRoute::Tree(tail),
            "archive" => FilesRoute::Archive(tail),
            "revision" => FilesRoute::Revision(tail),
            _ => return None,
        })
    }
}

/// Decode one percent-encoded path segment; a segment that decodes to something no path
/// component may be (a `/`, a NUL, invalid UTF-8) is refused.
pub fn decode_segment(segment: &str) -> Result<String, HttpError> {
    let decoded = percent_encoding::percent_decode_str(segment)
        .decode_utf8()
        .map_err(|_| HttpError::BadRequest("a path segment is not UTF-8".into()))?;
    if decoded.contains('\0') {
        return Err(HttpError::BadRequest("a path holds a NUL byte".into()));
    }
    Ok(decoded.into_owned())
}

/// Split decoded segments into a revision and a path: the first segment, unless a longer run
/// of segments names a branch or tag of `snapshot`.
pub fn split_revision(
    snapshot: &refs::Snapshot,
    segments: &[String],
) -> Result<(String, String), HttpError> {
    let mut rev_len = 1;
    for n in (2..=segments.len()).rev() {
        let name = segments[..n].join("/");
        if ["refs/heads/", "refs/tags/"]
            .iter()
            .any(|p| snapshot.get(&format!("{p}{name}")).is_some())
        {
            rev_len = n;
            break;
        }
    }
    let rev = segments[..rev_len].join("/");
    let rest = &segments[rev_len..];
    // `//x` would be an absolute path: refused, not read as `x` (a trailing `/` is fine).
    if rest.iter().rev().skip(1).any(String::is_empty) {
        return Err(HttpError::BadRequest(
            "a path has an empty component".into(),
        ));
    }
    let path = rest.join("/");
    let path = history::normalize_path(&path).map_err(|e| HttpError::BadRequest(e.to_string()))?;
    // A component no checkout could hold: git refuses `.git` in trees, so nothing is there.
    if path.split('/').any(|c| c.eq_ignore_ascii_case(".git")) {
        return Err(HttpError::EntryNotFound(format!("no file {path:?}")));
    }
    Ok((rev, path))
}

/// A repository opened at a revision.
#[derive(Clone)]
pub struct AtRevision {
    /// The repository.
    pub repo: Repo,
    /// Its refs when opened.
    pub snapshot: refs::Snapshot,
    /// Its objects.
    pub db: ObjectDb,
    /// The revision as asked.
    pub rev: String,
    /// The commit it names.
    pub commit: ObjectId,
    /// That commit's tree.
    pub tree: ObjectId,
    /// The commit's committer time.
    pub time: i64,
    /// The revision is a full commit id: what it names never changes.
    pub immutable: bool,
}

/// How history errors reach a client of these routes.
pub fn history_error(e: history::Error) -> HttpError {
    match e {
        history::Error::UnknownRevision(rev) => {
            HttpError::RevisionNotFound(format!("revision not found: {rev:?}"))
        }
        e @ (history::Error::AmbiguousRevision(_) | history::Error::InvalidPath(_)) => {
            HttpError::BadRequest(e.to_string())
        }
        e @ history::Error::NoSuchPath(_) => HttpError::EntryNotFound(e.to_string()),
        e => HttpError::Storage(e.to_string()),
    }
}

/// Whether resolving `rev` may need object ids (an id or abbreviation not naming a ref):
/// only then is the set of commits the refs reach worked out.
fn needs_ids(snapshot: &refs::Snapshot, rev: &str) -> bool {
    let base = &rev[..rev.find(['~', '^']).unwrap_or(rev.len())];
    if base == "HEAD" || base == "@" {
        return false;
    }
    let named = [
        base.to_owned(),
        format!("refs/{base}"),
        format!("refs/tags/{base}"),
        format!("refs/heads/{base}"),
    ]
    .iter()
    .any(|name| snapshot.get(name).is_some());
    !named && base.len() >= 4 && base.bytes().all(|b| b.is_ascii_hexdigit())
}

/// Open `repo` at `rev`.
pub async fn open_at(
    app: &App,
    repo: Repo,
    snapshot: refs::Snapshot,
    rev: String,
) -> Result<AtRevision, HttpError> {
    let db = repo
        .objects_having(
            &app.cache,
            snapshot.object_hash,
            snapshot.refs.values().map(|v| &v.target),
        )
        .await?;
    let visible = match needs_ids(&snapshot, &rev) {
        true => app
            .visible
            .get(&repo, &snapshot, &db)
            .await
            .map_err(|e| HttpError::Storage(e.to_string()))?,
        false => Arc::default(),
    };
    let (db2, snapshot2, rev2) = (db.clone(), snapshot.clone(), rev.clone());
    let (commit, tree, time) = tokio::task::spawn_blocking(move || {
        let reader = db2.reader();
        let commit = history::resolve_commit(&reader, &snapshot2, &visible, &rev2)?;
        let parsed = reader.commit(&commit)?;
        Ok::<_, history::Error>((commit, parsed.tree, parsed.time))
    })
    .await
    .map_err(|e| HttpError::Internal(format!("task failed: {e}")))?
    .map_err(history_error)?;
    let immutable = rev.len() == commit.kind().len_in_hex()
        && ObjectId::from_hex(rev.as_bytes()).is_ok_and(|id| id == commit);
    Ok(AtRevision {
        repo,
        snapshot,
        db,
        rev,
        commit,
        tree,
        time,
        immutable,
    })
}

/// Answer a file route.
pub async fn handle(
    app: Arc<App>,
    repo: Repo,
    snapshot: refs::Snapshot,
    route: FilesRoute,
    req: Request<Incoming>,
) -> Result<Response<ResponseBody>, HttpError> {
    let head = req.method() == Method::HEAD;
    if req.method() != Method::GET && !head {
        return Err(HttpError::MethodNotAllowed("use GET or HEAD"));
    }
    let decode = |segments: &[String]| -> Result<Vec<String>, HttpError> {
        segments.iter().map(|s| decode_segment(s)).collect()
    };
    let query = req.uri().query().unwrap_or("").to_owned();
    match route {
        FilesRoute::Resolve(segments) => {
            let (rev, path) = split_revision(&snapshot, &decode(&segments)?)?;
            if path.is_empty() {
                return Err(HttpError::BadRequest(
                    "name a file after the revision".into(),
                ));
            }
            let at = open_at(&app, repo, snapshot, rev).await?;
            let ask = FileRequest::from_headers(req.headers(), head);
            serve_file(&app, &at, &path, &ask, FileView::Plain).await
        }
        FilesRoute::Tree(segments) => {
            let (rev, path) = split_revision(&snapshot, &decode(&segments)?)?;
            let q = FolderQuery::parse(&query)?;
            let at = open_at(&app, repo, snapshot, rev).await?;
            let json = folder_json(&app, &at, &path, &q).await?;
            Ok(crate::response::json(http::StatusCode::OK, &json))
        }
        FilesRoute::Revision(segments) => {
            let (rev, path) = split_revision(&snapshot, &decode(&segments)?)?;
            if !path.is_empty() {
                return Err(HttpError::NotFound("not found".into()));
            }
            let at = open_at(&app, repo, snapshot, rev).await?;
            let json = serde_json::json!({
                "rev": at.rev,
                "commit": at.commit.to_string(),
                "tree": at.tree.to_string(),
            });
            Ok(crate::response::json(http::StatusCode::OK, &json))
        }
        FilesRoute::Archive(segments) => {
            let decoded = decode(&segments)?.join("/");
            let Some((rev, format)) = history::archive::Format::from_name(&decoded) else {
                return Err(HttpError::NotFound(
                    "an archive is {rev}.zip, {rev}.tar.gz, {rev}.tgz or {rev}.tar".into(),
                ));
            };
            let q = archive::ArchiveQuery::parse(&query)?;
            let at = open_at(&app, repo, snapshot, rev.to_owned()).await?;
            archive::serve(app, at, format, q, head).await
        }
    }
}
