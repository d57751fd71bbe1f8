//! Branches and tags by API: `list_refs` (scope `r`), `create_branch`, `delete_branch`,
//! `create_tag`, `delete_tag` (scope `rw`). Each change lands as a push of that one ref
//! would ([`crate::landing`]): checked, recorded as an event, committed by compare-and-swap.

use std::sync::Arc;

use gix_hash::ObjectId;
use serde::Deserialize;
use serde_json::{json, Value};

use super::history::{
    blocking, branch_ref, expected, finish_pack, new_pack, open, open_without_revisions, people,
    publish_and_move, stale, Indexing, MAX_MESSAGE,
};
use super::{params, ArtifactOnly, RpcError};
use crate::app::App;
use crate::auth::{Access, Grants};

fn default_rev() -> String {
    "HEAD".into()
}

/// `refs/tags/<tag>`, if `tag` is a valid tag name.
fn tag_ref(tag: &str) -> Result<String, RpcError> {
    let name = format!("refs/tags/{tag}");
    if tag.is_empty() || tag.len() > 200 || refs::validate_ref_name(&name).is_err() {
        return Err(RpcError::InvalidParams(format!("invalid tag name {tag:?}")));
    }
    Ok(name)
}

/// `list_refs`: the branches with their commits, the tags with what they name and the commit
/// they peel to, and where `HEAD` points.
pub(crate) async fn list_refs(
    app: &Arc<App>,
    identity: Option<&Grants>,
    p: Value,
) -> Result<Value, RpcError> {
    let p: ArtifactOnly = params(p)?;
    let o = open_without_revisions(app, identity, &p.artifact_id, Access::Read).await?;
    blocking(move || {
        let reader = o.db.reader();
        let (mut branches, mut tags) = (Vec::new(), Vec::new());
        for (name, value) in &o.snapshot.refs {
            if let Some(short) = name.strip_prefix("refs/heads/") {
                branches
                    .push(json!({"name": short, "ref": name, "commit": value.target.to_string()}));
            } else if let Some(short) = name.strip_prefix("refs/tags/") {
                let (commit, kind) = reader.peel(&value.target)?;
                tags.push(json!({
                    "name": short,
                    "ref": name,
                    "target": value.target.to_string(),
                    "commit": (kind == gix_object::Kind::Commit).then(|| commit.to_string()),
                }));
            }
        }
        Ok(json!({"head": o.snapshot.head, "branches": branches, "tags": tags}))
    })
    .await
}

/// `list_branches` (the shape of Hypha's API): `[{name, sha, default}]`.
pub(crate) async fn list_branches(
    app: &Arc<App>,
    identity: Option<&Grants>,
    p: Value,
) -> Result<Value, RpcError> {
    let p: ArtifactOnly = params(p)?;
    let o = open_without_revisions(app, identity, &p.artifact_id, Access::Read).await?;
    let branches: Vec<Value> = o
        .snapshot
        .refs
        .iter()
        .filter_map(|(name, value)| {
            let short = name.strip_prefix("refs/heads/")?;
            let default = o.snapshot.head.as_deref() == Some(name.as_str());
            Some(json!({"name": short, "sha": value.target.to_string(), "default": default}))
        })
        .collect();
    Ok(json!(branches))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct CreateBranchParams {
    artifact_id: String,
    branch: String,
    /// What the branch starts at (`source` is the name Hypha's API gives it).
    #[serde(default = "default_rev", alias = "source")]
    rev: String,
}

/// The commit `rev` names, within what the refs reach.
async fn commit_of(o: &super::history::Opened, rev: &str) -> Result<ObjectId, RpcError> {
    let (db, snapshot, visible, rev) = (
        o.db.clone(),
        o.snapshot.clone(),
        o.visible.clone(),
        rev.to_owned(),
    );
    blocking(move || {
        Ok(history::resolve_commit(
            &db.reader(),
            &snapshot,
            &visible,
            &rev,
        )?)
    })
    .await
}

/// `create_branch`: a new branch at `rev`; refused if it exists.
pub(crate) async fn create_branch(
    app: &Arc<App>,
    identity: Option<&Grants>,
    p: Value,
) -> Result<Value, RpcError> {
    let p: CreateBranchParams = params(p)?;
    let name = branch_ref(&p.branch)?;
    let o = open(app, identity, &p.artifact_id, Access::Write).await?;
    if o.snapshot.get(&name).is_some() {
        return Err(RpcError::Conflict(format!(
            "branch {:?} exists already",
            p.branch
        )));
    }
    let commit = commit_of(&o, &p.rev).await?;
    publish_and_move(app, &o, identity, None, &name, o.snapshot.null_id(), commit).await?;
    Ok(json!({"ref": name, "commit": commit.to_string()}))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct DeleteBranchParams {
    artifact_id: String,
    branch: String,
    /// Delete only if the branch is at this commit.
    #[serde(default)]
    expected_head: Option<String>,
}

/// `delete_branch`: refused for the branch `HEAD` names (the default branch).
pub(crate) async fn delete_branch(
    app: &Arc<App>,
    identity: Option<&Grants>,
    p: Value,
) -> Result<Value, RpcError> {
    let p: DeleteBranchParams = params(p)?;
    let name = branch_ref(&p.branch)?;
    let want = expected(p.expected_head.as_deref())?;
    delete_ref(app, identity, &p.artifact_id, name, want).await
}

/// Delete the ref `name` (at `want`, when given); never the one `HEAD` names.
async fn delete_ref(
    app: &Arc<App>,
    identity: Option<&Grants>,
    artifact_id: &str,
    name: String,
    want: Option<ObjectId>,
) -> Result<Value, RpcError> {
    let o = open_without_revisions(app, identity, artifact_id, Access::Write).await?;
    let Some(current) = o.snapshot.get(&name) else {
        return Err(RpcError::NotFound(format!("no {name}")));
    };
    if o.snapshot.head.as_deref() == Some(name.as_str()) {
        return Err(RpcError::Conflict(format!(
            "{name} is the default branch (HEAD): it cannot be deleted"
        )));
    }
    if want.is_some_and(|w| w != current) {
        return Err(stale(&name, Some(current)));
    }
    publish_and_move(
        app,
        &o,
        identity,
        None,
        &name,
        current,
        o.snapshot.null_id(),
    )
    .await?;
    Ok(json!({"ref": name, "deleted": current.to_string()}))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct CreateTagParams {
    artifact_id: String,
    tag: String,
    #[serde(default = "default_rev")]
    rev: String,
    /// With a message the tag is annotated; without, lightweight.
    #[serde(default)]
    message: Option<String>,
}

/// `create_tag`: a tag of `rev`; refused if it exists.
pub(crate) async fn create_tag(
    app: &Arc<App>,
    identity: Option<&Grants>,
    p: Value,
) -> Result<Value, RpcError> {
    let p: CreateTagParams = params(p)?;
    let name = tag_ref(&p.tag)?;
    if let Some(m) = &p.message {
        if m.trim().is_empty() || m.len() > MAX_MESSAGE {
            return Err(RpcError::InvalidParams("message: 1 byte to 64 KiB".into()));
        }
    }
    let o = open(app, identity, &p.artifact_id, Access::Write).await?;
    if o.snapshot.get(&name).is_some() {
        return Err(RpcError::Conflict(format!(
            "tag {:?} exists already",
            p.tag
        )));
    }
    let commit = commit_of(&o, &p.rev).await?;
    let (pack, target) = match p.message {
        None => (None, commit),
        Some(message) => {
            let (_, tagger) = people(identity, None);
            let indexing = Indexing::of(app, o.db.object_hash());
            let short = p.tag.clone();
            let (indexed, tag) = blocking(move || {
                let mut pack = new_pack(&indexing)?;
                let tag = history::write_tag(&mut pack, &commit, &short, &tagger, &message)?;
                Ok((finish_pack(pack, &indexing)?, tag))
            })
            .await?;
            (Some(indexed), tag)
        }
    };
    publish_and_move(app, &o, identity, pack, &name, o.snapshot.null_id(), target).await?;
    Ok(json!({"ref": name, "target": target.to_string(), "commit": commit.to_string()}))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct DeleteTagParams {
    artifact_id: String,
    tag: String,
}

/// `delete_tag`.
pub(crate) async fn delete_tag(
    app: &Arc<App>,
    identity: Option<&Grants>,
    p: Value,
) -> Result<Value, RpcError> {
    let p: DeleteTagParams = params(p)?;
    let name = tag_ref(&p.tag)?;
    delete_ref(app, identity, &p.artifact_id, name, None).await
}
