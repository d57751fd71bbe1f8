//! The JSON-RPC 2.0 artifact API (`POST /rpc`): parsing, dispatch, and the one place errors
//! become JSON-RPC error codes.

use std::sync::Arc;

use serde::Deserialize;
use serde_json::{json, Value};

use crate::app::App;
use crate::auth::{authorize as authorize_call, Access, Grants};
use crate::repo::{Repo, Settings};
use crate::storage::RepoId;

pub(crate) mod branches;
mod bundle;
pub(crate) mod commit;
mod events;
mod history;
pub(crate) mod lifecycle;
mod policy;
mod pulls;
pub(crate) mod reclaim;
mod signin;
mod upstreams;
mod versions;

/// JSON-RPC error codes: the standard ones and the API's own.
pub mod code {
    /// The body is not JSON.
    pub const PARSE_ERROR: i64 = -32700;
    /// Not a JSON-RPC 2.0 request.
    pub const INVALID_REQUEST: i64 = -32600;
    /// No such method.
    pub const METHOD_NOT_FOUND: i64 = -32601;
    /// The params do not fit the method.
    pub const INVALID_PARAMS: i64 = -32602;
    /// The server failed.
    pub const INTERNAL: i64 = -32603;
    /// No (valid) token.
    pub const UNAUTHORIZED: i64 = -32001;
    /// The token lacks the permission.
    pub const FORBIDDEN: i64 = -32003;
    /// No such artifact or repository.
    pub const NOT_FOUND: i64 = -32004;
    /// The state changed meanwhile (a stale expected value, a concurrent creation).
    pub const CONFLICT: i64 = -32009;
    /// The repository's push policy refuses the write.
    pub const POLICY: i64 = -32010;
    /// The write would pass the repository's hard limit.
    pub const QUOTA: i64 = -32011;
    /// The server has no memory for the answer now: try again.
    pub const BUSY: i64 = -32029;
}

/// An error answer.
#[derive(Debug, thiserror::Error)]
pub enum RpcError {
    /// The body is not JSON.
    #[error("invalid JSON: {0}")]
    Parse(String),
    /// Not a JSON-RPC 2.0 request.
    #[error("{0}")]
    InvalidRequest(&'static str),
    /// No such method.
    #[error("unknown method {0:?}; the methods are enable_git, get_git_url, add_webhook, list_webhooks, update_webhook, remove_webhook, list_deliveries, redeliver, add_mirror, list_mirrors, remove_mirror, sync_mirror, log, show, diff, read_file, list_files, commit_files, lfs_placement, restore, create_snapshot, list_snapshots, list_refs, list_branches, create_branch, delete_branch, create_tag, delete_tag, set_push_policy, get_push_policy, validate_push_policy, create_pr, get_pr, list_prs, update_pr, close_pr, reopen_pr, get_diff, submit_review, list_reviews, merge_pr, bundle, add_upstream, list_upstreams, sync_upstream, remove_upstream, import_repository, git_status, list_repositories, delete_repository, restore_repository, disable_git, get_usage, set_quota, list_lfs_files, delete_lfs_files, squash_history, set_git_settings, commit_version and create_signin_link")]
    MethodNotFound(String),
    /// The params do not fit the method.
    #[error("invalid params: {0}")]
    InvalidParams(String),
    /// No (valid) token.
    #[error("{0}")]
    Unauthorized(String),
    /// The token lacks the permission.
    #[error("{0}")]
    Forbidden(String),
    /// No such artifact or repository.
    #[error("{0}")]
    NotFound(String),
    /// The state changed meanwhile.
    #[error("{0}")]
    Conflict(String),
    /// A ref is not where the caller said it is (or where it was read): read it again.
    #[error("{0}")]
    Stale(String),
    /// The repository's push policy refuses the write (the reason as git would show it).
    #[error("{0}")]
    Policy(String),
    /// The write would pass the repository's hard limit.
    #[error("{0}")]
    Quota(String),
    /// The server failed; the message says where.
    #[error("{0}")]
    Internal(String),
    /// The memory for the answer is not there now.
    #[error("the server is busy; try again in a few seconds")]
    Busy,
}

impl RpcError {
    /// The JSON-RPC code of this error.
    pub fn code(&self) -> i64 {
        match self {
            RpcError::Parse(_) => code::PARSE_ERROR,
            RpcError::InvalidRequest(_) => code::INVALID_REQUEST,
            RpcError::MethodNotFound(_) => code::METHOD_NOT_FOUND,
            RpcError::InvalidParams(_) => code::INVALID_PARAMS,
            RpcError::Unauthorized(_) => code::UNAUTHORIZED,
            RpcError::Forbidden(_) => code::FORBIDDEN,
            RpcError::NotFound(_) => code::NOT_FOUND,
            RpcError::Conflict(_) | RpcError::Stale(_) => code::CONFLICT,
            RpcError::Policy(_) => code::POLICY,
            RpcError::Quota(_) => code::QUOTA,
            RpcError::Internal(_) => code::INTERNAL,
            RpcError::Busy => code::BUSY,
        }
    }
}

/// Failures of storage become internal errors, logged where they are mapped.
macro_rules! internal_from {
    ($($t:ty),*) => {$(
        impl From<$t> for RpcError {
            fn from(e: $t) -> Self {
                tracing::error!(error = %e, "api request failed");
                RpcError::Internal(e.to_string())
            }
        }
    )*};
}
internal_from!(objectstore::bucket::Error);

impl From<refs::Error> for RpcError {
    fn from(e: refs::Error) -> Self {
        match e {
            // Deleted meanwhile (or never there): what the caller asked about is not found.
            refs::Error::NotFound => RpcError::NotFound(e.to_string()),
            e => {
                tracing::error!(error = %e, "api request failed");
                RpcError::Internal(e.to_string())
            }
        }
    }
}

impl From<crate::visible::VisibleError> for RpcError {
    fn from(e: crate::visible::VisibleError) -> Self {
        tracing::error!(error = %e, "api request failed");
        RpcError::Internal(e.to_string())
    }
}

impl From<crate::auth::Denied> for RpcError {
    fn from(denied: crate::auth::Denied) -> Self {
        match denied {
            crate::auth::Denied::Unauthorized(m) => RpcError::Unauthorized(m),
            crate::auth::Denied::Forbidden(m) => RpcError::Forbidden(m),
            crate::auth::Denied::NotFound => RpcError::NotFound("not found".into()),
        }
    }
}

impl From<objectstore::odb::Error> for RpcError {
    /// Objects a call wrote that break a rule are the caller's; anything else is internal.
    fn from(e: objectstore::odb::Error) -> Self {
        match e {
            objectstore::odb::Error::Refused(r) => RpcError::InvalidParams(r.to_string()),
            e => {
                tracing::error!(error = %e, "api request failed");
                RpcError::Internal(e.to_string())
            }
        }
    }
}

/// The answer to a write the landing did not apply for another reason than the ref
/// transaction's (those are the caller's to word: a stale `expected_head`, say).
fn landing_error(
    rejection: crate::landing::Rejection,
    refused: Option<crate::landing::Refused>,
) -> RpcError {
    use crate::landing::{Refused, Rejection};
    match (rejection, refused) {
        (_, Some(Refused::Objects(reason))) => RpcError::InvalidParams(reason),
        (_, Some(Refused::Storage(reason))) => RpcError::Internal(reason),
        (_, Some(Refused::Quota(reason))) => RpcError::Quota(reason),
        (Rejection::Policy(reason), None) => RpcError::Policy(reason),
        (Rejection::Unknown, None) => RpcError::Internal(Rejection::Unknown.to_string()),
        (rejection, None) => RpcError::Internal(rejection.to_string()),
    }
}

impl From<crate::import::ImportError> for RpcError {
    fn from(e: crate::import::ImportError) -> Self {
        match e {
            crate::import::ImportError::Refused(r) => {
                RpcError::Conflict(format!("the default branch was created concurrently: {r}"))
            }
            e @ crate::import::ImportError::Invalid(_) => RpcError::InvalidParams(e.to_string()),
            e => {
                tracing::error!(error = %e, "import failed");
                RpcError::Internal(format!("importing the files failed: {e}"))
            }
        }
    }
}

/// Answer one request body (a single call; batches are refused).
/// An answer, and the memory reserved for it (held until it is sent).
pub struct Answer {
    /// The JSON-RPC response.
    pub json: Value,
    /// What a large answer reserved from the memory budget.
    pub held: Option<objectstore::budget::Reservation>,
}

/// Answer one call by `identity`; `base_url` is what links in the answer start with.
pub async fn handle(
    app: Arc<App>,
    identity: Option<Grants>,
    base_url: &str,
    body: &[u8],
) -> Answer {
    let mut held = None;
    let json = answer(&app, identity, base_url, body, &mut held).await;
    Answer { json, held }
}

async fn answer(
    app: &Arc<App>,
    identity: Option<Grants>,
    base_url: &str,
    body: &[u8],
    held: &mut Option<objectstore::budget::Reservation>,
) -> Value {
    let request: Value = match serde_json::from_slice(body) {
        Ok(v) => v,
        Err(e) => return response(Value::Null, Err(RpcError::Parse(e.to_string()))),
    };
    let id = request.get("id").cloned().unwrap_or(Value::Null);
    if request.get("jsonrpc").and_then(Value::as_str) != Some("2.0") {
        return response(
            id,
            Err(RpcError::InvalidRequest(
                "not a JSON-RPC 2.0 request (\"jsonrpc\": \"2.0\" is missing)",
            )),
        );
    }
    let Some(method) = request.get("method").and_then(Value::as_str) else {
        return response(
            id,
            Err(RpcError::InvalidRequest("the request has no method")),
        );
    };
    let params = request
        .get("params")
        .cloned()
        .unwrap_or(Value::Object(Default::default()));
    let started = std::time::Instant::now();
    let result = call(app, identity.as_ref(), base_url, method, params, held).await;
    // Only method names this server has become labels: a client cannot grow the set.
    let label = match &result {
        Err(RpcError::MethodNotFound(_)) => "unknown".to_owned(),
        _ => method.to_owned(),
    };
    crate::metrics::observe_labelled(crate::metrics::RPC_SECONDS, "method", label, started);
    response(id, result)
}

/// Call `method` with `params` as `identity`: the one dispatch of the API, for `/rpc` and for
/// the web view's pages (which render the same answers). A large answer's memory reservation
/// goes to `held`.
pub(crate) async fn call(
    app: &Arc<App>,
    identity: Option<&Grants>,
    base_url: &str,
    method: &str,
    params: Value,
    held: &mut Option<objectstore::budget::Reservation>,
) -> Result<Value, RpcError> {
    match method {
        "enable_git" => enable_git(app, identity, base_url, params).await,
        "get_git_url" => get_git_url(app, identity, base_url, params).await,
        "add_webhook" => events::add_webhook(app, identity, params).await,
        "list_webhooks" => events::list_webhooks(app, identity, params).await,
        "update_webhook" => events::update_webhook(app, identity, params).await,
        "remove_webhook" => events::remove_webhook(app, identity, params).await,
        "list_deliveries" => events::list_deliveries(app, identity, params).await,
        "redeliver" => events::redeliver(app, identity, params).await,
        "add_mirror" => events::add_mirror(app, identity, params).await,
        "list_mirrors" => events::list_mirrors(app, identity, params).await,
        "remove_mirror" => events::remove_mirror(app, identity, params).await,
        "sync_mirror" => events::sync_mirror(app, identity, params).await,
        "log" => history::log(app, identity, params).await,
        "show" => history::diff(app, identity, params, true).await,
        "diff" => history::diff(app, identity, params, false).await,
        "read_file" => history::read_file(app, identity, base_url, params)
            .await
            .map(|(value, reservation)| {
                *held = Some(reservation);
                value
            }),
        "list_files" => history::list_files(app, identity, params).await,
        "commit_files" => commit::commit_files(app, identity, params).await,
        "lfs_placement" => commit::lfs_placement(app, identity, params).await,
        "restore" => history::restore(app, identity, params).await,
        "create_snapshot" => history::create_snapshot(app, identity, params).await,
        "list_snapshots" => history::list_snapshots(app, identity, params).await,
        "list_refs" => branches::list_refs(app, identity, params).await,
        "list_branches" => branches::list_branches(app, identity, params).await,
        "create_branch" => branches::create_branch(app, identity, params).await,
        "delete_branch" => branches::delete_branch(app, identity, params).await,
        "create_tag" => branches::create_tag(app, identity, params).await,
        "delete_tag" => branches::delete_tag(app, identity, params).await,
        "set_push_policy" => policy::set_push_policy(app, identity, params).await,
        "get_push_policy" => policy::get_push_policy(app, identity, params).await,
        "validate_push_policy" => policy::validate_push_policy(app, identity, params).await,
        "create_pr" => pulls::create_pr(app, identity, params).await,
        "get_pr" => pulls::get_pr(app, identity, params).await,
        "list_prs" => pulls::list_prs(app, identity, params).await,
        "update_pr" => pulls::update_pr(app, identity, params).await,
        "close_pr" => pulls::set_open(app, identity, params, false).await,
        "reopen_pr" => pulls::set_open(app, identity, params, true).await,
        "get_diff" => pulls::get_diff(app, identity, params).await,
        "submit_review" => pulls::submit_review(app, identity, params).await,
        "list_reviews" => pulls::list_reviews(app, identity, params).await,
        "merge_pr" => pulls::merge_pr(app, identity, params).await,
        "bundle" => bundle::bundle(app, identity, base_url, params).await,
        "add_upstream" => upstreams::add_upstream(app, identity, base_url, params).await,
        "list_upstreams" => upstreams::list_upstreams(app, identity, base_url, params).await,
        "sync_upstream" => upstreams::sync_upstream(app, identity, params).await,
        "remove_upstream" => upstreams::remove_upstream(app, identity, params).await,
        "import_repository" => upstreams::import_repository(app, identity, base_url, params).await,
        "git_status" => upstreams::git_status(app, identity, base_url, params).await,
        "list_repositories" => lifecycle::list_repositories(app, identity, params).await,
        "delete_repository" | "disable_git" => {
            lifecycle::delete_repository(app, identity, params).await
        }
        "restore_repository" => lifecycle::restore_repository(app, identity, params).await,
        "get_usage" => lifecycle::get_usage(app, identity, params).await,
        "set_quota" => lifecycle::set_quota(app, identity, params).await,
        "list_lfs_files" => reclaim::list_lfs_files(app, identity, params).await,
        "delete_lfs_files" => reclaim::delete_lfs_files(app, identity, params).await,
        "squash_history" => reclaim::squash_history(app, identity, params).await,
        "set_git_settings" => versions::set_git_settings(app, identity, params).await,
        "commit_version" => versions::commit_version(app, identity, params).await,
        "create_signin_link" => signin::create_signin_link(app, identity, base_url, params).await,
        other => Err(RpcError::MethodNotFound(other.to_owned())),
    }
}

/// A refusal of the API as another surface (the Hub API) answers it.
impl From<RpcError> for crate::response::HttpError {
    fn from(e: RpcError) -> Self {
        use crate::response::HttpError;
        match e {
            RpcError::Parse(m) | RpcError::InvalidParams(m) => HttpError::BadRequest(m),
            e @ (RpcError::InvalidRequest(_) | RpcError::MethodNotFound(_)) => {
                HttpError::BadRequest(e.to_string())
            }
            RpcError::Unauthorized(m) => HttpError::Unauthorized(m),
            RpcError::Forbidden(m) => HttpError::Forbidden(m),
            RpcError::NotFound(m) => HttpError::NotFound(m),
            RpcError::Conflict(m) | RpcError::Stale(m) => HttpError::Conflict(m),
            RpcError::Policy(m) => HttpError::Forbidden(m),
            RpcError::Quota(m) => HttpError::QuotaExceeded(m),
            RpcError::Internal(m) => HttpError::Internal(m),
            RpcError::Busy => HttpError::Busy,
        }
    }
}

fn response(id: Value, result: Result<Value, RpcError>) -> Value {
    match result {
        Ok(result) => json!({"jsonrpc": "2.0", "id": id, "result": result}),
        Err(e) => json!({
            "jsonrpc": "2.0",
            "id": id,
            "error": {"code": e.code(), "message": e.to_string()}
        }),
    }
}

fn params<T: for<'de> Deserialize<'de>>(params: Value) -> Result<T, RpcError> {
    serde_json::from_value(params).map_err(|e| RpcError::InvalidParams(e.to_string()))
}

fn artifact(id: &str) -> Result<RepoId, RpcError> {
    id.parse::<RepoId>().map_err(RpcError::InvalidParams)
}

/// Check `need` on the artifact, whatever state its repository is in; whether it exists.
/// A public repository is readable by anyone, as over git: a read the caller's grants do not
/// cover is allowed when the repository exists and its settings say public.
async fn authorize(repo: &Repo, identity: Option<&Grants>, need: Access) -> Result<bool, RpcError> {
    let exists = repo.refs.exists().await?;
    // Existence is only revealed to callers with some access; decide as if it existed.
    let granted = authorize_call(
        identity,
        true,
        false,
        need,
        &repo.id.workspace,
        &repo.id.alias,
    );
    match granted {
        Ok(()) => Ok(exists),
        Err(_) if need == Access::Read && exists && repo.settings().await?.public => Ok(true),
        Err(denied) => Err(denied.into()),
    }
}

/// The clone URL of `id` under `base_url`.
fn git_url(base_url: &str, id: &RepoId) -> String {
    format!("{base_url}/{}/git/{}", id.workspace, id.alias)
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
    /// Files larger than this become Git LFS objects (default: `--lfs-threshold`).
    #[serde(default)]
    lfs_threshold: Option<u64>,
    /// Publish an artifact version on every push that moves the default branch.
    #[serde(default)]
    sync_versions: bool,
    /// The hash that names its objects, `sha1` (the default) or `sha256`.
    #[serde(default)]
    object_format: Option<String>,
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
    base_url: &str,
    p: Value,
) -> Result<Value, RpcError> {
    let p: EnableGit = params(p)?;
    let id = artifact(&p.artifact_id)?;
    let repo = Repo::new(&app.storage, id.clone());
    if refs::validate_branch_name(&p.default_branch).is_err() {
        return Err(RpcError::InvalidParams(format!(
            "invalid branch name {:?}",
            p.default_branch
        )));
    }
    let object_format = match p.object_format.as_deref() {
        None => app.config.object_format,
        Some(name) => objectstore::format::by_name(name).ok_or_else(|| {
            RpcError::InvalidParams(format!(
                "unknown object_format {name:?}: use \"sha1\" or \"sha256\""
            ))
        })?,
    };
    let exists = authorize(&repo, identity, Access::Admin).await?;
    if exists && crate::lifecycle::tombstone(&repo).await?.is_some() {
        return Err(RpcError::Conflict(format!(
            "{id} was deleted: restore it with restore_repository, or purge it with delete_repository {{purge: true}} first"
        )));
    }
    if exists {
        let snapshot = repo.snapshot().await?;
        if p.object_format.is_some() && snapshot.object_hash != object_format {
            return Err(RpcError::Conflict(format!(
                "git is already enabled for {id} with object format {}",
                snapshot.object_hash
            )));
        }
        let branch = snapshot
            .head
            .as_deref()
            .and_then(|h| h.strip_prefix("refs/heads/"))
            .unwrap_or("main")
            .to_owned();
        return Ok(json!({
            "git_url": git_url(base_url, &id),
            "default_branch": branch,
            "created": false,
            "object_format": snapshot.object_hash.to_string(),
            "imported_files": 0,
            "head": snapshot.head.as_deref().and_then(|h| snapshot.get(h)).map(|h| h.to_string()),
            "message": "git is already enabled for this artifact; nothing was changed",
        }));
    }
    // `HEAD`, written create-only, makes the one creator; only the creator's settings are
    // written (until then the repository reads as private, the safe default).
    match repo.refs.init(&p.default_branch, object_format).await {
        Ok(()) => {}
        Err(refs::Error::AlreadyExists) => {
            return Err(RpcError::Conflict(
                "the repository was created concurrently; call enable_git again".into(),
            ))
        }
        Err(e) => return Err(e.into()),
    }
    repo.write_settings(&Settings { public: p.public }).await?;
    let imported = if p.import_existing_files {
        let threshold = p.lfs_threshold.unwrap_or(app.config.lfs_threshold);
        crate::import::import_newest_version(app, &repo, &p.default_branch, threshold).await?
    } else {
        crate::import::Imported::default()
    };
    if p.sync_versions {
        versions::set_sync(app, &repo, true).await?;
    }
    tracing::info!(repo = %id, imported = imported.files, public = p.public, sync_versions = p.sync_versions, "git enabled");
    Ok(json!({
        "git_url": git_url(base_url, &id),
        "default_branch": p.default_branch,
        "created": true,
        "object_format": object_format.to_string(),
        "imported_files": imported.files,
        "lfs_files": imported.lfs_files,
        "head": imported.head.map(|h| h.to_string()),
        "sync_versions": p.sync_versions,
    }))
}

/// The params of methods that take only the artifact.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ArtifactOnly {
    artifact_id: String,
}

async fn get_git_url(
    app: &Arc<App>,
    identity: Option<&Grants>,
    base_url: &str,
    p: Value,
) -> Result<Value, RpcError> {
    let p: ArtifactOnly = params(p)?;
    let id = artifact(&p.artifact_id)?;
    let repo = Repo::new(&app.storage, id.clone());
    let exists = authorize(&repo, identity, Access::Read).await?;
    if !exists {
        return Err(RpcError::NotFound(format!(
            "git is not enabled for artifact {id}; enable it with the enable_git method (params: {{\"artifact_id\": \"{id}\"}})"
        )));
    }
    Ok(json!({ "git_url": git_url(base_url, &id) }))
}
