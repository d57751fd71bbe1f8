//! Repositories as the Hub describes them: who the token is, creating a repository, its info
//! (with every file as a "sibling"), refs, commits, branches and tags.

use std::sync::Arc;

use http::{header, HeaderValue, Request, Response, StatusCode};
use hyper::body::Incoming;
use serde::Deserialize;
use serde_json::{json, Value};

use super::Kind;
use crate::app::App;
use crate::auth::{Access, Grants};
use crate::body::{self, ResponseBody};
use crate::repo::Repo;
use crate::response::{json as json_response, HttpError};
use crate::storage::{valid_name, RepoId};

/// Files listed in a repository's info at most (the client lists the tree beyond it).
const MAX_SIBLINGS: usize = 50_000;
/// Commits per page of `commits`.
const COMMITS_PER_PAGE: usize = 100;
/// The largest JSON body of these routes.
const MAX_BODY: u64 = 64 << 10;

/// Seconds since 1970 as the Hub writes dates: UTC, milliseconds, `Z`.
pub fn hub_date(seconds: i64) -> String {
    let sig = history::Signature {
        name: String::new(),
        email: String::new(),
        time: seconds,
        offset: 0,
    };
    let text = sig.rfc3339();
    format!("{}.000Z", text.trim_end_matches("+00:00"))
}

/// `whoami-v2`: the token's subject, and its workspaces as organizations.
pub fn whoami(identity: Option<&Grants>) -> Result<Response<ResponseBody>, HttpError> {
    let Some(grants) = identity else {
        return Err(HttpError::Unauthorized(
            "Invalid credentials in Authorization header".into(),
        ));
    };
    let name = grants.subject.clone().unwrap_or_else(|| "api".into());
    let top = grants.targets().iter().map(|(_, l)| *l).max();
    let role = match top {
        Some(Access::Write | Access::Admin) => "write",
        _ => "read",
    };
    let orgs: Vec<Value> = grants
        .targets()
        .into_iter()
        .filter(|(t, _)| !t.contains('/') && t != "*")
        .map(|(ws, level)| {
            let role = match level {
                Access::Admin => "admin",
                Access::Write => "write",
                Access::Read => "read",
            };
            json!({"type": "org", "name": ws, "fullname": ws, "roleInOrg": role})
        })
        .collect();
    let answer = json!({
        "type": "user",
        "id": name,
        "name": name,
        "fullname": name,
        "isPro": false,
        "canPay": false,
        "emailVerified": false,
        "orgs": orgs,
        "auth": {"type": "access_token", "accessToken": {"displayName": "artifact-git", "role": role}},
    });
    Ok(json_response(StatusCode::OK, &answer))
}

/// Read a small JSON body (an empty one reads as `{}`).
pub async fn json_body<T: for<'de> Deserialize<'de>>(
    app: &App,
    req: Request<Incoming>,
) -> Result<T, HttpError> {
    let data = body::read_all(req.into_body(), MAX_BODY, app.config.timeouts.request_body).await?;
    let data: &[u8] = if data.iter().all(u8::is_ascii_whitespace) {
        b"{}"
    } else {
        &data
    };
    serde_json::from_slice(data).map_err(|e| HttpError::BadRequest(format!("invalid JSON: {e}")))
}

#[derive(Deserialize)]
struct CreateRepo {
    name: String,
    #[serde(default)]
    organization: Option<String>,
    #[serde(default)]
    private: Option<bool>,
    #[serde(default, rename = "type")]
    kind: Option<String>,
}

/// The `.gitattributes` of a new repository: the file types models and datasets are made
/// of go to Git LFS, as on the Hub.
const NEW_REPO_ATTRIBUTES: &str = "\
*.7z filter=lfs diff=lfs merge=lfs -text
*.arrow filter=lfs diff=lfs merge=lfs -text
*.bin filter=lfs diff=lfs merge=lfs -text
*.bz2 filter=lfs diff=lfs merge=lfs -text
*.ckpt filter=lfs diff=lfs merge=lfs -text
*.gguf filter=lfs diff=lfs merge=lfs -text
*.gz filter=lfs diff=lfs merge=lfs -text
*.h5 filter=lfs diff=lfs merge=lfs -text
*.joblib filter=lfs diff=lfs merge=lfs -text
*.model filter=lfs diff=lfs merge=lfs -text
*.msgpack filter=lfs diff=lfs merge=lfs -text
*.npy filter=lfs diff=lfs merge=lfs -text
*.npz filter=lfs diff=lfs merge=lfs -text
*.onnx filter=lfs diff=lfs merge=lfs -text
*.parquet filter=lfs diff=lfs merge=lfs -text
*.pb filter=lfs diff=lfs merge=lfs -text
*.pickle filter=lfs diff=lfs merge=lfs -text
*.pkl filter=lfs diff=lfs merge=lfs -text
*.pt filter=lfs diff=lfs merge=lfs -text
*.pth filter=lfs diff=lfs merge=lfs -text
*.safetensors filter=lfs diff=lfs merge=lfs -text
*.tar filter=lfs diff=lfs merge=lfs -text
*.tflite filter=lfs diff=lfs merge=lfs -text
*.tgz filter=lfs diff=lfs merge=lfs -text
*.wasm filter=lfs diff=lfs merge=lfs -text
*.xz filter=lfs diff=lfs merge=lfs -text
*.zip filter=lfs diff=lfs merge=lfs -text
*.zst filter=lfs diff=lfs merge=lfs -text
";

/// The repository's URL as the client parses it back into a type and an id: always with the
/// type's segment (`models/`), which the client's parser needs when the endpoint has a path
/// of its own (`/hf`).
pub fn repo_url(base: &str, kind: Kind, id: &RepoId) -> String {
    format!("{base}/{}s/{}/{}", kind_api(kind), id.workspace, id.alias)
}

/// `repos/create`: a new repository (private unless asked otherwise) whose first commit holds
/// the `.gitattributes` above; 409 when it exists. Who may create one: a workspace admin,
/// or a writer where `--create-on-push=write` lets writers create repositories.
pub async fn create_repo(
    app: &Arc<App>,
    identity: Option<&Grants>,
    base: &str,
    req: Request<Incoming>,
) -> Result<Response<ResponseBody>, HttpError> {
    let Some(grants) = identity else {
        return Err(HttpError::Unauthorized("authentication required".into()));
    };
    let body: CreateRepo = json_body(app, req).await?;
    let workspace = match body.organization {
        Some(ws) => ws,
        // No namespace: the token's one workspace.
        None => {
            let mut own: Vec<String> = grants
                .targets()
                .into_iter()
                .map(|(t, _)| t)
                .filter(|t| !t.contains('/') && t != "*")
                .collect();
            own.dedup();
            match own.as_slice() {
                [one] => one.clone(),
                _ => {
                    return Err(HttpError::BadRequest(
                        "name the repository as workspace/name".into(),
                    ))
                }
            }
        }
    };
    if !valid_name(&workspace) || !valid_name(&body.name) {
        return Err(HttpError::BadRequest(
            "a repository id is workspace/name, each of letters, digits, '-', '_' and '.'".into(),
        ));
    }
    let kind = match body.kind.as_deref() {
        None | Some("model") => Kind::Model,
        Some("dataset") => Kind::Dataset,
        Some("space") => Kind::Space,
        Some(other) => {
            return Err(HttpError::BadRequest(format!(
                "unknown repo type {other:?}"
            )))
        }
    };
    let id = RepoId {
        workspace,
        alias: body.name,
    };
    let repo = Repo::new(&app.storage, id.clone());
    // As `enable_git`: an admin of the repository; writers too where pushes may create.
    let need = match app.config.create_on_push {
        crate::app::CreateOnPush::Write => Access::Write,
        _ => Access::Admin,
    };
    let allowed = crate::auth::authorize(identity, true, false, need, &id.workspace, &id.alias);
    if allowed.is_err() {
        return Err(HttpError::Forbidden(
            "this token may not create repositories in that workspace".into(),
        ));
    }
    let url = repo_url(base, kind, &id);
    match repo.refs.init("main", app.config.object_format).await {
        Ok(()) => {}
        Err(refs::Error::AlreadyExists) => {
            let answer = json!({"error": "You already created this repository", "url": url});
            return Ok(json_response(StatusCode::CONFLICT, &answer));
        }
        Err(e) => return Err(e.into()),
    }
    let settings = crate::repo::Settings {
        public: body.private == Some(false),
    };
    repo.write_settings(&settings).await?;
    let first = crate::rpc::commit::CommitRequest {
        artifact_id: id.to_string(),
        branch: "main".into(),
        expected: crate::rpc::commit::Expected::At(None),
        message: "initial commit".into(),
        author: None,
        changes: vec![crate::rpc::commit::Change::Put {
            path: ".gitattributes".into(),
            bytes: NEW_REPO_ATTRIBUTES.as_bytes().to_vec(),
            executable: false,
        }],
    };
    crate::rpc::commit::commit(app, identity, first).await?;
    tracing::info!(repo = %id, "repository created through the Hub API");
    Ok(json_response(
        StatusCode::OK,
        &json!({"url": url, "name": id.to_string(), "id": id.to_string()}),
    ))
}

/// Repository info at a revision (the default branch without one): its commit, privacy,
/// and every file as a sibling (sizes, blob ids and LFS details with `blobs=true`).
pub async fn info(
    app: &Arc<App>,
    kind: Kind,
    repo: Repo,
    snapshot: refs::Snapshot,
    settings: crate::repo::Settings,
    rev: Option<String>,
    query: &str,
) -> Result<Response<ResponseBody>, HttpError> {
    let blobs = form_urlencoded::parse(query.as_bytes())
        .any(|(k, v)| k == "blobs" && matches!(&*v, "1" | "true" | "True"));
    let id = repo.id.to_string();
    let mut answer = json!({
        "id": id,
        "author": repo.id.workspace,
        "private": !settings.public,
        "gated": false,
        "disabled": false,
        "downloads": 0,
        "likes": 0,
        "tags": [],
        "xetEnabled": false,
    });
    if kind == Kind::Model {
        answer["modelId"] = json!(id);
    }
    let rev = match rev {
        Some(r) => crate::files::decode_segment(&r)?,
        None if snapshot
            .head
            .as_deref()
            .and_then(|h| snapshot.get(h))
            .is_none() =>
        {
            // An empty repository: no commit, no files.
            answer["sha"] = Value::Null;
            answer["siblings"] = json!([]);
            return Ok(json_response(StatusCode::OK, &answer));
        }
        None => "HEAD".to_owned(),
    };
    let at = crate::files::open_at(app, repo, snapshot, rev).await?;
    let listed = {
        let at = at.clone();
        tokio::task::spawn_blocking(move || crate::files::list_files(&at, "", MAX_SIBLINGS, blobs))
            .await
            .map_err(|e| HttpError::Internal(format!("task failed: {e}")))??
    };
    let siblings: Vec<Value> = listed
        .iter()
        .map(|l| {
            let mut s = json!({"rfilename": l.entry.path});
            if blobs {
                s["blobId"] = json!(l.entry.id.to_string());
                s["size"] = json!(l.lfs.as_ref().map_or(l.entry.size, |p| Some(p.size)));
                if let Some(p) = &l.lfs {
                    s["lfs"] = json!({"size": p.size, "sha256": p.oid.as_str(), "pointerSize": l.entry.size});
                }
            }
            s
        })
        .collect();
    answer["sha"] = json!(at.commit.to_string());
    answer["lastModified"] = json!(hub_date(at.time));
    answer["siblings"] = json!(siblings);
    Ok(json_response(StatusCode::OK, &answer))
}

/// `refs`: branches and tags with their commits.
pub async fn refs(
    app: &Arc<App>,
    identity: Option<&Grants>,
    id: &RepoId,
) -> Result<Response<ResponseBody>, HttpError> {
    let listed =
        crate::rpc::branches::list_refs(app, identity, json!({"artifact_id": id.to_string()}))
            .await?;
    let convert = |items: &Value, commit_key: &str| -> Vec<Value> {
        items
            .as_array()
            .into_iter()
            .flatten()
            .map(|r| json!({"name": r["name"], "ref": r["ref"], "targetCommit": r[commit_key]}))
            .collect()
    };
    let answer = json!({
        "branches": convert(&listed["branches"], "commit"),
        "tags": convert(&listed["tags"], "commit"),
        "converts": [],
        "pullRequests": [],
    });
    Ok(json_response(StatusCode::OK, &answer))
}

/// `commits/{rev}`: the history, newest first, a page at a time (`Link` to the next).
pub async fn commits(
    app: &Arc<App>,
    repo: Repo,
    snapshot: refs::Snapshot,
    base: &str,
    kind: Kind,
    rev: &str,
    query: &str,
) -> Result<Response<ResponseBody>, HttpError> {
    let page: usize = form_urlencoded::parse(query.as_bytes())
        .find(|(k, _)| k == "p")
        .map(|(_, v)| {
            v.parse()
                .map_err(|_| HttpError::BadRequest("invalid page".into()))
        })
        .transpose()?
        .unwrap_or(0);
    if page > 100_000 {
        return Err(HttpError::BadRequest("invalid page".into()));
    }
    let id = repo.id.clone();
    let at = crate::files::open_at(app, repo, snapshot, crate::files::decode_segment(rev)?).await?;
    let (db, tip) = (at.db.clone(), at.commit);
    let (items, more) = tokio::task::spawn_blocking(move || {
        let reader = db.reader();
        let limits = history::LogLimits {
            max_commits: COMMITS_PER_PAGE,
            max_visited: 1_000_000,
        };
        let log = history::log_page(&reader, &tip, None, page * COMMITS_PER_PAGE, limits)?;
        let mut items = Vec::with_capacity(log.commits.len());
        for c in &log.commits {
            let info = history::commit_info(&reader, c)?;
            let (title, message) = match info.message.split_once('\n') {
                Some((t, rest)) => (t.to_owned(), rest.trim_start_matches('\n').to_owned()),
                None => (info.message.clone(), String::new()),
            };
            items.push(json!({
                "id": c.to_string(),
                "title": title,
                "message": message,
                "authors": [{"user": info.author.name}],
                "date": hub_date(info.committer.time),
            }));
        }
        Ok::<_, history::Error>((items, log.truncated))
    })
    .await
    .map_err(|e| HttpError::Internal(format!("task failed: {e}")))?
    .map_err(crate::files::history_error)?;
    let mut resp = json_response(StatusCode::OK, &json!(items));
    if more {
        let next = format!(
            "<{base}/api/{}s/{id}/commits/{rev}?p={}>; rel=\"next\"",
            kind_api(kind),
            page + 1
        );
        if let Ok(v) = HeaderValue::from_str(&next) {
            resp.headers_mut().insert(header::LINK, v);
        }
    }
    Ok(resp)
}

/// `model`, `dataset` or `space`, as API paths name them (with an `s`).
pub fn kind_api(kind: Kind) -> &'static str {
    match kind {
        Kind::Model => "model",
        Kind::Dataset => "dataset",
        Kind::Space => "space",
    }
}

#[derive(Deserialize)]
struct BranchBody {
    #[serde(default, rename = "startingPoint")]
    starting_point: Option<String>,
}

/// `POST branch/{name}` (from `startingPoint`, the default branch without one; 409 when it
/// exists), `DELETE branch/{name}`.
pub async fn branch(
    app: &Arc<App>,
    identity: Option<&Grants>,
    id: &RepoId,
    name: &[String],
    delete: bool,
    req: Request<Incoming>,
) -> Result<Response<ResponseBody>, HttpError> {
    let name = decoded_name(name)?;
    let artifact = id.to_string();
    if delete {
        crate::rpc::branches::delete_branch(
            app,
            identity,
            json!({"artifact_id": artifact, "branch": name}),
        )
        .await
        .map_err(not_found_is_revision)?;
        return Ok(json_response(StatusCode::OK, &json!({})));
    }
    let body: BranchBody = json_body(app, req).await?;
    let rev = body.starting_point.unwrap_or_else(|| "HEAD".into());
    crate::rpc::branches::create_branch(
        app,
        identity,
        json!({"artifact_id": artifact, "branch": name, "rev": rev}),
    )
    .await
    .map_err(not_found_is_revision)?;
    Ok(json_response(StatusCode::OK, &json!({})))
}

#[derive(Deserialize)]
struct TagBody {
    tag: String,
    #[serde(default)]
    message: Option<String>,
}

/// `POST tag/{revision}` with `{"tag", "message"}` (annotated with a message), `DELETE
/// tag/{tag}`.
pub async fn tag(
    app: &Arc<App>,
    identity: Option<&Grants>,
    id: &RepoId,
    name: &[String],
    delete: bool,
    req: Request<Incoming>,
) -> Result<Response<ResponseBody>, HttpError> {
    let name = decoded_name(name)?;
    let artifact = id.to_string();
    if delete {
        crate::rpc::branches::delete_tag(
            app,
            identity,
            json!({"artifact_id": artifact, "tag": name}),
        )
        .await
        .map_err(not_found_is_revision)?;
        return Ok(json_response(StatusCode::OK, &json!({})));
    }
    let body: TagBody = json_body(app, req).await?;
    let message = body.message.filter(|m| !m.trim().is_empty());
    crate::rpc::branches::create_tag(
        app,
        identity,
        json!({"artifact_id": artifact, "tag": body.tag, "rev": name, "message": message}),
    )
    .await
    .map_err(not_found_is_revision)?;
    Ok(json_response(StatusCode::OK, &json!({})))
}

/// A name given raw or percent-encoded over one or more segments.
fn decoded_name(segments: &[String]) -> Result<String, HttpError> {
    let parts: Vec<String> = segments
        .iter()
        .map(|s| crate::files::decode_segment(s))
        .collect::<Result<_, _>>()?;
    Ok(parts.join("/"))
}

/// The repository exists (it was opened): what is not found is the revision or ref.
fn not_found_is_revision(e: crate::rpc::RpcError) -> HttpError {
    match e {
        crate::rpc::RpcError::NotFound(m) => HttpError::RevisionNotFound(m),
        crate::rpc::RpcError::InvalidParams(m) if m.contains("unknown revision") => {
            HttpError::RevisionNotFound(m)
        }
        e => e.into(),
    }
}
