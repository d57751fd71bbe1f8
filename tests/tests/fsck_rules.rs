//! git's fsck rules on the way in, as `receive.fsckObjects` applies them: real histories carry
//! old warnings (git's own 2005 trees have a `100664` mode, and zero-padded modes exist in the
//! wild) and are accepted; `--fsck-strict` refuses them with git's message id, which the
//! client reads (no broken pipe).

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::io::Write;
use std::path::Path;
use std::process::Stdio;

use artifact_git_e2e::*;

/// Write `bytes` as a loose object of `kind` exactly as given (`--literally`: no checks).
fn literally(git: &Git, dir: &Path, kind: &str, bytes: &[u8]) -> String {
    let mut child = git
        .command(dir)
        .args(["hash-object", "-w", "--literally", "-t", kind, "--stdin"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    child.stdin.take().unwrap().write_all(bytes).unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(out.status.success());
    String::from_utf8(out.stdout).unwrap().trim().to_owned()
}

fn raw_id(hex: &str) -> Vec<u8> {
    (0..hex.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&hex[i..i + 2], 16).unwrap())
        .collect()
}

/// A history like git's own early one: a tree with a `100664` file and one with a
/// zero-padded directory mode (`040000`). The commit's id.
fn old_history(git: &Git, dir: &Path) -> String {
    git.ok(
        dir.parent().unwrap(),
        &["init", "-q", "-b", "main", dir.to_str().unwrap()],
    );
    let blob = literally(git, dir, "blob", b"written by git in 2005\n");
    let mut inner = b"100664 Makefile\0".to_vec();
    inner.extend(raw_id(&blob));
    let inner = literally(git, dir, "tree", &inner);
    let mut root = b"100664 README\0".to_vec();
    root.extend(raw_id(&blob));
    root.extend(b"040000 old\0");
    root.extend(raw_id(&inner));
    let root = literally(git, dir, "tree", &root);
    let commit = git.ok(dir, &["commit-tree", &root, "-m", "early history"]);
    let commit = commit.trim().to_owned();
    git.ok(dir, &["update-ref", "refs/heads/main", &commit]);
    commit
}

fn historical_warnings_are_accepted(backend: &Backend) {
    let server = Server::start_on(backend);
    server.init("lab/old");
    let git = Git::default();
    let work = TempDir::new().unwrap();
    let src = work.path().join("src");
    let commit = old_history(&git, &src);
    // git itself reports both, as warnings only.
    let fsck = git.run(&src, &["fsck", "--strict"]);
    assert!(
        !fsck.status.success(),
        "the history has the warnings to test"
    );
    let url = server.repo_url("lab/old");
    git.ok(&src, &["push", "-q", &url, "main"]);
    let clone = work.path().join("clone");
    git.ok(work.path(), &["clone", "-q", &url, clone.to_str().unwrap()]);
    assert_eq!(git.rev(&clone, "HEAD"), commit);
    git.ok(&clone, &["fsck"]);
    assert_eq!(
        std::fs::read(clone.join("old/Makefile")).unwrap(),
        b"written by git in 2005\n"
    );
}

fn strict_servers_refuse_them_readably(backend: &Backend) {
    let server = Server::start_on_with(backend, &["--fsck-strict"]);
    server.init("lab/strict");
    let git = Git::default();
    let work = TempDir::new().unwrap();
    let src = work.path().join("src");
    old_history(&git, &src);
    let told = git.fails(&src, &["push", &server.repo_url("lab/strict"), "main"]);
    assert!(
        told.contains("badFilemode") || told.contains("zeroPaddedFilemode"),
        "{told}"
    );
    assert!(!told.contains("broken pipe"), "{told}");
    assert!(git
        .ok(work.path(), &["ls-remote", &server.repo_url("lab/strict")])
        .is_empty());
}

backend_tests!(
    historical_warnings_are_accepted,
    strict_servers_refuse_them_readably
);
