//! The JSON-RPC 2.0 artifact API (`POST /rpc`): `enable_git` and `get_git_url`.

use std::sync::Arc;

use gix_hash::ObjectId;
use objectstore::odb::build::{PackBuilder, TreeBuilder};
use objectstore::odb::ingest;
use refs::{RefTransaction, RefUpdate};
use serde::Deserialize;
use serde_json::{json, Value};

use crate::auth::{decide, Access, Decision, Grants};
use crate::http::App;
use crate::repo::{Repo, Settings};
use crate::storage::RepoId;

/// JSON-RPC error codes: the standard ones and the API's own.
pub mod code {
    pub const PARSE_ERROR: i64 = -32700;
    pub const INVALID_REQUEST: i64 = -32600;
    pub const METHOD_NOT_FOUND: i64 = -32601;
    pub const INVALID_PARAMS: i64 = -32602;
    pub const INTERNAL: i64 = -32603;
    pub const UNAUTHORIZED: i64 = -32001;
    pub const FORBIDDEN: i64 = -32003;
    pub const NOT_FOUND: i64 = -32004;
}

/// An error answer.
#[derive(Debug, Clone, PartialEq)]
pub struct RpcError {
    pub code: i64,
    pub message: String,
}

fn err(code: i64, message: impl Into<String>) -> RpcError {
    RpcError {
        code,
        message: message.into(),
    }
}

/// Answer one request body (a single call; batches are refused).
pub async fn handle(app: Arc<App>, identity: Option<Grants>, body: &[u8]) -> Value {
    let request: Value = match serde_json::from_slice(body) {
        Ok(v) => v,
        Err(e) => {
            return response(
                Value::Null,
                Err(err(code::PARSE_ERROR, format!("invalid JSON: {e}"))),
            )
        }
    };
    let id = request.get("id").cloned().unwrap_or(Value::Null);
    if request.get("jsonrpc").and_then(Value::as_str) != Some("2.0") {
        return response(
            id,
            Err(err(
                code::INVALID_REQUEST,
                "not a JSON-RPC 2.0 request (\"jsonrpc\": \"2.0\" is missing)",
            )),
        );
    }
    let Some(method) = request.get("method").and_then(Value::as_str) else {
        return response(
            id,
            Err(err(code::INVALID_REQUEST, "the request has no method")),
        );
    };
    let params = request
        .get("params")
        .cloned()
        .unwrap_or(Value::Object(Default::default()));
    let result = match method {
        "enable_git" => enable_git(&app, identity.as_ref(), params).await,
        "get_git_url" => get_git_url(&app, identity.as_ref(), params).await,
        other => Err(err(
            code::METHOD_NOT_FOUND,
            format!("unknown method {other:?}; the methods are enable_git and get_git_url"),
        )),
    };
    response(id, result)
}

fn response(id: Value, result: Result<Value, RpcError>) -> Value {
    match result {
        Ok(result) => json!({"jsonrpc": "2.0", "id": id, "result": result}),
        Err(e) => {
            json!({"jsonrpc": "2.0", "id": id, "error": {"code": e.code, "message": e.message}})
        }
    }
}

fn params<T: for<'de> Deserialize<'de>>(params: Value) -> Result<T, RpcError> {
    serde_json::from_value(params)
        .map_err(|e| err(code::INVALID_PARAMS, format!("invalid params: {e}")))
}

fn artifact(id: &str) -> Result<RepoId, RpcError> {
    id.parse::<RepoId>()
        .map_err(|e| err(code::INVALID_PARAMS, e))
}

/// Check `need` on the artifact, whatever state its repository is in.
async fn authorize(repo: &Repo, identity: Option<&Grants>, need: Access) -> Result<bool, RpcError> {
    let exists = repo
        .refs
        .exists()
        .await
        .map_err(|e| err(code::INTERNAL, e.to_string()))?;
    // Existence is only revealed to callers with some access; decide as if it existed.
    match decide(
        identity,
        true,
        false,
        need,
        &repo.id.workspace,
        &repo.id.alias,
    ) {
        Decision::Allow => Ok(exists),
        Decision::Unauthorized(m) => Err(err(code::UNAUTHORIZED, m)),
        Decision::Forbidden(m) => Err(err(code::FORBIDDEN, m)),
        Decision::NotFound => Err(err(code::NOT_FOUND, "not found")),
    }
}

fn git_url(app: &App, id: &RepoId) -> String {
    format!("{}/{}/git/{}", app.public_url, id.workspace, id.alias)
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct EnableGit {
    artifact_id: String,
    #[serde(default = "main")]
    default_branch: String,
    #[serde(default = "yes")]
    import_existing_files: bool,
    #[serde(default)]
    public: bool,
}

fn main() -> String {
    "main".into()
}
fn yes() -> bool {
    true
}

async fn enable_git(
    app: &Arc<App>,
    identity: Option<&Grants>,
    p: Value,
) -> Result<Value, RpcError> {
    let p: EnableGit = params(p)?;
    let id = artifact(&p.artifact_id)?;
    let repo = Repo::new(&app.storage, id.clone());
    if refs::validate_ref_name(&format!("refs/heads/{}", p.default_branch)).is_err() {
        return Err(err(
            code::INVALID_PARAMS,
            format!("invalid branch name {:?}", p.default_branch),
        ));
    }
    let exists = authorize(&repo, identity, Access::Admin).await?;
    if exists {
        let snapshot = repo
            .snapshot()
            .await
            .map_err(|e| err(code::INTERNAL, e.to_string()))?;
        let branch = snapshot
            .head
            .as_deref()
            .and_then(|h| h.strip_prefix("refs/heads/"))
            .unwrap_or("main")
            .to_owned();
        return Ok(json!({
            "git_url": git_url(app, &id),
            "default_branch": branch,
            "created": false,
            "imported_files": 0,
            "head": snapshot.head.as_deref().and_then(|h| snapshot.get(h)).map(|h| h.to_string()),
            "message": "git is already enabled for this artifact; nothing was changed",
        }));
    }
    repo.write_settings(&Settings { public: p.public })
        .await
        .map_err(|e| err(code::INTERNAL, e.to_string()))?;
    match repo.refs.init(&p.default_branch).await {
        Ok(()) => {}
        Err(refs::Error::AlreadyExists) => {
            return Err(err(
                code::INTERNAL,
                "the repository was created concurrently; call enable_git again",
            ));
        }
        Err(e) => return Err(err(code::INTERNAL, e.to_string())),
    }
    let (imported, head) = if p.import_existing_files {
        import_newest_version(app, &repo, &p.default_branch).await?
    } else {
        (0, None)
    };
    tracing::info!(repo = %id, imported, public = p.public, "git enabled");
    Ok(json!({
        "git_url": git_url(app, &id),
        "default_branch": p.default_branch,
        "created": true,
        "imported_files": imported,
        "head": head.map(|h| h.to_string()),
    }))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct GetGitUrl {
    artifact_id: String,
}

async fn get_git_url(
    app: &Arc<App>,
    identity: Option<&Grants>,
    p: Value,
) -> Result<Value, RpcError> {
    let p: GetGitUrl = params(p)?;
    let id = artifact(&p.artifact_id)?;
    let repo = Repo::new(&app.storage, id.clone());
    let exists = authorize(&repo, identity, Access::Read).await?;
    if !exists {
        return Err(err(
            code::NOT_FOUND,
            format!("git is not enabled for artifact {id}; enable it with the enable_git method (params: {{\"artifact_id\": \"{id}\"}})"),
        ));
    }
    Ok(json!({ "git_url": git_url(app, &id) }))
}

/// Commit the files of the artifact's newest version `v{N}/` as the first commit of `branch`.
async fn import_newest_version(
    app: &Arc<App>,
    repo: &Repo,
    branch: &str,
) -> Result<(usize, Option<ObjectId>), RpcError> {
    let storage = repo.storage();
    let base = format!(
        "{}{}/artifacts/{}/",
        storage.prefix, repo.id.workspace, repo.id.alias
    );
    let listing = storage
        .bucket
        .list(&base)
        .await
        .map_err(|e| err(code::INTERNAL, e.to_string()))?;
    let version = listing
        .iter()
        .filter_map(|m| m.key.strip_prefix(&base))
        .filter_map(|rest| rest.split_once('/'))
        .filter_map(|(dir, _)| dir.strip_prefix('v')?.parse::<u64>().ok())
        .max();
    let Some(version) = version else {
        return Ok((0, None));
    };
    let dir = format!("{base}v{version}/");
    let files: Vec<(String, u64)> = listing
        .iter()
        .filter_map(|m| m.key.strip_prefix(&dir).map(|p| (p.to_owned(), m.size)))
        .filter(|(p, _)| !p.is_empty() && !p.ends_with('/'))
        .collect();
    if files.is_empty() {
        return Ok((0, None));
    }
    let db = repo
        .fresh_objects(&app.cache)
        .await
        .map_err(|e| err(code::INTERNAL, e.to_string()))?;
    let staging = app.staging.clone();
    let bucket = storage.bucket.clone();
    let runtime = tokio::runtime::Handle::current();
    let message = format!("Import artifact {} version v{version}\n\nThe files of version v{version}, as they were when git was enabled.\n", repo.id);
    let repo_id = repo.id.clone();
    let built = tokio::task::spawn_blocking(move || -> Result<(ingest::Ingested, ObjectId, usize), String> {
        let mut pack = PackBuilder::new(&staging).map_err(|e| e.to_string())?;
        let mut tree = TreeBuilder::default();
        let tmp = tempfile::NamedTempFile::new_in(&staging).map_err(|e| e.to_string())?;
        let mut count = 0;
        for (path, _) in &files {
            let key = format!("{dir}{path}");
            let size = runtime.block_on(bucket.get_to_file(&key, tmp.path())).map_err(|e| e.to_string())?;
            let mut file = std::fs::File::open(tmp.path()).map_err(|e| e.to_string())?;
            let id = pack.add_from(gix_object::Kind::Blob, size, &mut file).map_err(|e| e.to_string())?;
            match tree.insert(path, id, 0o100644) {
                Ok(()) => count += 1,
                Err(e) => tracing::warn!(repo = %repo_id, path = %path, error = %e, "file not imported"),
            }
        }
        let root = tree.write(&mut pack).map_err(|e| e.to_string())?;
        let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_secs());
        let who = format!("artifact-git <artifact-git@localhost> {now} +0000");
        let commit = format!("tree {root}\nauthor {who}\ncommitter {who}\n\n{message}");
        let head = pack.add(gix_object::Kind::Commit, commit.as_bytes()).map_err(|e| e.to_string())?;
        let (path, _guard) = pack.finish().map_err(|e| e.to_string())?;
        let mut input = std::io::BufReader::new(std::fs::File::open(&path).map_err(|e| e.to_string())?);
        let ingested = ingest::index_pack(&db, &mut input, &staging, ingest::Limits::default()).map_err(|e| e.to_string())?;
        ingested.connectivity(&db).check(head).map_err(|e| e.to_string())?;
        runtime.block_on(ingested.publish(&db)).map_err(|e| e.to_string())?;
        Ok((ingested, head, count))
    })
    .await
    .map_err(|e| err(code::INTERNAL, e.to_string()))?
    .map_err(|e| err(code::INTERNAL, format!("importing the files failed: {e}")))?;
    let (_ingested, head, count) = built;
    let results = repo
        .refs
        .commit(&RefTransaction {
            updates: vec![RefUpdate {
                name: format!("refs/heads/{branch}"),
                old: ObjectId::null(gix_hash::Kind::Sha1),
                new: head,
                peeled: None,
            }],
            atomic: true,
        })
        .await
        .map_err(|e| err(code::INTERNAL, e.to_string()))?;
    if let Some(Some(reason)) = results.first() {
        return Err(err(
            code::INTERNAL,
            format!("recording the import failed: {reason}"),
        ));
    }
    Ok((count, Some(head)))
}
