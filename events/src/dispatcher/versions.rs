//! Version sync as an endpoint of the dispatcher: every push event that moves the default
//! branch is published as the next artifact version, in event order, by one replica at a time
//! (the endpoint's lease). The version number is saved in the endpoint's state before anything
//! of the version is written, so whoever resumes an interrupted publish (this replica after a
//! restart, or another after the lease ran out) finishes the same version instead of starting
//! a second one.

use gix_hash::ObjectId;
use objectstore::layout::ArtifactKeys;
use objectstore::ObjectDb;
use versions::manifest::{GitOrigin, Manifest, PUBLISHER};
use versions::publish;

use super::{DispatchError, Dispatcher, Progress, Repository};
use crate::config::VERSIONS_ENDPOINT;
use crate::log::{now, Cursor, Event, Source};
use crate::metrics;
use crate::state::{now_ms, Lease, Publishing, Retry, StateStore, Versioned};

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
    ObjectId::from_hex(moved.after.as_bytes())
        .ok()
        .filter(|id| !id.is_null())
}

impl Dispatcher {
    pub(super) async fn versions(&self, repo: &Repository) -> Result<Progress, DispatchError> {
        let states = StateStore::new(self.bucket.clone(), repo.keys.clone());
        let Some(state) = self
            .state_or_start(&states, VERSIONS_ENDPOINT, &repo.head, false)
            .await?
        else {
            return Ok(Progress::CaughtUp(repo.head.seq));
        };
        if state.cursor.seq >= repo.head.seq && state.publishing.is_none() {
            return Ok(Progress::CaughtUp(state.cursor.seq));
        }
        if state.retry.as_ref().is_some_and(|r| r.next_ms > now_ms()) {
            return Ok(Progress::Behind(state.cursor.seq));
        }
        let lease_ms = self.settings.lease.as_millis() as u64;
        let Some(Versioned {
            mut state,
            mut etag,
        }) = states
            .acquire(VERSIONS_ENDPOINT, &self.settings.replica, lease_ms)
            .await?
        else {
            return Ok(Progress::Behind(state.cursor.seq));
        };
        // The cursor as stored: what this round reports (see `webhook`).
        let mut stored = state.cursor.seq;
        let chain = self.chain_after(repo, &state.cursor).await?;
        if !self.past_gap(VERSIONS_ENDPOINT, &mut state, &chain) {
            state.lease = None;
            states.put(VERSIONS_ENDPOINT, &etag, &state).await?;
            return Ok(Progress::Behind(stored));
        }
        let events = chain.chain.events;
        let artifact = self.storage.artifact(&repo.ws, &repo.alias);
        let branch = repo.snapshot.head.clone();
        let db = self.objects(&repo.keys).await?;
        for event in &events {
            if let Some(commit) = published_commit(event, branch.as_deref()) {
                let outcome = if db.contains(&commit) {
                    self.publish_event(
                        repo, &artifact, &db, &states, &mut state, &mut etag, event, commit,
                    )
                    .await
                } else {
                    // Force-pushed away and collected since: nothing left to publish.
                    state.last_error = Some(format!("commit {commit} is gone; not published"));
                    Ok(Some(()))
                };
                match outcome {
                    Ok(Some(())) => {}
                    // The lease ran out and another replica took over: it carries on.
                    Ok(None) => return Ok(Progress::Behind(stored)),
                    Err(e) => {
                        metrics::outcome(metrics::VERSIONS_PUBLISHED, "failed");
                        let attempts = state.retry.as_ref().map_or(0, |r| r.attempts) + 1;
                        tracing::warn!(repo = %format!("{}/{}", repo.ws, repo.alias), error = %e, "publishing a version failed");
                        state.last_error = Some(e.to_string());
                        state.retry = Some(Retry {
                            seq: event.seq,
                            attempts,
                            first_ms: state.retry.as_ref().map_or(now_ms(), |r| r.first_ms),
                            next_ms: now_ms() + self.backoff(attempts - 1).as_millis() as u64,
                        });
                        state.lease = None;
                        states.put(VERSIONS_ENDPOINT, &etag, &state).await?;
                        return Ok(Progress::Behind(stored));
                    }
                }
            }
            state.cursor = Cursor {
                seq: event.seq,
                id: event.id.clone(),
            };
            state.publishing = None;
            state.retry = None;
            state.lease = Some(Lease {
                owner: self.settings.replica.clone(),
                until_ms: now_ms() + lease_ms,
            });
            match states.put(VERSIONS_ENDPOINT, &etag, &state).await? {
                Some(tag) => (etag, stored) = (tag, event.seq),
                // Another replica took over (and finishes this publish, which is complete).
                None => return Ok(Progress::Behind(stored)),
            }
        }
        if state.cursor.seq < repo.head.seq {
            // Every record up to the head was missing and the wait for them is over.
            state.cursor = repo.head.clone();
        }
        if events.is_empty() {
            state.publishing = None;
        }
        state.lease = None;
        Ok(match states.put(VERSIONS_ENDPOINT, &etag, &state).await? {
            Some(_) => Progress::CaughtUp(state.cursor.seq),
            None => Progress::Behind(stored),
        })
    }

    /// Publish `commit` for `event`: `Some(())` once the version is complete, `None` when the
    /// lease was lost on the way.
    #[allow(clippy::too_many_arguments)]
    async fn publish_event(
        &self,
        repo: &Repository,
        artifact: &ArtifactKeys,
        db: &ObjectDb,
        states: &StateStore,
        state: &mut crate::state::EndpointState,
        etag: &mut objectstore::ETag,
        event: &Event,
        commit: ObjectId,
    ) -> Result<Option<()>, DispatchError> {
        let lease_ms = self.settings.lease.as_millis() as u64;
        let resumed = state.publishing.clone().filter(|p| {
            p.seq == event.seq && ObjectId::from_hex(p.commit.as_bytes()).ok() == Some(commit)
        });
        let mut version = match &resumed {
            Some(p) => {
                metrics::outcome(metrics::VERSIONS_PUBLISHED, "resumed");
                tracing::info!(version = p.version, %commit, "resuming an interrupted publish");
                p.version
            }
            None => publish::next_version(self.bucket.as_ref(), artifact).await?,
        };
        let started = resumed.as_ref().map_or_else(now, |p| p.started);
        let branch = repo.snapshot.head.clone().unwrap_or_default();
        for _ in 0..MAX_NUMBER_TRIES {
            state.publishing = Some(Publishing {
                seq: event.seq,
                commit: commit.to_string(),
                version,
                started,
            });
            state.lease = Some(Lease {
                owner: self.settings.replica.clone(),
                until_ms: now_ms() + lease_ms,
            });
            match states.put(VERSIONS_ENDPOINT, etag, state).await? {
                Some(tag) => *etag = tag,
                None => return Ok(None),
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
            if !publish::reserve(self.bucket.as_ref(), artifact, &manifest).await? {
                version = publish::next_version(self.bucket.as_ref(), artifact)
                    .await?
                    .max(version + 1);
                continue;
            }
            let written =
                publish::write_files(&self.bucket, artifact, &repo.keys, db, commit, version)
                    .await?;
            let files = written.files.len();
            publish::complete(self.bucket.as_ref(), artifact, manifest, written).await?;
            metrics::outcome(metrics::VERSIONS_PUBLISHED, "ok");
            tracing::info!(repo = %format!("{}/{}", repo.ws, repo.alias), version, %commit, files, "version published");
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
