#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
//! Maintenance: many packs become one, a full clone then streams it unchanged, unreachable
//! objects go only after their grace period, and pushes during maintenance are never lost.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use artifact_git_e2e::*;

fn hundred_pushes_then_one_pack_and_a_verbatim_clone(backend: &Backend) {
    let server = Server::start_on_with(backend, &["--maintain-after-packs", "0"]);
    server.init("lab/m");
    let git = Git::default();
    let work = TempDir::new().unwrap();
    let source = work.path().join("source");
    std::fs::create_dir(&source).unwrap();
    make_history(&git, &source, 40, 8);
    let url = server.repo_url("lab/m");
    git.ok(&source, &["remote", "add", "origin", &url]);
    git.ok(&source, &["push", "-q", "origin", "--all"]);
    git.ok(&source, &["push", "-q", "origin", "--tags"]);
    for i in 0..100 {
        commit_file(
            &git,
            &source,
            &format!("log/{}.txt", i % 10),
            &format!("entry {i}\n"),
            &format!("push {i}"),
        );
        git.ok(&source, &["push", "-q", "origin", "main"]);
    }
    // The same objects twice in the bucket: a branch pushed, deleted, pushed again.
    git.ok(&source, &["checkout", "-q", "-b", "again"]);
    for i in 0..3 {
        commit_file(&git, &source, "again.txt", &format!("{i}\n"), "again");
    }
    git.ok(&source, &["push", "-q", "origin", "again"]);
    git.ok(&source, &["push", "-q", "origin", ":again"]);
    git.ok(&source, &["push", "-q", "origin", "again"]);
    git.ok(&source, &["checkout", "-q", "main"]);
    assert!(pack_count(&server.bare_repo("lab/m")) >= 103);

    // A full clone of many packs: every object once, no history walk, not the verbatim path.
    let verbatim = server.metric("artifact_git_clones_verbatim_total");
    let many = work.path().join("many.git");
    git.ok(
        work.path(),
        &["clone", "-q", "--mirror", &url, many.to_str().unwrap()],
    );
    git.ok(&many, &["fsck", "--strict"]);
    assert_eq!(
        git.refs(&many, "refs/"),
        git.refs(&source, "refs/heads/") + &git.refs(&source, "refs/tags/")
    );
    let objects = |dir: &std::path::Path| {
        git.ok(dir, &["rev-list", "--objects", "--all"])
            .lines()
            .count()
    };
    assert_eq!(objects(&many), objects(&source));
    assert_eq!(
        server.metric("artifact_git_clones_verbatim_total"),
        verbatim
    );

    let report = server.maintain("lab/m", &["--delete-replaced-after", "0s"]);
    assert!(report.contains("replaced packs deleted"), "{report}");
    let bare = server.bare_repo("lab/m");
    assert_eq!(pack_count(&bare), 1, "{report}");
    git.ok(&bare, &["fsck", "--strict"]);
    assert_eq!(
        git.refs(&bare, "refs/heads/"),
        git.refs(&source, "refs/heads/")
    );
    assert_eq!(
        git.refs(&bare, "refs/tags/"),
        git.refs(&source, "refs/tags/")
    );

    // The server lists a repository's packs at most every two seconds (PackCache::LIST_TTL);
    // the clone above made it list the packs maintenance then replaced.
    std::thread::sleep(std::time::Duration::from_millis(2100));
    let before = server.metric("artifact_git_clones_verbatim_total");
    let clone = work.path().join("clone");
    git.ok(work.path(), &["clone", "-q", &url, clone.to_str().unwrap()]);
    assert_eq!(
        server.metric("artifact_git_clones_verbatim_total"),
        before + 1,
        "the full clone took the verbatim path"
    );
    assert_eq!(
        git.ok(&clone, &["rev-parse", "HEAD"]),
        git.ok(&source, &["rev-parse", "HEAD"])
    );
    git.ok(&clone, &["fsck", "--strict"]);
    // Incremental fetches from the maintained pack still work.
    let shallow = work.path().join("shallow");
    git.ok(
        work.path(),
        &[
            "clone",
            "-q",
            "--depth",
            "5",
            &url,
            shallow.to_str().unwrap(),
        ],
    );
    git.ok(&shallow, &["fetch", "-q", "--unshallow"]);
    git.ok(&shallow, &["fsck", "--strict"]);
}

fn unreachable_objects_go_only_after_the_grace_period(backend: &Backend) {
    let server = Server::start_on_with(backend, &["--maintain-after-packs", "0"]);
    server.init("lab/u");
    let git = Git::default();
    let work = TempDir::new().unwrap();
    let source = work.path().join("source");
    git.ok(
        work.path(),
        &["init", "-q", "-b", "main", source.to_str().unwrap()],
    );
    commit_file(&git, &source, "a.txt", "a\n", "base");
    git.ok(&source, &["push", "-q", &server.repo_url("lab/u"), "main"]);
    let orphan = commit_file(&git, &source, "secret.txt", "pushed by mistake\n", "oops");
    git.ok(&source, &["push", "-q", &server.repo_url("lab/u"), "main"]);
    git.ok(&source, &["reset", "-q", "--hard", "HEAD~1"]);
    commit_file(&git, &source, "b.txt", "b\n", "fixed");
    git.ok(
        &source,
        &["push", "-q", "--force", &server.repo_url("lab/u"), "main"],
    );
    // Within the grace period the orphan is kept, apart from the reachable objects.
    server.maintain("lab/u", &["--delete-replaced-after", "0s"]);
    let bare = server.bare_repo("lab/u");
    assert_eq!(
        pack_count(&bare),
        2,
        "one pack of what the refs reach, one of the rest"
    );
    assert!(
        git.run(&bare, &["cat-file", "-e", &orphan])
            .status
            .success(),
        "kept during the grace period"
    );
    // A full clone streams the reachable pack as it is, and the orphan is not in it (once the
    // server lists the packs again: at most every 2 s).
    std::thread::sleep(std::time::Duration::from_millis(2100));
    let verbatim = server.metric("artifact_git_clones_verbatim_total");
    let mirror = work.path().join("mirror");
    git.ok(
        work.path(),
        &[
            "clone",
            "-q",
            "--mirror",
            &server.repo_url("lab/u"),
            mirror.to_str().unwrap(),
        ],
    );
    assert_eq!(
        server.metric("artifact_git_clones_verbatim_total"),
        verbatim + 1
    );
    assert!(!git
        .run(&mirror, &["cat-file", "-e", &orphan])
        .status
        .success());
    git.ok(&mirror, &["fsck", "--strict"]);
    // Past it (a grace of zero), it is dropped; everything reachable stays.
    commit_file(&git, &source, "c.txt", "c\n", "more");
    git.ok(&source, &["push", "-q", &server.repo_url("lab/u"), "main"]);
    let report = server.maintain(
        "lab/u",
        &["--delete-replaced-after", "0s", "--prune-after", "0s"],
    );
    let bare = server.bare_repo("lab/u");
    assert!(
        !git.run(&bare, &["cat-file", "-e", &orphan])
            .status
            .success(),
        "dropped after the grace period: {report}"
    );
    git.ok(&bare, &["fsck", "--strict"]);
}

fn pushes_during_maintenance_are_never_lost(backend: &Backend) {
    let server = Arc::new(Server::start_on_with(
        backend,
        &["--maintain-after-packs", "0"],
    ));
    server.init("lab/busy");
    let git = Arc::new(Git::default());
    let work = Arc::new(TempDir::new().unwrap());
    let seed = work.path().join("seed");
    std::fs::create_dir(&seed).unwrap();
    make_history(&git, &seed, 20, 4);
    let url = server.repo_url("lab/busy");
    git.ok(&seed, &["push", "-q", &url, "main"]);
    let stop = Arc::new(AtomicBool::new(false));
    let maintainer = {
        let (server, stop) = (server.clone(), stop.clone());
        std::thread::spawn(move || {
            let mut runs = 0;
            while !stop.load(Ordering::Relaxed) {
                server.maintain("lab/busy", &["--delete-replaced-after", "0s"]);
                runs += 1;
            }
            runs
        })
    };
    let pushers: Vec<_> = (0..4)
        .map(|p| {
            let (git, work, url) = (git.clone(), work.clone(), url.clone());
            std::thread::spawn(move || {
                let dir = work.path().join(format!("p{p}"));
                git.ok(work.path(), &["clone", "-q", &url, dir.to_str().unwrap()]);
                let branch = if p == 0 {
                    "main".to_owned()
                } else {
                    format!("b{p}")
                };
                let mut accepted = Vec::new();
                for n in 0..8 {
                    let msg = format!("pusher {p} change {n}");
                    commit_file(&git, &dir, &format!("p{p}.txt"), &format!("{n}\n"), &msg);
                    for _ in 0..20 {
                        if git
                            .run(
                                &dir,
                                &["push", "-q", "origin", &format!("HEAD:refs/heads/{branch}")],
                            )
                            .status
                            .success()
                        {
                            accepted.push((branch.clone(), msg.clone()));
                            break;
                        }
                        git.ok(&dir, &["pull", "-q", "--rebase", "origin", &branch]);
                    }
                    // Clones run against the repository while it is being repacked.
                    let check = work.path().join(format!("c{p}-{n}"));
                    git.ok(
                        work.path(),
                        &["clone", "-q", "--bare", &url, check.to_str().unwrap()],
                    );
                }
                accepted
            })
        })
        .collect();
    let accepted: Vec<(String, String)> = pushers
        .into_iter()
        .flat_map(|t| t.join().unwrap())
        .collect();
    stop.store(true, Ordering::Relaxed);
    let runs = maintainer.join().unwrap();
    assert!(runs >= 2, "maintenance ran during the pushes ({runs} runs)");
    assert_eq!(accepted.len(), 32);
    let check = work.path().join("final");
    git.ok(
        work.path(),
        &["clone", "-q", "--mirror", &url, check.to_str().unwrap()],
    );
    git.ok(&check, &["fsck", "--strict"]);
    for (branch, msg) in &accepted {
        let log = git.ok(&check, &["log", "--format=%s", branch]);
        assert!(log.lines().any(|l| l == msg), "{msg} is on {branch}");
    }
    git.ok(&server.bare_repo("lab/busy"), &["fsck", "--strict"]);
}

fn automatic_maintenance_after_pushes(backend: &Backend) {
    let server = Server::start_on_with(
        backend,
        &[
            "--maintain-after-packs",
            "4",
            "--delete-replaced-after",
            "0s",
        ],
    );
    server.init("lab/auto");
    let git = Git::default();
    let work = TempDir::new().unwrap();
    let source = work.path().join("source");
    std::fs::create_dir(&source).unwrap();
    make_history(&git, &source, 60, 3);
    let url = server.repo_url("lab/auto");
    git.ok(&source, &["push", "-q", &url, "main"]);
    let packs = |bare: &std::path::Path| -> Vec<String> {
        let mut names: Vec<String> = std::fs::read_dir(bare.join("objects/pack"))
            .unwrap()
            .flatten()
            .map(|e| e.file_name().to_string_lossy().into_owned())
            .filter(|n| n.ends_with(".pack"))
            .collect();
        names.sort();
        names
    };
    let big = packs(&server.bare_repo("lab/auto"));
    assert_eq!(big.len(), 1);
    for i in 0..8 {
        commit_file(&git, &source, "f.txt", &format!("{i}\n"), &format!("c{i}"));
        git.ok(&source, &["push", "-q", &url, "main"]);
    }
    assert!(eventually(std::time::Duration::from_secs(30), || server
        .metric("artifact_git_maintenance_runs_total")
        >= 1));
    assert!(eventually(
        std::time::Duration::from_secs(30),
        || pack_count(&server.bare_repo("lab/auto")) <= 4
    ));
    // Geometric: the pushes' small packs were merged, the big first pack was left alone.
    let bare = server.bare_repo("lab/auto");
    assert!(packs(&bare).contains(&big[0]), "{:?}", packs(&bare));
    git.ok(&bare, &["fsck", "--strict"]);
    assert_eq!(
        git.refs(&bare, "refs/heads/"),
        git.refs(&source, "refs/heads/main")
    );

    // A full run on demand leaves one pack.
    server.maintain("lab/auto", &["--delete-replaced-after", "0s"]);
    let bare = server.bare_repo("lab/auto");
    assert_eq!(pack_count(&bare), 1);
    git.ok(&bare, &["fsck", "--strict"]);
}

backend_tests!(
    hundred_pushes_then_one_pack_and_a_verbatim_clone,
    unreachable_objects_go_only_after_the_grace_period,
    pushes_during_maintenance_are_never_lost,
    automatic_maintenance_after_pushes,
);
