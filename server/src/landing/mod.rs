//! The one landing of every writer.
//!
//! A push, an API commit (`commit_files`, `restore`, `create_snapshot`), an import and a
//! version commit each end the same way: objects they wrote (an indexed pack, or none) and
//! the ref changes that need them. They hand both to [`land`], which alone
//!
//! 1. **verifies** (blocking): `.gitmodules`/`.gitattributes` blobs by git's fsck rules,
//!    every new tip connected to what the repository has, branches naming commits, annotated
//!    tags peeled; the repository's push policy is read meanwhile;
//! 2. keeps `refs/pull/` to pull requests, and applies the **push policy** ([`crate::policy`],
//!    [`policy`]) to each update;
//! 3. checks that Git LFS pointers among the new blobs name objects the store holds;
//! 4. **publishes** the pack (`.pack`, `.tips`, then `.idx`) and registers it in the cache;
//! 5. **records** the event and **commits** the refs by one compare-and-swap, moving the
//!    heads of the open pull requests whose branches move ([`pulls`]) with them;
//! 6. wakes the event dispatcher, points an unborn `HEAD` at the first branch created, and
//!    hints maintenance.
//!
//! It answers one typed outcome per ref update: applied, refused (with git's reason), unknown
//! (the bucket's answer to the refs write was lost) or a storage failure. A rule that must
//! hold for every writer is one call in [`land`], as the push policy is.

pub mod policy;
mod pulls;

use gix_hash::ObjectId;
use objectstore::fsck;
use objectstore::odb::index::{Checks, Indexed};
use objectstore::odb::{self, walk, ObjectDb, Reach};
use refs::{RefTransaction, RefUpdate, Refusal, Snapshot};

use crate::app::App;
use crate::repo::Repo;

/// What a writer hands over: its objects and the refs they should move.
#[derive(Debug)]
pub struct Landing {
    /// The new objects, indexed under the staging directory (`None`: the updates name
    /// objects the repository has, or delete refs).
    pub pack: Option<Indexed>,
    /// The ref changes, in the writer's order (`peeled` is filled in here).
    pub updates: Vec<RefUpdate>,
    /// All or nothing.
    pub atomic: bool,
    /// Who and why, as the push event records it.
    pub origin: events::log::EventMeta,
    /// The refs as the writer read them: the compare-and-swap tries them first.
    pub seen: Option<Snapshot>,
    /// The push policy as the writer read it when its request began (a push reads it while
    /// the pack arrives); `None`: the landing reads it.
    pub policy: Option<crate::policy::PushPolicy>,
}

/// Why one ref update was not applied. `Display` is what git shows after `[remote rejected]`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Rejection {
    /// The ref transaction refused it.
    #[error(transparent)]
    Ref(#[from] Refusal),
    /// The new value, or something it reaches, is in neither the pack nor the repository.
    #[error("missing necessary objects")]
    MissingObjects,
    /// Only tags may name something other than a commit.
    #[error("trying to write non-commit object {id} to {what} '{name}'")]
    NonCommit {
        /// The object.
        id: ObjectId,
        /// `branch` or `ref`.
        what: &'static str,
        /// The ref.
        name: String,
    },
    /// The objects were refused ([`Landed::refused`] says why); every update is.
    #[error("unpacker error")]
    Unpacker,
    /// The bucket or local disk failed before the refs moved: nothing changed.
    #[error("the push could not be stored; try again")]
    Storage,
    /// The repository's push policy refuses it (git shows the reason).
    #[error("{0}")]
    Policy(String),
    /// The repository was deleted while the write was on its way: nothing moved.
    #[error("the repository was deleted")]
    Deleted,
    /// The refs write failed after it may have taken effect.
    #[error("storage failed while committing; the outcome is unknown: fetch to see whether this ref moved")]
    Unknown,
}

/// Why a whole landing was refused before any ref moved.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Refused {
    /// What the writer sent breaks a rule: fsck, limits, LFS pointers to objects not stored.
    #[error("{0}")]
    Objects(String),
    /// The bucket or local disk failed; trying again may succeed.
    #[error("{0}")]
    Storage(String),
    /// The objects would pass the repository's hard limit ([`crate::quota`]).
    #[error("{0}")]
    Quota(String),
}

impl Refused {
    /// The refusal an object database error makes: the input's fault, or the storage's.
    pub fn from_odb(e: &odb::Error) -> Self {
        match e.is_storage() {
            true => Refused::Storage(format!("the repository cannot be read; try again ({e})")),
            false => Refused::Objects(e.to_string()),
        }
    }

    /// What each update is refused with.
    fn rejection(&self) -> Rejection {
        match self {
            Refused::Objects(_) | Refused::Quota(_) => Rejection::Unpacker,
            Refused::Storage(_) => Rejection::Storage,
        }
    }
}

/// What a landing did: one result per update, in the writer's order.
#[derive(Debug, Clone)]
pub struct Landed {
    /// Set when everything was refused at once (git shows it after `unpack`).
    pub refused: Option<Refused>,
    /// Per update.
    pub results: Vec<Result<(), Rejection>>,
    /// What the writer is told beside the results (the soft limit passed).
    pub warnings: Vec<String>,
}

impl Landed {
    /// Every one of `count` updates refused for `why`.
    pub fn refused(count: usize, why: Refused) -> Self {
        Landed {
            results: vec![Err(why.rejection()); count],
            refused: Some(why),
            warnings: Vec::new(),
        }
    }

    /// The result of a landing of one update.
    pub fn single(self) -> Result<(), (Rejection, Option<Refused>)> {
        match self.results.into_iter().next() {
            Some(Ok(())) => Ok(()),
            Some(Err(r)) => Err((r, self.refused)),
            None => Err((Rejection::Storage, self.refused)),
        }
    }
}

fn is_lfs_pointer(data: &[u8]) -> bool {
    lfs::Pointer::parse(data).is_some()
}

/// What every writer's objects are indexed with: git's fsck rules, and LFS pointers kept for
/// [`land`] to check that the store has their objects.
pub fn index_checks(app: &App) -> Checks<'static> {
    Checks {
        fsck: Some(app.config.fsck),
        keep_blob: app.config.lfs_check_pointers.then_some(&is_lfs_pointer),
    }
}

/// Land `landing` in `repo`, whose objects `db` holds (a pack list with every object the
/// refs the writer read name).
pub async fn land(app: &App, repo: &Repo, db: ObjectDb, landing: Landing) -> Landed {
    let Landing {
        pack,
        updates,
        atomic,
        origin,
        seen,
        policy: read_before,
    } = landing;
    let count = updates.len();
    if count == 0 {
        // Nothing moves: a pull request closed or reopened, recorded for its webhooks.
        if origin.pull_request.is_some() {
            commit(app, repo, &RefTransaction::default(), origin, seen, true).await;
        }
        return Landed {
            refused: None,
            results: Vec::new(),
            warnings: Vec::new(),
        };
    }
    // 1. Verify, and read the push policy meanwhile (no round trip of its own).
    let verify = {
        let db = db.clone();
        tokio::task::spawn_blocking(move || {
            let verified = verify(&db, pack.as_ref(), &updates);
            (pack, updates, verified)
        })
    };
    let read_policy = async {
        match read_before {
            Some(p) => Ok(p),
            None => repo.push_policy().await,
        }
    };
    // The workspace's limits and usage too (counted at most every 30 s).
    let workspace = app.workspaces.state(
        &app.storage,
        &repo.id.workspace,
        app.config.default_workspace_quota,
    );
    let (verified, push_policy, workspace) = tokio::join!(verify, read_policy, workspace);
    let push_policy = match push_policy {
        Ok(p) => p,
        Err(e) => {
            tracing::error!(repo = %repo.id, error = %e, "reading the push policy failed");
            let why = Refused::Storage("the push policy cannot be read; try again".into());
            return Landed::refused(count, why);
        }
    };
    let (pack, mut updates, verified) = match verified {
        Ok((pack, updates, Ok(v))) => (pack, updates, v),
        Ok((_, _, Err(e))) => {
            log_refusal(repo, &e);
            return Landed::refused(count, Refused::from_odb(&e));
        }
        Err(e) => {
            tracing::error!(repo = %repo.id, error = %e, "landing task failed");
            return Landed::refused(
                count,
                Refused::Storage("the write failed unexpectedly".into()),
            );
        }
    };
    let Verified {
        mut results,
        peeled,
        reach,
        all,
    } = verified;
    for (update, peeled) in updates.iter_mut().zip(peeled) {
        update.peeled = peeled;
    }
    // 2. Pull requests' heads are moved here only, and the push policy.
    if origin.source != events::log::Source::PullRequest {
        for (result, update) in results.iter_mut().zip(&updates) {
            if result.is_ok() && refs::is_pull_request_ref(&update.name) {
                *result = Err(Rejection::Policy("deny updating a hidden ref".into()));
            }
        }
    }
    if !push_policy.is_empty() {
        let applying: Vec<bool> = results.iter().map(Result::is_ok).collect();
        let head = seen
            .as_ref()
            .and_then(|s| s.head.as_deref().and_then(|h| s.get(h)));
        let (subject, ups) = (origin.pusher.clone(), updates.clone());
        let via_pull_request = origin.source == events::log::Source::PullRequest;
        let decided = tokio::task::spawn_blocking(move || {
            let writer = policy::Writer {
                subject: subject.as_deref(),
                via_pull_request,
                head,
            };
            policy::enforce(&push_policy, &all, &ups, &applying, &writer)
        })
        .await;
        match decided {
            Ok(decisions) => {
                for (result, decision) in results.iter_mut().zip(decisions) {
                    if let Some(violation) = decision {
                        *result = Err(Rejection::Policy(violation.to_string()));
                    }
                }
            }
            Err(e) => {
                tracing::error!(repo = %repo.id, error = %e, "the push policy check failed");
                return Landed::refused(
                    count,
                    Refused::Storage("the write failed unexpectedly".into()),
                );
            }
        }
    }
    // 3. LFS pointers name stored objects.
    if let Some(indexed) = &pack {
        if let Err(why) = check_lfs_pointers(app, repo, &indexed.kept_blobs).await {
            return Landed::refused(count, why);
        }
    }
    if atomic && results.iter().any(Result::is_err) {
        for r in results.iter_mut().filter(|r| r.is_ok()) {
            *r = Err(Rejection::Ref(Refusal::AtomicPushFailed));
        }
    }
    let applying: Vec<usize> = (0..count).filter(|i| results[*i].is_ok()).collect();
    if applying.is_empty() {
        return Landed {
            refused: None,
            results,
            warnings: Vec::new(),
        };
    }
    // 4. The repository's quota, against the usage the writer read (no read of its own).
    let added = added_usage(pack.as_ref());
    let mut warnings = Vec::new();
    if let Some(seen) = &seen {
        let quota = crate::quota::effective(seen.quota, app.config.default_quota);
        let bytes = match added {
            refs::UsageChange::Add { pack_bytes, .. } => pack_bytes.max(0) as u64,
            _ => 0,
        };
        match quota_verdict(repo, quota, seen.usage, bytes, &workspace) {
            crate::quota::Verdict::Fine => {}
            crate::quota::Verdict::Warn(w) => warnings.push(w),
            crate::quota::Verdict::Refuse(why) => {
                tracing::warn!(repo = %repo.id, reason = %why, "write refused by the quota");
                return Landed::refused(count, Refused::Quota(why));
            }
        }
    }
    // 5. Publish.
    if let Some(indexed) = &pack {
        if let Err(e) = publish(app, repo, &db, indexed, &reach).await {
            tracing::error!(repo = %repo.id, error = %e, "storing the pack failed");
            let why = Refused::Storage("storing the pack failed; try again".into());
            return Landed::refused(count, why);
        }
    }
    // 6. Record and commit, with the heads of the pull requests whose branches move.
    let mut tx = RefTransaction {
        updates: applying.iter().map(|i| updates[*i].clone()).collect(),
        atomic,
        announce: false,
        usage: added,
        quota: None,
    };
    let followers = pulls::followers(app, repo, seen.as_ref(), &tx.updates).await;
    tx.updates.extend(followers);
    let committed = commit(app, repo, &tx, origin, seen.clone(), false).await;
    for (i, result) in applying.iter().zip(committed) {
        results[*i] = result;
    }
    // 7. Afterwards.
    if let (true, refs::UsageChange::Add { pack_bytes, .. }) =
        (results.iter().any(Result::is_ok), added)
    {
        app.workspaces
            .add(&repo.id.workspace, pack_bytes.max(0) as u64);
    }
    repoint_unborn_head(repo, seen.as_ref(), &updates, &results).await;
    app.maintenance
        .after_push(repo.clone(), db.packs().len() + 1);
    Landed {
        refused: None,
        results,
        warnings,
    }
}

/// The verdict of the repository's limits and its workspace's (`workspace`: its limits and
/// usage as counted) on adding `bytes`.
pub fn quota_verdict(
    repo: &Repo,
    quota: refs::Quota,
    usage: refs::Usage,
    bytes: u64,
    workspace: &Result<(refs::Quota, refs::Usage), objectstore::bucket::Error>,
) -> crate::quota::Verdict {
    use crate::quota::{check, stricter, Verdict};
    let own = match check(quota, usage, bytes) {
        Verdict::Refuse(why) => Verdict::Refuse(format!("repository {why}")),
        other => other,
    };
    let ws = &repo.id.workspace;
    let shared = match workspace {
        Ok((quota, usage)) => match check(*quota, *usage, bytes) {
            Verdict::Refuse(why) => Verdict::Refuse(format!("workspace {ws} {why}")),
            Verdict::Warn(w) => Verdict::Warn(format!("workspace {ws}: {w}")),
            Verdict::Fine => Verdict::Fine,
        },
        Err(e) => {
            // The workspace's limits cannot be read: the repository's own still hold.
            tracing::warn!(repo = %repo.id, error = %e, "the workspace's quota could not be read");
            Verdict::Fine
        }
    };
    stricter(own, shared)
}

/// What the published pack adds to the repository's usage: its `.pack` and `.idx` files.
fn added_usage(pack: Option<&Indexed>) -> refs::UsageChange {
    let bytes: u64 = pack
        .and_then(Indexed::paths)
        .map(|(pack, idx)| {
            [pack, idx]
                .iter()
                .filter_map(|p| std::fs::metadata(p).ok())
                .map(|m| m.len())
                .sum()
        })
        .unwrap_or(0);
    match bytes {
        0 => refs::UsageChange::Keep,
        n => refs::UsageChange::Add {
            pack_bytes: n as i64,
            lfs_bytes: 0,
        },
    }
}

fn log_refusal(repo: &Repo, e: &odb::Error) {
    match e.is_storage() {
        true => tracing::error!(repo = %repo.id, error = %e, "reading the repository failed"),
        false => tracing::warn!(repo = %repo.id, error = %e, "write refused"),
    }
}

/// What [`verify`] found.
struct Verified {
    /// Per update: checked, or refused.
    results: Vec<Result<(), Rejection>>,
    /// Per update: what a new annotated tag peels to.
    peeled: Vec<Option<ObjectId>>,
    /// What the pack's `.tips` record may say.
    reach: Reach,
    /// The repository's objects with the new pack's.
    all: ObjectDb,
}

/// Step 1: the special blobs of the new pack, then each update. `Err` refuses everything.
fn verify(
    existing: &ObjectDb,
    pack: Option<&Indexed>,
    updates: &[RefUpdate],
) -> Result<Verified, odb::Error> {
    let incoming = match pack {
        Some(i) => i.open()?,
        None => None,
    };
    let all = match &incoming {
        Some(p) => {
            let mut packs = existing.packs().to_vec();
            packs.push(p.clone());
            existing.with_packs(packs)
        }
        None => existing.clone(),
    };
    let reader = all.reader();
    if let Some(indexed) = pack {
        check_special_blobs(&reader, indexed)?;
    }
    let mut connectivity = incoming
        .as_ref()
        .map(|p| walk::Connectivity::new(existing.with_packs(vec![p.clone()]), existing.clone()));
    let mut results = Vec::with_capacity(updates.len());
    let mut peeled = Vec::with_capacity(updates.len());
    let mut tips = Vec::new();
    for update in updates {
        match verify_update(existing, &reader, connectivity.as_mut(), update) {
            Ok(p) => {
                if !update.new.is_null() {
                    tips.push(update.new);
                }
                peeled.push(p);
                results.push(Ok(()));
            }
            Err(rejection) => {
                peeled.push(None);
                results.push(Err(rejection));
            }
        }
    }
    let reach = match &connectivity {
        Some(check) => check.reach(tips),
        None => Reach::Unknown,
    };
    Ok(Verified {
        results,
        peeled,
        reach,
        all,
    })
}

/// `.gitmodules` and `.gitattributes` blobs named by the new trees, by git's fsck rules.
fn check_special_blobs(reader: &odb::Reader<'_>, indexed: &Indexed) -> Result<(), odb::Error> {
    let mut buf = Vec::new();
    for (which, id) in &indexed.specials {
        let Some(kind) = reader.try_read(id, &mut buf)? else {
            continue;
        };
        fsck::check_special_blob(*which, kind, &buf)
            .map_err(|finding| odb::index::Refused::Fsck(fsck::ObjectError { id: *id, finding }))?;
    }
    Ok(())
}

/// One update: a valid name, a new value connected to what the repository has, a commit
/// unless it is a tag. The annotated tag's peeled value when it is one.
fn verify_update(
    existing: &ObjectDb,
    reader: &odb::Reader<'_>,
    connectivity: Option<&mut walk::Connectivity>,
    update: &RefUpdate,
) -> Result<Option<ObjectId>, Rejection> {
    refs::validate_ref_name(&update.name).map_err(|e| Rejection::Ref(Refusal::InvalidName(e)))?;
    if update.new.is_null() {
        return Ok(None);
    }
    let connected = match connectivity {
        Some(check) => check.check(update.new),
        None if existing.contains(&update.new) => Ok(()),
        None => Err(odb::Error::Missing(update.new)),
    };
    if let Err(e) = connected {
        tracing::warn!(r#ref = %update.name, error = %e, "update not connected");
        return Err(Rejection::MissingObjects);
    }
    let kind = reader
        .kind(&update.new)
        .map_err(|_| Rejection::MissingObjects)?;
    if !update.name.starts_with("refs/tags/") && kind != Some(gix_object::Kind::Commit) {
        return Err(Rejection::NonCommit {
            id: update.new,
            what: match update.name.starts_with("refs/heads/") {
                true => "branch",
                false => "ref",
            },
            name: update.name.clone(),
        });
    }
    match reader.peel(&update.new) {
        Ok((target, _)) if target != update.new => Ok(Some(target)),
        Ok(_) => Ok(None),
        Err(_) => Err(Rejection::MissingObjects),
    }
}

/// Step 2: every Git LFS pointer among `blobs` names an object the store holds, of its size
/// (uploaded by `git lfs` before a push, by the API before a commit).
async fn check_lfs_pointers(
    app: &App,
    repo: &Repo,
    blobs: &[(ObjectId, Vec<u8>)],
) -> Result<(), Refused> {
    match missing_lfs_objects(app, repo, blobs).await {
        Ok(missing) if missing.is_empty() => Ok(()),
        Ok(missing) => {
            crate::metrics::inc(crate::metrics::LFS_POINTERS_MISSING);
            let shown: Vec<&str> = missing.iter().take(10).map(String::as_str).collect();
            let more = missing.len().saturating_sub(shown.len());
            tracing::warn!(repo = %repo.id, missing = missing.len(), "write refused: LFS objects missing");
            Err(Refused::Objects(format!(
                "the push has Git LFS pointers to objects the server does not have: {}{} (upload them with git lfs push --all)",
                shown.join(", "),
                if more > 0 { format!(" and {more} more") } else { String::new() }
            )))
        }
        Err(e) => {
            tracing::error!(repo = %repo.id, error = %e, "checking LFS objects failed");
            Err(Refused::Storage(
                "the LFS objects could not be checked; try again".into(),
            ))
        }
    }
}

/// The LFS objects that pointers among `blobs` name and the store does not have.
async fn missing_lfs_objects(
    app: &App,
    repo: &Repo,
    blobs: &[(ObjectId, Vec<u8>)],
) -> Result<Vec<String>, lfs::StoreError> {
    use futures_util::StreamExt;
    let store = lfs::Store::new(
        app.storage.bucket.clone(),
        repo.keys.clone(),
        app.config.lfs,
    );
    let mut pointers: Vec<lfs::Pointer> = blobs
        .iter()
        .filter_map(|(_, data)| lfs::Pointer::parse(data))
        .collect();
    pointers.sort_by(|a, b| a.oid.cmp(&b.oid));
    pointers.dedup();
    let found: Vec<Result<Option<String>, lfs::StoreError>> = futures_util::stream::iter(pointers)
        .map(|p| {
            let store = &store;
            async move {
                let stored = store.stored_size(&p.oid).await?;
                Ok((stored != Some(p.size)).then(|| p.oid.to_string()))
            }
        })
        .buffered(16)
        .collect()
        .await;
    let mut missing = Vec::new();
    for f in found {
        if let Some(oid) = f? {
            missing.push(oid);
        }
    }
    Ok(missing)
}

/// Step 3: upload the pack and keep the uploaded files as this process's cached copy.
async fn publish(
    app: &App,
    repo: &Repo,
    db: &ObjectDb,
    indexed: &Indexed,
    reach: &Reach,
) -> Result<(), odb::Error> {
    indexed
        .publish(db.bucket().as_ref(), db.keys(), reach)
        .await?;
    if let Some(name) = &indexed.name {
        app.cache
            .add_published(db.bucket().as_ref(), &repo.keys, name, indexed.paths());
    }
    Ok(())
}

/// Step 4: the event recorded before the refs move (once a writer is told "done", it
/// exists), then the compare-and-swap; the dispatcher woken when something was recorded.
async fn commit(
    app: &App,
    repo: &Repo,
    tx: &RefTransaction,
    origin: events::log::EventMeta,
    seen: Option<Snapshot>,
    announce: bool,
) -> Vec<Result<(), Rejection>> {
    let announced;
    let tx = match announce {
        true => {
            announced = RefTransaction {
                announce: true,
                ..tx.clone()
            };
            &announced
        }
        false => tx,
    };
    let journal = events::log::Recorder::new(
        app.storage.bucket.clone(),
        &app.storage.keys(),
        &repo.id.workspace,
        &repo.id.alias,
        origin,
    );
    let outcome = repo.refs.commit_from(tx, Some(&journal), seen).await;
    if journal.recorded() {
        app.events.wake();
    }
    match outcome {
        Ok(results) => results
            .into_iter()
            .map(|r| r.map_err(Rejection::Ref))
            .collect(),
        Err(e) => {
            tracing::error!(repo = %repo.id, error = %e, "ref update failed");
            let rejection = match e {
                refs::Error::Unknown(_) => Rejection::Unknown,
                refs::Error::NotFound => Rejection::Deleted,
                _ => Rejection::Storage,
            };
            vec![Err(rejection); tx.updates.len()]
        }
    }
}

/// When `HEAD` names a branch that does not exist and this landing created branches, point
/// it at one of them (`main`, `master`, else the first), as git hosting does on a first push.
async fn repoint_unborn_head(
    repo: &Repo,
    before: Option<&Snapshot>,
    updates: &[RefUpdate],
    results: &[Result<(), Rejection>],
) {
    // A `HEAD` whose branch existed when the writer read the refs is not unborn.
    if before.is_some_and(|b| b.head.as_ref().is_some_and(|h| b.get(h).is_some())) {
        return;
    }
    let created: Vec<&str> = updates
        .iter()
        .zip(results)
        .filter(|(u, r)| r.is_ok() && !u.new.is_null() && u.name.starts_with("refs/heads/"))
        .map(|(u, _)| u.name.as_str())
        .collect();
    let Some(first) = created.first() else {
        return;
    };
    let Ok(snapshot) = repo.refs.snapshot().await else {
        return;
    };
    let Some(head) = snapshot.head.clone() else {
        return;
    };
    if snapshot.get(&head).is_some() {
        return;
    }
    let target = ["refs/heads/main", "refs/heads/master"]
        .into_iter()
        .find(|b| created.contains(b))
        .unwrap_or(first);
    match repo.refs.repoint_unborn_head(&head, target).await {
        Ok(true) => {
            tracing::info!(repo = %repo.id, head = target, "HEAD now names the first branch")
        }
        Ok(false) => {}
        Err(e) => tracing::warn!(repo = %repo.id, error = %e, "could not re-point HEAD"),
    }
}
