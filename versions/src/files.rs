//! A version's files, as the artifact service stored them: what `enable_git`'s import and
//! `commit_version` commit.

use objectstore::bucket::Bucket;
use objectstore::layout::ArtifactKeys;

use crate::Result;

/// A file of a version: its path inside `v{N}/` and its size.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VersionFile {
    /// The path.
    pub path: String,
    /// The size in bytes.
    pub size: u64,
}

/// The newest version that has files; `None` when there is none.
pub async fn newest_version(bucket: &dyn Bucket, artifact: &ArtifactKeys) -> Result<Option<u64>> {
    Ok(bucket
        .list(&artifact.versions_prefix())
        .await?
        .iter()
        .filter_map(|m| artifact.parse_version_file(&m.key))
        .filter(|(_, path)| !path.is_empty() && !path.ends_with('/'))
        .map(|(v, _)| v)
        .max())
}

/// The files of version `version`, in key order (empty when it has none).
pub async fn version_files(
    bucket: &dyn Bucket,
    artifact: &ArtifactKeys,
    version: u64,
) -> Result<Vec<VersionFile>> {
    Ok(bucket
        .list(&artifact.version_dir(version))
        .await?
        .iter()
        .filter_map(|m| {
            let (v, path) = artifact.parse_version_file(&m.key)?;
            (v == version && !path.is_empty() && !path.ends_with('/')).then(|| VersionFile {
                path: path.to_owned(),
                size: m.size,
            })
        })
        .collect())
}

/// The manifest of version `version` as stored, if there is one.
pub async fn version_manifest(
    bucket: &dyn Bucket,
    artifact: &ArtifactKeys,
    version: u64,
) -> Result<Option<bytes::Bytes>> {
    match bucket.get(&artifact.version_manifest(version)).await {
        Ok(got) => Ok(Some(got.data)),
        Err(e) if e.is_not_found() => Ok(None),
        Err(e) => Err(e.into()),
    }
}
