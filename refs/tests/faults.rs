//! Ref transactions through a misbehaving bucket: several writers, each through its own
//! faulty link (errors before and after a write takes effect, `PreconditionFailed` for a write
//! that landed, latency) to one bucket, race on their own branch and on a shared one. Checked
//! through a healthy link after every step and at the end: an update reported done is there,
//! one reported refused is not, one whose outcome is unknown was told so (and is one or the
//! other), and no acknowledged update is ever lost.
//!
//! `ARTIFACT_GIT_SIM_SEEDS` (default 16) runs that many seeds from `ARTIFACT_GIT_SIM_SEED`
//! (default 1); a failure names its seed, and that seed alone replays it.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::sync::Arc;
use std::time::Duration;

use artifact_git_refs::{Error, RefStore, RefTransaction, RefUpdate};
use gix_hash::ObjectId;
use objectstore::bucket::{Bucket, Faults, FaultyBucket, MemoryBucket};
use objectstore::layout::RepoKeys;

const WRITERS: u64 = 4;
const STEPS: u64 = 30;
const SHARED: &str = "refs/heads/shared";

fn oid(seed: u64, writer: u64, step: u64) -> ObjectId {
    let mut bytes = [0u8; 20];
    bytes[..8].copy_from_slice(&seed.to_be_bytes());
    bytes[8..16].copy_from_slice(&writer.to_be_bytes());
    bytes[16..20].copy_from_slice(&(step as u32 + 1).to_be_bytes());
    ObjectId::from_bytes_or_panic(&bytes)
}

fn null() -> ObjectId {
    ObjectId::null(gix_hash::Kind::Sha1)
}

/// The value of `name` as stored, read through a healthy link.
async fn stored(healthy: &RefStore, name: &str) -> ObjectId {
    healthy
        .snapshot()
        .await
        .map(|s| s.get(name).unwrap_or_else(null))
        .unwrap_or_else(|e| panic!("healthy read failed: {e}"))
}

async fn writer(
    seed: u64,
    w: u64,
    shared: Arc<dyn Bucket>,
    keys: RepoKeys,
) -> Result<(Vec<ObjectId>, u64), String> {
    let link: Arc<dyn Bucket> = Arc::new(FaultyBucket::new(
        shared.clone(),
        Faults {
            fail_before: 0.08,
            fail_after: 0.08,
            after_as_precondition: 0.5,
            max_latency: Duration::from_millis(2),
            stale_list: 0.0,
            stale_for: Duration::ZERO,
        },
        seed.wrapping_mul(1000).wrapping_add(w),
    ));
    let store = RefStore::cached(link, keys.clone(), Default::default());
    let healthy = RefStore::new(shared, keys);
    let name = format!("refs/heads/w{w}");
    let mut acked = null();
    let mut shared_acked = Vec::new();
    let mut unknown = 0;
    for step in 0..STEPS {
        let new = oid(seed, w, step);
        let mut updates = vec![RefUpdate {
            name: name.clone(),
            old: acked,
            new,
            peeled: None,
        }];
        // Every third step also moves the shared branch from the value this writer saw.
        let shared_new = oid(seed, w + 100, step);
        if step % 3 == 0 {
            updates.push(RefUpdate {
                name: SHARED.into(),
                old: stored(&healthy, SHARED).await,
                new: shared_new,
                peeled: None,
            });
        }
        let tx = RefTransaction {
            updates,
            atomic: true,
            ..RefTransaction::default()
        };
        let outcome = store.commit(&tx).await;
        let now = stored(&healthy, &name).await;
        match outcome {
            Ok(results) => match &results[0] {
                Ok(()) => {
                    if now != new {
                        return Err(format!("w{w} step {step}: acknowledged but not stored"));
                    }
                    acked = new;
                    if results.get(1).is_some_and(Result::is_ok) {
                        shared_acked.push(shared_new);
                    }
                }
                Err(refusal) => {
                    if now != acked {
                        return Err(format!(
                            "w{w} step {step}: refused ({refusal}) but the ref moved"
                        ));
                    }
                }
            },
            Err(Error::Unknown(_)) => {
                unknown += 1;
                if now == new {
                    // One atomic write: the shared branch moved with it.
                    acked = new;
                    if step % 3 == 0 {
                        shared_acked.push(shared_new);
                    }
                } else if now != acked {
                    return Err(format!("w{w} step {step}: unknown outcome, ref elsewhere"));
                }
            }
            Err(e) => {
                if now != acked {
                    return Err(format!("w{w} step {step}: failed ({e}) but the ref moved"));
                }
            }
        }
    }
    let last = stored(&healthy, &name).await;
    if last != acked {
        return Err(format!("w{w}: an acknowledged update was lost"));
    }
    Ok((shared_acked, unknown))
}

async fn run(seed: u64) -> Result<u64, String> {
    let shared: Arc<dyn Bucket> = Arc::new(MemoryBucket::new());
    let keys = RepoKeys::at("sim/");
    RefStore::new(shared.clone(), keys.clone())
        .init("main", gix_hash::Kind::Sha1)
        .await
        .map_err(|e| e.to_string())?;
    let tasks: Vec<_> = (0..WRITERS)
        .map(|w| tokio::spawn(writer(seed, w, shared.clone(), keys.clone())))
        .collect();
    let mut shared_acked = Vec::new();
    let mut unknown = 0;
    for t in tasks {
        let (acked, u) = t.await.map_err(|e| e.to_string())??;
        shared_acked.extend(acked);
        unknown += u;
    }
    let healthy = RefStore::new(shared, keys);
    let last_shared = stored(&healthy, SHARED).await;
    if !last_shared.is_null() && !shared_acked.contains(&last_shared) {
        return Err("the shared branch holds a value nobody was told was stored".into());
    }
    Ok(unknown)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn acknowledged_updates_survive_a_faulty_bucket() {
    let env = |k: &str, d: u64| {
        std::env::var(k)
            .ok()
            .and_then(|v| v.parse().ok())
            .unwrap_or(d)
    };
    let (first, count) = (
        env("ARTIFACT_GIT_SIM_SEED", 1),
        env("ARTIFACT_GIT_SIM_SEEDS", 16),
    );
    let mut unknown = 0;
    for seed in first..first + count {
        match run(seed).await {
            Ok(u) => unknown += u,
            Err(e) => panic!("seed {seed} failed (replay: ARTIFACT_GIT_SIM_SEED={seed} ARTIFACT_GIT_SIM_SEEDS=1): {e}"),
        }
    }
    eprintln!("{count} seeds, {unknown} outcomes reported unknown");
}
