//! The web view's pages against git answering the same questions on local disk, in one run on
//! this machine:
//!
//! 1. tokio (fetched into `/work/.mirror`, or `--repo DIR`) on the filesystem backend: the
//!    home page (root folder, README, last commit), a folder, a large source file
//!    (highlighted), the first and the third page of history, a commit with its diff, each
//!    against the git commands that compute the same (`ls-tree` + `log -1` + `cat-file` of the
//!    README; `ls-tree`; `cat-file`; `log -50 --skip`; `show`) on a bare copy;
//! 2. a folder of 10,000 entries and a history of `--commits` (default 100,000) commits:
//!    page times and page sizes (paged, never loaded whole);
//! 3. on S3 (when `ARTIFACT_GIT_TEST_S3_ENDPOINT` names a server): bucket calls of a home
//!    page against those of a ref advertisement, each once warm.
//!
//! Times are medians of `--runs` requests after one warm-up, as curl measures them on
//! loopback (server time plus a loopback round trip).
#![forbid(unsafe_code)]
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Instant;

use artifact_git_e2e::*;

const USAGE: &str = "usage: bench/web [--runs N] [--repo DIR] [--commits N]";

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(|a, b| a.partial_cmp(b).unwrap());
    v[v.len() / 2]
}

/// Median seconds and the bytes of a GET of `url` with `token`.
fn page_time(url: &str, token: &str, runs: usize) -> (f64, usize) {
    let auth = format!("Authorization: Bearer {token}");
    let first = curl_get(url, &["-H", &auth]);
    assert_eq!(
        first.status,
        200,
        "{url}: {}",
        String::from_utf8_lossy(&first.body)
    );
    let times = (0..runs)
        .map(|_| {
            let out = Command::new("curl")
                .args([
                    "-s",
                    "-o",
                    "/dev/null",
                    "-w",
                    "%{time_total}",
                    "-H",
                    &auth,
                    url,
                ])
                .output()
                .unwrap();
            String::from_utf8_lossy(&out.stdout)
                .trim()
                .parse::<f64>()
                .unwrap()
        })
        .collect();
    (median(times), first.body.len())
}

/// Median seconds of running the git commands of `steps` one after another in `dir`.
fn git_time(git: &Git, dir: &Path, steps: &[&[&str]], runs: usize) -> f64 {
    let run = || {
        for step in steps {
            let out = git.run(dir, step);
            assert!(out.status.success(), "git {step:?}");
        }
    };
    run();
    median(
        (0..runs)
            .map(|_| {
                let t = Instant::now();
                run();
                t.elapsed().as_secs_f64()
            })
            .collect(),
    )
}

fn row(name: &str, ours: f64, git: Option<f64>, bytes: usize) {
    match git {
        Some(g) => println!(
            "{name:<44} {:>8.1} ms  git {:>8.1} ms  ratio {:>5.2}  page {:>7} B",
            ours * 1e3,
            g * 1e3,
            ours / g,
            bytes
        ),
        None => println!(
            "{name:<44} {:>8.1} ms  {:>36}  page {:>7} B",
            ours * 1e3,
            "",
            bytes
        ),
    }
}

fn main() {
    let argv: Vec<String> = std::env::args().skip(1).collect();
    let (mut runs, mut commits) = (9usize, 100_000usize);
    let mut repo = PathBuf::from("/work/.mirror/tokio-rs+tokio/repo");
    let mut i = 0;
    while i < argv.len() {
        let v = argv.get(i + 1).cloned().unwrap_or_default();
        match argv[i].as_str() {
            "--runs" => runs = v.parse().expect(USAGE),
            "--repo" => repo = PathBuf::from(v),
            "--commits" => commits = v.parse().expect(USAGE),
            _ => panic!("{USAGE}"),
        }
        i += 2;
    }
    let git = Git::default();
    let work = TempDir::new().unwrap();
    let bare = work.path().join("bare.git");
    git.ok(
        work.path(),
        &[
            "clone",
            "-q",
            "--bare",
            "--single-branch",
            repo.to_str().unwrap(),
            bare.to_str().unwrap(),
        ],
    );
    git.ok(&bare, &["gc", "-q"]);
    let head = git.rev(&bare, "HEAD");
    let branch = git
        .ok(&bare, &["symbolic-ref", "--short", "HEAD"])
        .trim()
        .to_owned();

    println!("== tokio ({head}) on the filesystem backend, {runs} runs, medians ==");
    // A server on `backend` holding the repository's default branch; its admin token and
    // the repository's URL.
    let serve = |backend: &Backend| {
        let server = Server::start_on(backend);
        server.init("bench/tokio");
        let token = server.token("bench", None, "a");
        let url = server.url_with_token("bench/tokio", &token);
        git.ok(
            &bare,
            &["push", "-q", &url, &format!("HEAD:refs/heads/{branch}")],
        );
        let base = format!("{}/bench/git/tokio", server.url);
        (server, token, base)
    };
    let (server, token, base) = serve(&Backend::Fs);
    let big_file = "tokio/src/runtime/builder.rs";
    let pages: Vec<(&str, String, Vec<Vec<String>>)> = vec![
        (
            "home (root, README, last commit)",
            base.clone(),
            vec![
                vec!["ls-tree".into(), "HEAD".into()],
                vec!["log".into(), "-1".into(), "HEAD".into()],
                vec!["cat-file".into(), "-p".into(), "HEAD:README.md".into()],
            ],
        ),
        (
            "folder tokio/src",
            format!("{base}/-/tree/{branch}/tokio/src"),
            vec![
                vec!["ls-tree".into(), "-l".into(), "HEAD:tokio/src".into()],
                vec!["log".into(), "-1".into(), "HEAD".into()],
            ],
        ),
        (
            "file runtime/builder.rs (highlighted)",
            format!("{base}/-/blob/{branch}/{big_file}"),
            vec![vec![
                "cat-file".into(),
                "-p".into(),
                format!("HEAD:{big_file}"),
            ]],
        ),
        (
            "history, page 1 (50)",
            format!("{base}/-/commits/{branch}"),
            vec![vec!["log".into(), "-50".into(), "HEAD".into()]],
        ),
        (
            "history, page 3",
            format!("{base}/-/commits/{head}?skip=100"),
            vec![vec![
                "log".into(),
                "-50".into(),
                "--skip=100".into(),
                "HEAD".into(),
            ]],
        ),
        (
            "history of a path, page 1",
            format!("{base}/-/commits/{branch}/tokio/src/runtime"),
            vec![vec![
                "log".into(),
                "-50".into(),
                "HEAD".into(),
                "--".into(),
                "tokio/src/runtime".into(),
            ]],
        ),
        (
            "commit with its diff",
            format!("{base}/-/commit/{head}"),
            vec![vec!["show".into(), "-M".into(), "HEAD".into()]],
        ),
        (
            "compare HEAD~50..HEAD",
            format!("{base}/-/compare?from={head}~50&to={branch}"),
            vec![vec![
                "diff".into(),
                "-M".into(),
                "HEAD~50".into(),
                "HEAD".into(),
            ]],
        ),
    ];
    for (name, url, steps) in &pages {
        let (ours, bytes) = page_time(url, &token, runs);
        let steps: Vec<Vec<&str>> = steps
            .iter()
            .map(|s| s.iter().map(String::as_str).collect())
            .collect();
        let steps: Vec<&[&str]> = steps.iter().map(Vec::as_slice).collect();
        let reference = git_time(&git, &bare, &steps, runs);
        row(name, ours, Some(reference), bytes);
    }
    let (refs_time, _) = page_time(
        &format!("{base}/info/refs?service=git-upload-pack"),
        &token,
        runs,
    );
    row("(ref advertisement, for scale)", refs_time, None, 0);

    println!("== a folder of 10,000 entries, a history of {commits} commits ==");
    let wide = work.path().join("wide");
    std::fs::create_dir(&wide).unwrap();
    make_history(&git, &wide, commits, 5);
    let dir = wide.join("wide");
    std::fs::create_dir_all(&dir).unwrap();
    for n in 0..10_000 {
        std::fs::write(dir.join(format!("entry{n:05}.txt")), format!("{n}\n")).unwrap();
    }
    git.ok(&wide, &["add", "wide"]);
    git.ok(&wide, &["commit", "-q", "-m", "a wide folder"]);
    server.init("bench/wide");
    let started = Instant::now();
    git.ok(
        &wide,
        &[
            "push",
            "-q",
            &server.url_with_token("bench/wide", &token),
            "main",
        ],
    );
    eprintln!("pushed in {:.1} s", started.elapsed().as_secs_f64());
    let wbase = format!("{}/bench/git/wide", server.url);
    let wide_head = git.rev(&wide, "HEAD");
    let log_path: &[&str] = &["log", "-50", "--format=%H", "main", "--", "src/file1.txt"];
    let reference = git_time(&git, &wide, &[log_path], runs.min(3));
    println!(
        "(git log -50 -- src/file1.txt on the same history, work tree repository: {:.1} ms)",
        reference * 1e3
    );
    for (name, url) in [
        (
            "folder of 10,000, page 1 (500 entries)",
            format!("{wbase}/-/tree/main/wide"),
        ),
        (
            "folder of 10,000, page 20",
            format!("{wbase}/-/tree/main/wide?offset=9500"),
        ),
        ("history, page 1", format!("{wbase}/-/commits/main")),
        (
            "history, page 100 (skip 4,950)",
            format!("{wbase}/-/commits/{wide_head}?skip=4950"),
        ),
        (
            "history of a path, page 1",
            format!("{wbase}/-/commits/main/src/file1.txt"),
        ),
    ] {
        let (ours, bytes) = page_time(&url, &token, runs);
        row(name, ours, None, bytes);
    }

    if let Some(s3) = Backend::s3_if_running() {
        println!("== S3: bucket calls per request, warm ==");
        let (server, token, base) = serve(&s3);
        let auth = format!("Authorization: Bearer {token}");
        let calls = |url: &str| -> u64 {
            assert_eq!(curl_get(url, &["-H", &auth]).status, 200, "{url}");
            let before: u64 = server.bucket_calls().values().sum();
            assert_eq!(curl_get(url, &["-H", &auth]).status, 200, "{url}");
            let after: u64 = server.bucket_calls().values().sum();
            after - before
        };
        let refs = calls(&format!("{base}/info/refs?service=git-upload-pack"));
        let home = calls(&base);
        println!(
            "ref advertisement: {refs} bucket calls; home page: {home} ({} more)",
            home as i64 - refs as i64
        );
        let (t, _) = page_time(&base, &token, runs);
        println!("home page on S3: {:.1} ms", t * 1e3);
    }
}
