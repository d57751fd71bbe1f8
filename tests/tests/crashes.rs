//! kill -9 in the suite: the server killed at random points of pushes (before, during and
//! after the refs commit, between it and the reply: every one of those windows must be hit,
//! the server pausing between commit and reply to make that window wide enough) and `artifact-git maintain` killed at random
//! points of a repack, each restarted on the same storage. After every round: a push git
//! reported done is on the server; the refs are either before or after each push (never
//! anything else); a fresh mirror clone passes `git fsck --strict` (no ref names a missing
//! object).

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::process::Stdio;
use std::time::Duration;

use artifact_git_e2e::*;

/// Rounds run at least; more (up to [`MAX_ROUNDS`]) until every window was hit.
const ROUNDS: u64 = 10;
const MAX_ROUNDS: u64 = 30;

/// Where a kill landed, told by what git was told and what the server then has.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum Window {
    /// Before the refs commit: the push failed and the branch did not move.
    BeforeCommit,
    /// Between the refs commit and the reply: the push failed, the branch moved.
    BeforeReply,
    /// After the reply: the push succeeded.
    AfterReply,
}

fn kill_nine_during_pushes_and_maintenance(backend: &Backend) {
    // The reply waits a moment after the refs commit, so that kills can land between the two.
    let mut f = Fixture::new(
        backend,
        &["--test-reply-delay", "150ms"],
        "lab/crash",
        150,
        23,
    );
    let mut rng = Rng::new(backend_seed(backend));
    let mut dead = Vec::new();
    let (git, src) = (&f.git, f.source.clone());
    git.ok(&src, &["checkout", "-q", "main"]);
    // How long such a push takes here: kills are spread over it (and a little after).
    let add_files = |round: &str, rng: &mut Rng| {
        for i in 0..12 {
            let size = 30_000 + rng.below(40_000) as usize;
            std::fs::write(src.join(format!("crash-{round}-{i}.bin")), rng.bytes(size)).unwrap();
        }
        git.ok(&src, &["add", "."]);
        git.ok(&src, &["commit", "-q", "-m", &format!("round {round}")]);
    };
    add_files("calibration", &mut rng);
    let started = std::time::Instant::now();
    git.ok(&src, &["push", "-q", "origin", "main"]);
    let span = (started.elapsed().as_millis() as u64 * 13 / 10).max(50);
    let mut hit = std::collections::BTreeMap::<Window, u32>::new();
    for round in 0..MAX_ROUNDS {
        if round >= ROUNDS && hit.len() == 3 {
            break;
        }
        let before = git.rev(&src, "main");
        // A push with some weight, so that a kill can land inside it.
        add_files(&round.to_string(), &mut rng);
        let after = git.rev(&src, "main");
        let push = git
            .command(&src)
            .args(["push", "-q", "origin", "main"])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        std::thread::sleep(Duration::from_millis(rng.below(span)));
        f.server.kill();
        let acknowledged = push.wait_with_output().unwrap().status.success();
        let restarted = f.server.replica_with(&["--test-reply-delay", "150ms"]);
        dead.push(std::mem::replace(&mut f.server, restarted));
        f.url = f.server.repo_url("lab/crash");
        git.ok(&src, &["remote", "set-url", "origin", &f.url]);
        let remote = f.remote_refs();
        let main = remote
            .lines()
            .find(|l| l.ends_with("\trefs/heads/main"))
            .map(|l| l[..hex_len()].to_owned())
            .unwrap();
        if acknowledged {
            assert_eq!(main, after, "round {round}: an acknowledged push was lost");
        } else {
            assert!(
                main == before || main == after,
                "round {round}: main is neither before nor after the push"
            );
        }
        let window = match (acknowledged, main == after) {
            (true, _) => Window::AfterReply,
            (false, true) => Window::BeforeReply,
            (false, false) => Window::BeforeCommit,
        };
        *hit.entry(window).or_default() += 1;
        eprintln!("round {round}: the kill landed {window:?}");
        f.fresh_clone(&format!("after-push-{round}"), true);
        // Make sure the next round starts from what the server has.
        if main != after {
            git.ok(&src, &["push", "-q", "origin", "main"]);
        }

        // Maintenance killed midway: the repository stays whole.
        let mut maintain = f
            .server
            .cli_command(&["maintain", "lab/crash"])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        std::thread::sleep(Duration::from_millis(rng.below(600)));
        let _ = maintain.kill();
        let _ = maintain.wait();
        let mirror = f.fresh_clone(&format!("after-maintain-{round}"), true);
        assert_eq!(git.rev(&mirror, "main"), git.rev(&src, "main"));
    }
    eprintln!("windows hit: {hit:?}");
    assert_eq!(
        hit.len(),
        3,
        "every window (before the commit, between it and the reply, after the reply) is hit at least once: {hit:?}"
    );
}

fn backend_seed(backend: &Backend) -> u64 {
    match backend {
        Backend::Fs => 101,
        Backend::S3 { .. } => 202,
    }
}

backend_tests!(kill_nine_during_pushes_and_maintenance);
