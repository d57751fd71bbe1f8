//! Push mirrors: every accepted push replayed to another git host (a second artifact-git and
//! C git's `git http-backend`), LFS objects carried along, a remote that moved on its own left
//! alone, and wrong credentials reported and paused.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::path::Path;
use std::time::Duration;

use artifact_git_e2e::*;
use serde_json::{json, Value};

const ARGS: &[&str] = &[
    "--webhook-allow-private",
    "--events-poll",
    "300ms",
    "--events-backoff",
    "200ms",
    "--events-backoff-max",
    "1s",
];

/// `git ls-remote --refs` of a URL: every ref and its value, sorted.
fn remote_refs(git: &Git, dir: &Path, url: &str) -> String {
    git.ok(dir, &["ls-remote", "--refs", url])
}

/// Wait until every target advertises exactly the refs of the source.
fn wait_in_step(
    server: &Server,
    repo: &str,
    git: &Git,
    dir: &Path,
    source: &str,
    targets: &[&str],
) {
    let mut last = String::new();
    let same = eventually(Duration::from_secs(60), || {
        let want = remote_refs(git, dir, source);
        for t in targets {
            let got = remote_refs(git, dir, t);
            if got != want {
                last = format!("source:\n{want}\n{t}:\n{got}");
                return false;
            }
        }
        true
    });
    let status = server.call("lab", "list_mirrors", json!({"artifact_id": repo}));
    assert!(same, "mirrors did not catch up: {last}\n{status:#}");
}

/// Clone `url` as a mirror and run `git fsck --strict` on it.
fn fsck_clone(git: &Git, work: &Path, url: &str, name: &str) {
    let dir = work.join(name);
    git.ok(
        work,
        &["clone", "-q", "--mirror", url, dir.to_str().unwrap()],
    );
    git.ok(&dir, &["fsck", "--strict", "--no-progress"]);
}

fn mirror_status(server: &Server, repo: &str, id: &str) -> Value {
    let listed = server.call("lab", "list_mirrors", json!({"artifact_id": repo}));
    listed["mirrors"]
        .as_array()
        .unwrap()
        .iter()
        .find(|m| m["id"] == id)
        .unwrap()["status"]
        .clone()
}

fn mirrors_follow_every_push(backend: &Backend) {
    let f = Fixture::new(backend, ARGS, "lab/origin", 8, 61);
    let (git, src, work) = (&f.git, f.source.as_path(), f.work.path());
    // Target 1: another artifact-git, token as the password.
    let other = Server::start_on(backend);
    other.init("lab/copy");
    let password = other.token("lab", None, "rw");
    let to_ours = f.server.call(
        "lab",
        "add_mirror",
        json!({"artifact_id": "lab/origin", "url": other.plain_url("lab/copy"), "username": "git", "password": password}),
    )["id"]
        .as_str()
        .unwrap()
        .to_owned();
    // Target 2: C git's http-backend, no credentials.
    let root = TempDir::new().unwrap();
    git.ok(root.path(), &["init", "-q", "--bare", "copy.git"]);
    let backend_git = HttpBackend::start(root.path());
    let backend_url = format!("{}/copy.git", backend_git.url);
    let to_backend = f.server.call(
        "lab",
        "add_mirror",
        json!({"artifact_id": "lab/origin", "url": backend_url}),
    )["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let targets = [other.repo_url("lab/copy"), backend_url.clone()];
    let targets: Vec<&str> = targets.iter().map(String::as_str).collect();
    // The first sync carries every existing ref.
    wait_in_step(&f.server, "lab/origin", git, work, &f.url, &targets);

    git.ok(src, &["checkout", "-q", "main"]);
    // A fast-forward.
    commit_file(git, src, "one.txt", "one\n", "one");
    git.ok(src, &["push", "-q", "origin", "main"]);
    wait_in_step(&f.server, "lab/origin", git, work, &f.url, &targets);
    // A new branch and an annotated tag in one push.
    git.ok(src, &["checkout", "-q", "-b", "topic"]);
    commit_file(git, src, "topic.txt", "topic\n", "topic");
    git.ok(src, &["tag", "-a", "v9", "-m", "release 9"]);
    git.ok(src, &["push", "-q", "origin", "topic", "v9"]);
    wait_in_step(&f.server, "lab/origin", git, work, &f.url, &targets);
    // A force push.
    git.ok(src, &["checkout", "-q", "main"]);
    git.ok(src, &["reset", "-q", "--hard", "HEAD~2"]);
    commit_file(git, src, "rewritten.txt", "rewritten\n", "rewritten");
    git.ok(src, &["push", "-q", "-f", "origin", "main"]);
    wait_in_step(&f.server, "lab/origin", git, work, &f.url, &targets);
    // Deletions.
    git.ok(src, &["push", "-q", "origin", ":topic", ":refs/tags/v9"]);
    wait_in_step(&f.server, "lab/origin", git, work, &f.url, &targets);
    assert!(!remote_refs(git, work, targets[1]).contains("refs/heads/topic"));
    for (n, t) in targets.iter().enumerate() {
        fsck_clone(git, work, t, &format!("check{n}"));
    }
    // The status says so, and never shows the password.
    let listed = f
        .server
        .call("lab", "list_mirrors", json!({"artifact_id": "lab/origin"}));
    assert!(!listed.to_string().contains(&password), "{listed}");
    for id in [&to_ours, &to_backend] {
        let status = mirror_status(&f.server, "lab/origin", id);
        assert_eq!(status["pending_events"], 0, "{status}");
        assert!(status["last_error"].is_null(), "{status}");
    }

    // Someone pushes to the http-backend copy directly: its main is not overwritten.
    let direct = work.join("direct");
    git.ok(
        work,
        &["clone", "-q", &backend_url, direct.to_str().unwrap()],
    );
    let theirs = commit_file(git, &direct, "theirs.txt", "theirs\n", "pushed elsewhere");
    git.ok(&direct, &["push", "-q", "origin", "main"]);
    commit_file(git, src, "ours.txt", "ours\n", "ours");
    git.ok(src, &["push", "-q", "origin", "main"]);
    let ours = git.rev(src, "main");
    // The other artifact-git follows; the moved remote keeps its own commit and says why.
    assert!(eventually(Duration::from_secs(60), || {
        remote_refs(git, work, targets[0]).contains(&format!("{ours}\trefs/heads/main"))
    }));
    let mut status = Value::Null;
    assert!(
        eventually(Duration::from_secs(60), || {
            status = mirror_status(&f.server, "lab/origin", &to_backend);
            status["last_error"]
                .as_str()
                .is_some_and(|e| e.contains("refs/heads/main") && e.contains("not overwritten"))
        }),
        "{status}"
    );
    assert!(remote_refs(git, work, &backend_url).contains(&format!("{theirs}\trefs/heads/main")));
    assert!(
        f.server
            .metric("artifact_git_mirror_pushes_total{outcome=\"ok\"}")
            >= 10
    );
}

fn lfs_objects_follow_the_mirror(backend: &Backend) {
    let source = Server::start_on_with(backend, ARGS);
    source.init("lab/weights");
    let other = Server::start_on(backend);
    other.init("lab/weights-copy");
    let git = Git::default();
    git.lfs_install();
    let work = TempDir::new().unwrap();
    let dir = work.path().join("source");
    git.ok(
        work.path(),
        &["init", "-q", "-b", "main", dir.to_str().unwrap()],
    );
    git.ok(&dir, &["lfs", "track", "*.bin"]);
    let mut rng = Rng::new(5);
    let files: Vec<(String, Vec<u8>)> = [("a.bin", 3 << 20), ("b.bin", 1 << 20)]
        .into_iter()
        .map(|(name, size)| (name.to_owned(), rng.bytes(size)))
        .collect();
    for (name, data) in &files {
        std::fs::write(dir.join(name), data).unwrap();
    }
    git.ok(&dir, &["add", "."]);
    git.ok(&dir, &["commit", "-q", "-m", "weights"]);
    git.ok(
        &dir,
        &["remote", "add", "origin", &source.repo_url("lab/weights")],
    );
    git.ok(&dir, &["push", "-q", "origin", "main"]);
    source.call(
        "lab",
        "add_mirror",
        json!({"artifact_id": "lab/weights", "url": other.plain_url("lab/weights-copy"), "username": "git", "password": other.token("lab", None, "rw")}),
    );
    let copy_url = other.repo_url("lab/weights-copy");
    wait_in_step(
        &source,
        "lab/weights",
        &git,
        work.path(),
        &source.repo_url("lab/weights"),
        &[&copy_url],
    );
    // A second version of one file, pushed after the mirror exists.
    let changed = rng.bytes(2 << 20);
    std::fs::write(dir.join("b.bin"), &changed).unwrap();
    git.ok(&dir, &["commit", "-q", "-am", "new b"]);
    git.ok(&dir, &["push", "-q", "origin", "main"]);
    wait_in_step(
        &source,
        "lab/weights",
        &git,
        work.path(),
        &source.repo_url("lab/weights"),
        &[&copy_url],
    );
    let clone = work.path().join("clone");
    git.ok(
        work.path(),
        &["clone", "-q", &copy_url, clone.to_str().unwrap()],
    );
    assert_eq!(std::fs::read(clone.join("a.bin")).unwrap(), files[0].1);
    assert_eq!(std::fs::read(clone.join("b.bin")).unwrap(), changed);
    // Every version's object is on the copy, not only the checked-out one.
    git.ok(&clone, &["lfs", "fetch", "--all", "origin"]);
    let fsck = git.ok(&clone, &["lfs", "fsck"]);
    assert!(fsck.contains("Git LFS fsck OK"), "{fsck}");
}

#[test]
fn wrong_credentials_are_reported_and_pause_the_mirror() {
    let f = Fixture::new(&Backend::Fs, ARGS, "lab/locked", 3, 63);
    let other = Server::start_on(&Backend::Fs);
    other.init("lab/target");
    let bad = "not-a-token-but-a-secret-42";
    let id = f.server.call(
        "lab",
        "add_mirror",
        json!({"artifact_id": "lab/locked", "url": other.plain_url("lab/target"), "username": "git", "password": bad}),
    )["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let mut status = Value::Null;
    assert!(
        eventually(Duration::from_secs(60), || {
            status = mirror_status(&f.server, "lab/locked", &id);
            status["paused"].is_string()
        }),
        "{status}"
    );
    assert!(
        status["last_error"]
            .as_str()
            .unwrap()
            .contains("credentials"),
        "{status}"
    );
    assert!(!status.to_string().contains(bad));
    let failed = f
        .server
        .metric("artifact_git_mirror_pushes_total{outcome=\"failed\"}");
    assert_eq!(failed, 3, "paused after three failures");
    // Paused: further pushes are not tried against the remote.
    let (git, src) = (&f.git, f.source.as_path());
    git.ok(src, &["checkout", "-q", "main"]);
    commit_file(git, src, "more.txt", "more\n", "more");
    git.ok(src, &["push", "-q", "origin", "main"]);
    std::thread::sleep(Duration::from_secs(2));
    assert_eq!(
        f.server
            .metric("artifact_git_mirror_pushes_total{outcome=\"failed\"}"),
        failed
    );
    assert_eq!(
        mirror_status(&f.server, "lab/locked", &id)["pending_events"],
        1
    );
    // Fixed credentials: remove, add again, and it catches up.
    f.server.call(
        "lab",
        "remove_mirror",
        json!({"artifact_id": "lab/locked", "id": id}),
    );
    f.server.call(
        "lab",
        "add_mirror",
        json!({"artifact_id": "lab/locked", "url": other.plain_url("lab/target"), "username": "git", "password": other.token("lab", None, "rw")}),
    );
    wait_in_step(
        &f.server,
        "lab/locked",
        git,
        f.work.path(),
        &f.url,
        &[&other.repo_url("lab/target")],
    );
}

#[test]
fn bad_mirror_parameters_are_refused() {
    let server = Server::start_on_with(&Backend::Fs, &["--webhook-allow-private"]);
    server.init("lab/p");
    let token = server.token("lab", None, "a");
    for (params, says) in [
        (
            json!({"artifact_id": "lab/p", "url": "ftp://example.com/x"}),
            "http",
        ),
        (
            json!({"artifact_id": "lab/p", "url": "https://user:pw@example.com/x"}),
            "credentials",
        ),
        (
            json!({"artifact_id": "lab/p", "url": "https://example.com/x", "username": "a:b", "password": "p"}),
            "username",
        ),
        (
            json!({"artifact_id": "lab/p", "url": "https://example.com/x", "password": "p".repeat(5000)}),
            "password",
        ),
        (json!({"artifact_id": "lab/p"}), "url"),
    ] {
        let answer = server.rpc(Some(&token), "add_mirror", params.clone());
        let message = answer["error"]["message"].as_str().unwrap_or_default();
        assert!(message.contains(says), "{params}: {answer}");
        assert!(!answer.to_string().contains("pppp"), "{answer}");
    }
    let listed = server.call("lab", "list_mirrors", json!({"artifact_id": "lab/p"}));
    assert_eq!(listed["mirrors"], json!([]));
    let answer = server.rpc(
        Some(&token),
        "sync_mirror",
        json!({"artifact_id": "lab/p", "id": "mirror-nope"}),
    );
    assert!(
        answer["error"]["message"]
            .as_str()
            .unwrap_or_default()
            .contains("no mirror"),
        "{answer}"
    );
}

/// A mirror's credentials reach only its remote's origin: a remote whose LFS batch answer
/// sends the upload to another host (here its `--public-url`, a listener on another port)
/// gets the mirror's token on its own requests, the other host none.
fn credentials_stay_with_the_remote(backend: &Backend) {
    let source = Server::start_on_with(backend, ARGS);
    source.init("lab/creds");
    let elsewhere = Receiver::start();
    // Uploads through the server (not presigned), to links under its public URL: elsewhere.
    let remote = Server::start_on_with(
        backend,
        &["--public-url", &elsewhere.url, "--lfs-proxy-above", "1"],
    );
    remote.init("lab/creds-copy");
    let git = Git::default();
    git.lfs_install();
    let work = TempDir::new().unwrap();
    let dir = work.path().join("source");
    git.ok(
        work.path(),
        &["init", "-q", "-b", "main", dir.to_str().unwrap()],
    );
    git.ok(&dir, &["lfs", "track", "*.bin"]);
    std::fs::write(dir.join("w.bin"), Rng::new(6).bytes(64 << 10)).unwrap();
    git.ok(&dir, &["add", "."]);
    git.ok(&dir, &["commit", "-q", "-m", "weights"]);
    git.ok(&dir, &["push", "-q", &source.repo_url("lab/creds"), "main"]);
    let secret = remote.token("lab", None, "rw");
    source.call(
        "lab",
        "add_mirror",
        json!({"artifact_id": "lab/creds", "url": remote.plain_url("lab/creds-copy"), "username": "git", "password": secret}),
    );
    let uploads = |r: &Receiver| -> Vec<Received> {
        r.received()
            .into_iter()
            .filter(|q| q.path.contains("/info/lfs/objects/"))
            .collect()
    };
    assert!(
        eventually(Duration::from_secs(30), || !uploads(&elsewhere).is_empty()),
        "the mirror never sent the object where the remote said"
    );
    for upload in uploads(&elsewhere) {
        assert_eq!(upload.header("authorization"), "", "{}", upload.path);
        assert!(!format!("{:?}", upload.headers).contains(&secret));
    }
}

backend_tests!(
    mirrors_follow_every_push,
    lfs_objects_follow_the_mirror,
    credentials_stay_with_the_remote
);
