//! Upstreams by API (scope `a`): `add_upstream`, `list_upstreams`, `sync_upstream`,
//! `remove_upstream`, the one-shot `import_repository`, and `git_status`, every remote of a
//! repository in one answer. The syncs themselves are [`crate::upstreams`].

use std::sync::Arc;

use events::config::{ConfigError, EndpointStore, Upstream, MAX_ENDPOINTS};
use events::state::now_ms;
use events::upstream::UpstreamStates;
use serde::Deserialize;
use serde_json::{json, Value};

use super::events::{admin_repo, check_room, check_url, head, secret_params, with_status};
use super::{artifact, params, ArtifactOnly, RpcError};
use crate::app::App;
use crate::auth::{Access, Grants};
use crate::repo::{Repo, Settings};

/// Patterns one upstream may follow at most.
const MAX_PATTERNS: usize = 100;
/// The shortest timer: a remote is not polled more often than this.
const MIN_INTERVAL: u64 = 5;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct AddUpstream {
    artifact_id: String,
    url: String,
    #[serde(default)]
    username: Option<String>,
    #[serde(default)]
    password: Option<String>,
    #[serde(default)]
    refs: Vec<String>,
    #[serde(default)]
    mode: Option<String>,
    #[serde(default)]
    interval: Option<u64>,
    #[serde(default)]
    lfs: Option<bool>,
    #[serde(default)]
    secret: Option<String>,
}

/// Credentials written into a URL (`https://user:token@host/…`) are taken out of it: they are
/// kept with the other secrets, never in the URL that lists show.
fn split_credentials(url: &str) -> (String, Option<String>, Option<String>) {
    let Some((scheme, rest)) = url.split_once("://") else {
        return (url.to_owned(), None, None);
    };
    let authority_end = rest.find('/').unwrap_or(rest.len());
    let Some(at) = rest[..authority_end].rfind('@') else {
        return (url.to_owned(), None, None);
    };
    let (userinfo, host) = (&rest[..at], &rest[at + 1..]);
    let decode = |s: &str| percent_decode(s);
    let (user, password) = match userinfo.split_once(':') {
        Some((u, p)) => (Some(decode(u)), Some(decode(p))),
        None => (None, Some(decode(userinfo))),
    };
    (
        format!("{scheme}://{host}"),
        user.filter(|u| !u.is_empty()),
        password,
    )
}

fn percent_decode(s: &str) -> String {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let hex = |b: u8| (b as char).to_digit(16);
        match (
            bytes[i],
            bytes.get(i + 1).copied().and_then(hex),
            bytes.get(i + 2).copied().and_then(hex),
        ) {
            (b'%', Some(h), Some(l)) => {
                out.push((h * 16 + l) as u8);
                i += 3;
            }
            (b, _, _) => {
                out.push(b);
                i += 1;
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// Check what every upstream needs: a URL this server may fetch from, sane credentials.
fn checked_remote(
    app: &App,
    url: &str,
    username: Option<String>,
    password: Option<String>,
) -> Result<(String, Option<String>, Option<String>), RpcError> {
    let (url, in_url_user, in_url_password) = split_credentials(url.trim());
    let username = username.or(in_url_user);
    let password = password.or(in_url_password);
    check_url(app, &url)?;
    if username
        .as_ref()
        .is_some_and(|u| u.is_empty() || u.len() > 256 || u.contains(':'))
        || password.as_ref().is_some_and(|w| w.len() > 4096)
    {
        return Err(RpcError::InvalidParams(
            "username: 1 to 256 characters without ':'; password: at most 4096".into(),
        ));
    }
    Ok((url.trim_end_matches('/').to_owned(), username, password))
}

fn webhook_url(base_url: &str, repo: &Repo, id: &str) -> String {
    format!(
        "{}/{}/git/{}/upstreams/{id}/webhook",
        base_url.trim_end_matches('/'),
        repo.id.workspace,
        repo.id.alias
    )
}

/// Add `upstream` to `repo`, list it for the schedulers and start its first sync. The
/// repository's changes are recorded from now on (its syncs are events, for webhooks, mirrors
/// and `git_status`).
async fn add(app: &Arc<App>, repo: &Repo, upstream: Upstream) -> Result<(), RpcError> {
    // Refused before anything is written when the repository has its share already.
    check_room(app, repo, "upstreams", |e| e.upstreams.len()).await?;
    repo.refs.watch().await?;
    let states = UpstreamStates::new(app.storage.bucket.clone(), repo.keys.clone());
    let interval = upstream.interval;
    states
        .update(&upstream.id, |s| {
            s.interval = interval;
            s.requested_ms = now_ms();
            Some(())
        })
        .await?;
    let added = upstream.clone();
    let listed = EndpointStore::new(app.storage.bucket.clone(), repo.keys.clone())
        .update(move |endpoints| {
            if endpoints.upstreams.len() >= MAX_ENDPOINTS {
                return Err(ConfigError::Refused(format!(
                    "a repository has at most {MAX_ENDPOINTS} upstreams"
                )));
            }
            endpoints.upstreams.push(added.clone());
            Ok(())
        })
        .await;
    if let Err(e) = listed {
        states.remove(&upstream.id).await?;
        return Err(e.into());
    }
    let index = app
        .storage
        .keys()
        .upstream(&repo.id.workspace, &repo.id.alias, &upstream.id);
    app.storage
        .bucket
        .put(&index, bytes::Bytes::new(), objectstore::PutMode::Overwrite)
        .await?;
    start_sync(app, repo, &upstream.id);
    Ok(())
}

fn start_sync(app: &Arc<App>, repo: &Repo, id: &str) {
    let (app, repo_id, id) = (app.clone(), repo.id.clone(), id.to_owned());
    tokio::spawn(async move {
        if let Err(e) = crate::upstreams::sync(app, repo_id, id, std::time::Duration::ZERO).await {
            tracing::warn!(error = %e, "an upstream sync failed");
        }
    });
}

/// `add_upstream {url, username?, password?, refs?, mode?, interval?, lfs?, secret?}`.
pub(super) async fn add_upstream(
    app: &Arc<App>,
    identity: Option<&Grants>,
    base_url: &str,
    p: Value,
) -> Result<Value, RpcError> {
    let p: AddUpstream = secret_params(
        p,
        "{artifact_id: string, url: string, username?: string, password?: string, refs?: [string], mode?: \"fast-forward\" | \"overwrite\", interval?: seconds, lfs?: bool, secret?: string}",
    )?;
    let repo = admin_repo(app, identity, &p.artifact_id).await?;
    let (url, username, password) = checked_remote(app, &p.url, p.username, p.password)?;
    if p.refs.len() > MAX_PATTERNS
        || p.refs
            .iter()
            .any(|r| !r.starts_with("refs/") || r.len() > 256 || r.contains(".."))
    {
        return Err(RpcError::InvalidParams(format!(
            "refs: at most {MAX_PATTERNS} names or globs under refs/"
        )));
    }
    let overwrite = match p.mode.as_deref() {
        None | Some("fast-forward") => false,
        Some("overwrite") => true,
        Some(_) => {
            return Err(RpcError::InvalidParams(
                "mode: fast-forward or overwrite".into(),
            ))
        }
    };
    let interval = p.interval.unwrap_or(0);
    if interval != 0 && !(MIN_INTERVAL..=7 * 86_400).contains(&interval) {
        return Err(RpcError::InvalidParams(format!(
            "interval: 0 (webhooks only) or {MIN_INTERVAL} seconds to a week"
        )));
    }
    if p.secret
        .as_ref()
        .is_some_and(|s| s.is_empty() || s.len() > 1024)
    {
        return Err(RpcError::InvalidParams(
            "secret: between 1 and 1024 characters".into(),
        ));
    }
    let upstream = Upstream {
        id: events::config::new_id("upstream")?,
        url,
        username,
        password,
        refs: p.refs,
        overwrite,
        interval,
        lfs: p.lfs.unwrap_or(true),
        secret: p.secret,
        import: false,
        created: events::log::now(),
    };
    add(app, &repo, upstream.clone()).await?;
    tracing::info!(repo = %repo.id, upstream = %upstream.id, "upstream added");
    Ok(json!({
        "id": upstream.id,
        "webhook_url": upstream.secret.as_ref().map(|_| webhook_url(base_url, &repo, &upstream.id)),
        "upstream": upstream.view(),
    }))
}

/// Each upstream's view (no secrets) with its status.
async fn upstreams_with_status(
    app: &App,
    repo: &Repo,
    base_url: &str,
) -> Result<Vec<Value>, RpcError> {
    let endpoints = EndpointStore::new(app.storage.bucket.clone(), repo.keys.clone())
        .load()
        .await?;
    let states = UpstreamStates::new(app.storage.bucket.clone(), repo.keys.clone());
    let lease = states.lease().await?;
    let mut out = Vec::new();
    for u in &endpoints.upstreams {
        let state = states.load(&u.id).await?;
        let mut view = serde_json::to_value(u.view()).unwrap_or_default();
        view["webhook_url"] = json!(u
            .secret
            .as_ref()
            .map(|_| webhook_url(base_url, repo, &u.id)));
        view["status"] = json!({
            "syncing": lease.is_held(now_ms()) && lease.upstream == u.id,
            "phase": state.phase,
            "progress_bytes": state.progress_bytes,
            "sync_pending": state.is_due(now_ms()),
            "last_attempt_ms": state.last_attempt_ms,
            "last_success_ms": state.last_success_ms,
            "last_error": state.last_error,
            "syncs": state.syncs,
            "refs": state.refs,
            "last_pack_bytes": state.last_pack_bytes,
            "last_lfs_objects": state.last_lfs_objects,
            "last_webhook": state.last_webhook,
        });
        out.push(view);
    }
    Ok(out)
}

/// `list_upstreams`: every upstream with its status; no passwords or secrets.
pub(super) async fn list_upstreams(
    app: &Arc<App>,
    identity: Option<&Grants>,
    base_url: &str,
    p: Value,
) -> Result<Value, RpcError> {
    let p: ArtifactOnly = params(p)?;
    let repo = admin_repo(app, identity, &p.artifact_id).await?;
    Ok(json!({"upstreams": upstreams_with_status(app, &repo, base_url).await?}))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct UpstreamRef {
    artifact_id: String,
    id: String,
}

async fn find(app: &App, repo: &Repo, id: &str) -> Result<Upstream, RpcError> {
    EndpointStore::new(app.storage.bucket.clone(), repo.keys.clone())
        .load()
        .await?
        .upstreams
        .into_iter()
        .find(|u| u.id == id)
        .ok_or_else(|| RpcError::NotFound(format!("no upstream {id:?}")))
}

/// `sync_upstream {id}`: sync now (on this replica, or on the one syncing already, which
/// then syncs once more).
pub(super) async fn sync_upstream(
    app: &Arc<App>,
    identity: Option<&Grants>,
    p: Value,
) -> Result<Value, RpcError> {
    let p: UpstreamRef = params(p)?;
    let repo = admin_repo(app, identity, &p.artifact_id).await?;
    find(app, &repo, &p.id).await?;
    UpstreamStates::new(app.storage.bucket.clone(), repo.keys.clone())
        .update(&p.id, |s| {
            s.requested_ms = now_ms();
            Some(())
        })
        .await?;
    start_sync(app, &repo, &p.id);
    Ok(json!({"requested": true}))
}

/// `remove_upstream {id}`.
pub(super) async fn remove_upstream(
    app: &Arc<App>,
    identity: Option<&Grants>,
    p: Value,
) -> Result<Value, RpcError> {
    let p: UpstreamRef = params(p)?;
    let repo = admin_repo(app, identity, &p.artifact_id).await?;
    let id = p.id.clone();
    let removed = EndpointStore::new(app.storage.bucket.clone(), repo.keys.clone())
        .update(move |e| {
            let before = e.upstreams.len();
            e.upstreams.retain(|u| u.id != id);
            Ok(before != e.upstreams.len())
        })
        .await?;
    if !removed {
        return Err(RpcError::NotFound(format!("no upstream {:?}", p.id)));
    }
    let index = app
        .storage
        .keys()
        .upstream(&repo.id.workspace, &repo.id.alias, &p.id);
    app.storage
        .bucket
        .delete(&index)
        .await
        .or_else(|e| match e.is_not_found() {
            true => Ok(()),
            false => Err(e),
        })?;
    UpstreamStates::new(app.storage.bucket.clone(), repo.keys.clone())
        .remove(&p.id)
        .await?;
    Ok(json!({"removed": true}))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Import {
    artifact_id: String,
    url: String,
    #[serde(default)]
    username: Option<String>,
    #[serde(default)]
    password: Option<String>,
    #[serde(default)]
    lfs: Option<bool>,
    #[serde(default)]
    public: bool,
}

/// `import_repository {url, username?, password?, lfs?, public?}`: a new repository with every
/// branch, tag and LFS object of a remote. Answers at once; `git_status` shows the progress;
/// an import whose replica dies is taken over by another when its lease runs out.
pub(super) async fn import_repository(
    app: &Arc<App>,
    identity: Option<&Grants>,
    base_url: &str,
    p: Value,
) -> Result<Value, RpcError> {
    let p: Import = secret_params(
        p,
        "{artifact_id: string, url: string, username?: string, password?: string, lfs?: bool, public?: bool}",
    )?;
    let id = artifact(&p.artifact_id)?;
    let repo = Repo::new(&app.storage, id.clone());
    if super::authorize(&repo, identity, Access::Admin).await? {
        return Err(RpcError::Conflict(format!(
            "{id} exists already; import into a new artifact"
        )));
    }
    let (url, username, password) = checked_remote(app, &p.url, p.username, p.password)?;
    // The remote's default branch becomes ours.
    let timeout = app.events.settings().timeout;
    let remote = events::mirror::Remote::at(
        app.events.client(),
        &url,
        username.as_deref(),
        password.as_deref(),
        timeout,
    );
    let advertised = remote
        .discover_fetch()
        .await
        .map_err(|e| RpcError::InvalidParams(format!("the remote cannot be read: {e}")))?;
    let branch = advertised
        .head
        .as_deref()
        .and_then(|h| h.strip_prefix("refs/heads/"))
        .unwrap_or("main")
        .to_owned();
    // In the remote's object format: its objects keep their names.
    match repo.refs.init(&branch, advertised.object_hash).await {
        Ok(()) => {}
        Err(refs::Error::AlreadyExists) => {
            return Err(RpcError::Conflict(format!("{id} was created concurrently")))
        }
        Err(e) => return Err(e.into()),
    }
    repo.write_settings(&Settings { public: p.public }).await?;
    let upstream = Upstream {
        id: events::config::new_id("upstream")?,
        url,
        username,
        password,
        refs: vec!["refs/heads/*".into(), "refs/tags/*".into()],
        overwrite: true,
        interval: 0,
        lfs: p.lfs.unwrap_or(true),
        secret: None,
        import: true,
        created: events::log::now(),
    };
    add(app, &repo, upstream.clone()).await?;
    tracing::info!(repo = %id, upstream = %upstream.id, "import started");
    Ok(json!({
        "id": upstream.id,
        "git_url": super::git_url(base_url, &id),
        "default_branch": branch,
        "refs": advertised.refs.len(),
        "status": "importing",
    }))
}

/// `git_status`: every remote of a repository (webhooks, push mirrors, upstreams) with its
/// last success, last attempt, last error and what is pending, and the repository's last
/// change.
pub(super) async fn git_status(
    app: &Arc<App>,
    identity: Option<&Grants>,
    base_url: &str,
    p: Value,
) -> Result<Value, RpcError> {
    let p: ArtifactOnly = params(p)?;
    let repo = admin_repo(app, identity, &p.artifact_id).await?;
    let endpoints = EndpointStore::new(app.storage.bucket.clone(), repo.keys.clone())
        .load()
        .await?;
    let hooks = endpoints.webhooks.iter().map(|h| (h.id.as_str(), h.view()));
    let mirrors = endpoints.mirrors.iter().map(|m| (m.id.as_str(), m.view()));
    let versions = match &endpoints.versions {
        Some(v) => {
            let view = [(events::config::VERSIONS_ENDPOINT, json!({"since": v.since}))];
            with_status(app, &repo, view.into_iter()).await?.pop()
        }
        None => None,
    };
    let at = head(&repo).await?;
    let from = events::log::Cursor {
        seq: at.seq.saturating_sub(1),
        id: String::new(),
    };
    let latest = events::log::events_after(app.storage.bucket.as_ref(), &repo.keys, &from, &at)
        .await?
        .events
        .pop();
    Ok(json!({
        "refs_seq": at.seq,
        "last_change": latest.map(|e| json!({
            "seq": e.seq, "time": e.time, "pusher": e.meta.pusher, "source": e.meta.source,
            "refs": e.refs.iter().map(|m| json!({"name": m.name, "before": m.before.to_string(), "after": m.after.to_string()})).collect::<Vec<_>>(),
        })),
        "webhooks": with_status(app, &repo, hooks).await?,
        "mirrors": with_status(app, &repo, mirrors).await?,
        "upstreams": upstreams_with_status(app, &repo, base_url).await?,
        "version_sync": versions,
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn credentials_are_taken_out_of_urls() {
        assert_eq!(
            split_credentials("https://bob:t%40ken@example.com/x/y.git"),
            (
                "https://example.com/x/y.git".into(),
                Some("bob".into()),
                Some("t@ken".into())
            )
        );
        assert_eq!(
            split_credentials("https://ghp_abc@github.com/o/r"),
            (
                "https://github.com/o/r".into(),
                None,
                Some("ghp_abc".into())
            )
        );
        assert_eq!(
            split_credentials("https://example.com/a@b"),
            ("https://example.com/a@b".into(), None, None)
        );
    }
}
