//! Files over plain HTTP against their references, in one run on this machine:
//!
//! 1. a large regular (non-LFS) blob through `resolve` against the same bytes served as a
//!    static file by lighttpd on loopback (throughput; the server's peak RSS);
//! 2. a Git LFS file on S3 through `resolve`: the time to the redirect and the bytes of the
//!    answer (none of the file's);
//! 3. an archive of a real tree (tokio's, fetched into `/work/.mirror`, or `--tree DIR`)
//!    against `git archive` of the same commit on local disk, tar.gz and zip;
//! 4. the server's peak RSS over idle while streaming an archive of `--archive-gib` GiB;
//! 5. `snapshot_download` of a repository with 20 files, `--lfs-gib` GiB of them in LFS, on
//!    S3, against downloading the same objects straight from the S3 server with the same
//!    parallelism (8).
//!
//! Run with `bench/files [--runs N] [--blob-mib N] [--archive-gib N] [--lfs-gib N] [--tree DIR]`.
#![forbid(unsafe_code)]
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use artifact_git_e2e::*;

const USAGE: &str =
    "usage: bench/files [--runs N] [--blob-mib N] [--archive-gib N] [--lfs-gib N] [--tree DIR]";
const PARALLEL: usize = 8;

struct Args {
    runs: usize,
    blob_mib: usize,
    archive_gib: f64,
    lfs_gib: f64,
    tree: PathBuf,
    /// Only these parts (blob, redirect, archive, archive-memory, snapshot); all when empty.
    only: Vec<String>,
}

impl Args {
    fn runs(&self, part: &str) -> bool {
        self.only.is_empty() || self.only.iter().any(|o| o == part)
    }
}

fn args() -> Args {
    let mut a = Args {
        runs: 5,
        blob_mib: 200,
        archive_gib: 2.0,
        lfs_gib: 2.0,
        tree: PathBuf::from("/work/.mirror/tokio-rs+tokio/repo"),
        only: Vec::new(),
    };
    let argv: Vec<String> = std::env::args().skip(1).collect();
    let mut i = 0;
    while i < argv.len() {
        let v = argv.get(i + 1).cloned().unwrap_or_default();
        match argv[i].as_str() {
            "--runs" => a.runs = v.parse().expect(USAGE),
            "--blob-mib" => a.blob_mib = v.parse().expect(USAGE),
            "--archive-gib" => a.archive_gib = v.parse().expect(USAGE),
            "--lfs-gib" => a.lfs_gib = v.parse().expect(USAGE),
            "--tree" => a.tree = PathBuf::from(v),
            "--only" => a.only = v.split(',').map(str::to_owned).collect(),
            _ => panic!("{USAGE}"),
        }
        i += 2;
    }
    a
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(|a, b| a.partial_cmp(b).unwrap());
    v[v.len() / 2]
}

/// Seconds and bytes of one GET with curl (`-o /dev/null`).
fn curl_time(url: &str, extra: &[&str]) -> (f64, u64) {
    curl_time_to(url, "/dev/null", extra)
}

/// Seconds and bytes of one GET with curl into `dest`.
fn curl_time_to(url: &str, dest: &str, extra: &[&str]) -> (f64, u64) {
    let out = Command::new("curl")
        .args([
            "-s",
            "-o",
            dest,
            "-w",
            "%{time_total} %{size_download} %{http_code}",
        ])
        .args(extra)
        .arg(url)
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    let f: Vec<&str> = text.split_whitespace().collect();
    assert!(
        f.len() == 3 && (f[2] == "200" || f[2] == "302"),
        "{url}: {text}"
    );
    (f[0].parse().unwrap(), f[1].parse().unwrap())
}

fn reset_peak(pid: u32) {
    let _ = std::fs::write(format!("/proc/{pid}/clear_refs"), "5");
}

fn mib(kib: u64) -> f64 {
    kib as f64 / 1024.0
}

/// A repository on `server` holding `files` (path, bytes) on `main`, LFS for `*.bin` when
/// `lfs`; the work tree.
fn push_files(
    server: &Server,
    git: &Git,
    work: &Path,
    repo: &str,
    files: &[(String, Vec<u8>)],
    lfs: bool,
) -> PathBuf {
    let dir = work.join(repo.replace('/', "-"));
    git.ok(work, &["init", "-q", "-b", "main", dir.to_str().unwrap()]);
    if lfs {
        git.ok(&dir, &["lfs", "track", "*.bin"]);
    }
    for (path, data) in files {
        let file = dir.join(path);
        std::fs::create_dir_all(file.parent().unwrap()).unwrap();
        std::fs::write(file, data).unwrap();
    }
    git.ok(&dir, &["add", "."]);
    git.ok(&dir, &["commit", "-q", "-m", "files"]);
    server.init(repo);
    git.ok(&dir, &["push", "-q", &server.repo_url(repo), "main"]);
    dir
}

fn blob_vs_static(args: &Args, backend: &Backend, label: &str) {
    // A file above the default largest object of a push (100 MiB), and its working set.
    let server = Server::start_on_with(backend, &["--trusted"]);
    let git = Git::default();
    let work = TempDir::new().unwrap();
    let big = Rng::new(1).bytes(args.blob_mib << 20);
    push_files(
        &server,
        &git,
        work.path(),
        "bench/blob",
        &[("big.dat".into(), big.clone())],
        false,
    );
    let statics = work.path().join("static");
    std::fs::create_dir(&statics).unwrap();
    std::fs::write(statics.join("big.dat"), &big).unwrap();
    let lighttpd = HttpBackend::start_static(&statics);
    let token = server.token("bench", None, "r");
    let auth = format!("Authorization: Bearer {token}");
    let ours_url = format!("{}/resolve/main/big.dat", server.plain_url("bench/blob"));
    let theirs_url = format!("{}/big.dat", lighttpd.url);
    reset_peak(server.pid());
    let rate = |t: f64| big.len() as f64 / t / (1 << 20) as f64;
    // Into /dev/null (the servers alone), then into a file (what a download is).
    let file = work.path().join("downloaded");
    for (sink, dest) in [
        ("to /dev/null", "/dev/null"),
        ("to a file", file.to_str().unwrap()),
    ] {
        let (mut ours, mut theirs) = (Vec::new(), Vec::new());
        for _ in 0..args.runs {
            let (t, n) = curl_time_to(&ours_url, dest, &["-H", &auth]);
            assert_eq!(n as usize, big.len());
            ours.push(t);
            let (t, n) = curl_time_to(&theirs_url, dest, &[]);
            assert_eq!(n as usize, big.len());
            theirs.push(t);
        }
        let (ours, theirs) = (median(ours), median(theirs));
        println!(
            "| {} MiB regular blob ({label}, {sink}) | lighttpd {:.3} s, {:.0} MiB/s | {:.3} s, {:.0} MiB/s | {:.2} | server peak {:.0} MiB |",
            args.blob_mib,
            theirs,
            rate(theirs),
            ours,
            rate(ours),
            rate(ours) / rate(theirs),
            mib(peak_rss_kib(server.pid()))
        );
    }
    if std::fs::read(&file).unwrap() != big {
        panic!("the downloaded file differs");
    }
}

fn lfs_redirect(args: &Args, backend: &Backend) {
    let server = Server::start_on(backend);
    let git = Git::default();
    git.lfs_install();
    let work = TempDir::new().unwrap();
    let model = Rng::new(2).bytes(64 << 20);
    push_files(
        &server,
        &git,
        work.path(),
        "bench/lfs",
        &[("model.bin".into(), model)],
        true,
    );
    let token = server.token("bench", None, "r");
    let auth = format!("Authorization: Bearer {token}");
    let url = format!("{}/resolve/main/model.bin", server.plain_url("bench/lfs"));
    let mut times = Vec::new();
    let mut bytes = 0;
    for _ in 0..(args.runs * 10) {
        let (t, n) = curl_time(&url, &["-H", &auth]);
        times.push(t * 1000.0);
        bytes += n;
    }
    println!(
        "| LFS file on S3 through resolve (64 MiB) | redirect in {:.2} ms (median of {}), answer bodies {} bytes in all |",
        median(times),
        args.runs * 10,
        bytes
    );
}

fn archive_vs_git(args: &Args) {
    if !args.tree.join("HEAD").exists() && !args.tree.join(".git").exists() {
        println!(
            "| archive | skipped: no repository at {} (--tree) |",
            args.tree.display()
        );
        return;
    }
    let server = Server::start_on(&Backend::Fs);
    let git = Git::default();
    let work = TempDir::new().unwrap();
    // The real history, as a bare clone on local disk for `git archive` and pushed to ours.
    let bare = work.path().join("tree.git");
    git.ok(
        work.path(),
        &[
            "clone",
            "-q",
            "--bare",
            "--single-branch",
            args.tree.to_str().unwrap(),
            bare.to_str().unwrap(),
        ],
    );
    let head = git.ok(&bare, &["rev-parse", "HEAD"]).trim().to_owned();
    server.init("bench/tree");
    git.ok(
        &bare,
        &[
            "push",
            "-q",
            &server.repo_url("bench/tree"),
            &format!("{head}:refs/heads/main"),
        ],
    );
    let token = server.token("bench", None, "r");
    let auth = format!("Authorization: Bearer {token}");
    for (format, ext) in [("tar.gz", "tar.gz"), ("zip", "zip")] {
        let url = format!("{}/archive/{head}.{ext}", server.plain_url("bench/tree"));
        let (mut ours, mut theirs) = (Vec::new(), Vec::new());
        for _ in 0..args.runs {
            ours.push(curl_time(&url, &["-H", &auth]).0);
            let t = Instant::now();
            let out = git
                .command(&bare)
                .args(["archive", &format!("--format={format}"), &head])
                .output()
                .unwrap();
            assert!(out.status.success());
            theirs.push(t.elapsed().as_secs_f64());
        }
        let (ours, theirs) = (median(ours), median(theirs));
        println!(
            "| archive of {} ({format}) | git archive {:.3} s | artifact-git {:.3} s | {:.2} |",
            args.tree.display(),
            theirs,
            ours,
            ours / theirs
        );
    }
}

fn archive_memory(args: &Args) {
    let server = Server::start_on(&Backend::Fs);
    let git = Git::default();
    let work = TempDir::new().unwrap();
    let files = ((args.archive_gib * 1024.0) as usize / 8).max(1);
    let src = work.path().join("big");
    git.ok(
        work.path(),
        &["init", "-q", "-b", "main", src.to_str().unwrap()],
    );
    write_random_files(&src, files * (8 << 20), 8 << 20, 9);
    git.ok(&src, &["add", "."]);
    git.ok(&src, &["commit", "-q", "-m", "data"]);
    server.init("bench/big");
    git.ok(
        &src,
        &[
            "-c",
            "core.bigFileThreshold=1m",
            "push",
            "-q",
            &server.repo_url("bench/big"),
            "main",
        ],
    );
    let token = server.token("bench", None, "r");
    let idle = mib(status_kib(server.pid(), "VmRSS"));
    reset_peak(server.pid());
    let url = format!("{}/archive/main.tar", server.plain_url("bench/big"));
    let t = Instant::now();
    let (_, bytes) = curl_time(&url, &["-H", &format!("Authorization: Bearer {token}")]);
    let secs = t.elapsed().as_secs_f64();
    let peak = mib(peak_rss_kib(server.pid()));
    println!(
        "| archive of {:.2} GiB (tar) | {:.1} s, {:.0} MiB/s | idle {:.0} MiB, peak {:.0} MiB: {:.0} MiB over idle |",
        bytes as f64 / (1u64 << 30) as f64,
        secs,
        bytes as f64 / secs / (1 << 20) as f64,
        idle,
        peak,
        peak - idle
    );
}

fn snapshot_vs_s3(args: &Args, backend: &Backend, endpoint: &str) {
    let python = Path::new(env!("CARGO_MANIFEST_DIR")).join("../.ci/clientsvenv/bin/python");
    if !python.exists() {
        println!("| snapshot_download | skipped: run scripts/install-git-clients |");
        return;
    }
    let server = Server::start_on(backend);
    let git = Git::default();
    git.lfs_install();
    let work = TempDir::new().unwrap();
    let lfs_files = 4;
    let each = ((args.lfs_gib * 1024.0) as usize / lfs_files) << 20;
    let mut rng = Rng::new(4);
    let mut files: Vec<(String, Vec<u8>)> = (0..lfs_files)
        .map(|i| (format!("shard-{i}.bin"), rng.bytes(each)))
        .collect();
    for i in 0..16 {
        files.push((
            format!("config/part-{i}.json"),
            format!("{{\"part\": {i}}}\n").into_bytes(),
        ));
    }
    push_files(&server, &git, work.path(), "bench/snap", &files, true);
    drop(files);
    let token = server.token("bench", None, "r");
    let script = r#"
import sys, time
from huggingface_hub import snapshot_download
t = time.time()
snapshot_download(sys.argv[1], cache_dir=sys.argv[2], max_workers=int(sys.argv[3]))
print(time.time() - t)
"#;
    let mut ours = Vec::new();
    for run in 0..args.runs.min(3) {
        let out = Command::new(&python)
            .args(["-c", script, "bench/snap"])
            .arg(work.path().join(format!("cache-{run}")))
            .arg(PARALLEL.to_string())
            .env("HF_ENDPOINT", format!("{}/hf", server.url))
            .env("HF_TOKEN", &token)
            .env("HF_HUB_DISABLE_TELEMETRY", "1")
            .env("HF_HUB_DISABLE_PROGRESS_BARS", "1")
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        ours.push(
            String::from_utf8_lossy(&out.stdout)
                .trim()
                .parse::<f64>()
                .unwrap(),
        );
        std::fs::remove_dir_all(work.path().join(format!("cache-{run}"))).unwrap();
    }
    // The floor: the same objects straight from the S3 server, 8 at a time.
    let (_, bucket, prefix) = server.s3_location();
    let bucket_dir = (
        bucket.to_owned(),
        format!("{prefix}/bench/artifacts/snap/git/"),
    );
    let listing = Command::new("curl")
        .args([
            "-s",
            &format!(
                "{endpoint}/{}?list-type=2&prefix={}lfs/objects/",
                bucket_dir.0, bucket_dir.1
            ),
        ])
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&listing.stdout).into_owned();
    let keys: Vec<String> = text
        .split("<Key>")
        .skip(1)
        .filter_map(|s| s.split("</Key>").next().map(str::to_owned))
        .collect();
    assert_eq!(keys.len(), lfs_files, "{text}");
    // The floor: the same objects straight from the S3 server (presigned URLs), 8 at a time.
    let s3_python =
        std::env::var("ARTIFACT_GIT_TEST_S3_PYTHON").unwrap_or_else(|_| "python3".into());
    let sign = r#"
import sys, boto3
endpoint, bucket, keys = sys.argv[1], sys.argv[2], sys.argv[3:]
s3 = boto3.client("s3", endpoint_url=endpoint, region_name="us-east-1")
for key in keys:
    print(s3.generate_presigned_url("get_object", Params={"Bucket": bucket, "Key": key}, ExpiresIn=3600))
"#;
    let signed = Command::new(&s3_python)
        .args(["-c", sign, endpoint, &bucket_dir.0])
        .args(&keys)
        .output()
        .unwrap();
    assert!(
        signed.status.success(),
        "{}",
        String::from_utf8_lossy(&signed.stderr)
    );
    let urls: Vec<String> = String::from_utf8_lossy(&signed.stdout)
        .lines()
        .map(str::to_owned)
        .collect();
    let mut floor = Vec::new();
    for run in 0..args.runs.min(3) {
        let dir = work.path().join(format!("direct-{run}"));
        std::fs::create_dir(&dir).unwrap();
        let mut cmd = Command::new("curl");
        cmd.args(["-sf", "--parallel", "--parallel-max", &PARALLEL.to_string()]);
        for (i, url) in urls.iter().enumerate() {
            cmd.arg("-o").arg(dir.join(i.to_string())).arg(url);
        }
        let t = Instant::now();
        assert!(
            cmd.status().unwrap().success(),
            "reading the objects from S3 failed"
        );
        floor.push(t.elapsed().as_secs_f64());
        let got: u64 = (0..keys.len())
            .map(|i| std::fs::metadata(dir.join(i.to_string())).unwrap().len())
            .sum();
        assert_eq!(
            got,
            (each * lfs_files) as u64,
            "the objects read from S3 are not whole"
        );
        std::fs::remove_dir_all(&dir).unwrap();
    }
    // The same URLs with the client's own HTTP stack (requests, 10 MB chunks), 8 threads.
    let fetch = r#"
import sys, time, requests
from concurrent.futures import ThreadPoolExecutor
dest, workers, urls = sys.argv[1], int(sys.argv[2]), sys.argv[3:]
def get(iu):
    i, url = iu
    with requests.get(url, stream=True) as r, open(f"{dest}/{i}", "wb") as f:
        r.raise_for_status()
        for chunk in r.iter_content(10 * 1024 * 1024):
            f.write(chunk)
t = time.time()
with ThreadPoolExecutor(workers) as pool:
    list(pool.map(get, enumerate(urls)))
print(time.time() - t)
"#;
    let mut same_stack = Vec::new();
    for run in 0..args.runs.min(3) {
        let dir = work.path().join(format!("requests-{run}"));
        std::fs::create_dir(&dir).unwrap();
        let out = Command::new(&python)
            .args(["-c", fetch])
            .arg(&dir)
            .arg(PARALLEL.to_string())
            .args(&urls)
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        same_stack.push(
            String::from_utf8_lossy(&out.stdout)
                .trim()
                .parse::<f64>()
                .unwrap(),
        );
        std::fs::remove_dir_all(&dir).unwrap();
    }
    let (ours, floor, same_stack) = (median(ours), median(floor), median(same_stack));
    println!(
        "| snapshot_download, 20 files, {:.1} GiB in LFS, on S3 | S3 directly with curl {:.2} s; with python requests {:.2} s | huggingface_hub {:.2} s | {:.2} of curl's, {:.2} of requests' throughput |",
        args.lfs_gib,
        floor,
        same_stack,
        ours,
        floor / ours,
        same_stack / ours
    );
}

fn main() {
    let args = args();
    let started = Instant::now();
    println!("| what | reference | artifact-git | ratio | notes |");
    println!("|---|---|---|---|---|");
    if args.runs("blob") {
        blob_vs_static(&args, &Backend::Fs, "filesystem");
    }
    if let Some(backend) = Backend::s3_if_running() {
        if args.runs("blob") {
            blob_vs_static(&args, &backend, "S3");
        }
        if args.runs("redirect") {
            lfs_redirect(&args, &backend);
        }
    }
    if args.runs("archive") {
        archive_vs_git(&args);
    }
    if args.runs("archive-memory") {
        archive_memory(&args);
    }
    if let (Some(backend), true) = (Backend::s3_if_running(), args.runs("snapshot")) {
        let endpoint = match &backend {
            Backend::S3 { endpoint, .. } => endpoint.clone(),
            Backend::Fs => unreachable!(),
        };
        snapshot_vs_s3(&args, &backend, &endpoint);
    }
    eprintln!("done in {:.0} s", started.elapsed().as_secs_f64());
    let _ = Duration::ZERO;
}
