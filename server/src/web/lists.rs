//! The pages above repositories: the start page, a workspace's repositories, the sign-in
//! form.

use futures_util::StreamExt;
use http::{Response, StatusCode};
use webview::view::{Link, RepoRow};

use super::{respond, Visit};
use crate::auth::Access;
use crate::body::ResponseBody;
use crate::repo::Repo;
use crate::response::HttpError;
use crate::storage::{valid_name, RepoId};

/// Repositories per page of a workspace.
const PAGE: usize = 50;
/// Repositories looked at per page of a workspace.
const SCANNED: usize = 1000;

/// `/`: the workspaces the visitor's token names, and a form to open any.
pub async fn start(visit: &Visit) -> Result<Response<ResponseBody>, HttpError> {
    let workspaces = visit
        .identity
        .as_ref()
        .map(|g| g.workspaces())
        .unwrap_or_default()
        .into_iter()
        .map(|ws| Link::new(format!("/{ws}"), ws))
        .collect();
    let page = webview::pages::Start {
        chrome: visit.chrome("Start"),
        workspaces,
    };
    Ok(respond::page(StatusCode::OK, webview::pages::render(&page)))
}

/// `/-/go?workspace=`: the start page's form, to the workspace's page.
pub fn go(query: &str) -> Result<Response<ResponseBody>, HttpError> {
    let ws = form_urlencoded::parse(query.as_bytes())
        .find(|(k, _)| k == "workspace")
        .map(|(_, v)| v.trim().to_owned())
        .unwrap_or_default();
    if !valid_name(&ws) {
        return Err(HttpError::BadRequest(
            "a workspace name is letters, digits, `.`, `_` and `-`".into(),
        ));
    }
    Ok(respond::redirect(&format!("/{ws}")))
}

/// `/-/signin`: the token form.
pub fn sign_in_form(visit: &Visit, query: &str) -> Response<ResponseBody> {
    let next = form_urlencoded::parse(query.as_bytes())
        .find(|(k, _)| k == "next")
        .map(|(_, v)| v.into_owned());
    let page = webview::pages::SignIn {
        chrome: visit.chrome("Sign in"),
        next: crate::signin::safe_next(next.as_deref()),
        message: None,
    };
    respond::page(StatusCode::OK, webview::pages::render(&page))
}

/// `/{ws}?after=`: the workspace's repositories the visitor may read, a page at a time.
pub async fn workspace(
    visit: &Visit,
    ws: &str,
    query: &str,
) -> Result<Response<ResponseBody>, HttpError> {
    let after = form_urlencoded::parse(query.as_bytes())
        .find(|(k, _)| k == "after")
        .map(|(_, v)| v.into_owned());
    let storage = &visit.app.storage;
    let aliases = storage
        .bucket
        .list_folders(&storage.keys().artifacts_dir(ws))
        .await
        .map_err(|e| HttpError::Storage(e.to_string()))?;
    let candidates: Vec<String> = aliases
        .into_iter()
        .filter(|a| valid_name(a) && after.as_ref().is_none_or(|after| a > after))
        .collect();
    let mut repos = Vec::new();
    let mut next = None;
    // Read each candidate's settings and refs a few at a time, in order, until a page is
    // full; at most SCANNED of them per page, so a workspace of many repositories the
    // visitor may not see costs a bounded number of reads (the next page goes on).
    let mut checks = futures_util::stream::iter(candidates.iter().take(SCANNED).cloned())
        .map(|alias| visible_repo(visit, ws, alias))
        .buffered(16);
    let mut scanned = 0;
    while let Some(row) = checks.next().await {
        scanned += 1;
        if let Some(row) = row? {
            if repos.len() == PAGE {
                next = repos
                    .last()
                    .map(|r: &RepoRow| format!("/{ws}?after={}", r.alias));
                break;
            }
            repos.push(row);
        }
    }
    if next.is_none() && scanned == SCANNED && candidates.len() > SCANNED {
        next = Some(format!("/{ws}?after={}", candidates[SCANNED - 1]));
    }
    let mut chrome = visit.chrome(ws);
    chrome.crumbs = vec![Link::new(format!("/{ws}"), ws)];
    let page = webview::pages::Workspace {
        chrome,
        workspace: ws.to_owned(),
        repos,
        next,
    };
    Ok(respond::page(StatusCode::OK, webview::pages::render(&page)))
}

/// The row of `ws/alias` when it is a repository the visitor may read.
async fn visible_repo(
    visit: &Visit,
    ws: &str,
    alias: String,
) -> Result<Option<RepoRow>, HttpError> {
    let repo = Repo::new(
        &visit.app.storage,
        RepoId {
            workspace: ws.to_owned(),
            alias: alias.clone(),
        },
    );
    let granted = crate::admission::granted(visit.identity.as_ref(), &repo, Access::Read);
    let settings = repo
        .settings()
        .await
        .map_err(|e| HttpError::Storage(e.to_string()))?;
    if !granted && !settings.public {
        return Ok(None);
    }
    match repo.snapshot().await {
        Ok(_) => {}
        Err(refs::Error::NotFound) => return Ok(None),
        Err(e) => return Err(e.into()),
    }
    Ok(Some(RepoRow {
        href: format!("/{ws}/git/{alias}"),
        alias,
        public: settings.public,
    }))
}
