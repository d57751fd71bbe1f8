//! The Hugging Face Hub's HTTP API, the part its Python client (`huggingface_hub`) uses,
//! under `/hf`: with `HF_ENDPOINT={public_url}/hf` and a token of ours, `hf_hub_download`,
//! `snapshot_download`, `HfFileSystem`, `upload_file`/`upload_folder`, `create_commit`,
//! branches, tags, refs and commits work against artifact repositories. A repository id is
//! `{workspace}/{alias}`; models, datasets and spaces all name the same repositories.
//!
//! This adapter is thin: files come from [`crate::files`], listings from `history`, commits
//! go through the one commit path ([`crate::rpc::commit`]) and so through the landing, LFS
//! uploads through the Git LFS batch API this server already speaks. Errors are answered as
//! the Hub answers them (`X-Error-Code`, `X-Error-Message`, `{"error": ...}`), so the client
//! raises its own exceptions (repository, revision and entry not found).
//!
//! What the Hub does and this server does not: Xet storage (LFS batch requests get the
//! `basic` transfer, and clients that offer Xet fall back to it), gated repositories, pull
//! requests (`create_pr`), discussions, spaces' runtime, likes and download counts (zero).

mod commit;
mod repos;
mod storage;
mod tree;

use std::sync::Arc;

use http::{header, HeaderValue, Method, Request, Response};
use hyper::body::Incoming;

use crate::app::App;
use crate::auth::Access;
use crate::body::ResponseBody;
use crate::files::decode_segment;
use crate::response::HttpError;
use crate::storage::{valid_name, RepoId};

/// Check an ndjson commit payload as the commit route reads it (for fuzzing): `Ok` with the
/// number of changes, or the reason it is refused.
pub fn check_commit_payload(data: &[u8]) -> Result<usize, HttpError> {
    commit::count_changes(data)
}

/// The URL prefix of a repository type, as the client writes it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// Models: no prefix in file URLs, `models` in API paths.
    Model,
    /// `datasets`.
    Dataset,
    /// `spaces`.
    Space,
}

impl Kind {
    fn from_api(segment: &str) -> Option<Kind> {
        match segment {
            "models" => Some(Kind::Model),
            "datasets" => Some(Kind::Dataset),
            "spaces" => Some(Kind::Space),
            _ => None,
        }
    }

    /// The prefix of file and repository URLs (`datasets/`).
    pub fn url_prefix(self) -> &'static str {
        match self {
            Kind::Model => "",
            Kind::Dataset => "datasets/",
            Kind::Space => "spaces/",
        }
    }
}

/// What a `/hf` path asks for; revisions and paths still percent-encoded.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum HubRoute {
    /// `GET /api/whoami-v2`.
    WhoAmI,
    /// `POST /api/repos/create`.
    CreateRepo,
    /// `POST /api/validate-yaml`: a model card's metadata (not checked here).
    ValidateYaml,
    /// `GET /api/{kind}/{repo}[/revision/{rev}]`.
    Info(Kind, RepoId, Option<String>),
    /// `GET /api/{kind}/{repo}/tree/{rev}[/{path}]`.
    Tree(Kind, RepoId, String, Vec<String>),
    /// `POST /api/{kind}/{repo}/paths-info/{rev}`.
    PathsInfo(RepoId, String),
    /// `GET /api/{kind}/{repo}/refs`.
    Refs(RepoId),
    /// `GET /api/{kind}/{repo}/commits/{rev}`.
    Commits(Kind, RepoId, String),
    /// `POST /api/{kind}/{repo}/preupload/{rev}`.
    Preupload(RepoId, String),
    /// `POST /api/{kind}/{repo}/commit/{rev}`.
    Commit(Kind, RepoId, String),
    /// `POST|DELETE /api/{kind}/{repo}/branch/{branch}`.
    Branch(RepoId, Vec<String>),
    /// `POST /api/{kind}/{repo}/tag/{rev}`, `DELETE …/tag/{tag}`.
    Tag(RepoId, Vec<String>),
    /// `GET|HEAD /[{kind}/]{repo}/resolve/{rev}/{path}`.
    Resolve(RepoId, Vec<String>),
    /// `/[{kind}/]{repo}.git/info/lfs/...`.
    Lfs(RepoId, crate::lfs_http::LfsRoute),
    /// `DELETE /api/repos/delete`.
    DeleteRepo,
    /// `POST /api/{kind}/{repo}/super-squash/{branch}`.
    SuperSquash(RepoId, String),
    /// `GET /api/{kind}/{repo}/lfs-files`.
    LfsFiles(RepoId),
    /// `POST /api/{kind}/{repo}/lfs-files/batch`.
    LfsFilesDelete(RepoId),
}

fn repo_id(ws: &str, alias: &str) -> Option<RepoId> {
    (valid_name(ws) && valid_name(alias)).then(|| RepoId {
        workspace: ws.to_owned(),
        alias: alias.to_owned(),
    })
}

fn owned(segments: &[&str]) -> Vec<String> {
    segments.iter().map(|s| (*s).to_owned()).collect()
}

impl HubRoute {
    /// Parse the path after `/hf`.
    pub fn parse(path: &str) -> Option<HubRoute> {
        let parts: Vec<&str> = path.trim_start_matches('/').split('/').collect();
        match parts.as_slice() {
            ["api", "whoami-v2"] => Some(HubRoute::WhoAmI),
            ["api", "repos", "create"] => Some(HubRoute::CreateRepo),
            ["api", "repos", "delete"] => Some(HubRoute::DeleteRepo),
            ["api", "validate-yaml"] => Some(HubRoute::ValidateYaml),
            ["api", kind, ws, alias, rest @ ..] => {
                let kind = Kind::from_api(kind)?;
                let id = repo_id(ws, alias)?;
                Some(match rest {
                    [] => HubRoute::Info(kind, id, None),
                    ["revision", rev] => HubRoute::Info(kind, id, Some((*rev).to_owned())),
                    ["tree", rev, path @ ..] => {
                        HubRoute::Tree(kind, id, (*rev).to_owned(), owned(path))
                    }
                    ["paths-info", rev] => HubRoute::PathsInfo(id, (*rev).to_owned()),
                    ["refs"] => HubRoute::Refs(id),
                    ["commits", rev] => HubRoute::Commits(kind, id, (*rev).to_owned()),
                    ["preupload", rev] => HubRoute::Preupload(id, (*rev).to_owned()),
                    ["commit", rev] => HubRoute::Commit(kind, id, (*rev).to_owned()),
                    ["branch", name @ ..] if !name.is_empty() => HubRoute::Branch(id, owned(name)),
                    ["tag", name @ ..] if !name.is_empty() => HubRoute::Tag(id, owned(name)),
                    ["super-squash", branch] => HubRoute::SuperSquash(id, (*branch).to_owned()),
                    ["lfs-files"] => HubRoute::LfsFiles(id),
                    ["lfs-files", "batch"] => HubRoute::LfsFilesDelete(id),
                    _ => return None,
                })
            }
            _ => {
                let rest = match parts.as_slice() {
                    [kind, rest @ ..] if Kind::from_api(kind).is_some_and(|k| k != Kind::Model) => {
                        rest
                    }
                    rest => rest,
                };
                match rest {
                    [ws, alias, "resolve", tail @ ..] if tail.len() >= 2 => {
                        Some(HubRoute::Resolve(repo_id(ws, alias)?, owned(tail)))
                    }
                    [ws, alias, "info", "lfs", lfs @ ..] => {
                        let alias = alias.strip_suffix(".git")?;
                        let route = crate::lfs_http::LfsRoute::parse(lfs)?;
                        Some(HubRoute::Lfs(repo_id(ws, alias)?, route))
                    }
                    _ => None,
                }
            }
        }
    }
}

/// Answer a request under `/hf` (its path given without the prefix).
pub async fn handle(app: Arc<App>, req: Request<Incoming>, path: &str) -> Response<ResponseBody> {
    let Some(route) = HubRoute::parse(path) else {
        return hub_error(HttpError::NotFound(format!(
            "this server does not serve {path:?} of the Hub API"
        )));
    };
    match route_request(app, req, route).await {
        Ok(resp) => resp,
        Err(e) => hub_error(e),
    }
}

async fn route_request(
    app: Arc<App>,
    req: Request<Incoming>,
    route: HubRoute,
) -> Result<Response<ResponseBody>, HttpError> {
    let identity = crate::admission::caller(&req)?;
    let base = format!(
        "{}/hf",
        crate::request::base_url(&req, &app.config.public.url)
    );
    let method = req.method().clone();
    let open = |id: RepoId, need: Access| {
        let (app, identity) = (app.clone(), identity.clone());
        async move { crate::admission::open_repository(&app, identity.as_ref(), id, need).await }
    };
    match (method, route) {
        (Method::GET, HubRoute::WhoAmI) => repos::whoami(identity.as_ref()),
        // The card's metadata is the card's business here: nothing to refuse.
        (Method::POST, HubRoute::ValidateYaml) => Ok(crate::response::json(
            http::StatusCode::OK,
            &serde_json::json!({"errors": [], "warnings": []}),
        )),
        (Method::POST, HubRoute::CreateRepo) => {
            repos::create_repo(&app, identity.as_ref(), &base, req).await
        }
        (Method::GET, HubRoute::Info(kind, id, rev)) => {
            let (repo, snapshot, settings) = open(id, Access::Read).await?;
            let q = req.uri().query().unwrap_or("").to_owned();
            repos::info(&app, kind, repo, snapshot, settings, rev, &q).await
        }
        (Method::GET, HubRoute::Tree(kind, id, rev, path)) => {
            let (repo, snapshot, _) = open(id.clone(), Access::Read).await?;
            let q = req.uri().query().unwrap_or("").to_owned();
            let link = tree::Link {
                base: &base,
                kind,
                id: &id,
                rev: &rev,
                path: &path,
            };
            tree::tree(&app, repo, snapshot, link, &q).await
        }
        (Method::POST, HubRoute::PathsInfo(id, rev)) => {
            let (repo, snapshot, _) = open(id, Access::Read).await?;
            tree::paths_info(&app, repo, snapshot, &rev, req).await
        }
        (Method::GET, HubRoute::Refs(id)) => {
            open(id.clone(), Access::Read).await?;
            repos::refs(&app, identity.as_ref(), &id).await
        }
        (Method::GET, HubRoute::Commits(kind, id, rev)) => {
            let (repo, snapshot, _) = open(id.clone(), Access::Read).await?;
            let q = req.uri().query().unwrap_or("").to_owned();
            repos::commits(&app, repo, snapshot, &base, kind, &rev, &q).await
        }
        (Method::POST, HubRoute::Preupload(id, rev)) => {
            let (repo, snapshot, _) = open(id, Access::Write).await?;
            commit::preupload(&app, repo, snapshot, &rev, req).await
        }
        (Method::POST, HubRoute::Commit(kind, id, rev)) => {
            let (repo, snapshot, _) = open(id, Access::Write).await?;
            let target = commit::Target {
                base: &base,
                kind,
                rev: &rev,
            };
            commit::commit(&app, identity.as_ref(), repo, snapshot, target, req).await
        }
        (m @ (Method::POST | Method::DELETE), HubRoute::Branch(id, name)) => {
            open(id.clone(), Access::Write).await?;
            repos::branch(
                &app,
                identity.as_ref(),
                &id,
                &name,
                m == Method::DELETE,
                req,
            )
            .await
        }
        (m @ (Method::POST | Method::DELETE), HubRoute::Tag(id, name)) => {
            open(id.clone(), Access::Write).await?;
            repos::tag(
                &app,
                identity.as_ref(),
                &id,
                &name,
                m == Method::DELETE,
                req,
            )
            .await
        }
        (Method::GET | Method::HEAD, HubRoute::Resolve(id, segments)) => {
            let head = req.method() == Method::HEAD;
            let (repo, snapshot, _) = open(id, Access::Read).await?;
            resolve(&app, repo, snapshot, &segments, &req, head).await
        }
        (Method::DELETE, HubRoute::DeleteRepo) => {
            storage::delete_repo(&app, identity.as_ref(), req).await
        }
        (Method::POST, HubRoute::SuperSquash(id, branch)) => {
            storage::super_squash(&app, identity.as_ref(), &id, &branch, req).await
        }
        (Method::GET, HubRoute::LfsFiles(id)) => {
            storage::list_lfs_files(&app, identity.as_ref(), &id).await
        }
        (Method::POST, HubRoute::LfsFilesDelete(id)) => {
            storage::delete_lfs_files(&app, identity.as_ref(), &id, req).await
        }
        (_, HubRoute::Lfs(id, route)) => {
            let need = route.access(&req);
            let (repo, _, settings) = open(id, need).await?;
            Ok(crate::lfs_http::handle(app, repo, identity, settings.public, route, req).await)
        }
        _ => Err(HttpError::MethodNotAllowed("method not allowed")),
    }
}

/// A file: the revision is one (percent-encoded) segment, the path the rest.
async fn resolve(
    app: &Arc<App>,
    repo: crate::repo::Repo,
    snapshot: refs::Snapshot,
    segments: &[String],
    req: &Request<Incoming>,
    head: bool,
) -> Result<Response<ResponseBody>, HttpError> {
    let rev = decode_segment(&segments[0])?;
    let rest: Vec<String> = segments[1..]
        .iter()
        .map(|s| decode_segment(s))
        .collect::<Result<_, _>>()?;
    if rest.iter().rev().skip(1).any(String::is_empty) {
        return Err(HttpError::BadRequest(
            "a path has an empty component".into(),
        ));
    }
    let path = history::normalize_path(&rest.join("/"))
        .map_err(|e| HttpError::BadRequest(e.to_string()))?;
    if path.is_empty() || path.split('/').any(|c| c.eq_ignore_ascii_case(".git")) {
        return Err(HttpError::EntryNotFound(format!("no file {path:?}")));
    }
    let at = crate::files::open_at(app, repo, snapshot, rev).await?;
    let ask = crate::files::FileRequest::from_headers(req.headers(), head);
    match crate::files::serve_file(app, &at, &path, &ask, crate::files::FileView::Plain).await {
        // The client remembers that the file is not at this commit.
        Err(HttpError::EntryNotFound(m)) => {
            let mut resp = hub_error(HttpError::EntryNotFound(m));
            if let Ok(v) = HeaderValue::from_str(&at.commit.to_string()) {
                resp.headers_mut().insert("x-repo-commit", v);
            }
            Ok(resp)
        }
        other => other,
    }
}

/// An error as the Hub answers it: the status, `X-Error-Code` for the not-found kinds the
/// client tells apart, `X-Error-Message`, and `{"error": message}`.
pub fn hub_error(e: HttpError) -> Response<ResponseBody> {
    let bad_token =
        matches!(&e, HttpError::Unauthorized(m) if m.starts_with("invalid credentials"));
    let code = match &e {
        // A private repository is not found by whoever may not read it, as on the Hub.
        HttpError::NotFound(_) => Some("RepoNotFound"),
        HttpError::Unauthorized(_) if !bad_token => Some("RepoNotFound"),
        HttpError::RevisionNotFound(_) => Some("RevisionNotFound"),
        HttpError::EntryNotFound(_) => Some("EntryNotFound"),
        _ => None,
    };
    let status = e.status();
    let message = e.to_string();
    let body_message = message.clone();
    // The standard answer keeps its headers (a challenge, Retry-After); the body becomes JSON.
    let mut resp = e.into_response();
    *resp.body_mut() = crate::body::full(serde_json::json!({ "error": body_message }).to_string());
    *resp.status_mut() = status;
    let h = resp.headers_mut();
    h.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    if let Some(code) = code {
        h.insert("x-error-code", HeaderValue::from_static(code));
    }
    // The client tells a bad token apart by these very words.
    let message = match bad_token {
        true => "Invalid credentials in Authorization header".to_owned(),
        false => message,
    };
    let one_line: String = message
        .chars()
        .map(|c| {
            if c.is_ascii_graphic() || c == ' ' {
                c
            } else {
                ' '
            }
        })
        .take(300)
        .collect();
    if let Ok(v) = HeaderValue::from_str(&one_line) {
        h.insert("x-error-message", v);
    }
    resp
}
