//! The HTTP surface: routing, discovery, and the two service endpoints.

use std::convert::Infallible;
use std::io::Read;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;

use bytes::Bytes;
use http::{header, Method, Request, Response, StatusCode};
use hyper::body::Incoming;
use objectstore::odb::ingest;
use objectstore::PackCache;
use protocol::advertisement::{self, Service};
use tokio::net::TcpListener;

use crate::auth::{decide, Access, Decision};
use crate::body::{self, full, ResponseBody};
use crate::repo::{refs_view, Repo};
use crate::storage::{valid_name, RepoId, Storage};
use crate::{receive_pack, upload_pack};

/// Limits on what one request may send.
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    /// An upload-pack request (wants and haves), after decompression.
    pub max_request_bytes: u64,
    /// A push, pack included.
    pub max_push_bytes: u64,
    /// Clones, fetches and pushes served at once; more get 503 with Retry-After.
    pub max_heavy_requests: usize,
    pub ingest: ingest::Limits,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_request_bytes: 64 << 20,
            max_push_bytes: 16 << 30,
            max_heavy_requests: 32,
            ingest: ingest::Limits::default(),
        }
    }
}

/// Shared state of the server: storage and caches, nothing that must survive a restart.
#[derive(Debug)]
pub struct App {
    pub storage: Storage,
    pub auth: crate::auth::Authenticator,
    pub cache: Arc<PackCache>,
    /// Where received packs are indexed before upload.
    pub staging: PathBuf,
    pub public_url: String,
    pub limits: Limits,
    /// Shared by every connection: the cap on concurrent heavy requests.
    pub heavy: crate::layers::HeavyLimitLayer,
    pub maintenance: Arc<crate::maintenance::AutoMaintenance>,
}

/// Which endpoint of a repository a path names.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Endpoint {
    InfoRefs,
    UploadPack,
    ReceivePack,
}

/// Parse `/{ws}/git/{alias}[.git]/{endpoint}` and `/{ws}/artifacts/{alias}/git/{endpoint}`.
pub fn route(path: &str) -> Option<(RepoId, Endpoint)> {
    let parts: Vec<&str> = path.trim_start_matches('/').split('/').collect();
    let (ws, alias, rest) = match parts.as_slice() {
        [ws, "git", alias, rest @ ..] => (*ws, alias.strip_suffix(".git").unwrap_or(alias), rest),
        [ws, "artifacts", alias, "git", rest @ ..] => (*ws, *alias, rest),
        _ => return None,
    };
    if !valid_name(ws) || !valid_name(alias) {
        return None;
    }
    let endpoint = match rest {
        ["info", "refs"] => Endpoint::InfoRefs,
        ["git-upload-pack"] => Endpoint::UploadPack,
        ["git-receive-pack"] => Endpoint::ReceivePack,
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

fn plain(status: StatusCode, message: &str) -> Response<ResponseBody> {
    let mut resp = Response::new(full(format!("{message}\n")));
    *resp.status_mut() = status;
    resp.headers_mut().insert(
        header::CONTENT_TYPE,
        header::HeaderValue::from_static("text/plain; charset=utf-8"),
    );
    resp
}

fn git_response(content_type: &'static str, body: ResponseBody) -> Response<ResponseBody> {
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
fn protocol_version<B>(req: &Request<B>) -> u8 {
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

fn is_gzip<B>(req: &Request<B>) -> bool {
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

fn storage_error(repo: &Repo, e: objectstore::odb::Error) -> Response<ResponseBody> {
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

fn unauthorized(reason: &str) -> Response<ResponseBody> {
    let mut resp = plain(StatusCode::UNAUTHORIZED, reason);
    resp.headers_mut().insert(
        header::WWW_AUTHENTICATE,
        header::HeaderValue::from_static("Basic realm=\"artifact-git\", charset=\"UTF-8\""),
    );
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

/// Handle one request.
pub async fn handle(app: Arc<App>, req: Request<Incoming>) -> Response<ResponseBody> {
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
        _ => Access::Read,
    };
    let identity = match identify(&app, &req) {
        Ok(i) => i,
        Err(reason) => return unauthorized(&reason),
    };
    let repo = Repo::new(&app.storage, id);
    let (snapshot, settings) = tokio::join!(repo.snapshot(), repo.settings());
    let snapshot = match snapshot {
        Ok(s) => Some(s),
        Err(refs::Error::NotFound) => None,
        Err(e) => return refs_error(e),
    };
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
        (&Method::GET, Endpoint::InfoRefs) => info_refs(snapshot, &req),
        (&Method::POST, Endpoint::UploadPack) => upload_pack(app, repo, snapshot, req).await,
        (&Method::POST, Endpoint::ReceivePack) => receive_pack(app, repo, req).await,
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
    let mut body = Vec::new();
    let mut reader = body::reader(req.into_body(), 1 << 20);
    let read =
        tokio::task::spawn_blocking(move || reader.read_to_end(&mut body).map(|_| body)).await;
    let body = match read {
        Ok(Ok(b)) => b,
        _ => {
            return plain(
                StatusCode::PAYLOAD_TOO_LARGE,
                "the request body is larger than 1 MiB or could not be read",
            )
        }
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

async fn upload_pack(
    app: Arc<App>,
    repo: Repo,
    snapshot: refs::Snapshot,
    req: Request<Incoming>,
) -> Response<ResponseBody> {
    let v2 = protocol_version(&req) == 2;
    let gzip = is_gzip(&req);
    // Packs are published before the refs that need them, so a pack list that shows every
    // ref tip shows everything reachable from them; a briefly cached list that misses a tip
    // is re-read.
    let db = match repo.objects(&app.cache).await {
        Ok(mut db) => {
            let stale = snapshot.refs.values().any(|v| !db.contains(&v.target));
            match if stale { db.refresh().await } else { Ok(()) } {
                Ok(()) => db,
                Err(e) => return storage_error(&repo, e),
            }
        }
        Err(e) => return storage_error(&repo, e),
    };
    let limit = app.limits.max_request_bytes;
    let request_body = body::reader(req.into_body(), limit);
    let (writer, response_body) = body::channel();
    let id = repo.id.clone();
    let runtime = tokio::runtime::Handle::current();
    tokio::task::spawn_blocking(move || {
        let mut out = upload_pack::Output::new(writer);
        let mut request = Vec::new();
        let read = body::decoded(request_body, gzip, limit).read_to_end(&mut request);
        let mut source = upload_pack::Source {
            snapshot,
            db,
            runtime,
        };
        let result = match read {
            Err(e) => Err(upload_pack::Error::Io(e)),
            Ok(_) if v2 => upload_pack::serve_v2(&mut source, &request, &mut out),
            Ok(_) => upload_pack::serve_v0(&mut source, &request, &mut out),
        };
        if let Err(e) = result {
            tracing::warn!(repo = %id, error = %e, "upload-pack failed");
            out.fail(&e.to_string());
        }
    });
    git_response("application/x-git-upload-pack-result", response_body)
}

async fn receive_pack(app: Arc<App>, repo: Repo, req: Request<Incoming>) -> Response<ResponseBody> {
    let gzip = is_gzip(&req);
    // A push decides what is new against the packs as they are now, not a cached list.
    let db = match repo.fresh_objects(&app.cache).await {
        Ok(db) => db,
        Err(e) => return storage_error(&repo, e),
    };
    let limit = app.limits.max_push_bytes;
    let request_body = body::reader(req.into_body(), limit);
    let runtime = tokio::runtime::Handle::current();
    crate::metrics::inc(&crate::metrics::PUSHES);
    let packs_after = db.packs().len() + 1;
    let (after_repo, after_app) = (repo.clone(), app.clone());
    let result = tokio::task::spawn_blocking(move || {
        let ctx = receive_pack::PushContext {
            repo: &repo,
            db,
            staging: &app.staging,
            limits: app.limits.ingest,
            runtime,
        };
        receive_pack::serve(ctx, body::decoded(request_body, gzip, limit))
    })
    .await;
    after_app.maintenance.after_push(
        after_repo,
        packs_after,
        after_app.cache.clone(),
        after_app.staging.clone(),
    );
    match result {
        Ok(out) => git_response(
            "application/x-git-receive-pack-result",
            full(Bytes::from(out)),
        ),
        Err(e) => {
            tracing::error!(error = %e, "push task failed");
            plain(
                StatusCode::INTERNAL_SERVER_ERROR,
                "the push failed unexpectedly",
            )
        }
    }
}

/// Accept connections until `shutdown` resolves, then let in-flight requests finish.
pub async fn serve(
    app: Arc<App>,
    listener: TcpListener,
    shutdown: impl std::future::Future<Output = ()>,
) -> std::io::Result<()> {
    let mut shutdown = std::pin::pin!(shutdown);
    let tracker = tokio_util_tracker::Tracker::default();
    loop {
        let (stream, peer) = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok(a) => a,
                Err(e) => {
                    tracing::warn!(error = %e, "accept failed");
                    continue;
                }
            },
            _ = &mut shutdown => break,
        };
        let app = app.clone();
        let guard = tracker.guard();
        tokio::spawn(async move {
            let _guard = guard;
            serve_connection(app, stream, peer).await;
        });
    }
    tracker.wait(std::time::Duration::from_secs(30)).await;
    Ok(())
}

async fn serve_connection(app: Arc<App>, stream: tokio::net::TcpStream, peer: SocketAddr) {
    let _ = stream.set_nodelay(true);
    let service = tower::ServiceBuilder::new()
        .layer(crate::layers::LogLayer)
        .layer(app.heavy.clone())
        .service_fn(move |req: Request<Incoming>| {
            let app = app.clone();
            async move { Ok::<_, Infallible>(handle(app, req).await) }
        });
    let io = hyper_util::rt::TokioIo::new(stream);
    if let Err(e) = hyper::server::conn::http1::Builder::new()
        .keep_alive(true)
        .serve_connection(io, hyper_util::service::TowerToHyperService::new(service))
        .await
    {
        tracing::debug!(%peer, error = %e, "connection ended with an error");
    }
}

/// Counting in-flight connections so shutdown can wait for them.
mod tokio_util_tracker {
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::sync::Arc;
    use std::time::Duration;

    #[derive(Default, Clone)]
    pub struct Tracker(Arc<AtomicUsize>);

    pub struct Guard(Arc<AtomicUsize>);

    impl Tracker {
        pub fn guard(&self) -> Guard {
            self.0.fetch_add(1, Ordering::SeqCst);
            Guard(self.0.clone())
        }

        pub async fn wait(&self, max: Duration) {
            let deadline = tokio::time::Instant::now() + max;
            while self.0.load(Ordering::SeqCst) > 0 && tokio::time::Instant::now() < deadline {
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
        }
    }

    impl Drop for Guard {
        fn drop(&mut self) {
            self.0.fetch_sub(1, Ordering::SeqCst);
        }
    }
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
        assert!(route("/ws/git/../info/refs").is_none());
        assert!(route("/ws/git/a%2fb/info/refs").is_none());
        assert!(route("/ws/git/a/objects/info/packs").is_none());
    }
}
