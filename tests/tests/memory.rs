#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
//! A large push and its clone keep the server's memory bounded, whatever the pack size.

use std::path::Path;

use artifact_git_e2e::*;

const MIB: usize = 1 << 20;
const LIMIT_KIB: u64 = 256 * 1024;
const ANON_LIMIT_KIB: u64 = 96 * 1024;

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
    let sampler = Sampler::start(server.pid(), "RssAnon");
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
