//! A repository's whole life: listed, deleted (404 everywhere at once, on every replica, and
//! no write lands), restored exactly as it was, deleted with purge (no key left).

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use serde_json::json;

use artifact_git_e2e::*;

fn keys_of(server: &Server, repo: &str) -> Vec<String> {
    let (ws, alias) = repo.split_once('/').unwrap();
    let prefix = format!("{ws}/artifacts/{alias}/git/");
    server
        .stored_state()
        .into_keys()
        .filter(|k| k.contains(&prefix) || k.contains(&format!("/{ws}/{alias}/")))
        .collect()
}

fn lifecycle(backend: &Backend) {
    let server = Server::start_on(backend);
    let replica = server.replica();
    let admin = server.token("lab", None, "a");
    let git = Git::default();
    git.lfs_install();
    let work = TempDir::new().unwrap();
    let src = work.path().join("src");
    git.ok(
        work.path(),
        &["init", "-q", "-b", "main", src.to_str().unwrap()],
    );
    git.ok(&src, &["lfs", "track", "*.bin"]);
    let weights = vec![42u8; 300_000];
    std::fs::write(src.join("w.bin"), &weights).unwrap();
    git.ok(&src, &["add", "."]);
    commit_file(&git, &src, "a.txt", "a\n", "first");
    git.ok(&src, &["tag", "-a", "v1", "-m", "v1"]);
    for repo in ["lab/doomed", "lab/other"] {
        server.init(repo);
        git.ok(
            &src,
            &[
                "push",
                "-q",
                &server.url_with_token(repo, &admin),
                "main",
                "v1",
            ],
        );
    }
    let url = server.url_with_token("lab/doomed", &admin);
    let before = git.ok(work.path(), &["ls-remote", &url]);

    // Listed, with sizes, a page at a time; only for the workspace's admins.
    let page = server.call(
        "lab",
        "list_repositories",
        json!({"workspace": "lab", "limit": 1}),
    );
    assert_eq!(
        page["repositories"][0]["artifact_id"], "lab/doomed",
        "{page}"
    );
    assert!(page["repositories"][0]["pack_bytes"].as_u64().unwrap() > 0);
    assert_eq!(page["repositories"][0]["lfs_bytes"], 300_000);
    let next = page["next_cursor"].as_str().unwrap().to_owned();
    let rest = server.call(
        "lab",
        "list_repositories",
        json!({"workspace": "lab", "cursor": next}),
    );
    assert_eq!(
        rest["repositories"][0]["artifact_id"], "lab/other",
        "{rest}"
    );
    assert!(rest["next_cursor"].is_null());
    for token in [
        server.token("lab", None, "rw"),
        server.token("lab", Some("doomed"), "a"),
        server.token("other", None, "a"),
    ] {
        let refused = server.rpc(
            Some(&token),
            "list_repositories",
            json!({"workspace": "lab"}),
        );
        assert!(refused.get("error").is_some(), "{refused}");
    }

    // Deleted: not found on every route and every replica at once, and nothing lands.
    let deleted = server.call(
        "lab",
        "delete_repository",
        json!({"artifact_id": "lab/doomed"}),
    );
    assert_eq!(deleted["deleted"], true);
    for s in [&server, &replica] {
        let u = s.url_with_token("lab/doomed", &admin);
        let out = git.fails(work.path(), &["ls-remote", &u]);
        assert!(out.contains("not found") || out.contains("404"), "{out}");
        assert_eq!(
            s.status("/lab/git/doomed/resolve/main/a.txt", Some(&admin)),
            404
        );
        let log = s.rpc(Some(&admin), "log", json!({"artifact_id": "lab/doomed"}));
        assert_eq!(log["error"]["code"], -32004, "{log}");
    }
    commit_file(&git, &src, "b.txt", "b\n", "after the deletion");
    let out = git.fails(&src, &["push", &url, "main"]);
    assert!(!out.contains("-> main"), "{out}");
    let again = server.rpc(
        Some(&admin),
        "delete_repository",
        json!({"artifact_id": "lab/doomed"}),
    );
    assert_eq!(again["error"]["code"], -32004, "{again}");
    let listed = server.call("lab", "list_repositories", json!({"workspace": "lab"}));
    assert_eq!(listed["repositories"][0]["deleted"], true, "{listed}");
    let enable = server.rpc(
        Some(&admin),
        "enable_git",
        json!({"artifact_id": "lab/doomed"}),
    );
    assert_eq!(enable["error"]["code"], -32009, "{enable}");

    // Restored: exactly as it was.
    replica.call(
        "lab",
        "restore_repository",
        json!({"artifact_id": "lab/doomed"}),
    );
    assert_eq!(git.ok(work.path(), &["ls-remote", &url]), before);
    let clone = work.path().join("clone");
    git.ok(work.path(), &["clone", "-q", &url, clone.to_str().unwrap()]);
    git.ok(&clone, &["fsck", "--strict"]);
    assert_eq!(std::fs::read(clone.join("w.bin")).unwrap(), weights);
    let twice = server.rpc(
        Some(&admin),
        "restore_repository",
        json!({"artifact_id": "lab/doomed"}),
    );
    assert_eq!(twice["error"]["code"], -32004, "{twice}");
    // Writable again.
    git.ok(&src, &["push", "-q", &url, "main"]);

    // Deleted with purge: no key of it is left; the other repository is untouched.
    let other_keys = keys_of(&server, "lab/other");
    assert!(!keys_of(&server, "lab/doomed").is_empty());
    let purged = server.call(
        "lab",
        "delete_repository",
        json!({"artifact_id": "lab/doomed", "purge": true}),
    );
    assert_eq!(purged["purging"], true, "{purged}");
    let gone = eventually(std::time::Duration::from_secs(20), || {
        keys_of(&server, "lab/doomed").is_empty()
    });
    assert!(gone, "{:?}", keys_of(&server, "lab/doomed"));
    assert_eq!(keys_of(&server, "lab/other"), other_keys);
    let gone = server.rpc(
        Some(&admin),
        "restore_repository",
        json!({"artifact_id": "lab/doomed"}),
    );
    assert_eq!(gone["error"]["code"], -32004, "{gone}");
    let listed = server.call("lab", "list_repositories", json!({"workspace": "lab"}));
    let ids: Vec<&str> = listed["repositories"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["artifact_id"].as_str().unwrap())
        .collect();
    assert_eq!(ids, ["lab/other"]);
    // The alias can be used again.
    server.call("lab", "enable_git", json!({"artifact_id": "lab/doomed"}));
}

backend_tests!(lifecycle);

/// Past the retention, a deleted repository is purged by the background purger.
fn purged_after_the_retention(backend: &Backend) {
    let server = Server::start_on_with(
        backend,
        &["--deleted-retention", "1s", "--events-poll", "1s"],
    );
    let admin = server.token("lab", None, "a");
    server.init("lab/short");
    let git = Git::default();
    let work = TempDir::new().unwrap();
    let src = work.path().join("src");
    git.ok(
        work.path(),
        &["init", "-q", "-b", "main", src.to_str().unwrap()],
    );
    commit_file(&git, &src, "a.txt", "a\n", "first");
    git.ok(
        &src,
        &[
            "push",
            "-q",
            &server.url_with_token("lab/short", &admin),
            "main",
        ],
    );
    server.call(
        "lab",
        "delete_repository",
        json!({"artifact_id": "lab/short"}),
    );
    let purged = eventually(std::time::Duration::from_secs(20), || {
        keys_of(&server, "lab/short").is_empty()
    });
    assert!(purged, "{:?}", keys_of(&server, "lab/short"));
    let late = server.rpc(
        Some(&admin),
        "restore_repository",
        json!({"artifact_id": "lab/short"}),
    );
    assert!(late.get("error").is_some(), "{late}");
}

backend_tests!(purged_after_the_retention);

fn repo_size(server: &Server, repo: &str) -> (u64, u64) {
    let listed = server.call("lab", "list_repositories", json!({"workspace": "lab"}));
    let entry = listed["repositories"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["artifact_id"] == repo)
        .cloned()
        .unwrap();
    (
        entry["pack_bytes"].as_u64().unwrap(),
        entry["lfs_bytes"].as_u64().unwrap(),
    )
}

/// A force push that drops an LFS file and a large blob frees both at the next full
/// maintenance; LFS objects are listed and deleted by API; a squash leaves one commit.
fn storage_is_reclaimed(backend: &Backend) {
    let server = Server::start_on(backend);
    let admin = server.token("lab", None, "a");
    server.init("lab/r");
    let url = server.url_with_token("lab/r", &admin);
    let git = Git::default();
    git.lfs_install();
    let work = TempDir::new().unwrap();
    let src = work.path().join("src");
    git.ok(
        work.path(),
        &["init", "-q", "-b", "main", src.to_str().unwrap()],
    );
    git.ok(&src, &["lfs", "track", "*.bin"]);
    let mut rng = Rng::new(7);
    std::fs::write(src.join("model.bin"), rng.bytes(400_000)).unwrap();
    std::fs::write(src.join("big.dat"), rng.bytes(600_000)).unwrap();
    std::fs::write(src.join("keep.bin"), rng.bytes(100_000)).unwrap();
    git.ok(&src, &["add", "."]);
    commit_file(&git, &src, "a.txt", "a\n", "with the large files");
    git.ok(&src, &["push", "-q", &url, "main"]);
    let (packs_before, lfs_before) = repo_size(&server, "lab/r");
    assert_eq!(lfs_before, 500_000);
    let listed = server.call("lab", "list_lfs_files", json!({"artifact_id": "lab/r"}));
    assert_eq!(listed["files"][0]["size"], 400_000, "{listed}");
    assert_eq!(listed["files"][0]["path"], "model.bin");
    assert_eq!(listed["files"][0]["referenced"], true);

    // Force-pushed away: the model and the large blob are no longer reachable.
    git.ok(&src, &["checkout", "-q", "--orphan", "fresh"]);
    git.ok(&src, &["rm", "-q", "--cached", "model.bin", "big.dat"]);
    std::fs::remove_file(src.join("model.bin")).unwrap();
    std::fs::remove_file(src.join("big.dat")).unwrap();
    git.ok(&src, &["commit", "-q", "-m", "without them"]);
    git.ok(&src, &["push", "-q", "-f", &url, "fresh:main"]);
    let listed = server.call("lab", "list_lfs_files", json!({"artifact_id": "lab/r"}));
    let model = listed["files"]
        .as_array()
        .unwrap()
        .iter()
        .find(|f| f["size"] == 400_000)
        .unwrap()
        .clone();
    assert_eq!(model["referenced"], false, "{listed}");
    let report = server.maintain(
        "lab/r",
        &["--prune-after", "0s", "--delete-replaced-after", "0s"],
    );
    assert!(
        report.contains("1 unreferenced LFS objects (400000 bytes) removed"),
        "{report}"
    );
    let (packs_after, lfs_after) = repo_size(&server, "lab/r");
    assert_eq!(lfs_after, 100_000);
    assert!(
        packs_after + 600_000 <= packs_before,
        "{packs_before} -> {packs_after}"
    );
    let clone = work.path().join("clone");
    git.ok(work.path(), &["clone", "-q", &url, clone.to_str().unwrap()]);
    git.ok(&clone, &["fsck", "--strict"]);
    assert!(clone.join("keep.bin").exists());

    // Deleted by API, at once.
    let keep = server.call("lab", "list_lfs_files", json!({"artifact_id": "lab/r"}))["files"][0]
        ["oid"]
        .as_str()
        .unwrap()
        .to_owned();
    let missing = "0".repeat(64);
    let deleted = server.call(
        "lab",
        "delete_lfs_files",
        json!({"artifact_id": "lab/r", "oids": [keep, missing]}),
    );
    assert_eq!(deleted["bytes"], 100_000, "{deleted}");
    assert_eq!(deleted["not_found"][0], missing.as_str());
    assert_eq!(repo_size(&server, "lab/r").1, 0);
    let bad = server.rpc(
        Some(&admin),
        "delete_lfs_files",
        json!({"artifact_id": "lab/r", "oids": ["../x"]}),
    );
    assert_eq!(bad["error"]["code"], -32602, "{bad}");

    // Squashed: one commit of the same tree; a protected branch refuses it.
    for i in 0..3 {
        commit_file(
            &git,
            &src,
            &format!("f{i}.txt"),
            &format!("{i}\n"),
            &format!("commit {i}"),
        );
    }
    git.ok(&src, &["push", "-q", "-f", &url, "fresh:main"]);
    let tree = git.rev(&src, "fresh^{tree}");
    server.call("lab", "set_push_policy",
        json!({"artifact_id": "lab/r", "policy": {"rules": [{"refs": ["refs/heads/main"], "no_force": true}]}}),
    );
    let refused = server.rpc(
        Some(&admin),
        "squash_history",
        json!({"artifact_id": "lab/r"}),
    );
    assert_eq!(refused["error"]["code"], -32010, "{refused}");
    server.call(
        "lab",
        "set_push_policy",
        json!({"artifact_id": "lab/r", "policy": {}}),
    );
    let squashed = server.call(
        "lab",
        "squash_history",
        json!({"artifact_id": "lab/r", "message": "one commit"}),
    );
    git.ok(&clone, &["fetch", "-q", "origin"]);
    assert_eq!(
        git.rev(&clone, "origin/main"),
        squashed["commit"].as_str().unwrap()
    );
    assert_eq!(git.rev(&clone, "origin/main^{tree}"), tree);
    assert_eq!(
        git.ok(&clone, &["rev-list", "--count", "origin/main"])
            .trim(),
        "1"
    );
    git.ok(&clone, &["fsck", "--strict"]);
}

backend_tests!(storage_is_reclaimed);

/// The usage the refs object keeps equals what a full listing sums, after every step of a
/// seeded sequence of pushes, LFS uploads, deletions and maintenance runs.
fn usage_follows_every_change(backend: &Backend) {
    let server = Server::start_on(backend);
    let admin = server.token("lab", None, "a");
    server.init("lab/u");
    let url = server.url_with_token("lab/u", &admin);
    let git = Git::default();
    git.lfs_install();
    let work = TempDir::new().unwrap();
    let src = work.path().join("src");
    git.ok(
        work.path(),
        &["init", "-q", "-b", "main", src.to_str().unwrap()],
    );
    git.ok(&src, &["lfs", "track", "*.bin"]);
    commit_file(&git, &src, "start.txt", "start\n", "start");
    git.ok(&src, &["push", "-q", &url, "main"]);
    let listed = |server: &Server| -> (u64, u64) {
        let (mut packs, mut lfs) = (0, 0);
        for (key, data) in server.stored_state() {
            if key.contains("lab/artifacts/u/git/objects/pack/")
                && (key.ends_with(".pack") || key.ends_with(".idx"))
            {
                packs += data.len() as u64;
            } else if key.contains("lab/artifacts/u/git/lfs/objects/") {
                lfs += data.len() as u64;
            }
        }
        (packs, lfs)
    };
    let mut rng = Rng::new(29);
    let mut steps = Vec::new();
    for step in 0..10 {
        let what = rng.below(5);
        match what {
            0 => {
                let name = format!("text{step}.txt");
                let size = 20_000 + rng.below(50_000) as usize;
                std::fs::write(src.join(&name), rng.bytes(size)).unwrap();
                git.ok(&src, &["add", "."]);
                git.ok(&src, &["commit", "-q", "-m", &name]);
                git.ok(&src, &["push", "-q", &url, "main"]);
            }
            1 => {
                let name = format!("model{step}.bin");
                let size = 30_000 + rng.below(90_000) as usize;
                std::fs::write(src.join(&name), rng.bytes(size)).unwrap();
                git.ok(&src, &["add", "."]);
                git.ok(&src, &["commit", "-q", "-m", &name]);
                git.ok(&src, &["push", "-q", &url, "main"]);
            }
            2 => {
                let files = server.call("lab", "list_lfs_files", json!({"artifact_id": "lab/u"}));
                if let Some(oid) = files["files"][0]["oid"].as_str() {
                    server.call(
                        "lab",
                        "delete_lfs_files",
                        json!({"artifact_id": "lab/u", "oids": [oid]}),
                    );
                }
            }
            3 => {
                server.maintain("lab/u", &["--geometric", "--delete-replaced-after", "0s"]);
            }
            _ => {
                server.maintain(
                    "lab/u",
                    &["--prune-after", "0s", "--delete-replaced-after", "0s"],
                );
            }
        }
        steps.push(what);
        let usage = server.call("lab", "get_usage", json!({"artifact_id": "lab/u"}));
        let (packs, lfs) = listed(&server);
        assert_eq!(
            (
                usage["pack_bytes"].as_u64().unwrap(),
                usage["lfs_bytes"].as_u64().unwrap()
            ),
            (packs, lfs),
            "after steps {steps:?}"
        );
    }
    for kind in 0..5 {
        assert!(
            steps.contains(&kind),
            "the sequence {steps:?} lacks step kind {kind}"
        );
    }
    let workspace = server.call("lab", "get_usage", json!({"workspace": "lab"}));
    let one = server.call("lab", "get_usage", json!({"artifact_id": "lab/u"}));
    assert_eq!(workspace["bytes"], one["bytes"], "{workspace}");
    assert!(server
        .metrics_text()
        .contains("artifact_git_workspace_bytes{workspace=\"lab\"}"));
    let refused = server.rpc(
        Some(&server.token("lab", Some("u"), "a")),
        "get_usage",
        json!({"workspace": "lab"}),
    );
    assert!(refused.get("error").is_some(), "{refused}");
}

backend_tests!(usage_follows_every_change);

/// A soft limit warns, a hard limit refuses a push, an LFS upload and an API commit with
/// nothing stored.
fn quotas(backend: &Backend) {
    let server = Server::start_on(backend);
    let admin = server.token("lab", None, "a");
    server.init("lab/q");
    let url = server.url_with_token("lab/q", &admin);
    let git = Git::default();
    git.lfs_install();
    let work = TempDir::new().unwrap();
    let src = work.path().join("src");
    git.ok(
        work.path(),
        &["init", "-q", "-b", "main", src.to_str().unwrap()],
    );
    commit_file(&git, &src, "a.txt", "a\n", "first");
    git.ok(&src, &["push", "-q", &url, "main"]);
    let used = server.call("lab", "get_usage", json!({"artifact_id": "lab/q"}))["bytes"]
        .as_u64()
        .unwrap();
    for bad in [
        json!({"artifact_id": "lab/q", "hard_limit_bytes": 0}),
        json!({"artifact_id": "lab/q", "hard_limit_bytes": -5}),
        json!({"artifact_id": "lab/q", "soft_limit_bytes": 10, "hard_limit_bytes": 5}),
        json!({"workspace": "lab", "hard_limit_bytes": 0}),
        json!({"workspace": "../x", "hard_limit_bytes": 5}),
        json!({"hard_limit_bytes": 5}),
    ] {
        let refused = server.rpc(Some(&admin), "set_quota", bad.clone());
        assert_eq!(refused["error"]["code"], -32602, "{bad}: {refused}");
    }
    let (soft, hard) = (used + 50_000, used + 400_000);
    server.call(
        "lab",
        "set_quota",
        json!({"artifact_id": "lab/q", "soft_limit_bytes": soft, "hard_limit_bytes": hard}),
    );
    let usage = server.call("lab", "get_usage", json!({"artifact_id": "lab/q"}));
    assert_eq!(
        (
            usage["soft_limit_bytes"].as_u64(),
            usage["hard_limit_bytes"].as_u64()
        ),
        (Some(soft), Some(hard))
    );
    let mut rng = Rng::new(5);
    // Past the soft limit: warned, stored.
    std::fs::write(src.join("b.dat"), rng.bytes(100_000)).unwrap();
    git.ok(&src, &["add", "."]);
    git.ok(&src, &["commit", "-q", "-m", "b"]);
    let out = git.run(&src, &["push", &url, "main"]);
    let text = String::from_utf8_lossy(&out.stderr).into_owned();
    assert!(out.status.success(), "{text}");
    assert!(
        text.contains("remote: warning: the repository stores"),
        "{text}"
    );
    let stored_packs = |server: &Server| {
        server
            .stored_state()
            .into_keys()
            .filter(|k| k.contains("lab/artifacts/q/git/objects/pack/"))
            .collect::<Vec<_>>()
    };
    // Past the hard limit: refused, nothing stored.
    let before = (
        stored_packs(&server),
        git.ok(work.path(), &["ls-remote", &url]),
    );
    std::fs::write(src.join("c.dat"), rng.bytes(1_000_000)).unwrap();
    git.ok(&src, &["add", "."]);
    git.ok(&src, &["commit", "-q", "-m", "c"]);
    let out = git.fails(&src, &["push", &url, "main"]);
    assert!(out.contains("repository quota exceeded"), "{out}");
    assert_eq!(
        (
            stored_packs(&server),
            git.ok(work.path(), &["ls-remote", &url])
        ),
        before
    );
    git.ok(&src, &["reset", "-q", "--hard", "HEAD~1"]);
    // An LFS object past it: the batch API's 507, nothing stored.
    git.ok(&src, &["lfs", "track", "*.bin"]);
    std::fs::write(src.join("w.bin"), rng.bytes(1_000_000)).unwrap();
    git.ok(&src, &["add", "."]);
    git.ok(&src, &["commit", "-q", "-m", "weights"]);
    let out = git.fails(&src, &["push", &url, "main"]);
    assert!(out.contains("quota exceeded"), "{out}");
    let files = server.call("lab", "list_lfs_files", json!({"artifact_id": "lab/q"}));
    assert_eq!(files["total"], 0, "{files}");
    // An API commit past it: its own error code.
    let big = {
        use base64::Engine;
        base64::engine::general_purpose::STANDARD.encode(rng.bytes(600_000))
    };
    let head = git.ok(work.path(), &["ls-remote", &url, "refs/heads/main"]);
    let head = head.split_whitespace().next().unwrap();
    let refused = server.rpc(
        Some(&admin),
        "commit_files",
        json!({"artifact_id": "lab/q", "branch": "main", "expected_head": head, "message": "big",
               "changes": [{"op": "put", "path": "big.bin", "content_base64": big}]}),
    );
    assert_eq!(refused["error"]["code"], -32011, "{}", refused["error"]);
    // Raised: the push goes through.
    server.call("lab", "set_quota", json!({"artifact_id": "lab/q"}));
    git.ok(&src, &["push", "-q", &url, "main"]);

    // A workspace's limit holds over all its repositories.
    let writer = server.token("lab", None, "rw");
    let refused = server.rpc(
        Some(&writer),
        "set_quota",
        json!({"workspace": "lab", "hard_limit_bytes": 5}),
    );
    assert!(refused.get("error").is_some(), "{refused}");
    let total = server.call("lab", "get_usage", json!({"workspace": "lab"}))["bytes"]
        .as_u64()
        .unwrap();
    server.call(
        "lab",
        "set_quota",
        json!({"workspace": "lab", "hard_limit_bytes": total + 200_000}),
    );
    let shown = server.call("lab", "get_usage", json!({"workspace": "lab"}));
    assert_eq!(
        shown["hard_limit_bytes"].as_u64(),
        Some(total + 200_000),
        "{shown}"
    );
    server.init("lab/other");
    let other = server.url_with_token("lab/other", &admin);
    std::fs::write(src.join("d.dat"), rng.bytes(500_000)).unwrap();
    git.ok(&src, &["add", "d.dat"]);
    git.ok(&src, &["commit", "-q", "-m", "d"]);
    let out = git.fails(&src, &["push", &other, "main"]);
    assert!(out.contains("workspace lab quota exceeded"), "{out}");
    server.call("lab", "set_quota", json!({"workspace": "lab"}));
    git.ok(&src, &["push", "-q", &other, "main"]);
}

backend_tests!(quotas);
