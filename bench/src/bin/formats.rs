//! A SHA-256 copy of a real repository against the SHA-1 original, on the same server in the
//! same run: the push of every branch and tag into a new repository, then a clone (twice, the
//! second timed), with the server's CPU seconds. The copy is made with `git fast-export |
//! git fast-import` into a SHA-256 repository (signatures stripped: they sign SHA-1 ids; tags
//! of trees dropped: fast-export carries tags of commits only), the SHA-1 copy the same way,
//! and both are repacked alike, so the two differ in their hash alone. git.git from
//! `/work/.mirror` by default, or `--repo DIR`; on the filesystem backend, and on S3 when
//! `ARTIFACT_GIT_TEST_S3_ENDPOINT` names a server.
#![forbid(unsafe_code)]
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Instant;

use artifact_git_e2e::*;

const USAGE: &str = "usage: bench/formats [--repo DIR]";

/// A bare copy of the branches and tags of `repo` in `format`, fully repacked the same way
/// for both formats.
fn bare_copy(git: &Git, repo: &Path, root: &Path, format: &str) -> PathBuf {
    let bare = root.join(format!("{format}.git"));
    let format_arg = format!("--object-format={format}");
    git.ok(
        root,
        &["init", "-q", "--bare", &format_arg, bare.to_str().unwrap()],
    );
    let mut export = git
        .command(repo)
        .args([
            "fast-export",
            "--branches",
            "--tags",
            "--signed-tags=strip",
            "--tag-of-filtered-object=drop",
            "--reencode=no",
        ])
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let import = git
        .command(&bare)
        .args(["fast-import", "--quiet"])
        .stdin(export.stdout.take().unwrap())
        .status()
        .unwrap();
    assert!(import.success() && export.wait().unwrap().success());
    git.ok(&bare, &["repack", "-a", "-d", "-f", "-q", "--window=10"]);
    bare
}

fn pack_bytes(bare: &Path) -> u64 {
    std::fs::read_dir(bare.join("objects/pack"))
        .unwrap()
        .filter_map(Result::ok)
        .filter(|e| e.file_name().to_string_lossy().ends_with(".pack"))
        .map(|e| e.metadata().unwrap().len())
        .sum()
}

/// Seconds of `f`, and the server's CPU seconds meanwhile.
fn timed(server: &Server, f: impl FnOnce()) -> (f64, f64) {
    let cpu = cpu_seconds(server.pid());
    let started = Instant::now();
    f();
    (
        started.elapsed().as_secs_f64(),
        cpu_seconds(server.pid()) - cpu,
    )
}

fn main() {
    let repo = repository_arg(USAGE);
    let git = Git::new(git_at_least(2, 45).expect("git 2.45 or newer"));
    let root = TempDir::new().unwrap();
    let started = Instant::now();
    let copies: Vec<(&str, PathBuf)> = ["sha1", "sha256"]
        .into_iter()
        .map(|format| (format, bare_copy(&git, &repo, root.path(), format)))
        .collect();
    println!(
        "repository: {} (copies made in {:.0} s; packs: sha1 {:.1} MiB, sha256 {:.1} MiB)",
        repo.display(),
        started.elapsed().as_secs_f64(),
        pack_bytes(&copies[0].1) as f64 / 1048576.0,
        pack_bytes(&copies[1].1) as f64 / 1048576.0,
    );
    let mut backends = vec![("filesystem", Backend::Fs)];
    if let Some(s3) = Backend::s3_if_running() {
        backends.push(("S3", s3));
    }
    let work = TempDir::new().unwrap();
    for (label, store) in backends {
        let server = Server::start_on(&store);
        let mut rows = Vec::new();
        for (format, bare) in &copies {
            let name = format!("bench/{format}");
            server.cli(&["init", &name, "--object-format", format]);
            let url = server.repo_url(&name);
            let (push, push_cpu) = timed(&server, || {
                git.ok(bare, &["push", "-q", &url, "--all"]);
                git.ok(bare, &["push", "-q", &url, "--tags"]);
            });
            let clone = |n: &str| {
                let dir = work.path().join(format!("{label}-{format}-{n}"));
                git.ok(
                    work.path(),
                    &["clone", "-q", "--bare", &url, dir.to_str().unwrap()],
                );
                dir
            };
            clone("warm-up");
            let mut cloned = PathBuf::new();
            let (seconds, cpu) = timed(&server, || cloned = clone("timed"));
            assert_eq!(
                git.ok(&cloned, &["rev-parse", "--show-object-format"])
                    .trim(),
                *format
            );
            let refs = ["for-each-ref", "refs/heads", "refs/tags"];
            let same = git.ok(&cloned, &refs) == git.ok(bare, &refs);
            assert!(
                same,
                "{label} {format}: the clone's refs differ from the pushed ones"
            );
            rows.push((push, push_cpu, seconds, cpu));
        }
        for ((format, _), (push, push_cpu, clone, clone_cpu)) in copies.iter().zip(&rows) {
            println!(
                "{label:<10} {format:<6} push {push:>7.2} s (server CPU {push_cpu:>6.2} s)  clone {clone:>7.2} s (server CPU {clone_cpu:>5.2} s)"
            );
        }
        let (a, b) = (rows[0], rows[1]);
        println!(
            "{label:<10} sha256/sha1: push {:.2}x (CPU {:.2}x), clone {:.2}x (CPU {:.2}x)",
            b.0 / a.0,
            b.1 / a.1,
            b.2 / a.2,
            b.3 / a.3
        );
    }
}
