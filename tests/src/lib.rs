//! The harness of the end-to-end tests: start `artifact-git serve` as a separate process on a
//! free port, drive the real `git` binaries against it, and build test histories with
//! `git fast-import`.
//!
//! The server binary is taken from `ARTIFACT_GIT_BIN`, or from the `target/` directory these
//! tests were built into (`scripts/test` builds it first).
#![forbid(unsafe_code)]
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::Duration;

pub use tempfile::TempDir;

/// The two git versions on the test machines; tests run against each that exists.
pub const GIT_BINARIES: &[&str] = &["/usr/bin/git", "/usr/local/bin/git"];

pub fn git_binaries() -> Vec<PathBuf> {
    let found: Vec<PathBuf> = GIT_BINARIES
        .iter()
        .map(PathBuf::from)
        .filter(|p| p.exists())
        .collect();
    assert!(!found.is_empty(), "no git binary found in {GIT_BINARIES:?}");
    found
}

/// The default git: the first of [`GIT_BINARIES`] found.
pub fn default_git() -> PathBuf {
    git_binaries().remove(0)
}

pub fn server_bin() -> PathBuf {
    if let Ok(p) = std::env::var("ARTIFACT_GIT_BIN") {
        return PathBuf::from(p);
    }
    let exe = std::env::current_exe().expect("test executable path");
    // target/<profile>/deps/<test> -> target/<profile>/artifact-git
    let profile_dir = exe.parent().and_then(Path::parent).expect("target dir");
    let bin = profile_dir.join("artifact-git");
    assert!(
        bin.exists(),
        "{} does not exist: build the server first (scripts/test does: cargo build --bin artifact-git)",
        bin.display()
    );
    bin
}

/// Where a test server keeps its repositories.
#[derive(Debug, Clone)]
pub enum Backend {
    /// A fresh local directory.
    Fs,
    /// A fresh bucket on the S3 test server.
    S3 { endpoint: String },
}

impl Backend {
    /// The S3 test server that `scripts/test` started, if any. In CI its absence is a failure,
    /// never a silent skip.
    pub fn s3() -> Option<Backend> {
        match std::env::var("ARTIFACT_GIT_TEST_S3_ENDPOINT") {
            Ok(endpoint) if !endpoint.is_empty() => Some(Backend::S3 { endpoint }),
            _ => {
                assert!(
                    std::env::var_os("CI").is_none(),
                    "CI must run the S3 tests, but ARTIFACT_GIT_TEST_S3_ENDPOINT is not set (run scripts/test)"
                );
                eprintln!("skipping the S3 variant: no S3 test server (run scripts/test)");
                None
            }
        }
    }
}

/// Generate `fs` and `s3` test functions for each named `fn(&Backend)`.
#[macro_export]
macro_rules! backend_tests {
    ($($name:ident),* $(,)?) => {$(
        mod $name {
            #[test]
            fn fs() {
                super::$name(&$crate::Backend::Fs)
            }
            #[test]
            fn s3() {
                if let Some(backend) = $crate::Backend::s3() {
                    super::$name(&backend)
                }
            }
        }
    )*};
}

static BUCKETS: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);

/// Create a bucket on the S3 test server (which accepts unsigned requests).
pub fn create_bucket(endpoint: &str) -> String {
    let n = BUCKETS.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
    let name = format!("t{}-{n}", std::process::id());
    let out = Command::new("curl")
        .args(["-s", "-f", "-X", "PUT"])
        .arg(format!("{endpoint}/{name}"))
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "creating bucket {name} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    name
}

/// The S3 client settings every server process of a test gets.
pub fn s3_env(endpoint: &str) -> Vec<(String, String)> {
    let var = |k: &str, default: &str| {
        (
            k.to_owned(),
            std::env::var(k).unwrap_or_else(|_| default.to_owned()),
        )
    };
    vec![
        ("AWS_ENDPOINT_URL".into(), endpoint.to_owned()),
        ("ARTIFACT_GIT_S3_PATH_STYLE".into(), "true".into()),
        var("AWS_ACCESS_KEY_ID", "test"),
        var("AWS_SECRET_ACCESS_KEY", "test"),
        var("AWS_REGION", "us-east-1"),
    ]
}

/// A bare repository on local disk: the filesystem backend's directory itself, or every key
/// of the repository's prefix downloaded from S3 by an independent client (boto3).
pub struct BareRepo {
    path: PathBuf,
    _tmp: Option<TempDir>,
}

impl std::ops::Deref for BareRepo {
    type Target = Path;
    fn deref(&self) -> &Path {
        &self.path
    }
}

/// The JWT secret of test servers (tokens are minted with `artifact-git token`).
pub const TEST_SECRET: &str = "e2e-test-secret-0123456789abcdef";

/// A running `artifact-git serve`, killed on drop.
pub struct Server {
    child: Child,
    pub url: String,
    /// `--storage` as passed to the server.
    pub storage: String,
    /// The storage directory of a filesystem backend.
    pub data_dir: Option<PathBuf>,
    extra_env: Vec<(String, String)>,
    _dirs: Vec<TempDir>,
}

impl Server {
    /// A server on a fresh filesystem storage directory.
    pub fn start() -> Server {
        let dir = TempDir::new().unwrap();
        let data = dir.path().join("data");
        Server::start_with(
            &format!("file://{}", data.display()),
            Some(data),
            vec![],
            vec![dir],
            &[],
        )
    }

    /// A server on a fresh storage of `backend`.
    pub fn start_on(backend: &Backend) -> Server {
        Server::start_on_with(backend, &[])
    }

    pub fn start_on_with(backend: &Backend, args: &[&str]) -> Server {
        match backend {
            Backend::Fs => {
                let dir = TempDir::new().unwrap();
                let data = dir.path().join("data");
                Server::start_with(
                    &format!("file://{}", data.display()),
                    Some(data),
                    vec![],
                    vec![dir],
                    args,
                )
            }
            Backend::S3 { endpoint } => {
                let bucket = create_bucket(endpoint);
                Server::start_with(
                    &format!("s3://{bucket}/repos"),
                    None,
                    s3_env(endpoint),
                    vec![],
                    args,
                )
            }
        }
    }

    /// Run `artifact-git maintain` on a repository of this server's storage.
    pub fn maintain(&self, repo: &str, args: &[&str]) -> String {
        let mut all = vec!["maintain", repo];
        all.extend_from_slice(args);
        self.cli(&all)
    }

    /// Run an `artifact-git` command with this server's storage and environment; its stdout.
    pub fn cli(&self, args: &[&str]) -> String {
        let mut cmd = Command::new(server_bin());
        cmd.args(args).args(["--storage", &self.storage]);
        for (k, v) in &self.extra_env {
            cmd.env(k, v);
        }
        let out = cmd.output().unwrap();
        assert!(
            out.status.success(),
            "artifact-git {args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8(out.stdout).unwrap()
    }

    /// (endpoint, bucket, key prefix) of an S3-backed server.
    fn s3_location(&self) -> (String, &str, &str) {
        let rest = self.storage.strip_prefix("s3://").expect("an S3 server");
        let (bucket, prefix) = rest.split_once('/').unwrap();
        let endpoint = self
            .extra_env
            .iter()
            .find(|(k, _)| k == "AWS_ENDPOINT_URL")
            .map(|(_, v)| v.clone())
            .unwrap();
        (endpoint, bucket, prefix)
    }

    /// The value of a counter at `/metrics`.
    pub fn metric(&self, name: &str) -> u64 {
        let out = Command::new("curl")
            .args(["-s"])
            .arg(format!("{}/metrics", self.url))
            .output()
            .unwrap();
        String::from_utf8_lossy(&out.stdout)
            .lines()
            .find_map(|l| l.strip_prefix(&format!("{name} ")))
            .and_then(|v| v.trim().parse().ok())
            .unwrap_or_else(|| panic!("no metric {name}"))
    }

    /// The server's process id (to read its memory use).
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Store a file of an artifact version the way the artifact service does, before git is
    /// enabled: `{workspace}/artifacts/{alias}/v{version}/{path}` in the same storage.
    pub fn put_artifact_file(&self, repo: &str, version: u32, path: &str, data: &[u8]) {
        let (ws, alias) = repo.split_once('/').unwrap();
        let rel = format!("{ws}/artifacts/{alias}/v{version}/{path}");
        if let Some(dir) = &self.data_dir {
            let full = dir.join(&rel);
            std::fs::create_dir_all(full.parent().unwrap()).unwrap();
            std::fs::write(full, data).unwrap();
            return;
        }
        let (endpoint, bucket, prefix) = self.s3_location();
        let tmp = TempDir::new().unwrap();
        let file = tmp.path().join("f");
        std::fs::write(&file, data).unwrap();
        let key: String = format!("{prefix}/{rel}")
            .split('/')
            .map(|c| c.replace(' ', "%20"))
            .collect::<Vec<_>>()
            .join("/");
        let out = Command::new("curl")
            .args([
                "-s",
                "-f",
                "-H",
                "Expect:",
                "-H",
                "Content-Type: application/octet-stream",
                "-X",
                "PUT",
                "--data-binary",
            ])
            .arg(format!("@{}", file.display()))
            .arg(format!("{endpoint}/{bucket}/{key}"))
            .output()
            .unwrap();
        assert!(out.status.success(), "upload of {rel} failed");
    }

    /// Call the JSON-RPC API; the whole JSON-RPC response.
    pub fn rpc(
        &self,
        token: Option<&str>,
        method: &str,
        params: serde_json::Value,
    ) -> serde_json::Value {
        let body =
            serde_json::json!({"jsonrpc": "2.0", "id": 1, "method": method, "params": params});
        let mut extra = Vec::new();
        let auth;
        if let Some(t) = token {
            auth = format!("Authorization: Bearer {t}");
            extra.push("-H");
            extra.push(auth.as_str());
        }
        let (status, out) = curl_post(
            &format!("{}/rpc", self.url),
            "application/json",
            body.to_string().as_bytes(),
            &extra,
        );
        assert_eq!(status, 200, "{}", String::from_utf8_lossy(&out));
        serde_json::from_slice(&out).unwrap()
    }

    /// The HTTP status of a GET with an optional token as the Basic password.
    pub fn status(&self, path: &str, token: Option<&str>) -> u16 {
        http_status(&format!("{}{path}", self.url), token)
    }

    /// A copy of (or, on a filesystem, the path to) the repository's storage prefix.
    pub fn bare_repo(&self, repo: &str) -> BareRepo {
        let (ws, alias) = repo.split_once('/').unwrap();
        if let Some(data) = &self.data_dir {
            return BareRepo {
                path: data.join(ws).join("artifacts").join(alias).join("git"),
                _tmp: None,
            };
        }
        let (endpoint, bucket, prefix) = self.s3_location();
        let key_prefix = format!("{prefix}/{ws}/artifacts/{alias}/git/");
        let tmp = TempDir::new().unwrap();
        let python =
            std::env::var("ARTIFACT_GIT_TEST_S3_PYTHON").unwrap_or_else(|_| "python3".into());
        let script = r#"
import os, sys, boto3
endpoint, bucket, prefix, dest = sys.argv[1:5]
s3 = boto3.client("s3", endpoint_url=endpoint, region_name="us-east-1",
                  aws_access_key_id="test", aws_secret_access_key="test")
for page in s3.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix):
    for obj in page.get("Contents", []):
        path = os.path.join(dest, obj["Key"][len(prefix):])
        os.makedirs(os.path.dirname(path), exist_ok=True)
        s3.download_file(bucket, obj["Key"], path)
"#;
        let out = Command::new(python)
            .args(["-c", script, &endpoint, bucket, &key_prefix])
            .arg(tmp.path())
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "exporting {repo} from S3 failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        BareRepo {
            path: tmp.path().to_owned(),
            _tmp: Some(tmp),
        }
    }

    /// A second server process on the same storage (a replica).
    pub fn replica(&self) -> Server {
        self.replica_with(&[])
    }

    /// A replica started with extra flags.
    pub fn replica_with(&self, args: &[&str]) -> Server {
        Server::start_with(
            &self.storage,
            self.data_dir.clone(),
            self.extra_env.clone(),
            vec![],
            args,
        )
    }

    pub fn start_with(
        storage: &str,
        data_dir: Option<PathBuf>,
        mut extra_env: Vec<(String, String)>,
        mut dirs: Vec<TempDir>,
        extra_args: &[&str],
    ) -> Server {
        if !extra_args.iter().any(|a| a.starts_with("--jwt-public-key"))
            && !extra_env
                .iter()
                .any(|(k, _)| k == "ARTIFACT_GIT_JWT_SECRET")
        {
            extra_env.push(("ARTIFACT_GIT_JWT_SECRET".into(), TEST_SECRET.into()));
        }
        let cache = TempDir::new().unwrap();
        let mut cmd = Command::new(server_bin());
        cmd.args([
            "serve",
            "--listen",
            "127.0.0.1:0",
            "--storage",
            storage,
            "--cache-dir",
        ])
        .arg(cache.path())
        .args(extra_args)
        .env(
            "ARTIFACT_GIT_LOG",
            std::env::var("ARTIFACT_GIT_TEST_LOG").unwrap_or_else(|_| "warn".into()),
        )
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit());
        for (k, v) in &extra_env {
            cmd.env(k, v);
        }
        let mut child = cmd.spawn().expect("start artifact-git");
        let stdout = child.stdout.take().unwrap();
        let mut lines = BufReader::new(stdout).lines();
        let first = lines.next().and_then(Result::ok).unwrap_or_default();
        let url = first
            .split_whitespace()
            .find(|w| w.starts_with("http://"))
            .unwrap_or_else(|| panic!("server did not announce its address: {first:?}"))
            .to_owned();
        // Keep draining stdout so the server never blocks on it.
        std::thread::spawn(move || for _ in lines {});
        dirs.push(cache);
        Server {
            child,
            url,
            storage: storage.to_owned(),
            data_dir,
            extra_env,
            _dirs: dirs,
        }
    }

    /// `artifact-git init` a repository on this server's storage.
    pub fn init(&self, repo: &str) {
        self.cli(&["init", repo]);
    }

    /// The clone URL of `workspace/alias`, with an admin token as the password.
    pub fn repo_url(&self, repo: &str) -> String {
        let token = self.token("*", None, "a");
        self.url_with_token(repo, &token)
    }

    /// The clone URL of `workspace/alias` without credentials.
    pub fn plain_url(&self, repo: &str) -> String {
        let (ws, alias) = repo.split_once('/').unwrap();
        format!("{}/{ws}/git/{alias}", self.url)
    }

    /// The clone URL with `token` as the password of user `git`.
    pub fn url_with_token(&self, repo: &str, token: &str) -> String {
        self.plain_url(repo)
            .replacen("http://", &format!("http://git:{token}@"), 1)
    }

    /// Mint a token with `artifact-git token` (scope `r`, `rw` or `a`).
    pub fn token(&self, workspace: &str, artifact: Option<&str>, scope: &str) -> String {
        let mut args = vec![
            "token",
            "--workspace",
            workspace,
            "--scope",
            scope,
            "--ttl",
            "1h",
        ];
        if let Some(a) = artifact {
            args.extend(["--artifact", a]);
        }
        self.cli(&args).trim().to_owned()
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A git environment isolated from the machine's configuration.
pub struct Git {
    pub bin: PathBuf,
    home: TempDir,
}

impl Default for Git {
    fn default() -> Self {
        Git::new(default_git())
    }
}

impl Git {
    pub fn new(bin: PathBuf) -> Git {
        let home = TempDir::new().unwrap();
        Git { bin, home }
    }

    pub fn command(&self, dir: &Path) -> Command {
        let mut cmd = Command::new(&self.bin);
        cmd.current_dir(dir)
            .env_clear()
            .env("PATH", std::env::var("PATH").unwrap_or_default())
            .env("HOME", self.home.path())
            .env("GIT_CONFIG_NOSYSTEM", "1")
            .env("GIT_TERMINAL_PROMPT", "0")
            .env("GIT_AUTHOR_NAME", "Ada Tester")
            .env("GIT_AUTHOR_EMAIL", "ada@example.com")
            .env("GIT_COMMITTER_NAME", "Ada Tester")
            .env("GIT_COMMITTER_EMAIL", "ada@example.com")
            .env("LC_ALL", "C")
            .args([
                "-c",
                "init.defaultBranch=main",
                "-c",
                "advice.detachedHead=false",
            ]);
        cmd
    }

    /// Run git; the output whatever the exit status.
    pub fn run(&self, dir: &Path, args: &[&str]) -> Output {
        self.command(dir).args(args).output().unwrap()
    }

    /// Run git and require success; its stdout.
    pub fn ok(&self, dir: &Path, args: &[&str]) -> String {
        let out = self.run(dir, args);
        assert!(
            out.status.success(),
            "git {args:?} in {} failed:\n{}{}",
            dir.display(),
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    /// Run git and require failure; its stderr.
    pub fn fails(&self, dir: &Path, args: &[&str]) -> String {
        let out = self.run(dir, args);
        assert!(!out.status.success(), "git {args:?} unexpectedly succeeded");
        String::from_utf8_lossy(&out.stderr).into_owned()
    }

    /// Every ref and its value, as `git for-each-ref` prints it, for comparison.
    pub fn refs(&self, dir: &Path, pattern: &str) -> String {
        self.ok(
            dir,
            &["for-each-ref", "--format=%(objectname) %(refname)", pattern],
        )
    }

    /// Feed a fast-import stream into the repository at `dir`.
    pub fn fast_import(&self, dir: &Path, stream: &[u8]) {
        let mut child = self
            .command(dir)
            .args(["fast-import", "--quiet"])
            .stdin(Stdio::piped())
            .spawn()
            .unwrap();
        child.stdin.take().unwrap().write_all(stream).unwrap();
        let status = child.wait().unwrap();
        assert!(status.success(), "fast-import failed");
    }
}

/// A deterministic pseudo-random generator for test content.
pub struct Rng(u64);

impl Rng {
    pub fn new(seed: u64) -> Rng {
        Rng(seed
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407))
    }
    pub fn next_u64(&mut self) -> u64 {
        self.0 = self
            .0
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        let mut x = self.0;
        x ^= x >> 33;
        x = x.wrapping_mul(0xff51afd7ed558ccd);
        x ^ (x >> 33)
    }
    pub fn below(&mut self, n: u64) -> u64 {
        self.next_u64() % n.max(1)
    }
    pub fn bytes(&mut self, n: usize) -> Vec<u8> {
        (0..n).map(|_| self.next_u64() as u8).collect()
    }
}

/// The first commit date of generated histories; commit `i` is `i` hours later.
pub const HISTORY_EPOCH: u64 = 1_600_000_000;

/// Build a history like a real project's in `dir` (a new repository): `commits` commits on
/// `main` with text files that change a little each time (so packs hold deltas), nested
/// folders, renames, deletions, binary and executable files and a symlink; a `feature` branch
/// merged back, a `release` branch, annotated and lightweight tags.
pub fn make_history(git: &Git, dir: &Path, commits: usize, seed: u64) {
    git.ok(dir, &["init", "-q", "-b", "main"]);
    let mut rng = Rng::new(seed);
    let mut s = Vec::new();
    let mut mark = 0usize;
    let mut files: Vec<(String, Vec<u8>)> = (0..12)
        .map(|i| {
            let dir = ["", "src/", "src/deep/nested/", "docs/"][i % 4];
            let body: String = (0..40)
                .map(|l| format!("line {l} of file {i}: {}\n", rng.below(1000)))
                .collect();
            (format!("{dir}file{i}.txt"), body.into_bytes())
        })
        .collect();
    let mut commit_marks = Vec::new();
    let blob = |s: &mut Vec<u8>, mark: &mut usize, data: &[u8]| -> usize {
        *mark += 1;
        write!(s, "blob\nmark :{mark}\ndata {}\n", data.len()).unwrap();
        s.extend_from_slice(data);
        s.push(b'\n');
        *mark
    };
    let mut last_main: Option<usize> = None;
    let mut feature_from = None;
    for i in 0..commits {
        let mut ops: Vec<String> = Vec::new();
        let mut new_blobs = Vec::new();
        if i == 0 {
            for (path, data) in &files {
                let m = blob(&mut s, &mut mark, data);
                new_blobs.push((path.clone(), m, "100644"));
            }
            let bin = rng.bytes(3000);
            let m = blob(&mut s, &mut mark, &bin);
            new_blobs.push(("assets/model.bin".into(), m, "100644"));
            let m = blob(&mut s, &mut mark, b"#!/bin/sh\necho hello\n");
            new_blobs.push(("run.sh".into(), m, "100755"));
            let m = blob(&mut s, &mut mark, b"file0.txt");
            new_blobs.push(("link-to-file0".into(), m, "120000"));
            let m = blob(&mut s, &mut mark, b"");
            new_blobs.push(("empty.txt".into(), m, "100644"));
        } else {
            let k = rng.below(files.len() as u64) as usize;
            let (path, data) = &mut files[k];
            let line = format!("change {i}: {}\n", rng.below(1_000_000));
            let at = (rng.below(data.len() as u64) as usize).min(data.len());
            let at = data[..at]
                .iter()
                .rposition(|b| *b == b'\n')
                .map_or(0, |p| p + 1);
            // Files grow to a few hundred lines, then lines are rewritten in place: many
            // versions of text files, with the deltas real projects have.
            let end = if data.len() > 24_000 {
                data[at..]
                    .iter()
                    .position(|b| *b == b'\n')
                    .map_or(data.len(), |p| at + p + 1)
            } else {
                at
            };
            data.splice(at..end, line.bytes());
            let m = blob(&mut s, &mut mark, data);
            new_blobs.push((path.clone(), m, "100644"));
            if i % 37 == 0 {
                let len = 2000 + rng.below(2000) as usize;
                let bin = rng.bytes(len);
                let m = blob(&mut s, &mut mark, &bin);
                new_blobs.push((format!("assets/data{i}.bin"), m, "100644"));
            }
            if i % 53 == 0 {
                let k = rng.below(files.len() as u64) as usize;
                let old = files[k].0.clone();
                let new = format!("renamed/r{i}-{}", old.rsplit('/').next().unwrap_or("x"));
                ops.push(format!("R {old} {new}"));
                files[k].0 = new;
            }
            if i % 71 == 0 {
                ops.push(format!("D assets/data{}.bin", (i / 37) * 37));
            }
        }
        mark += 1;
        let this = mark;
        let when = HISTORY_EPOCH + i as u64 * 3600;
        write!(s, "commit refs/heads/main\nmark :{this}\nauthor Ada Tester <ada@example.com> {when} +0000\ncommitter Ada Tester <ada@example.com> {when} +0000\n").unwrap();
        let msg = format!("commit {i}\n\nchanges made in step {i}\n");
        write!(s, "data {}\n{msg}", msg.len()).unwrap();
        if let Some(prev) = last_main {
            writeln!(s, "from :{prev}").unwrap();
        }
        for op in ops {
            writeln!(s, "{op}").unwrap();
        }
        for (path, m, mode) in new_blobs {
            writeln!(s, "M {mode} :{m} {path}").unwrap();
        }
        s.push(b'\n');
        last_main = Some(this);
        commit_marks.push(this);
        if i == commits / 3 {
            feature_from = Some(this);
        }
        if i == commits / 2 {
            write!(s, "tag v1.0\nfrom :{this}\ntagger Ada Tester <ada@example.com> {when} +0000\ndata 13\nrelease v1.0\n\n").unwrap();
            write!(s, "reset refs/tags/light\nfrom :{this}\n\n").unwrap();
            write!(s, "reset refs/heads/release\nfrom :{this}\n\n").unwrap();
        }
    }
    // A feature branch with its own commits, merged into main.
    if let (Some(base), Some(tip)) = (feature_from, last_main) {
        let mut prev = base;
        for j in 0..10 {
            let data = format!("feature work {j}\n{}\n", rng.below(1000));
            let m = blob(&mut s, &mut mark, data.as_bytes());
            mark += 1;
            let when = HISTORY_EPOCH + (commits as u64 / 3) * 3600 + j * 60 + 30;
            write!(s, "commit refs/heads/feature\nmark :{mark}\ncommitter Ada Tester <ada@example.com> {when} +0000\ndata 8\nfeature\nfrom :{prev}\nM 100644 :{m} feature/notes-{j}.md\n\n").unwrap();
            prev = mark;
        }
        mark += 1;
        let when = HISTORY_EPOCH + commits as u64 * 3600;
        write!(s, "commit refs/heads/main\nmark :{mark}\ncommitter Ada Tester <ada@example.com> {when} +0000\ndata 14\nmerge feature\nfrom :{tip}\nmerge :{prev}\nM 100644 inline MERGED.md\ndata 7\nmerged\n\n").unwrap();
        write!(s, "tag v2.0\nfrom :{mark}\ntagger Ada Tester <ada@example.com> {when} +0000\ndata 13\nrelease v2.0\n\n").unwrap();
    }
    git.fast_import(dir, &s);
    git.ok(dir, &["checkout", "-q", "main"]);
    if feature_from.is_some() {
        // A tag of a tag: include-tag and peeling must follow the chain.
        git.ok(
            dir,
            &[
                "-c",
                "advice.nestedTag=false",
                "tag",
                "-a",
                "-m",
                "about v2.0",
                "v2.0-notes",
                "v2.0",
            ],
        );
    }
}

/// Commit a change to `file` in the work tree at `dir`; returns the new commit id.
pub fn commit_file(git: &Git, dir: &Path, file: &str, content: &str, message: &str) -> String {
    let path = dir.join(file);
    if let Some(parent) = path.parent() {
        std::fs::create_dir_all(parent).unwrap();
    }
    std::fs::write(&path, content).unwrap();
    git.ok(dir, &["add", file]);
    git.ok(dir, &["commit", "-q", "-m", message]);
    git.ok(dir, &["rev-parse", "HEAD"]).trim().to_owned()
}

/// The number of loose objects in a repository (what an unpacked fetch received).
pub fn loose_objects(git: &Git, dir: &Path) -> usize {
    let out = git.ok(dir, &["count-objects", "-v"]);
    out.lines()
        .find_map(|l| l.strip_prefix("count: "))
        .and_then(|n| n.trim().parse().ok())
        .unwrap()
}

/// POST raw bytes with curl (for requests stock git would never send); (status, body).
pub fn curl_post(url: &str, content_type: &str, body: &[u8], extra: &[&str]) -> (u16, Vec<u8>) {
    let dir = TempDir::new().unwrap();
    let input = dir.path().join("body");
    std::fs::write(&input, body).unwrap();
    let out = Command::new("curl")
        .args(["-s", "-o", "-", "-w", "\n%{http_code}", "-X", "POST", "-H"])
        .arg(format!("Content-Type: {content_type}"))
        .args(extra)
        .arg("--data-binary")
        .arg(format!("@{}", input.display()))
        .arg(url)
        .output()
        .unwrap();
    let mut body = out.stdout;
    let nl = body.iter().rposition(|b| *b == b'\n').unwrap_or(0);
    let status = String::from_utf8_lossy(&body[nl + 1..])
        .trim()
        .parse()
        .unwrap_or(0);
    body.truncate(nl);
    (status, body)
}

/// A pkt-line.
pub fn pkt(line: &str) -> Vec<u8> {
    let mut v = format!("{:04x}", line.len() + 4).into_bytes();
    v.extend_from_slice(line.as_bytes());
    v
}

/// Wait until `f` holds, for at most `max`.
pub fn eventually(max: Duration, mut f: impl FnMut() -> bool) -> bool {
    let deadline = std::time::Instant::now() + max;
    while std::time::Instant::now() < deadline {
        if f() {
            return true;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    false
}

/// The HTTP status of a GET of `url` (the path sent as is), with `token` as Basic password.
pub fn http_status(url: &str, token: Option<&str>) -> u16 {
    let mut cmd = Command::new("curl");
    cmd.args([
        "-s",
        "-o",
        "/dev/null",
        "-w",
        "%{http_code}",
        "--path-as-is",
    ]);
    if let Some(t) = token {
        cmd.args(["-u", &format!("git:{t}")]);
    }
    let out = cmd.arg(url).output().unwrap();
    String::from_utf8_lossy(&out.stdout)
        .trim()
        .parse()
        .unwrap_or(0)
}

/// The packs of a bare repository (count of `.idx` files).
pub fn pack_count(bare: &Path) -> usize {
    std::fs::read_dir(bare.join("objects/pack"))
        .map(|d| {
            d.filter_map(Result::ok)
                .filter(|e| e.path().extension().is_some_and(|x| x == "idx"))
                .count()
        })
        .unwrap_or(0)
}
