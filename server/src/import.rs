//! Importing an artifact's newest version (`v{N}/` files written by the artifact service
//! before git was enabled) as the first commit of a branch.
//!
//! Files above a size threshold become Git LFS objects without leaving the bucket: each is read
//! once through SHA-256 and copied inside the bucket to its LFS key; the commit holds a pointer
//! for it and a `.gitattributes` that tracks it. The other files are downloaded to local disk
//! (async), written into a pack as blobs, trees and a commit and indexed (blocking), then
//! landed as every writer's objects are ([`crate::landing::land`]).

use std::path::PathBuf;

use gix_hash::ObjectId;
use objectstore::odb::build::{PackBuilder, TreeBuilder};
use objectstore::odb::index::{self, Checks, Indexed, Limits};
use refs::RefUpdate;

use crate::app::App;
use crate::landing::{index_checks, land, Landing, Refused, Rejection};
use crate::placement::{place, InBucket, Placed};
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
    /// Placing a file in Git LFS failed.
    #[error(transparent)]
    Placement(#[from] crate::placement::PlacementError),
    /// The version's files cannot be committed as they are.
    #[error("the version cannot be committed: {0}")]
    Invalid(String),
    /// Listing the version failed.
    #[error(transparent)]
    Versions(#[from] versions::Error),
    /// Storing the commit failed (the landing's reason).
    #[error("storing the commit failed: {0}")]
    Landing(String),
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
    /// The new commit (the parent, when nothing changed).
    pub head: Option<ObjectId>,
    /// The files equal the parent's: no commit was made.
    pub unchanged: bool,
}

/// Where the content of a file of the new commit comes from.
enum Content {
    /// A local copy.
    File(PathBuf),
    /// Bytes made here (a pointer, `.gitattributes`).
    Inline(Vec<u8>),
}

/// The largest `.gitattributes` of a version read (it is parsed in memory).
const MAX_ATTRIBUTES: u64 = 1 << 20;

/// What to commit: the files of one version, on a branch.
#[derive(Debug, Clone)]
pub struct VersionCommit {
    /// The branch (short name).
    pub branch: String,
    /// The version.
    pub version: u64,
    /// The branch's commit now (`None`: the branch is created).
    pub parent: Option<ObjectId>,
    /// The commit message.
    pub message: String,
    /// What the push event records as its cause.
    pub source: events::log::Source,
    /// Files larger than this become Git LFS objects.
    pub lfs_threshold: u64,
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
    let Some(version) = versions::files::newest_version(storage.bucket.as_ref(), &artifact).await?
    else {
        return Ok(Imported::default());
    };
    let message = format!(
        "Import artifact {} version v{version}\n\nThe files of version v{version}, as they were when git was enabled.\n",
        repo.id
    );
    commit_version_files(
        app,
        repo,
        VersionCommit {
            branch: branch.to_owned(),
            version,
            parent: None,
            message,
            source: events::log::Source::Import,
            lfs_threshold,
        },
    )
    .await
}

/// Commit the files of one version as the whole tree of a new commit on a branch (whose
/// parent is the branch's commit now). Files the version's own `.gitattributes` sends to LFS,
/// and files above the threshold, become LFS objects; a `.gitattributes` line is added for the
/// latter. When the tree equals the parent's, no commit is made: the answer names the parent
/// and `unchanged` is set.
pub async fn commit_version_files(
    app: &App,
    repo: &Repo,
    what: VersionCommit,
) -> Result<Imported, ImportError> {
    let storage = repo.storage();
    let artifact = storage.artifact_keys(&repo.id);
    let version = what.version;
    let files = versions::files::version_files(storage.bucket.as_ref(), &artifact, version).await?;
    if files.is_empty() {
        return Ok(Imported::default());
    }
    std::fs::create_dir_all(&app.config.staging)?;
    let download = tempfile::Builder::new()
        .prefix("import-")
        .tempdir_in(&app.config.staging)?;
    let Gathered {
        local,
        lfs_files,
        lfs_bytes,
        generated_attributes,
    } = gather(app, repo, &what, files, download.path()).await?;
    if lfs_bytes > 0 {
        crate::usage::account_lfs(repo, lfs_bytes as i64).await;
    }
    let object_hash = repo.snapshot().await?.object_hash;
    let db = repo.fresh_objects(&app.cache, object_hash).await?;
    let staging = app.config.staging.clone();
    let budget = app.budget.clone();
    let limits = app.pack_limits();
    let repo_id = repo.id.clone();
    let (parent, message) = (what.parent, what.message.clone());
    let reader_db = db.clone();
    let checks = index_checks(app);
    let built = tokio::task::spawn_blocking(move || {
        build(
            &local, &message, parent, &reader_db, &staging, &limits, &budget, checks, &repo_id,
        )
    })
    .await
    .map_err(|e| ImportError::Task(e.to_string()))??;
    drop(download);
    let count = built.count.saturating_sub(generated_attributes);
    let Some(indexed) = built.indexed else {
        return Ok(Imported {
            version: Some(version),
            files: count,
            lfs_files,
            head: Some(built.head),
            unchanged: true,
        });
    };
    let head = built.head;
    let landing = Landing {
        pack: Some(indexed),
        updates: vec![RefUpdate {
            name: format!("refs/heads/{}", what.branch),
            old: what.parent.unwrap_or_else(|| db.null_id()),
            new: head,
            peeled: None,
        }],
        atomic: true,
        origin: events::log::EventMeta {
            pusher: None,
            push_options: Vec::new(),
            source: what.source,
            pull_request: None,
            upstream: None,
        },
        seen: None,
        policy: None,
    };
    match land(app, repo, db, landing).await.single() {
        Ok(()) => {}
        Err((Rejection::Ref(refusal), _)) => return Err(ImportError::Refused(refusal)),
        Err((_, Some(Refused::Objects(reason)))) => return Err(ImportError::Invalid(reason)),
        Err((rejection, refused)) => {
            let reason = refused.map_or_else(|| rejection.to_string(), |r| r.to_string());
            return Err(ImportError::Landing(reason));
        }
    }
    Ok(Imported {
        version: Some(version),
        files: count,
        lfs_files,
        head: Some(head),
        unchanged: false,
    })
}

/// The files of a version, ready to be written: local copies, and pointers for those stored
/// in Git LFS.
struct Gathered {
    local: Vec<(String, Content)>,
    lfs_files: usize,
    /// The bytes of the files placed in Git LFS.
    lfs_bytes: u64,
    /// 1 when the `.gitattributes` was written only for LFS (not one of the artifact's files).
    generated_attributes: usize,
}

/// Place each file of the version ([`crate::placement`]): to Git LFS without leaving the
/// bucket, or downloaded into `download`; a `.gitattributes` line for each file only its size
/// sent to LFS.
async fn gather(
    app: &App,
    repo: &Repo,
    what: &VersionCommit,
    files: Vec<versions::files::VersionFile>,
    download: &std::path::Path,
) -> Result<Gathered, ImportError> {
    let storage = repo.storage();
    let artifact = storage.artifact_keys(&repo.id);
    let version = what.version;
    let attributes_file = files.iter().find(|f| f.path == ".gitattributes");
    if let Some(f) = attributes_file.filter(|f| f.size > MAX_ATTRIBUTES) {
        return Err(ImportError::Invalid(format!(
            "its .gitattributes has {} bytes, over the limit of {MAX_ATTRIBUTES}",
            f.size
        )));
    }
    let attributes: Option<Vec<u8>> = match attributes_file.is_some() {
        true => Some(
            storage
                .bucket
                .get(&artifact.version_file(version, ".gitattributes"))
                .await?
                .data
                .to_vec(),
        ),
        false => None,
    };
    let patterns = lfs::attributes::lfs_patterns(attributes.as_deref().unwrap_or_default());
    let store = lfs::Store::new(storage.bucket.clone(), repo.keys.clone(), app.config.lfs);
    let mut local: Vec<(String, Content)> = Vec::with_capacity(files.len() + 1);
    let mut added_patterns = Vec::new();
    let mut lfs_files = 0;
    let mut lfs_bytes = 0u64;
    let threshold = Some(what.lfs_threshold);
    for (n, file) in files.into_iter().enumerate() {
        if file.path == ".gitattributes" {
            continue;
        }
        let key = artifact.version_file(version, &file.path);
        let mut content = InBucket {
            key: key.clone(),
            size: file.size,
        };
        match place(&mut content, &file.path, &patterns, threshold, &store).await? {
            Placed::Lfs { pointer, by_size } => {
                if by_size {
                    added_patterns.push(lfs::attributes::exact_pattern(&file.path));
                }
                let bytes = pointer.encode().into_bytes();
                local.push((file.path, Content::Inline(bytes)));
                lfs_files += 1;
                lfs_bytes += pointer.size;
            }
            Placed::Blob => {
                let path = download.join(n.to_string());
                storage.bucket.get_to_file(&key, &path).await?;
                local.push((file.path, Content::File(path)));
            }
        }
    }
    let generated_attributes = usize::from(!added_patterns.is_empty() && attributes.is_none());
    if !added_patterns.is_empty() || attributes.is_some() {
        let text = lfs::attributes::with_lfs_lines(attributes.unwrap_or_default(), &added_patterns);
        local.push((".gitattributes".to_owned(), Content::Inline(text)));
    }
    Ok(Gathered {
        local,
        lfs_files,
        lfs_bytes,
        generated_attributes,
    })
}

/// A commit of files, written and indexed (none when its tree equals its parent's).
struct Built {
    indexed: Option<Indexed>,
    head: ObjectId,
    count: usize,
}

/// Write the files into a pack with their trees and one commit, and index it.
#[allow(clippy::too_many_arguments)]
fn build(
    files: &[(String, Content)],
    message: &str,
    parent: Option<ObjectId>,
    db: &objectstore::ObjectDb,
    staging: &std::path::Path,
    limits: &Limits,
    budget: &std::sync::Arc<objectstore::budget::MemoryBudget>,
    checks: Checks<'static>,
    repo: &crate::storage::RepoId,
) -> Result<Built, ImportError> {
    let mut pack = PackBuilder::new(staging, db.object_hash())?;
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
    if let Some(parent) = parent {
        if db.reader().commit(&parent)?.tree == root {
            return Ok(Built {
                indexed: None,
                head: parent,
                count,
            });
        }
    }
    let who = history::Person::now("artifact-git", "artifact-git@localhost");
    let parents: Vec<ObjectId> = parent.into_iter().collect();
    let head = history::write_commit(&mut pack, &root, &parents, &who, &who, message)
        .map_err(|e| ImportError::Invalid(e.to_string()))?;
    let (path, _guard) = pack.finish()?;
    let indexed = index::index_file(
        &path,
        staging,
        db.object_hash(),
        limits,
        budget,
        checks,
        &mut |_| Ok(None),
    )?;
    Ok(Built {
        indexed: Some(indexed),
        head,
        count,
    })
}
