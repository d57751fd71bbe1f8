//! The web view: pages of workspaces and repositories for browsers, on the same origin and
//! under the same authorization as git and the API.
//!
//! The `webview` crate renders; this module routes, authorizes and reads. Repository pages
//! open the repository once through [`crate::admission::open_repository`] (the one
//! authorization) and answer from the same readers the file routes and the history API use
//! ([`crate::files`], the `history` crate) under the same budgets; the pull request and
//! settings pages, which are rare, render the API's own answers ([`crate::rpc::call`]).
//!
//! Routes (git's own requests go to paths below a repository and never collide):
//!
//! - `/`: start; `/{ws}`: a workspace's repositories; `/-/go?workspace=`: the start page's form;
//! - `/{ws}/git/{alias}`: a repository's home (its clone URL opened in a browser);
//! - `/{ws}/git/{alias}/-/{tree|blob|raw|commits}/{rev}/{path}`, `-/commit/{id}`,
//!   `-/compare?from=&to=`, `-/branches`, `-/pulls`, `-/pull/{n}` (and `POST …/merge`),
//!   `-/settings`;
//! - `/-/signin` (form and `POST`), `/-/signin/{code}` (a link), `POST /-/signout`,
//!   `/-/assets/{name}`.

mod lists;
mod pulls;
mod repo;
pub(crate) mod respond;
pub mod session;

use std::sync::Arc;

use http::{header, HeaderValue, Method, Request, Response, StatusCode};
use hyper::body::Incoming;

use crate::app::App;
use crate::auth::Grants;
use crate::body::ResponseBody;
use crate::response::HttpError;
use crate::storage::{valid_name, RepoId};

/// Which page a path names.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum WebRoute {
    /// `/`.
    Start,
    /// `/-/assets/{name}`.
    Asset(String),
    /// `/-/signin`.
    SignIn,
    /// `/-/signin/{code}`.
    SignInLink(String),
    /// `/-/signout`.
    SignOut,
    /// `/-/go?workspace=`.
    Go,
    /// `/{ws}`.
    Workspace(String),
    /// A repository's page.
    Repo(RepoId, RepoPage),
}

/// A repository's pages; segments still percent-encoded.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RepoPage {
    /// Its home: the default branch's root folder, README and clone URL.
    Home,
    /// `-/tree/{rev}/{path}`.
    Tree(Vec<String>),
    /// `-/blob/{rev}/{path}`.
    Blob(Vec<String>),
    /// `-/raw/{rev}/{path}`: the bytes, for images on pages and the Raw button.
    Raw(Vec<String>),
    /// `-/commits/{rev}/{path}`.
    Commits(Vec<String>),
    /// `-/commit/{id}`.
    Commit(String),
    /// `-/compare?from=&to=`.
    Compare,
    /// `-/branches`.
    Refs,
    /// `-/pulls`.
    Pulls,
    /// `-/pull/{n}`.
    Pull(u64),
    /// `POST -/pull/{n}/merge`.
    Merge(u64),
    /// `-/settings`.
    Settings,
}

/// Paths of one segment that are not workspaces.
const RESERVED: [&str; 5] = ["health", "metrics", "rpc", "hf", "favicon.ico"];

/// The page `path` names, if it is one of the web view's.
pub fn route(path: &str) -> Option<WebRoute> {
    let parts: Vec<&str> = path.trim_start_matches('/').split('/').collect();
    Some(match parts.as_slice() {
        [""] => WebRoute::Start,
        ["-", "assets", name] => WebRoute::Asset((*name).to_owned()),
        ["-", "signin"] => WebRoute::SignIn,
        ["-", "signin", code] => WebRoute::SignInLink((*code).to_owned()),
        ["-", "signout"] => WebRoute::SignOut,
        ["-", "go"] => WebRoute::Go,
        [ws] | [ws, ""] if valid_name(ws) && !RESERVED.contains(ws) => {
            WebRoute::Workspace((*ws).to_owned())
        }
        [ws, "git", alias, rest @ ..] => {
            let alias = alias.strip_suffix(".git").unwrap_or(alias);
            if !valid_name(ws) || !valid_name(alias) || RESERVED.contains(ws) {
                return None;
            }
            let id = RepoId {
                workspace: (*ws).to_owned(),
                alias: alias.to_owned(),
            };
            WebRoute::Repo(id, repo_page(rest)?)
        }
        _ => return None,
    })
}

fn repo_page(rest: &[&str]) -> Option<RepoPage> {
    let owned = |s: &[&str]| s.iter().map(|s| (*s).to_owned()).collect::<Vec<_>>();
    Some(match rest {
        [] | [""] => RepoPage::Home,
        ["-", "tree", tail @ ..] if !tail.is_empty() => RepoPage::Tree(owned(tail)),
        ["-", "blob", tail @ ..] if tail.len() >= 2 => RepoPage::Blob(owned(tail)),
        ["-", "raw", tail @ ..] if tail.len() >= 2 => RepoPage::Raw(owned(tail)),
        ["-", "commits", tail @ ..] if !tail.is_empty() => RepoPage::Commits(owned(tail)),
        ["-", "commit", id] => RepoPage::Commit((*id).to_owned()),
        ["-", "compare"] => RepoPage::Compare,
        ["-", "branches"] => RepoPage::Refs,
        ["-", "pulls"] => RepoPage::Pulls,
        ["-", "pull", n] => RepoPage::Pull(n.parse().ok()?),
        ["-", "pull", n, "merge"] => RepoPage::Merge(n.parse().ok()?),
        ["-", "settings"] => RepoPage::Settings,
        _ => return None,
    })
}

/// Who is visiting, and how to link back: what every page handler needs.
#[derive(Clone)]
pub struct Visit {
    /// The server.
    pub app: Arc<App>,
    /// The visitor's grants (from the cookie or a token), if any.
    pub identity: Option<Grants>,
    /// The session, when signed in by cookie.
    pub session: Option<session::Session>,
    /// The base URL of links handed out (clone URLs).
    pub base_url: String,
    /// This page's path and query (where sign-in returns).
    pub here: String,
}

impl Visit {
    /// What every page shows around its content.
    pub fn chrome(&self, title: impl Into<String>) -> webview::view::Chrome {
        let signed_in = self
            .identity
            .as_ref()
            .map(|g| g.subject.clone().unwrap_or_else(|| "signed in".to_owned()));
        webview::view::Chrome {
            title: title.into(),
            signed_in,
            csrf: self
                .session
                .as_ref()
                .map(|s| s.csrf.clone())
                .unwrap_or_default(),
            crumbs: Vec::new(),
            repo: None,
            here: self.here.clone(),
        }
    }
}

/// Answer a page request.
pub async fn handle(
    app: Arc<App>,
    req: Request<Incoming>,
    route: WebRoute,
) -> Response<ResponseBody> {
    let identity = match crate::admission::caller(&req) {
        Ok(identity) => identity,
        Err(e) => return e.into_response(),
    };
    let visit = Visit {
        base_url: crate::request::base_url(&req, &app.config.public.url),
        session: req.extensions().get::<session::Session>().cloned(),
        here: req
            .uri()
            .path_and_query()
            .map_or("/".to_owned(), |p| p.as_str().to_owned()),
        app,
        identity,
    };
    let chrome = visit.chrome("");
    answer(&visit, req, route)
        .await
        .unwrap_or_else(|e| respond::error(e, chrome))
}

async fn answer(
    visit: &Visit,
    req: Request<Incoming>,
    route: WebRoute,
) -> Result<Response<ResponseBody>, HttpError> {
    let post = req.method() == Method::POST;
    if !post && req.method() != Method::GET && req.method() != Method::HEAD {
        return Err(HttpError::MethodNotAllowed("use GET or POST"));
    }
    let query = req.uri().query().unwrap_or("").to_owned();
    match (post, route) {
        (false, WebRoute::Asset(name)) => asset(&name),
        (false, WebRoute::Start) => lists::start(visit).await,
        (false, WebRoute::Go) => lists::go(&query),
        (false, WebRoute::Workspace(ws)) => lists::workspace(visit, &ws, &query).await,
        (false, WebRoute::SignIn) => Ok(lists::sign_in_form(visit, &query)),
        (true, WebRoute::SignIn) => {
            session::sign_in(&visit.app, req, &visit.base_url, visit.chrome("Sign in")).await
        }
        (false, WebRoute::SignInLink(code)) => {
            session::visit_link(&visit.app, &code, &visit.base_url).await
        }
        (true, WebRoute::SignOut) => {
            let body = read_form(visit, req.headers().clone(), req.into_body()).await?;
            session::check_form(&body.0, &visit.base_url, visit.session.as_ref(), &body.1)?;
            Ok(session::signed_out(&visit.base_url))
        }
        (true, WebRoute::Repo(id, RepoPage::Merge(n))) => {
            let (headers, body) = read_form(visit, req.headers().clone(), req.into_body()).await?;
            session::check_form(&headers, &visit.base_url, visit.session.as_ref(), &body)?;
            pulls::merge(visit, id, n).await
        }
        (false, WebRoute::Repo(id, page)) => repo::page(visit, id, page, &query, &req).await,
        _ => Err(HttpError::MethodNotAllowed("this page is not a form")),
    }
}

async fn read_form(
    visit: &Visit,
    headers: http::HeaderMap,
    body: Incoming,
) -> Result<(http::HeaderMap, Vec<(String, String)>), HttpError> {
    let timeout = visit.app.config.timeouts.request_body;
    let body = crate::body::read_all(body, session::MAX_FORM, timeout).await?;
    Ok((headers, session::parse_form(&body)))
}

fn asset(name: &str) -> Result<Response<ResponseBody>, HttpError> {
    let Some((content_type, text)) = webview::assets::asset(name) else {
        return Err(HttpError::NotFound("no such asset".into()));
    };
    let mut resp = Response::new(crate::body::full(text));
    *resp.status_mut() = StatusCode::OK;
    let h = resp.headers_mut();
    h.insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
    h.insert(
        header::CACHE_CONTROL,
        HeaderValue::from_static("public, max-age=3600"),
    );
    respond::protect(h, webview::CONTENT_SECURITY_POLICY);
    Ok(resp)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn routes() {
        assert_eq!(route("/"), Some(WebRoute::Start));
        assert_eq!(route("/lab"), Some(WebRoute::Workspace("lab".into())));
        assert_eq!(route("/rpc"), None);
        assert_eq!(route("/health"), None);
        let (id, page) = match route("/lab/git/data") {
            Some(WebRoute::Repo(id, page)) => (id, page),
            other => panic!("{other:?}"),
        };
        assert_eq!((id.alias.as_str(), page), ("data", RepoPage::Home));
        assert!(matches!(
            route("/lab/git/data.git/-/blob/main/a/b.txt"),
            Some(WebRoute::Repo(_, RepoPage::Blob(s))) if s == ["main", "a", "b.txt"]
        ));
        assert_eq!(route("/lab/git/data/info/refs"), None);
        assert_eq!(route("/lab/git/data/git-upload-pack"), None);
        assert_eq!(route("/lab/git/../-/tree/main"), None);
        assert!(matches!(
            route("/lab/git/data/-/pull/3/merge"),
            Some(WebRoute::Repo(_, RepoPage::Merge(3)))
        ));
    }
}
