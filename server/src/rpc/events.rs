//! Webhooks and push mirrors over the API: every method needs admin rights on the artifact.
//! Secrets (webhook secrets, mirror passwords) go in and never come out, not even in errors.

use std::sync::Arc;

use events::config::{new_id, ConfigError, EndpointStore, Mirror, Webhook, MAX_ENDPOINTS};
use events::log::Cursor;
use events::state::{EndpointState, StateStore};
use serde::Deserialize;
use serde_json::{json, Value};

use super::{artifact, authorize, ArtifactOnly, RpcError};
use crate::app::App;
use crate::auth::{Access, Grants};
use crate::repo::Repo;

impl From<ConfigError> for RpcError {
    fn from(e: ConfigError) -> Self {
        match e {
            ConfigError::Refused(m) => RpcError::InvalidParams(m),
            ConfigError::Contention => RpcError::Conflict(e.to_string()),
            e => {
                tracing::error!(error = %e, "endpoint configuration failed");
                RpcError::Internal(e.to_string())
            }
        }
    }
}

/// Parse params that may hold a secret: serde's messages quote the offending value, so a
/// mistyped password would come back in the error; this one names only the expected shape.
pub(super) fn secret_params<T: for<'de> Deserialize<'de>>(
    params: Value,
    shape: &str,
) -> Result<T, RpcError> {
    serde_json::from_value(params).map_err(|_| RpcError::InvalidParams(format!("expected {shape}")))
}

/// The repository of an existing, administered artifact.
pub(super) async fn admin_repo(
    app: &App,
    identity: Option<&Grants>,
    artifact_id: &str,
) -> Result<Repo, RpcError> {
    let id = artifact(artifact_id)?;
    let repo = Repo::new(&app.storage, id.clone());
    if !authorize(&repo, identity, Access::Admin).await? {
        return Err(RpcError::NotFound(format!(
            "git is not enabled for artifact {id}; enable it with enable_git first"
        )));
    }
    Ok(repo)
}

pub(super) async fn head(repo: &Repo) -> Result<Cursor, RpcError> {
    let snapshot = repo.snapshot().await?;
    Ok(Cursor {
        seq: snapshot.seq,
        id: snapshot.content_id,
    })
}

/// Where a new endpoint starts: the refs from which every change is recorded (the repository
/// is made watched first, if nothing watched it).
pub(super) async fn watched_head(repo: &Repo) -> Result<Cursor, RpcError> {
    let snapshot = repo.refs.watch().await?;
    Ok(Cursor {
        seq: snapshot.seq,
        id: snapshot.content_id,
    })
}

pub(super) fn check_url(app: &App, url: &str) -> Result<(), RpcError> {
    app.events
        .client()
        .check_url(url)
        .map(|_| ())
        .map_err(|e| RpcError::InvalidParams(e.to_string()))
}

const EVENT_KINDS: [&str; 4] = ["push", "pull_request", "ping", "*"];

fn check_hook(secret: &str, events: &[String]) -> Result<(), RpcError> {
    if secret.is_empty() || secret.len() > 1024 {
        return Err(RpcError::InvalidParams(
            "secret: between 1 and 1024 characters".into(),
        ));
    }
    if secret.starts_with("whsec_") && events::sign::standard_key(secret).is_none() {
        return Err(RpcError::InvalidParams(
            "secret: a whsec_ secret must be followed by base64".into(),
        ));
    }
    if events.is_empty() || events.iter().any(|e| !EVENT_KINDS.contains(&e.as_str())) {
        return Err(RpcError::InvalidParams(
            "events: a non-empty list of \"push\", \"pull_request\", \"ping\" or \"*\"".into(),
        ));
    }
    Ok(())
}

/// Refuse, before anything is written, to add an endpoint of a kind `repo` has
/// [`MAX_ENDPOINTS`] of already.
pub(super) async fn check_room(
    app: &App,
    repo: &Repo,
    kind: &str,
    count: impl Fn(&events::config::Endpoints) -> usize,
) -> Result<(), RpcError> {
    let endpoints = EndpointStore::new(app.storage.bucket.clone(), repo.keys.clone())
        .load()
        .await?;
    if count(&endpoints) >= MAX_ENDPOINTS {
        return Err(RpcError::InvalidParams(format!(
            "a repository has at most {MAX_ENDPOINTS} {kind}"
        )));
    }
    Ok(())
}

/// When listing a new endpoint failed (another call took the last place meanwhile), its
/// state goes again: a refused call leaves nothing behind.
async fn unlisted(
    states: &StateStore,
    id: &str,
    listed: Result<(), ConfigError>,
) -> Result<(), RpcError> {
    if let Err(e) = listed {
        if let Err(cleanup) = states.delete(id).await {
            tracing::warn!(endpoint = id, error = %cleanup, "removing the state of an endpoint not added failed");
        }
        return Err(e.into());
    }
    Ok(())
}

fn push_only() -> Vec<String> {
    vec!["push".into()]
}
fn yes() -> bool {
    true
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct AddWebhook {
    artifact_id: String,
    url: String,
    secret: String,
    #[serde(default = "push_only")]
    events: Vec<String>,
    #[serde(default = "yes")]
    active: bool,
}

/// `add_webhook`: a new webhook, sent a `ping` at once.
pub(super) async fn add_webhook(
    app: &Arc<App>,
    identity: Option<&Grants>,
    p: Value,
) -> Result<Value, RpcError> {
    let p: AddWebhook = secret_params(
        p,
        "{artifact_id: string, url: string, secret: string, events?: [string], active?: bool}",
    )?;
    let repo = admin_repo(app, identity, &p.artifact_id).await?;
    check_url(app, &p.url)?;
    check_hook(&p.secret, &p.events)?;
    check_room(app, &repo, "webhooks", |e| e.webhooks.len()).await?;
    let hook = Webhook {
        id: new_id("hook")?,
        url: p.url,
        secret: p.secret,
        events: p.events,
        active: p.active,
        disabled_reason: None,
        created: events::log::now(),
    };
    // The state first, at the refs as they are: the hook gets the pushes from now on.
    let states = StateStore::new(app.storage.bucket.clone(), repo.keys.clone());
    let start = EndpointState {
        cursor: watched_head(&repo).await?,
        ..EndpointState::default()
    };
    states.create(&hook.id, &start).await?;
    let added = hook.clone();
    let listed = EndpointStore::new(app.storage.bucket.clone(), repo.keys.clone())
        .update(move |endpoints| {
            if endpoints.webhooks.len() >= MAX_ENDPOINTS {
                return Err(ConfigError::Refused(format!(
                    "a repository has at most {MAX_ENDPOINTS} webhooks"
                )));
            }
            endpoints.webhooks.push(added.clone());
            Ok(())
        })
        .await;
    unlisted(&states, &hook.id, listed).await?;
    tracing::info!(repo = %repo.id, hook = %hook.id, "webhook added");
    if hook.active && (hook.wants("ping") || hook.wants("push")) {
        let (app, hook, id) = (app.clone(), hook.clone(), repo.id.clone());
        tokio::spawn(async move {
            if let Err(e) = app.events.ping(&id.workspace, &id.alias, &hook).await {
                tracing::warn!(hook = %hook.id, error = %e, "ping failed");
            }
        });
    }
    Ok(json!({"id": hook.id, "webhook": hook.view()}))
}

fn status(state: Option<&EndpointState>, head: &Cursor) -> Value {
    match state {
        None => json!({"pending_events": 0}),
        Some(s) => json!({
            "pending_events": head.seq.saturating_sub(s.cursor.seq),
            "delivered_events": s.delivered,
            "last_attempt_ms": s.last_attempt_ms,
            "last_success_ms": s.last_success_ms,
            "last_error": s.last_error,
            "next_retry_ms": s.retry.as_ref().map(|r| r.next_ms),
            "attempts": s.retry.as_ref().map(|r| r.attempts),
            "paused": s.paused,
            "full_sync_pending": s.full_sync,
            "refs": s.ref_results.iter().map(|r| json!({"name": r.name, "status": r.status})).collect::<Vec<_>>(),
        }),
    }
}

/// `list_webhooks`: every webhook with its delivery status; no secrets.
pub(super) async fn list_webhooks(
    app: &Arc<App>,
    identity: Option<&Grants>,
    p: Value,
) -> Result<Value, RpcError> {
    let p: ArtifactOnly = super::params(p)?;
    let repo = admin_repo(app, identity, &p.artifact_id).await?;
    let endpoints = EndpointStore::new(app.storage.bucket.clone(), repo.keys.clone())
        .load()
        .await?;
    let views = endpoints.webhooks.iter().map(|h| (h.id.as_str(), h.view()));
    Ok(json!({"webhooks": with_status(app, &repo, views).await?}))
}

/// Each endpoint's view (no secrets) with its delivery status.
pub(super) async fn with_status<'a, V: serde::Serialize>(
    app: &App,
    repo: &Repo,
    views: impl Iterator<Item = (&'a str, V)>,
) -> Result<Vec<Value>, RpcError> {
    let head = head(repo).await?;
    let states = StateStore::new(app.storage.bucket.clone(), repo.keys.clone());
    let mut out = Vec::new();
    for (id, view) in views {
        let state = states.get(id).await?.map(|v| v.state);
        let mut view = serde_json::to_value(view).unwrap_or_default();
        view["status"] = status(state.as_ref(), &head);
        out.push(view);
    }
    Ok(out)
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct UpdateWebhook {
    artifact_id: String,
    id: String,
    url: Option<String>,
    secret: Option<String>,
    events: Option<Vec<String>>,
    active: Option<bool>,
}

/// `update_webhook`: change a webhook; turning it on again starts it at the current refs.
pub(super) async fn update_webhook(
    app: &Arc<App>,
    identity: Option<&Grants>,
    p: Value,
) -> Result<Value, RpcError> {
    let p: UpdateWebhook = secret_params(
        p,
        "{artifact_id: string, id: string, url?: string, secret?: string, events?: [string], active?: bool}",
    )?;
    let repo = admin_repo(app, identity, &p.artifact_id).await?;
    if let Some(url) = &p.url {
        check_url(app, url)?;
    }
    let reactivated = std::sync::Mutex::new(false);
    let updated = EndpointStore::new(app.storage.bucket.clone(), repo.keys.clone())
        .update(|endpoints| {
            let hook = endpoints
                .webhooks
                .iter_mut()
                .find(|h| h.id == p.id)
                .ok_or_else(|| ConfigError::Refused(format!("no webhook {:?}", p.id)))?;
            if let Some(url) = &p.url {
                hook.url = url.clone();
            }
            if let Some(secret) = &p.secret {
                hook.secret = secret.clone();
            }
            if let Some(events) = &p.events {
                hook.events = events.clone();
            }
            if let Some(active) = p.active {
                *reactivated.lock().unwrap_or_else(|e| e.into_inner()) = active && !hook.active;
                hook.active = active;
                if active {
                    hook.disabled_reason = None;
                }
            }
            // Checked before anything is stored: a refused update changes nothing.
            check_hook(&hook.secret, &hook.events).map_err(|e| match e {
                RpcError::InvalidParams(m) => ConfigError::Refused(m),
                e => ConfigError::Refused(e.to_string()),
            })?;
            Ok(hook.clone())
        })
        .await
        .map_err(|e| match e {
            ConfigError::Refused(m) if m.starts_with("no webhook") => RpcError::NotFound(m),
            e => e.into(),
        })?;
    if *reactivated.lock().unwrap_or_else(|e| e.into_inner()) {
        let head = watched_head(&repo).await?;
        StateStore::new(app.storage.bucket.clone(), repo.keys.clone())
            .update(&updated.id, |s| {
                s.cursor = head.clone();
                s.retry = None;
                s.lease = None;
            })
            .await?;
    }
    Ok(json!({"webhook": updated.view()}))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct EndpointRef {
    artifact_id: String,
    id: String,
}

/// `remove_webhook`: the hook, its state and its delivery log.
pub(super) async fn remove_webhook(
    app: &Arc<App>,
    identity: Option<&Grants>,
    p: Value,
) -> Result<Value, RpcError> {
    let p: EndpointRef = super::params(p)?;
    let repo = admin_repo(app, identity, &p.artifact_id).await?;
    let id = p.id.clone();
    remove_endpoint(app, &repo, &p.id, "webhook", move |e| {
        let before = e.webhooks.len();
        e.webhooks.retain(|h| h.id != id);
        before != e.webhooks.len()
    })
    .await?;
    events::deliveries::DeliveryLog::new(app.storage.bucket.clone(), repo.keys.clone())
        .delete_all(&p.id)
        .await?;
    Ok(json!({"removed": true}))
}

/// Take an endpoint out of the configuration (`remove` says whether it was there), then its
/// state.
async fn remove_endpoint(
    app: &App,
    repo: &Repo,
    id: &str,
    kind: &str,
    remove: impl Fn(&mut events::config::Endpoints) -> bool,
) -> Result<(), RpcError> {
    let removed = EndpointStore::new(app.storage.bucket.clone(), repo.keys.clone())
        .update(|endpoints| Ok(remove(endpoints)))
        .await?;
    if !removed {
        return Err(RpcError::NotFound(format!("no {kind} {id:?}")));
    }
    StateStore::new(app.storage.bucket.clone(), repo.keys.clone())
        .delete(id)
        .await?;
    Ok(())
}

async fn find_hook(app: &App, repo: &Repo, id: &str) -> Result<Webhook, RpcError> {
    EndpointStore::new(app.storage.bucket.clone(), repo.keys.clone())
        .load()
        .await?
        .webhooks
        .into_iter()
        .find(|h| h.id == id)
        .ok_or_else(|| RpcError::NotFound(format!("no webhook {id:?}")))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ListDeliveries {
    artifact_id: String,
    id: String,
    #[serde(default)]
    limit: Option<usize>,
    #[serde(default)]
    include_payload: bool,
}

/// `list_deliveries`: a webhook's latest attempts, newest first.
pub(super) async fn list_deliveries(
    app: &Arc<App>,
    identity: Option<&Grants>,
    p: Value,
) -> Result<Value, RpcError> {
    let p: ListDeliveries = super::params(p)?;
    let repo = admin_repo(app, identity, &p.artifact_id).await?;
    find_hook(app, &repo, &p.id).await?;
    let limit = p.limit.unwrap_or(50).min(events::deliveries::KEEP);
    let mut deliveries =
        events::deliveries::DeliveryLog::new(app.storage.bucket.clone(), repo.keys.clone())
            .list(&p.id, limit)
            .await?;
    if !p.include_payload {
        for d in &mut deliveries {
            d.payload.clear();
        }
    }
    Ok(json!({"deliveries": deliveries}))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Redeliver {
    artifact_id: String,
    id: String,
    delivery_id: String,
}

/// `redeliver`: send a logged delivery again, now; its outcome.
pub(super) async fn redeliver(
    app: &Arc<App>,
    identity: Option<&Grants>,
    p: Value,
) -> Result<Value, RpcError> {
    let p: Redeliver = super::params(p)?;
    let repo = admin_repo(app, identity, &p.artifact_id).await?;
    let hook = find_hook(app, &repo, &p.id).await?;
    let original =
        events::deliveries::DeliveryLog::new(app.storage.bucket.clone(), repo.keys.clone())
            .get(&p.id, &p.delivery_id)
            .await?
            .ok_or_else(|| RpcError::NotFound(format!("no delivery {:?}", p.delivery_id)))?;
    let mut delivery = app
        .events
        .redeliver(&repo.id.workspace, &repo.id.alias, &hook, &original)
        .await
        .map_err(|e| RpcError::Internal(e.to_string()))?;
    delivery.payload.clear();
    Ok(json!({"delivery": delivery}))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct AddMirror {
    artifact_id: String,
    url: String,
    username: Option<String>,
    password: Option<String>,
    #[serde(default)]
    force: bool,
}

/// `add_mirror`: a push mirror; every ref is pushed to it at once.
pub(super) async fn add_mirror(
    app: &Arc<App>,
    identity: Option<&Grants>,
    p: Value,
) -> Result<Value, RpcError> {
    let p: AddMirror = secret_params(
        p,
        "{artifact_id: string, url: string, username?: string, password?: string, force?: bool}",
    )?;
    let repo = admin_repo(app, identity, &p.artifact_id).await?;
    check_url(app, &p.url)?;
    if p.username
        .as_ref()
        .is_some_and(|u| u.is_empty() || u.len() > 256 || u.contains(':'))
        || p.password.as_ref().is_some_and(|w| w.len() > 4096)
    {
        return Err(RpcError::InvalidParams(
            "username: 1 to 256 characters without ':'; password: at most 4096".into(),
        ));
    }
    check_room(app, &repo, "mirrors", |e| e.mirrors.len()).await?;
    let mirror = Mirror {
        id: new_id("mirror")?,
        url: p.url.trim_end_matches('/').to_owned(),
        username: p.username,
        password: p.password,
        force: p.force,
        created: events::log::now(),
    };
    let start = EndpointState {
        cursor: watched_head(&repo).await?,
        full_sync: true,
        ..EndpointState::default()
    };
    let states = StateStore::new(app.storage.bucket.clone(), repo.keys.clone());
    states.create(&mirror.id, &start).await?;
    let added = mirror.clone();
    let listed = EndpointStore::new(app.storage.bucket.clone(), repo.keys.clone())
        .update(move |endpoints| {
            if endpoints.mirrors.len() >= MAX_ENDPOINTS {
                return Err(ConfigError::Refused(format!(
                    "a repository has at most {MAX_ENDPOINTS} mirrors"
                )));
            }
            endpoints.mirrors.push(added.clone());
            Ok(())
        })
        .await;
    unlisted(&states, &mirror.id, listed).await?;
    // The first full push is due: a marker makes every replica's worker look at it.
    mark_pending(app, &repo).await?;
    tracing::info!(repo = %repo.id, mirror = %mirror.id, "mirror added");
    Ok(json!({"id": mirror.id, "mirror": mirror.view()}))
}

async fn mark_pending(app: &App, repo: &Repo) -> Result<(), RpcError> {
    let head = head(repo).await?;
    let nonce = events::config::new_id("changed")?;
    let key =
        app.storage
            .keys()
            .endpoint_changed(&repo.id.workspace, &repo.id.alias, head.seq, &nonce);
    app.storage
        .bucket
        .put(&key, bytes::Bytes::new(), objectstore::PutMode::Overwrite)
        .await?;
    app.events.wake();
    Ok(())
}

/// `list_mirrors`: every mirror with its status; no passwords.
pub(super) async fn list_mirrors(
    app: &Arc<App>,
    identity: Option<&Grants>,
    p: Value,
) -> Result<Value, RpcError> {
    let p: ArtifactOnly = super::params(p)?;
    let repo = admin_repo(app, identity, &p.artifact_id).await?;
    let endpoints = EndpointStore::new(app.storage.bucket.clone(), repo.keys.clone())
        .load()
        .await?;
    let views = endpoints.mirrors.iter().map(|m| (m.id.as_str(), m.view()));
    Ok(json!({"mirrors": with_status(app, &repo, views).await?}))
}

/// `remove_mirror`.
pub(super) async fn remove_mirror(
    app: &Arc<App>,
    identity: Option<&Grants>,
    p: Value,
) -> Result<Value, RpcError> {
    let p: EndpointRef = super::params(p)?;
    let repo = admin_repo(app, identity, &p.artifact_id).await?;
    let id = p.id.clone();
    remove_endpoint(app, &repo, &p.id, "mirror", move |e| {
        let before = e.mirrors.len();
        e.mirrors.retain(|m| m.id != id);
        before != e.mirrors.len()
    })
    .await?;
    Ok(json!({"removed": true}))
}

/// `sync_mirror`: push every ref again (and resume a paused mirror).
pub(super) async fn sync_mirror(
    app: &Arc<App>,
    identity: Option<&Grants>,
    p: Value,
) -> Result<Value, RpcError> {
    let p: EndpointRef = super::params(p)?;
    let repo = admin_repo(app, identity, &p.artifact_id).await?;
    let exists = EndpointStore::new(app.storage.bucket.clone(), repo.keys.clone())
        .load()
        .await?
        .mirrors
        .iter()
        .any(|m| m.id == p.id);
    if !exists {
        return Err(RpcError::NotFound(format!("no mirror {:?}", p.id)));
    }
    let head = watched_head(&repo).await?;
    let states = StateStore::new(app.storage.bucket.clone(), repo.keys.clone());
    let updated = states
        .update(&p.id, |s| {
            s.full_sync = true;
            s.paused = None;
            s.auth_failures = 0;
            s.retry = None;
        })
        .await?;
    if !updated {
        states
            .create(
                &p.id,
                &EndpointState {
                    cursor: head,
                    full_sync: true,
                    ..EndpointState::default()
                },
            )
            .await?;
    }
    mark_pending(app, &repo).await?;
    Ok(json!({"scheduled": true}))
}
