//! Following an upstream against git itself, on one machine, one run:
//!
//! 1. **import**: `import_repository` of a real repository (tokio by default) served by
//!    `git http-backend` under lighttpd, against `git clone --mirror` from the same server;
//!    wall time and the server's peak resident set.
//! 2. **one new commit**: a commit pushed to the upstream, then a sync (asked by
//!    `sync_upstream`); the pack bytes the sync received against the pack `git fetch` receives
//!    for the same commit into the mirror clone (`GIT_TRACE_PACKET` is not needed: the pack
//!    size is what `git fetch` writes as its new pack).
//!
//! Run with `bench/upstream [--repo DIR]`.
#![forbid(unsafe_code)]
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use serde_json::{json, Value};

use artifact_git_e2e::*;

const USAGE: &str = "usage: bench/upstream [--repo DIR]";

/// The upstream's status once it finished `syncs` syncs without error.
fn synced(server: &Server, repo: &str, syncs: u64) -> Value {
    let last = wait_for_syncs(server, repo, syncs, Duration::from_secs(3600));
    assert!(last["status"]["last_error"].is_null(), "{last}");
    last
}

/// The size of the packs under `git_dir` in bytes.
fn pack_bytes(git_dir: &Path) -> u64 {
    std::fs::read_dir(git_dir.join("objects/pack"))
        .unwrap()
        .filter_map(Result::ok)
        .filter(|e| e.path().extension().is_some_and(|x| x == "pack"))
        .map(|e| e.metadata().unwrap().len())
        .sum()
}

fn main() {
    let argv: Vec<String> = std::env::args().skip(1).collect();
    let mut repo = PathBuf::from("/work/.mirror/tokio-rs+tokio/repo");
    let mut i = 0;
    while i < argv.len() {
        match argv[i].as_str() {
            "--repo" => repo = PathBuf::from(argv.get(i + 1).expect(USAGE)),
            _ => panic!("{USAGE}"),
        }
        i += 2;
    }
    let git = Git::default();
    let root = TempDir::new().unwrap();
    let bare = root.path().join("up.git");
    git.ok(
        root.path(),
        &[
            "clone",
            "-q",
            "--mirror",
            repo.to_str().unwrap(),
            bare.to_str().unwrap(),
        ],
    );
    // Branches and tags only: what an import follows (GitHub's `refs/pull/` are its own).
    let pulls = git.ok(
        &bare,
        &["for-each-ref", "--format=delete %(refname)", "refs/pull/"],
    );
    let mut update = git.command(&bare);
    update
        .args(["update-ref", "--stdin"])
        .stdin(std::process::Stdio::piped());
    let mut child = update.spawn().unwrap();
    std::io::Write::write_all(child.stdin.as_mut().unwrap(), pulls.as_bytes()).unwrap();
    assert!(child.wait().unwrap().success());
    git.ok(&bare, &["repack", "-a", "-d", "-q"]);
    let backend = HttpBackend::start(root.path());
    let url = format!("{}/up.git", backend.url);

    // Reference: a mirror clone from the same server.
    let work = TempDir::new().unwrap();
    let mirror = work.path().join("mirror.git");
    let started = Instant::now();
    git.ok(
        work.path(),
        &["clone", "-q", "--mirror", &url, mirror.to_str().unwrap()],
    );
    let git_seconds = started.elapsed().as_secs_f64();

    let server = Server::start_on_with(
        &Backend::Fs,
        &["--webhook-allow-private", "--events-poll", "1s"],
    );
    let token = server.token("lab", None, "a");
    let started = Instant::now();
    server.call(
        "lab",
        "import_repository",
        json!({"artifact_id": "lab/imported", "url": url, "lfs": false}),
    );
    let imported = synced(&server, "lab/imported", 1);
    let ours_seconds = started.elapsed().as_secs_f64();
    let rss = peak_rss_kib(server.pid()) as f64 / 1024.0;
    let listing = |u: &str| {
        let out = git.ok(work.path(), &["ls-remote", u]);
        let mut lines: Vec<String> = out
            .lines()
            .filter(|l| l.contains("\trefs/heads/") || l.contains("\trefs/tags/"))
            .map(str::to_owned)
            .collect();
        lines.sort();
        lines
    };
    let ours_url = server.url_with_token("lab/imported", &token);
    let (ours_refs, theirs_refs) = (listing(&ours_url), listing(&url));
    let only = |a: &[String], b: &[String]| -> Vec<String> {
        a.iter()
            .filter(|l| !b.contains(l))
            .take(5)
            .cloned()
            .collect()
    };
    assert_eq!(
        ours_refs.len(),
        theirs_refs.len(),
        "ours only: {:?}; theirs only: {:?}; {imported}",
        only(&ours_refs, &theirs_refs),
        only(&theirs_refs, &ours_refs)
    );
    assert_eq!(ours_refs, theirs_refs, "the import has the upstream's refs");
    println!(
        "| import of {} ({} refs) | git clone --mirror {git_seconds:.2} s | import_repository {ours_seconds:.2} s | {:.2} | server peak RSS {rss:.0} MiB, pack {} MiB |",
        repo.display(),
        listing(&url).len(),
        ours_seconds / git_seconds,
        imported["status"]["last_pack_bytes"].as_u64().unwrap_or(0) >> 20,
    );

    // One new commit upstream.
    let clone = work.path().join("clone");
    git.ok(work.path(), &["clone", "-q", &url, clone.to_str().unwrap()]);
    let head = git.ok(&clone, &["symbolic-ref", "--short", "HEAD"]);
    let head = head.trim();
    commit_file(
        &git,
        &clone,
        "README.md",
        "one more line\n",
        "one new commit",
    );
    git.ok(&clone, &["push", "-q", "origin", head]);
    let upstream_id = imported["id"].as_str().unwrap().to_owned();
    let before = pack_bytes(&mirror);
    // Kept as the pack it came as (small fetches are unpacked into loose objects otherwise).
    git.ok(
        &mirror,
        &["-c", "fetch.unpackLimit=1", "fetch", "-q", "origin"],
    );
    let git_fetched = pack_bytes(&mirror).saturating_sub(before);
    server.call(
        "lab",
        "sync_upstream",
        json!({"artifact_id": "lab/imported", "id": upstream_id}),
    );
    let synced = synced(&server, "lab/imported", 2);
    let ours_fetched = synced["status"]["last_pack_bytes"].as_u64().unwrap_or(0);
    println!(
        "| one new commit | git fetch's pack {git_fetched} bytes | the sync's pack {ours_fetched} bytes | {:.2} | |",
        ours_fetched as f64 / git_fetched.max(1) as f64
    );
}
