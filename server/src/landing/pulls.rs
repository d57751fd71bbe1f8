//! Pull requests' heads follow their branches: an update that moves a branch some open pull
//! request proposes moves that pull request's `refs/pull/{n}/head` in the same
//! compare-and-swap (the event then says the pull request was synchronized).
//!
//! Which pull requests a branch has is told by the refs alone first: a head ref that is not
//! where the branch was cannot follow it, so a push to a branch without pull requests reads
//! nothing more. Only the records of heads that were at the branch's old value are read (a
//! head may equal another branch's value by chance; its record names its branch).

use refs::{RefUpdate, Snapshot};

use crate::app::App;
use crate::repo::Repo;

/// Pull request records read at most for one landing.
const MAX_CANDIDATES: usize = 64;

/// The head updates that follow `updates` (already checked and about to commit).
pub(super) async fn followers(
    app: &App,
    repo: &Repo,
    seen: Option<&Snapshot>,
    updates: &[RefUpdate],
) -> Vec<RefUpdate> {
    let read;
    let seen = match seen {
        Some(seen) => seen,
        None => match repo.refs.snapshot().await {
            Ok(s) => {
                read = s;
                &read
            }
            Err(_) => return Vec::new(),
        },
    };
    // (pull request, branch, old, new) for each head at a moving branch's old value.
    let mut candidates = Vec::new();
    for update in updates {
        let Some(branch) = update.name.strip_prefix("refs/heads/") else {
            continue;
        };
        if update.old.is_null() || update.new.is_null() {
            continue;
        }
        for (name, value) in seen.refs.range(refs::PULL_REQUEST_REFS.to_owned()..) {
            if !refs::is_pull_request_ref(name) {
                break;
            }
            match refs::parse_pull_request_head(name) {
                Some(n) if value.target == update.old => {
                    candidates.push((n, branch.to_owned(), update.old, update.new))
                }
                _ => {}
            }
        }
    }
    candidates.truncate(MAX_CANDIDATES);
    let reads = candidates.iter().map(|(n, ..)| {
        let (bucket, keys, n) = (app.storage.bucket.clone(), repo.keys.clone(), *n);
        async move { events::pull::load(bucket.as_ref(), &keys, n).await }
    });
    let records = futures_util::future::join_all(reads).await;
    let mut out = Vec::new();
    for ((n, branch, old, new), record) in candidates.into_iter().zip(records) {
        match record {
            Ok((pr, _)) if pr.status == "open" && pr.source_branch == branch => {
                out.push(RefUpdate {
                    name: refs::pull_request_head(n),
                    old,
                    new,
                    peeled: None,
                })
            }
            Ok(_) => {}
            // The branch moves all the same; the head catches up at the next push.
            Err(e) => {
                tracing::warn!(repo = %repo.id, pr = n, error = %e, "a pull request's head was not moved")
            }
        }
    }
    out
}
