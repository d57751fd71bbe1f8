//! Pull requests, with the method names and parameters of Hypha's git pull-request API:
//! `create_pr`, `get_pr`, `list_prs`, `update_pr`, `close_pr`, `reopen_pr`, `get_diff`,
//! `submit_review`, `list_reviews`, `merge_pr`.
//!
//! A pull request is one JSON record in the bucket (`pulls/{n}.json`), created `Create` (the
//! number is the first free one) and changed `Update` by tag, so concurrent changes never
//! overwrite each other. It names two branches; its head is the source branch as it is when
//! asked. A merge is made as git makes it ([`history::merge`]): fast-forward, a merge commit,
//! or a squash; it lands like a push (the push policy applies, with `pull_request_only` rules
//! satisfied and `required_approvals` counted), and moves the target branch by
//! compare-and-swap, so a push racing it either wins or makes it stale, never lost.

use std::sync::Arc;

use gix_hash::ObjectId;
use objectstore::bucket::{self, PutMode};
use refs::RefUpdate;
use serde::Deserialize;
use serde_json::{json, Value};

use super::history::{
    blocking, branch_ref, finish_pack, new_pack, open, open_without_revisions, people, stale,
    Indexing, Opened, MAX_MESSAGE,
};
use super::{params, RpcError};
use crate::app::App;
use crate::auth::{Access, Grants};
use crate::landing::{land, Landing, Rejection};

/// Pull requests one repository may hold, and the longest title.
const MAX_PULL_REQUESTS: u64 = 1_000_000;
const MAX_TITLE: usize = 256;
/// Reviews one pull request may hold.
const MAX_REVIEWS: usize = 1000;
/// Files a diff lists at most.
const MAX_DIFF_FILES: usize = 10_000;
/// Pull request records one `list_prs` reads at most (a filter that matches little stops
/// there, newest first, instead of reading every record).
const MAX_LISTED: usize = 10_000;
/// Times a merged pull request's record is read and written again when it changed meanwhile.
const RECORD_TRIES: usize = 5;
/// Commits walked at most to tell a fast-forward.
const MAX_WALK: usize = 1_000_000;

use events::pull::{Action, Merged, PullRequest, Review};

fn now() -> i64 {
    events::log::now()
}

fn subject(identity: Option<&Grants>) -> Option<String> {
    identity.and_then(|g| g.subject.clone())
}

/// Read pull request `n` and its tag.
async fn load(o: &Opened, n: u64) -> Result<(PullRequest, bucket::ETag), RpcError> {
    match events::pull::load(o.repo.storage().bucket.as_ref(), &o.repo.keys, n).await {
        Ok(got) => Ok(got),
        Err(events::pull::RecordError::Bucket(e)) if e.is_not_found() => {
            Err(RpcError::NotFound(format!("no pull request #{n}")))
        }
        Err(events::pull::RecordError::Bucket(e)) => Err(e.into()),
        Err(e) => Err(RpcError::Internal(e.to_string())),
    }
}

/// Record that pull request `number` was `action`ed, moving `updates` (its head ref) with it:
/// the event its webhooks get. A failure is logged: the record already says what happened.
async fn announce(
    app: &Arc<App>,
    o: &Opened,
    identity: Option<&Grants>,
    number: u64,
    action: Action,
    updates: Vec<RefUpdate>,
) {
    let landing = Landing {
        pack: None,
        updates,
        atomic: true,
        origin: pull_request_origin(identity, number, action),
        seen: None,
        policy: None,
    };
    let landed = land(app, &o.repo, o.db.clone(), landing).await;
    if let Some(e) = landed.results.iter().find_map(|r| r.as_ref().err()) {
        tracing::warn!(repo = %o.repo.id, pr = number, error = %e, "a pull request's head ref was not moved");
    }
}

/// Who and what, for an event about pull request `number`.
fn pull_request_origin(
    identity: Option<&Grants>,
    number: u64,
    action: Action,
) -> events::log::EventMeta {
    events::log::EventMeta {
        pusher: subject(identity),
        push_options: Vec::new(),
        source: events::log::Source::PullRequest,
        pull_request: Some(events::pull::PullRequestEvent { number, action }),
        upstream: None,
    }
}

/// The update that points pull request `number`'s head ref at `head`.
fn head_update(o: &Opened, number: u64, head: ObjectId) -> Vec<RefUpdate> {
    let name = refs::pull_request_head(number);
    let old = o
        .snapshot
        .get(&name)
        .unwrap_or_else(|| ObjectId::null(head.kind()));
    match old == head {
        true => Vec::new(),
        false => vec![RefUpdate {
            name,
            old,
            new: head,
            peeled: None,
        }],
    }
}

/// Write pull request `pr` (`Update` by `etag`: a concurrent change makes this stale).
async fn save(o: &Opened, pr: &PullRequest, mode: PutMode) -> Result<(), RpcError> {
    let key = o.repo.keys.pull_request(pr.number);
    let data = serde_json::to_vec_pretty(pr).unwrap_or_default();
    match o.repo.storage().bucket.put(&key, data.into(), mode).await {
        Ok(_) => Ok(()),
        Err(bucket::Error::PreconditionFailed(_)) => Err(RpcError::Stale(format!(
            "pull request #{} changed meanwhile; read it again",
            pr.number
        ))),
        Err(e) => Err(e.into()),
    }
}

/// A pull request as answered: the record, and where its branches are now.
fn describe(o: &Opened, pr: &PullRequest) -> Value {
    let at = |b: &str| {
        o.snapshot
            .get(&format!("refs/heads/{b}"))
            .map(|c| c.to_string())
    };
    let mut v = serde_json::to_value(pr).unwrap_or_default();
    v["pr_number"] = json!(pr.number);
    v["head_sha"] = json!(at(&pr.source_branch));
    v["base_sha"] = json!(at(&pr.target_branch));
    v
}

fn short_branch(name: &str) -> Result<String, RpcError> {
    Ok(branch_ref(name)?
        .trim_start_matches("refs/heads/")
        .to_owned())
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct CreateParams {
    artifact_id: String,
    title: String,
    source_branch: String,
    #[serde(default)]
    target_branch: Option<String>,
    #[serde(default)]
    description: Option<String>,
}

/// `create_pr`: a pull request from `source_branch` into `target_branch` (the default branch
/// without one); answers its number.
pub(super) async fn create_pr(
    app: &Arc<App>,
    identity: Option<&Grants>,
    p: Value,
) -> Result<Value, RpcError> {
    let p: CreateParams = params(p)?;
    if p.title.trim().is_empty() || p.title.len() > MAX_TITLE {
        return Err(RpcError::InvalidParams(format!(
            "title: 1 to {MAX_TITLE} bytes"
        )));
    }
    let description = p.description.unwrap_or_default();
    if description.len() > MAX_MESSAGE {
        return Err(RpcError::InvalidParams(
            "description: at most 64 KiB".into(),
        ));
    }
    let o = open_without_revisions(app, identity, &p.artifact_id, Access::Write).await?;
    let source = short_branch(&p.source_branch)?;
    let target = match p.target_branch {
        Some(t) => short_branch(&t)?,
        None => o
            .snapshot
            .head
            .as_deref()
            .and_then(|h| h.strip_prefix("refs/heads/"))
            .map(str::to_owned)
            .ok_or_else(|| RpcError::InvalidParams("name a target_branch".into()))?,
    };
    let mut heads = Vec::with_capacity(2);
    for b in [&source, &target] {
        match o.snapshot.get(&format!("refs/heads/{b}")) {
            Some(head) => heads.push(head),
            None => return Err(RpcError::NotFound(format!("no branch {b:?}"))),
        }
    }
    let source_head = heads[0];
    if source == target {
        return Err(RpcError::InvalidParams(
            "the source and target branches are the same".into(),
        ));
    }
    let listed = o
        .repo
        .storage()
        .bucket
        .list(&o.repo.keys.pull_requests_dir())
        .await?;
    let mut number = listed
        .iter()
        .filter_map(|m| o.repo.keys.parse_pull_request(&m.key))
        .max()
        .unwrap_or(0)
        + 1;
    loop {
        if number > MAX_PULL_REQUESTS {
            return Err(RpcError::InvalidParams("too many pull requests".into()));
        }
        let pr = PullRequest {
            number,
            title: p.title.clone(),
            description: description.clone(),
            source_branch: source.clone(),
            target_branch: target.clone(),
            status: "open".into(),
            author: subject(identity),
            created_at: now(),
            updated_at: now(),
            reviews: Vec::new(),
            merged: None,
            close_comment: None,
        };
        match save(&o, &pr, PutMode::Create).await {
            Ok(()) => {
                let head = head_update(&o, number, source_head);
                announce(app, &o, identity, number, Action::Opened, head).await;
                return Ok(json!({"pr_number": number, "pull_request": describe(&o, &pr)}));
            }
            // Taken meanwhile: the next one.
            Err(RpcError::Stale(_)) => number += 1,
            Err(e) => return Err(e),
        }
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct NumberParams {
    artifact_id: String,
    pr_number: u64,
    #[serde(default)]
    comment: Option<String>,
}

/// `get_pr`.
pub(super) async fn get_pr(
    app: &Arc<App>,
    identity: Option<&Grants>,
    p: Value,
) -> Result<Value, RpcError> {
    let p: NumberParams = params(p)?;
    let o = open_without_revisions(app, identity, &p.artifact_id, Access::Read).await?;
    let (pr, _) = load(&o, p.pr_number).await?;
    Ok(describe(&o, &pr))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ListParams {
    artifact_id: String,
    #[serde(default)]
    status: Option<String>,
    #[serde(default)]
    limit: Option<usize>,
    #[serde(default)]
    offset: Option<usize>,
}

/// `list_prs {status?, limit?, offset?}`: newest first, among the newest 10,000.
pub(super) async fn list_prs(
    app: &Arc<App>,
    identity: Option<&Grants>,
    p: Value,
) -> Result<Value, RpcError> {
    let p: ListParams = params(p)?;
    let limit = p.limit.unwrap_or(50).clamp(1, 100);
    let o = open_without_revisions(app, identity, &p.artifact_id, Access::Read).await?;
    let listed = o
        .repo
        .storage()
        .bucket
        .list(&o.repo.keys.pull_requests_dir())
        .await?;
    let mut numbers: Vec<u64> = listed
        .iter()
        .filter_map(|m| o.repo.keys.parse_pull_request(&m.key))
        .collect();
    numbers.sort_unstable_by(|a, b| b.cmp(a));
    numbers.truncate(MAX_LISTED);
    let mut out = Vec::new();
    let mut skipped = 0;
    for n in numbers {
        let (pr, _) = load(&o, n).await?;
        if p.status
            .as_deref()
            .is_some_and(|s| s != "all" && s != pr.status)
        {
            continue;
        }
        if skipped < p.offset.unwrap_or(0) {
            skipped += 1;
            continue;
        }
        out.push(describe(&o, &pr));
        if out.len() == limit {
            break;
        }
    }
    Ok(json!(out))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct UpdateParams {
    artifact_id: String,
    pr_number: u64,
    #[serde(default)]
    title: Option<String>,
    #[serde(default)]
    description: Option<String>,
}

/// `update_pr {title?, description?}` of an open pull request.
pub(super) async fn update_pr(
    app: &Arc<App>,
    identity: Option<&Grants>,
    p: Value,
) -> Result<Value, RpcError> {
    let p: UpdateParams = params(p)?;
    let o = open_without_revisions(app, identity, &p.artifact_id, Access::Write).await?;
    let (mut pr, etag) = load(&o, p.pr_number).await?;
    if pr.status != "open" {
        return Err(RpcError::Conflict(format!(
            "pull request #{} is {}",
            pr.number, pr.status
        )));
    }
    if let Some(t) = p.title {
        if t.trim().is_empty() || t.len() > MAX_TITLE {
            return Err(RpcError::InvalidParams(format!(
                "title: 1 to {MAX_TITLE} bytes"
            )));
        }
        pr.title = t;
    }
    if let Some(d) = p.description {
        if d.len() > MAX_MESSAGE {
            return Err(RpcError::InvalidParams(
                "description: at most 64 KiB".into(),
            ));
        }
        pr.description = d;
    }
    pr.updated_at = now();
    save(&o, &pr, PutMode::Update(etag)).await?;
    Ok(describe(&o, &pr))
}

/// `close_pr {comment?}` and `reopen_pr`.
pub(super) async fn set_open(
    app: &Arc<App>,
    identity: Option<&Grants>,
    p: Value,
    open_it: bool,
) -> Result<Value, RpcError> {
    let p: NumberParams = params(p)?;
    let o = open_without_revisions(app, identity, &p.artifact_id, Access::Write).await?;
    let (mut pr, etag) = load(&o, p.pr_number).await?;
    let (from, to) = if open_it {
        ("closed", "open")
    } else {
        ("open", "closed")
    };
    if pr.status != from {
        return Err(RpcError::Conflict(format!(
            "pull request #{} is {}",
            pr.number, pr.status
        )));
    }
    if let Some(c) = &p.comment {
        if c.len() > MAX_MESSAGE {
            return Err(RpcError::InvalidParams("comment: at most 64 KiB".into()));
        }
    }
    pr.status = to.into();
    pr.close_comment = if open_it { None } else { p.comment };
    pr.updated_at = now();
    save(&o, &pr, PutMode::Update(etag)).await?;
    // Reopened: the head ref catches up with the branch it follows again.
    let (action, head) = match open_it {
        true => {
            let branch = o.snapshot.get(&format!("refs/heads/{}", pr.source_branch));
            let head = branch.map(|b| head_update(&o, pr.number, b));
            (Action::Reopened, head.unwrap_or_default())
        }
        false => (Action::Closed, Vec::new()),
    };
    announce(app, &o, identity, pr.number, action, head).await;
    Ok(describe(&o, &pr))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ReviewParams {
    artifact_id: String,
    pr_number: u64,
    verdict: String,
    #[serde(default)]
    comment: String,
}

/// `submit_review {verdict: approve|request_changes|comment, comment}`; an author does not
/// approve their own pull request.
pub(super) async fn submit_review(
    app: &Arc<App>,
    identity: Option<&Grants>,
    p: Value,
) -> Result<Value, RpcError> {
    let p: ReviewParams = params(p)?;
    if !["approve", "request_changes", "comment"].contains(&p.verdict.as_str()) {
        return Err(RpcError::InvalidParams(
            "verdict: approve, request_changes or comment".into(),
        ));
    }
    if p.comment.len() > MAX_MESSAGE {
        return Err(RpcError::InvalidParams("comment: at most 64 KiB".into()));
    }
    let o = open_without_revisions(app, identity, &p.artifact_id, Access::Read).await?;
    let (mut pr, etag) = load(&o, p.pr_number).await?;
    let reviewer = subject(identity);
    if p.verdict == "approve" && reviewer.is_some() && reviewer == pr.author {
        return Err(RpcError::InvalidParams(
            "the author cannot approve their own pull request".into(),
        ));
    }
    if pr.reviews.len() >= MAX_REVIEWS {
        return Err(RpcError::InvalidParams(format!(
            "at most {MAX_REVIEWS} reviews"
        )));
    }
    pr.reviews.push(Review {
        reviewer,
        verdict: p.verdict,
        comment: p.comment,
        at: now(),
    });
    pr.updated_at = now();
    save(&o, &pr, PutMode::Update(etag)).await?;
    Ok(describe(&o, &pr))
}

/// `list_reviews`.
pub(super) async fn list_reviews(
    app: &Arc<App>,
    identity: Option<&Grants>,
    p: Value,
) -> Result<Value, RpcError> {
    let p: NumberParams = params(p)?;
    let o = open_without_revisions(app, identity, &p.artifact_id, Access::Read).await?;
    let (pr, _) = load(&o, p.pr_number).await?;
    Ok(json!(pr.reviews))
}

/// Reviewers whose latest verdict approves.
fn approvals(pr: &PullRequest) -> usize {
    let mut latest: std::collections::BTreeMap<Option<&str>, &str> = Default::default();
    for r in &pr.reviews {
        if r.verdict != "comment" {
            latest.insert(r.reviewer.as_deref(), r.verdict.as_str());
        }
    }
    latest.values().filter(|v| **v == "approve").count()
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct DiffParams {
    artifact_id: String,
    base: String,
    head: String,
    #[serde(default)]
    include_content: bool,
    #[serde(default)]
    path_filter: Option<String>,
}

/// `get_diff {base, head, include_content?, path_filter?}`: the files that differ between
/// two revisions, with their blob ids and sizes (and the unified diff with `include_content`).
pub(super) async fn get_diff(
    app: &Arc<App>,
    identity: Option<&Grants>,
    p: Value,
) -> Result<Value, RpcError> {
    let p: DiffParams = params(p)?;
    let o = open(app, identity, &p.artifact_id, Access::Read).await?;
    blocking(move || {
        let reader = o.db.reader();
        let base = history::resolve_commit(&reader, &o.snapshot, &o.visible, &p.base)?;
        let head = history::resolve_commit(&reader, &o.snapshot, &o.visible, &p.head)?;
        let (base_tree, head_tree) = (reader.commit(&base)?.tree, reader.commit(&head)?.tree);
        let (mut changes, truncated) =
            history::diff_trees(&reader, Some(&base_tree), &head_tree, MAX_DIFF_FILES)?;
        if let Some(filter) = p.path_filter.as_deref().filter(|f| !f.is_empty()) {
            changes.retain(|c| {
                crate::policy::path_matches(filter, &c.path) || c.path.starts_with(filter)
            });
        }
        let size = |id: Option<ObjectId>| -> Result<Option<u64>, RpcError> {
            Ok(match id {
                Some(id) => reader.header(&id)?.map(|(_, s)| s),
                None => None,
            })
        };
        let mut files = Vec::with_capacity(changes.len());
        let mut stats = std::collections::BTreeMap::<&str, usize>::new();
        for c in &changes {
            let status = match c.kind {
                history::FileChangeKind::Added => "added",
                history::FileChangeKind::Deleted => "deleted",
                history::FileChangeKind::Modified => "modified",
                history::FileChangeKind::Renamed => "renamed",
            };
            *stats.entry(status).or_default() += 1;
            files.push(json!({
                "path": c.path, "old_path": c.old_path, "status": status,
                "old_sha": c.old.map(|i| i.to_string()), "new_sha": c.new.map(|i| i.to_string()),
                "old_size": size(c.old)?, "new_size": size(c.new)?,
            }));
        }
        let mut out = json!({
            "base_sha": base.to_string(), "head_sha": head.to_string(), "files": files,
            "stats": {"files_changed": changes.len(), "by_status": stats}, "truncated": truncated,
        });
        if p.include_content {
            let patch = history::patch(&reader, changes, history::PatchLimits::default())?;
            let lines: (usize, usize) = patch
                .files
                .iter()
                .fold((0, 0), |(a, d), f| (a + f.additions, d + f.deletions));
            out["stats"]["additions"] = json!(lines.0);
            out["stats"]["deletions"] = json!(lines.1);
            out["patch"] = json!(patch.text);
            out["patch_truncated"] = json!(patch.truncated);
        }
        Ok(out)
    })
    .await
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct MergeParams {
    artifact_id: String,
    pr_number: u64,
    #[serde(default = "auto")]
    merge_strategy: String,
    #[serde(default)]
    delete_branch: bool,
    #[serde(default)]
    comment: Option<String>,
    /// Merge only if the source branch is at this commit.
    #[serde(default)]
    expected_head_sha: Option<String>,
}

fn auto() -> String {
    "auto".into()
}

/// What the blocking part of a merge found.
enum Prepared {
    FastForward,
    Commit(Option<objectstore::odb::index::Indexed>, ObjectId),
    Conflicts(Vec<Value>),
}

/// `merge_pr {merge_strategy: auto|fast-forward|merge|squash, delete_branch?, comment?}`.
pub(super) async fn merge_pr(
    app: &Arc<App>,
    identity: Option<&Grants>,
    p: Value,
) -> Result<Value, RpcError> {
    let p: MergeParams = params(p)?;
    let strategy = p.merge_strategy.clone();
    if !["auto", "fast-forward", "merge", "squash"].contains(&strategy.as_str()) {
        return Err(RpcError::InvalidParams(
            "merge_strategy: auto, fast-forward, merge or squash".into(),
        ));
    }
    let o = open(app, identity, &p.artifact_id, Access::Write).await?;
    let (mut pr, etag) = load(&o, p.pr_number).await?;
    if pr.status != "open" {
        return Err(RpcError::Conflict(format!(
            "pull request #{} is {}",
            pr.number, pr.status
        )));
    }
    let (source_ref, target_ref) = (
        format!("refs/heads/{}", pr.source_branch),
        format!("refs/heads/{}", pr.target_branch),
    );
    let head = o.snapshot.get(&source_ref).ok_or_else(|| {
        RpcError::NotFound(format!("the source branch {:?} is gone", pr.source_branch))
    })?;
    let base = o.snapshot.get(&target_ref).ok_or_else(|| {
        RpcError::NotFound(format!("the target branch {:?} is gone", pr.target_branch))
    })?;
    if let Some(want) = &p.expected_head_sha {
        if !head.to_string().starts_with(&want.to_ascii_lowercase()) || want.len() < 7 {
            return Err(stale(&source_ref, Some(head)));
        }
    }
    let policy = o.repo.push_policy().await?;
    let required = policy
        .rules_for(&target_ref)
        .map(|r| r.required_approvals)
        .max()
        .unwrap_or(0) as usize;
    if approvals(&pr) < required {
        return Err(RpcError::Policy(format!(
            "protected branch: the pull request needs {required} approvals, it has {}",
            approvals(&pr)
        )));
    }
    let (author, committer) = people(identity, None);
    let indexing = Indexing::of(app, o.db.object_hash());
    let (db, title, number, source) = (
        o.db.clone(),
        pr.title.clone(),
        pr.number,
        pr.source_branch.clone(),
    );
    let description = pr.description.clone();
    let prepared = blocking(move || {
        let reader = db.reader();
        let ff = history::is_ancestor(&reader, &base, &head, MAX_WALK)?.unwrap_or(false);
        match (strategy.as_str(), ff) {
            ("fast-forward" | "auto", true) => return Ok(Prepared::FastForward),
            ("fast-forward", false) => {
                return Err(RpcError::Conflict(
                    "the target branch cannot be fast-forwarded to the source".into(),
                ))
            }
            _ => {}
        }
        let objects = history::merge::MergeObjects::new(&reader);
        let tree = match history::merge::merge_commits(&objects, base, head)? {
            history::merge::MergeOutcome::Clean(tree) => tree,
            history::merge::MergeOutcome::Conflicts(found) => {
                let hex = |id: Option<ObjectId>| id.map(|i| i.to_string());
                let out = found.into_iter().map(|c| {
                    json!({"path": c.path, "kind": c.kind,
                    "base_sha": hex(c.base), "ours_sha": hex(c.ours), "theirs_sha": hex(c.theirs)})
                });
                return Ok(Prepared::Conflicts(out.collect()));
            }
        };
        let mut pack = new_pack(&indexing)?;
        for (_, (kind, data)) in objects.into_written() {
            pack.add(kind, &data)?;
        }
        let (parents, message) = match strategy.as_str() {
            "squash" => (vec![base], format!("{title} (#{number})\n\n{description}")),
            _ => (
                vec![base, head],
                format!("Merge pull request #{number} from {source}\n\n{title}"),
            ),
        };
        let commit = history::write_commit(
            &mut pack,
            &tree,
            &parents,
            &author,
            &committer,
            message.trim_end(),
        )?;
        Ok(Prepared::Commit(
            Some(finish_pack(pack, &indexing)?),
            commit,
        ))
    })
    .await?;
    let (pack, new, merge_type) = match prepared {
        Prepared::Conflicts(conflicts) => {
            return Ok(json!({"status": "conflict", "conflicts": conflicts}))
        }
        Prepared::FastForward => (None, head, "fast-forward"),
        Prepared::Commit(pack, commit) => (
            pack,
            commit,
            if p.merge_strategy == "squash" {
                "squash"
            } else {
                "merge"
            },
        ),
    };
    let landing = Landing {
        pack,
        updates: vec![RefUpdate {
            name: target_ref.clone(),
            old: base,
            new,
            peeled: None,
        }],
        atomic: true,
        origin: pull_request_origin(identity, pr.number, Action::Merged),
        seen: Some(o.snapshot.clone()),
        policy: Some(policy),
    };
    match land(app, &o.repo, o.db.clone(), landing).await.single() {
        Ok(()) => {}
        Err((Rejection::Ref(_), _)) => {
            return Err(stale(
                &target_ref,
                o.repo.snapshot().await?.get(&target_ref),
            ))
        }
        Err((rejection, refused)) => return Err(super::landing_error(rejection, refused)),
    }
    // The branch has moved: the record says so even if a review landed meanwhile (read again
    // and marked again), so the answer never calls a merge that happened a failure.
    let merged = Merged {
        sha: new.to_string(),
        merge_type: merge_type.into(),
        by: subject(identity),
        at: now(),
    };
    let mut etag = etag;
    for attempt in 1.. {
        pr.status = "merged".into();
        pr.merged = Some(merged.clone());
        pr.close_comment = p.comment.clone();
        pr.updated_at = now();
        match save(&o, &pr, PutMode::Update(etag)).await {
            Ok(()) => break,
            Err(RpcError::Stale(_)) if attempt < RECORD_TRIES => {
                (pr, etag) = load(&o, pr.number).await?
            }
            Err(e) => {
                tracing::error!(pr = pr.number, error = %e, "recording a merged pull request failed");
                break;
            }
        }
    }
    if p.delete_branch {
        let deleted = super::branches::delete_branch(
            app,
            identity,
            json!({"artifact_id": p.artifact_id, "branch": pr.source_branch, "expected_head": head.to_string()}),
        )
        .await;
        if let Err(e) = deleted {
            tracing::warn!(error = %e, "deleting a merged pull request's branch failed");
        }
    }
    Ok(json!({"status": "merged", "merge_type": merge_type, "merge_sha": new.to_string()}))
}
