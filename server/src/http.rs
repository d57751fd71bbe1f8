//! The router: the one module that knows every handler. It parses the path, authorizes the
//! caller (the one [`authorize`] of every surface) and hands the request on; discovery
//! (`info/refs`) is answered here.

use std::sync::Arc;

use http::{header, Method, Request, Response, StatusCode};
use hyper::body::Incoming;
use protocol::advertisement::{self, Service};

use crate::admission::{caller, granted, read_for, RECENTLY};
use crate::app::App;
use crate::auth::{authorize, Access};
use crate::body::{self, full, ResponseBody};
use crate::repo::{refs_view, Repo};
use crate::request::{protocol_version, query_service};
use crate::response::{git_response, plain, HttpError};
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
    /// `git archive --remote`.
    UploadArchive,
    /// Files, folders and archives over plain HTTP.
    Files(crate::files::FilesRoute),
    /// The webhook URL of an upstream (signed, no token).
    UpstreamWebhook(String),
    /// A bundle file of the `bundle-uri` list (the filesystem backend's download).
    BundleFile(String),
    /// A stored pack offered by `packfile-uris` (the filesystem backend's download).
    PackFile(String),
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
        ["git-upload-archive"] => Endpoint::UploadArchive,
        ["bundle"] => Endpoint::Bundle,
        ["bundles", file] if crate::bundle_uri::valid_file(file) => {
            Endpoint::BundleFile((*file).to_owned())
        }
        ["packs", file] if crate::packfile_uris::valid_file(file) => {
            Endpoint::PackFile((*file).to_owned())
        }
        ["upstreams", id, "webhook"] => Endpoint::UpstreamWebhook((*id).to_owned()),
        ["info", "lfs", lfs @ ..] => Endpoint::Lfs(crate::lfs_http::LfsRoute::parse(lfs)?),
        files => Endpoint::Files(crate::files::FilesRoute::parse(files)?),
    };
    Some((
        RepoId {
            workspace: ws.to_owned(),
            alias: alias.to_owned(),
        },
        endpoint,
    ))
}

/// Handle one request. The context layer put the caller and the base URL for links in its
/// extensions ([`crate::layers::ContextLayer`]).
pub async fn handle(app: Arc<App>, req: Request<Incoming>) -> Response<ResponseBody> {
    route_request(app, req)
        .await
        .unwrap_or_else(HttpError::into_response)
}

/// Whether a push may create `repo`: `--create-on-push` allows it and the caller has the
/// access it asks for on the repository.
fn may_create(app: &App, identity: Option<&crate::auth::Grants>, repo: &Repo) -> bool {
    let need = match app.config.create_on_push {
        crate::app::CreateOnPush::Off => return false,
        crate::app::CreateOnPush::Admin => Access::Admin,
        crate::app::CreateOnPush::Write => Access::Write,
    };
    identity.is_some()
        && authorize(
            identity,
            true,
            false,
            need,
            &repo.id.workspace,
            &repo.id.alias,
        )
        .is_ok()
}

async fn route_request(
    app: Arc<App>,
    req: Request<Incoming>,
) -> Result<Response<ResponseBody>, HttpError> {
    let path = req.uri().path().to_owned();
    match (req.method(), path.as_str()) {
        (&Method::GET, "/health") => return Ok(plain(StatusCode::OK, "ok")),
        (&Method::GET, "/metrics") => {
            return Ok(plain(StatusCode::OK, crate::metrics::render().trim_end()))
        }
        _ => {}
    }
    if let Some(page) = crate::web::route(&path) {
        return Ok(crate::web::handle(app, req, page).await);
    }
    if path == "/rpc" {
        return rpc(app, req).await;
    }
    if let Some(rest) = path.strip_prefix("/hf") {
        if rest.starts_with('/') {
            let rest = rest.to_owned();
            return Ok(crate::hub::handle(app, req, &rest).await);
        }
    }
    let Some((id, endpoint)) = route(&path) else {
        return Err(HttpError::NotFound("not found".into()));
    };
    if let Endpoint::UpstreamWebhook(upstream) = &endpoint {
        let upstream = upstream.clone();
        return crate::upstreams::webhook::handle(app, id, &upstream, req).await;
    }
    let need = match (&endpoint, query_service(&req)) {
        (Endpoint::ReceivePack, _) | (Endpoint::InfoRefs, Some("git-receive-pack")) => {
            Access::Write
        }
        (Endpoint::Lfs(route), _) => route.access(&req),
        _ => Access::Read,
    };
    let identity = caller(&req)?;
    let repo = Repo::new(&app.storage, id);
    let is_lfs = matches!(endpoint, Endpoint::Lfs(_));
    let v2_advertisement = endpoint == Endpoint::InfoRefs
        && query_service(&req) == Some("git-upload-pack")
        && protocol_version(&req) == 2;
    // A v2 capability advertisement is the same for every repository; to a caller entitled
    // to read, it is answered without a read when the repository was seen a moment ago (the
    // next request, which reads the refs, says "not found" if it went away meanwhile).
    if v2_advertisement && granted(identity.as_ref(), &repo, need) {
        if let Some(object_hash) = repo.refs.known_format(RECENTLY) {
            let known = refs::Snapshot {
                object_hash,
                ..Default::default()
            };
            return info_refs(known, false, &req);
        }
    }
    let (snapshot, settings) = read_for(&repo, identity.as_ref(), need, is_lfs).await?;
    let pushing = need == Access::Write && !is_lfs;
    let to_create = snapshot.is_none() && pushing && may_create(&app, identity.as_ref(), &repo);
    if to_create {
        // Discovery answers as for an empty repository of any object format; the push
        // itself creates it in the client's, so a client that stops here leaves nothing
        // behind. The server's default format comes first: git before 2.45 reads the
        // advertisement's null id in the first format offered and takes it for the null id
        // only in its own, so such a client creates repositories of the default format.
        let empty = refs::Snapshot {
            head: Some("refs/heads/main".into()),
            object_hash: app.config.object_format,
            ..Default::default()
        };
        match endpoint {
            Endpoint::InfoRefs => return info_refs(empty, true, &req),
            Endpoint::ReceivePack if req.method() == Method::POST => {
                return Ok(receive_pack::handle(app, repo, empty, identity, true, req).await)
            }
            _ => {}
        }
    }
    authorize(
        identity.as_ref(),
        snapshot.is_some(),
        settings.public,
        need,
        &repo.id.workspace,
        &repo.id.alias,
    )?;
    let Some(snapshot) = snapshot else {
        return Err(HttpError::NotFound("repository not found".into()));
    };
    Ok(match (req.method(), endpoint) {
        (_, Endpoint::Lfs(route)) => {
            crate::lfs_http::handle(app, repo, identity, settings.public, route, req).await
        }
        (_, Endpoint::Files(route)) => {
            crate::files::handle(app, repo, snapshot, route, req).await?
        }
        (&Method::POST, Endpoint::UploadArchive) => {
            crate::files::upload_archive::handle(app, repo, snapshot, req).await?
        }
        (&Method::GET, Endpoint::InfoRefs) => info_refs(snapshot, false, &req)?,
        (&Method::POST, Endpoint::UploadPack) => {
            upload_pack::handle(app, repo, snapshot, req).await
        }
        (&Method::GET, Endpoint::Bundle) => crate::bundle::handle(app, repo, snapshot, req).await,
        (&Method::GET | &Method::HEAD, Endpoint::BundleFile(file)) => {
            // Only through a URL a `bundle-uri` answer handed out: a bundle that went stale
            // (a force push, a deleted branch) stays stored until maintenance replaces it,
            // and must not be fetched by name.
            if !url_token_for(&req, &crate::bundle_uri::file_claim(&file)) {
                return Err(HttpError::NotFound("no such bundle".into()));
            }
            let key = repo.keys.bundle_file(&file);
            crate::bundle::serve_stored(&repo, &key, "application/x-git-bundle", &req).await?
        }
        (&Method::GET | &Method::HEAD, Endpoint::PackFile(file)) => {
            // Only through a URL a fetch's `packfile-uris` handed out, which it does only for
            // packs proven to hold nothing the refs do not reach.
            if !url_token_for(&req, &crate::packfile_uris::pack_claim(&file)) {
                return Err(HttpError::NotFound("no such pack".into()));
            }
            let name = file.trim_end_matches(".pack");
            let key = repo
                .keys
                .pack_file(name, objectstore::layout::PackFile::Pack);
            crate::bundle::serve_stored(&repo, &key, "application/x-git-packfile", &req).await?
        }
        (&Method::POST, Endpoint::ReceivePack) => {
            receive_pack::handle(app, repo, snapshot, identity, false, req).await
        }
        _ => return Err(HttpError::MethodNotAllowed("method not allowed")),
    })
}

/// Whether the caller came with the token of a URL bound to `claim`.
fn url_token_for(req: &Request<Incoming>, claim: &str) -> bool {
    req.extensions()
        .get::<crate::request::UrlToken>()
        .is_some_and(|t| t.0 == claim)
}

/// The JSON-RPC API; answers are JSON-RPC objects, errors included.
async fn rpc(app: Arc<App>, req: Request<Incoming>) -> Result<Response<ResponseBody>, HttpError> {
    if req.method() != Method::POST {
        return Err(HttpError::MethodNotAllowed(
            "POST a JSON-RPC 2.0 request to /rpc",
        ));
    }
    let identity = caller(&req)?;
    let base_url = crate::request::base_url(&req, &app.config.public.url);
    let body = body::read_all(req.into_body(), 1 << 20, app.config.timeouts.request_body).await?;
    let answer = crate::rpc::handle(app, identity, &base_url, &body).await;
    let text = answer.json.to_string();
    drop(answer.json);
    let mut resp = Response::new(match answer.held {
        Some(held) => body::holding(full(text), held),
        None => full(text),
    });
    resp.headers_mut().insert(
        header::CONTENT_TYPE,
        header::HeaderValue::from_static("application/json"),
    );
    Ok(resp)
}

/// The ref (or, v2, capability) advertisement of `snapshot`; `to_be_created`: of a
/// repository a push will create (every object format offered).
fn info_refs(
    snapshot: refs::Snapshot,
    to_be_created: bool,
    req: &Request<Incoming>,
) -> Result<Response<ResponseBody>, HttpError> {
    let Some(service) = query_service(req).and_then(Service::from_name) else {
        return Err(HttpError::Forbidden(
            "only the smart HTTP protocol is supported: use git 1.6.6 or newer".into(),
        ));
    };
    let version = protocol_version(req);
    let mut out = Vec::new();
    if service == Service::UploadPack && version == 2 {
        advertisement::write_v2_capabilities(&mut out, snapshot.object_hash);
    } else {
        let view = protocol::advertisement::RefsView {
            to_be_created,
            ..refs_view(&snapshot)
        };
        advertisement::write_service_header(&mut out, service);
        advertisement::write_v0(&mut out, service, &view, version == 1);
    }
    let content_type = match service {
        Service::UploadPack => "application/x-git-upload-pack-advertisement",
        Service::ReceivePack => "application/x-git-receive-pack-advertisement",
    };
    Ok(git_response(content_type, full(out)))
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
