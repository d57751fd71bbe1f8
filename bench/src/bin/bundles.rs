//! Clones served by the bucket, against `git http-backend` on the same machine in the same
//! run: a full clone of a real repository (git.git from `/work/.mirror`, or `--repo DIR`)
//! with `transfer.bundleURI` and with `packfile-uris`, against a plain clone from
//! `git http-backend` (lighttpd) and from this server: time, bytes the server sent (its
//! `artifact_git_sent_bytes_total`), its CPU seconds. Then ten new commits: the bytes of a
//! `git fetch` with and without bundles. On the filesystem backend, and on S3 when
//! `ARTIFACT_GIT_TEST_S3_ENDPOINT` names a server.
#![forbid(unsafe_code)]
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::path::{Path, PathBuf};
use std::time::Instant;

use artifact_git_e2e::*;

const USAGE: &str = "usage: bench/bundles [--repo DIR]";

fn timed_clone(git: &Git, work: &Path, name: &str, config: &[&str], url: &str) -> (f64, PathBuf) {
    let dir = work.join(name);
    let mut args: Vec<&str> = Vec::new();
    for c in config {
        args.extend(["-c", c]);
    }
    args.extend(["clone", "-q", "--no-checkout", url, dir.to_str().unwrap()]);
    let started = Instant::now();
    git.ok(work, &args);
    (started.elapsed().as_secs_f64(), dir)
}

fn main() {
    let repo = repository_arg(USAGE);
    let git = Git::new(git_at_least(2, 45).expect("git 2.45 or newer"));
    let root = TempDir::new().unwrap();
    let bare = root.path().join("ref.git");
    git.ok(
        root.path(),
        &[
            "clone",
            "-q",
            "--bare",
            repo.to_str().unwrap(),
            bare.to_str().unwrap(),
        ],
    );
    git.ok(&bare, &["repack", "-a", "-d", "-q"]);
    let pack_bytes: u64 = std::fs::read_dir(bare.join("objects/pack"))
        .unwrap()
        .filter_map(Result::ok)
        .filter(|e| e.file_name().to_string_lossy().ends_with(".pack"))
        .map(|e| e.metadata().unwrap().len())
        .sum();
    let backend = HttpBackend::start(root.path());
    let work = TempDir::new().unwrap();
    let (reference, _) = timed_clone(
        &git,
        work.path(),
        "reference",
        &[],
        &format!("{}/ref.git", backend.url),
    );
    println!(
        "repository: {} ({:.0} MiB pack)",
        repo.display(),
        pack_bytes as f64 / 1048576.0
    );
    println!("git http-backend clone: {reference:.2} s");

    let mut backends = vec![("filesystem", Backend::Fs)];
    if let Some(s3) = Backend::s3_if_running() {
        backends.push(("S3", s3));
    }
    for (label, store) in backends {
        let server = Server::start_on(&store);
        server.init("bench/repo");
        let url = server.repo_url("bench/repo");
        git.ok(&bare, &["push", "-q", &url, "--all"]);
        git.ok(&bare, &["push", "-q", &url, "--tags"]);
        let started = Instant::now();
        server.maintain("bench/repo", &[]);
        eprintln!(
            "{label}: maintenance with the base bundle: {:.1} s",
            started.elapsed().as_secs_f64()
        );
        // A replica started after maintenance serves the clones (fresh pack list and caches).
        let replica = server.replica();
        let url = replica.repo_url("bench/repo");
        let full = std::cell::Cell::new(0u64);
        // Each clone twice: the first on caches cold for that kind of answer (its CPU is
        // printed too), the second as a fleet of clients sees it.
        let measure = |name: &str, config: &[&str]| {
            let cpu = cpu_seconds(replica.pid());
            timed_clone(
                &git,
                work.path(),
                &format!("{label}-{name}-cold"),
                config,
                &url,
            );
            let cold = cpu_seconds(replica.pid()) - cpu;
            let (sent, cpu) = (
                replica.metric("artifact_git_sent_bytes_total"),
                cpu_seconds(replica.pid()),
            );
            let (seconds, dir) =
                timed_clone(&git, work.path(), &format!("{label}-{name}"), config, &url);
            let sent = replica.metric("artifact_git_sent_bytes_total") - sent;
            let cpu = cpu_seconds(replica.pid()) - cpu;
            if full.get() == 0 {
                full.set(sent);
            }
            println!(
                "{label:<10} {name:<22} {seconds:>7.2} s ({:>4.2}x http-backend)  server sent {:>11} B ({:>6.2}% of a plain clone's)  server CPU {cpu:.2} s (first clone {cold:.2} s)",
                seconds / reference,
                sent,
                sent as f64 * 100.0 / full.get() as f64
            );
            dir
        };
        measure("plain", &[]);
        let bundled = measure("transfer.bundleURI", &["transfer.bundleURI=true"]);
        measure("packfile-uris", &["fetch.uriprotocols=http,https"]);
        // Ten new commits: a fetch of a plain clone and of a clone made with bundles (whose
        // `fetch.bundleURI` and creation token the clone recorded).
        let plain = measure("plain (for fetch)", &[]);
        let scratch = work.path().join(format!("{label}-scratch"));
        git.ok(
            work.path(),
            &["clone", "-q", &url, scratch.to_str().unwrap()],
        );
        for i in 0..10 {
            commit_file(
                &git,
                &scratch,
                "bench-new.txt",
                &format!("{i}\n"),
                &format!("new {i}"),
            );
        }
        git.ok(&scratch, &["push", "-q", "origin", "HEAD"]);
        for (name, dir) in [("without bundles", &plain), ("with bundles", &bundled)] {
            let sent = replica.metric("artifact_git_sent_bytes_total");
            git.ok(
                dir,
                &["-c", "transfer.bundleURI=true", "fetch", "-q", "origin"],
            );
            let sent = replica.metric("artifact_git_sent_bytes_total") - sent;
            println!("{label:<10} ten new commits, fetch {name:<16} server sent {sent} B");
        }
    }
}
