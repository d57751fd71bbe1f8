//! Webhook payloads in the shape of GitHub's `push` and `ping` events, so receivers written
//! for GitHub work unchanged. Built from the packs when delivered (never in a push's path).

use gix_hash::ObjectId;
use history::{CommitInfo, FileChangeKind, LogLimits};
use objectstore::odb::Reader;
use serde_json::{json, Value};

use crate::log::{Event, RefMove};

/// Commits listed in one payload at most (GitHub lists 20 as well).
pub const MAX_COMMITS: usize = 20;
/// Paths listed per commit at most, over `added`, `removed` and `modified`.
pub const MAX_PATHS: usize = 3000;

/// The repository a payload is about.
#[derive(Debug, Clone)]
pub struct RepoInfo {
    /// The workspace.
    pub workspace: String,
    /// The artifact alias.
    pub alias: String,
    /// Its clone URL.
    pub clone_url: String,
    /// The branch `HEAD` names.
    pub default_branch: Option<String>,
}

impl RepoInfo {
    fn json(&self) -> Value {
        let full_name = format!("{}/{}", self.workspace, self.alias);
        json!({
            "id": full_name,
            "name": self.alias,
            "full_name": full_name,
            "owner": {"name": self.workspace, "login": self.workspace},
            "workspace": self.workspace,
            "alias": self.alias,
            "clone_url": self.clone_url,
            "git_url": self.clone_url,
            "url": self.clone_url,
            "html_url": self.clone_url,
            "default_branch": self.default_branch,
            "master_branch": self.default_branch,
        })
    }
}

fn person(sig: &history::Signature) -> Value {
    json!({"name": sig.name, "email": sig.email, "date": sig.rfc3339()})
}

fn commit_json(
    reader: &Reader<'_>,
    info: &CommitInfo,
    repo: &RepoInfo,
) -> Result<Value, history::Error> {
    let parent_tree = match info.parents.first() {
        Some(parent) => Some(reader.commit(parent)?.tree),
        None => None,
    };
    let (changes, _) = history::diff_trees(reader, parent_tree.as_ref(), &info.tree, MAX_PATHS)?;
    let mut added = Vec::new();
    let mut removed = Vec::new();
    let mut modified = Vec::new();
    for change in changes {
        match change.kind {
            FileChangeKind::Added => added.push(change.path),
            FileChangeKind::Deleted => removed.push(change.path),
            FileChangeKind::Modified => modified.push(change.path),
            // Not produced without rename detection; GitHub lists a rename as both.
            FileChangeKind::Renamed => {
                removed.push(change.old_path().to_owned());
                added.push(change.path);
            }
        }
    }
    Ok(json!({
        "id": info.id.to_string(),
        "tree_id": info.tree.to_string(),
        "distinct": true,
        "message": info.message.trim_end(),
        "timestamp": info.committer.rfc3339(),
        "url": format!("{}#{}", repo.clone_url, info.id),
        "author": person(&info.author),
        "committer": person(&info.committer),
        "added": added,
        "removed": removed,
        "modified": modified,
    }))
}

/// The commit a ref value names (tags are peeled), if it names one.
fn commit_of(reader: &Reader<'_>, id: &ObjectId) -> Result<Option<ObjectId>, history::Error> {
    if reader.kind(id)?.is_none() {
        return Ok(None);
    }
    Ok(match reader.peel(id)? {
        (commit, gix_object::Kind::Commit) => Some(commit),
        _ => None,
    })
}

/// The `push` payload for one ref moved by `event`. `other_tips` are the values of the
/// repository's other refs: a new branch lists only the commits none of them has.
pub fn push(
    reader: &Reader<'_>,
    repo: &RepoInfo,
    event: &Event,
    moved: &RefMove,
    other_tips: &[ObjectId],
) -> Result<Value, history::Error> {
    let (before, after) = (moved.before_id(), moved.after_id());
    let after_commit = match &after {
        Some(id) => commit_of(reader, id)?,
        None => None,
    };
    let before_commit = match &before {
        Some(id) => commit_of(reader, id)?,
        None => None,
    };
    let is_tag = moved.name.starts_with("refs/tags/");
    let limits = LogLimits {
        max_commits: MAX_COMMITS,
        max_visited: 100_000,
    };
    let commits = match (&after_commit, is_tag) {
        (Some(tip), false) => {
            let hidden: Vec<ObjectId> = match before_commit {
                Some(b) => vec![b],
                None => other_tips.to_vec(),
            };
            history::log(reader, &[*tip], &hidden, limits)?.commits
        }
        _ => Vec::new(),
    };
    // Forced: the old value is not an ancestor of the new one.
    let forced = match (&before_commit, &after_commit) {
        (Some(b), Some(a)) => !history::log(
            reader,
            &[*b],
            &[*a],
            LogLimits {
                max_commits: 1,
                max_visited: 100_000,
            },
        )?
        .commits
        .is_empty(),
        _ => false,
    };
    let mut listed = Vec::with_capacity(commits.len());
    // Oldest first, as GitHub lists them.
    for id in commits.iter().rev() {
        listed.push(commit_json(
            reader,
            &history::commit_info(reader, id)?,
            repo,
        )?);
    }
    let head_commit = match &after_commit {
        Some(id) => commit_json(reader, &history::commit_info(reader, id)?, repo)?,
        None => Value::Null,
    };
    let pusher = event
        .meta
        .pusher
        .clone()
        .unwrap_or_else(|| "anonymous".to_owned());
    Ok(json!({
        "ref": moved.name,
        "before": moved.before.to_string(),
        "after": moved.after.to_string(),
        "created": before.is_none(),
        "deleted": after.is_none(),
        "forced": forced,
        "base_ref": Value::Null,
        "compare": format!("{}#{}...{}", repo.clone_url, moved.before, moved.after),
        "commits": listed,
        "head_commit": head_commit,
        "repository": repo.json(),
        "pusher": {"name": pusher, "email": Value::Null},
        "sender": {"login": pusher},
        "push_options": event.meta.push_options,
        "event_seq": event.seq,
    }))
}

/// The `ping` payload sent when a webhook is added.
pub fn ping(repo: &RepoInfo, hook: &crate::config::Webhook) -> Value {
    json!({
        "zen": "Anything added dilutes everything else.",
        "hook_id": hook.id,
        "hook": {
            "type": "Repository",
            "id": hook.id,
            "active": hook.active,
            "events": hook.events,
            "config": {"url": hook.url, "content_type": "json", "insecure_ssl": "0"},
        },
        "repository": repo.json(),
    })
}

/// When something happened, as RFC 3339 in UTC.
fn utc(seconds: i64) -> String {
    history::Signature {
        name: String::new(),
        email: String::new(),
        time: seconds,
        offset: 0,
    }
    .rfc3339()
}

/// Where a pull request's branches were when the event happened.
#[derive(Debug, Clone, Default)]
pub struct PullRequestTips {
    /// The head (`refs/pull/{n}/head`).
    pub head: Option<ObjectId>,
    /// The head before, for `synchronize`.
    pub before: Option<ObjectId>,
    /// The target branch.
    pub base: Option<ObjectId>,
}

/// The `pull_request` payload (GitHub's shape) for `action` on pull request `pr`.
pub fn pull_request(
    repo: &RepoInfo,
    event: &Event,
    pr: &crate::pull::PullRequest,
    action: crate::pull::Action,
    tips: &PullRequestTips,
) -> Value {
    let hex = |id: &Option<ObjectId>| id.map(|i| i.to_string());
    let branch = |name: &str, sha: &Option<ObjectId>| {
        json!({
            "label": format!("{}:{name}", repo.workspace),
            "ref": name,
            "sha": hex(sha),
            "repo": repo.json(),
        })
    };
    let user = |who: &Option<String>| json!({"login": who.as_deref().unwrap_or("anonymous")});
    let merged = pr.merged.as_ref();
    let closed_at = (pr.status != "open").then(|| utc(pr.updated_at));
    let sender = event
        .meta
        .pusher
        .clone()
        .unwrap_or_else(|| "anonymous".to_owned());
    let url = format!("{}#pull/{}", repo.clone_url, pr.number);
    let mut payload = json!({
        "action": action.github_action(),
        "number": pr.number,
        "pull_request": {
            "id": pr.number,
            "number": pr.number,
            "url": url,
            "html_url": url,
            "state": if pr.status == "open" { "open" } else { "closed" },
            "status": pr.status,
            "title": pr.title,
            "body": pr.description,
            "user": user(&pr.author),
            "created_at": utc(pr.created_at),
            "updated_at": utc(pr.updated_at),
            "closed_at": closed_at,
            "merged": merged.is_some(),
            "merged_at": merged.map(|m| utc(m.at)),
            "merged_by": merged.map(|m| user(&m.by)),
            "merge_commit_sha": merged.map(|m| m.sha.clone()),
            "merge_type": merged.map(|m| m.merge_type.clone()),
            "head": branch(&pr.source_branch, &tips.head),
            "base": branch(&pr.target_branch, &tips.base),
        },
        "repository": repo.json(),
        "sender": {"login": sender},
        "event_seq": event.seq,
    });
    if action == crate::pull::Action::Synchronize {
        payload["before"] = json!(hex(&tips.before));
        payload["after"] = json!(hex(&tips.head));
    }
    payload
}
