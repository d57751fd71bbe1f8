//! Version sync as an endpoint kind: every push event that moves the default branch is
//! published as the next artifact version, in event order, by one replica at a time (the
//! endpoint's lease). The version number is saved in the endpoint's state before anything of
//! the version is written, so whoever resumes an interrupted publish (this replica after a
//! restart, or another after the lease ran out) finishes the same version instead of starting
//! a second one.

use gix_hash::ObjectId;
use objectstore::layout::ArtifactKeys;
use objectstore::ObjectDb;
use versions::manifest::{GitOrigin, Manifest, PUBLISHER};
use versions::publish;

use super::delivery::{Endpoint, Outcome, Turn};
use super::DispatchError;
use crate::config::VERSIONS_ENDPOINT;
use crate::log::{now, Event, Source};
use crate::metrics;
use crate::state::{now_ms, EndpointState, Publishing};

/// Version numbers tried for one event before giving up for this round.
const MAX_NUMBER_TRIES: u32 = 16;

/// The commit an event moved the default branch to, unless the event must not be published
/// (an import of files that came from a version, or a deletion).
fn published_commit(event: &Event, branch: Option<&str>) -> Option<ObjectId> {
    if matches!(event.meta.source, Source::Import | Source::Version) {
        return None;
    }
    let moved = event
        .refs
        .iter()
        .find(|m| Some(m.name.as_str()) == branch)?;
    moved.after_id()
}

/// Version sync, as the delivery loop sees it.
pub(super) struct VersionsEndpoint;

#[async_trait::async_trait]
impl Endpoint for VersionsEndpoint {
    fn id(&self) -> &str {
        VERSIONS_ENDPOINT
    }

    fn kind(&self) -> &'static str {
        "versions"
    }

    fn pending(&self, state: &EndpointState, head: u64) -> bool {
        state.cursor.seq < head || state.publishing.is_some()
    }

    async fn deliver(
        &self,
        turn: &mut Turn<'_>,
        events: &[Event],
    ) -> Result<Outcome, DispatchError> {
        let repo = turn.repo;
        let artifact = turn.dispatcher.storage.artifact(&repo.ws, &repo.alias);
        let branch = repo.snapshot.head.clone();
        let db = turn.objects().await?;
        for event in events {
            let Some(commit) = published_commit(event, branch.as_deref()) else {
                continue;
            };
            if !db.contains(&commit) {
                // Force-pushed away and collected since: nothing left to publish.
                turn.state.last_error = Some(format!("commit {commit} is gone; not published"));
                continue;
            }
            match Self::publish_event(turn, &artifact, &db, event, commit).await {
                Ok(Some(())) => {}
                Ok(None) => return Ok(Outcome::LeaseLost),
                Err(e) => {
                    metrics::outcome(metrics::VERSIONS_PUBLISHED, "failed");
                    tracing::warn!(repo = %format!("{}/{}", repo.ws, repo.alias), error = %e, "publishing a version failed");
                    turn.state.last_error = Some(e.to_string());
                    return Ok(Outcome::RetryAfter(None));
                }
            }
        }
        turn.state.publishing = None;
        Ok(Outcome::Done)
    }

    fn caught_up(&self, state: &mut EndpointState) {
        state.publishing = None;
    }
}

impl VersionsEndpoint {
    /// Publish `commit` for `event`: `Some(())` once the version is complete, `None` when the
    /// lease was lost on the way.
    async fn publish_event(
        turn: &mut Turn<'_>,
        artifact: &ArtifactKeys,
        db: &ObjectDb,
        event: &Event,
        commit: ObjectId,
    ) -> Result<Option<()>, DispatchError> {
        let (dispatcher, repo) = (turn.dispatcher, turn.repo);
        let bucket = &dispatcher.bucket;
        let resumed =
            (turn.state.publishing.clone()).filter(|p| p.seq == event.seq && p.commit == commit);
        let mut version = match &resumed {
            Some(p) => {
                metrics::outcome(metrics::VERSIONS_PUBLISHED, "resumed");
                tracing::info!(version = p.version, %commit, "resuming an interrupted publish");
                p.version
            }
            None => publish::next_version(bucket.as_ref(), artifact).await?,
        };
        let started = resumed.as_ref().map_or_else(now, |p| p.started);
        let branch = repo.snapshot.head.clone().unwrap_or_default();
        for _ in 0..MAX_NUMBER_TRIES {
            // Saved before anything of the version is written: whoever resumes uses it.
            turn.state.publishing = Some(Publishing {
                seq: event.seq,
                commit,
                version,
                started,
            });
            if !turn.checkpoint().await? {
                return Ok(None);
            }
            let manifest = Manifest {
                version,
                complete: false,
                created: started,
                git: GitOrigin {
                    published_by: PUBLISHER.into(),
                    commit: commit.to_string(),
                    branch: branch
                        .strip_prefix("refs/heads/")
                        .unwrap_or(&branch)
                        .to_owned(),
                    event_seq: event.seq,
                },
                files: Vec::new(),
                file_count: 0,
                skipped: Vec::new(),
            };
            if !publish::reserve(bucket.as_ref(), artifact, &manifest).await? {
                version = publish::next_version(bucket.as_ref(), artifact)
                    .await?
                    .max(version + 1);
                continue;
            }
            let written =
                publish::write_files(bucket, artifact, &repo.keys, db, commit, version).await?;
            let files = written.files.len();
            publish::complete(bucket.as_ref(), artifact, manifest, written).await?;
            metrics::outcome(metrics::VERSIONS_PUBLISHED, "ok");
            tracing::info!(repo = %format!("{}/{}", repo.ws, repo.alias), version, %commit, files, "version published");
            let state = &mut turn.state;
            state.last_version = Some(version);
            state.last_success_ms = Some(now_ms());
            state.last_error = None;
            state.delivered += 1;
            return Ok(Some(()));
        }
        Err(DispatchError::Versions(versions::Error::NoFreeVersion(
            MAX_NUMBER_TRIES,
        )))
    }
}
