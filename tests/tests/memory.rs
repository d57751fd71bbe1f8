#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
//! A large push and its clone keep the server's memory bounded, whatever the pack size.

use std::path::Path;

use artifact_git_e2e::*;

const MIB: usize = 1 << 20;
const LIMIT_KIB: u64 = 256 * 1024;
const ANON_LIMIT_KIB: u64 = 96 * 1024;

/// A field of `/proc/<pid>/status`, in KiB.
fn status_kib(pid: u32, field: &str) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    status
        .lines()
        .find_map(|l| l.strip_prefix(field))
        .and_then(|v| {
            v.trim_start_matches(':')
                .trim()
                .trim_end_matches("kB")
                .trim()
                .parse()
                .ok()
        })
        .unwrap_or(0)
}

/// Peak resident set (VmHWM): everything, mapped pack pages included.
fn peak_rss_kib(pid: u32) -> u64 {
    status_kib(pid, "VmHWM")
}

/// Samples the server's anonymous memory (heap, stacks, buffers: what grows if something is
/// buffered in memory) until dropped, keeping the maximum.
struct AnonSampler {
    stop: std::sync::Arc<std::sync::atomic::AtomicBool>,
    thread: Option<std::thread::JoinHandle<u64>>,
}

impl AnonSampler {
    fn start(pid: u32) -> Self {
        let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
        let flag = stop.clone();
        let thread = std::thread::spawn(move || {
            let mut max = 0;
            while !flag.load(std::sync::atomic::Ordering::Relaxed) {
                max = max.max(status_kib(pid, "RssAnon"));
                std::thread::sleep(std::time::Duration::from_millis(10));
            }
            max
        });
        AnonSampler {
            stop,
            thread: Some(thread),
        }
    }

    fn max_kib(mut self) -> u64 {
        self.stop.store(true, std::sync::atomic::Ordering::Relaxed);
        self.thread.take().unwrap().join().unwrap()
    }
}

fn write_random_files(dir: &Path, total: usize, each: usize, seed: u64) {
    let mut rng = Rng::new(seed);
    for i in 0..total / each {
        let data = rng.bytes(each);
        std::fs::write(dir.join(format!("blob{i:03}.bin")), data).unwrap();
    }
}

fn large_push_and_clone_stay_small(backend: &Backend) {
    let server = Server::start_on(backend);
    server.init("lab/big");
    let git = Git::default();
    let work = TempDir::new().unwrap();
    let source = work.path().join("source");
    git.ok(
        work.path(),
        &["init", "-q", "-b", "main", source.to_str().unwrap()],
    );
    // 200 MiB of incompressible data: the pack is as large as the data.
    write_random_files(&source, 200 * MIB, 5 * MIB, 1);
    git.ok(&source, &["add", "."]);
    git.ok(&source, &["commit", "-q", "-m", "large data"]);
    let url = server.repo_url("lab/big");
    let sampler = AnonSampler::start(server.pid());
    git.ok(
        &source,
        &["-c", "core.bigFileThreshold=1m", "push", "-q", &url, "main"],
    );
    let after_push = peak_rss_kib(server.pid());
    let clone = work.path().join("clone");
    git.ok(work.path(), &["clone", "-q", &url, clone.to_str().unwrap()]);
    let after_clone = peak_rss_kib(server.pid());
    let anon = sampler.max_kib();
    eprintln!(
        "server peak RSS: {} MiB after a 200 MiB push, {} MiB after its clone; peak anonymous memory {} MiB",
        after_push / 1024,
        after_clone / 1024,
        anon / 1024
    );
    assert_eq!(
        git.ok(&clone, &["rev-parse", "HEAD^{tree}"]),
        git.ok(&source, &["rev-parse", "HEAD^{tree}"])
    );
    git.ok(&clone, &["fsck", "--strict"]);
    assert!(
        after_clone < LIMIT_KIB,
        "peak RSS {} MiB exceeds 256 MiB",
        after_clone / 1024
    );
    // Buffers must not grow with the pack: only pages of the pack file itself may be mapped.
    assert!(
        anon < ANON_LIMIT_KIB,
        "peak anonymous memory {} MiB",
        anon / 1024
    );
}

backend_tests!(large_push_and_clone_stay_small);
