//! Clones served by the bucket: git bundles that maintenance keeps of each repository, and
//! the protocol v2 `bundle-uri` command that lists them (`gitprotocol-v2`, "bundle-uri";
//! `git help bundle-uri`).
//!
//! A client with `transfer.bundleURI` (clone) or `fetch.bundleURI` asks for the list,
//! downloads the bundles (on S3 straight from the bucket by presigned URL, on the filesystem
//! from this server, `GET {clone URL}/bundles/{file}`), unbundles them and then fetches only
//! what is newer, with the bundles' refs as `have`s. A replica's cost of such a clone is the
//! list and a small pack, whatever the repository's size.
//!
//! **Policy.** Maintenance ([`refresh`]) keeps a chain: a *base* bundle of every branch and
//! tag (and `HEAD`), then *incremental* bundles of the refs that changed since, each listing
//! the earlier bundles' commits as prerequisites. Each carries a creation token (increasing),
//! so clients take them with `bundle.heuristic=creationToken`. The chain is rebuilt from a
//! new base when it would pass [`MAX_CHAIN`] bundles, or when any bundle is *stale*: one of
//! its refs names something the current refs no longer reach (a force push, a deleted
//! branch). A stale bundle is never listed: the `bundle-uri` answer ([`crate::bundle_list::answer`]) lists only
//! the chain up to its first stale bundle (or one whose file is gone), checked against the
//! refs of the moment, so a deleted branch's objects never ship in a bundle (the same rule as
//! a clone's), and a client whose bundle went away or failed falls back to a plain fetch.
//! The answer itself is [`crate::bundle_list`]'s (it needs the server's signing key and
//! caches; this module, run by maintenance, does not).

use std::path::Path;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use bytes::Bytes;
use gix_hash::ObjectId;
use http_body_util::BodyExt;
use objectstore::bucket::PutMode;
use objectstore::odb::ObjectDb;
use refs::Snapshot;
use serde::{Deserialize, Serialize};
use tokio::io::AsyncWriteExt;

use crate::fetch::{write_bundle_pack, Output, Source};
use crate::repo::Repo;

/// Bundles in a chain (the base and its incremental bundles) before it is rebuilt whole.
pub const MAX_CHAIN: usize = 4;

/// How long a bundle's URL is good.
pub const URI_TTL: Duration = Duration::from_secs(300);

/// Commits walked at most when maintenance checks a bundle's refs against the refs.
const MAX_WALK: usize = 5_000_000;

/// The largest bundle list read.
const MAX_LIST_BYTES: usize = 1 << 20;

/// What maintenance keeps.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct BundleList {
    /// The chain, oldest (the base) first.
    pub bundles: Vec<StoredBundle>,
}

/// One bundle of the chain.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StoredBundle {
    /// Its file under `bundles/`.
    pub file: String,
    /// Its creation token: larger for later bundles.
    pub creation_token: u64,
    /// The refs it carries, with the objects they name (hex).
    pub refs: Vec<(String, String)>,
    /// The commits its receiver must have (from the bundles before it).
    pub prerequisites: Vec<String>,
    /// Its size in bytes.
    pub size: u64,
}

impl StoredBundle {
    fn tips(&self) -> impl Iterator<Item = ObjectId> + '_ {
        self.refs
            .iter()
            .filter_map(|(_, id)| ObjectId::from_hex(id.as_bytes()).ok())
    }
}

/// Why the bundles could not be read or kept.
#[derive(Debug, thiserror::Error)]
pub enum BundleUriError {
    /// The bucket failed.
    #[error(transparent)]
    Bucket(#[from] objectstore::bucket::Error),
    /// The objects could not be read.
    #[error(transparent)]
    Objects(#[from] objectstore::odb::Error),
    /// A bundle's header or plan failed.
    #[error(transparent)]
    History(#[from] history::Error),
    /// The local file failed.
    #[error(transparent)]
    Io(#[from] std::io::Error),
    /// The pack of a bundle failed.
    #[error("writing a bundle failed: {0}")]
    Pack(String),
}

/// The list maintenance keeps (empty when there is none, or it cannot be read).
pub async fn load(repo: &Repo) -> Result<BundleList, BundleUriError> {
    let key = repo.keys.bundle_list();
    match repo.storage().bucket.get(&key).await {
        Ok(got) if got.data.len() <= MAX_LIST_BYTES => {
            Ok(serde_json::from_slice(&got.data).unwrap_or_else(|e| {
                tracing::warn!(repo = %repo.id, error = %e, "the bundle list is unreadable: ignored");
                BundleList::default()
            }))
        }
        Ok(_) => Ok(BundleList::default()),
        Err(e) if e.is_not_found() => Ok(BundleList::default()),
        Err(e) => Err(e.into()),
    }
}

/// How many bundles of `list`, from the base on, are still derived from what the refs of
/// `snapshot` reach: a bundle's ref must name a current ref's object, or a commit that
/// `reaches` says the refs reach.
pub fn fresh_prefix(
    list: &BundleList,
    snapshot: &Snapshot,
    mut reaches: impl FnMut(&[ObjectId]) -> bool,
) -> usize {
    let current: std::collections::HashSet<ObjectId> = snapshot
        .refs
        .values()
        .flat_map(|v| std::iter::once(v.target).chain(v.peeled))
        .collect();
    list.bundles
        .iter()
        .take_while(|b| {
            let others: Vec<ObjectId> = b.tips().filter(|id| !current.contains(id)).collect();
            b.tips().count() == b.refs.len() && (others.is_empty() || reaches(&others))
        })
        .count()
}

fn now_secs() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

/// How often the roll-ups after pushes bring the bundles up to the refs (a full maintenance
/// run always does): a base bundle costs a pack of the whole repository.
pub const ROLL_UP_INTERVAL: Duration = Duration::from_secs(3600);

/// Whether a roll-up should refresh the bundles: none yet, or the newest is older than
/// [`ROLL_UP_INTERVAL`].
pub async fn due(repo: &Repo) -> Result<bool, BundleUriError> {
    let list = load(repo).await?;
    let newest = list.bundles.iter().map(|b| b.creation_token).max();
    Ok(newest.is_none_or(|t| t + ROLL_UP_INTERVAL.as_secs() <= now_secs()))
}

/// What [`refresh`] did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refreshed {
    /// Nothing to bundle (no refs), or the chain is current.
    Unchanged,
    /// A new base bundle replaced the chain.
    Base,
    /// An incremental bundle was added to the chain.
    Incremental,
}

/// Bring the bundles of `repo` up to its refs (see the module's policy). `db` holds every
/// object the refs of `snapshot` reach; bundle files are written in `staging` first.
pub async fn refresh(
    repo: &Repo,
    db: &ObjectDb,
    snapshot: &Snapshot,
    staging: &Path,
) -> Result<Refreshed, BundleUriError> {
    let all = history::bundle_refs(snapshot, None)?;
    if all.is_empty() {
        return Ok(Refreshed::Unchanged);
    }
    let old = load(repo).await?;
    let fresh = {
        let (db, snapshot, old) = (db.clone(), snapshot.clone(), old.clone());
        tokio::task::spawn_blocking(move || {
            let reader = db.reader();
            let roots: Vec<ObjectId> = snapshot.refs.values().map(|v| v.target).collect();
            fresh_prefix(&old, &snapshot, |ids| {
                objectstore::odb::walk::all_reachable(&reader, &roots, ids, MAX_WALK)
                    .unwrap_or(false)
            })
        })
        .await
        .map_err(|e| BundleUriError::Pack(e.to_string()))?
    };
    let fresh = stored_prefix(repo, &old.bundles[..fresh]).await?;
    let covered: std::collections::HashSet<(String, String)> = old.bundles[..fresh]
        .iter()
        .flat_map(|b| b.refs.iter().cloned())
        .collect();
    let changed: Vec<(String, ObjectId)> = all
        .iter()
        .filter(|(name, id)| !covered.contains(&(name.clone(), id.to_string())))
        .cloned()
        .collect();
    let token = old
        .bundles
        .iter()
        .map(|b| b.creation_token + 1)
        .max()
        .unwrap_or(0)
        .max(now_secs());
    let (mut chain, plan, kind) = if fresh == old.bundles.len() && fresh > 0 && fresh < MAX_CHAIN {
        if changed.is_empty() {
            return Ok(Refreshed::Unchanged);
        }
        let mut prerequisites: Vec<ObjectId> = old.bundles.iter().flat_map(|b| b.tips()).collect();
        prerequisites.sort();
        prerequisites.dedup();
        let commits = commits_only(db, prerequisites).await?;
        let plan = history::BundlePlan {
            refs: changed,
            prerequisites: commits,
        };
        (old.bundles.clone(), plan, Refreshed::Incremental)
    } else {
        let plan = history::BundlePlan {
            refs: all,
            prerequisites: Vec::new(),
        };
        (Vec::new(), plan, Refreshed::Base)
    };
    let label = match kind {
        Refreshed::Base => "base",
        _ => "incremental",
    };
    let file = format!("{token}-{label}.bundle");
    let path = staging.join(format!("bundle-{}-{file}", std::process::id()));
    let size = write_bundle(db, snapshot, &plan, &path).await;
    let stored = match size {
        Ok(size) => repo
            .storage()
            .bucket
            .put_file(&repo.keys.bundle_file(&file), &path, PutMode::Create)
            .await
            .map(|_| size),
        Err(e) => {
            let _ = tokio::fs::remove_file(&path).await;
            return Err(e);
        }
    };
    let _ = tokio::fs::remove_file(&path).await;
    let size = stored?;
    chain.push(StoredBundle {
        file,
        creation_token: token,
        refs: plan
            .refs
            .iter()
            .map(|(n, id)| (n.clone(), id.to_string()))
            .collect(),
        prerequisites: plan.prerequisites.iter().map(ToString::to_string).collect(),
        size,
    });
    let list = BundleList { bundles: chain };
    let body = serde_json::to_vec(&list).map_err(std::io::Error::other)?;
    let bucket = &repo.storage().bucket;
    bucket
        .put(
            &repo.keys.bundle_list(),
            Bytes::from(body),
            PutMode::Overwrite,
        )
        .await?;
    remove_unlisted(repo, &list).await?;
    tracing::info!(repo = %repo.id, kind = label, bundles = list.bundles.len(), bytes = size, "bundles refreshed");
    Ok(kind)
}

/// The commits among `ids` (a tag object is not a prerequisite).
async fn commits_only(db: &ObjectDb, ids: Vec<ObjectId>) -> Result<Vec<ObjectId>, BundleUriError> {
    let db = db.clone();
    tokio::task::spawn_blocking(move || {
        let reader = db.reader();
        let mut out = Vec::new();
        for id in ids {
            if reader.kind(&id)? == Some(gix_object::Kind::Commit) {
                out.push(id);
            }
        }
        Ok::<_, BundleUriError>(out)
    })
    .await
    .map_err(|e| BundleUriError::Pack(e.to_string()))?
}

/// Delete the bundle files no list names (a replaced chain's, a run that died midway).
async fn remove_unlisted(repo: &Repo, list: &BundleList) -> Result<(), BundleUriError> {
    let bucket = &repo.storage().bucket;
    let listed: std::collections::HashSet<String> = list
        .bundles
        .iter()
        .map(|b| repo.keys.bundle_file(&b.file))
        .collect();
    let keep = repo.keys.bundle_list();
    let stale: Vec<String> = bucket
        .list(&repo.keys.bundles_dir())
        .await?
        .into_iter()
        .map(|m| m.key)
        .filter(|k| *k != keep && !listed.contains(k))
        .collect();
    if !stale.is_empty() {
        bucket.delete_many(&stale).await?;
    }
    Ok(())
}

/// Write the bundle of `plan` to `path` with the code that answers a fetch (header, then
/// the pack streamed); its size.
async fn write_bundle(
    db: &ObjectDb,
    snapshot: &Snapshot,
    plan: &history::BundlePlan,
    path: &Path,
) -> Result<u64, BundleUriError> {
    let header = {
        let (db, plan) = (db.clone(), plan.clone());
        tokio::task::spawn_blocking(move || {
            let mut header = Vec::new();
            history::write_bundle_header(&db.reader(), &plan, &mut header)?;
            Ok::<_, history::Error>(header)
        })
        .await
        .map_err(|e| BundleUriError::Pack(e.to_string()))??
    };
    let (writer, mut body) = crate::body::channel();
    let source = Source {
        snapshot: snapshot.clone(),
        db: db.clone(),
        pack_uris: Vec::new(),
        answers: None,
    };
    let (wants, haves) = (plan.wants(), plan.prerequisites.clone());
    let producer = tokio::task::spawn_blocking(move || {
        let out = Output::new(writer);
        let result = out
            .write_raw(&header)
            .map_err(crate::fetch::Error::from)
            .and_then(|()| write_bundle_pack(&source, wants, haves, &out));
        if let Err(e) = &result {
            out.into_writer().abort(&e.to_string());
        }
        result.map_err(|e| e.to_string())
    });
    let mut file = tokio::fs::File::create(path).await?;
    let mut size = 0u64;
    while let Some(frame) = body.frame().await {
        let frame = frame.map_err(|e| BundleUriError::Pack(e.to_string()))?;
        if let Ok(data) = frame.into_data() {
            size += data.len() as u64;
            file.write_all(&data).await?;
        }
    }
    file.flush().await?;
    file.sync_all().await?;
    producer
        .await
        .map_err(|e| BundleUriError::Pack(e.to_string()))?
        .map_err(BundleUriError::Pack)?;
    Ok(size)
}

/// How many of `bundles`, from the first on, have their file in the bucket (looked up at
/// once).
pub(crate) async fn stored_prefix(
    repo: &Repo,
    bundles: &[StoredBundle],
) -> Result<usize, BundleUriError> {
    let bucket = &repo.storage().bucket;
    let keys: Vec<String> = bundles
        .iter()
        .map(|b| repo.keys.bundle_file(&b.file))
        .collect();
    let found = futures_util::future::join_all(keys.iter().map(|k| bucket.head(k))).await;
    let mut n = 0;
    for result in found {
        match result {
            Ok(_) => n += 1,
            Err(e) if e.is_not_found() => break,
            Err(e) => return Err(e.into()),
        }
    }
    Ok(n)
}

/// What a bundle file's URL token is bound to.
pub fn file_claim(file: &str) -> String {
    format!("bundle:{file}")
}

/// Whether `file` is a name maintenance gives bundle files.
pub fn valid_file(file: &str) -> bool {
    file.len() <= 64
        && file.ends_with(".bundle")
        && file
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-' || b == b'.')
        && !file.starts_with('.')
}

#[cfg(test)]
mod tests {
    use super::*;

    fn id(n: u8) -> ObjectId {
        ObjectId::from_hex(format!("{n:02x}").repeat(20).as_bytes()).unwrap()
    }

    fn bundle(refs: &[(&str, ObjectId)]) -> StoredBundle {
        StoredBundle {
            file: "1-base.bundle".into(),
            creation_token: 1,
            refs: refs
                .iter()
                .map(|(n, i)| ((*n).to_owned(), i.to_string()))
                .collect(),
            prerequisites: Vec::new(),
            size: 1,
        }
    }

    #[test]
    fn only_the_chain_up_to_a_stale_bundle_is_fresh() {
        let mut snapshot = Snapshot::default();
        snapshot.refs.insert(
            "refs/heads/main".into(),
            refs::RefValue {
                target: id(3),
                peeled: None,
            },
        );
        let list = BundleList {
            bundles: vec![
                bundle(&[("refs/heads/main", id(1))]),
                bundle(&[("refs/heads/main", id(2))]),
                bundle(&[("refs/heads/gone", id(9))]),
                bundle(&[("refs/heads/main", id(3))]),
            ],
        };
        // 1 and 2 are ancestors of 3; 9 is not reachable (a deleted branch).
        let reach = |ids: &[ObjectId]| ids.iter().all(|i| *i == id(1) || *i == id(2));
        assert_eq!(fresh_prefix(&list, &snapshot, reach), 2);
        let bad = BundleList {
            bundles: vec![bundle(&[("refs/heads/main", id(9))])],
        };
        assert_eq!(fresh_prefix(&bad, &snapshot, reach), 0);
    }

    #[test]
    fn file_names() {
        assert!(valid_file("1733550000-base.bundle"));
        assert!(!valid_file("../list.json"));
        assert!(!valid_file("list.json"));
        assert!(!valid_file(".x.bundle"));
        assert!(!valid_file("A.bundle"));
    }
}
