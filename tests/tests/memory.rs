#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
//! A large push, its clones and its maintenance keep memory bounded, whatever the pack size.
//!
//! Resident memory counts mapped file pages too: a server that maps the packs it serves grows
//! with every page a clone touches. The limits below hold for the server process and for the
//! `maintain` process, mapped pages included (the `bench/` memory run does the same at 1 GiB).

use artifact_git_e2e::*;

const MIB: usize = 1 << 20;
const LIMIT_KIB: u64 = 256 * 1024;
const ANON_LIMIT_KIB: u64 = 96 * 1024;

fn large_push_clone_and_maintenance_stay_small(backend: &Backend) {
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
    // A second push of deltas against the first one's large objects (a thin pack the server
    // completes with those bases).
    edit_random_files(&source, 2, 2);
    git.ok(&source, &["commit", "-q", "-am", "edits"]);
    git.ok(&source, &["push", "-q", &url, "main"]);
    let after_deltas = peak_rss_kib(server.pid());
    // A clone of the two packs.
    let clone = work.path().join("clone");
    git.ok(work.path(), &["clone", "-q", &url, clone.to_str().unwrap()]);
    let after_clone = peak_rss_kib(server.pid());
    let expected_tree = git.ok(&source, &["rev-parse", "HEAD^{tree}"]);
    assert_eq!(git.ok(&clone, &["rev-parse", "HEAD^{tree}"]), expected_tree);
    git.ok(&clone, &["fsck", "--strict"]);

    // Maintenance of the repository, in its own process: one pack from the two.
    let maintain = server.cli_command(&["maintain", "lab/big", "--delete-replaced-after", "0s"]);
    let maintenance = peak_rss_of_run(maintain);
    // And a clone of the maintained pack.
    let clone2 = work.path().join("clone2");
    git.ok(
        work.path(),
        &["clone", "-q", &url, clone2.to_str().unwrap()],
    );
    assert_eq!(
        git.ok(&clone2, &["rev-parse", "HEAD^{tree}"]),
        expected_tree
    );
    git.ok(&clone2, &["fsck", "--strict"]);
    let server_peak = peak_rss_kib(server.pid());
    let anon = sampler.max_kib();
    eprintln!(
        "server peak RSS: {} MiB after a 200 MiB push, {} MiB after a push of deltas, {} MiB \
         after a clone, {} MiB after a clone of the maintained pack; peak anonymous memory \
         {} MiB; maintenance peak RSS {} MiB",
        after_push / 1024,
        after_deltas / 1024,
        after_clone / 1024,
        server_peak / 1024,
        anon / 1024,
        maintenance / 1024,
    );
    for (what, kib) in [("the server", server_peak), ("maintenance", maintenance)] {
        assert!(
            kib < LIMIT_KIB,
            "peak RSS of {what}: {} MiB exceeds 256 MiB",
            kib / 1024
        );
    }
    // Buffers must not grow with the pack.
    assert!(
        anon < ANON_LIMIT_KIB,
        "peak anonymous memory {} MiB",
        anon / 1024
    );
}

/// The worst file `read_file` answers (32 MiB of control bytes: as text, each would escape to
/// six), read three times at once, keeps the server within its 512 MiB: the answer is
/// base64 alone, and its memory is reserved from the budget before it is built.
fn read_file_answers_stay_within_budget(backend: &Backend) {
    let server = Server::start_on(backend);
    server.init("lab/ctrl");
    let git = Git::default();
    let work = TempDir::new().unwrap();
    let source = work.path().join("source");
    git.ok(
        work.path(),
        &["init", "-q", "-b", "main", source.to_str().unwrap()],
    );
    let size = 32 * MIB;
    std::fs::write(source.join("control.bin"), vec![1u8; size]).unwrap();
    git.ok(&source, &["add", "."]);
    git.ok(&source, &["commit", "-q", "-m", "control bytes"]);
    git.ok(
        &source,
        &["push", "-q", &server.repo_url("lab/ctrl"), "main"],
    );
    let token = server.token("lab", None, "r");
    let params =
        serde_json::json!({"artifact_id": "lab/ctrl", "path": "control.bin", "max_size": size});
    let answers: Vec<serde_json::Value> = std::thread::scope(|scope| {
        let handles: Vec<_> = (0..3)
            .map(|_| scope.spawn(|| server.rpc(Some(&token), "read_file", params.clone())))
            .collect();
        handles.into_iter().map(|h| h.join().unwrap()).collect()
    });
    for answer in &answers {
        let result = &answer["result"];
        assert_eq!(result["size"], size, "{}", answer["error"]);
        assert!(
            result["content"].is_null(),
            "no escaped text copy of control bytes"
        );
        let b64 = result["content_base64"].as_str().unwrap();
        let data = base64::Engine::decode(&base64::engine::general_purpose::STANDARD, b64).unwrap();
        assert!(data.len() == size && data.iter().all(|b| *b == 1));
    }
    let peak = peak_rss_kib(server.pid());
    eprintln!(
        "peak RSS after three 32 MiB read_file answers: {} MiB",
        peak / 1024
    );
    assert!(peak < 512 * 1024, "peak {} MiB", peak / 1024);
}

backend_tests!(
    large_push_clone_and_maintenance_stay_small,
    read_file_answers_stay_within_budget
);
