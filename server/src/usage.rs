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
    if let Err(e) = commit_meta(repo, &tx).await {
        tracing::warn!(repo = %repo.id, error = %e, "counting the repository's usage failed");
    }
}

/// Give `repo` its own limits (`set_quota`), in its refs object.
pub async fn set_quota(repo: &Repo, quota: refs::Quota) -> Result<(), refs::Error> {
    let tx = refs::RefTransaction {
        quota: Some(quota),
        ..refs::RefTransaction::default()
    };
    commit_meta(repo, &tx).await
}

/// Commit `tx`, which moves no ref, recorded like every change of a watched repository.
async fn commit_meta(repo: &Repo, tx: &refs::RefTransaction) -> Result<(), refs::Error> {
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
    repo.refs.commit_with(tx, Some(&journal)).await.map(|_| ())
}

/// Count `lfs_bytes` more (or fewer) LFS bytes in `repo`'s usage.
pub async fn account_lfs(repo: &Repo, lfs_bytes: i64) {
    let change = refs::UsageChange::Add {
        pack_bytes: 0,
        lfs_bytes,
    };
    change_usage(repo, change).await
}
