//! Where repositories are stored: `--storage file://DIR` (or a plain path), and the layout
//! of a repository under the bucket.

use std::path::PathBuf;
use std::sync::Arc;

use objectstore::{Bucket, FsBucket};

/// A parsed `--storage` value.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StorageUrl {
    Dir(PathBuf),
    S3 { bucket: String, prefix: String },
}

impl std::str::FromStr for StorageUrl {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        if let Some(rest) = s.strip_prefix("s3://") {
            let (bucket, prefix) = rest.split_once('/').unwrap_or((rest, ""));
            if bucket.is_empty() {
                return Err("an s3:// storage URL needs a bucket name".into());
            }
            let prefix = prefix.trim_matches('/');
            let prefix = if prefix.is_empty() {
                String::new()
            } else {
                format!("{prefix}/")
            };
            return Ok(StorageUrl::S3 {
                bucket: bucket.to_owned(),
                prefix,
            });
        }
        let path = s.strip_prefix("file://").unwrap_or(s);
        if path.is_empty() {
            return Err("the storage directory is empty".into());
        }
        if s.contains("://") && !s.starts_with("file://") {
            return Err(format!(
                "unsupported storage URL {s:?}: use file://DIR or s3://BUCKET/PREFIX"
            ));
        }
        Ok(StorageUrl::Dir(PathBuf::from(path)))
    }
}

/// Per-repository settings kept beside the git files (`artifact-git.json`; stock git ignores
/// it).
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Settings {
    /// Anyone may clone and fetch (never push).
    #[serde(default)]
    pub public: bool,
}

/// An opened bucket and the key prefix all repositories live under.
#[derive(Debug, Clone)]
pub struct Storage {
    pub bucket: Arc<dyn Bucket>,
    /// Empty, or ending in `/`.
    pub prefix: String,
    /// Refs read on every request, kept parsed and revalidated by tag.
    pub refs_cache: Arc<refs::RefsCache>,
    /// Settings read on every request, kept the same way.
    pub settings_cache: Arc<objectstore::bucket::Revalidated<Settings>>,
    /// Push policies read by every landing, kept the same way.
    pub policy_cache: Arc<objectstore::bucket::Revalidated<crate::policy::PushPolicy>>,
}

impl Storage {
    /// The repositories under `prefix` (empty, or ending in `/`) of `bucket`.
    pub fn new(bucket: Arc<dyn Bucket>, prefix: String) -> Self {
        Storage {
            bucket,
            prefix,
            refs_cache: Default::default(),
            settings_cache: Default::default(),
            policy_cache: Default::default(),
        }
    }

    /// The storage at `url`, its calls counted and timed at `/metrics` by backend.
    pub async fn open(url: &StorageUrl, s3_path_style: bool) -> anyhow::Result<Self> {
        let mut storage = Self::open_uncounted(url, s3_path_style).await?;
        let backend = match url {
            StorageUrl::Dir(_) => "fs",
            StorageUrl::S3 { .. } => "s3",
        };
        storage.bucket = Arc::new(objectstore::bucket::MeteredBucket::new(
            storage.bucket,
            backend,
        ));
        Ok(storage)
    }

    async fn open_uncounted(url: &StorageUrl, s3_path_style: bool) -> anyhow::Result<Self> {
        match url {
            StorageUrl::Dir(dir) => {
                std::fs::create_dir_all(dir)?;
                Ok(Storage::new(
                    Arc::new(FsBucket::new(dir.clone())?),
                    String::new(),
                ))
            }
            #[cfg(not(feature = "s3"))]
            StorageUrl::S3 { .. } => {
                anyhow::bail!("this build has no S3 backend (built without the `s3` feature)")
            }
            #[cfg(feature = "s3")]
            StorageUrl::S3 { bucket, prefix } => {
                let mut options = objectstore::bucket::S3Options::new(bucket);
                options.path_style = s3_path_style;
                Ok(Storage::new(
                    Arc::new(objectstore::bucket::S3Bucket::new(options).await),
                    prefix.clone(),
                ))
            }
        }
    }

    /// The keys of the whole storage.
    pub fn keys(&self) -> objectstore::layout::StorageKeys {
        objectstore::layout::StorageKeys::new(&self.prefix)
    }

    /// The keys of an artifact (its versions and its git repository).
    pub fn artifact_keys(&self, id: &RepoId) -> objectstore::layout::ArtifactKeys {
        self.keys().artifact(&id.workspace, &id.alias)
    }
}

/// A repository's name: the artifact `{workspace}/{alias}`.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct RepoId {
    pub workspace: String,
    pub alias: String,
}

/// Workspace and alias names: letters, digits, `-`, `_` and `.`, not starting with `.`.
/// Nothing else (no `/`, `%`, `..`) can reach a bucket key.
pub fn valid_name(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= 128
        && !s.starts_with('.')
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"-_.".contains(&b))
}

impl std::str::FromStr for RepoId {
    type Err = String;

    /// Parse `workspace/alias`.
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let (workspace, alias) = s
            .split_once('/')
            .ok_or_else(|| format!("{s:?} is not of the form <workspace>/<alias>"))?;
        let alias = alias.strip_suffix(".git").unwrap_or(alias);
        if !valid_name(workspace) || !valid_name(alias) {
            return Err(format!(
                "invalid repository name {s:?}: workspace and alias may use letters, digits, '-', '_' and '.'"
            ));
        }
        Ok(RepoId {
            workspace: workspace.to_owned(),
            alias: alias.to_owned(),
        })
    }
}

impl std::fmt::Display for RepoId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}/{}", self.workspace, self.alias)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_storage_urls() {
        assert_eq!(
            "file://./data".parse(),
            Ok(StorageUrl::Dir("./data".into()))
        );
        assert_eq!("/tmp/x".parse(), Ok(StorageUrl::Dir("/tmp/x".into())));
        assert_eq!(
            "s3://b/some/prefix/".parse(),
            Ok(StorageUrl::S3 {
                bucket: "b".into(),
                prefix: "some/prefix/".into()
            })
        );
        assert!("ftp://x".parse::<StorageUrl>().is_err());
    }

    #[test]
    fn repo_names_cannot_escape() {
        assert!("ws/alias".parse::<RepoId>().is_ok());
        assert!("ws/alias.git"
            .parse::<RepoId>()
            .is_ok_and(|r| r.alias == "alias"));
        for bad in [
            "ws/..",
            "../x",
            "ws/a/b",
            "ws/%2e%2e",
            "ws/.hidden",
            "ws/",
            "/a",
            "ws/a b",
        ] {
            assert!(bad.parse::<RepoId>().is_err(), "{bad}");
        }
    }
}
