//! Importing an artifact's newest version (`v{N}/` files written by the artifact service
//! before git was enabled) as the first commit of a branch.
//!
//! The files are downloaded to local disk (async), written into a pack as blobs, trees and a
//! commit and indexed (blocking), then the pack is published and the branch created by the
//! same compare-and-swap as a push.

use std::path::PathBuf;

use gix_hash::ObjectId;
use objectstore::odb::build::{PackBuilder, TreeBuilder};
use objectstore::odb::index::{self, Checks, Indexed, Limits};
use objectstore::odb::Reach;
use refs::{RefTransaction, RefUpdate};

use crate::app::App;
use crate::repo::Repo;

/// Why an import failed.
#[derive(Debug, thiserror::Error)]
pub enum ImportError {
    /// The bucket failed.
    #[error(transparent)]
    Storage(#[from] objectstore::bucket::Error),
    /// Writing or indexing the pack failed.
    #[error(transparent)]
    Objects(#[from] objectstore::odb::Error),
    /// Reading or writing the refs failed.
    #[error(transparent)]
    Refs(#[from] refs::Error),
    /// The branch could not be created (someone else created it first).
    #[error("the branch could not be created: {0}")]
    Refused(refs::Refusal),
    /// Local disk.
    #[error("local I/O error: {0}")]
    Io(#[from] std::io::Error),
    /// A blocking task failed.
    #[error("the import task failed: {0}")]
    Task(String),
}

/// What an import did.
#[derive(Debug, Clone, Default)]
pub struct Imported {
    /// The version imported.
    pub version: Option<u64>,
    /// Files committed.
    pub files: usize,
    /// The new commit.
    pub head: Option<ObjectId>,
}

/// Commit the files of the artifact's newest version as the first commit of `branch`.
pub async fn import_newest_version(
    app: &App,
    repo: &Repo,
    branch: &str,
) -> Result<Imported, ImportError> {
    let storage = repo.storage();
    let artifact = storage.artifact_keys(&repo.id);
    let listing = storage.bucket.list(artifact.base()).await?;
    let Some(version) = listing
        .iter()
        .filter_map(|m| artifact.parse_version_file(&m.key))
        .map(|(v, _)| v)
        .max()
    else {
        return Ok(Imported::default());
    };
    let files: Vec<String> = listing
        .iter()
        .filter_map(|m| artifact.parse_version_file(&m.key))
        .filter(|(v, path)| *v == version && !path.is_empty() && !path.ends_with('/'))
        .map(|(_, path)| path.to_owned())
        .collect();
    if files.is_empty() {
        return Ok(Imported::default());
    }
    std::fs::create_dir_all(&app.staging)?;
    let download = tempfile::Builder::new()
        .prefix("import-")
        .tempdir_in(&app.staging)?;
    let mut local: Vec<(String, PathBuf)> = Vec::with_capacity(files.len());
    for (n, path) in files.into_iter().enumerate() {
        let file = download.path().join(n.to_string());
        storage
            .bucket
            .get_to_file(&artifact.version_file(version, &path), &file)
            .await?;
        local.push((path, file));
    }
    let db = repo.fresh_objects(&app.cache).await?;
    let message = format!(
        "Import artifact {} version v{version}\n\nThe files of version v{version}, as they were when git was enabled.\n",
        repo.id
    );
    let staging = app.staging.clone();
    let budget = app.budget.clone();
    let limits = app.pack_limits();
    let repo_id = repo.id.clone();
    let (indexed, head, count) = tokio::task::spawn_blocking(move || {
        build(&local, &message, &staging, &limits, &budget, &repo_id)
    })
    .await
    .map_err(|e| ImportError::Task(e.to_string()))??;
    drop(download);
    indexed
        .publish(db.bucket().as_ref(), db.keys(), &Reach::Exactly(vec![head]))
        .await?;
    app.cache.forget_list(&repo.keys);
    let results = repo
        .refs
        .commit(&RefTransaction {
            updates: vec![RefUpdate {
                name: format!("refs/heads/{branch}"),
                old: ObjectId::null(gix_hash::Kind::Sha1),
                new: head,
                peeled: None,
            }],
            atomic: true,
        })
        .await?;
    if let Some(Err(refusal)) = results.into_iter().next() {
        return Err(ImportError::Refused(refusal));
    }
    Ok(Imported {
        version: Some(version),
        files: count,
        head: Some(head),
    })
}

/// Write the files into a pack with their trees and one commit, and index it.
fn build(
    files: &[(String, PathBuf)],
    message: &str,
    staging: &std::path::Path,
    limits: &Limits,
    budget: &std::sync::Arc<objectstore::budget::MemoryBudget>,
    repo: &crate::storage::RepoId,
) -> Result<(Indexed, ObjectId, usize), ImportError> {
    let mut pack = PackBuilder::new(staging)?;
    let mut tree = TreeBuilder::default();
    let mut count = 0;
    for (path, file) in files {
        let size = std::fs::metadata(file)?.len();
        let id = pack.add_from(
            gix_object::Kind::Blob,
            size,
            &mut std::fs::File::open(file)?,
        )?;
        match tree.insert(path, id, 0o100644) {
            Ok(()) => count += 1,
            Err(e) => tracing::warn!(%repo, path = %path, error = %e, "file not imported"),
        }
    }
    let root = tree.write(&mut pack)?;
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    let who = format!("artifact-git <artifact-git@localhost> {now} +0000");
    let commit = format!("tree {root}\nauthor {who}\ncommitter {who}\n\n{message}");
    let head = pack.add(gix_object::Kind::Commit, commit.as_bytes())?;
    let (path, _guard) = pack.finish()?;
    let indexed = index::index_file(&path, staging, limits, budget, Checks::STRICT, &mut |_| {
        Ok(None)
    })?;
    Ok((indexed, head, count))
}
