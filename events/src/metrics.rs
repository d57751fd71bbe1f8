//! What event delivery reports, through the `metrics` facade (the server installs the
//! Prometheus recorder that `/metrics` renders; [`describe`] gives each its help text).

use std::sync::atomic::{AtomicU64, Ordering};

/// Repositories with undelivered events at the last round (gauge).
pub const PENDING_REPOSITORIES: &str = "artifact_git_events_pending_repositories";
/// Events recorded but not yet handled by every endpoint, at the last round (gauge).
pub const PENDING_EVENTS: &str = "artifact_git_events_pending";
/// The most events any mirror was behind (gauge).
pub const MIRROR_LAG_EVENTS: &str = "artifact_git_mirror_lag_events";
/// Webhook delivery attempts, by `outcome`: delivered, retry, failed, gone.
pub const WEBHOOK_DELIVERIES: &str = "artifact_git_webhook_deliveries_total";
/// Mirror pushes, by `outcome`: ok, failed.
pub const MIRROR_PUSHES: &str = "artifact_git_mirror_pushes_total";
/// Rounds in which an endpoint waited for event records missing from the log's listing.
pub const GAPS_WAITED: &str = "artifact_git_events_gap_waits_total";
/// Artifact versions published from pushes, by `outcome`: ok, resumed, failed.
pub const VERSIONS_PUBLISHED: &str = "artifact_git_versions_published_total";

/// Count one `name` with `outcome`.
pub(crate) fn outcome(name: &'static str, outcome: &'static str) {
    metrics::counter!(name, "outcome" => outcome).increment(1);
}

/// Set a gauge.
pub(crate) fn set(name: &'static str, value: u64) {
    metrics::gauge!(name).set(value as f64);
}

/// Raise the mirror lag gauge to `lag` if it is higher: the furthest-behind mirror seen.
pub(crate) fn mirror_lag(lag: u64) {
    static MAX: AtomicU64 = AtomicU64::new(0);
    let max = MAX.fetch_max(lag, Ordering::Relaxed).max(lag);
    set(MIRROR_LAG_EVENTS, max);
}

/// The help text of every metric above.
pub fn describe() {
    use metrics::{describe_counter, describe_gauge};
    describe_gauge!(
        PENDING_REPOSITORIES,
        "Repositories with push events not yet delivered everywhere."
    );
    describe_gauge!(
        PENDING_EVENTS,
        "Push events not yet delivered to every endpoint."
    );
    describe_gauge!(
        MIRROR_LAG_EVENTS,
        "Push events the furthest-behind mirror has yet to push."
    );
    describe_counter!(WEBHOOK_DELIVERIES, "Webhook delivery attempts by outcome.");
    describe_counter!(MIRROR_PUSHES, "Mirror pushes by outcome.");
    describe_counter!(
        GAPS_WAITED,
        "Rounds in which an endpoint waited for event records missing from the log's listing."
    );
    describe_counter!(
        VERSIONS_PUBLISHED,
        "Artifact versions published from pushes, by outcome."
    );
}
