#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
//! Two stateless replicas on one storage: concurrent pushes through both lose nothing.

use std::path::Path;
use std::sync::Arc;

use artifact_git_e2e::*;

const PUSHERS: usize = 8;
const PUSHES_EACH: usize = 3;

fn two_replicas_one_bucket(backend: &Backend) {
    let a = Server::start_on(backend);
    let b = a.replica();
    a.init("lab/shared");
    let git = Arc::new(Git::default());
    let work = Arc::new(TempDir::new().unwrap());
    let seed = work.path().join("seed");
    std::fs::create_dir(&seed).unwrap();
    make_history(&git, &seed, 20, 99);
    git.ok(&seed, &["push", "-q", &a.repo_url("lab/shared"), "main"]);

    let urls = Arc::new([a.repo_url("lab/shared"), b.repo_url("lab/shared")]);
    let threads: Vec<_> = (0..PUSHERS)
        .map(|p| {
            let (git, work, urls) = (git.clone(), work.clone(), urls.clone());
            std::thread::spawn(move || {
                // Even pushers share `main`, odd ones have a branch each; they alternate replicas.
                let branch = if p % 2 == 0 {
                    "main".to_owned()
                } else {
                    format!("pusher-{p}")
                };
                let dir = work.path().join(format!("pusher{p}"));
                git.ok(
                    work.path(),
                    &["clone", "-q", &urls[p % 2], dir.to_str().unwrap()],
                );
                let mut accepted = Vec::new();
                let mut refused = 0;
                for n in 0..PUSHES_EACH {
                    let message = format!("pusher {p} push {n}");
                    commit_file(
                        &git,
                        &dir,
                        &format!("p{p}.txt"),
                        &format!("{n}\n"),
                        &message,
                    );
                    let mut attempt = 0;
                    loop {
                        let url = &urls[(p + n + attempt) % 2];
                        let out =
                            git.run(&dir, &["push", url, &format!("HEAD:refs/heads/{branch}")]);
                        if out.status.success() {
                            accepted.push((branch.clone(), message.clone()));
                            break;
                        }
                        let err = String::from_utf8_lossy(&out.stderr);
                        assert!(
                            err.contains("rejected"),
                            "a refused push is told why: {err}"
                        );
                        refused += 1;
                        attempt += 1;
                        assert!(attempt < 50, "pusher {p} starved");
                        git.ok(&dir, &["pull", "-q", "--rebase", url, &branch]);
                    }
                }
                (accepted, refused)
            })
        })
        .collect();
    let mut accepted = Vec::new();
    let mut refused = 0;
    for t in threads {
        let (a, r) = t.join().unwrap();
        accepted.extend(a);
        refused += r;
    }
    assert_eq!(accepted.len(), PUSHERS * PUSHES_EACH);
    eprintln!(
        "{} pushes accepted, {refused} refused and retried",
        accepted.len()
    );

    // Clones from either replica are identical and hold every accepted push.
    let clone = |server: &Server, name: &str| {
        let dir = work.path().join(name);
        git.ok(
            work.path(),
            &[
                "clone",
                "-q",
                "--mirror",
                &server.repo_url("lab/shared"),
                dir.to_str().unwrap(),
            ],
        );
        dir
    };
    let from_a = clone(&a, "check-a");
    let from_b = clone(&b, "check-b");
    assert_eq!(git.refs(&from_a, "refs/"), git.refs(&from_b, "refs/"));
    for dir in [&from_a, &from_b] {
        git.ok(dir, &["fsck", "--strict"]);
    }
    let log = |dir: &Path, branch: &str| git.ok(dir, &["log", "--format=%s", branch]);
    for (branch, message) in &accepted {
        assert!(
            log(&from_a, branch).lines().any(|l| l == message),
            "{message} is on {branch}"
        );
    }
    git.ok(&a.bare_repo("lab/shared"), &["fsck", "--strict"]);
}

backend_tests!(two_replicas_one_bucket);
