//! A repository's storage as the Hub manages it: `delete_repo`, `super_squash_history`,
//! `list_lfs_files` and `permanently_delete_lfs_files`, answered by the JSON-RPC methods of
//! the same jobs ([`crate::rpc::lifecycle`], [`crate::rpc::reclaim`]).

use std::sync::Arc;

use http::{Request, Response, StatusCode};
use hyper::body::Incoming;
use serde::Deserialize;
use serde_json::{json, Value};

use super::repos::{hub_date, json_body};
use crate::app::App;
use crate::auth::Grants;
use crate::body::ResponseBody;
use crate::response::{json as json_response, HttpError};
use crate::storage::RepoId;

#[derive(Deserialize)]
struct DeleteBody {
    name: String,
    #[serde(default)]
    organization: Option<String>,
    #[serde(default, rename = "type")]
    _kind: Option<String>,
}

/// `DELETE /api/repos/delete {name, organization, type?}`: the repository is deleted (and
/// restorable for `--deleted-retention` with `restore_repository`).
pub async fn delete_repo(
    app: &Arc<App>,
    identity: Option<&Grants>,
    req: Request<Incoming>,
) -> Result<Response<ResponseBody>, HttpError> {
    let body: DeleteBody = json_body(app, req).await?;
    let Some(workspace) = body.organization else {
        return Err(HttpError::BadRequest(
            "name the repository as organization/name".into(),
        ));
    };
    let artifact = format!("{workspace}/{}", body.name);
    crate::rpc::lifecycle::delete_repository(app, identity, json!({"artifact_id": artifact}))
        .await?;
    Ok(json_response(StatusCode::OK, &json!({})))
}

#[derive(Deserialize)]
struct SquashBody {
    #[serde(default)]
    message: Option<String>,
}

/// `POST /api/{kind}/{repo}/super-squash/{branch} {message}`.
pub async fn super_squash(
    app: &Arc<App>,
    identity: Option<&Grants>,
    id: &RepoId,
    branch: &str,
    req: Request<Incoming>,
) -> Result<Response<ResponseBody>, HttpError> {
    let body: SquashBody = json_body(app, req).await?;
    let branch = crate::files::decode_segment(branch)?;
    let mut params = json!({"artifact_id": id.to_string(), "branch": branch});
    if let Some(m) = body.message {
        params["message"] = json!(m);
    }
    let done = crate::rpc::reclaim::squash_history(app, identity, params).await?;
    Ok(json_response(
        StatusCode::OK,
        &json!({"commitId": done["commit"]}),
    ))
}

/// `GET /api/{kind}/{repo}/lfs-files`: every stored LFS object, as the Hub lists them.
pub async fn list_lfs_files(
    app: &Arc<App>,
    identity: Option<&Grants>,
    id: &RepoId,
) -> Result<Response<ResponseBody>, HttpError> {
    let listed = crate::rpc::reclaim::list_lfs_files(
        app,
        identity,
        json!({"artifact_id": id.to_string(), "limit": 10_000}),
    )
    .await?;
    let files: Vec<Value> = (listed["files"].as_array().into_iter().flatten())
        .map(|f| {
            json!({
                "fileOid": f["oid"], "oid": f["oid"], "size": f["size"],
                "filename": f["path"].as_str().unwrap_or(""),
                "pushedAt": hub_date(f["stored_at"].as_i64().unwrap_or(0)),
                "ref": Value::Null,
            })
        })
        .collect();
    Ok(json_response(StatusCode::OK, &json!(files)))
}

#[derive(Deserialize)]
struct Deletions {
    deletions: DeletionList,
}

#[derive(Deserialize)]
struct DeletionList {
    sha: Vec<String>,
    #[serde(default, rename = "rewriteHistory")]
    _rewrite_history: bool,
}

/// `POST /api/{kind}/{repo}/lfs-files/batch {deletions: {sha, rewriteHistory}}`: the objects
/// are removed at once (history is not rewritten: commits keep their pointers).
pub async fn delete_lfs_files(
    app: &Arc<App>,
    identity: Option<&Grants>,
    id: &RepoId,
    req: Request<Incoming>,
) -> Result<Response<ResponseBody>, HttpError> {
    let body: Deletions = json_body(app, req).await?;
    crate::rpc::reclaim::delete_lfs_files(
        app,
        identity,
        json!({"artifact_id": id.to_string(), "oids": body.deletions.sha}),
    )
    .await?;
    Ok(json_response(StatusCode::OK, &json!({})))
}
