//! Counters exposed at `GET /metrics` in the Prometheus text format.

use std::sync::atomic::{AtomicU64, Ordering};

pub static CLONES_VERBATIM: AtomicU64 = AtomicU64::new(0);
pub static PACKS_GENERATED: AtomicU64 = AtomicU64::new(0);
pub static PUSHES: AtomicU64 = AtomicU64::new(0);
pub static MAINTENANCE_RUNS: AtomicU64 = AtomicU64::new(0);
pub static REJECTED_BUSY: AtomicU64 = AtomicU64::new(0);

pub fn inc(counter: &AtomicU64) {
    counter.fetch_add(1, Ordering::Relaxed);
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
        ("artifact_git_pushes_total", "Pushes received.", &PUSHES),
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
    ] {
        out.push_str(&format!(
            "# HELP {name} {help}\n# TYPE {name} counter\n{name} {}\n",
            counter.load(Ordering::Relaxed)
        ));
    }
    out
}
