//! Pull requests as the bucket keeps them (one record each, [`RepoKeys::pull_request`]) and
//! as events name them: the server's pull request methods write the records, webhooks read
//! them to build GitHub's `pull_request` payload, so the record's shape is defined here,
//! once.
//!
//! [`RepoKeys::pull_request`]: objectstore::layout::RepoKeys::pull_request

use objectstore::bucket::{self, Bucket, ETag};
use objectstore::layout::RepoKeys;
use serde::{Deserialize, Serialize};

/// One review of a pull request.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Review {
    /// The reviewer's token subject.
    pub reviewer: Option<String>,
    /// `approve`, `request_changes` or `comment`.
    pub verdict: String,
    /// What they said.
    pub comment: String,
    /// When, seconds since the epoch.
    pub at: i64,
}

/// How a pull request was merged.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Merged {
    /// The commit the target branch moved to.
    pub sha: String,
    /// `fast-forward`, `merge` or `squash`.
    pub merge_type: String,
    /// Who merged it.
    pub by: Option<String>,
    /// When, seconds since the epoch.
    pub at: i64,
}

/// A pull request's record.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PullRequest {
    /// Its number in the repository.
    pub number: u64,
    /// The title.
    pub title: String,
    /// The description.
    #[serde(default)]
    pub description: String,
    /// The branch it proposes (short name).
    pub source_branch: String,
    /// The branch it merges into (short name).
    pub target_branch: String,
    /// `open`, `closed` or `merged`.
    pub status: String,
    /// The author's token subject.
    pub author: Option<String>,
    /// When it was created, seconds since the epoch.
    pub created_at: i64,
    /// When it last changed.
    pub updated_at: i64,
    /// Its reviews, oldest first.
    #[serde(default)]
    pub reviews: Vec<Review>,
    /// How it was merged, once it was.
    #[serde(default)]
    pub merged: Option<Merged>,
    /// What was said when it was closed or merged.
    #[serde(default)]
    pub close_comment: Option<String>,
}

/// What happened to a pull request, as an event records it (GitHub's `action` names).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Action {
    /// Created.
    Opened,
    /// Its source branch moved.
    Synchronize,
    /// Closed without a merge.
    Closed,
    /// Merged (GitHub sends `closed` with `merged: true`).
    Merged,
    /// Opened again after it was closed.
    Reopened,
}

impl Action {
    /// The `action` field of GitHub's payload.
    pub fn github_action(self) -> &'static str {
        match self {
            Action::Opened => "opened",
            Action::Synchronize => "synchronize",
            Action::Closed | Action::Merged => "closed",
            Action::Reopened => "reopened",
        }
    }
}

/// The pull request an event is about, when it is about one.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct PullRequestEvent {
    /// Its number.
    pub number: u64,
    /// What happened.
    pub action: Action,
}

/// Why a record could not be read.
#[derive(Debug, thiserror::Error)]
pub enum RecordError {
    /// The bucket failed (or has no such record: [`bucket::Error::is_not_found`]).
    #[error(transparent)]
    Bucket(#[from] bucket::Error),
    /// The record is not a pull request's.
    #[error("unreadable pull request #{number}: {message}")]
    Unreadable {
        /// Its number.
        number: u64,
        /// What is wrong.
        message: String,
    },
}

/// Read pull request `number` of the repository `keys` names, and its tag.
pub async fn load(
    bucket: &dyn Bucket,
    keys: &RepoKeys,
    number: u64,
) -> Result<(PullRequest, ETag), RecordError> {
    let got = bucket.get(&keys.pull_request(number)).await?;
    let pr = serde_json::from_slice(&got.data).map_err(|e| RecordError::Unreadable {
        number,
        message: e.to_string(),
    })?;
    Ok((pr, got.etag))
}
