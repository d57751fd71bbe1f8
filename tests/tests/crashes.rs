//! kill -9 in the suite: the server killed at random points of pushes (before, during and
//! after the refs commit, between it and the reply) and `artifact-git maintain` killed at random
//! points of a repack, each restarted on the same storage. After every round: a push git
//! reported done is on the server; the refs are either before or after each push (never
//! anything else); a fresh mirror clone passes `git fsck --strict` (no ref names a missing
//! object).

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::process::Stdio;
use std::time::Duration;

use artifact_git_e2e::*;

const ROUNDS: u64 = 10;

fn kill_nine_during_pushes_and_maintenance(backend: &Backend) {
    let mut f = Fixture::new(backend, &[], "lab/crash", 150, 23);
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
    for round in 0..ROUNDS {
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
        let restarted = f.server.replica();
        dead.push(std::mem::replace(&mut f.server, restarted));
        f.url = f.server.repo_url("lab/crash");
        git.ok(&src, &["remote", "set-url", "origin", &f.url]);
        let remote = f.remote_refs();
        let main = remote
            .lines()
            .find(|l| l.ends_with("\trefs/heads/main"))
            .map(|l| l[..40].to_owned())
            .unwrap();
        if acknowledged {
            assert_eq!(main, after, "round {round}: an acknowledged push was lost");
        } else {
            assert!(
                main == before || main == after,
                "round {round}: main is neither before nor after the push"
            );
        }
        eprintln!(
            "round {round}: push {}, main {}",
            if acknowledged {
                "acknowledged"
            } else {
                "failed"
            },
            if main == after { "moved" } else { "unchanged" }
        );
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
}

fn backend_seed(backend: &Backend) -> u64 {
    match backend {
        Backend::Fs => 101,
        Backend::S3 { .. } => 202,
    }
}

backend_tests!(kill_nine_during_pushes_and_maintenance);
