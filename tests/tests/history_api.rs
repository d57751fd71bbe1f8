//! The history API against the git CLI on the same repository: log (with paths, merges and
//! pagination), show and diff (patches `git apply` accepts), list_files, read_file; and the
//! write side: commit_files, stale heads, a race with `git push`, restore, snapshots, LFS.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::path::Path;

use artifact_git_e2e::*;
use base64::Engine;
use serde_json::{json, Value};

fn call(server: &Server, method: &str, params: Value) -> Value {
    server.call("lab", method, params)
}

fn error(server: &Server, token: &str, method: &str, params: Value) -> Value {
    let answer = server.rpc(Some(token), method, params);
    assert!(answer["result"].is_null(), "{method} succeeded: {answer}");
    answer["error"].clone()
}

/// Every commit `log` lists, page by page.
fn api_log(server: &Server, repo: &str, rev: &str, path: Option<&str>, page: usize) -> Vec<String> {
    let mut ids = Vec::new();
    let mut cursor = Value::Null;
    loop {
        let mut params = json!({"artifact_id": repo, "rev": rev, "max_count": page});
        if let Some(p) = path {
            params["path"] = json!(p);
        }
        if !cursor.is_null() {
            params["cursor"] = cursor.clone();
        }
        let out = call(server, "log", params);
        for c in out["commits"].as_array().unwrap() {
            ids.push(c["id"].as_str().unwrap().to_owned());
        }
        cursor = out["next_cursor"].clone();
        if cursor.is_null() {
            return ids;
        }
    }
}

fn lines(text: &str) -> Vec<String> {
    text.lines().map(str::to_owned).collect()
}

/// Merges of side branches that touch their own files, so path filters have merges to
/// simplify.
fn add_merges(git: &Git, src: &Path) {
    git.ok(src, &["checkout", "-q", "main"]);
    for i in 0..3 {
        git.ok(src, &["checkout", "-q", "-b", &format!("side{i}")]);
        commit_file(
            git,
            src,
            &format!("side/s{i}.txt"),
            &format!("side {i}\n"),
            &format!("side {i}"),
        );
        commit_file(
            git,
            src,
            "src/file1.txt",
            &format!("changed on side {i}\n"),
            &format!("side {i} edits file1"),
        );
        git.ok(src, &["checkout", "-q", "main"]);
        commit_file(
            git,
            src,
            &format!("main-{i}.txt"),
            "main\n",
            &format!("main {i}"),
        );
        // Lost in the merge (which takes the side's file1): `git log -- src/file1.txt`
        // does not list it, since the merge equals the side branch there.
        commit_file(
            git,
            src,
            "src/file1.txt",
            &format!("changed on main {i}\n"),
            &format!("main {i} edits file1"),
        );
        git.ok(
            src,
            &[
                "merge",
                "-q",
                "--no-ff",
                "-X",
                "theirs",
                "-m",
                &format!("merge side{i}"),
                &format!("side{i}"),
            ],
        );
    }
    git.ok(src, &["push", "-q", "origin", "main"]);
}

/// `git diff -z --numstat -M100%` as (path, old path, additions, deletions); binary files
/// count `-`.
fn numstat(git: &Git, src: &Path, from: &str, to: &str) -> Vec<(String, String, String, String)> {
    let out = git.ok(src, &["diff", "-z", "--numstat", "-M100%", from, to]);
    let mut parts = out.split('\0').filter(|s| !s.is_empty()).peekable();
    let mut rows = Vec::new();
    while let Some(head) = parts.next() {
        let mut f = head.splitn(3, '\t');
        let (a, d, path) = (f.next().unwrap(), f.next().unwrap(), f.next().unwrap_or(""));
        if path.is_empty() {
            let old = parts.next().unwrap().to_owned();
            let new = parts.next().unwrap().to_owned();
            rows.push((new, old, a.to_owned(), d.to_owned()));
        } else {
            rows.push((path.to_owned(), path.to_owned(), a.to_owned(), d.to_owned()));
        }
    }
    rows.sort();
    rows
}

/// Check a `show`/`diff` answer against git: the same files and counts, and the patch
/// applies to `from` giving `to` (binary files aside, which the patch only names).
fn check_diff(git: &Git, src: &Path, scratch: &Path, answer: &Value, from: &str, to: &str) {
    let mut ours: Vec<(String, String, String, String)> = answer["files"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| {
            let path = f["path"].as_str().unwrap().to_owned();
            let old = f["old_path"].as_str().map_or(path.clone(), str::to_owned);
            let (a, d) = if f["binary"] == true {
                ("-".to_owned(), "-".to_owned())
            } else {
                (f["additions"].to_string(), f["deletions"].to_string())
            };
            (path, old, a, d)
        })
        .collect();
    ours.sort();
    assert_eq!(ours, numstat(git, src, from, to), "{from}..{to}");
    assert_eq!(answer["truncated"], false);
    git.ok(scratch, &["checkout", "-q", "--detach", "-f", from]);
    git.ok(scratch, &["clean", "-qfdx"]);
    let patch = scratch.join("../change.patch");
    std::fs::write(&patch, answer["patch"].as_str().unwrap()).unwrap();
    let binaries: Vec<String> = ours
        .iter()
        .filter(|r| r.2 == "-")
        .map(|r| r.0.clone())
        .collect();
    let mut args = vec!["apply".to_owned(), "--index".to_owned()];
    for b in &binaries {
        args.push(format!("--exclude={b}"));
    }
    args.push(patch.to_str().unwrap().to_owned());
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    if !answer["patch"].as_str().unwrap().is_empty() {
        git.ok(scratch, &args);
    }
    let mut check = vec![
        "diff".to_owned(),
        "--cached".to_owned(),
        "--name-only".to_owned(),
        to.to_owned(),
        "--".to_owned(),
        ".".to_owned(),
    ];
    for b in &binaries {
        check.push(format!(":(exclude){b}"));
    }
    let check: Vec<&str> = check.iter().map(String::as_str).collect();
    let left = git.ok(scratch, &check);
    assert!(
        left.trim().is_empty(),
        "after git apply, {from}..{to} still differs in:\n{left}"
    );
}

fn history_answers_equal_git(backend: &Backend) {
    let f = Fixture::new(backend, &[], "lab/hist", 3000, 71);
    let (git, src) = (&f.git, f.source.as_path());
    add_merges(git, src);
    // log, whole and by path (files, folders, renamed and deleted paths, merged sides).
    let all = lines(&git.ok(src, &["log", "--format=%H", "main"]));
    assert!(all.len() > 3000);
    assert_eq!(api_log(&f.server, "lab/hist", "main", None, 400), all);
    let files = lines(&git.ok(src, &["ls-tree", "-r", "--name-only", "main"]));
    let mut paths: Vec<String> = vec![
        "src".into(),
        "side".into(),
        "src/file1.txt".into(),
        "docs".into(),
    ];
    paths.extend(files.iter().step_by(5).cloned());
    let deleted = git.ok(
        src,
        &["log", "--diff-filter=D", "--format=", "--name-only", "main"],
    );
    paths.extend(
        deleted
            .lines()
            .filter(|l| !l.is_empty())
            .take(2)
            .map(str::to_owned),
    );
    for path in &paths {
        let expected = lines(&git.ok(src, &["log", "--format=%H", "main", "--", path]));
        assert_eq!(
            api_log(&f.server, "lab/hist", "main", Some(path), 100),
            expected,
            "log -- {path}"
        );
    }
    // Revisions as rev-parse reads them.
    for rev in ["HEAD~3", "main^2", "v1.0", "HEAD~10^", "feature"] {
        let id = git.rev(src, &format!("{rev}^{{commit}}"));
        let out = call(
            &f.server,
            "log",
            json!({"artifact_id": "lab/hist", "rev": rev, "max_count": 1}),
        );
        assert_eq!(out["commits"][0]["id"], id.as_str(), "{rev}");
    }
    let short = &all[7][..9];
    let out = call(
        &f.server,
        "log",
        json!({"artifact_id": "lab/hist", "rev": short, "max_count": 1}),
    );
    assert_eq!(out["commits"][0]["id"], all[7].as_str());
    let c = &out["commits"][0];
    assert_eq!(
        c["author"]["email"],
        git.ok(src, &["log", "-1", "--format=%ae", &all[7]]).trim()
    );
    assert_eq!(
        c["message"].as_str().unwrap(),
        git.ok(src, &["log", "-1", "--format=%B", &all[7]])
            .trim_end()
            .to_owned()
            + "\n"
    );

    // show and diff.
    let scratch = f.work.path().join("scratch").join("tree");
    git.ok(
        f.work.path(),
        &[
            "clone",
            "-q",
            src.to_str().unwrap(),
            scratch.to_str().unwrap(),
        ],
    );
    let first_parents = lines(&git.ok(src, &["rev-list", "--first-parent", "main"]));
    for commit in first_parents
        .iter()
        .step_by(61)
        .chain(first_parents.iter().take(4))
    {
        let answer = call(
            &f.server,
            "show",
            json!({"artifact_id": "lab/hist", "rev": commit}),
        );
        assert_eq!(answer["commit"]["id"], commit.as_str());
        let parent = format!("{commit}^");
        if git
            .run(src, &["rev-parse", "-q", "--verify", &parent])
            .status
            .success()
        {
            check_diff(git, src, &scratch, &answer, &parent, commit);
        }
    }
    let (from, to) = (&first_parents[900], &first_parents[0]);
    let answer = call(
        &f.server,
        "diff",
        json!({"artifact_id": "lab/hist", "from": from, "to": to, "max_bytes": 8 << 20}),
    );
    check_diff(git, src, &scratch, &answer, from, to);
    let answer = call(
        &f.server,
        "diff",
        json!({"artifact_id": "lab/hist", "from": from, "to": to, "path": "src"}),
    );
    assert!(answer["files"]
        .as_array()
        .unwrap()
        .iter()
        .all(|f| f["path"].as_str().unwrap().starts_with("src/")));
    // A byte budget: truncated, and says so.
    let small = call(
        &f.server,
        "diff",
        json!({"artifact_id": "lab/hist", "from": from, "to": to, "max_bytes": 300}),
    );
    assert_eq!(small["truncated"], true);
    assert!(small["patch"].as_str().unwrap().len() <= 300);

    // list_files equals `git ls-tree -r -l`, read_file equals `git cat-file`.
    for rev in ["main", &first_parents[500]] {
        let out = call(
            &f.server,
            "list_files",
            json!({"artifact_id": "lab/hist", "rev": rev, "recursive": true}),
        );
        let ours: Vec<String> = out["entries"]
            .as_array()
            .unwrap()
            .iter()
            .map(|e| {
                let size = e["size"].as_u64().map_or("-".to_owned(), |s| s.to_string());
                format!(
                    "{} {} {} {size:>7}\t{}",
                    e["mode"].as_str().unwrap(),
                    e["type"].as_str().unwrap(),
                    e["oid"].as_str().unwrap(),
                    e["path"].as_str().unwrap()
                )
            })
            .collect();
        assert_eq!(
            ours,
            lines(&git.ok(src, &["ls-tree", "-r", "-l", rev])),
            "ls-tree {rev}"
        );
        for entry in out["entries"].as_array().unwrap().iter().step_by(3) {
            let path = entry["path"].as_str().unwrap();
            let file = call(
                &f.server,
                "read_file",
                json!({"artifact_id": "lab/hist", "rev": rev, "path": path}),
            );
            let bytes = base64::engine::general_purpose::STANDARD
                .decode(file["content_base64"].as_str().unwrap())
                .unwrap();
            let expected = git
                .command(src)
                .args(["cat-file", "blob", &format!("{rev}:{path}")])
                .output()
                .unwrap()
                .stdout;
            assert_eq!(bytes, expected, "{rev}:{path}");
        }
    }
    let top = call(
        &f.server,
        "list_files",
        json!({"artifact_id": "lab/hist", "path": "src"}),
    );
    let names: Vec<&str> = top["entries"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["path"].as_str().unwrap())
        .collect();
    assert_eq!(
        names,
        lines(&git.ok(src, &["ls-tree", "--name-only", "main", "src/"]))
    );

    // Hostile or wrong input: clear errors.
    let token = f.server.token("lab", None, "r");
    for (method, params, says) in [
        (
            "read_file",
            json!({"artifact_id": "lab/hist", "path": "../etc/passwd"}),
            "invalid path",
        ),
        (
            "read_file",
            json!({"artifact_id": "lab/hist", "path": "nope.txt"}),
            "no file",
        ),
        (
            "read_file",
            json!({"artifact_id": "lab/hist", "path": "src"}),
            "directory",
        ),
        (
            "log",
            json!({"artifact_id": "lab/hist", "rev": "nosuchbranch"}),
            "unknown revision",
        ),
        (
            "log",
            json!({"artifact_id": "lab/hist", "cursor": "!!!"}),
            "invalid cursor",
        ),
        (
            "log",
            json!({"artifact_id": "lab/hist", "rev": "HEAD~99999"}),
            "unknown revision",
        ),
        (
            "show",
            json!({"artifact_id": "lab/hist", "rev": "a"}),
            "unknown revision",
        ),
        (
            "list_files",
            json!({"artifact_id": "lab/hist", "path": "no/such"}),
            "no such path",
        ),
    ] {
        let e = error(&f.server, &token, method, params.clone());
        assert!(
            e["message"].as_str().unwrap().contains(says),
            "{method} {params}: {e}"
        );
    }
    let e = error(
        &f.server,
        &token,
        "commit_files",
        json!({"artifact_id": "lab/hist", "branch": "main", "expected_head": null, "message": "m", "changes": [{"op": "delete", "path": "x"}]}),
    );
    assert_eq!(e["code"], -32003, "{e}");
}

fn commits_restore_and_snapshots(backend: &Backend) {
    let f = Fixture::new(backend, &[], "lab/write", 30, 73);
    let (git, src) = (&f.git, f.source.as_path());
    git.ok(src, &["checkout", "-q", "main"]);
    let head = git.rev(src, "main");
    let before_rename = git.ok(src, &["cat-file", "blob", "main:src/file1.txt"]);
    let out = call(
        &f.server,
        "commit_files",
        json!({
            "artifact_id": "lab/write", "branch": "main", "expected_head": head, "message": "agent notes\n\nfrom the API",
            "author": {"name": "Agent Smith", "email": "agent@example.com"},
            "changes": [
                {"op": "put", "path": "notes/today.md", "content": "# today\n"},
                {"op": "put", "path": "data/blob.bin", "content_base64": base64::engine::general_purpose::STANDARD.encode([0u8, 1, 2, 255])},
                {"op": "rename", "from": "src/file1.txt", "to": "src/renamed.txt"},
                {"op": "delete", "path": "docs"},
            ],
        }),
    );
    let commit = out["commit"].as_str().unwrap().to_owned();
    git.ok(src, &["pull", "-q", "--ff-only", "origin", "main"]);
    assert_eq!(git.rev(src, "HEAD"), commit);
    assert_eq!(
        std::fs::read_to_string(src.join("notes/today.md")).unwrap(),
        "# today\n"
    );
    assert_eq!(
        std::fs::read(src.join("data/blob.bin")).unwrap(),
        [0u8, 1, 2, 255]
    );
    assert_eq!(
        std::fs::read_to_string(src.join("src/renamed.txt")).unwrap(),
        before_rename
    );
    assert!(!src.join("src/file1.txt").exists() && !src.join("docs").exists());
    assert_eq!(
        git.ok(src, &["log", "-1", "--format=%an <%ae>|%s"]).trim(),
        "Agent Smith <agent@example.com>|agent notes"
    );
    git.ok(src, &["fsck", "--strict"]);
    f.fresh_clone("check", false);
    // The show of that commit finds the rename.
    let shown = call(
        &f.server,
        "show",
        json!({"artifact_id": "lab/write", "rev": commit}),
    );
    let renamed: Vec<&Value> = shown["files"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|f| f["status"] == "renamed")
        .collect();
    assert_eq!(renamed.len(), 1);
    assert_eq!(
        (renamed[0]["old_path"].as_str(), renamed[0]["path"].as_str()),
        (Some("src/file1.txt"), Some("src/renamed.txt"))
    );

    // A stale expected_head: refused with the current head, nothing changes.
    let refs_before = f.remote_refs();
    let token = f.server.token("lab", None, "rw");
    let e = error(
        &f.server,
        &token,
        "commit_files",
        json!({"artifact_id": "lab/write", "branch": "main", "expected_head": head, "message": "late", "changes": [{"op": "put", "path": "late.txt", "content": "x"}]}),
    );
    assert_eq!(e["code"], -32009);
    assert!(e["message"].as_str().unwrap().contains(&commit), "{e}");
    assert_eq!(f.remote_refs(), refs_before);
    // Bad edits are refused whole.
    for (changes, says) in [
        (
            json!([{"op": "put", "path": ".git/config", "content": "x"}]),
            ".git",
        ),
        (
            json!([{"op": "put", "path": "a/../b", "content": "x"}]),
            "invalid path",
        ),
        (
            json!([{"op": "delete", "path": "not/there"}]),
            "no such path",
        ),
        (
            json!([{"op": "put", "path": "src", "content": "x"}]),
            "directory",
        ),
        (
            json!([{"op": "put", "path": "x", "content_base64": "***"}]),
            "content_base64",
        ),
        (
            json!([{"op": "put", "path": "x", "content": "a"}, {"op": "put", "path": "x", "content": "b"}]),
            "twice",
        ),
    ] {
        let e = error(
            &f.server,
            &token,
            "commit_files",
            json!({"artifact_id": "lab/write", "branch": "main", "expected_head": commit, "message": "m", "changes": changes}),
        );
        assert!(
            e["message"].as_str().unwrap().contains(says),
            "{changes}: {e}"
        );
    }
    assert_eq!(f.remote_refs(), refs_before);
    // A new branch from nothing.
    let out = call(
        &f.server,
        "commit_files",
        json!({"artifact_id": "lab/write", "branch": "agent-memory", "expected_head": null, "message": "start", "changes": [{"op": "put", "path": "memory.json", "content": "{}"}]}),
    );
    assert!(f.remote_refs().contains(&format!(
        "{}\trefs/heads/agent-memory",
        out["commit"].as_str().unwrap()
    )));

    // commit_files racing git push on one branch: one wins, the other is told.
    for round in 0..3 {
        let base = git.rev(src, "origin/main");
        git.ok(src, &["fetch", "-q", "origin"]);
        git.ok(src, &["reset", "-q", "--hard", "origin/main"]);
        let base = if base == git.rev(src, "HEAD") {
            base
        } else {
            git.rev(src, "HEAD")
        };
        commit_file(git, src, &format!("race{round}.txt"), "git\n", "from git");
        let pushed = git.rev(src, "HEAD");
        let (push_ok, api) = std::thread::scope(|scope| {
            let push = scope.spawn(|| {
                git.run(src, &["push", "-q", "origin", "HEAD:main"])
                    .status
                    .success()
            });
            let api = f.server.rpc(Some(&token), "commit_files", json!({"artifact_id": "lab/write", "branch": "main", "expected_head": base, "message": "from the api", "changes": [{"op": "put", "path": format!("api{round}.txt"), "content": "api"}]}));
            (push.join().unwrap(), api)
        });
        let api_ok = api["result"]["commit"].is_string();
        assert!(
            push_ok != api_ok,
            "round {round}: push {push_ok}, api {api}"
        );
        let now = f.git.ok(src, &["ls-remote", &f.url, "refs/heads/main"]);
        let winner = if push_ok {
            pushed.clone()
        } else {
            api["result"]["commit"].as_str().unwrap().to_owned()
        };
        assert!(now.starts_with(&winner), "round {round}: {now} vs {winner}");
        if !api_ok {
            assert_eq!(api["error"]["code"], -32009, "{api}");
        }
    }

    // restore a deleted folder: it comes back as a new commit.
    git.ok(src, &["fetch", "-q", "origin"]);
    git.ok(src, &["reset", "-q", "--hard", "origin/main"]);
    let tip = git.rev(src, "HEAD");
    let docs_at = git.rev(src, &format!("{commit}^"));
    let dry = call(
        &f.server,
        "restore",
        json!({"artifact_id": "lab/write", "path": "docs", "from_rev": docs_at, "branch": "main", "expected_head": tip, "dry_run": true}),
    );
    assert!(
        dry["commit"].is_null() && !dry["diff"]["files"].as_array().unwrap().is_empty(),
        "{dry}"
    );
    assert!(f.remote_refs().contains(&format!("{tip}\trefs/heads/main")));
    let restored = call(
        &f.server,
        "restore",
        json!({"artifact_id": "lab/write", "path": "docs", "from_rev": docs_at, "branch": "main", "expected_head": tip}),
    );
    let restored = restored["commit"].as_str().unwrap().to_owned();
    git.ok(src, &["pull", "-q", "--ff-only", "origin", "main"]);
    assert_eq!(
        git.rev(src, "HEAD:docs"),
        git.rev(src, &format!("{docs_at}:docs"))
    );
    let message = git.ok(src, &["log", "-1", "--format=%B", &restored]);
    assert!(
        message.contains(&format!("Restored-From: {docs_at}:docs")),
        "{message}"
    );

    // Snapshots are annotated tags.
    let snap = call(
        &f.server,
        "create_snapshot",
        json!({"artifact_id": "lab/write", "name": "before-cleanup", "message": "state before the cleanup"}),
    );
    git.ok(src, &["fetch", "-q", "--tags", "origin"]);
    assert_eq!(
        git.ok(src, &["cat-file", "-t", "before-cleanup"]).trim(),
        "tag"
    );
    assert_eq!(git.rev(src, "before-cleanup^{commit}"), restored);
    assert_eq!(snap["commit"], restored.as_str());
    let listed = call(
        &f.server,
        "list_snapshots",
        json!({"artifact_id": "lab/write"}),
    );
    let found = listed["snapshots"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["name"] == "before-cleanup")
        .unwrap()
        .clone();
    assert_eq!(found["message"], "state before the cleanup");
    let e = error(
        &f.server,
        &token,
        "create_snapshot",
        json!({"artifact_id": "lab/write", "name": "before-cleanup", "message": "again"}),
    );
    assert_eq!(e["code"], -32009);
    git.ok(src, &["fsck", "--strict"]);
}

#[test]
fn large_files_go_to_lfs_per_gitattributes() {
    let server = Server::start_on(&Backend::Fs);
    server.init("lab/lfsapi");
    let git = Git::default();
    git.lfs_install();
    let work = TempDir::new().unwrap();
    let out = server.call("lab", "commit_files", json!({"artifact_id": "lab/lfsapi", "branch": "main", "expected_head": null, "message": "track", "changes": [{"op": "put", "path": ".gitattributes", "content": "*.bin filter=lfs diff=lfs merge=lfs -text\n"}]}));
    let data: Vec<u8> = (0..300_000u32).map(|i| (i % 251) as u8).collect();
    let out = server.call("lab", "commit_files", json!({"artifact_id": "lab/lfsapi", "branch": "main", "expected_head": out["commit"], "message": "weights", "changes": [{"op": "put", "path": "model/w.bin", "content_base64": base64::engine::general_purpose::STANDARD.encode(&data)}]}));
    assert!(out["commit"].is_string());
    let clone = work.path().join("clone");
    git.ok(
        work.path(),
        &[
            "clone",
            "-q",
            &server.repo_url("lab/lfsapi"),
            clone.to_str().unwrap(),
        ],
    );
    assert_eq!(std::fs::read(clone.join("model/w.bin")).unwrap(), data);
    assert!(git.ok(&clone, &["lfs", "ls-files"]).contains("model/w.bin"));
    let file = server.call(
        "lab",
        "read_file",
        json!({"artifact_id": "lab/lfsapi", "path": "model/w.bin"}),
    );
    assert_eq!(file["lfs"]["size"], data.len());
    assert!(
        file["lfs"]["download_url"]
            .as_str()
            .unwrap()
            .contains("/info/lfs/objects/"),
        "{file}"
    );
}

backend_tests!(history_answers_equal_git, commits_restore_and_snapshots);
