//! Pushes: ref deletion, atomic pushes, force pushes, stale pushes, racing pushers, and bad
//! input that must be refused without changing anything stored.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::path::Path;
use std::process::Command;

use artifact_git_e2e::*;

fn setup(server: &Server, repo: &str, git: &Git, work: &Path) -> std::path::PathBuf {
    server.init(repo);
    let source = work.join("source");
    std::fs::create_dir(&source).unwrap();
    make_history(git, &source, 30, 21);
    git.ok(
        &source,
        &["remote", "add", "origin", &server.repo_url(repo)],
    );
    git.ok(&source, &["push", "-q", "origin", "--all"]);
    git.ok(&source, &["push", "-q", "origin", "--tags"]);
    source
}

fn remote_refs(git: &Git, dir: &Path, url: &str) -> String {
    git.ok(dir, &["ls-remote", url])
}

fn delete_force_atomic_and_stale(backend: &Backend) {
    let server = Server::start_on(backend);
    let git = Git::default();
    let work = TempDir::new().unwrap();
    let source = setup(&server, "lab/refs", &git, work.path());
    let url = server.repo_url("lab/refs");

    // Delete a branch.
    assert!(remote_refs(&git, &source, &url).contains("refs/heads/release"));
    git.ok(&source, &["push", "-q", "origin", "--delete", "release"]);
    assert!(!remote_refs(&git, &source, &url).contains("refs/heads/release"));

    // A second clone moves main; the first one is now stale.
    let other = work.path().join("other");
    git.ok(work.path(), &["clone", "-q", &url, other.to_str().unwrap()]);
    let moved = commit_file(&git, &other, "other.txt", "from other\n", "other");
    git.ok(&other, &["push", "-q", "origin", "main"]);

    commit_file(&git, &source, "mine.txt", "mine\n", "mine");
    let err = git.fails(&source, &["push", "origin", "main"]);
    assert!(
        err.contains("rejected") && err.contains("fetch first"),
        "{err}"
    );
    assert!(remote_refs(&git, &source, &url).contains(&format!("{moved}\trefs/heads/main")));

    // --atomic with one stale ref: nothing is applied.
    let before = remote_refs(&git, &source, &url);
    git.ok(&source, &["branch", "-f", "feature", "HEAD"]);
    let err = git.fails(&source, &["push", "--atomic", "origin", "main", "feature"]);
    assert!(err.contains("atomic") || err.contains("rejected"), "{err}");
    assert_eq!(
        remote_refs(&git, &source, &url),
        before,
        "an atomic push with a stale ref changed nothing"
    );

    // A push whose expected old value is stale is refused by the server with a reason.
    let err = git.fails(
        &source,
        &[
            "push",
            &format!(
                "--force-with-lease=main:{}",
                git.ok(&source, &["rev-parse", "HEAD~1"]).trim()
            ),
            "origin",
            "main",
        ],
    );
    assert!(
        err.contains("stale info") || err.contains("rejected"),
        "{err}"
    );

    // Force push wins.
    let mine = git.ok(&source, &["rev-parse", "HEAD"]).trim().to_owned();
    git.ok(&source, &["push", "-q", "--force", "origin", "main"]);
    assert!(remote_refs(&git, &source, &url).contains(&format!("{mine}\trefs/heads/main")));

    // The bare repository is still consistent.
    git.ok(&server.bare_repo("lab/refs"), &["fsck", "--strict"]);
}

fn racing_pushes_from_separate_processes_lose_nothing(backend: &Backend) {
    let server = Server::start_on(backend);
    let git = Git::default();
    let work = TempDir::new().unwrap();
    let source = setup(&server, "lab/race", &git, work.path());
    let url = server.repo_url("lab/race");
    for round in 0..5 {
        // Two clones at the same tip each commit something different.
        let clones: Vec<_> = (0..2)
            .map(|i| {
                let dir = work.path().join(format!("r{round}-{i}"));
                git.ok(work.path(), &["clone", "-q", &url, dir.to_str().unwrap()]);
                let id = commit_file(
                    &git,
                    &dir,
                    &format!("racer{i}.txt"),
                    &format!("{round} {i}\n"),
                    &format!("race {round} {i}"),
                );
                (dir, id)
            })
            .collect();
        let children: Vec<_> = clones
            .iter()
            .map(|(dir, _)| {
                git.command(dir)
                    .args(["push", "origin", "main"])
                    .stderr(std::process::Stdio::piped())
                    .spawn()
                    .unwrap()
            })
            .collect();
        let outcomes: Vec<_> = children
            .into_iter()
            .map(|c| c.wait_with_output().unwrap())
            .collect();
        let winners: Vec<usize> = (0..2).filter(|i| outcomes[*i].status.success()).collect();
        assert_eq!(
            winners.len(),
            1,
            "exactly one of two racing pushes wins (round {round})"
        );
        let loser = 1 - winners[0];
        let err = String::from_utf8_lossy(&outcomes[loser].stderr);
        assert!(err.contains("rejected"), "the losing pusher is told: {err}");
        let tip = git.ok(&source, &["ls-remote", &url, "refs/heads/main"]);
        assert!(
            tip.starts_with(&clones[winners[0]].1),
            "the winner's commit is the tip"
        );
        // The loser rebases and pushes again: nothing is lost.
        let (dir, _) = &clones[loser];
        git.ok(dir, &["pull", "-q", "--rebase", "origin", "main"]);
        git.ok(dir, &["push", "-q", "origin", "main"]);
        let log = git.ok(dir, &["log", "--format=%s %H", "origin/main"]);
        assert!(log.contains(&clones[winners[0]].1));
    }
    let check = work.path().join("check");
    git.ok(work.path(), &["clone", "-q", &url, check.to_str().unwrap()]);
    let messages = git.ok(&check, &["log", "--format=%s"]);
    for round in 0..5 {
        for i in 0..2 {
            assert!(
                messages.lines().any(|m| m == format!("race {round} {i}")),
                "push {round}/{i} is in the history"
            );
        }
    }
    git.ok(&check, &["fsck", "--strict"]);
    git.ok(&server.bare_repo("lab/race"), &["fsck", "--strict"]);
}

/// A pack of the objects of `range` made by git itself.
fn pack_of(git: &Git, dir: &Path, revs: &str) -> Vec<u8> {
    pack_objects(git, dir, &["--revs"], revs)
}

/// `git pack-objects --stdout` fed `input` (object ids, or revisions with `--revs`).
fn pack_objects(git: &Git, dir: &Path, options: &[&str], input: &str) -> Vec<u8> {
    use std::io::Write;
    let mut child = git
        .command(dir)
        .args(["pack-objects", "--stdout", "-q"])
        .args(options)
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(format!("{input}\n").as_bytes())
        .unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(out.status.success());
    out.stdout
}

use artifact_git_e2e::packs::{push_request, ZERO};

fn bad_input_is_refused_and_changes_nothing(backend: &Backend) {
    let server = Server::start_on(backend);
    let git = Git::default();
    let work = TempDir::new().unwrap();
    let source = setup(&server, "lab/bad", &git, work.path());
    let url = server.repo_url("lab/bad");
    let receive = format!("{url}/git-receive-pack");
    let upload = format!("{url}/git-upload-pack");
    let ct = "application/x-git-receive-pack-request";
    let before = remote_refs(&git, &source, &url);
    let bare = server.bare_repo("lab/bad");
    let packs_before = std::fs::read_dir(bare.join("objects/pack"))
        .unwrap()
        .count();

    let tip = git.ok(&source, &["rev-parse", "main"]).trim().to_owned();
    let new = commit_file(&git, &source, "bad.txt", "bad input\n", "bad");
    let good_pack = pack_of(&git, &source, &format!("{new}\n^{tip}"));

    let check = |what: &str, status: u16, body: &[u8], needle: &str| {
        let text = String::from_utf8_lossy(body);
        assert!(
            status == 200 || (400..500).contains(&status),
            "{what}: status {status}"
        );
        assert!(
            text.contains(needle),
            "{what}: expected {needle:?} in {text:?}"
        );
        assert_eq!(
            remote_refs(&git, &source, &url),
            before,
            "{what} changed the refs"
        );
    };

    // A truncated pack.
    let truncated = &good_pack[..good_pack.len() / 2];
    let (status, body) = curl_post(
        &receive,
        ct,
        &push_request(&tip, &new, "refs/heads/main", truncated),
        &[],
    );
    check("truncated pack", status, &body, "unpack ");

    // A pack whose trailing checksum is wrong.
    let mut bad_sum = good_pack.clone();
    let n = bad_sum.len();
    bad_sum[n - 1] ^= 0xff;
    let (status, body) = curl_post(
        &receive,
        ct,
        &push_request(&tip, &new, "refs/heads/main", &bad_sum),
        &[],
    );
    check("wrong checksum", status, &body, "unpack ");

    // A pack whose objects do not connect: the commit without its tree.
    let commit_only = pack_objects(&git, &source, &[], &new);
    let (status, body) = curl_post(
        &receive,
        ct,
        &push_request(&tip, &new, "refs/heads/main", &commit_only),
        &[],
    );
    check(
        "unconnected pack",
        status,
        &body,
        "missing necessary objects",
    );

    // The commit and its tree, without the new file's blob: blobs are checked too.
    let tree = git.ok(&source, &["rev-parse", &format!("{new}^{{tree}}")]);
    let no_blob = pack_objects(&git, &source, &[], &format!("{new}\n{}", tree.trim()));
    let (status, body) = curl_post(
        &receive,
        ct,
        &push_request(&tip, &new, "refs/heads/main", &no_blob),
        &[],
    );
    check(
        "pack without a blob",
        status,
        &body,
        "missing necessary objects",
    );

    // An invalid ref name, with a good pack.
    let (status, body) = curl_post(
        &receive,
        ct,
        &push_request(&ZERO, &new, "refs/heads/bad..name", &good_pack),
        &[],
    );
    check("invalid ref name", status, &body, "funny refname");

    // Garbage pkt-lines to both services.
    let (status, body) = curl_post(&receive, ct, b"zzzz this is not a pkt-line", &[]);
    check("garbage push", status, &body, "ERR");
    let (status, body) = curl_post(
        &upload,
        "application/x-git-upload-pack-request",
        b"00ffwant nonsense",
        &[],
    );
    check("garbage fetch", status, &body, "ERR");
    let (status, body) = curl_post(
        &upload,
        "application/x-git-upload-pack-request",
        &[
            pkt("command=fetch\n"),
            v2_format_line(),
            b"0001".to_vec(),
            pkt("want 12345\n"),
            b"0000".to_vec(),
        ]
        .concat(),
        &["-H", "Git-Protocol: version=2"],
    );
    check("garbage v2 fetch", status, &body, "ERR");

    // Nothing was stored: same refs, no new pack, and the repository is consistent.
    assert_eq!(
        std::fs::read_dir(bare.join("objects/pack"))
            .unwrap()
            .count(),
        packs_before
    );
    git.ok(&bare, &["fsck", "--strict"]);

    // After all that, a real push still works.
    git.ok(&source, &["push", "-q", "origin", "main"]);
    assert!(remote_refs(&git, &source, &url).contains(&new));
}

fn gzip_request_bodies_are_accepted(backend: &Backend) {
    let server = Server::start_on(backend);
    let git = Git::default();
    let work = TempDir::new().unwrap();
    let source = setup(&server, "lab/gzip", &git, work.path());
    let url = server.repo_url("lab/gzip");
    let request = [
        pkt("command=ls-refs\n"),
        v2_format_line(),
        b"0001".to_vec(),
        pkt("peel\n"),
        pkt("ref-prefix refs/tags/\n"),
        b"0000".to_vec(),
    ]
    .concat();
    let gz = {
        let mut child = Command::new("gzip")
            .arg("-c")
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::piped())
            .spawn()
            .unwrap();
        use std::io::Write;
        child.stdin.take().unwrap().write_all(&request).unwrap();
        child.wait_with_output().unwrap().stdout
    };
    let (status, body) = curl_post(
        &format!("{url}/git-upload-pack"),
        "application/x-git-upload-pack-request",
        &gz,
        &[
            "-H",
            "Git-Protocol: version=2",
            "-H",
            "Content-Encoding: gzip",
        ],
    );
    assert_eq!(status, 200);
    let text = String::from_utf8_lossy(&body);
    let v1 = git.ok(&source, &["rev-parse", "v1.0"]).trim().to_owned();
    let peeled = git.ok(&source, &["rev-parse", "v1.0^{}"]).trim().to_owned();
    assert!(
        text.contains(&format!("{v1} refs/tags/v1.0 peeled:{peeled}")),
        "{text}"
    );
    // A fetch with many haves makes git itself gzip its request.
    let clone = work.path().join("clone");
    git.ok(work.path(), &["clone", "-q", &url, clone.to_str().unwrap()]);
    for i in 0..40 {
        commit_file(&git, &clone, "local.txt", &format!("{i}\n"), "local only");
    }
    commit_file(&git, &source, "remote.txt", "r\n", "remote");
    git.ok(&source, &["push", "-q", "origin", "main"]);
    git.ok(
        &clone,
        &[
            "-c",
            "protocol.version=0",
            "pull",
            "-q",
            "--no-rebase",
            "--no-edit",
            "origin",
            "main",
        ],
    );
    git.ok(&clone, &["fsck", "--strict"]);
}

fn fetch_by_id_needs_a_reachable_commit(backend: &Backend) {
    let server = Server::start_on(backend);
    let git = Git::default();
    let work = TempDir::new().unwrap();
    let source = setup(&server, "lab/byid", &git, work.path());
    let reachable = git.ok(&source, &["rev-parse", "main~3"]).trim().to_owned();
    let orphan = commit_file(&git, &source, "secret.txt", "pushed by mistake\n", "oops");
    git.ok(&source, &["push", "-q", "origin", "main"]);
    git.ok(&source, &["reset", "-q", "--hard", "HEAD~1"]);
    git.ok(&source, &["push", "-q", "--force", "origin", "main"]);
    for protocol in ["0", "2"] {
        let p = format!("protocol.version={protocol}");
        let dir = work.path().join(format!("byid{protocol}"));
        git.ok(work.path(), &["init", "-q", dir.to_str().unwrap()]);
        let url = server.repo_url("lab/byid");
        git.ok(&dir, &["-c", &p, "fetch", "-q", &url, &reachable]);
        assert!(git
            .run(&dir, &["cat-file", "-e", &reachable])
            .status
            .success());
        let err = git.fails(&dir, &["-c", &p, "fetch", "-q", &url, &orphan]);
        assert!(err.contains("not our ref"), "protocol {protocol}: {err}");
        assert!(!git.run(&dir, &["cat-file", "-e", &orphan]).status.success());
    }
}

backend_tests!(
    fetch_by_id_needs_a_reachable_commit,
    delete_force_atomic_and_stale,
    racing_pushes_from_separate_processes_lose_nothing,
    bad_input_is_refused_and_changes_nothing,
    gzip_request_bodies_are_accepted,
);
