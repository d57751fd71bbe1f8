//! Webhooks as an endpoint kind: each push event is sent to the hook, one POST per ref it
//! moved (GitHub's `push` payload), signed with the hook's secret; a failed send is retried
//! with backoff for the hook's retry window, then given up; `410 Gone` turns the hook off.
//! Also the sends that are not events of the log: `ping` and redelivery.

use gix_hash::ObjectId;
use objectstore::ObjectDb;

use super::delivery::{Endpoint, Outcome, Turn};
use super::{DispatchError, Dispatcher, Repository};
use crate::config::{EndpointStore, Webhook};
use crate::deliveries::DeliveryLog;
use crate::log::{Cursor, Event, RefMove};
use crate::metrics;
use crate::payload::{self, RepoInfo};
use crate::pull::Action;
use crate::state::now_ms;
use crate::webhook::{self, Verdict};

/// A webhook, as the delivery loop sees it.
pub(super) struct HookEndpoint<'a>(pub(super) &'a Webhook);

#[async_trait::async_trait]
impl Endpoint for HookEndpoint<'_> {
    fn id(&self) -> &str {
        &self.0.id
    }

    fn kind(&self) -> &'static str {
        "webhook"
    }

    async fn deliver(
        &self,
        turn: &mut Turn<'_>,
        events: &[Event],
    ) -> Result<Outcome, DispatchError> {
        let hook = self.0;
        let dispatcher = turn.dispatcher;
        let db = turn.objects().await?;
        let log = DeliveryLog::new(dispatcher.bucket.clone(), turn.repo.keys.clone());
        let mut given_up = None;
        for event in events {
            for (index, send) in sends(hook, event).into_iter().enumerate() {
                let id = stable_delivery_id(&hook.id, event, index);
                let body = match send {
                    Send::Push(moved) => {
                        dispatcher
                            .push_payload(&db, turn.repo, event, moved)
                            .await?
                    }
                    Send::PullRequest(number, action) => {
                        let body = dispatcher
                            .pull_request_payload(turn.repo, event, number, action)
                            .await?;
                        let Some(body) = body else { continue };
                        body
                    }
                };
                let timeout = dispatcher.settings.timeout;
                let (kind, ref_name) = match send {
                    Send::Push(moved) => ("push", moved.name.clone()),
                    Send::PullRequest(n, _) => ("pull_request", refs::pull_request_head(n)),
                };
                let (mut delivery, verdict) =
                    webhook::send(&dispatcher.client, hook, kind, &id, &body, timeout).await;
                delivery.seq = Some(event.seq);
                delivery.ref_name = Some(ref_name);
                delivery.attempt = turn.attempt;
                turn.state.last_attempt_ms = Some(delivery.time_ms);
                turn.state.last_error = delivery.error.clone();
                if let Err(e) = log.record(&hook.id, &delivery).await {
                    tracing::warn!(hook = %hook.id, error = %e, "recording a delivery failed");
                }
                match verdict {
                    Verdict::Delivered => {
                        metrics::outcome(metrics::WEBHOOK_DELIVERIES, "delivered");
                        turn.state.last_success_ms = Some(delivery.time_ms);
                    }
                    Verdict::Failed => metrics::outcome(metrics::WEBHOOK_DELIVERIES, "failed"),
                    Verdict::Gone => {
                        metrics::outcome(metrics::WEBHOOK_DELIVERIES, "gone");
                        let reason = "the receiver answered 410 Gone";
                        dispatcher.disable(turn.repo, &hook.id, reason).await?;
                        return Ok(Outcome::Gone);
                    }
                    Verdict::Retry(asked) => {
                        let elapsed = now_ms().saturating_sub(turn.first_ms);
                        if elapsed < dispatcher.settings.retry_for.as_millis() as u64 {
                            metrics::outcome(metrics::WEBHOOK_DELIVERIES, "retry");
                            return Ok(Outcome::RetryAfter(asked));
                        }
                        metrics::outcome(metrics::WEBHOOK_DELIVERIES, "failed");
                        given_up = Some(format!(
                            "gave up after {} attempts over {} s: {}",
                            turn.attempt,
                            elapsed / 1000,
                            delivery.error.unwrap_or_default()
                        ));
                    }
                }
            }
        }
        if let Some(reason) = given_up {
            return Ok(Outcome::GiveUp(reason));
        }
        if turn.state.last_error.is_none() {
            turn.state.delivered += 1;
        }
        Ok(Outcome::Done)
    }
}

/// One payload an event makes for a hook.
#[derive(Clone, Copy)]
enum Send<'e> {
    /// GitHub's `push`, for one ref the event moved.
    Push(&'e RefMove),
    /// GitHub's `pull_request`.
    PullRequest(u64, Action),
}

/// What `event` sends to `hook`, in order: a `push` per moved ref (a pull request's head ref
/// is not pushed to, it follows its branch), then the `pull_request` events: the one the
/// event is about, or `synchronize` for each pull request head it moved along its branch.
fn sends<'e>(hook: &Webhook, event: &'e Event) -> Vec<Send<'e>> {
    let mut out = Vec::new();
    if hook.wants("push") {
        out.extend(
            (event.refs.iter())
                .filter(|m| !refs::is_pull_request_ref(&m.name))
                .map(Send::Push),
        );
    }
    if hook.wants("pull_request") {
        match event.meta.pull_request {
            Some(pr) => out.push(Send::PullRequest(pr.number, pr.action)),
            None => out.extend(event.refs.iter().filter_map(|m| {
                let n = refs::parse_pull_request_head(&m.name)?;
                (m.before_id().is_some() && m.after_id().is_some())
                    .then_some(Send::PullRequest(n, Action::Synchronize))
            })),
        }
    }
    out
}

/// A delivery id for one ref of one event to one hook: the same on every retry, so receivers
/// can drop a second delivery after a crash.
fn stable_delivery_id(hook: &str, event: &Event, index: usize) -> String {
    use sha2::Digest;
    let digest = sha2::Sha256::digest(format!("{hook}\n{}\n{}\n{index}", event.seq, event.id));
    let h = hex::encode(&digest[..16]);
    format!(
        "{}-{}-4{}-a{}-{}",
        &h[..8],
        &h[8..12],
        &h[13..16],
        &h[17..20],
        &h[20..32]
    )
}

impl Dispatcher {
    pub(super) async fn disable(
        &self,
        repo: &Repository,
        id: &str,
        reason: &str,
    ) -> Result<(), DispatchError> {
        EndpointStore::new(self.bucket.clone(), repo.keys.clone())
            .update(|endpoints| {
                if let Some(h) = endpoints.webhooks.iter_mut().find(|h| h.id == id) {
                    h.active = false;
                    h.disabled_reason = Some(reason.to_owned());
                }
                Ok(())
            })
            .await?;
        tracing::info!(repo = %format!("{}/{}", repo.ws, repo.alias), hook = id, reason, "webhook turned off");
        Ok(())
    }

    pub(super) fn repo_info(&self, repo: &Repository) -> RepoInfo {
        RepoInfo {
            workspace: repo.ws.clone(),
            alias: repo.alias.clone(),
            clone_url: format!(
                "{}/{}/git/{}",
                self.settings.public_url, repo.ws, repo.alias
            ),
            default_branch: repo
                .snapshot
                .head
                .as_deref()
                .and_then(|h| h.strip_prefix("refs/heads/"))
                .map(str::to_owned),
        }
    }

    pub(super) async fn push_payload(
        &self,
        db: &ObjectDb,
        repo: &Repository,
        event: &Event,
        moved: &crate::log::RefMove,
    ) -> Result<Vec<u8>, DispatchError> {
        let info = self.repo_info(repo);
        // The other refs as they were at the push (recorded with the event); events recorded
        // without them fall back to the refs now.
        let others: Vec<ObjectId> = if event.other_tips.is_empty() {
            repo.snapshot
                .refs
                .iter()
                .filter(|(name, _)| **name != moved.name)
                .map(|(_, v)| v.target)
                .collect()
        } else {
            event.other_tips.clone()
        };
        let (db, event, moved) = (db.clone(), event.clone(), moved.clone());
        let payload = tokio::task::spawn_blocking(move || {
            payload::push(&db.reader(), &info, &event, &moved, &others)
        })
        .await
        .map_err(|e| DispatchError::Objects(e.to_string()))?
        .map_err(|e| DispatchError::Objects(e.to_string()))?;
        serde_json::to_vec(&payload).map_err(|e| DispatchError::Objects(e.to_string()))
    }

    /// The `pull_request` payload for pull request `number` (`None`: its record is gone).
    pub(super) async fn pull_request_payload(
        &self,
        repo: &Repository,
        event: &Event,
        number: u64,
        action: Action,
    ) -> Result<Option<Vec<u8>>, DispatchError> {
        let pr = match crate::pull::load(self.bucket.as_ref(), &repo.keys, number).await {
            Ok((pr, _)) => pr,
            Err(crate::pull::RecordError::Bucket(e)) if e.is_not_found() => return Ok(None),
            Err(crate::pull::RecordError::Bucket(e)) => return Err(e.into()),
            Err(e) => {
                tracing::warn!(pr = number, error = %e, "no pull_request payload");
                return Ok(None);
            }
        };
        // Where the refs were at the event, where it moved them; as they are now otherwise.
        let at = |name: &str| -> (Option<ObjectId>, Option<ObjectId>) {
            match event.refs.iter().find(|m| m.name == name) {
                Some(m) => (m.before_id(), m.after_id()),
                None => {
                    let now = repo.snapshot.get(name);
                    (now, now)
                }
            }
        };
        let (before, head) = at(&refs::pull_request_head(number));
        let (base_before, base_after) = at(&format!("refs/heads/{}", pr.target_branch));
        let tips = payload::PullRequestTips {
            head,
            before,
            // A merge's base is the target as it was merged into.
            base: match action {
                Action::Merged => base_before,
                _ => base_after,
            },
        };
        let body = payload::pull_request(&self.repo_info(repo), event, &pr, action, &tips);
        serde_json::to_vec(&body)
            .map(Some)
            .map_err(|e| DispatchError::Objects(e.to_string()))
    }

    /// Send the `ping` event to a new webhook (recorded in its delivery log).
    pub async fn ping(
        &self,
        ws: &str,
        alias: &str,
        hook: &Webhook,
    ) -> Result<crate::deliveries::Delivery, DispatchError> {
        let keys = self.storage.artifact(ws, alias).repo();
        let snapshot = self.refs(&keys).snapshot().await?;
        let repo = Repository {
            ws: ws.to_owned(),
            alias: alias.to_owned(),
            head: Cursor {
                seq: snapshot.seq,
                id: snapshot.content_id.clone(),
            },
            keys: keys.clone(),
            snapshot,
        };
        let body = serde_json::to_vec(&payload::ping(&self.repo_info(&repo), hook))
            .map_err(|e| DispatchError::Objects(e.to_string()))?;
        let (delivery, verdict) = webhook::send(
            &self.client,
            hook,
            "ping",
            &webhook::delivery_id(),
            &body,
            self.settings.timeout,
        )
        .await;
        if verdict == Verdict::Delivered {
            metrics::outcome(metrics::WEBHOOK_DELIVERIES, "delivered");
        }
        DeliveryLog::new(self.bucket.clone(), keys)
            .record(&hook.id, &delivery)
            .await?;
        Ok(delivery)
    }

    /// Send a logged delivery again, as it was (same id and payload).
    pub async fn redeliver(
        &self,
        ws: &str,
        alias: &str,
        hook: &Webhook,
        original: &crate::deliveries::Delivery,
    ) -> Result<crate::deliveries::Delivery, DispatchError> {
        let keys = self.storage.artifact(ws, alias).repo();
        let (mut delivery, verdict) = webhook::send(
            &self.client,
            hook,
            &original.event,
            &original.id,
            original.payload.as_bytes(),
            self.settings.timeout,
        )
        .await;
        if verdict == Verdict::Delivered {
            metrics::outcome(metrics::WEBHOOK_DELIVERIES, "delivered");
        }
        delivery.seq = original.seq;
        delivery.ref_name = original.ref_name.clone();
        delivery.attempt = original.attempt + 1;
        delivery.redelivery = true;
        DeliveryLog::new(self.bucket.clone(), keys)
            .record(&hook.id, &delivery)
            .await?;
        Ok(delivery)
    }
}
