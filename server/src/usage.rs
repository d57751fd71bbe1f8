//! A repository's usage (the bytes of its packs and LFS objects), kept in its refs object
//! ([`refs::Usage`]): a landing adds its pack in the compare-and-swap that moves its refs; what
//! changes without a ref moving (an LFS object stored or deleted, a count anew by maintenance)
//! goes through [`change_usage`], a change of the refs object that moves no ref.

use crate::repo::Repo;

/// Change `repo`'s usage by `change` (LFS objects stored or deleted, a count anew by
/// maintenance): a change of the refs object that moves no ref, recorded like every change of
/// a watched repository so the event log's chain stays whole. A failure leaves the count
/// behind until the next full maintenance counts anew.
pub async fn change_usage(repo: &Repo, change: refs::UsageChange) {
    let tx = refs::RefTransaction {
        usage: change,
        ..refs::RefTransaction::default()
    };
    let storage = repo.storage();
    let journal = events::log::Recorder::new(
        storage.bucket.clone(),
        &storage.keys(),
        &repo.id.workspace,
        &repo.id.alias,
        events::log::EventMeta {
            source: events::log::Source::Api,
            ..events::log::EventMeta::default()
        },
    );
    if let Err(e) = repo.refs.commit_with(&tx, Some(&journal)).await {
        tracing::warn!(repo = %repo.id, error = %e, "counting the repository's usage failed");
    }
}

/// Count `lfs_bytes` more (or fewer) LFS bytes in `repo`'s usage.
pub async fn account_lfs(repo: &Repo, lfs_bytes: i64) {
    let change = refs::UsageChange::Add {
        pack_bytes: 0,
        lfs_bytes,
    };
    change_usage(repo, change).await
}
