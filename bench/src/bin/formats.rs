//! A SHA-256 copy of a real repository against the SHA-1 original, on the same server in the
//! same run: the push of every branch and tag into a new repository, then a clone (twice, the
//! second timed), with the server's CPU seconds. The copy is made with `git fast-export |
//! git fast-import` into a SHA-256 repository (signatures stripped: they sign SHA-1 ids; tags
//! of trees dropped: fast-export carries tags of commits only; submodule entries dropped: a
//! SHA-256 tree cannot name a SHA-1 commit), the SHA-1 copy the same way, and both are
//! repacked alike, so the two differ in their hash alone. The same pushes and clones against
//! `git http-backend` are the reference, and `git index-pack` of each copy's pack the client's
//! floor: every clone of it pays that on the client, whatever the server. git.git from
//! `/work/.mirror` by default, or `--repo DIR`; on the filesystem backend, and on S3 when
//! `ARTIFACT_GIT_TEST_S3_ENDPOINT` names a server.
#![forbid(unsafe_code)]
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::io::{BufRead, BufReader, Read, Write};
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
    let mut import = git
        .command(&bare)
        .args(["fast-import", "--quiet"])
        .stdin(Stdio::piped())
        .spawn()
        .unwrap();
    without_submodules(
        BufReader::new(export.stdout.take().unwrap()),
        import.stdin.take().unwrap(),
    );
    assert!(import.wait().unwrap().success() && export.wait().unwrap().success());
    git.ok(&bare, &["repack", "-a", "-d", "-f", "-q", "--window=10"]);
    bare
}

/// Copies a `git fast-export` stream without its gitlinks (`M 160000 ...` lines), passing
/// every `data <n>` block through byte for byte.
fn without_submodules(mut export: impl BufRead, mut import: impl Write) {
    let mut line = Vec::new();
    loop {
        line.clear();
        if export.read_until(b'\n', &mut line).unwrap() == 0 {
            break;
        }
        if line.starts_with(b"M 160000 ") {
            continue;
        }
        import.write_all(&line).unwrap();
        if let Some(len) = line.strip_prefix(b"data ") {
            let len: u64 = std::str::from_utf8(len).unwrap().trim().parse().unwrap();
            let copied = std::io::copy(&mut (&mut export).take(len), &mut import).unwrap();
            assert_eq!(copied, len, "a data block ended early");
        }
    }
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
fn timed(server: &Server, f: &mut dyn FnMut()) -> Timing {
    let cpu = cpu_seconds(server.pid());
    let started = Instant::now();
    f();
    (
        started.elapsed().as_secs_f64(),
        cpu_seconds(server.pid()) - cpu,
    )
}

/// Seconds of `f` alone (a host whose CPU is not measured).
fn timed_alone(f: &mut dyn FnMut()) -> Timing {
    let started = Instant::now();
    f();
    (started.elapsed().as_secs_f64(), f64::NAN)
}

/// Seconds, and the server's CPU seconds meanwhile (NaN where not measured).
type Timing = (f64, f64);

/// Runs a step and times it.
type Measure<'a> = &'a dyn Fn(&mut dyn FnMut()) -> Timing;

/// One measurement: push and clone.
type Row = (Timing, Timing);

/// Pushes every branch and tag of `bare` to `url` (an empty repository of its format), then
/// clones it twice and times the second clone; the clone must have `bare`'s refs and format.
fn push_and_clone(
    git: &Git,
    bare: &Path,
    format: &str,
    url: &str,
    clones: &Path,
    measure: Measure,
) -> Row {
    let push = measure(&mut || {
        git.ok(bare, &["push", "-q", url, "--all"]);
        git.ok(bare, &["push", "-q", url, "--tags"]);
    });
    let clone = |n: &str| {
        let dir = clones.join(n);
        git.ok(
            clones,
            &["clone", "-q", "--bare", url, dir.to_str().unwrap()],
        );
        dir
    };
    std::fs::create_dir_all(clones).unwrap();
    clone("warm-up");
    let mut cloned = PathBuf::new();
    let clone_time = measure(&mut || cloned = clone("timed"));
    let cloned_format = git.ok(&cloned, &["rev-parse", "--show-object-format"]);
    assert_eq!(cloned_format.trim(), format);
    let refs = ["for-each-ref", "refs/heads", "refs/tags"];
    assert!(
        git.ok(&cloned, &refs) == git.ok(bare, &refs),
        "{}: the clone's refs differ from the pushed ones",
        clones.display()
    );
    (push, clone_time)
}

/// ` (server CPU n s)`, or nothing for a host whose CPU is not measured.
fn cpu(seconds: f64, ratio: bool) -> String {
    match (seconds.is_nan(), ratio) {
        (true, _) => String::new(),
        (false, false) => format!(" (server CPU {seconds:.2} s)"),
        (false, true) => format!(" (CPU {seconds:.2}x)"),
    }
}

/// Prints one host's rows, one a format, and the SHA-256 to SHA-1 ratios.
fn report(label: &str, rows: &[(&str, Row)]) {
    for (format, ((push, push_cpu), (clone, clone_cpu))) in rows {
        println!(
            "{label:<16} {format:<6} push {push:>6.2} s{}  clone {clone:>6.2} s{}",
            cpu(*push_cpu, false),
            cpu(*clone_cpu, false)
        );
    }
    let (
        ((a_push, a_push_cpu), (a_clone, a_clone_cpu)),
        ((b_push, b_push_cpu), (b_clone, b_clone_cpu)),
    ) = (rows[0].1, rows[1].1);
    println!(
        "{label:<16} sha256/sha1: push {:.2}x{}, clone {:.2}x{}",
        b_push / a_push,
        cpu(b_push_cpu / a_push_cpu, true),
        b_clone / a_clone,
        cpu(b_clone_cpu / a_clone_cpu, true)
    );
}

/// Seconds of `git index-pack` of `bare`'s one pack: what every clone of it costs the client
/// whatever the server (the floor).
fn client_floor(git: &Git, bare: &Path, format: &str, work: &Path) -> f64 {
    let pack = std::fs::read_dir(bare.join("objects/pack"))
        .unwrap()
        .filter_map(Result::ok)
        .map(|e| e.path())
        .find(|p| p.extension().is_some_and(|x| x == "pack"))
        .unwrap();
    let idx = work.join(format!("floor-{format}.idx"));
    let format_arg = format!("--object-format={format}");
    let started = Instant::now();
    git.ok(
        work,
        &[
            "index-pack",
            &format_arg,
            "-o",
            idx.to_str().unwrap(),
            pack.to_str().unwrap(),
        ],
    );
    started.elapsed().as_secs_f64()
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
    let work = TempDir::new().unwrap();
    let floors: Vec<f64> = copies
        .iter()
        .map(|(format, bare)| client_floor(&git, bare, format, work.path()))
        .collect();
    println!(
        "client floor (git index-pack of the pack): sha1 {:.2} s, sha256 {:.2} s ({:.2}x)",
        floors[0],
        floors[1],
        floors[1] / floors[0]
    );
    // The reference: the same pushes and clones against `git http-backend`, whose clone of
    // either format costs the client the same hashing as ours.
    let backend = HttpBackend::start(root.path());
    let rows: Vec<(&str, Row)> = copies
        .iter()
        .map(|(format, bare)| {
            let target = root.path().join(format!("pushed-{format}.git"));
            let format_arg = format!("--object-format={format}");
            git.ok(
                root.path(),
                &[
                    "init",
                    "-q",
                    "--bare",
                    &format_arg,
                    target.to_str().unwrap(),
                ],
            );
            let url = format!("{}/pushed-{format}.git", backend.url);
            let clones = work.path().join(format!("http-backend-{format}"));
            let row = push_and_clone(&git, bare, format, &url, &clones, &timed_alone);
            (*format, row)
        })
        .collect();
    report("git http-backend", &rows);

    let mut backends = vec![("filesystem", Backend::Fs)];
    if let Some(s3) = Backend::s3_if_running() {
        backends.push(("S3", s3));
    }
    for (label, store) in backends {
        let server = Server::start_on(&store);
        let measure = |f: &mut dyn FnMut()| timed(&server, f);
        let rows: Vec<(&str, Row)> = copies
            .iter()
            .map(|(format, bare)| {
                let name = format!("bench/{format}");
                server.cli(&["init", &name, "--object-format", format]);
                let clones = work.path().join(format!("{label}-{format}"));
                let url = server.repo_url(&name);
                (
                    *format,
                    push_and_clone(&git, bare, format, &url, &clones, &measure),
                )
            })
            .collect();
        report(label, &rows);
    }
}
