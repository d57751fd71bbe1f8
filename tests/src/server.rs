//! The server under test: a separate `artifact-git serve` process on a free port, on a fresh
//! storage of either backend.

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};

use tempfile::TempDir;

use crate::http::curl_post;
use crate::http::http_status;

/// How to start a server process, beyond its flags.
#[derive(Debug, Clone, Default)]
pub struct Launch {
    /// `ulimit -n` for the process.
    pub max_open_files: Option<u32>,
    /// Where its log goes (the test's stderr otherwise).
    pub log_file: Option<PathBuf>,
    /// Its log filter (`ARTIFACT_GIT_TEST_LOG`, or `warn`, otherwise).
    pub log_filter: Option<String>,
}

/// The `artifact-git` binary under test.
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
    /// The S3 test server that `scripts/test` (or `scripts/with-s3-test-server`) started.
    /// Without one an S3 variant fails: a test that did not run is never reported as passed
    /// (leave them out by name instead: `cargo test -- --skip s3`).
    pub fn s3() -> Backend {
        Backend::s3_if_running().unwrap_or_else(|| {
            panic!(
                "no S3 test server: ARTIFACT_GIT_TEST_S3_ENDPOINT is not set (run under scripts/with-s3-test-server, or leave the S3 tests out with `-- --skip s3`)"
            )
        })
    }

    /// The S3 test server, when one runs (benchmarks add its rows then).
    pub fn s3_if_running() -> Option<Backend> {
        match std::env::var("ARTIFACT_GIT_TEST_S3_ENDPOINT") {
            Ok(endpoint) if !endpoint.is_empty() => Some(Backend::S3 { endpoint }),
            _ => None,
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
                super::$name(&$crate::Backend::s3())
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
        Server::start_on_launched(backend, args, &Launch::default())
    }

    /// A server on a fresh storage of `backend`, started as `launch` says.
    pub fn start_on_launched(backend: &Backend, args: &[&str], launch: &Launch) -> Server {
        match backend {
            Backend::Fs => {
                let dir = TempDir::new().unwrap();
                let data = dir.path().join("data");
                Server::launch(
                    &format!("file://{}", data.display()),
                    Some(data),
                    vec![],
                    vec![dir],
                    args,
                    launch,
                )
            }
            Backend::S3 { endpoint } => {
                let bucket = create_bucket(endpoint);
                Server::launch(
                    &format!("s3://{bucket}/repos"),
                    None,
                    s3_env(endpoint),
                    vec![],
                    args,
                    launch,
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

    /// An `artifact-git` command with this server's storage and environment, not started.
    pub fn cli_command(&self, args: &[&str]) -> Command {
        let mut cmd = Command::new(server_bin());
        cmd.args(args).args(["--storage", &self.storage]);
        for (k, v) in &self.extra_env {
            cmd.env(k, v);
        }
        cmd
    }

    /// Run an `artifact-git` command with this server's storage and environment; its stdout.
    pub fn cli(&self, args: &[&str]) -> String {
        let out = self.cli_command(args).output().unwrap();
        assert!(
            out.status.success(),
            "artifact-git {args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8(out.stdout).unwrap()
    }

    /// (endpoint, bucket, key prefix) of an S3-backed server.
    pub fn s3_location(&self) -> (String, &str, &str) {
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

    /// The text of `/metrics`; a server that cannot answer it fails the test.
    pub fn metrics_text(&self) -> String {
        let out = Command::new("curl")
            .args(["-sf"])
            .arg(format!("{}/metrics", self.url))
            .output()
            .unwrap();
        let text = String::from_utf8_lossy(&out.stdout).into_owned();
        assert!(
            out.status.success() && text.contains("# TYPE "),
            "/metrics could not be read: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        text
    }

    /// The value of a counter at `/metrics` (0 when it has not counted anything yet).
    pub fn metric(&self, name: &str) -> u64 {
        self.metrics_text()
            .lines()
            .find_map(|l| l.strip_prefix(&format!("{name} ")))
            .map(|v| {
                v.trim()
                    .parse()
                    .unwrap_or_else(|_| panic!("metric {name}: {v}"))
            })
            .unwrap_or(0)
    }

    /// Calls to the bucket by kind (every backend added up), from `/metrics`.
    pub fn bucket_calls(&self) -> std::collections::BTreeMap<String, u64> {
        let mut calls = std::collections::BTreeMap::new();
        for line in self.metrics_text().lines() {
            let Some(rest) = line.strip_prefix("artifact_git_bucket_calls_total{") else {
                continue;
            };
            let Some((labels, value)) = rest.split_once("} ") else {
                continue;
            };
            let kind = labels
                .split(',')
                .find_map(|l| l.strip_prefix("kind=\""))
                .and_then(|k| k.strip_suffix('"'))
                .unwrap_or_else(|| panic!("a bucket call without a kind: {line}"));
            let n: f64 = value.trim().parse().unwrap_or_else(|_| panic!("{line}"));
            *calls.entry(kind.to_owned()).or_insert(0) += n as u64;
        }
        calls
    }

    /// The server's process id (to read its memory use).
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Kill the process outright (`kill -9`): no shutdown, nothing flushed.
    pub fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    /// Send SIGTERM (what container runtimes send) and wait up to `max` for the process to
    /// exit; its exit status, or `None` if it is still running.
    pub fn terminate(&mut self, max: std::time::Duration) -> Option<std::process::ExitStatus> {
        let sent = Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status()
            .unwrap();
        assert!(sent.success());
        let deadline = std::time::Instant::now() + max;
        while std::time::Instant::now() < deadline {
            if let Some(status) = self.child.try_wait().unwrap() {
                return Some(status);
            }
            std::thread::sleep(std::time::Duration::from_millis(20));
        }
        None
    }

    /// Store a file of an artifact version the way the artifact service does, before git is
    /// Remove the object at `rel` (relative to the storage's root) behind the server's back,
    /// as an operator's mistake or a lost file would.
    pub fn delete_stored(&self, rel: &str) {
        if let Some(dir) = &self.data_dir {
            std::fs::remove_file(dir.join(rel)).unwrap();
            return;
        }
        let (endpoint, bucket, prefix) = self.s3_location();
        let python =
            std::env::var("ARTIFACT_GIT_TEST_S3_PYTHON").unwrap_or_else(|_| "python3".into());
        let script = r#"
import sys, boto3
endpoint, bucket, key = sys.argv[1:4]
s3 = boto3.client("s3", endpoint_url=endpoint, region_name="us-east-1",
                  aws_access_key_id="test", aws_secret_access_key="test")
s3.delete_object(Bucket=bucket, Key=key)
"#;
        let out = Command::new(python)
            .args(["-c", script, &endpoint, bucket, &format!("{prefix}/{rel}")])
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "deleting {rel} failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }

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

    /// Call an API method with an admin token of `workspace`, requiring success; its result.
    pub fn call(
        &self,
        workspace: &str,
        method: &str,
        params: serde_json::Value,
    ) -> serde_json::Value {
        let token = self.token(workspace, None, "a");
        let answer = self.rpc(Some(&token), method, params);
        assert!(answer["error"].is_null(), "{method}: {answer}");
        answer["result"].clone()
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
        let (_, _, prefix) = self.s3_location();
        let tmp = self.export_s3(&format!("{prefix}/{ws}/artifacts/{alias}/git/"));
        BareRepo {
            path: tmp.path().to_owned(),
            _tmp: Some(tmp),
        }
    }

    /// Copy every key under `key_prefix` of an S3-backed server's bucket into a directory.
    fn export_s3(&self, key_prefix: &str) -> TempDir {
        let (endpoint, bucket, _) = self.s3_location();
        let tmp = TempDir::new().unwrap();
        let python =
            std::env::var("ARTIFACT_GIT_TEST_S3_PYTHON").unwrap_or_else(|_| "python3".into());
        let script = r#"
import os, sys, boto3, botocore
endpoint, bucket, prefix, dest = sys.argv[1:5]
s3 = boto3.client("s3", endpoint_url=endpoint, region_name="us-east-1",
                  aws_access_key_id="test", aws_secret_access_key="test")
for page in s3.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix):
    for obj in page.get("Contents", []):
        path = os.path.join(dest, obj["Key"][len(prefix):])
        os.makedirs(os.path.dirname(path), exist_ok=True)
        try:
            s3.download_file(bucket, obj["Key"], path)
        except botocore.exceptions.ClientError as e:
            # Deleted since it was listed (a purge running meanwhile): not there any more.
            if e.response.get("Error", {}).get("Code") not in ("404", "NoSuchKey"):
                raise
"#;
        let out = Command::new(python)
            .args(["-c", script, &endpoint, bucket, key_prefix])
            .arg(tmp.path())
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "exporting {key_prefix} from S3 failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        tmp
    }

    /// Every key of the server's storage with its bytes (the filesystem backend's own
    /// staging directory aside): what a refused call must leave exactly as it was.
    pub fn stored_state(&self) -> std::collections::BTreeMap<String, Vec<u8>> {
        if let Some(data) = &self.data_dir {
            let mut out = read_tree(data, "");
            out.retain(|k, _| !k.starts_with(".artifact-git"));
            return out;
        }
        let (_, _, prefix) = self.s3_location();
        let tmp = self.export_s3(&format!("{prefix}/"));
        read_tree(tmp.path(), "")
    }

    /// The artifact's own files (version folders and manifests, not its git repository):
    /// path under `{ws}/artifacts/{alias}/` to bytes.
    pub fn artifact_files(&self, repo: &str) -> std::collections::BTreeMap<String, Vec<u8>> {
        let (ws, alias) = repo.split_once('/').unwrap();
        let tmp;
        let root = match &self.data_dir {
            Some(data) => data.join(ws).join("artifacts").join(alias),
            None => {
                let (_, _, prefix) = self.s3_location();
                tmp = self.export_s3(&format!("{prefix}/{ws}/artifacts/{alias}/v"));
                let dir = tmp.path().to_owned();
                return read_tree(&dir, "v");
            }
        };
        let mut out = read_tree(&root, "");
        out.retain(|k, _| !k.starts_with("git/"));
        out
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
        extra_env: Vec<(String, String)>,
        dirs: Vec<TempDir>,
        extra_args: &[&str],
    ) -> Server {
        Server::launch(
            storage,
            data_dir,
            extra_env,
            dirs,
            extra_args,
            &Launch::default(),
        )
    }

    /// A server on a fresh filesystem storage, started as `launch` says.
    pub fn start_launched(args: &[&str], launch: &Launch) -> Server {
        let dir = TempDir::new().unwrap();
        let data = dir.path().join("data");
        Server::launch(
            &format!("file://{}", data.display()),
            Some(data),
            vec![],
            vec![dir],
            args,
            launch,
        )
    }

    fn launch(
        storage: &str,
        data_dir: Option<PathBuf>,
        mut extra_env: Vec<(String, String)>,
        mut dirs: Vec<TempDir>,
        extra_args: &[&str],
        launch: &Launch,
    ) -> Server {
        if !extra_args.iter().any(|a| a.starts_with("--jwt-public-key"))
            && !extra_env
                .iter()
                .any(|(k, _)| k == "ARTIFACT_GIT_JWT_SECRET")
        {
            extra_env.push(("ARTIFACT_GIT_JWT_SECRET".into(), TEST_SECRET.into()));
        }
        if !extra_env
            .iter()
            .any(|(k, _)| k == "ARTIFACT_GIT_OBJECT_FORMAT")
        {
            let format = crate::object_format().to_owned();
            extra_env.push(("ARTIFACT_GIT_OBJECT_FORMAT".into(), format));
        }
        let cache = TempDir::new().unwrap();
        let mut cmd = match launch.max_open_files {
            // `exec` keeps the process id: the test watches the server itself.
            Some(n) => {
                let mut c = Command::new("sh");
                c.args(["-c", &format!("ulimit -n {n} && exec \"$0\" \"$@\"")])
                    .arg(server_bin());
                c
            }
            None => Command::new(server_bin()),
        };
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
            launch.log_filter.clone().unwrap_or_else(|| {
                std::env::var("ARTIFACT_GIT_TEST_LOG").unwrap_or_else(|_| "warn".into())
            }),
        )
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(match &launch.log_file {
            Some(path) => Stdio::from(std::fs::File::create(path).unwrap()),
            None => Stdio::inherit(),
        });
        for (k, v) in &extra_env {
            cmd.env(k, v);
        }
        let mut child = cmd.spawn().expect("start artifact-git");
        let stdout = child.stdout.take().unwrap();
        let mut lines = BufReader::new(stdout).lines();
        let first = lines.next().and_then(Result::ok).unwrap_or_default();
        let url = first
            .split_whitespace()
            .find(|w| w.starts_with("http://") || w.starts_with("https://"))
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
        self.token_for(workspace, artifact, scope, None)
    }

    /// Mint a token for the user `subject` (its `sub` claim).
    pub fn token_for(
        &self,
        workspace: &str,
        artifact: Option<&str>,
        scope: &str,
        subject: Option<&str>,
    ) -> String {
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
        if let Some(s) = subject {
            args.extend(["--subject", s]);
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

/// Every file under `dir` (outside `.git` folders) by its path, prefixed with `prefix`,
/// relative to it.
pub fn read_tree(dir: &Path, prefix: &str) -> std::collections::BTreeMap<String, Vec<u8>> {
    let mut out = std::collections::BTreeMap::new();
    let mut stack = vec![dir.to_owned()];
    while let Some(d) = stack.pop() {
        let Ok(entries) = std::fs::read_dir(&d) else {
            continue;
        };
        for entry in entries {
            let path = entry.unwrap().path();
            if path.file_name().is_some_and(|n| n == ".git") {
                continue;
            }
            if path.is_dir() {
                stack.push(path);
            } else {
                let rel = path
                    .strip_prefix(dir)
                    .unwrap()
                    .to_string_lossy()
                    .into_owned();
                out.insert(format!("{prefix}{rel}"), std::fs::read(&path).unwrap());
            }
        }
    }
    out
}

/// A server on `backend` with one repository, its clone URL (admin token), an isolated
/// `git`, and an empty work tree on `main`: the start of most tests.
pub struct Scratch {
    pub server: Server,
    pub url: String,
    pub git: crate::Git,
    pub work: TempDir,
    pub src: PathBuf,
}

impl Scratch {
    /// `repo` (`workspace/alias`) created on a new server.
    pub fn new(backend: &Backend, repo: &str) -> Scratch {
        Scratch::with_args(backend, repo, &[])
    }

    /// [`Scratch::new`] on a server started with `args`.
    pub fn with_args(backend: &Backend, repo: &str, args: &[&str]) -> Scratch {
        let server = Server::start_on_with(backend, args);
        server.init(repo);
        let url = server.repo_url(repo);
        let git = crate::Git::default();
        let work = TempDir::new().unwrap();
        let src = work.path().join("src");
        git.ok(
            work.path(),
            &["init", "-q", "-b", "main", src.to_str().unwrap()],
        );
        Scratch {
            server,
            url,
            git,
            work,
            src,
        }
    }
}

/// The first upstream of `repo` (in workspace `lab`) as `list_upstreams` shows it.
pub fn upstream_status(server: &Server, repo: &str) -> serde_json::Value {
    server.call(
        "lab",
        "list_upstreams",
        serde_json::json!({"artifact_id": repo}),
    )["upstreams"][0]
        .clone()
}

/// Wait up to `max` until that upstream has finished `syncs` syncs and is not syncing; its
/// status then.
pub fn wait_for_syncs(
    server: &Server,
    repo: &str,
    syncs: u64,
    max: std::time::Duration,
) -> serde_json::Value {
    let mut last = serde_json::Value::Null;
    let done = crate::eventually(max, || {
        last = upstream_status(server, repo);
        last["status"]["syncs"].as_u64().unwrap_or(0) >= syncs && last["status"]["syncing"] == false
    });
    assert!(done, "{syncs} syncs: {last}");
    last
}
