//! Taking space back (scope `a` for LFS objects, `rw` for a squash): `list_lfs_files`,
//! `delete_lfs_files` and `squash_history`. Unreachable objects and unreferenced LFS objects
//! are removed by full maintenance ([`crate::reclaim`]).

use std::sync::Arc;

use refs::RefUpdate;
use serde::Deserialize;
use serde_json::{json, Value};

use super::history::{
    blocking, branch_ref, finish_pack, new_pack, open_without_revisions, people, stale, Indexing,
    MAX_MESSAGE,
};
use super::{params, RpcError};
use crate::app::App;
use crate::auth::{Access, Grants};
use crate::landing::{land, Landing, Rejection};

/// LFS objects one `delete_lfs_files` removes at most.
const MAX_DELETED: usize = 10_000;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ListParams {
    artifact_id: String,
    #[serde(default)]
    limit: Option<usize>,
}

/// `list_lfs_files {limit?}`: the repository's stored LFS objects (largest first) with their
/// size, a path that points to one in a branch or tag, and whether any ref still reaches it.
pub(crate) async fn list_lfs_files(
    app: &Arc<App>,
    identity: Option<&Grants>,
    p: Value,
) -> Result<Value, RpcError> {
    let p: ListParams = params(p)?;
    let limit = p.limit.unwrap_or(1000).clamp(1, 10_000);
    let o = open_without_revisions(app, identity, &p.artifact_id, Access::Admin).await?;
    let mut stored = crate::reclaim::stored(&o.repo).await?;
    stored.sort_by(|a, b| b.size.cmp(&a.size).then_with(|| a.oid.cmp(&b.oid)));
    let total = stored.len();
    stored.truncate(limit);
    let mut tips: Vec<_> = o.snapshot.refs.values().map(|v| v.target).collect();
    tips.sort();
    tips.dedup();
    let db = o.db.clone();
    let referenced = blocking(move || Ok(crate::reclaim::referenced(&db, &tips)?)).await?;
    let files: Vec<Value> = stored
        .iter()
        .map(|s| {
            let found = referenced.get(&s.oid);
            json!({"oid": s.oid, "size": s.size, "stored_at": s.stored_at,
                "referenced": found.is_some(), "path": found.cloned().flatten()})
        })
        .collect();
    Ok(json!({"files": files, "total": total}))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct DeleteParams {
    artifact_id: String,
    oids: Vec<String>,
}

/// `delete_lfs_files {oids}`: remove these LFS objects now, referenced or not (a clone of a
/// commit that points to one then gets the LFS API's 404 for it, as on the Hub).
pub(crate) async fn delete_lfs_files(
    app: &Arc<App>,
    identity: Option<&Grants>,
    p: Value,
) -> Result<Value, RpcError> {
    let p: DeleteParams = params(p)?;
    if p.oids.is_empty() || p.oids.len() > MAX_DELETED {
        return Err(RpcError::InvalidParams(format!(
            "oids: 1 to {MAX_DELETED} LFS object ids"
        )));
    }
    let mut oids = Vec::with_capacity(p.oids.len());
    for oid in &p.oids {
        let parsed = lfs::Oid::parse(oid)
            .ok_or_else(|| RpcError::InvalidParams(format!("{oid:?} is not an LFS object id")))?;
        oids.push(parsed);
    }
    let o = open_without_revisions(app, identity, &p.artifact_id, Access::Admin).await?;
    let stored: std::collections::HashMap<String, u64> = crate::reclaim::stored(&o.repo)
        .await?
        .into_iter()
        .map(|s| (s.oid, s.size))
        .collect();
    let found: Vec<&lfs::Oid> = oids
        .iter()
        .filter(|o| stored.contains_key(o.as_str()))
        .collect();
    let keys: Vec<String> = found
        .iter()
        .map(|oid| o.repo.keys.lfs_object(oid.as_str()))
        .collect();
    o.repo.storage().bucket.delete_many(&keys).await?;
    let bytes: u64 = found
        .iter()
        .filter_map(|oid| stored.get(oid.as_str()))
        .sum();
    crate::usage::account_lfs(&o.repo, -(bytes as i64)).await;
    tracing::info!(repo = %o.repo.id, objects = keys.len(), bytes, "LFS objects deleted");
    Ok(json!({
        "deleted": found.iter().map(|o| o.as_str()).collect::<Vec<_>>(),
        "bytes": bytes,
        "not_found": oids.iter().filter(|o| !stored.contains_key(o.as_str())).map(|o| o.as_str()).collect::<Vec<_>>(),
    }))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct SquashParams {
    artifact_id: String,
    #[serde(default)]
    branch: Option<String>,
    #[serde(default)]
    message: Option<String>,
    #[serde(default)]
    expected_head: Option<String>,
}

/// `squash_history {branch?, message?, expected_head?}`: the branch becomes one commit of its
/// current tree, with no parents (a non-fast-forward update: the push policy decides); the
/// space the old history took comes back at the next full maintenance.
pub(crate) async fn squash_history(
    app: &Arc<App>,
    identity: Option<&Grants>,
    p: Value,
) -> Result<Value, RpcError> {
    let p: SquashParams = params(p)?;
    let message = p.message.unwrap_or_else(|| "Squash history".into());
    if message.trim().is_empty() || message.len() > MAX_MESSAGE {
        return Err(RpcError::InvalidParams("message: 1 byte to 64 KiB".into()));
    }
    let o = open_without_revisions(app, identity, &p.artifact_id, Access::Write).await?;
    let name = match &p.branch {
        Some(b) => branch_ref(b)?,
        None => o
            .snapshot
            .head
            .clone()
            .ok_or_else(|| RpcError::InvalidParams("name a branch".into()))?,
    };
    let tip = o
        .snapshot
        .get(&name)
        .ok_or_else(|| RpcError::NotFound(format!("no branch {name}")))?;
    if let Some(want) = &p.expected_head {
        if gix_hash::ObjectId::from_hex(want.as_bytes()).ok() != Some(tip) {
            return Err(stale(&name, Some(tip)));
        }
    }
    let (author, committer) = people(identity, None);
    let indexing = Indexing::of(app, o.db.object_hash());
    let db = o.db.clone();
    let (pack, commit) = blocking(move || {
        let reader = db.reader();
        let tree = reader.commit(&tip)?.tree;
        let mut pack = new_pack(&indexing)?;
        let commit = history::write_commit(&mut pack, &tree, &[], &author, &committer, &message)?;
        Ok((finish_pack(pack, &indexing)?, commit))
    })
    .await?;
    let landing = Landing {
        pack: Some(pack),
        updates: vec![RefUpdate {
            name: name.clone(),
            old: tip,
            new: commit,
            peeled: None,
        }],
        atomic: true,
        origin: events::log::EventMeta {
            pusher: identity.and_then(|g| g.subject.clone()),
            push_options: Vec::new(),
            source: events::log::Source::Api,
            pull_request: None,
            upstream: None,
        },
        seen: Some(o.snapshot.clone()),
        policy: None,
    };
    match land(app, &o.repo, o.db.clone(), landing).await.single() {
        Ok(()) => {}
        Err((Rejection::Ref(_), _)) => {
            return Err(stale(&name, o.repo.snapshot().await?.get(&name)))
        }
        Err((rejection, refused)) => return Err(super::landing_error(rejection, refused)),
    }
    Ok(json!({"branch": name, "commit": commit.to_string(), "replaced": tip.to_string()}))
}
