//! Push mirrors as an endpoint kind: after pushes, the refs they moved are pushed to the
//! remote as they are now (one push for every pending event, so a mirror that fell behind
//! catches up at once), never overwriting what moved on the remote unless the mirror is set
//! to force; LFS objects go first. Authentication failures in a row pause the mirror.

use std::collections::BTreeSet;

use gix_hash::ObjectId;

use super::delivery::{Endpoint, Outcome, Turn};
use super::{DispatchError, Dispatcher, Repository};
use crate::config::Mirror;
use crate::log::Event;
use crate::metrics;
use crate::mirror::{self, Command, MirrorError, Remote};
use crate::state::{now_ms, EndpointState, RefResult, RefStatus};

/// A push mirror, as the delivery loop sees it.
pub(super) struct MirrorEndpoint<'a>(pub(super) &'a Mirror);

#[async_trait::async_trait]
impl Endpoint for MirrorEndpoint<'_> {
    fn id(&self) -> &str {
        &self.0.id
    }

    fn kind(&self) -> &'static str {
        "mirror"
    }

    fn starts_with_full_sync(&self) -> bool {
        true
    }

    fn pending(&self, state: &EndpointState, head: u64) -> bool {
        state.full_sync || state.cursor.seq < head
    }

    fn batched(&self) -> bool {
        true
    }

    /// A mirror pushes the refs as they are, not the events: with records missing (not
    /// listed yet, or gone) every ref it has or set on the remote is compared instead, so
    /// that nothing the missing changes moved or deleted is left out.
    fn waits_for_gaps(&self) -> bool {
        false
    }

    async fn deliver(
        &self,
        turn: &mut Turn<'_>,
        events: &[Event],
    ) -> Result<Outcome, DispatchError> {
        let (mirror, repo, dispatcher) = (self.0, turn.repo, turn.dispatcher);
        let state = &mut turn.state;
        let mut names: BTreeSet<String> = BTreeSet::new();
        if state.full_sync || !turn.chain_complete {
            names.extend(repo.snapshot.refs.keys().cloned());
        }
        if !state.full_sync && !turn.chain_complete {
            names.extend(state.remote_refs.keys().cloned());
        }
        if !state.full_sync {
            // What came from this very remote (an upstream on the same URL) is not sent back.
            let same = |url: &str| url.trim_end_matches('/') == mirror.url.trim_end_matches('/');
            for event in events {
                if event.meta.upstream.as_deref().is_some_and(same) {
                    continue;
                }
                names.extend(event.refs.iter().map(|m| m.name.clone()));
            }
        }
        // Pull requests' heads are this server's own; hosts refuse pushes to them.
        names.retain(|n| !refs::is_pull_request_ref(n));
        match dispatcher.mirror_push(repo, mirror, &names, state).await {
            Ok(()) => {
                metrics::outcome(metrics::MIRROR_PUSHES, "ok");
                state.full_sync = false;
                state.auth_failures = 0;
                state.last_success_ms = Some(now_ms());
                state.delivered += 1;
                state.last_error = state
                    .ref_results
                    .iter()
                    .find(|r| !r.status.is_success())
                    .map(|r| format!("{}: {}", r.name, r.status));
                Ok(Outcome::Done)
            }
            Err(e) => {
                metrics::outcome(metrics::MIRROR_PUSHES, "failed");
                state.last_error = Some(e.to_string());
                tracing::warn!(mirror = %mirror.id, error = %e, "mirror push failed");
                if let MirrorError::Auth(_) = e {
                    state.auth_failures += 1;
                    if state.auth_failures >= dispatcher.settings.auth_failures_before_pause {
                        return Ok(Outcome::Paused(format!(
                            "paused after {} authentication failures in a row; fix the credentials (remove and add the mirror) and call sync_mirror",
                            state.auth_failures
                        )));
                    }
                }
                Ok(Outcome::RetryAfter(None))
            }
        }
    }
}

impl Dispatcher {
    pub(super) async fn mirror_push(
        &self,
        repo: &Repository,
        mirror: &Mirror,
        names: &BTreeSet<String>,
        state: &mut EndpointState,
    ) -> Result<(), MirrorError> {
        let remote = Remote::new(&self.client, mirror, self.settings.timeout);
        let advertised = remote.discover().await?;
        let db = self
            .objects(repo)
            .await
            .map_err(|e| MirrorError::Objects(e.to_string()))?;
        if !advertised.takes_format(db.object_hash()) {
            return Err(MirrorError::Protocol(format!(
                "the remote does not take {} objects (this repository's format)",
                db.object_hash()
            )));
        }
        let mut results = Vec::new();
        let mut commands = Vec::new();
        let null = ObjectId::null(db.object_hash());
        for name in names {
            let ours = repo.snapshot.refs.get(name).map(|v| v.target);
            let theirs = advertised.refs.get(name).copied();
            let new = ours.unwrap_or(null);
            if theirs == ours {
                state.remote_refs.insert(name.clone(), new);
                results.push((name.clone(), RefStatus::UpToDate));
                continue;
            }
            if ours.is_none() && theirs.is_none() {
                state.remote_refs.remove(name);
                continue;
            }
            let old = if mirror.force {
                theirs.unwrap_or(null)
            } else {
                match state.remote_refs.get(name).copied() {
                    Some(known)
                        if Some(known) != theirs && !(known.is_null() && theirs.is_none()) =>
                    {
                        results.push((
                            name.clone(),
                            RefStatus::NotPushed(format!(
                                "the remote's ref moved on its own (expected {known}, found {}); not overwritten (the mirror is not set to force)",
                                theirs.map_or("nothing".to_owned(), |t| t.to_string())
                            )),
                        ));
                        continue;
                    }
                    Some(known) => known,
                    None => match theirs {
                        None => null,
                        Some(t) => {
                            let contained = ours.is_some() && db.contains(&t) && {
                                let (db, new) = (db.clone(), new);
                                tokio::task::spawn_blocking(move || {
                                    history::log(
                                        &db.reader(),
                                        &[t],
                                        &[new],
                                        history::LogLimits {
                                            max_commits: 1,
                                            max_visited: 1_000_000,
                                        },
                                    )
                                    .map(|l| l.commits.is_empty())
                                    .unwrap_or(false)
                                })
                                .await
                                .unwrap_or(false)
                            };
                            if !contained {
                                results.push((
                                    name.clone(),
                                    RefStatus::NotPushed("the remote's ref has commits this repository does not have; not overwritten (the mirror is not set to force)".to_owned()),
                                ));
                                continue;
                            }
                            t
                        }
                    },
                }
            };
            commands.push(Command {
                name: name.clone(),
                old,
                new,
            });
        }
        if !commands.is_empty() {
            let report = self
                .push_commands(repo, &remote, &advertised, &db, &commands)
                .await?;
            for (name, result) in report {
                match result {
                    Ok(()) => {
                        if let Some(c) = commands.iter().find(|c| c.name == name) {
                            if c.new.is_null() {
                                state.remote_refs.remove(&name);
                            } else {
                                state.remote_refs.insert(name.clone(), c.new);
                            }
                        }
                        results.push((name, RefStatus::Ok));
                    }
                    Err(reason) => results.push((
                        name,
                        RefStatus::NotPushed(format!("refused by the remote: {reason}")),
                    )),
                }
            }
        }
        state.ref_results = results
            .into_iter()
            .map(|(name, status)| RefResult { name, status })
            .collect();
        Ok(())
    }

    /// Push `commands` to the mirror's remote: the pack they need (what the remote does not
    /// have), the LFS objects its pointers name first. The remote's answer per ref.
    async fn push_commands(
        &self,
        repo: &Repository,
        remote: &Remote<'_>,
        advertised: &mirror::Advertised,
        db: &objectstore::ObjectDb,
        commands: &[Command],
    ) -> Result<Vec<(String, Result<(), String>)>, MirrorError> {
        let pack = if commands.iter().any(|c| !c.new.is_null()) {
            let (db2, cmds, has, ofs, dir) = (
                db.clone(),
                commands.to_vec(),
                advertised.refs.values().copied().collect::<Vec<_>>(),
                mirror::takes_ofs_delta(advertised),
                self.settings.staging.clone(),
            );
            Some(
                tokio::task::spawn_blocking(move || {
                    std::fs::create_dir_all(&dir)
                        .map_err(|e| MirrorError::Objects(e.to_string()))?;
                    mirror::build_pack(&db2, &cmds, &has, ofs, &dir)
                })
                .await
                .map_err(|e| MirrorError::Objects(e.to_string()))??,
            )
        } else {
            None
        };
        if let Some((_, pointers)) = &pack {
            if !pointers.is_empty() {
                let store = lfs::Store::new(
                    self.bucket.clone(),
                    repo.keys.clone(),
                    lfs::Transfer::default(),
                );
                remote.upload_lfs(&store, pointers).await?;
            }
        }
        remote
            .push(commands, pack.as_ref().map(|(f, _)| f.path()))
            .await
    }
}
