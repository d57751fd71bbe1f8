//! Every replica's scheduler of upstream syncs: each poll it lists the upstreams of every
//! repository ([`objectstore::layout::StorageKeys::upstreams_dir`]), reads each one's state,
//! and starts the syncs that are due (asked for and not finished since, or on their timer)
//! and not leased by another replica. A sync whose replica died is taken over once its lease
//! runs out, so an interrupted import resumes.

use std::sync::Arc;
use std::time::Duration;

use events::state::now_ms;
use events::upstream::UpstreamStates;
use tokio_util::sync::CancellationToken;

use crate::app::App;
use crate::storage::RepoId;

/// Run until `stop`, looking every `poll`.
pub async fn run(app: Arc<App>, poll: Duration, stop: CancellationToken) {
    loop {
        tokio::select! {
            _ = stop.cancelled() => return,
            _ = tokio::time::sleep(poll) => {}
        }
        if let Err(e) = round(&app).await {
            tracing::warn!(error = %e, "looking for due upstream syncs failed");
        }
    }
}

/// One look at every upstream.
async fn round(app: &Arc<App>) -> Result<(), objectstore::bucket::Error> {
    let keys = app.storage.keys();
    let listed = app.storage.bucket.list(&keys.upstreams_dir()).await?;
    for meta in listed {
        let Some((ws, alias, id)) = keys.parse_upstream(&meta.key) else {
            continue;
        };
        let repo = keys.artifact(ws, alias).repo();
        let states = UpstreamStates::new(app.storage.bucket.clone(), repo);
        let now = now_ms();
        if !states.load(id).await?.is_due(now) {
            continue;
        }
        // Not while a sync of the repository holds the lease, this replica's included.
        if !states.lease().await?.is_held(now) {
            let repo_id = RepoId {
                workspace: ws.to_owned(),
                alias: alias.to_owned(),
            };
            let (app, id) = (app.clone(), id.to_owned());
            tokio::spawn(async move {
                if let Err(e) = super::sync(app, repo_id, id, Duration::ZERO).await {
                    tracing::warn!(error = %e, "a scheduled upstream sync failed");
                }
            });
        }
    }
    Ok(())
}
