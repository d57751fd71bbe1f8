//! Storage reclaimed from LFS: which stored objects the refs still point to, the sweep that
//! full maintenance runs (objects no reachable tree points to, older than the grace, are
//! removed, as `git gc` prunes loose objects), and what `list_lfs_files` shows.
//!
//! Unreachable git objects are dropped by the full repack itself
//! ([`objectstore::odb::maintain::repack`]); LFS objects live outside the packs, so they are
//! told apart here: every blob the refs reach that is small enough to be a pointer is read and
//! parsed. A push that starts pointing at an old unreferenced object while a sweep runs is the
//! race `git gc` has too; the sweep narrows it by re-reading the refs before it deletes and
//! skipping the deletion when they moved.

use std::collections::{HashMap, HashSet};

use gix_hash::ObjectId;
use objectstore::odb::{walk, ObjectDb};

use crate::repo::Repo;

/// Why a sweep failed.
#[derive(Debug, thiserror::Error)]
pub enum ReclaimError {
    /// Reading objects or the bucket failed.
    #[error(transparent)]
    Objects(#[from] objectstore::odb::Error),
    /// Reading the refs failed.
    #[error(transparent)]
    Refs(#[from] refs::Error),
    /// The blocking walk failed.
    #[error("the walk failed: {0}")]
    Task(String),
}

/// Files listed per tip for paths at most.
const MAX_PATHS: usize = 1_000_000;

/// The LFS objects the refs reach, each with a path that points to it in a tip's tree when
/// one does (older history has no path). Blocking: walks every reachable object.
pub fn referenced(
    db: &ObjectDb,
    tips: &[ObjectId],
) -> Result<HashMap<String, Option<String>>, objectstore::odb::Error> {
    let reader = db.reader();
    let selection = walk::select(&reader, tips, &[], &HashSet::new(), None, &mut |_| {})?;
    let mut out = HashMap::new();
    let mut buf = Vec::new();
    for id in &selection.objects {
        if let Some((gix_object::Kind::Blob, size)) = reader.header(id)? {
            if size as usize <= lfs::MAX_POINTER_SIZE {
                reader.read(id, &mut buf)?;
                if let Some(pointer) = lfs::Pointer::parse(&buf) {
                    out.insert(pointer.oid.to_string(), None);
                }
            }
        }
    }
    // Paths from the tips' trees (what `list_lfs_files` shows).
    for tip in tips {
        let Ok(commit) = reader.commit(tip) else {
            continue; // A tag of a tree or blob: no paths.
        };
        let Ok((entries, _)) =
            history::list(&reader, &commit.tree, "", history::Depth::Files, MAX_PATHS)
        else {
            continue;
        };
        for entry in entries {
            if entry
                .size
                .is_some_and(|s| s as usize <= lfs::MAX_POINTER_SIZE)
            {
                reader.read(&entry.id, &mut buf)?;
                if let Some(pointer) = lfs::Pointer::parse(&buf) {
                    out.entry(pointer.oid.to_string())
                        .or_insert(None)
                        .get_or_insert(entry.path);
                }
            }
        }
    }
    Ok(out)
}

/// Whether a key of the pack folder counts in a repository's usage: the `.pack` and `.idx`
/// files (what a landing adds; the small `.tips` files do not count).
pub fn counted_pack_file(key: &str) -> bool {
    key.ends_with(".pack") || key.ends_with(".idx")
}

/// One stored LFS object.
#[derive(Debug, Clone)]
pub struct Stored {
    /// Its id.
    pub oid: String,
    /// Its size.
    pub size: u64,
    /// When it was stored, seconds since the epoch.
    pub stored_at: i64,
    /// Its key.
    pub key: String,
}

/// Every LFS object stored for `repo`.
pub async fn stored(repo: &Repo) -> Result<Vec<Stored>, objectstore::bucket::Error> {
    let listed = repo
        .storage()
        .bucket
        .list(&repo.keys.lfs_objects_dir())
        .await?;
    Ok(listed
        .into_iter()
        .filter_map(|m| {
            let oid = m.key.rsplit('/').next()?.to_owned();
            lfs::Oid::parse(&oid)?;
            Some(Stored {
                oid,
                size: m.size,
                stored_at: m.last_modified,
                key: m.key,
            })
        })
        .collect())
}

/// What a sweep removed.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Swept {
    /// Objects removed.
    pub objects: usize,
    /// Their bytes.
    pub bytes: u64,
}

/// Remove the LFS objects of `repo` that no ref reaches and that were stored more than
/// `grace` ago; `db` holds every object the refs `snapshot` names.
pub async fn sweep_lfs(
    repo: &Repo,
    db: &ObjectDb,
    snapshot: &refs::Snapshot,
    grace: std::time::Duration,
) -> Result<Swept, ReclaimError> {
    let mut tips: Vec<ObjectId> = snapshot.refs.values().map(|v| v.target).collect();
    tips.sort();
    tips.dedup();
    let (walk_db, walk_tips) = (db.clone(), tips.clone());
    let referenced = tokio::task::spawn_blocking(move || referenced(&walk_db, &walk_tips))
        .await
        .map_err(|e| ReclaimError::Task(e.to_string()))??;
    let cutoff = events::log::now() - grace.as_secs() as i64;
    let doomed: Vec<Stored> = stored(repo)
        .await
        .map_err(objectstore::odb::Error::from)?
        .into_iter()
        .filter(|s| !referenced.contains_key(&s.oid) && s.stored_at <= cutoff)
        .collect();
    if doomed.is_empty() {
        return Ok(Swept::default());
    }
    // The refs moved while they were walked: a new pointer may name a doomed object.
    if repo.snapshot().await?.content_id != snapshot.content_id {
        tracing::info!(repo = %repo.id, "refs moved during the LFS sweep; nothing removed this time");
        return Ok(Swept::default());
    }
    let keys: Vec<String> = doomed.iter().map(|s| s.key.clone()).collect();
    repo.storage()
        .bucket
        .delete_many(&keys)
        .await
        .map_err(objectstore::odb::Error::from)?;
    Ok(Swept {
        objects: doomed.len(),
        bytes: doomed.iter().map(|s| s.size).sum(),
    })
}
