//! What the server reports at `GET /metrics`, in the Prometheus text format.
//!
//! Every counter and histogram goes through the `metrics` facade, emitted where the thing
//! happens, in whichever crate (the bucket's calls in `objectstore`, deliveries in `events`);
//! this module names the server's own, gives every metric its help text and installs the
//! Prometheus recorder once per process. Latencies are histograms in seconds with fixed
//! buckets, so an operator can read p50/p99 of pushes, clones, RPC methods and bucket calls.

use std::sync::OnceLock;
use std::time::Instant;

use metrics::{describe_counter, describe_gauge, describe_histogram};
use metrics_exporter_prometheus::{PrometheusBuilder, PrometheusHandle};

pub const CLONES_VERBATIM: &str = "artifact_git_clones_verbatim_total";
pub const PACKS_GENERATED: &str = "artifact_git_packs_generated_total";
/// Generated answers sent again to an identical request (see `crate::answer_cache`).
pub const ANSWERS_REUSED: &str = "artifact_git_answers_reused_total";
pub const PUSHES: &str = "artifact_git_pushes_total";
/// Bytes of every response body this replica sent but `/metrics` (what clones cost it;
/// bundles and LFS objects fetched from the bucket by presigned URL are not among them).
pub const SENT_BYTES: &str = "artifact_git_sent_bytes_total";
pub const MAINTENANCE_RUNS: &str = "artifact_git_maintenance_runs_total";
pub const REJECTED_BUSY: &str = "artifact_git_rejected_busy_total";
pub const LFS_BATCHES: &str = "artifact_git_lfs_batches_total";
pub const LFS_UPLOADS: &str = "artifact_git_lfs_uploads_total";
pub const LFS_UPLOAD_BYTES: &str = "artifact_git_lfs_upload_bytes_total";
pub const LFS_DOWNLOADS: &str = "artifact_git_lfs_downloads_total";
pub const LFS_DOWNLOAD_BYTES: &str = "artifact_git_lfs_download_bytes_total";
pub const LFS_VERIFIES: &str = "artifact_git_lfs_verifies_total";
pub const LFS_VERIFY_FAILED: &str = "artifact_git_lfs_verify_failed_total";
pub const LFS_PROXIED_IN_BYTES: &str = "artifact_git_lfs_proxied_in_bytes_total";
pub const LFS_PROXIED_OUT_BYTES: &str = "artifact_git_lfs_proxied_out_bytes_total";
pub const LFS_POINTERS_MISSING: &str = "artifact_git_lfs_pointers_missing_total";

/// A push, from its request to its answer (histogram, seconds; `outcome`: applied, refused).
pub const PUSH_SECONDS: &str = "artifact_git_push_seconds";
/// A clone or fetch, from its request to the last byte of its pack (`kind`: clone, fetch).
pub const FETCH_SECONDS: &str = "artifact_git_fetch_seconds";
/// A v2 `ls-refs`.
pub const LS_REFS_SECONDS: &str = "artifact_git_ls_refs_seconds";
/// A JSON-RPC call, by `method`.
pub const RPC_SECONDS: &str = "artifact_git_rpc_seconds";
/// An LFS batch request.
pub const LFS_BATCH_SECONDS: &str = "artifact_git_lfs_batch_seconds";
pub const UPSTREAM_WEBHOOKS: &str = "artifact_git_upstream_webhooks_total";
pub const UPSTREAM_SYNCS: &str = "artifact_git_upstream_syncs_total";
pub const WORKSPACE_BYTES: &str = "artifact_git_workspace_bytes";

/// Histogram buckets, seconds: a bucket call of a millisecond to a clone of minutes.
const BUCKETS: [f64; 16] = [
    0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0,
    120.0,
];

/// How often histogram samples are folded into their buckets.
const UPKEEP_EVERY: std::time::Duration = std::time::Duration::from_secs(5);

/// The process's recorder, installed on first use (several servers in one process, as in the
/// simulation, share it).
fn handle() -> &'static PrometheusHandle {
    static HANDLE: OnceLock<PrometheusHandle> = OnceLock::new();
    HANDLE.get_or_init(|| {
        let recorder = PrometheusBuilder::new()
            .set_buckets(&BUCKETS)
            .map(|b| b.build_recorder())
            .unwrap_or_else(|_| PrometheusBuilder::new().build_recorder());
        let handle = recorder.handle();
        if metrics::set_global_recorder(recorder).is_err() {
            tracing::warn!("a metrics recorder was installed already: /metrics shows nothing");
        }
        describe();
        // Histogram samples wait in the recorder until upkeep folds them into their buckets:
        // without a scrape they would pile up, so upkeep runs every few seconds regardless.
        let upkeep = handle.clone();
        let spawned = std::thread::Builder::new()
            .name("metrics-upkeep".into())
            .spawn(move || loop {
                std::thread::sleep(UPKEEP_EVERY);
                upkeep.run_upkeep();
            });
        if let Err(e) = spawned {
            tracing::warn!(error = %e, "the metrics upkeep thread could not start");
        }
        handle
    })
}

/// Install the recorder (called when a server is built, so that counts start at once).
pub fn install() {
    handle();
}

pub fn inc(name: &'static str) {
    metrics::counter!(name).increment(1);
}

/// The bytes a workspace's repositories store, as last counted by this replica.
pub fn workspace_usage(workspace: &str, bytes: u64) {
    metrics::gauge!(WORKSPACE_BYTES, "workspace" => workspace.to_owned()).set(bytes as f64);
}

/// Count one `outcome` of `name`.
pub fn outcome(name: &'static str, outcome: &'static str) {
    metrics::counter!(name, "outcome" => outcome).increment(1);
}

pub fn add(name: &'static str, n: u64) {
    metrics::counter!(name).increment(n);
}

/// Record the time since `started` in the histogram `name`.
pub fn observe(name: &'static str, started: Instant) {
    metrics::histogram!(name).record(started.elapsed().as_secs_f64());
}

/// Record the time since `started` in the histogram `name`, labelled.
pub fn observe_labelled(
    name: &'static str,
    label: &'static str,
    value: impl Into<metrics::SharedString>,
    started: Instant,
) {
    metrics::histogram!(name, label => value.into()).record(started.elapsed().as_secs_f64());
}

/// Everything recorded so far, in the Prometheus text format.
pub fn render() -> String {
    let handle = handle();
    handle.run_upkeep();
    handle.render()
}

fn describe() {
    for (name, help) in [
        (
            CLONES_VERBATIM,
            "Full clones served by streaming the stored pack unchanged.",
        ),
        (
            PACKS_GENERATED,
            "Fetches and clones answered with a pack built for them.",
        ),
        (
            ANSWERS_REUSED,
            "Of the fetches counted in artifact_git_packs_generated_total, those answered with the pack built for an identical earlier request.",
        ),
        (
            PUSHES,
            "Pushes whose commands were read (the pack may still be arriving).",
        ),
        (MAINTENANCE_RUNS, "Repacks run by this process."),
        (
            REJECTED_BUSY,
            "Clones, fetches and pushes refused with 503.",
        ),
        (LFS_BATCHES, "LFS batch requests."),
        (
            UPSTREAM_WEBHOOKS,
            "Inbound upstream webhooks, by outcome (accepted, ignored, refused, replayed).",
        ),
        (UPSTREAM_SYNCS, "Upstream syncs, by outcome (ok, failed)."),
        (
            LFS_UPLOADS,
            "LFS objects a batch asked to upload (not stored yet).",
        ),
        (
            LFS_UPLOAD_BYTES,
            "Bytes of LFS objects stored after their hash was checked.",
        ),
        (
            LFS_DOWNLOADS,
            "LFS objects a batch answered with a download action.",
        ),
        (
            LFS_DOWNLOAD_BYTES,
            "Bytes of the LFS objects download actions were given for.",
        ),
        (LFS_VERIFIES, "LFS verify calls."),
        (
            LFS_VERIFY_FAILED,
            "LFS uploads refused: not uploaded, wrong size or wrong hash.",
        ),
        (
            LFS_PROXIED_IN_BYTES,
            "LFS bytes uploaded through this server (not presigned).",
        ),
        (
            LFS_PROXIED_OUT_BYTES,
            "LFS bytes downloaded through this server (not presigned).",
        ),
        (
            LFS_POINTERS_MISSING,
            "Writes refused for LFS pointers to objects the store does not have.",
        ),
        (
            objectstore::bucket::BUCKET_CALLS,
            "Calls to the bucket (each a round trip to S3), by kind and backend.",
        ),
    ] {
        describe_counter!(name, help);
    }
    for (name, help) in [
        (PUSH_SECONDS, "Pushes, from request to answer, by outcome."),
        (
            FETCH_SECONDS,
            "Clones and fetches, from request to the pack's last byte.",
        ),
        (LS_REFS_SECONDS, "Protocol v2 ls-refs requests."),
        (RPC_SECONDS, "JSON-RPC calls, by method."),
        (LFS_BATCH_SECONDS, "LFS batch requests."),
        (
            objectstore::bucket::BUCKET_CALL_SECONDS,
            "Calls to the bucket, by kind and backend.",
        ),
    ] {
        describe_histogram!(name, metrics::Unit::Seconds, help);
    }
    describe_gauge!(
        WORKSPACE_BYTES,
        metrics::Unit::Bytes,
        "Bytes a workspace's repositories store (packs and LFS), as get_usage last counted them."
    );
    events::metrics::describe();
}
