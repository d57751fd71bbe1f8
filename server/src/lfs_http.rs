//! The Git LFS API of a repository, under `<repository URL>/info/lfs/`, where `git lfs` finds it
//! from the clone URL: the batch API, the server's own basic transfer endpoints (used where the
//! bucket has no presigned URLs, or for objects too large for one presigned PUT), `verify`, and
//! file locking.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use futures_util::StreamExt;
use http::{header, Method, Request, Response, StatusCode};
use hyper::body::Incoming;
use lfs::api::{self, BatchRequest, BatchResponse, ObjectError, ObjectResponse, Operation};
use lfs::{LockError, Locks, Oid, Store, VerifyError};
use serde::Serialize;

use crate::app::App;
use crate::auth::{authorize, Access, Grants};
use crate::body::{self, full, ResponseBody};
use crate::repo::Repo;
use crate::response::HttpError;

/// An LFS endpoint of a repository.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LfsRoute {
    /// `objects/batch`.
    Batch,
    /// `objects/<oid>`: the server's own transfers.
    Object(String),
    /// `verify`.
    Verify,
    /// `locks`.
    Locks,
    /// `locks/verify`.
    LocksVerify,
    /// `locks/<id>/unlock`.
    Unlock(String),
}

impl LfsRoute {
    /// The route after `info/lfs/`.
    pub fn parse(rest: &[&str]) -> Option<LfsRoute> {
        Some(match rest {
            ["objects", "batch"] => LfsRoute::Batch,
            ["objects", oid] => LfsRoute::Object((*oid).to_owned()),
            ["verify"] => LfsRoute::Verify,
            ["locks"] => LfsRoute::Locks,
            ["locks", "verify"] => LfsRoute::LocksVerify,
            ["locks", id, "unlock"] => LfsRoute::Unlock((*id).to_owned()),
            _ => return None,
        })
    }

    /// The least access any request to this endpoint needs (uploads and forced unlocks check
    /// more once their body says what they are).
    pub fn access<B>(&self, req: &Request<B>) -> Access {
        match (self, req.method()) {
            (LfsRoute::Batch, _) => Access::Read,
            (LfsRoute::Object(_), &Method::GET) | (LfsRoute::Locks, &Method::GET) => Access::Read,
            _ => Access::Write,
        }
    }
}

/// A JSON answer with the LFS media type.
fn json<T: Serialize>(status: StatusCode, value: &T) -> Response<ResponseBody> {
    let mut resp = Response::new(full(serde_json::to_vec(value).unwrap_or_default()));
    *resp.status_mut() = status;
    resp.headers_mut().insert(
        header::CONTENT_TYPE,
        header::HeaderValue::from_static(api::MEDIA_TYPE),
    );
    resp
}

/// Why an LFS request failed, answered with its status and a one-line `{"message": ...}`.
#[derive(Debug)]
pub enum Failure {
    /// A status and its reason.
    Status(StatusCode, String),
    /// No or bad credentials: `401` with the challenges `git` and `git lfs` look for.
    Unauthorized(String),
    /// The path is locked already: `409` naming the lock, as `git lfs lock` expects.
    Locked(lfs::Lock),
    /// The memory for another upload through the server is not there now: `503` with
    /// `Retry-After`.
    Busy,
}

impl From<crate::auth::Denied> for Failure {
    fn from(denied: crate::auth::Denied) -> Self {
        match denied {
            crate::auth::Denied::Unauthorized(reason) => Failure::Unauthorized(reason),
            crate::auth::Denied::Forbidden(reason) => error(StatusCode::FORBIDDEN, &reason),
            crate::auth::Denied::NotFound => error(StatusCode::NOT_FOUND, "repository not found"),
        }
    }
}

impl Failure {
    /// The HTTP answer.
    pub fn into_response(self) -> Response<ResponseBody> {
        match self {
            Failure::Status(status, message) => json(status, &api::ErrorResponse { message }),
            Failure::Unauthorized(reason) => HttpError::Unauthorized(reason).into_response(),
            Failure::Busy => {
                let message = "the server is busy with other uploads; try again".to_owned();
                let mut resp = json(
                    StatusCode::SERVICE_UNAVAILABLE,
                    &api::ErrorResponse { message },
                );
                resp.headers_mut()
                    .insert(header::RETRY_AFTER, header::HeaderValue::from_static("1"));
                resp
            }
            Failure::Locked(lock) => {
                let message = format!("{} is already locked by {}", lock.path, lock.owner.name);
                json(
                    StatusCode::CONFLICT,
                    &serde_json::json!({"lock": lock, "message": message}),
                )
            }
        }
    }
}

/// A failure with `status` and `message`.
pub fn error(status: StatusCode, message: &str) -> Failure {
    Failure::Status(status, message.to_owned())
}

/// The repository's URL, as clients reach it.
fn repo_url(base_url: &str, repo: &Repo) -> String {
    format!("{base_url}/{}/git/{}", repo.id.workspace, repo.id.alias)
}

/// The server's own LFS endpoints, for actions; `authorization` is the caller's header, which
/// the verify action repeats back to the same caller (see [`lfs::Links::caller_headers`]);
/// `signer` puts a token good for one object in the URLs of objects moved through the server.
pub(crate) fn links(
    base_url: &str,
    repo: &Repo,
    authorization: Option<&header::HeaderValue>,
    signer: Option<lfs::UrlSigner>,
) -> lfs::Links {
    let base = repo_url(base_url, repo);
    lfs::Links {
        objects: format!("{base}/info/lfs/objects/"),
        verify: format!("{base}/info/lfs/verify"),
        caller_headers: authorization
            .and_then(|v| v.to_str().ok())
            .map(|v| vec![("Authorization".to_owned(), v.to_owned())])
            .unwrap_or_default(),
        signer,
    }
}

/// Signs the server's object URLs of `repo` with tokens good for one object each, valid as
/// long as a presigned URL of the bucket would be.
pub(crate) fn signer(app: &Arc<App>, repo: &Repo) -> lfs::UrlSigner {
    let (app, id) = (app.clone(), repo.id.clone());
    lfs::UrlSigner(Arc::new(move |oid: &str, write: bool| {
        app.auth
            .mint_object_token(&id.workspace, &id.alias, oid, write, app.config.lfs.url_ttl)
    }))
}

fn store(app: &App, repo: &Repo) -> Store {
    Store::new(
        app.storage.bucket.clone(),
        repo.keys.clone(),
        app.config.lfs,
    )
}

async fn read_json<T: for<'de> serde::Deserialize<'de>>(
    app: &App,
    req: Request<Incoming>,
) -> Result<T, Failure> {
    let raw = body::read_all(req.into_body(), 4 << 20, app.config.timeouts.request_body)
        .await
        .map_err(|e| error(StatusCode::BAD_REQUEST, &e.to_string()))?;
    serde_json::from_slice(&raw).map_err(|e| {
        error(
            StatusCode::UNPROCESSABLE_ENTITY,
            &format!("invalid request: {e}"),
        )
    })
}

/// Who the caller is, for lock ownership.
fn owner(identity: Option<&Grants>) -> String {
    identity
        .and_then(|g| g.subject.clone())
        .unwrap_or_else(|| "anonymous".to_owned())
}

/// Whether the caller has `need` on the repository, as an error answer if not.
fn require(
    identity: Option<&Grants>,
    public: bool,
    need: Access,
    repo: &Repo,
) -> Result<(), Failure> {
    Ok(authorize(
        identity,
        true,
        public,
        need,
        &repo.id.workspace,
        &repo.id.alias,
    )?)
}

/// Serve an LFS request (authorization for the endpoint's least access already checked).
pub async fn handle(
    app: Arc<App>,
    repo: Repo,
    identity: Option<Grants>,
    public: bool,
    route: LfsRoute,
    req: Request<Incoming>,
) -> Response<ResponseBody> {
    let outcome = match (req.method().clone(), route) {
        (Method::POST, LfsRoute::Batch) => {
            let started = std::time::Instant::now();
            let answer = batch(&app, &repo, identity.as_ref(), public, req).await;
            crate::metrics::observe(crate::metrics::LFS_BATCH_SECONDS, started);
            answer
        }
        (Method::GET, LfsRoute::Object(oid)) => download(&app, &repo, &oid).await,
        (Method::PUT, LfsRoute::Object(oid)) => upload(&app, &repo, &oid, req).await,
        (Method::POST, LfsRoute::Verify) => verify(&app, &repo, req).await,
        (Method::GET, LfsRoute::Locks) => list_locks(&app, &repo, &req).await,
        (Method::POST, LfsRoute::Locks) => create_lock(&app, &repo, identity.as_ref(), req).await,
        (Method::POST, LfsRoute::LocksVerify) => {
            verify_locks(&app, &repo, identity.as_ref(), req).await
        }
        (Method::POST, LfsRoute::Unlock(id)) => {
            unlock(&app, &repo, identity.as_ref(), public, &id, req).await
        }
        _ => Err(error(StatusCode::METHOD_NOT_ALLOWED, "method not allowed")),
    };
    outcome.unwrap_or_else(Failure::into_response)
}

type Answer = Result<Response<ResponseBody>, Failure>;

fn internal(repo: &Repo, e: impl std::fmt::Display) -> Failure {
    tracing::error!(repo = %repo.id, error = %e, "lfs request failed");
    error(
        StatusCode::INTERNAL_SERVER_ERROR,
        "the object store failed; try again",
    )
}

async fn batch(
    app: &Arc<App>,
    repo: &Repo,
    identity: Option<&Grants>,
    public: bool,
    req: Request<Incoming>,
) -> Answer {
    let base_url = crate::request::base_url(&req, &app.config.public.url);
    let links = links(
        &base_url,
        repo,
        req.headers().get(header::AUTHORIZATION),
        Some(signer(app, repo)),
    );
    let request: BatchRequest = read_json(app, req).await?;
    crate::metrics::inc(crate::metrics::LFS_BATCHES);
    if request.operation == Operation::Upload {
        require(identity, public, Access::Write, repo)?;
    }
    if request.hash_algo.as_deref().is_some_and(|h| h != "sha256") {
        return Err(error(
            StatusCode::CONFLICT,
            "only the sha256 hash algorithm is supported",
        ));
    }
    if !request.transfers.is_empty() && !request.transfers.iter().any(|t| t == "basic") {
        return Err(error(
            StatusCode::UNPROCESSABLE_ENTITY,
            "only the basic transfer adapter is supported",
        ));
    }
    if request.objects.len() > api::MAX_BATCH_OBJECTS {
        return Err(error(
            StatusCode::PAYLOAD_TOO_LARGE,
            &format!(
                "a batch may name at most {} objects",
                api::MAX_BATCH_OBJECTS
            ),
        ));
    }
    let store = store(app, repo);
    let operation = request.operation;
    let answers: Vec<Result<ObjectResponse, lfs::StoreError>> =
        futures_util::stream::iter(request.objects)
            .map(|object| {
                let (store, links) = (&store, &links);
                async move { answer(store, links, operation, &object).await }
            })
            .buffered(16)
            .collect()
            .await;
    let mut objects = Vec::with_capacity(answers.len());
    for a in answers {
        objects.push(a.map_err(|e| internal(repo, e))?);
    }
    let message = match operation {
        Operation::Upload => within_quota(app, repo, &mut objects).await?,
        Operation::Download => None,
    };
    Ok(json(
        StatusCode::OK,
        &BatchResponse {
            transfer: "basic",
            objects,
            hash_algo: "sha256",
            message,
        },
    ))
}

/// Hold the objects to upload to the repository's hard limit: one that would pass it gets the
/// LFS spec's 507 instead of its actions (nothing of it is stored). The soft limit's warning,
/// when passed.
async fn within_quota(
    app: &App,
    repo: &Repo,
    objects: &mut [ObjectResponse],
) -> Result<Option<String>, Failure> {
    let uploading = |o: &ObjectResponse| o.error.is_none() && o.actions.contains_key("upload");
    if !objects.iter().any(uploading) {
        return Ok(None);
    }
    let snapshot = repo.snapshot().await.map_err(|e| internal(repo, e))?;
    let workspace = app
        .workspaces
        .state(
            &app.storage,
            &repo.id.workspace,
            app.config.default_workspace_quota,
        )
        .await;
    let quota = crate::quota::effective(snapshot.quota, app.config.default_quota);
    let (mut adding, mut warning) = (0u64, None);
    for object in objects.iter_mut().filter(|o| uploading(o)) {
        let size = u64::try_from(object.size).unwrap_or(u64::MAX);
        let bytes = adding.saturating_add(size);
        let verdict = crate::landing::quota_verdict(repo, quota, snapshot.usage, bytes, &workspace);
        match verdict {
            crate::quota::Verdict::Refuse(why) => {
                object.actions.clear();
                object.authenticated = None;
                object.error = Some(ObjectError {
                    code: 507,
                    message: why,
                });
            }
            verdict => {
                adding = adding.saturating_add(size);
                if let crate::quota::Verdict::Warn(w) = verdict {
                    warning = Some(w);
                }
            }
        }
    }
    Ok(warning)
}

/// The answer for one object of a batch.
async fn answer(
    store: &Store,
    links: &lfs::Links,
    operation: Operation,
    object: &serde_json::Value,
) -> Result<ObjectResponse, lfs::StoreError> {
    let oid_text = object
        .get("oid")
        .and_then(|v| v.as_str())
        .unwrap_or_default();
    let size = object.get("size").and_then(|v| v.as_i64());
    let shown_oid: String = oid_text.chars().take(80).collect();
    let invalid = |message: &str| ObjectResponse {
        oid: shown_oid.clone(),
        size: size.unwrap_or(0),
        authenticated: None,
        actions: BTreeMap::new(),
        error: Some(ObjectError {
            code: 422,
            message: message.to_owned(),
        }),
    };
    let Some(oid) = Oid::parse(oid_text) else {
        return Ok(invalid("invalid oid: expected 64 lowercase hex digits"));
    };
    let Some(size) = size.filter(|s| *s >= 0) else {
        return Ok(invalid("invalid size: expected a number of bytes"));
    };
    let plan = match operation {
        Operation::Download => store.plan_download(&oid, links).await?,
        Operation::Upload => store.plan_upload(&oid, size as u64, links).await?,
    };
    match (operation, plan.error.is_none()) {
        (Operation::Download, true) => {
            crate::metrics::inc(crate::metrics::LFS_DOWNLOADS);
            crate::metrics::add(crate::metrics::LFS_DOWNLOAD_BYTES, plan.size);
        }
        (Operation::Upload, true) if !plan.actions.is_empty() => {
            crate::metrics::inc(crate::metrics::LFS_UPLOADS);
        }
        _ => {}
    }
    Ok(ObjectResponse {
        oid: oid.to_string(),
        size: i64::try_from(plan.size).unwrap_or(i64::MAX),
        authenticated: plan.authenticated.then_some(true),
        actions: plan
            .actions
            .into_iter()
            .map(|(rel, a)| {
                (
                    rel,
                    api::ActionResponse {
                        href: a.href,
                        header: a.headers.into_iter().collect(),
                        expires_in: a.expires_in.as_secs(),
                    },
                )
            })
            .collect(),
        error: plan
            .error
            .map(|(code, message)| ObjectError { code, message }),
    })
}

async fn download(app: &App, repo: &Repo, oid: &str) -> Answer {
    let oid =
        Oid::parse(oid).ok_or_else(|| error(StatusCode::UNPROCESSABLE_ENTITY, "invalid oid"))?;
    let Some((stream, size)) = store(app, repo)
        .send(&oid)
        .await
        .map_err(|e| internal(repo, e))?
    else {
        return Err(error(StatusCode::NOT_FOUND, "object does not exist"));
    };
    crate::metrics::add(crate::metrics::LFS_PROXIED_OUT_BYTES, size);
    let mut resp = Response::new(body::stream(stream));
    let headers = resp.headers_mut();
    headers.insert(
        header::CONTENT_TYPE,
        header::HeaderValue::from_static("application/octet-stream"),
    );
    headers.insert(header::CONTENT_LENGTH, header::HeaderValue::from(size));
    Ok(resp)
}

async fn upload(app: &App, repo: &Repo, oid: &str, req: Request<Incoming>) -> Answer {
    let oid =
        Oid::parse(oid).ok_or_else(|| error(StatusCode::UNPROCESSABLE_ENTITY, "invalid oid"))?;
    let size: u64 = req
        .headers()
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse().ok())
        .ok_or_else(|| {
            error(
                StatusCode::LENGTH_REQUIRED,
                "an upload needs a Content-Length",
            )
        })?;
    if let Some(declared) = query(&req, "size") {
        if declared != size.to_string() {
            return Err(error(
                StatusCode::UNPROCESSABLE_ENTITY,
                &format!("the batch request declared {declared} bytes, the upload has {size}"),
            ));
        }
    }
    if size > app.config.lfs.max_object {
        return Err(error(
            StatusCode::PAYLOAD_TOO_LARGE,
            &format!(
                "object of {size} bytes exceeds the limit of {} bytes",
                app.config.lfs.max_object
            ),
        ));
    }
    // Streaming to S3 holds a part in memory: reserve it (without waiting, so no thread is
    // held), and answer 503 when the budget is spent; `git lfs` retries it.
    let held = app.storage.bucket.put_stream_memory();
    let _reservation = match held {
        0 => None,
        _ => Some(app.budget.reserve(held, Duration::ZERO).map_err(|_| {
            crate::metrics::inc(crate::metrics::REJECTED_BUSY);
            Failure::Busy
        })?),
    };
    let stream = body::async_reader(
        req.into_body(),
        size.saturating_add(1),
        app.config.timeouts.body_idle,
    );
    match store(app, repo).receive(&oid, size, stream).await {
        Ok(()) => {
            crate::metrics::add(crate::metrics::LFS_PROXIED_IN_BYTES, size);
            crate::metrics::add(crate::metrics::LFS_UPLOAD_BYTES, size);
            crate::usage::account_lfs(repo, size as i64).await;
            Ok(json(StatusCode::OK, &serde_json::json!({})))
        }
        Err(e) => Err(verify_error(repo, e)),
    }
}

fn verify_error(repo: &Repo, e: VerifyError) -> Failure {
    crate::metrics::inc(crate::metrics::LFS_VERIFY_FAILED);
    match e {
        VerifyError::NotUploaded(_) => error(StatusCode::NOT_FOUND, &e.to_string()),
        VerifyError::SizeMismatch { .. } | VerifyError::HashMismatch(_) => {
            tracing::warn!(repo = %repo.id, error = %e, "lfs upload refused");
            error(StatusCode::UNPROCESSABLE_ENTITY, &e.to_string())
        }
        VerifyError::Incomplete(_) => {
            tracing::warn!(repo = %repo.id, error = %e, "lfs upload cut short");
            error(StatusCode::BAD_REQUEST, &e.to_string())
        }
        VerifyError::Store(e) => internal(repo, e),
    }
}

async fn verify(app: &App, repo: &Repo, req: Request<Incoming>) -> Answer {
    let nonce = req
        .uri()
        .query()
        .and_then(|q| q.split('&').find_map(|kv| kv.strip_prefix("upload=")))
        .map(str::to_owned);
    let request: api::VerifyRequest = read_json(app, req).await?;
    let oid = Oid::parse(&request.oid)
        .ok_or_else(|| error(StatusCode::UNPROCESSABLE_ENTITY, "invalid oid"))?;
    let size = u64::try_from(request.size)
        .map_err(|_| error(StatusCode::UNPROCESSABLE_ENTITY, "invalid size"))?;
    crate::metrics::inc(crate::metrics::LFS_VERIFIES);
    let verified = store(app, repo)
        .verify(&oid, size, nonce.as_deref())
        .await
        .map_err(|e| verify_error(repo, e))?;
    if verified == lfs::Verified::Stored {
        crate::metrics::add(crate::metrics::LFS_UPLOAD_BYTES, size);
        crate::usage::account_lfs(repo, size as i64).await;
    }
    Ok(json(StatusCode::OK, &serde_json::json!({})))
}

fn locks(app: &App, repo: &Repo) -> Locks {
    Locks::new(app.storage.bucket.clone(), repo.keys.clone())
}

fn lock_error(repo: &Repo, e: LockError) -> Failure {
    match e {
        LockError::Exists(lock) => Failure::Locked(*lock),
        LockError::NotFound => error(StatusCode::NOT_FOUND, "lock not found"),
        e @ LockError::NotOwner(_) => error(StatusCode::FORBIDDEN, &e.to_string()),
        e @ LockError::InvalidPath(_) => error(StatusCode::UNPROCESSABLE_ENTITY, &e.to_string()),
        LockError::Bucket(e) => internal(repo, e),
    }
}

fn query(req: &Request<Incoming>, name: &str) -> Option<String> {
    let q = req.uri().query()?;
    q.split('&')
        .find_map(|kv| kv.strip_prefix(name)?.strip_prefix('='))
        .map(percent_decode)
}

fn percent_decode(s: &str) -> String {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'%' if i + 2 < bytes.len() + 1 => {
                match std::str::from_utf8(bytes.get(i + 1..i + 3).unwrap_or_default())
                    .ok()
                    .and_then(|h| u8::from_str_radix(h, 16).ok())
                {
                    Some(b) => {
                        out.push(b);
                        i += 3;
                    }
                    None => {
                        out.push(b'%');
                        i += 1;
                    }
                }
            }
            b'+' => {
                out.push(b' ');
                i += 1;
            }
            b => {
                out.push(b);
                i += 1;
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

async fn list_locks(app: &App, repo: &Repo, req: &Request<Incoming>) -> Answer {
    let locks = locks(app, repo);
    let err = |e| lock_error(repo, e);
    if let Some(path) = query(req, "path") {
        let found = locks.of_path(&path).await.map_err(err)?;
        return Ok(json(
            StatusCode::OK,
            &serde_json::json!({"locks": found.into_iter().collect::<Vec<_>>()}),
        ));
    }
    if let Some(id) = query(req, "id") {
        let found = locks.get(&id).await.map_err(err)?;
        return Ok(json(
            StatusCode::OK,
            &serde_json::json!({"locks": found.into_iter().collect::<Vec<_>>()}),
        ));
    }
    let limit = query(req, "limit")
        .and_then(|l| l.parse().ok())
        .unwrap_or(lfs::MAX_PAGE);
    let cursor = query(req, "cursor");
    let (page, next) = locks.list(cursor.as_deref(), limit).await.map_err(err)?;
    Ok(json(
        StatusCode::OK,
        &serde_json::json!({"locks": page, "next_cursor": next}),
    ))
}

async fn create_lock(
    app: &App,
    repo: &Repo,
    identity: Option<&Grants>,
    req: Request<Incoming>,
) -> Answer {
    let request: api::CreateLockRequest = read_json(app, req).await?;
    let lock = locks(app, repo)
        .create(&request.path, &owner(identity))
        .await
        .map_err(|e| lock_error(repo, e))?;
    Ok(json(
        StatusCode::CREATED,
        &serde_json::json!({"lock": lock}),
    ))
}

async fn verify_locks(
    app: &App,
    repo: &Repo,
    identity: Option<&Grants>,
    req: Request<Incoming>,
) -> Answer {
    let request: api::VerifyLocksRequest = read_json(app, req).await?;
    let me = owner(identity);
    let (page, next) = locks(app, repo)
        .list(
            request.cursor.as_deref(),
            request.limit.unwrap_or(lfs::MAX_PAGE),
        )
        .await
        .map_err(|e| lock_error(repo, e))?;
    let (ours, theirs): (Vec<_>, Vec<_>) = page.into_iter().partition(|l| l.owner.name == me);
    Ok(json(
        StatusCode::OK,
        &serde_json::json!({"ours": ours, "theirs": theirs, "next_cursor": next}),
    ))
}

async fn unlock(
    app: &App,
    repo: &Repo,
    identity: Option<&Grants>,
    public: bool,
    id: &str,
    req: Request<Incoming>,
) -> Answer {
    let request: api::UnlockRequest = read_json(app, req).await?;
    if request.force {
        require(identity, public, Access::Admin, repo)?;
    }
    let lock = locks(app, repo)
        .unlock(id, &owner(identity), request.force)
        .await
        .map_err(|e| lock_error(repo, e))?;
    Ok(json(StatusCode::OK, &serde_json::json!({"lock": lock})))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn routes_and_query_decoding() {
        assert_eq!(
            LfsRoute::parse(&["objects", "batch"]),
            Some(LfsRoute::Batch)
        );
        assert_eq!(
            LfsRoute::parse(&["locks", "abc", "unlock"]),
            Some(LfsRoute::Unlock("abc".into()))
        );
        assert_eq!(LfsRoute::parse(&["objects"]), None);
        assert_eq!(percent_decode("a%20b%2Fc+d"), "a b/c d");
        assert_eq!(percent_decode("100%"), "100%");
        assert_eq!(percent_decode("%zz"), "%zz");
    }
}
