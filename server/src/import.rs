//! Importing an artifact's newest version (`v{N}/` files written by the artifact service
//! before git was enabled) as the first commit of a branch.
//!
//! Files above a size threshold become Git LFS objects without leaving the bucket: each is read
//! once through SHA-256 and copied inside the bucket to its LFS key; the commit holds a pointer
//! for it and a `.gitattributes` that tracks it. The other files are downloaded to local disk
//! (async), written into a pack as blobs, trees and a commit and indexed (blocking), then the
//! pack is published and the branch created by the same compare-and-swap as a push.

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
    /// Storing a file as an LFS object failed.
    #[error(transparent)]
    Lfs(#[from] lfs::StoreError),
}

/// What an import did.
#[derive(Debug, Clone, Default)]
pub struct Imported {
    /// The version imported.
    pub version: Option<u64>,
    /// Files committed.
    pub files: usize,
    /// Of them, stored as Git LFS objects.
    pub lfs_files: usize,
    /// The new commit.
    pub head: Option<ObjectId>,
}

/// Where the content of a file of the new commit comes from.
enum Content {
    /// A local copy.
    File(PathBuf),
    /// Bytes made here (a pointer, `.gitattributes`).
    Inline(Vec<u8>),
}

/// A `.gitattributes` pattern matching exactly `path` (from the root).
fn attributes_pattern(path: &str) -> String {
    let mut out = String::from("/");
    for c in path.chars() {
        match c {
            ' ' => out.push_str("[[:space:]]"),
            '*' | '?' | '[' | ']' | '\\' | '!' | '#' => {
                out.push('\\');
                out.push(c);
            }
            c => out.push(c),
        }
    }
    out
}

/// Commit the files of the artifact's newest version as the first commit of `branch`; files
/// larger than `lfs_threshold` as Git LFS objects.
pub async fn import_newest_version(
    app: &App,
    repo: &Repo,
    branch: &str,
    lfs_threshold: u64,
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
    let files: Vec<(String, u64)> = listing
        .iter()
        .filter_map(|m| Some((artifact.parse_version_file(&m.key)?, m.size)))
        .filter(|((v, path), _)| *v == version && !path.is_empty() && !path.ends_with('/'))
        .map(|((_, path), size)| (path.to_owned(), size))
        .collect();
    if files.is_empty() {
        return Ok(Imported::default());
    }
    std::fs::create_dir_all(&app.staging)?;
    let download = tempfile::Builder::new()
        .prefix("import-")
        .tempdir_in(&app.staging)?;
    let store = lfs::Store::new(storage.bucket.clone(), repo.keys.clone(), app.lfs);
    let mut local: Vec<(String, Content)> = Vec::with_capacity(files.len() + 1);
    let mut tracked = Vec::new();
    let mut attributes: Option<Vec<u8>> = None;
    for (n, (path, size)) in files.into_iter().enumerate() {
        let key = artifact.version_file(version, &path);
        if size > lfs_threshold {
            let (oid, size) = store.import(&key).await?;
            let pointer = lfs::Pointer { oid, size };
            local.push((path.clone(), Content::Inline(pointer.encode().into_bytes())));
            tracked.push(path);
            continue;
        }
        let file = download.path().join(n.to_string());
        storage.bucket.get_to_file(&key, &file).await?;
        if path == ".gitattributes" {
            attributes = Some(std::fs::read(&file)?);
            continue;
        }
        local.push((path, Content::File(file)));
    }
    let lfs_files = tracked.len();
    // A `.gitattributes` written only for LFS is not one of the artifact's files.
    let generated_attributes = usize::from(!tracked.is_empty() && attributes.is_none());
    if !tracked.is_empty() || attributes.is_some() {
        let mut text = attributes.unwrap_or_default();
        if !text.is_empty() && !text.ends_with(b"\n") {
            text.push(b'\n');
        }
        for path in &tracked {
            text.extend_from_slice(
                format!(
                    "{} filter=lfs diff=lfs merge=lfs -text\n",
                    attributes_pattern(path)
                )
                .as_bytes(),
            );
        }
        local.push((".gitattributes".to_owned(), Content::Inline(text)));
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
    let journal = events::log::Recorder::new(
        storage.bucket.clone(),
        &storage.keys(),
        &repo.id.workspace,
        &repo.id.alias,
        events::log::EventMeta {
            pusher: None,
            push_options: Vec::new(),
            source: events::log::Source::Import,
        },
    );
    let results = repo
        .refs
        .commit_with(
            &RefTransaction {
                updates: vec![RefUpdate {
                    name: format!("refs/heads/{branch}"),
                    old: ObjectId::null(gix_hash::Kind::Sha1),
                    new: head,
                    peeled: None,
                }],
                atomic: true,
            },
            Some(&journal),
        )
        .await?;
    app.events.wake();
    if let Some(Err(refusal)) = results.into_iter().next() {
        return Err(ImportError::Refused(refusal));
    }
    Ok(Imported {
        version: Some(version),
        files: count.saturating_sub(generated_attributes),
        lfs_files,
        head: Some(head),
    })
}

/// Write the files into a pack with their trees and one commit, and index it.
fn build(
    files: &[(String, Content)],
    message: &str,
    staging: &std::path::Path,
    limits: &Limits,
    budget: &std::sync::Arc<objectstore::budget::MemoryBudget>,
    repo: &crate::storage::RepoId,
) -> Result<(Indexed, ObjectId, usize), ImportError> {
    let mut pack = PackBuilder::new(staging)?;
    let mut tree = TreeBuilder::default();
    let mut count = 0;
    for (path, content) in files {
        let id = match content {
            Content::File(file) => {
                let size = std::fs::metadata(file)?.len();
                pack.add_from(
                    gix_object::Kind::Blob,
                    size,
                    &mut std::fs::File::open(file)?,
                )?
            }
            Content::Inline(data) => pack.add(gix_object::Kind::Blob, data)?,
        };
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn attribute_patterns_match_exactly_one_path() {
        assert_eq!(attributes_pattern("data/model.bin"), "/data/model.bin");
        assert_eq!(
            attributes_pattern("a b/c*d[1]#"),
            "/a[[:space:]]b/c\\*d\\[1\\]\\#"
        );
    }
}
