//! History API benchmark: `log` of 100 commits, with and without a path, answered by
//! artifact-git from its packs (over HTTP, JSON-RPC) against `git log` on the same history in a
//! bare repository on local disk (one pack, commit-graph written as `git gc` would). Both
//! answers are checked equal before timing. Prints medians and ratios; run with
//! `bench/history [--repo large|medium|...] [--runs N]`.
#![forbid(unsafe_code)]
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::time::{Duration, Instant};

use artifact_git_e2e::*;
use serde_json::json;

#[path = "../repos.rs"]
#[allow(dead_code)]
mod repos;

const USAGE: &str = "usage: bench/history [--repo small|medium|large|registry] [--runs N]";

fn median(mut v: Vec<Duration>) -> Duration {
    v.sort();
    v[v.len() / 2]
}

fn time(runs: usize, mut f: impl FnMut()) -> Duration {
    f();
    median(
        (0..runs)
            .map(|_| {
                let t = Instant::now();
                f();
                t.elapsed()
            })
            .collect(),
    )
}

fn main() {
    let argv: Vec<String> = std::env::args().skip(1).collect();
    let mut kind = repos::RepoKind::parse("large").unwrap();
    let mut runs = 5;
    let mut i = 0;
    while i < argv.len() {
        match (argv[i].as_str(), argv.get(i + 1)) {
            ("--repo", Some(v)) => kind = repos::RepoKind::parse(v).expect(USAGE),
            ("--runs", Some(v)) => runs = v.parse().expect(USAGE),
            _ => panic!("{USAGE}"),
        }
        i += 2;
    }
    let git = Git::default();
    let work = TempDir::new().unwrap();
    let source = work.path().join("source");
    std::fs::create_dir(&source).unwrap();
    eprintln!("building the repository ({})...", kind.describe());
    kind.build(&git, &source);
    let bare = work.path().join("bare.git");
    git.ok(
        work.path(),
        &[
            "clone",
            "-q",
            "--bare",
            source.to_str().unwrap(),
            bare.to_str().unwrap(),
        ],
    );
    git.ok(&bare, &["repack", "-adq"]);
    git.ok(&bare, &["commit-graph", "write", "--reachable"]);
    let commits = git.ok(&bare, &["rev-list", "--count", "main"]);

    let server = Server::start();
    server.init("bench/hist");
    git.ok(
        &source,
        &["push", "-q", &server.repo_url("bench/hist"), "main"],
    );
    let token = server.token("bench", None, "r");

    // Paths: the busiest top-level folder, a file edited often, a file edited rarely.
    let changes = git.ok(
        &bare,
        &["log", "--format=", "--name-only", "-n", "2000", "main"],
    );
    let mut counts = std::collections::BTreeMap::<String, usize>::new();
    for l in changes.lines().filter(|l| !l.is_empty()) {
        *counts.entry(l.to_owned()).or_default() += 1;
    }
    let busiest = counts
        .iter()
        .max_by_key(|(_, n)| **n)
        .map(|(p, _)| p.clone())
        .unwrap();
    let rare = counts
        .iter()
        .min_by_key(|(_, n)| **n)
        .map(|(p, _)| p.clone())
        .unwrap();
    let folder = busiest.split('/').next().unwrap().to_owned();
    let mut cases: Vec<(String, Option<String>)> = vec![("no path".into(), None)];
    for (what, p) in [
        ("a folder", folder),
        ("a busy file", busiest),
        ("a rare file", rare),
    ] {
        cases.push((format!("{what} ({p})"), Some(p)));
    }

    println!(
        "history API: log -n 100, {} ({} commits), median of {runs}",
        kind.describe(),
        commits.trim()
    );
    println!(
        "| log -n 100 | git log (bare, on disk) ms | artifact-git API ms (HTTP request) | ratio |"
    );
    println!("|---|---|---|---|");
    for (name, path) in &cases {
        let mut args = vec!["log", "--format=%H", "-n", "100", "main"];
        if let Some(p) = path {
            args.extend(["--", p.as_str()]);
        }
        let expected: Vec<String> = git.ok(&bare, &args).lines().map(str::to_owned).collect();
        let mut params = json!({"artifact_id": "bench/hist", "rev": "main", "max_count": 100});
        if let Some(p) = path {
            params["path"] = json!(p);
        }
        let answer = server.rpc(Some(&token), "log", params.clone());
        let got: Vec<String> = answer["result"]["commits"]
            .as_array()
            .unwrap_or_else(|| panic!("{answer}"))
            .iter()
            .map(|c| c["id"].as_str().unwrap().to_owned())
            .collect();
        assert_eq!(got, expected, "log {name}");
        let t_git = time(runs, || {
            git.ok(&bare, &args);
        });
        // The request's time as curl measures it (connect to last byte), without the start of
        // the curl process itself; git's time includes its process start.
        let body =
            json!({"jsonrpc": "2.0", "id": 1, "method": "log", "params": params}).to_string();
        let t_api = median(
            (0..=runs)
                .map(|_| {
                    let out = std::process::Command::new("curl")
                        .args(["-s", "-o", "/dev/null", "-w", "%{time_total}", "-H"])
                        .arg(format!("Authorization: Bearer {token}"))
                        .args([
                            "-H",
                            "Content-Type: application/json",
                            "--data-binary",
                            &body,
                        ])
                        .arg(format!("{}/rpc", server.url))
                        .output()
                        .unwrap();
                    let secs: f64 = String::from_utf8_lossy(&out.stdout).trim().parse().unwrap();
                    Duration::from_secs_f64(secs)
                })
                .skip(1)
                .collect(),
        );
        println!(
            "| {name} | {:.1} | {:.1} | {:.2} |",
            t_git.as_secs_f64() * 1e3,
            t_api.as_secs_f64() * 1e3,
            t_api.as_secs_f64() / t_git.as_secs_f64()
        );
    }
    println!(
        "server peak RSS: {:.0} MiB",
        peak_rss_kib(server.pid()) as f64 / 1024.0
    );
}
