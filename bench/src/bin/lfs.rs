//! Git LFS benchmark: the real `git lfs` client uploading and downloading 1 GiB in objects of
//! about 100 MB through artifact-git (filesystem storage; S3 with presigned URLs; S3 with every
//! upload through the server), against the floor of a plain copy of the same bytes over
//! loopback with `curl` (to a minimal HTTP sink writing to disk, and straight to the S3 test
//! server). Prints medians, throughput, and the server's CPU and peak RSS. Run with
//! `bench/lfs [--runs N] [--objects N] [--no-s3]`.
#![forbid(unsafe_code)]
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use artifact_git_e2e::*;

const USAGE: &str = "usage: bench/lfs [--runs N] [--objects N] [--no-s3]";
/// 1 GiB in ten objects.
const OBJECT_SIZE: usize = (1 << 30) / 10 + 1;
/// What `git lfs` runs at once by default (`lfs.concurrenttransfers`); the floor's curls too.
const PARALLEL: usize = 8;

struct Args {
    runs: usize,
    objects: usize,
    s3: bool,
}

fn args() -> Args {
    let mut a = Args {
        runs: 3,
        objects: 10,
        s3: true,
    };
    let argv: Vec<String> = std::env::args().skip(1).collect();
    let mut i = 0;
    while i < argv.len() {
        match (
            argv[i].as_str(),
            argv.get(i + 1).and_then(|v| v.parse().ok()),
        ) {
            ("--runs", Some(v)) => a.runs = v,
            ("--objects", Some(v)) => a.objects = v,
            ("--no-s3", _) => {
                a.s3 = false;
                i += 1;
                continue;
            }
            _ => panic!("{USAGE}"),
        }
        i += 2;
    }
    a
}

fn median(mut v: Vec<Duration>) -> Duration {
    v.sort();
    v[v.len() / 2]
}

/// A minimal HTTP/1.1 server over loopback for the floor: `PUT /name` stores the body in a
/// file (as the filesystem backend does), `GET /name` sends it back.
fn start_sink(dir: PathBuf) -> String {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    std::thread::spawn(move || {
        for stream in listener.incoming().flatten() {
            let dir = dir.clone();
            std::thread::spawn(move || serve_one(stream, &dir));
        }
    });
    url
}

fn serve_one(stream: TcpStream, dir: &Path) {
    let mut reader = BufReader::with_capacity(1 << 20, stream.try_clone().unwrap());
    let mut line = String::new();
    reader.read_line(&mut line).unwrap();
    let mut parts = line.split_whitespace();
    let (method, path) = (
        parts.next().unwrap_or("").to_owned(),
        parts.next().unwrap_or("/").to_owned(),
    );
    let mut length = 0u64;
    loop {
        let mut header = String::new();
        reader.read_line(&mut header).unwrap();
        if header.trim().is_empty() {
            break;
        }
        if let Some((k, v)) = header.split_once(':') {
            if k.eq_ignore_ascii_case("content-length") {
                length = v.trim().parse().unwrap_or(0);
            }
        }
    }
    let file = dir.join(path.trim_start_matches('/'));
    let mut out = stream;
    if method == "PUT" {
        let mut f = std::fs::File::create(&file).unwrap();
        std::io::copy(&mut (&mut reader).take(length), &mut f).unwrap();
        f.sync_all().unwrap();
        out.write_all(b"HTTP/1.1 200 OK\r\ncontent-length: 0\r\nconnection: close\r\n\r\n")
            .unwrap();
    } else {
        let mut f = std::fs::File::open(&file).unwrap();
        let size = f.metadata().unwrap().len();
        write!(
            out,
            "HTTP/1.1 200 OK\r\ncontent-length: {size}\r\nconnection: close\r\n\r\n"
        )
        .unwrap();
        std::io::copy(&mut f, &mut out).unwrap();
    }
}

/// Run `curl` for every file, `PARALLEL` at a time; `put` uploads, otherwise downloads.
fn curl_all(
    files: &[PathBuf],
    url_of: &(dyn Fn(usize) -> String + Sync),
    put: bool,
    out_dir: &Path,
) {
    let next = std::sync::atomic::AtomicUsize::new(0);
    std::thread::scope(|scope| {
        for _ in 0..PARALLEL {
            scope.spawn(|| loop {
                let i = next.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
                let Some(file) = files.get(i) else { break };
                let mut cmd = Command::new("curl");
                cmd.args(["-sf", "-H", "Expect:"]);
                if put {
                    cmd.args([
                        "-X",
                        "PUT",
                        "-H",
                        "Content-Type: application/octet-stream",
                        "-T",
                    ])
                    .arg(file);
                } else {
                    cmd.arg("-o").arg(out_dir.join(i.to_string()));
                }
                let status = cmd.arg(url_of(i)).status().unwrap();
                assert!(status.success(), "curl failed for {}", url_of(i));
            });
        }
    });
}

/// One row: medians of uploads and downloads, and the server's CPU and peak RSS.
struct Row {
    name: String,
    upload: Duration,
    download: Duration,
    /// CPU seconds per run and peak RSS in MiB, of the server process (none for the floors).
    server: Option<(f64, f64)>,
}

fn reset_peak_rss(pid: u32) {
    let _ = std::fs::write(format!("/proc/{pid}/clear_refs"), "5");
}

/// Measure `git lfs` against a server.
fn measure_server(
    name: &str,
    server: &Server,
    git: &Git,
    source: &Path,
    runs: usize,
    work: &Path,
) -> Row {
    let pid = server.pid();
    // A repository holding the objects, for the downloads.
    server.init("lab/lfs-down");
    let down_url = server.repo_url("lab/lfs-down");
    git.ok(source, &["push", "-q", &down_url, "main"]);
    reset_peak_rss(pid);
    let cpu_before = cpu_seconds(pid);
    let mut uploads = Vec::new();
    for i in 0..runs {
        // A fresh repository each run, so every object is uploaded again.
        let repo = format!("lab/lfs-up-{i}");
        server.init(&repo);
        let url = server.repo_url(&repo);
        let start = Instant::now();
        git.ok(source, &["lfs", "push", "--all", &url]);
        uploads.push(start.elapsed());
    }
    let mut downloads = Vec::new();
    for i in 0..runs {
        let dir = work.join(format!("down-{i}"));
        let mut clone = git.command(work);
        clone.env("GIT_LFS_SKIP_SMUDGE", "1").args([
            "clone",
            "-q",
            &down_url,
            dir.to_str().unwrap(),
        ]);
        assert!(clone.status().unwrap().success());
        let start = Instant::now();
        git.ok(&dir, &["lfs", "fetch", "origin", "main"]);
        downloads.push(start.elapsed());
        let _ = std::fs::remove_dir_all(&dir);
    }
    let cpu = (cpu_seconds(pid) - cpu_before) / (2 * runs) as f64;
    let rss = peak_rss_kib(pid) as f64 / 1024.0;
    Row {
        name: name.to_owned(),
        upload: median(uploads),
        download: median(downloads),
        server: Some((cpu, rss)),
    }
}

/// Presigned PUT and GET URLs for `n` keys of the S3 test server's `bucket`, made by boto3
/// (the S3 test server's own Python), so the floor's requests are signed as `git lfs`'s are.
fn presigned(endpoint: &str, bucket: &str, n: usize) -> (Vec<String>, Vec<String>) {
    let python = std::env::var("ARTIFACT_GIT_TEST_S3_PYTHON")
        .expect("run under scripts/with-s3-test-server");
    let script = format!(
        "import boto3\nc = boto3.client('s3', endpoint_url='{endpoint}', region_name='us-east-1', aws_access_key_id='test', aws_secret_access_key='test')\nfor i in range({n}):\n    for op in ('put_object', 'get_object'):\n        print(c.generate_presigned_url(op, Params={{'Bucket': '{bucket}', 'Key': f'floor/{{i}}'}}, ExpiresIn=36000))\n"
    );
    let out = Command::new(python).args(["-c", &script]).output().unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let lines: Vec<String> = String::from_utf8(out.stdout)
        .unwrap()
        .lines()
        .map(str::to_owned)
        .collect();
    let puts = lines.iter().step_by(2).cloned().collect();
    let gets = lines.iter().skip(1).step_by(2).cloned().collect();
    (puts, gets)
}

fn measure_floor(
    name: &str,
    files: &[PathBuf],
    put_url: &(dyn Fn(usize) -> String + Sync),
    get_url: &(dyn Fn(usize) -> String + Sync),
    runs: usize,
    work: &Path,
) -> Row {
    let out = work.join("floor-out");
    std::fs::create_dir_all(&out).unwrap();
    let uploads = (0..runs)
        .map(|_| {
            let start = Instant::now();
            curl_all(files, put_url, true, &out);
            start.elapsed()
        })
        .collect();
    let downloads = (0..runs)
        .map(|_| {
            let start = Instant::now();
            curl_all(files, get_url, false, &out);
            start.elapsed()
        })
        .collect();
    let _ = std::fs::remove_dir_all(&out);
    Row {
        name: name.to_owned(),
        upload: median(uploads),
        download: median(downloads),
        server: None,
    }
}

fn main() {
    let args = args();
    let git = Git::default();
    git.lfs_install();
    let work = TempDir::new().unwrap();
    let source = work.path().join("source");
    git.ok(
        work.path(),
        &["init", "-q", "-b", "main", source.to_str().unwrap()],
    );
    git.ok(&source, &["lfs", "track", "*.bin"]);
    let mut rng = Rng::new(7);
    let mut files = Vec::new();
    for i in 0..args.objects {
        let path = source.join(format!("weights-{i:02}.bin"));
        std::fs::write(&path, rng.bytes(OBJECT_SIZE)).unwrap();
        files.push(path);
    }
    git.ok(&source, &["add", "."]);
    git.ok(&source, &["commit", "-q", "-m", "weights"]);
    let total = (OBJECT_SIZE * args.objects) as f64;
    let mut rows = Vec::new();

    let sink_dir = work.path().join("sink");
    std::fs::create_dir_all(&sink_dir).unwrap();
    let sink = start_sink(sink_dir);
    rows.push(measure_floor(
        "floor: curl over loopback",
        &files,
        &|i| format!("{sink}/{i}"),
        &|i| format!("{sink}/{i}"),
        args.runs,
        work.path(),
    ));
    let server = Server::start_on(&Backend::Fs);
    rows.push(measure_server(
        "artifact-git fs",
        &server,
        &git,
        &source,
        args.runs,
        work.path(),
    ));
    drop(server);
    if let Some(backend @ Backend::S3 { endpoint }) =
        args.s3.then(Backend::s3_if_running).flatten().as_ref()
    {
        let bucket = create_bucket(endpoint);
        let (puts, gets) = presigned(endpoint, &bucket, files.len());
        rows.push(measure_floor(
            "floor: curl to S3 (presigned)",
            &files,
            &|i| puts[i].clone(),
            &|i| gets[i].clone(),
            args.runs,
            work.path(),
        ));
        let server = Server::start_on(backend);
        rows.push(measure_server(
            "artifact-git s3 (presigned)",
            &server,
            &git,
            &source,
            args.runs,
            work.path(),
        ));
        drop(server);
        let server = Server::start_on_with(backend, &["--lfs-proxy-above", "1"]);
        rows.push(measure_server(
            "artifact-git s3 (uploads via server)",
            &server,
            &git,
            &source,
            args.runs,
            work.path(),
        ));
    }

    let mib = total / (1 << 20) as f64;
    println!();
    println!("{} objects of {OBJECT_SIZE} bytes ({mib:.0} MiB), {} runs per cell, medians; {PARALLEL} transfers at once", args.objects, args.runs);
    println!();
    println!("| target | upload s | MiB/s | download s | MiB/s | server CPU s/run | server peak RSS MiB |");
    println!("|---|---|---|---|---|---|---|");
    for row in rows {
        let (up, down) = (row.upload.as_secs_f64(), row.download.as_secs_f64());
        let server = row.server.map_or("- | -".to_owned(), |(cpu, rss)| {
            format!("{cpu:.2} | {rss:.0}")
        });
        println!(
            "| {} | {up:.2} | {:.0} | {down:.2} | {:.0} | {server} |",
            row.name,
            mib / up,
            mib / down
        );
    }
}
