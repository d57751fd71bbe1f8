//! Counters of event delivery, rendered by the server at `/metrics`.

use std::sync::atomic::{AtomicU64, Ordering};

/// Repositories with undelivered events at the last round.
pub static PENDING_REPOSITORIES: AtomicU64 = AtomicU64::new(0);
/// Events recorded but not yet handled by every endpoint, at the last round.
pub static PENDING_EVENTS: AtomicU64 = AtomicU64::new(0);
/// Webhook deliveries answered 2xx.
pub static DELIVERED: AtomicU64 = AtomicU64::new(0);
/// Webhook deliveries to be tried again.
pub static RETRIED: AtomicU64 = AtomicU64::new(0);
/// Webhook deliveries that failed for good.
pub static FAILED: AtomicU64 = AtomicU64::new(0);
/// Webhooks turned off by a `410 Gone`.
pub static GONE: AtomicU64 = AtomicU64::new(0);
/// Mirror pushes that went through.
pub static MIRROR_PUSHES: AtomicU64 = AtomicU64::new(0);
/// Mirror pushes that failed.
pub static MIRROR_FAILURES: AtomicU64 = AtomicU64::new(0);
/// The most events any mirror was behind at the last round.
pub static MIRROR_LAG_EVENTS: AtomicU64 = AtomicU64::new(0);
/// Artifact versions published from pushes.
pub static VERSIONS_PUBLISHED: AtomicU64 = AtomicU64::new(0);
/// Publishes taken over after they were interrupted (a crash, a lost lease).
pub static VERSIONS_RESUMED: AtomicU64 = AtomicU64::new(0);
/// Attempts to publish a version that failed (retried later).
pub static VERSION_FAILURES: AtomicU64 = AtomicU64::new(0);
/// Rounds in which an endpoint waited for event records missing from the log's listing.
pub static GAPS_WAITED: AtomicU64 = AtomicU64::new(0);

pub(crate) fn inc(counter: &AtomicU64) {
    counter.fetch_add(1, Ordering::Relaxed);
}

/// The counters in Prometheus' text format.
pub fn render(out: &mut String) {
    let gauge = |out: &mut String, name: &str, help: &str, v: &AtomicU64| {
        out.push_str(&format!(
            "# HELP {name} {help}\n# TYPE {name} gauge\n{name} {}\n",
            v.load(Ordering::Relaxed)
        ));
    };
    gauge(
        out,
        "artifact_git_events_pending_repositories",
        "Repositories with push events not yet delivered everywhere.",
        &PENDING_REPOSITORIES,
    );
    gauge(
        out,
        "artifact_git_events_pending",
        "Push events not yet delivered to every endpoint.",
        &PENDING_EVENTS,
    );
    gauge(
        out,
        "artifact_git_mirror_lag_events",
        "Push events the furthest-behind mirror has yet to push.",
        &MIRROR_LAG_EVENTS,
    );
    out.push_str("# HELP artifact_git_webhook_deliveries_total Webhook delivery attempts by outcome.\n# TYPE artifact_git_webhook_deliveries_total counter\n");
    for (outcome, v) in [
        ("delivered", &DELIVERED),
        ("retry", &RETRIED),
        ("failed", &FAILED),
        ("gone", &GONE),
    ] {
        out.push_str(&format!(
            "artifact_git_webhook_deliveries_total{{outcome=\"{outcome}\"}} {}\n",
            v.load(Ordering::Relaxed)
        ));
    }
    out.push_str("# HELP artifact_git_mirror_pushes_total Mirror pushes by outcome.\n# TYPE artifact_git_mirror_pushes_total counter\n");
    for (outcome, v) in [("ok", &MIRROR_PUSHES), ("failed", &MIRROR_FAILURES)] {
        out.push_str(&format!(
            "artifact_git_mirror_pushes_total{{outcome=\"{outcome}\"}} {}\n",
            v.load(Ordering::Relaxed)
        ));
    }
    out.push_str(&format!(
        "# HELP artifact_git_events_gap_waits_total Rounds in which an endpoint waited for event records missing from the log's listing.\n# TYPE artifact_git_events_gap_waits_total counter\nartifact_git_events_gap_waits_total {}\n",
        GAPS_WAITED.load(Ordering::Relaxed)
    ));
    out.push_str("# HELP artifact_git_versions_published_total Artifact versions published from pushes, by outcome.\n# TYPE artifact_git_versions_published_total counter\n");
    for (outcome, v) in [
        ("ok", &VERSIONS_PUBLISHED),
        ("resumed", &VERSIONS_RESUMED),
        ("failed", &VERSION_FAILURES),
    ] {
        out.push_str(&format!(
            "artifact_git_versions_published_total{{outcome=\"{outcome}\"}} {}\n",
            v.load(Ordering::Relaxed)
        ));
    }
}
