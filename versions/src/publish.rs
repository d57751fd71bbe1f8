//! Publishing a commit as artifact version `v{N}`.
//!
//! In three steps, each safe to repeat: [`reserve`] takes the number by creating the
//! manifest (incomplete) only if no manifest of that number exists; [`write_files`] writes
//! every file of the commit's tree under `v{N}/` (LFS files by a copy inside the bucket);
//! [`complete`] rewrites the manifest with the file list. A publish interrupted anywhere is
//! finished by running the same steps with the same number: the reservation is recognised as
//! this commit's, and the files are written again with the same bytes.

use std::sync::Arc;

use bytes::Bytes;
use futures_util::{StreamExt, TryStreamExt};
use gix_hash::ObjectId;
use objectstore::bucket::{validate_key, Bucket, PutMode};
use objectstore::layout::{ArtifactKeys, RepoKeys};
use objectstore::ObjectDb;

use crate::manifest::{self, Manifest, ManifestFile, SkippedFile, MAX_LISTED_FILES};
use crate::{Error, Result};

/// Entries of one commit published at most.
pub const MAX_FILES: usize = 1_000_000;

/// Files written at once.
const CONCURRENT_WRITES: usize = 4;

/// The number after every version in the bucket (folders and manifests).
pub async fn next_version(bucket: &dyn Bucket, artifact: &ArtifactKeys) -> Result<u64> {
    let highest = bucket
        .list(&artifact.versions_prefix())
        .await?
        .iter()
        .filter_map(|m| {
            artifact
                .parse_version_manifest(&m.key)
                .or_else(|| artifact.parse_version_file(&m.key).map(|(v, _)| v))
        })
        .max()
        .unwrap_or(0);
    Ok(highest + 1)
}

/// Take `manifest.version` for `manifest.git.commit`: `true` when it is ours (created now, or
/// by an earlier attempt of this publish), `false` when someone else has it.
pub async fn reserve(
    bucket: &dyn Bucket,
    artifact: &ArtifactKeys,
    manifest: &Manifest,
) -> Result<bool> {
    let key = artifact.version_manifest(manifest.version);
    match bucket
        .put(&key, Bytes::from(manifest.to_json()), PutMode::Create)
        .await
    {
        Ok(_) => Ok(true),
        Err(objectstore::bucket::Error::PreconditionFailed(_)) => {
            let existing = bucket.get(&key).await?.data;
            let ours = manifest::published_commit(&existing).is_some_and(|c| {
                ObjectId::from_hex(manifest.git.commit.as_bytes()).ok() == Some(c)
            }) && serde_json::from_slice::<Manifest>(&existing)
                .is_ok_and(|m| m.git.event_seq == manifest.git.event_seq);
            Ok(ours)
        }
        Err(e) => Err(e.into()),
    }
}

/// What [`write_files`] wrote.
#[derive(Debug, Default)]
pub struct Written {
    /// The files, in path order.
    pub files: Vec<ManifestFile>,
    /// What was left out.
    pub skipped: Vec<SkippedFile>,
}

/// One blob to write.
struct Job {
    path: String,
    id: ObjectId,
    size: u64,
}

/// Write the files of `commit` under `v{version}/`.
pub async fn write_files(
    bucket: &Arc<dyn Bucket>,
    artifact: &ArtifactKeys,
    repo: &RepoKeys,
    db: &ObjectDb,
    commit: ObjectId,
    version: u64,
) -> Result<Written> {
    let listed = {
        let db = db.clone();
        tokio::task::spawn_blocking(move || -> Result<_> {
            let reader = db.reader();
            let tree = reader.commit(&commit)?.tree;
            Ok(history::list(
                &reader,
                &tree,
                "",
                history::Depth::Files,
                MAX_FILES,
            )?)
        })
        .await
        .map_err(|e| Error::Task(e.to_string()))??
    };
    let (entries, truncated) = listed;
    let mut written = Written::default();
    if truncated {
        written.skipped.push(SkippedFile {
            path: String::new(),
            reason: format!(
                "the commit has more than {MAX_FILES} files; the rest are not published"
            ),
        });
    }
    let mut jobs = Vec::new();
    for entry in entries {
        match (entry.kind, entry.mode) {
            (history::EntryKind::Blob, 0o100644 | 0o100755) => {
                let key = artifact.version_file(version, &entry.path);
                if validate_key(&key).is_err() || entry.path.contains('\u{fffd}') {
                    written.skipped.push(SkippedFile {
                        path: entry.path,
                        reason: "the path cannot be a key of the bucket".into(),
                    });
                    continue;
                }
                jobs.push(Job {
                    path: entry.path,
                    id: entry.id,
                    size: entry.size.unwrap_or(0),
                });
            }
            (history::EntryKind::Blob, _) => written.skipped.push(SkippedFile {
                path: entry.path,
                reason: "a symbolic link".into(),
            }),
            (history::EntryKind::Commit, _) => written.skipped.push(SkippedFile {
                path: entry.path,
                reason: "a submodule".into(),
            }),
            (history::EntryKind::Tree, _) => {}
        }
    }
    let results: Vec<std::result::Result<ManifestFile, SkippedFile>> =
        futures_util::stream::iter(jobs)
            .map(|job| write_one(bucket, artifact, repo, db, version, job))
            .buffered(CONCURRENT_WRITES)
            .try_collect()
            .await?;
    for r in results {
        match r {
            Ok(f) => written.files.push(f),
            Err(s) => written.skipped.push(s),
        }
    }
    Ok(written)
}

/// Write one file: its blob's bytes, or the LFS object it points at by a copy in the bucket.
async fn write_one(
    bucket: &Arc<dyn Bucket>,
    artifact: &ArtifactKeys,
    repo: &RepoKeys,
    db: &ObjectDb,
    version: u64,
    job: Job,
) -> Result<std::result::Result<ManifestFile, SkippedFile>> {
    let key = artifact.version_file(version, &job.path);
    let (id, db2) = (job.id, db.clone());
    let data = tokio::task::spawn_blocking(move || -> Result<Vec<u8>> {
        let mut buf = Vec::new();
        db2.reader().read(&id, &mut buf)?;
        Ok(buf)
    })
    .await
    .map_err(|e| Error::Task(e.to_string()))??;
    if job.size <= lfs::MAX_POINTER_SIZE as u64 {
        if let Some(pointer) = lfs::Pointer::parse(&data) {
            let oid = pointer.oid.to_string();
            return match bucket
                .copy(&repo.lfs_object(&oid), &key, PutMode::Overwrite)
                .await
            {
                Ok(_) => Ok(Ok(ManifestFile {
                    path: job.path,
                    size: pointer.size,
                    git_oid: job.id.to_string(),
                    lfs_oid: Some(oid),
                })),
                Err(e) if e.is_not_found() => Ok(Err(SkippedFile {
                    path: job.path,
                    reason: format!("its Git LFS object {oid} was never uploaded"),
                })),
                Err(e) => Err(e.into()),
            };
        }
    }
    let size = data.len() as u64;
    bucket
        .put(&key, Bytes::from(data), PutMode::Overwrite)
        .await?;
    Ok(Ok(ManifestFile {
        path: job.path,
        size,
        git_oid: job.id.to_string(),
        lfs_oid: None,
    }))
}

/// Rewrite the manifest as complete, with what was written.
pub async fn complete(
    bucket: &dyn Bucket,
    artifact: &ArtifactKeys,
    mut manifest: Manifest,
    written: Written,
) -> Result<Manifest> {
    manifest.complete = true;
    manifest.file_count = written.files.len();
    manifest.files = if written.files.len() <= MAX_LISTED_FILES {
        written.files
    } else {
        Vec::new()
    };
    manifest.skipped = written.skipped;
    bucket
        .put(
            &artifact.version_manifest(manifest.version),
            Bytes::from(manifest.to_json()),
            PutMode::Overwrite,
        )
        .await?;
    Ok(manifest)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::manifest::{GitOrigin, PUBLISHER};
    use objectstore::MemoryBucket;

    fn manifest(version: u64, commit: &str, seq: u64) -> Manifest {
        Manifest {
            version,
            complete: false,
            created: 0,
            git: GitOrigin {
                published_by: PUBLISHER.into(),
                commit: commit.into(),
                branch: "main".into(),
                event_seq: seq,
            },
            files: vec![],
            file_count: 0,
            skipped: vec![],
        }
    }

    #[tokio::test]
    async fn numbers_are_taken_once_and_recognised_on_retry() {
        let bucket = MemoryBucket::new();
        let artifact = ArtifactKeys::new("", "ws", "a");
        assert_eq!(next_version(&bucket, &artifact).await.unwrap(), 1);
        bucket
            .put(
                &artifact.version_file(4, "x.txt"),
                Bytes::from_static(b"x"),
                PutMode::Create,
            )
            .await
            .unwrap();
        bucket
            .put(
                &artifact.repo().packed_refs(),
                Bytes::new(),
                PutMode::Create,
            )
            .await
            .unwrap();
        assert_eq!(next_version(&bucket, &artifact).await.unwrap(), 5);
        let c = "0123456789abcdef0123456789abcdef01234567";
        assert!(reserve(&bucket, &artifact, &manifest(5, c, 2))
            .await
            .unwrap());
        assert_eq!(next_version(&bucket, &artifact).await.unwrap(), 6);
        // The same publish again (after a crash): still ours.
        assert!(reserve(&bucket, &artifact, &manifest(5, c, 2))
            .await
            .unwrap());
        // Another event, or a version the service wrote: not ours.
        assert!(!reserve(&bucket, &artifact, &manifest(5, c, 3))
            .await
            .unwrap());
        bucket
            .put(
                &artifact.version_manifest(6),
                Bytes::from_static(b"{}"),
                PutMode::Create,
            )
            .await
            .unwrap();
        assert!(!reserve(&bucket, &artifact, &manifest(6, c, 2))
            .await
            .unwrap());
    }
}
