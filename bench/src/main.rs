//! Benchmarks of artifact-git: the same repository served from the filesystem backend and
//! from S3 (the local S3 test server, warm pack cache), timed in the same run, with medians
//! and ratios. Run with `bench/run`.
#![forbid(unsafe_code)]
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::time::{Duration, Instant};

use artifact_git_e2e::*;

struct Args {
    commits: usize,
    runs: usize,
}

fn args() -> Args {
    let mut a = Args {
        commits: 3000,
        runs: 7,
    };
    let argv: Vec<String> = std::env::args().skip(1).collect();
    let mut i = 0;
    while i < argv.len() {
        let value = argv.get(i + 1).and_then(|v| v.parse().ok());
        match (argv[i].as_str(), value) {
            ("--commits", Some(v)) => a.commits = v,
            ("--runs", Some(v)) => a.runs = v,
            _ => panic!("usage: bench/run [--commits N] [--runs N]"),
        }
        i += 2;
    }
    a
}

fn median(mut v: Vec<Duration>) -> Duration {
    v.sort();
    v[v.len() / 2]
}

fn time(f: impl FnOnce()) -> Duration {
    let start = Instant::now();
    f();
    start.elapsed()
}

fn main() {
    let args = args();
    let git = Git::default();
    let work = TempDir::new().unwrap();
    let source = work.path().join("source");
    std::fs::create_dir(&source).unwrap();
    eprintln!("generating a history of {} commits...", args.commits);
    make_history(&git, &source, args.commits, 42);
    git.ok(&source, &["repack", "-adq"]);
    let objects = git.ok(&source, &["count-objects", "-v"]);
    eprintln!(
        "{}",
        objects
            .lines()
            .filter(|l| l.starts_with("in-pack") || l.starts_with("size-pack"))
            .collect::<Vec<_>>()
            .join(", ")
    );

    let mut servers: Vec<(&str, Server)> = vec![("filesystem", Server::start_on(&Backend::Fs))];
    match Backend::s3() {
        Some(s3) => servers.push(("s3 (warm cache)", Server::start_on(&s3))),
        None => eprintln!("no S3 test server: run bench/run"),
    }
    let mut rows: Vec<(String, Vec<Duration>)> = Vec::new();
    for (name, server) in &servers {
        server.init("bench/repo");
        let url = server.repo_url("bench/repo");
        let push = time(|| {
            git.ok(&source, &["push", "-q", &url, "--all"]);
            git.ok(&source, &["push", "-q", &url, "--tags"]);
        });
        eprintln!("{name}: initial push {:.2}s", push.as_secs_f64());
        // One clone to warm the cache, then the measured ones.
        let clone = |i: usize| {
            let dir = work.path().join(format!("clone-{}-{i}", name.len()));
            let t = time(|| {
                git.ok(
                    work.path(),
                    &["clone", "-q", "--bare", &url, dir.to_str().unwrap()],
                );
            });
            std::fs::remove_dir_all(&dir).unwrap();
            t
        };
        clone(0);
        let times: Vec<Duration> = (1..=args.runs).map(clone).collect();
        rows.push((name.to_string(), times));
    }
    println!("\nfull clone (--bare), {} runs each", args.runs);
    println!("{:<20} {:>10} {:>8}", "server", "median s", "ratio");
    let base = median(rows[0].1.clone());
    for (name, times) in rows {
        let m = median(times);
        println!(
            "{:<20} {:>10.3} {:>8.2}",
            name,
            m.as_secs_f64(),
            m.as_secs_f64() / base.as_secs_f64()
        );
    }
}
