//! The server's life: a SIGTERM during a push lets the push finish (asserted: it succeeds and
//! is stored), then the process exits 0.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::time::Duration;

use artifact_git_e2e::*;

fn sigterm_during_a_large_push(backend: &Backend) {
    let mut server = Server::start_on(backend);
    server.init("lab/term");
    let git = Git::default();
    let work = TempDir::new().unwrap();
    let source = work.path().join("source");
    git.ok(
        work.path(),
        &["init", "-q", "-b", "main", source.to_str().unwrap()],
    );
    let mut rng = Rng::new(41);
    for i in 0..6 {
        std::fs::write(source.join(format!("blob{i}.bin")), rng.bytes(16 << 20)).unwrap();
    }
    git.ok(&source, &["add", "."]);
    git.ok(&source, &["commit", "-q", "-m", "96 MiB of data"]);
    let head = git.ok(&source, &["rev-parse", "HEAD"]).trim().to_owned();
    let url = server.repo_url("lab/term");
    let push = {
        let mut cmd = git.command(&source);
        cmd.args(["-c", "core.bigFileThreshold=1m", "push", "-q", &url, "main"]);
        std::thread::spawn(move || cmd.output().unwrap())
    };
    // Once the server has the push in hand, ask it to stop.
    if !eventually(Duration::from_secs(60), || {
        server.metric("artifact_git_pushes_total") == 1
    }) {
        let out = push.join().unwrap();
        panic!(
            "the push never reached the server: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    std::thread::sleep(Duration::from_millis(100));
    let status = server.terminate(Duration::from_secs(60));
    let pushed = push.join().unwrap();
    assert_eq!(
        status.map(|s| s.code()),
        Some(Some(0)),
        "the server exits 0 once the push is done"
    );
    // The push was in flight when the signal came: it finishes, and what it pushed is stored.
    assert!(
        pushed.status.success(),
        "the push in flight at SIGTERM did not finish: {}",
        String::from_utf8_lossy(&pushed.stderr)
    );
    let restarted = server.replica();
    let refs = git.ok(&source, &["ls-remote", &restarted.repo_url("lab/term")]);
    assert!(refs.contains(&head), "{refs}");
    git.ok(&restarted.bare_repo("lab/term"), &["fsck", "--strict"]);
    // New connections are refused while it stops, and after.
    assert_eq!(http_status(&format!("{}/health", server.url), None), 0);
}

backend_tests!(sigterm_during_a_large_push);
