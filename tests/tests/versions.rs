//! Versions in step with git: pushes to the default branch publish `v{N}/` and `v{N}.json`
//! (LFS files copied in the bucket), `commit_version` commits a version the service wrote,
//! neither direction loops, and a publish cut by kill -9 completes once after a restart.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::collections::BTreeMap;
use std::path::Path;
use std::time::Duration;

use artifact_git_e2e::*;
use serde_json::{json, Value};

const ARGS: [&str; 4] = ["--events-poll", "200ms", "--events-lease", "2s"];

/// The files of version `n` (path inside `v{n}/` to bytes).
fn version(files: &BTreeMap<String, Vec<u8>>, n: u64) -> BTreeMap<String, Vec<u8>> {
    let prefix = format!("v{n}/");
    files
        .iter()
        .filter_map(|(k, v)| Some((k.strip_prefix(&prefix)?.to_owned(), v.clone())))
        .collect()
}

fn manifest(files: &BTreeMap<String, Vec<u8>>, n: u64) -> Option<Value> {
    files
        .get(&format!("v{n}.json"))
        .map(|m| serde_json::from_slice(m).unwrap())
}

/// Version numbers that have a manifest or files.
fn versions_present(files: &BTreeMap<String, Vec<u8>>) -> Vec<u64> {
    let mut out: Vec<u64> = files
        .keys()
        .filter_map(|k| {
            let rest = k.strip_prefix('v')?;
            let digits = rest.split(['/', '.']).next()?;
            digits.parse().ok()
        })
        .collect();
    out.sort();
    out.dedup();
    out
}

/// Files by path as (size, a digest), for comparisons that print readably.
fn digest(files: BTreeMap<String, Vec<u8>>) -> BTreeMap<String, (usize, u64)> {
    files
        .into_iter()
        .map(|(k, v)| {
            let h = v.iter().fold(0xcbf29ce484222325u64, |h, b| {
                (h ^ u64::from(*b)).wrapping_mul(0x100000001b3)
            });
            (k, (v.len(), h))
        })
        .collect()
}

/// Wait until version `n` is complete; the artifact's files then.
fn wait_for_version(server: &Server, repo: &str, n: u64) -> BTreeMap<String, Vec<u8>> {
    let mut files = BTreeMap::new();
    let done = eventually(Duration::from_secs(60), || {
        files = server.artifact_files(repo);
        manifest(&files, n).is_some_and(|m| m["complete"] == json!(true))
    });
    assert!(done, "version {n} was not published: {:?}", files.keys());
    // An S3 export lists first and downloads after: the manifest it saw complete may have been
    // completed after its listing. Listed again now, every file is there.
    server.artifact_files(repo)
}

/// The files of a commit as a user sees them in a checkout (LFS files smudged).
fn checkout_files(git: &Git, dir: &Path, commit: &str) -> BTreeMap<String, Vec<u8>> {
    git.ok(dir, &["checkout", "-q", commit]);
    let mut out = BTreeMap::new();
    for path in git.ok(dir, &["ls-files"]).lines() {
        out.insert(path.to_owned(), std::fs::read(dir.join(path)).unwrap());
    }
    out
}

fn versions_follow_pushes_and_come_back(backend: &Backend) {
    let server = Server::start_on_with(backend, &ARGS);
    let repo = "lab/vs";
    // The artifact service wrote v1 before git was enabled.
    server.put_artifact_file(repo, 1, "a.txt", b"first\n");
    server.put_artifact_file(repo, 1, "data/b.txt", b"bee\n");
    let enabled = server.call(
        "lab",
        "enable_git",
        json!({"artifact_id": repo, "sync_versions": true}),
    );
    assert_eq!(enabled["imported_files"], 2);
    let git = Git::default();
    git.lfs_install();
    let work = tempfile::TempDir::new().unwrap();
    let src = work.path().join("src");
    git.ok(
        work.path(),
        &["clone", "-q", &server.repo_url(repo), src.to_str().unwrap()],
    );
    // Three pushes to main, one with an LFS file; one push to another branch.
    let mut pushed = Vec::new();
    commit_file(&git, &src, "a.txt", "second\n", "edit a");
    git.ok(&src, &["push", "-q", "origin", "main"]);
    pushed.push(git.rev(&src, "HEAD"));
    git.ok(&src, &["lfs", "track", "*.bin"]);
    let model: Vec<u8> = (0..300_000u32).map(|i| (i * 7 % 251) as u8).collect();
    std::fs::write(src.join("model.bin"), &model).unwrap();
    git.ok(&src, &["add", ".gitattributes", "model.bin"]);
    git.ok(&src, &["commit", "-q", "-m", "add a model"]);
    git.ok(&src, &["push", "-q", "origin", "main"]);
    pushed.push(git.rev(&src, "HEAD"));
    git.ok(&src, &["checkout", "-q", "-b", "side"]);
    commit_file(&git, &src, "side.txt", "side\n", "side work");
    git.ok(&src, &["push", "-q", "origin", "side"]);
    git.ok(&src, &["checkout", "-q", "main"]);
    git.ok(&src, &["rm", "-q", "data/b.txt"]);
    commit_file(&git, &src, "notes/n.md", "# notes\n", "notes, b removed");
    git.ok(&src, &["push", "-q", "origin", "main"]);
    pushed.push(git.rev(&src, "HEAD"));

    let files = wait_for_version(&server, repo, 4);
    assert_eq!(
        versions_present(&files),
        vec![1, 2, 3, 4],
        "{:?}",
        files.keys()
    );
    assert!(version(&files, 1).contains_key("data/b.txt"));
    for (i, commit) in pushed.iter().enumerate() {
        let n = i as u64 + 2;
        let m = manifest(&files, n).unwrap();
        assert_eq!(m["git"]["commit"], commit.as_str(), "v{n}");
        assert_eq!(m["git"]["branch"], "main");
        let expected = checkout_files(&git, &src, commit);
        assert_eq!(
            digest(version(&files, n)),
            digest(expected.clone()),
            "v{n} holds {commit}'s files"
        );
        assert_eq!(m["file_count"], expected.len());
    }
    git.ok(&src, &["checkout", "-q", "main"]);
    let m3 = manifest(&files, 3).unwrap();
    let listed = m3["files"].as_array().unwrap();
    let bin = listed.iter().find(|f| f["path"] == "model.bin").unwrap();
    assert_eq!(bin["size"], model.len());
    assert!(bin["lfs_oid"].is_string());

    // The service writes v5 from v4 (one file changed, one added, one gone) and commits it.
    for (path, data) in version(&files, 4) {
        match path.as_str() {
            "notes/n.md" => {}
            "a.txt" => server.put_artifact_file(repo, 5, &path, b"third, from the service\n"),
            _ => server.put_artifact_file(repo, 5, &path, &data),
        }
    }
    server.put_artifact_file(repo, 5, "service/new.csv", b"x,y\n1,2\n");
    let committed = server.call(
        "lab",
        "commit_version",
        json!({"artifact_id": repo, "version": 5}),
    );
    assert_eq!(committed["created"], true, "{committed}");
    git.ok(&src, &["pull", "-q", "origin", "main"]);
    assert_eq!(git.rev(&src, "HEAD"), committed["commit"].as_str().unwrap());
    let message = git.ok(&src, &["log", "-1", "--format=%B"]);
    assert!(message.contains("Artifact-Version: v5"), "{message}");
    let service_files = version(&server.artifact_files(repo), 5);
    assert_eq!(
        digest(checkout_files(&git, &src, "HEAD")),
        digest(service_files),
        "the commit holds v5's files"
    );
    git.ok(&src, &["checkout", "-q", "main"]);
    // model.bin is still an LFS file, tracked by the version's own .gitattributes.
    let pointer = git.ok(&src, &["cat-file", "-p", "HEAD:model.bin"]);
    assert!(pointer.starts_with("version https://git-lfs"), "{pointer}");
    git.ok(&src, &["fsck", "--strict"]);

    // No loops: committing v5 published nothing; a version from git is not committed back,
    // and a second call for v5 makes nothing new.
    let again = server.call(
        "lab",
        "commit_version",
        json!({"artifact_id": repo, "version": 5}),
    );
    assert_eq!(again["created"], false);
    assert_eq!(again["commit"], committed["commit"]);
    let back = server.call(
        "lab",
        "commit_version",
        json!({"artifact_id": repo, "version": 3}),
    );
    assert_eq!(back["created"], false);
    assert_eq!(back["commit"], pushed[1].as_str());
    commit_file(&git, &src, "after.txt", "after\n", "after the round trip");
    git.ok(&src, &["push", "-q", "origin", "main"]);
    let files = wait_for_version(&server, repo, 6);
    assert_eq!(
        manifest(&files, 6).unwrap()["git"]["commit"],
        git.rev(&src, "HEAD").as_str()
    );
    std::thread::sleep(Duration::from_millis(1500));
    let files = server.artifact_files(repo);
    assert_eq!(versions_present(&files), vec![1, 2, 3, 4, 5, 6]);
    // import + 3 pushes + v5 + 1 push
    assert_eq!(git.ok(&src, &["rev-list", "--count", "main"]).trim(), "6");

    // What commit_version refuses.
    let token = server.token("lab", None, "rw");
    let missing = server.rpc(
        Some(&token),
        "commit_version",
        json!({"artifact_id": repo, "version": 99}),
    );
    assert_eq!(missing["error"]["code"], -32004, "{missing}");
    let bad = server.rpc(
        Some(&token),
        "commit_version",
        json!({"artifact_id": repo, "version": -1}),
    );
    assert_eq!(bad["error"]["code"], -32602, "{bad}");
    let read = server.token("lab", None, "r");
    let denied = server.rpc(
        Some(&read),
        "commit_version",
        json!({"artifact_id": repo, "version": 5}),
    );
    assert_eq!(denied["error"]["code"], -32003, "{denied}");

    // Turned off, pushes publish nothing.
    let settings = server.call(
        "lab",
        "set_git_settings",
        json!({"artifact_id": repo, "sync_versions": false}),
    );
    assert_eq!(settings["sync_versions"], false);
    commit_file(&git, &src, "quiet.txt", "quiet\n", "not published");
    git.ok(&src, &["push", "-q", "origin", "main"]);
    std::thread::sleep(Duration::from_millis(1500));
    assert_eq!(
        versions_present(&server.artifact_files(repo)),
        vec![1, 2, 3, 4, 5, 6]
    );

    // A version whose .gitattributes is too large to read is refused, nothing committed.
    server.put_artifact_file(repo, 9, "a.txt", b"a\n");
    server.put_artifact_file(repo, 9, ".gitattributes", &vec![b'#'; (1 << 20) + 1]);
    let head = git.ok(&src, &["ls-remote", "origin", "refs/heads/main"]);
    let big = server.rpc(
        Some(&token),
        "commit_version",
        json!({"artifact_id": repo, "version": 9}),
    );
    assert_eq!(big["error"]["code"], -32602, "{big}");
    assert!(big["error"]["message"]
        .as_str()
        .unwrap()
        .contains(".gitattributes"));
    assert_eq!(
        git.ok(&src, &["ls-remote", "origin", "refs/heads/main"]),
        head
    );
}

fn a_publish_cut_by_kill_completes_once(backend: &Backend) {
    let mut server = Server::start_on_with(backend, &ARGS);
    let repo = "lab/vkill";
    server.call(
        "lab",
        "enable_git",
        json!({"artifact_id": repo, "sync_versions": true, "import_existing_files": false}),
    );
    let git = Git::default();
    let work = tempfile::TempDir::new().unwrap();
    let src = work.path().join("src");
    git.ok(
        work.path(),
        &["init", "-q", "-b", "main", src.to_str().unwrap()],
    );
    git.ok(&src, &["remote", "add", "origin", &server.repo_url(repo)]);
    let mut rng = Rng::new(11);
    let mut expected_versions = Vec::new();
    let mut dead = Vec::new();
    let mut resumed = 0;
    // A second replica on the same storage all along: it competes for every publish.
    let other = server.replica_with(&ARGS);
    for round in 0..3u64 {
        // Enough files that publishing takes a while.
        for i in 0..150 {
            let data = rng.bytes(20_000 + (i * 97) % 5000);
            let dir = src.join(format!("r{round}/d{}", i % 7));
            std::fs::create_dir_all(&dir).unwrap();
            std::fs::write(dir.join(format!("f{i}.dat")), data).unwrap();
        }
        git.ok(&src, &["add", "."]);
        git.ok(&src, &["commit", "-q", "-m", &format!("round {round}")]);
        git.ok(&src, &["push", "-q", "origin", "main"]);
        expected_versions.push(git.rev(&src, "HEAD"));
        std::thread::sleep(Duration::from_millis(rng.below(250)));
        server.kill();
        let restarted = server.replica_with(&ARGS);
        // The killed one keeps its temporary storage alive.
        dead.push(std::mem::replace(&mut server, restarted));
        git.ok(
            &src,
            &["remote", "set-url", "origin", &server.repo_url(repo)],
        );
        let n = round + 1;
        let files = wait_for_version(&server, repo, n);
        resumed += server.metric("artifact_git_versions_published_total{outcome=\"resumed\"}");
        let m = manifest(&files, n).unwrap();
        assert_eq!(
            m["git"]["commit"],
            expected_versions[round as usize].as_str()
        );
        let head = git.rev(&src, "HEAD");
        assert_eq!(
            digest(version(&files, n)),
            digest(checkout_files(&git, &src, &head)),
            "v{n} after a kill; manifest: {}",
            serde_json::json!({"count": m["file_count"], "skipped": m["skipped"], "files": m["files"].as_array().map(Vec::len)})
        );
        git.ok(&src, &["checkout", "-q", "main"]);
    }
    std::thread::sleep(Duration::from_millis(1500));
    let files = server.artifact_files(repo);
    assert_eq!(
        versions_present(&files),
        vec![1, 2, 3],
        "each push published once"
    );
    resumed += other.metric("artifact_git_versions_published_total{outcome=\"resumed\"}");
    eprintln!("publishes resumed after a kill: {resumed} of 3");
    assert!(resumed >= 1, "no kill landed in the middle of a publish");
}

backend_tests!(
    versions_follow_pushes_and_come_back,
    a_publish_cut_by_kill_completes_once
);
