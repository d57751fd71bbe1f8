//! Counters exposed at `GET /metrics` in the Prometheus text format.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, OnceLock};

use objectstore::bucket::BucketCalls;

pub static CLONES_VERBATIM: AtomicU64 = AtomicU64::new(0);
pub static PACKS_GENERATED: AtomicU64 = AtomicU64::new(0);
pub static PUSHES: AtomicU64 = AtomicU64::new(0);
pub static MAINTENANCE_RUNS: AtomicU64 = AtomicU64::new(0);
pub static REJECTED_BUSY: AtomicU64 = AtomicU64::new(0);
pub static LFS_BATCHES: AtomicU64 = AtomicU64::new(0);
pub static LFS_UPLOADS: AtomicU64 = AtomicU64::new(0);
pub static LFS_UPLOAD_BYTES: AtomicU64 = AtomicU64::new(0);
pub static LFS_DOWNLOADS: AtomicU64 = AtomicU64::new(0);
pub static LFS_DOWNLOAD_BYTES: AtomicU64 = AtomicU64::new(0);
pub static LFS_VERIFIES: AtomicU64 = AtomicU64::new(0);
pub static LFS_VERIFY_FAILED: AtomicU64 = AtomicU64::new(0);
pub static LFS_PROXIED_IN_BYTES: AtomicU64 = AtomicU64::new(0);
pub static LFS_PROXIED_OUT_BYTES: AtomicU64 = AtomicU64::new(0);
pub static LFS_POINTERS_MISSING: AtomicU64 = AtomicU64::new(0);

/// Calls to the bucket, by kind: each is one round trip to S3.
pub fn bucket_calls() -> &'static Arc<BucketCalls> {
    static CALLS: OnceLock<Arc<BucketCalls>> = OnceLock::new();
    CALLS.get_or_init(Default::default)
}

pub fn inc(counter: &AtomicU64) {
    counter.fetch_add(1, Ordering::Relaxed);
}

pub fn add(counter: &AtomicU64, n: u64) {
    counter.fetch_add(n, Ordering::Relaxed);
}

pub fn render() -> String {
    let mut out = String::new();
    for (name, help, counter) in [
        (
            "artifact_git_clones_verbatim_total",
            "Full clones served by streaming the stored pack unchanged.",
            &CLONES_VERBATIM,
        ),
        (
            "artifact_git_packs_generated_total",
            "Fetches and clones answered with a pack built for them.",
            &PACKS_GENERATED,
        ),
        (
            "artifact_git_pushes_total",
            "Pushes whose commands were read (the pack may still be arriving).",
            &PUSHES,
        ),
        (
            "artifact_git_maintenance_runs_total",
            "Repacks run by this process.",
            &MAINTENANCE_RUNS,
        ),
        (
            "artifact_git_rejected_busy_total",
            "Clones, fetches and pushes refused with 503.",
            &REJECTED_BUSY,
        ),
        (
            "artifact_git_lfs_batches_total",
            "LFS batch requests.",
            &LFS_BATCHES,
        ),
        (
            "artifact_git_lfs_uploads_total",
            "LFS objects a batch asked to upload (not stored yet).",
            &LFS_UPLOADS,
        ),
        (
            "artifact_git_lfs_upload_bytes_total",
            "Bytes of LFS objects stored after their hash was checked.",
            &LFS_UPLOAD_BYTES,
        ),
        (
            "artifact_git_lfs_downloads_total",
            "LFS objects a batch answered with a download action.",
            &LFS_DOWNLOADS,
        ),
        (
            "artifact_git_lfs_download_bytes_total",
            "Bytes of the LFS objects download actions were given for.",
            &LFS_DOWNLOAD_BYTES,
        ),
        (
            "artifact_git_lfs_verifies_total",
            "LFS verify calls.",
            &LFS_VERIFIES,
        ),
        (
            "artifact_git_lfs_verify_failed_total",
            "LFS uploads refused: not uploaded, wrong size or wrong hash.",
            &LFS_VERIFY_FAILED,
        ),
        (
            "artifact_git_lfs_proxied_in_bytes_total",
            "LFS bytes uploaded through this server (not presigned).",
            &LFS_PROXIED_IN_BYTES,
        ),
        (
            "artifact_git_lfs_proxied_out_bytes_total",
            "LFS bytes downloaded through this server (not presigned).",
            &LFS_PROXIED_OUT_BYTES,
        ),
        (
            "artifact_git_lfs_pointers_missing_total",
            "Pushes refused for LFS pointers to objects the store does not have.",
            &LFS_POINTERS_MISSING,
        ),
    ] {
        out.push_str(&format!(
            "# HELP {name} {help}\n# TYPE {name} counter\n{name} {}\n",
            counter.load(Ordering::Relaxed)
        ));
    }
    out.push_str(
        "# HELP artifact_git_bucket_calls_total Calls to the bucket (each a round trip to S3), by kind.\n# TYPE artifact_git_bucket_calls_total counter\n",
    );
    for (kind, count) in bucket_calls().counts() {
        out.push_str(&format!(
            "artifact_git_bucket_calls_total{{kind=\"{kind}\"}} {count}\n"
        ));
    }
    events::metrics::render(&mut out);
    out
}
