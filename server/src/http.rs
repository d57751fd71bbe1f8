//! The HTTP surface: routing, authentication, discovery, and the answers every endpoint shares.

use std::sync::Arc;

use http::{header, Method, Request, Response, StatusCode};
use hyper::body::Incoming;
use protocol::advertisement::{self, Service};

use crate::app::App;
use crate::auth::{decide, Access, Decision};
use crate::body::{self, full, ResponseBody};
use crate::repo::{refs_view, Repo};
use crate::storage::{valid_name, RepoId};
use crate::{receive_pack, upload_pack};

/// Which endpoint of a repository a path names.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Endpoint {
    /// Discovery.
    InfoRefs,
    /// Clone and fetch.
    UploadPack,
    /// Push.
    ReceivePack,
    /// A git bundle of the repository.
    Bundle,
    /// The Git LFS API.
    Lfs(crate::lfs_http::LfsRoute),
}

/// Parse `/{ws}/git/{alias}[.git]/{endpoint}` and `/{ws}/artifacts/{alias}/git[.git]/{endpoint}`
/// (`git lfs` appends `.git` to a URL without it to find its endpoint).
pub fn route(path: &str) -> Option<(RepoId, Endpoint)> {
    let parts: Vec<&str> = path.trim_start_matches('/').split('/').collect();
    let (ws, alias, rest) = match parts.as_slice() {
        [ws, "git", alias, rest @ ..] => (*ws, alias.strip_suffix(".git").unwrap_or(alias), rest),
        [ws, "artifacts", alias, "git" | "git.git", rest @ ..] => (*ws, *alias, rest),
        _ => return None,
    };
    if !valid_name(ws) || !valid_name(alias) {
        return None;
    }
    let endpoint = match rest {
        ["info", "refs"] => Endpoint::InfoRefs,
        ["git-upload-pack"] => Endpoint::UploadPack,
        ["git-receive-pack"] => Endpoint::ReceivePack,
        ["bundle"] => Endpoint::Bundle,
        ["info", "lfs", lfs @ ..] => Endpoint::Lfs(crate::lfs_http::LfsRoute::parse(lfs)?),
        _ => return None,
    };
    Some((
        RepoId {
            workspace: ws.to_owned(),
            alias: alias.to_owned(),
        },
        endpoint,
    ))
}

pub(crate) fn plain(status: StatusCode, message: &str) -> Response<ResponseBody> {
    let mut resp = Response::new(full(format!("{message}\n")));
    *resp.status_mut() = status;
    resp.headers_mut().insert(
        header::CONTENT_TYPE,
        header::HeaderValue::from_static("text/plain; charset=utf-8"),
    );
    resp
}

pub(crate) fn git_response(
    content_type: &'static str,
    body: ResponseBody,
) -> Response<ResponseBody> {
    let mut resp = Response::new(body);
    let h = resp.headers_mut();
    h.insert(
        header::CONTENT_TYPE,
        header::HeaderValue::from_static(content_type),
    );
    h.insert(
        header::CACHE_CONTROL,
        header::HeaderValue::from_static("no-cache, max-age=0, must-revalidate"),
    );
    resp
}

/// The protocol version the client asked for in `Git-Protocol`.
pub(crate) fn protocol_version<B>(req: &Request<B>) -> u8 {
    req.headers()
        .get_all("git-protocol")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(':'))
        .filter_map(|kv| kv.strip_prefix("version="))
        .filter_map(|v| v.trim().parse::<u8>().ok())
        .max()
        .unwrap_or(0)
}

pub(crate) fn is_gzip<B>(req: &Request<B>) -> bool {
    req.headers()
        .get(header::CONTENT_ENCODING)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.eq_ignore_ascii_case("gzip") || v.eq_ignore_ascii_case("x-gzip"))
}

fn query_service<B>(req: &Request<B>) -> Option<&str> {
    req.uri()
        .query()?
        .split('&')
        .find_map(|kv| kv.strip_prefix("service="))
}

/// `503` with `Retry-After`: every slot is taken.
pub(crate) fn busy() -> Response<ResponseBody> {
    tracing::warn!("too many concurrent clones and pushes: answering 503");
    crate::metrics::inc(crate::metrics::REJECTED_BUSY);
    let mut resp = plain(
        StatusCode::SERVICE_UNAVAILABLE,
        "the server is busy; retry in a few seconds",
    );
    resp.headers_mut()
        .insert(header::RETRY_AFTER, header::HeaderValue::from_static("5"));
    resp
}

pub(crate) fn storage_error(repo: &Repo, e: objectstore::odb::Error) -> Response<ResponseBody> {
    tracing::error!(repo = %repo.id, error = %e, "opening packs failed");
    plain(
        StatusCode::INTERNAL_SERVER_ERROR,
        &format!("cannot read the repository: {e}"),
    )
}

fn refs_error(e: refs::Error) -> Response<ResponseBody> {
    match e {
        refs::Error::NotFound => plain(StatusCode::NOT_FOUND, "repository not found"),
        e => {
            tracing::error!(error = %e, "reading refs failed");
            plain(
                StatusCode::INTERNAL_SERVER_ERROR,
                &format!("cannot read the repository: {e}"),
            )
        }
    }
}

/// `401` asking for credentials: `WWW-Authenticate` for git, `LFS-Authenticate` for `git lfs`
/// (each asks its credential helper).
pub(crate) fn unauthorized(reason: &str) -> Response<ResponseBody> {
    let mut resp = plain(StatusCode::UNAUTHORIZED, reason);
    let challenge =
        header::HeaderValue::from_static("Basic realm=\"artifact-git\", charset=\"UTF-8\"");
    resp.headers_mut()
        .insert(header::WWW_AUTHENTICATE, challenge.clone());
    resp.headers_mut().insert("lfs-authenticate", challenge);
    resp
}

/// The caller's identity: `Ok(None)` when anonymous, `Err(reason)` (a 401) when credentials
/// are present but not valid.
fn identify<B>(app: &App, req: &Request<B>) -> Result<Option<crate::auth::Grants>, String> {
    let header = req
        .headers()
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok());
    match crate::auth::token_from_header(header) {
        Ok(None) => Ok(None),
        Ok(Some(token)) => app.auth.verify(&token).map(Some).map_err(|e| e.to_string()),
        Err(e) => Err(e.to_string()),
    }
}

/// Handle one request, with the links it makes based on the URL the client used (see
/// [`crate::proxy`]).
pub async fn handle(app: Arc<App>, req: Request<Incoming>) -> Response<ResponseBody> {
    let base = crate::proxy::request_base_url(&app, &req);
    crate::proxy::with_base_url(base, route_request(app, req)).await
}

/// Whether a push may create `repo`: `--create-on-push` allows it and the caller has the
/// access it asks for on the repository.
fn may_create(app: &App, identity: Option<&crate::auth::Grants>, repo: &Repo) -> bool {
    let need = match app.create_on_push {
        crate::app::CreateOnPush::Off => return false,
        crate::app::CreateOnPush::Admin => Access::Admin,
        crate::app::CreateOnPush::Write => Access::Write,
    };
    identity.is_some()
        && decide(
            identity,
            true,
            false,
            need,
            &repo.id.workspace,
            &repo.id.alias,
        ) == Decision::Allow
}

/// Create a repository for a push, as `enable_git` would with no files to import; a
/// repository created meanwhile by someone else is fine.
async fn create_for_push(repo: &Repo) -> Result<(), Response<ResponseBody>> {
    let fail = |e: &dyn std::fmt::Display| {
        tracing::error!(repo = %repo.id, error = %e, "creating a repository on push failed");
        plain(
            StatusCode::INTERNAL_SERVER_ERROR,
            &format!("cannot create the repository: {e}"),
        )
    };
    repo.write_settings(&crate::repo::Settings::default())
        .await
        .map_err(|e| fail(&e))?;
    match repo.refs.init("main").await {
        Ok(()) => {
            tracing::info!(repo = %repo.id, "repository created by a push");
            Ok(())
        }
        Err(refs::Error::AlreadyExists) => Ok(()),
        Err(e) => Err(fail(&e)),
    }
}

/// How long a read stays good enough for answers that reveal nothing and move nothing: a v2
/// capability advertisement to an entitled caller, a refusal of an anonymous one.
const RECENTLY: std::time::Duration = std::time::Duration::from_secs(5);

async fn route_request(app: Arc<App>, req: Request<Incoming>) -> Response<ResponseBody> {
    let path = req.uri().path().to_owned();
    match (req.method(), path.as_str()) {
        (&Method::GET, "/health") => return plain(StatusCode::OK, "ok"),
        (&Method::GET, "/metrics") => {
            return plain(StatusCode::OK, crate::metrics::render().trim_end())
        }
        (&Method::GET, "/") => {
            return plain(
                StatusCode::OK,
                "artifact-git: clone with git clone <url>/<workspace>/git/<alias>",
            )
        }
        _ => {}
    }
    if path == "/rpc" {
        return rpc(app, req).await;
    }
    let Some((id, endpoint)) = route(&path) else {
        return plain(StatusCode::NOT_FOUND, "not found");
    };
    let need = match (&endpoint, query_service(&req)) {
        (Endpoint::ReceivePack, _) | (Endpoint::InfoRefs, Some("git-receive-pack")) => {
            Access::Write
        }
        (Endpoint::Lfs(route), _) => route.access(&req),
        _ => Access::Read,
    };
    let identity = match identify(&app, &req) {
        Ok(i) => i,
        Err(reason) => return unauthorized(&reason),
    };
    let repo = Repo::new(&app.storage, id);
    let is_lfs = matches!(endpoint, Endpoint::Lfs(_));
    // A token that grants what the request needs makes the settings irrelevant to the
    // decision (they only open reads to everyone); LFS answers still depend on them.
    let granted = identity
        .as_ref()
        .and_then(|g| g.level(&repo.id.workspace, &repo.id.alias))
        .is_some_and(|level| level >= need);
    let v2_advertisement = endpoint == Endpoint::InfoRefs
        && query_service(&req) == Some("git-upload-pack")
        && protocol_version(&req) == 2;
    // A v2 capability advertisement is the same for every repository; to a caller entitled
    // to read, it is answered without a read when the repository was seen a moment ago (the
    // next request, which reads the refs, says "not found" if it went away meanwhile).
    if granted && v2_advertisement && repo.refs.known_to_exist(RECENTLY) {
        return info_refs(refs::Snapshot::default(), &req);
    }
    // Anonymous callers may only read public repositories (git asks anonymously first, then
    // again with credentials): nothing but the settings is read before that is known.
    let mut known_settings = None;
    if identity.is_none() {
        if need != Access::Read || repo.known_private(RECENTLY) {
            return unauthorized("authentication required");
        }
        match repo.settings().await {
            Ok(s) if s.public => known_settings = Some(s),
            Ok(_) => return unauthorized("authentication required"),
            Err(e) => {
                return plain(
                    StatusCode::INTERNAL_SERVER_ERROR,
                    &format!("cannot read the repository: {e}"),
                )
            }
        }
    }
    // A v2 capability advertisement needs to know the repository exists, not its refs.
    let snapshot = async {
        match v2_advertisement {
            false => repo.snapshot().await,
            true => repo.refs.head().await.map(|head| refs::Snapshot {
                head,
                ..Default::default()
            }),
        }
    };
    let settings = async {
        match known_settings {
            Some(s) => Ok(s),
            None if granted && !is_lfs => Ok(crate::repo::Settings::default()),
            None => repo.settings().await,
        }
    };
    let (snapshot, settings) = tokio::join!(snapshot, settings);
    let mut snapshot = match snapshot {
        Ok(s) => Some(s),
        Err(refs::Error::NotFound) => None,
        Err(e) => return refs_error(e),
    };
    let pushing = need == Access::Write && !is_lfs;
    if snapshot.is_none() && pushing && may_create(&app, identity.as_ref(), &repo) {
        if endpoint == Endpoint::InfoRefs {
            // Discovery answers as for an empty repository; the push itself creates it, so a
            // client that stops here leaves nothing behind.
            let empty = refs::Snapshot {
                head: Some("refs/heads/main".into()),
                ..Default::default()
            };
            return info_refs(empty, &req);
        }
        if let Err(resp) = create_for_push(&repo).await {
            return resp;
        }
        snapshot = match repo.snapshot().await {
            Ok(s) => Some(s),
            Err(e) => return refs_error(e),
        };
    }
    let settings = match settings {
        Ok(s) => s,
        Err(e) => {
            return plain(
                StatusCode::INTERNAL_SERVER_ERROR,
                &format!("cannot read the repository: {e}"),
            )
        }
    };
    let decision = decide(
        identity.as_ref(),
        snapshot.is_some(),
        settings.public,
        need,
        &repo.id.workspace,
        &repo.id.alias,
    );
    let snapshot = match (decision, snapshot) {
        (Decision::Allow, Some(snapshot)) => snapshot,
        (Decision::Allow | Decision::NotFound, _) => {
            return plain(StatusCode::NOT_FOUND, "repository not found")
        }
        (Decision::Unauthorized(reason), _) => return unauthorized(&reason),
        (Decision::Forbidden(reason), _) => return plain(StatusCode::FORBIDDEN, &reason),
    };
    match (req.method(), endpoint) {
        (_, Endpoint::Lfs(route)) => {
            crate::lfs_http::handle(app, repo, identity, settings.public, route, req).await
        }
        (&Method::GET, Endpoint::InfoRefs) => info_refs(snapshot, &req),
        (&Method::POST, Endpoint::UploadPack) => {
            upload_pack::handle(app, repo, snapshot, req).await
        }
        (&Method::GET, Endpoint::Bundle) => crate::bundle::handle(app, repo, snapshot, req).await,
        (&Method::POST, Endpoint::ReceivePack) => {
            receive_pack::handle(app, repo, snapshot, identity, req).await
        }
        _ => plain(StatusCode::METHOD_NOT_ALLOWED, "method not allowed"),
    }
}

/// The JSON-RPC API; answers are JSON-RPC objects, errors included.
async fn rpc(app: Arc<App>, req: Request<Incoming>) -> Response<ResponseBody> {
    if req.method() != Method::POST {
        return plain(
            StatusCode::METHOD_NOT_ALLOWED,
            "POST a JSON-RPC 2.0 request to /rpc",
        );
    }
    let identity = match identify(&app, &req) {
        Ok(i) => i,
        Err(reason) => return unauthorized(&reason),
    };
    let body = match body::read_all(req.into_body(), 1 << 20, app.timeouts.request_body).await {
        Ok(b) => b,
        Err(e @ body::BodyError::TooLarge(_)) => {
            return plain(StatusCode::PAYLOAD_TOO_LARGE, &e.to_string())
        }
        Err(e) => return plain(StatusCode::BAD_REQUEST, &e.to_string()),
    };
    let answer = crate::rpc::handle(app, identity, &body).await;
    let mut resp = Response::new(full(answer.to_string()));
    resp.headers_mut().insert(
        header::CONTENT_TYPE,
        header::HeaderValue::from_static("application/json"),
    );
    resp
}

fn info_refs(snapshot: refs::Snapshot, req: &Request<Incoming>) -> Response<ResponseBody> {
    let Some(service) = query_service(req).and_then(Service::from_name) else {
        return plain(
            StatusCode::FORBIDDEN,
            "only the smart HTTP protocol is supported: use git 1.6.6 or newer",
        );
    };
    let version = protocol_version(req);
    let mut out = Vec::new();
    if service == Service::UploadPack && version == 2 {
        advertisement::write_v2_capabilities(&mut out);
    } else {
        advertisement::write_service_header(&mut out, service);
        advertisement::write_v0(&mut out, service, &refs_view(&snapshot), version == 1);
    }
    let content_type = match service {
        Service::UploadPack => "application/x-git-upload-pack-advertisement",
        Service::ReceivePack => "application/x-git-receive-pack-advertisement",
    };
    git_response(content_type, full(out))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn routes_both_path_forms() {
        let (id, ep) = route("/ws/git/data.git/info/refs").unwrap();
        assert_eq!(
            (id.workspace.as_str(), id.alias.as_str(), ep),
            ("ws", "data", Endpoint::InfoRefs)
        );
        let (id, ep) = route("/ws/artifacts/data/git/git-receive-pack").unwrap();
        assert_eq!((id.alias.as_str(), ep), ("data", Endpoint::ReceivePack));
        let (id, ep) = route("/ws/artifacts/data/git.git/info/lfs/locks").unwrap();
        let locks = Endpoint::Lfs(crate::lfs_http::LfsRoute::Locks);
        assert_eq!((id.alias.as_str(), ep), ("data", locks));
        assert!(route("/ws/git/../info/refs").is_none());
        assert!(route("/ws/git/a%2fb/info/refs").is_none());
        assert!(route("/ws/git/a/objects/info/packs").is_none());
    }
}
