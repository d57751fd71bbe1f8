//! `commit_files`: one commit on a branch from a list of changes, without a git client.
//!
//! A change puts bytes (`put`), names a Git LFS object already uploaded through the batch API
//! (`lfs`: no bytes in the call; refused unless this repository stores the object with that
//! size), deletes, renames, or copies a path from any revision (`copy`: the same object, no
//! bytes moved). Contents of paths the branch's `.gitattributes` sends to LFS become pointers
//! ([`crate::placement`]); an `lfs` change at a path it does not track gets a line added to
//! `.gitattributes` in the same commit, so a clone smudges it. `lfs_placement` answers, for
//! paths and sizes, which must go through LFS. The commit lands as every writer's does.

use std::sync::Arc;

use base64::Engine;
use gix_hash::ObjectId;
use objectstore::ObjectDb;
use serde::Deserialize;
use serde_json::{json, Value};

use super::history::{
    blocking, branch_ref, expected, finish_pack, new_pack, open, open_without_revisions, people,
    publish_and_move, stale, Indexing, Opened, PersonParam, MAX_MESSAGE,
};
use super::{params, RpcError};
use crate::app::App;
use crate::auth::{Access, Grants};
use crate::placement::{place, InHand, Placed};

const MAX_CHANGES: usize = 10_000;

/// One change of `commit_files`.
#[derive(Deserialize)]
#[serde(tag = "op", rename_all = "lowercase", deny_unknown_fields)]
enum FileOp {
    Put {
        path: String,
        #[serde(default)]
        content: Option<String>,
        #[serde(default)]
        content_base64: Option<String>,
        #[serde(default)]
        executable: bool,
    },
    Lfs {
        path: String,
        oid: String,
        size: u64,
        #[serde(default)]
        executable: bool,
    },
    Delete {
        path: String,
    },
    Rename {
        from: String,
        to: String,
    },
    Copy {
        from: String,
        to: String,
        #[serde(default)]
        rev: Option<String>,
    },
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct CommitFilesParams {
    artifact_id: String,
    branch: String,
    /// Required, `null` to create the branch.
    expected_head: Option<String>,
    message: String,
    #[serde(default)]
    author: Option<PersonParam>,
    changes: Vec<FileOp>,
}

/// One change of a commit, its content decoded.
#[derive(Clone)]
pub(crate) enum Change {
    /// Bytes to put (placed in LFS by the attributes).
    Put {
        path: String,
        bytes: Vec<u8>,
        executable: bool,
    },
    /// A pointer to an LFS object stored in this repository (its size looked up when `None`).
    Lfs {
        path: String,
        oid: lfs::Oid,
        size: Option<u64>,
        executable: bool,
    },
    /// A file or a whole folder removed.
    Delete {
        path: String,
    },
    Rename {
        from: String,
        to: String,
    },
    /// A path of `rev` (the branch's commit when `None`) to another path.
    Copy {
        from: String,
        to: String,
        rev: Option<String>,
    },
}

/// Where the branch must be for the commit to land.
pub(crate) enum Expected {
    /// At this commit (`None`: the branch must not exist).
    At(Option<ObjectId>),
    /// Wherever it is now: the commit goes on top (tried again if another lands meanwhile).
    Latest,
}

/// A commit to make without a client.
pub(crate) struct CommitRequest {
    pub(crate) artifact_id: String,
    /// The branch, short or full.
    pub(crate) branch: String,
    pub(crate) expected: Expected,
    pub(crate) message: String,
    /// Name and email; the caller's identity when `None`.
    pub(crate) author: Option<PersonParam>,
    pub(crate) changes: Vec<Change>,
}

/// Commits on top of a moving branch tried at most.
const LATEST_TRIES: usize = 3;

fn mode(executable: bool) -> u32 {
    if executable {
        0o100755
    } else {
        0o100644
    }
}

/// The changes with their contents decoded: a bad one refuses the whole commit.
fn decode_changes(app: &App, changes: Vec<FileOp>) -> Result<Vec<Change>, RpcError> {
    let mut edits = Vec::with_capacity(changes.len());
    for change in changes {
        edits.push(match change {
            FileOp::Put {
                path,
                content,
                content_base64,
                executable,
            } => {
                let bytes = match (content, content_base64) {
                    (Some(text), None) => text.into_bytes(),
                    (None, Some(b64)) => base64::engine::general_purpose::STANDARD
                        .decode(b64.as_bytes())
                        .map_err(|e| {
                            RpcError::InvalidParams(format!("{path}: content_base64: {e}"))
                        })?,
                    _ => {
                        return Err(RpcError::InvalidParams(format!(
                            "{path}: give exactly one of content and content_base64"
                        )))
                    }
                };
                Change::Put {
                    path,
                    bytes,
                    executable,
                }
            }
            FileOp::Lfs {
                path,
                oid,
                size,
                executable,
            } => {
                let oid = lfs::Oid::parse(&oid).ok_or_else(|| {
                    RpcError::InvalidParams(format!("{path}: oid is not a SHA-256 in hex"))
                })?;
                if size > app.config.lfs.max_object {
                    return Err(RpcError::InvalidParams(format!(
                        "{path}: {size} bytes is over the largest LFS object accepted"
                    )));
                }
                Change::Lfs {
                    path,
                    oid,
                    size: Some(size),
                    executable,
                }
            }
            FileOp::Delete { path } => Change::Delete { path },
            FileOp::Rename { from, to } => Change::Rename { from, to },
            FileOp::Copy { from, to, rev } => Change::Copy { from, to, rev },
        });
    }
    Ok(edits)
}

/// The `.gitattributes` of commit `base` (empty without one).
async fn attributes_at(db: &ObjectDb, base: Option<ObjectId>) -> Result<Vec<u8>, RpcError> {
    let Some(base) = base else {
        return Ok(Vec::new());
    };
    let db = db.clone();
    blocking(move || {
        let reader = db.reader();
        let tree = reader.commit(&base)?.tree;
        match history::entry_at(&reader, &tree, ".gitattributes")? {
            Some((_, id)) => {
                let mut buf = Vec::new();
                reader.read_kind(&id, gix_object::Kind::Blob, &mut buf)?;
                Ok(buf)
            }
            None => Ok(Vec::new()),
        }
    })
    .await
}

fn lfs_store(app: &App, o: &Opened) -> lfs::Store {
    lfs::Store::new(
        app.storage.bucket.clone(),
        o.repo.keys.clone(),
        app.config.lfs,
    )
}

/// Contents of paths `.gitattributes` sends to LFS become pointers, their bytes stored
/// (verified) before the commit names them; every referenced LFS object must be stored with
/// its size; a referenced object at an untracked path gets a `.gitattributes` line.
async fn place_contents(
    app: &App,
    o: &Opened,
    base: Option<ObjectId>,
    edits: &mut Vec<Change>,
) -> Result<(), RpcError> {
    let attributes = attributes_at(&o.db, base).await?;
    let patterns = lfs::attributes::lfs_patterns(&attributes);
    let store = lfs_store(app, o);
    let mut untracked = Vec::new();
    for edit in edits.iter_mut() {
        match edit {
            Change::Put { path, bytes, .. } => {
                let mut in_hand = InHand(std::mem::take(bytes));
                let placed = place(&mut in_hand, path, &patterns, None, &store)
                    .await
                    .map_err(|e| RpcError::Internal(format!("storing {path} in Git LFS: {e}")))?;
                *bytes = match placed {
                    Placed::Blob => in_hand.0,
                    Placed::Lfs { pointer, .. } => pointer.encode().into_bytes(),
                };
            }
            Change::Lfs {
                path, oid, size, ..
            } => {
                let stored = store
                    .stored_size(oid)
                    .await
                    .map_err(|e| RpcError::Internal(e.to_string()))?;
                match (stored, *size) {
                    (Some(stored), None) => *size = Some(stored),
                    (Some(stored), Some(want)) if stored == want => {}
                    (Some(stored), Some(want)) => {
                        return Err(RpcError::InvalidParams(format!(
                            "{path}: the LFS object {oid} has {stored} bytes, not {want}"
                        )))
                    }
                    (None, _) => {
                        return Err(RpcError::NotFound(format!(
                            "{path}: the LFS object {oid} is not uploaded to this repository"
                        )))
                    }
                }
                if !lfs::attributes::tracked_by_lfs(&patterns, path) {
                    untracked.push(lfs::attributes::exact_pattern(path));
                }
            }
            _ => {}
        }
    }
    if !untracked.is_empty() {
        let puts_attributes = edits.iter().any(
            |e| matches!(e, Change::Put { path, .. } if path.trim_matches('/') == ".gitattributes"),
        );
        if puts_attributes {
            return Err(RpcError::InvalidParams(
                "the call writes .gitattributes and references LFS objects at paths it does \
                 not track: track them in the .gitattributes it writes"
                    .into(),
            ));
        }
        edits.push(Change::Put {
            path: ".gitattributes".into(),
            bytes: lfs::attributes::with_lfs_lines(attributes, &untracked),
            executable: false,
        });
    }
    Ok(())
}

/// Turn the pending edits into tree edits, writing new blobs into `pack`.
fn tree_edits(
    o: &Opened,
    reader: &objectstore::odb::Reader<'_>,
    pack: &mut objectstore::odb::build::PackBuilder,
    base_tree: Option<ObjectId>,
    edits_in: Vec<Change>,
) -> Result<Vec<history::TreeEdit>, RpcError> {
    let at = |tree: Option<ObjectId>, path: &str, what: &str| {
        let found = tree
            .map(|t| history::entry_at(reader, &t, path))
            .transpose()?
            .flatten();
        found.ok_or_else(|| RpcError::NotFound(format!("{what}: no such path {path:?}")))
    };
    let mut edits = Vec::new();
    for edit in edits_in {
        match edit {
            Change::Put {
                path,
                bytes,
                executable,
            } => {
                let path = history::normalize_path(&path)?;
                let id = pack.add(gix_object::Kind::Blob, &bytes)?;
                let mode = mode(executable);
                edits.push(history::TreeEdit::Upsert { path, mode, id });
            }
            Change::Lfs {
                path,
                oid,
                size,
                executable,
            } => {
                let path = history::normalize_path(&path)?;
                let size =
                    size.ok_or_else(|| RpcError::Internal("an LFS size was not looked up".into()))?;
                let pointer = lfs::Pointer { oid, size };
                let id = pack.add(gix_object::Kind::Blob, pointer.encode().as_bytes())?;
                let mode = mode(executable);
                edits.push(history::TreeEdit::Upsert { path, mode, id });
            }
            Change::Delete { path } => {
                let path = history::normalize_path(&path)?;
                edits.push(history::TreeEdit::Remove { path })
            }
            Change::Rename { from, to } => {
                let from = history::normalize_path(&from)?;
                let (mode, id) = at(base_tree, &from, "rename")?;
                edits.push(history::TreeEdit::Remove { path: from });
                let path = history::normalize_path(&to)?;
                edits.push(history::TreeEdit::Upsert { path, mode, id });
            }
            Change::Copy { from, to, rev } => {
                let from = history::normalize_path(&from)?;
                let tree = match rev {
                    None => base_tree,
                    Some(rev) => {
                        let commit =
                            history::resolve_commit(reader, &o.snapshot, &o.visible, &rev)?;
                        Some(reader.commit(&commit)?.tree)
                    }
                };
                let (mode, id) = at(tree, &from, "copy")?;
                let path = history::normalize_path(&to)?;
                edits.push(history::TreeEdit::Upsert { path, mode, id });
            }
        }
    }
    Ok(edits)
}

/// `commit_files`: one commit on `branch` from the changes.
pub(super) async fn commit_files(
    app: &Arc<App>,
    identity: Option<&Grants>,
    p: Value,
) -> Result<Value, RpcError> {
    if p.get("expected_head").is_none() {
        return Err(RpcError::InvalidParams(
            "expected_head is required: the branch's current commit, or null to create it".into(),
        ));
    }
    let p: CommitFilesParams = params(p)?;
    if p.changes.is_empty() || p.changes.len() > MAX_CHANGES {
        return Err(RpcError::InvalidParams(format!(
            "changes: 1 to {MAX_CHANGES}"
        )));
    }
    // Decode every content first: a bad one refuses the whole commit.
    let request = CommitRequest {
        expected: Expected::At(expected(p.expected_head.as_deref())?),
        changes: decode_changes(app, p.changes)?,
        artifact_id: p.artifact_id,
        branch: p.branch,
        message: p.message,
        author: p.author,
    };
    let committed = commit(app, identity, request).await?;
    Ok(json!({"commit": committed.commit.to_string(), "branch": committed.branch}))
}

/// What [`commit`] made.
pub(crate) struct Committed {
    /// The new commit.
    pub(crate) commit: ObjectId,
    /// The full name of the branch it is on.
    pub(crate) branch: String,
}

/// Make one commit from `request`: contents placed (LFS by the attributes, references
/// checked), the tree edited, the commit landed as every writer's.
pub(crate) async fn commit(
    app: &Arc<App>,
    identity: Option<&Grants>,
    request: CommitRequest,
) -> Result<Committed, RpcError> {
    let CommitRequest {
        artifact_id,
        branch,
        expected,
        message,
        author,
        mut changes,
    } = request;
    let name = branch_ref(&branch)?;
    if message.trim().is_empty() || message.len() > MAX_MESSAGE {
        return Err(RpcError::InvalidParams("message: 1 byte to 64 KiB".into()));
    }
    if changes.is_empty() || changes.len() > MAX_CHANGES {
        return Err(RpcError::InvalidParams(format!(
            "changes: 1 to {MAX_CHANGES}"
        )));
    }
    let (author, committer) = people(identity, author);
    author.validate()?;
    // Only a copy from another revision resolves one (and needs what the refs reach).
    let names_revisions = changes
        .iter()
        .any(|e| matches!(e, Change::Copy { rev: Some(_), .. }));
    let mut placed_on: Option<Option<ObjectId>> = None;
    for attempt in 1.. {
        let o = match names_revisions {
            true => open(app, identity, &artifact_id, Access::Write).await?,
            false => open_without_revisions(app, identity, &artifact_id, Access::Write).await?,
        };
        let current = o.snapshot.get(&name);
        if let Expected::At(want) = expected {
            if current != want {
                return Err(stale(&name, current));
            }
        }
        // Placement reads the base's .gitattributes: again only if the base moved.
        if placed_on != Some(current) {
            place_contents(app, &o, current, &mut changes).await?;
            placed_on = Some(current);
        }
        let this_try = match expected {
            Expected::Latest => changes.clone(),
            Expected::At(_) => std::mem::take(&mut changes),
        };
        let indexing = Indexing::of(app, o.db.object_hash());
        let (opened, message) = (o.clone(), message.clone());
        let (author, committer) = (author.clone(), committer.clone());
        let (indexed, commit) = blocking(move || {
            let o = opened;
            let reader = o.db.reader();
            let mut pack = new_pack(&indexing)?;
            let base_tree = match current {
                Some(c) => Some(reader.commit(&c)?.tree),
                None => None,
            };
            let edits = tree_edits(&o, &reader, &mut pack, base_tree, this_try)?;
            let tree = history::edit_tree(&reader, &mut pack, base_tree.as_ref(), &edits)?;
            let parents: Vec<ObjectId> = current.into_iter().collect();
            let commit =
                history::write_commit(&mut pack, &tree, &parents, &author, &committer, &message)?;
            finish_pack(pack, &indexing).map(|indexed| (indexed, commit))
        })
        .await?;
        let old = current.unwrap_or_else(|| o.snapshot.null_id());
        match publish_and_move(app, &o, identity, Some(indexed), &name, old, commit).await {
            Ok(()) => {
                return Ok(Committed {
                    commit,
                    branch: name,
                })
            }
            Err(RpcError::Stale(_))
                if matches!(expected, Expected::Latest) && attempt < LATEST_TRIES =>
            {
                continue
            }
            Err(e) => return Err(e),
        }
    }
    Err(RpcError::Internal(
        "unreachable: the commit loop ended".into(),
    ))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct PlacementParams {
    artifact_id: String,
    #[serde(default = "default_branch")]
    branch: String,
    files: Vec<PlannedFile>,
}

fn default_branch() -> String {
    "main".into()
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct PlannedFile {
    path: String,
    size: u64,
}

/// `lfs_placement`: for each path and size, whether its content must go through Git LFS
/// (upload it with the batch API, then commit it with an `lfs` change): the branch's
/// `.gitattributes` tracks the path, or the size is over the server's threshold.
pub(super) async fn lfs_placement(
    app: &Arc<App>,
    identity: Option<&Grants>,
    p: Value,
) -> Result<Value, RpcError> {
    let p: PlacementParams = params(p)?;
    if p.files.len() > MAX_CHANGES {
        return Err(RpcError::InvalidParams(format!(
            "files: at most {MAX_CHANGES}"
        )));
    }
    let name = branch_ref(&p.branch)?;
    let o = open_without_revisions(app, identity, &p.artifact_id, Access::Read).await?;
    let patterns =
        lfs::attributes::lfs_patterns(&attributes_at(&o.db, o.snapshot.get(&name)).await?);
    let mut files = Vec::with_capacity(p.files.len());
    for f in p.files {
        let path = history::normalize_path(&f.path)?;
        let tracked = lfs::attributes::tracked_by_lfs(&patterns, &path);
        let lfs = crate::placement::goes_to_lfs(tracked, f.size, Some(app.config.lfs_threshold));
        files.push(json!({"path": path, "size": f.size, "lfs": lfs}));
    }
    Ok(json!({"branch": name, "threshold": app.config.lfs_threshold, "files": files}))
}
