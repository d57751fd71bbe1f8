//! The history API: `log`, `show`, `diff`, `read_file`, `list_files` (scope `r`) and
//! `restore`, `create_snapshot` (scope `rw`), `list_snapshots` (`r`) (`commit_files` is in
//! [`super::commit`], on the helpers here),
//! answered from the packs with the `history` crate; commits move refs by the same
//! compare-and-swap (and leave the same push events) as a `git push`.

use std::sync::Arc;

use base64::Engine;
use gix_hash::ObjectId;
use objectstore::odb::index;
use objectstore::odb::{build::PackBuilder, ObjectDb};
use refs::{RefUpdate, Snapshot};
use serde::Deserialize;
use serde_json::{json, Value};

use super::{artifact, authorize, params, ArtifactOnly, RpcError};
use crate::app::App;
use crate::auth::{Access, Grants};
use crate::landing::{index_checks, land, Landing, Rejection};
use crate::repo::Repo;

impl From<history::Error> for RpcError {
    fn from(e: history::Error) -> Self {
        match e {
            history::Error::UnknownRevision(_)
            | history::Error::AmbiguousRevision(_)
            | history::Error::InvalidPath(_) => RpcError::InvalidParams(e.to_string()),
            history::Error::NoSuchPath(_) => RpcError::NotFound(e.to_string()),
            history::Error::TooLarge(_) => RpcError::Conflict(e.to_string()),
            e => {
                tracing::error!(error = %e, "history request failed");
                RpcError::Internal(e.to_string())
            }
        }
    }
}

/// A repository opened for reading: its refs and objects (the pack list re-read when a ref
/// names an object the cached list does not have).
#[derive(Clone)]
pub(super) struct Opened {
    pub(super) repo: Repo,
    pub(super) snapshot: Snapshot,
    pub(super) db: ObjectDb,
    /// What the refs reach: every revision a caller names resolves within it.
    pub(super) visible: Arc<history::Reachable>,
}

pub(super) async fn open(
    app: &App,
    identity: Option<&Grants>,
    artifact_id: &str,
    need: Access,
) -> Result<Opened, RpcError> {
    let mut o = open_without_revisions(app, identity, artifact_id, need).await?;
    o.visible = app.visible.get(&o.repo, &o.snapshot, &o.db).await?;
    Ok(o)
}

/// [`open`] for a method that resolves no revision a caller names (`commit_files`,
/// `list_snapshots`): the walk of what the refs reach is skipped, and the visible set is
/// empty, so a revision resolved by mistake would resolve to nothing.
pub(super) async fn open_without_revisions(
    app: &App,
    identity: Option<&Grants>,
    artifact_id: &str,
    need: Access,
) -> Result<Opened, RpcError> {
    let id = artifact(artifact_id)?;
    let repo = Repo::new(&app.storage, id.clone());
    if !authorize(&repo, identity, need).await? {
        return Err(RpcError::NotFound(format!(
            "git is not enabled for artifact {id}"
        )));
    }
    let snapshot = repo.snapshot().await?;
    let db = repo
        .objects_having(
            &app.cache,
            snapshot.object_hash,
            snapshot.refs.values().map(|v| &v.target),
        )
        .await?;
    Ok(Opened {
        repo,
        snapshot,
        db,
        visible: Arc::default(),
    })
}

/// Run CPU work off the async threads.
pub(super) async fn blocking<T: Send + 'static>(
    f: impl FnOnce() -> Result<T, RpcError> + Send + 'static,
) -> Result<T, RpcError> {
    tokio::task::spawn_blocking(f)
        .await
        .map_err(|e| RpcError::Internal(format!("task failed: {e}")))?
}

fn person(sig: &history::Signature) -> Value {
    json!({"name": sig.name, "email": sig.email, "time": sig.rfc3339()})
}

fn commit_json(info: &history::CommitInfo) -> Value {
    json!({
        "id": info.id.to_string(),
        "tree": info.tree.to_string(),
        "parents": info.parents.iter().map(ToString::to_string).collect::<Vec<_>>(),
        "author": person(&info.author),
        "committer": person(&info.committer),
        "message": info.message,
    })
}

fn default_rev() -> String {
    "HEAD".into()
}

fn path_param(path: Option<&str>) -> Result<Option<String>, RpcError> {
    match path {
        None => Ok(None),
        Some(p) => {
            let p = history::normalize_path(p)?;
            Ok((!p.is_empty()).then_some(p))
        }
    }
}

const MAX_LOG: usize = 1000;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct LogParams {
    artifact_id: String,
    #[serde(default = "default_rev")]
    rev: String,
    #[serde(default)]
    path: Option<String>,
    #[serde(default)]
    max_count: Option<usize>,
    #[serde(default)]
    cursor: Option<String>,
    /// List each commit's changed paths (against its first parent), at most 100.
    #[serde(default)]
    include_paths: bool,
}

/// The opaque cursor of `log`: the tip the walk started from and how many commits were
/// already listed, so every page walks the same history however the branch moved since.
fn encode_cursor(tip: &ObjectId, skip: usize) -> String {
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(format!("{tip}:{skip}"))
}

fn decode_cursor(cursor: &str) -> Result<(ObjectId, usize), RpcError> {
    let bad = || RpcError::InvalidParams("invalid cursor".into());
    if cursor.len() > 128 {
        return Err(bad());
    }
    let text = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(cursor)
        .map_err(|_| bad())?;
    let text = String::from_utf8(text).map_err(|_| bad())?;
    let (tip, skip) = text.split_once(':').ok_or_else(bad)?;
    Ok((
        ObjectId::from_hex(tip.as_bytes()).map_err(|_| bad())?,
        skip.parse().map_err(|_| bad())?,
    ))
}

/// `log`.
pub(super) async fn log(
    app: &Arc<App>,
    identity: Option<&Grants>,
    p: Value,
) -> Result<Value, RpcError> {
    let p: LogParams = params(p)?;
    let max = p.max_count.unwrap_or(50).clamp(1, MAX_LOG);
    let path = path_param(p.path.as_deref())?;
    let o = open(app, identity, &p.artifact_id, Access::Read).await?;
    blocking(move || {
        let reader = o.db.reader();
        let (tip, skip) = match &p.cursor {
            Some(c) => decode_cursor(c)?,
            None => {
                if p.rev == "HEAD"
                    && o.snapshot
                        .head
                        .as_deref()
                        .and_then(|h| o.snapshot.get(h))
                        .is_none()
                {
                    return Ok(json!({"commits": [], "next_cursor": null}));
                }
                (
                    history::resolve_commit(&reader, &o.snapshot, &o.visible, &p.rev)?,
                    0,
                )
            }
        };
        // A cursor names its tip: only one the refs still reach (a hand-made one naming a
        // deleted branch's commit is as invalid as any other).
        if !o.visible.has_commit(&tip) {
            return Err(RpcError::InvalidParams("invalid cursor".into()));
        }
        let limits = history::LogLimits {
            max_commits: max,
            max_visited: 2_000_000,
        };
        let page = history::log_page(&reader, &tip, path.as_deref(), skip, limits)?;
        let mut commits = Vec::with_capacity(page.commits.len());
        for id in &page.commits {
            let info = history::commit_info(&reader, id)?;
            let mut c = commit_json(&info);
            if p.include_paths {
                let parent_tree = match info.parents.first() {
                    Some(parent) => Some(reader.commit(parent)?.tree),
                    None => None,
                };
                let (changes, _) =
                    history::diff_trees(&reader, parent_tree.as_ref(), &info.tree, 100)?;
                c["paths"] = changes.iter().map(|f| f.path.clone()).collect();
            }
            commits.push(c);
        }
        let next = page
            .truncated
            .then(|| encode_cursor(&tip, skip + page.commits.len()));
        Ok(json!({"commits": commits, "next_cursor": next}))
    })
    .await
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct DiffParams {
    artifact_id: String,
    /// `show`: the commit.
    #[serde(default)]
    rev: Option<String>,
    /// `diff`: from and to (default `HEAD`).
    #[serde(default)]
    from: Option<String>,
    #[serde(default)]
    to: Option<String>,
    #[serde(default)]
    path: Option<String>,
    #[serde(default)]
    max_bytes: Option<usize>,
    #[serde(default)]
    max_files: Option<usize>,
}

const MAX_PATCH_BYTES: usize = 16 << 20;
const MAX_FILES: usize = 10_000;

/// `show {rev}` (a commit against its first parent) and `diff {from, to}`.
pub(super) async fn diff(
    app: &Arc<App>,
    identity: Option<&Grants>,
    p: Value,
    show: bool,
) -> Result<Value, RpcError> {
    let p: DiffParams = params(p)?;
    if show != p.rev.is_some() || show == p.from.is_some() {
        return Err(RpcError::InvalidParams(if show {
            "show takes {artifact_id, rev}".into()
        } else {
            "diff takes {artifact_id, from, to?, path?}".into()
        }));
    }
    let path = path_param(p.path.as_deref())?;
    let limits = history::PatchLimits {
        max_bytes: p.max_bytes.unwrap_or(1 << 20).min(MAX_PATCH_BYTES),
        ..history::PatchLimits::default()
    };
    let max_files = p.max_files.unwrap_or(1000).clamp(1, MAX_FILES);
    let o = open(app, identity, &p.artifact_id, Access::Read).await?;
    blocking(move || {
        let reader = o.db.reader();
        let mut out = json!({});
        let (old_tree, new_tree) = if let Some(rev) = &p.rev {
            let id = history::resolve_commit(&reader, &o.snapshot, &o.visible, rev)?;
            let info = history::commit_info(&reader, &id)?;
            out["commit"] = commit_json(&info);
            let parent = match info.parents.first() {
                Some(parent) => Some(reader.commit(parent)?.tree),
                None => None,
            };
            (parent, info.tree)
        } else {
            let from = p.from.as_deref().unwrap_or("HEAD");
            let to = p.to.as_deref().unwrap_or("HEAD");
            let from = history::resolve_commit(&reader, &o.snapshot, &o.visible, from)?;
            let to = history::resolve_commit(&reader, &o.snapshot, &o.visible, to)?;
            (Some(reader.commit(&from)?.tree), reader.commit(&to)?.tree)
        };
        // Renames pair two raw changes into one: collect up to twice the files asked for.
        let (changes, mut truncated) = history::diff_at_path(
            &reader,
            old_tree.as_ref(),
            Some(&new_tree),
            path.as_deref().unwrap_or(""),
            max_files.saturating_mul(2),
        )?;
        let mut changes = history::detect_renames(changes);
        if changes.len() > max_files {
            changes.truncate(max_files);
            truncated = true;
        }
        let patch = history::patch(&reader, changes, limits)?;
        out["files"] = patch
            .files
            .iter()
            .map(|f| {
                let mut file = json!({
                    "path": f.change.path,
                    "status": f.change.kind.as_str(),
                    "additions": f.additions,
                    "deletions": f.deletions,
                    "binary": f.binary,
                });
                if let Some(old) = &f.change.old_path {
                    file["old_path"] = json!(old);
                }
                if f.omitted {
                    file["omitted"] = json!(true);
                }
                file
            })
            .collect();
        out["patch"] = json!(patch.text);
        out["truncated"] = json!(truncated || patch.truncated);
        Ok(out)
    })
    .await
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ReadFileParams {
    artifact_id: String,
    #[serde(default = "default_rev")]
    rev: String,
    path: String,
    #[serde(default)]
    max_size: Option<u64>,
}

const MAX_READ: u64 = 32 << 20;

/// `read_file`: a file's bytes at a revision; an LFS pointer answers with the object's
/// metadata and a download URL.
/// Bytes of `text` as a JSON string (serde_json's escapes: `\"`, `\\`, `\n`, `\u0001`...).
fn json_string_len(text: &str) -> usize {
    2 + text
        .bytes()
        .map(|b| match b {
            b'"' | b'\\' | b'\n' | b'\r' | b'\t' | 0x08 | 0x0c => 2,
            0..=0x1f => 6,
            _ => 1,
        })
        .sum::<usize>()
}

/// The most memory an answer of a `size`-byte file holds while it is built and sent: the
/// bytes, their base64, a text copy (sent only when it escapes to little more than the
/// bytes), each once in the JSON value and once serialized.
fn answer_memory(size: u64) -> u64 {
    let base64 = size.div_ceil(3) * 4;
    size + 2 * (base64 + text_budget(size)) + (64 << 10)
}

/// The most a `size`-byte file's text copy may take as a JSON string: escapes for a quarter
/// of its bytes (line breaks, quotes, tabs) and a little more; text that escapes to more
/// (control bytes, six each) is sent as base64 alone.
fn text_budget(size: u64) -> u64 {
    size + size / 4 + 64
}

/// `read_file`: the file's bytes (base64, and as text when they are text), answered within
/// the memory budget: what the answer holds is reserved before the file is read and held
/// until the answer is sent ([`RpcError::Busy`] when it cannot be had in time).
pub(super) async fn read_file(
    app: &Arc<App>,
    identity: Option<&Grants>,
    base_url: &str,
    p: Value,
) -> Result<(Value, objectstore::budget::Reservation), RpcError> {
    let p: ReadFileParams = params(p)?;
    let path = history::normalize_path(&p.path)?;
    if path.is_empty() {
        return Err(RpcError::InvalidParams("path is empty".into()));
    }
    let max = p.max_size.unwrap_or(10 << 20).min(MAX_READ);
    let o = open(app, identity, &p.artifact_id, Access::Read).await?;
    let (repo, found_path) = (o.repo.clone(), path.clone());
    let (budget, wait) = (app.budget.clone(), app.config.timeouts.queue);
    let (mode, id, data, held) = blocking(move || {
        let reader = o.db.reader();
        let commit = history::resolve_commit(&reader, &o.snapshot, &o.visible, &p.rev)?;
        let tree = reader.commit(&commit)?.tree;
        let Some((mode, id)) = history::entry_at(&reader, &tree, &path)? else {
            return Err(RpcError::NotFound(format!("no file {path:?} at {}", p.rev)));
        };
        if mode == 0o040000 || mode == 0o160000 {
            return Err(RpcError::InvalidParams(format!(
                "{path:?} is a {}; list it with list_files",
                if mode == 0o040000 {
                    "directory"
                } else {
                    "submodule"
                }
            )));
        }
        let size = reader.header(&id)?.map_or(0, |(_, s)| s);
        if size > max {
            return Err(RpcError::InvalidParams(format!(
                "{path:?} has {size} bytes, over the limit of {max} (max_size)"
            )));
        }
        let held = budget
            .reserve(answer_memory(size), wait)
            .map_err(|_| RpcError::Busy)?;
        let mut data = Vec::new();
        reader.read_kind(&id, gix_object::Kind::Blob, &mut data)?;
        Ok((mode, id, data, held))
    })
    .await?;
    let mut out = json!({
        "path": found_path,
        "oid": id.to_string(),
        "mode": format!("{mode:06o}"),
        "size": data.len(),
        "content_base64": base64::engine::general_purpose::STANDARD.encode(&data),
    });
    // A text copy only of text: bytes that escape to much more (control bytes) go as base64
    // alone, so the answer stays within what was reserved.
    if let Ok(text) = std::str::from_utf8(&data) {
        if json_string_len(text) <= text_budget(data.len() as u64) as usize {
            out["content"] = json!(text);
        }
    }
    if let Some(pointer) = lfs::Pointer::parse(&data) {
        let store = lfs::Store::new(
            app.storage.bucket.clone(),
            repo.keys.clone(),
            app.config.lfs,
        );
        let links = crate::lfs_http::links(base_url, &repo, None, None);
        let plan = store
            .plan_download(&pointer.oid, &links)
            .await
            .map_err(|e| RpcError::Internal(e.to_string()))?;
        let download = plan.actions.into_iter().find(|(rel, _)| *rel == "download");
        out["lfs"] = json!({
            "oid": pointer.oid.to_string(),
            "size": pointer.size,
            "stored": plan.error.is_none(),
            "download_url": download.as_ref().map(|(_, a)| a.href.clone()),
            // A URL through the server wants the caller's token; a presigned one nothing.
            "download_needs_token": download.is_some() && plan.proxied,
        });
    }
    Ok((out, held))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ListFilesParams {
    artifact_id: String,
    #[serde(default = "default_rev")]
    rev: String,
    #[serde(default)]
    path: Option<String>,
    #[serde(default)]
    recursive: bool,
    #[serde(default)]
    max_entries: Option<usize>,
}

/// `list_files`: as `git ls-tree [-r] -l <rev> <path>/`.
pub(super) async fn list_files(
    app: &Arc<App>,
    identity: Option<&Grants>,
    p: Value,
) -> Result<Value, RpcError> {
    let p: ListFilesParams = params(p)?;
    let path = path_param(p.path.as_deref())?.unwrap_or_default();
    let max = p.max_entries.unwrap_or(10_000).clamp(1, 100_000);
    let o = open(app, identity, &p.artifact_id, Access::Read).await?;
    blocking(move || {
        let reader = o.db.reader();
        let commit = history::resolve_commit(&reader, &o.snapshot, &o.visible, &p.rev)?;
        let tree = reader.commit(&commit)?.tree;
        let depth = match p.recursive {
            true => history::Depth::Files,
            false => history::Depth::One,
        };
        let (entries, truncated) = history::list(&reader, &tree, &path, depth, max)?;
        let entries: Vec<Value> = entries
            .iter()
            .map(|e| {
                json!({
                    "path": e.path,
                    "mode": e.mode_string(),
                    "type": e.kind.as_str(),
                    "size": e.size,
                    "oid": e.id.to_string(),
                })
            })
            .collect();
        Ok(json!({"commit": commit.to_string(), "entries": entries, "truncated": truncated}))
    })
    .await
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct PersonParam {
    name: String,
    email: String,
}

/// The longest commit message accepted.
pub(super) const MAX_MESSAGE: usize = 64 << 10;

fn now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs() as i64)
}

pub(super) fn people(
    identity: Option<&Grants>,
    author: Option<PersonParam>,
) -> (history::Person, history::Person) {
    let sub = identity
        .and_then(|g| g.subject.clone())
        .unwrap_or_else(|| "api".into());
    let committer = history::Person {
        name: sub
            .chars()
            .filter(|c| !"<>\n\0".contains(*c))
            .take(128)
            .collect(),
        email: format!(
            "{}@artifact-git",
            sub.chars()
                .filter(|c| c.is_ascii_alphanumeric() || "._-".contains(*c))
                .take(64)
                .collect::<String>()
        ),
        time: now(),
        offset: 0,
    };
    let author = match author {
        Some(a) => history::Person {
            name: a.name,
            email: a.email,
            time: committer.time,
            offset: 0,
        },
        None => committer.clone(),
    };
    (author, committer)
}

pub(super) fn branch_ref(branch: &str) -> Result<String, RpcError> {
    let name = if branch.starts_with("refs/") {
        branch.to_owned()
    } else {
        format!("refs/heads/{branch}")
    };
    let short = name.strip_prefix("refs/heads/");
    if short.is_none_or(|short| refs::validate_branch_name(short).is_err()) {
        return Err(RpcError::InvalidParams(format!(
            "invalid branch name {branch:?}"
        )));
    }
    Ok(name)
}

/// The commit a caller expects a branch at (`None`: the branch must not exist).
pub(super) fn expected(head: Option<&str>) -> Result<Option<ObjectId>, RpcError> {
    head.map(|h| {
        ObjectId::from_hex(h.as_bytes()).map_err(|_| {
            RpcError::InvalidParams(format!("expected_head {h:?} is not a full commit id"))
        })
    })
    .transpose()
}

/// A pack to write new objects into, under the staging directory.
pub(super) fn new_pack(to: &Indexing) -> Result<PackBuilder, RpcError> {
    std::fs::create_dir_all(&to.staging).map_err(|e| RpcError::Internal(e.to_string()))?;
    Ok(PackBuilder::new(&to.staging, to.hash)?)
}

/// Index the objects a call wrote, with the checks every writer's objects get.
pub(super) fn finish_pack(pack: PackBuilder, to: &Indexing) -> Result<index::Indexed, RpcError> {
    let (path, _guard) = pack.finish()?;
    Ok(index::index_file(
        &path,
        &to.staging,
        to.hash,
        &to.limits,
        &to.budget,
        to.checks,
        &mut |_| Ok(None),
    )?)
}

/// Where and how a call's new objects are indexed (moved into its blocking task).
pub(super) struct Indexing {
    staging: std::path::PathBuf,
    limits: index::Limits,
    budget: Arc<objectstore::budget::MemoryBudget>,
    checks: index::Checks<'static>,
    hash: gix_hash::Kind,
}

impl Indexing {
    pub(super) fn of(app: &App, hash: gix_hash::Kind) -> Self {
        Indexing {
            hash,
            staging: app.config.staging.clone(),
            limits: app.pack_limits(),
            budget: app.budget.clone(),
            checks: index_checks(app),
        }
    }
}

pub(super) fn stale(name: &str, current: Option<ObjectId>) -> RpcError {
    RpcError::Stale(format!(
        "{name} is at {}, not at expected_head; read it again and retry",
        current.map_or("nothing (it does not exist)".to_owned(), |c| c.to_string())
    ))
}

/// Land the pack and move `name` from `old` to `new`, recording the push event as a
/// `git push` would (the landing every writer shares).
pub(super) async fn publish_and_move(
    app: &App,
    o: &Opened,
    identity: Option<&Grants>,
    indexed: Option<index::Indexed>,
    name: &str,
    old: ObjectId,
    new: ObjectId,
) -> Result<(), RpcError> {
    let landing = Landing {
        pack: indexed,
        updates: vec![RefUpdate {
            name: name.to_owned(),
            old,
            new,
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
    let landed = land(app, &o.repo, o.db.clone(), landing).await;
    match landed.single() {
        Ok(()) => Ok(()),
        Err((Rejection::Ref(refusal), _)) => {
            let now = o.repo.snapshot().await?.get(name);
            Err(match refusal {
                refs::Refusal::AlreadyExists
                | refs::Refusal::StaleInfo
                | refs::Refusal::FetchFirst
                | refs::Refusal::NoSuchRef => stale(name, now),
                other => RpcError::Conflict(format!("{name}: {other}")),
            })
        }
        Err((rejection, refused)) => Err(super::landing_error(rejection, refused)),
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RestoreParams {
    artifact_id: String,
    path: String,
    from_rev: String,
    branch: String,
    expected_head: Option<String>,
    #[serde(default)]
    message: Option<String>,
    #[serde(default)]
    dry_run: bool,
}

/// `restore`: a file or folder as it was at `from_rev`, committed anew.
pub(super) async fn restore(
    app: &Arc<App>,
    identity: Option<&Grants>,
    p: Value,
) -> Result<Value, RpcError> {
    if p.get("expected_head").is_none() {
        return Err(RpcError::InvalidParams("expected_head is required".into()));
    }
    let p: RestoreParams = params(p)?;
    let name = branch_ref(&p.branch)?;
    let expected_head = expected(p.expected_head.as_deref())?;
    let path = history::normalize_path(&p.path)?;
    if path.is_empty() {
        return Err(RpcError::InvalidParams(
            "path is empty: restore a file or folder".into(),
        ));
    }
    let (author, committer) = people(identity, None);
    let o = open(app, identity, &p.artifact_id, Access::Write).await?;
    let current = o.snapshot.get(&name);
    let Some(head) = current.filter(|c| Some(*c) == expected_head) else {
        return Err(stale(&name, current));
    };
    let indexing = Indexing::of(app, o.db.object_hash());
    let (db, snapshot, dry_run) = (o.db.clone(), o.snapshot.clone(), p.dry_run);
    let visible = o.visible.clone();
    let (from_rev, message) = (p.from_rev, p.message);
    let outcome = blocking(move || {
        let reader = db.reader();
        let source = history::resolve_commit(&reader, &snapshot, &visible, &from_rev)?;
        let source_tree = reader.commit(&source)?.tree;
        let Some((mode, id)) = history::entry_at(&reader, &source_tree, &path)? else {
            return Err(RpcError::NotFound(format!("no {path:?} at {from_rev}")));
        };
        let head_tree = reader.commit(&head)?.tree;
        // What the restore changes: the path now against then.
        let (changes, _) =
            history::diff_at_path(&reader, Some(&head_tree), Some(&source_tree), &path, MAX_FILES)?;
        if changes.is_empty() {
            return Ok((None, Value::Null, source));
        }
        let patch = history::patch(&reader, changes, history::PatchLimits::default())?;
        let summary = json!({
            "files": patch.files.iter().map(|f| json!({"path": f.change.path, "status": f.change.kind.as_str(), "additions": f.additions, "deletions": f.deletions, "binary": f.binary})).collect::<Vec<_>>(),
            "patch": patch.text,
            "truncated": patch.truncated,
        });
        if dry_run {
            return Ok((None, summary, source));
        }
        let mut pack = new_pack(&indexing)?;
        let edits = [history::TreeEdit::Upsert { path: path.clone(), mode, id }];
        let tree = history::edit_tree(&reader, &mut pack, Some(&head_tree), &edits)?;
        let short = source.to_hex_with_len(7).to_string();
        let message = format!(
            "{}\n\nRestored-From: {source}:{path}\n",
            message.unwrap_or_else(|| format!("Restore {path} from {short}")).trim_end()
        );
        let commit = history::write_commit(&mut pack, &tree, &[head], &author, &committer, &message)?;
        let indexed = finish_pack(pack, &indexing)?;
        Ok((Some((indexed, commit)), summary, source))
    })
    .await?;
    let (built, summary, source) = outcome;
    let mut out = json!({"from_commit": source.to_string(), "diff": summary, "dry_run": p.dry_run});
    if let Some((indexed, commit)) = built {
        publish_and_move(app, &o, identity, Some(indexed), &name, head, commit).await?;
        out["commit"] = json!(commit.to_string());
    } else if !p.dry_run {
        out["commit"] = Value::Null;
        out["message"] = json!("nothing to restore: the path is already as it was");
    }
    Ok(out)
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct SnapshotParams {
    artifact_id: String,
    name: String,
    #[serde(default = "default_rev")]
    rev: String,
    message: String,
}

/// `create_snapshot`: an annotated tag.
pub(super) async fn create_snapshot(
    app: &Arc<App>,
    identity: Option<&Grants>,
    p: Value,
) -> Result<Value, RpcError> {
    let p: SnapshotParams = params(p)?;
    let name = format!("refs/tags/{}", p.name);
    if refs::validate_ref_name(&name).is_err() || p.name.len() > 200 {
        return Err(RpcError::InvalidParams(format!(
            "invalid snapshot name {:?}",
            p.name
        )));
    }
    if p.message.trim().is_empty() || p.message.len() > MAX_MESSAGE {
        return Err(RpcError::InvalidParams("message: 1 byte to 64 KiB".into()));
    }
    let (_, tagger) = people(identity, None);
    let o = open(app, identity, &p.artifact_id, Access::Write).await?;
    if o.snapshot.get(&name).is_some() {
        return Err(RpcError::Conflict(format!(
            "snapshot {:?} exists already",
            p.name
        )));
    }
    let indexing = Indexing::of(app, o.db.object_hash());
    let (db, snapshot, short) = (o.db.clone(), o.snapshot.clone(), p.name.clone());
    let visible = o.visible.clone();
    let (rev, message) = (p.rev, p.message);
    let (indexed, tag, commit) = blocking(move || {
        let reader = db.reader();
        let commit = history::resolve_commit(&reader, &snapshot, &visible, &rev)?;
        let mut pack = new_pack(&indexing)?;
        let tag = history::write_tag(&mut pack, &commit, &short, &tagger, &message)?;
        Ok((finish_pack(pack, &indexing)?, tag, commit))
    })
    .await?;
    publish_and_move(
        app,
        &o,
        identity,
        Some(indexed),
        &name,
        o.snapshot.null_id(),
        tag,
    )
    .await?;
    Ok(json!({"name": p.name, "ref": name, "tag": tag.to_string(), "commit": commit.to_string()}))
}

/// `list_snapshots`: every tag by name; annotated ones with their message and tagger.
pub(super) async fn list_snapshots(
    app: &Arc<App>,
    identity: Option<&Grants>,
    p: Value,
) -> Result<Value, RpcError> {
    let p: ArtifactOnly = params(p)?;
    let o = open_without_revisions(app, identity, &p.artifact_id, Access::Read).await?;
    blocking(move || {
        let reader = o.db.reader();
        let mut out = Vec::new();
        let mut buf = Vec::new();
        for (name, value) in o.snapshot.refs.range("refs/tags/".to_owned()..) {
            let Some(short) = name.strip_prefix("refs/tags/") else { break };
            let mut entry = json!({"name": short, "ref": name});
            let kind = reader.read(&value.target, &mut buf)?;
            if kind == gix_object::Kind::Tag {
                if let Ok(tag) = gix_object::TagRef::from_bytes(&buf, value.target.kind()) {
                    entry["tag"] = json!(value.target.to_string());
                    entry["message"] = json!(String::from_utf8_lossy(tag.message).trim_end());
                    if let Some(Ok(t)) = tag.tagger() .transpose() {
                        entry["tagger"] = json!({"name": t.name.to_string(), "email": t.email.to_string(), "time": t.time().map(|x| x.seconds).unwrap_or(0)});
                    }
                }
            }
            let (commit, _) = reader.peel(&value.target)?;
            entry["commit"] = json!(commit.to_string());
            out.push(entry);
        }
        Ok(json!({"snapshots": out}))
    })
    .await
}
