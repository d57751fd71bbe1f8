//! Memory benchmark: a push of a large pack (random, incompressible files), a second push of
//! deltas against it, a clone, and maintenance of the repository; artifact-git on the
//! filesystem and on S3 against `git http-backend` (with `git repack -ad` as its maintenance)
//! on local disk. Prints seconds and peak resident memory (mapped pages included) per step,
//! and the ratios. Run with `bench/memory [--gib N]` (default 1).
#![forbid(unsafe_code)]
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::path::Path;
use std::time::Instant;

use artifact_git_e2e::*;

const USAGE: &str = "usage: bench/memory [--gib N]";
const FILE_BYTES: usize = 8 << 20;

/// Seconds and peak RSS (MiB) of one step.
#[derive(Clone, Copy, Default)]
struct Step {
    seconds: f64,
    peak_mib: f64,
}

struct Row {
    name: String,
    push: Step,
    deltas: Step,
    clone: Step,
    maintenance: Step,
}

fn reset_peak_rss(pid: u32) {
    let _ = std::fs::write(format!("/proc/{pid}/clear_refs"), "5");
}

/// Where the pushes go and how each step's memory is read.
enum Host {
    Ours(Server),
    HttpBackend(HttpBackend, std::path::PathBuf),
}

impl Host {
    fn url(&self) -> String {
        match self {
            Host::Ours(s) => s.repo_url("bench/mem"),
            Host::HttpBackend(h, _) => format!("{}/mem.git", h.url),
        }
    }

    /// Run `f` and measure it: the server's peak RSS during it (ours), or the peak of the CGI
    /// processes it ran (git's, `index-pack` and `pack-objects` included).
    fn step(&self, f: impl FnOnce()) -> Step {
        if let Host::Ours(s) = self {
            reset_peak_rss(s.pid());
        }
        if let Host::HttpBackend(h, _) = self {
            h.take_usage();
        }
        let t = Instant::now();
        f();
        let seconds = t.elapsed().as_secs_f64();
        let peak_mib = match self {
            Host::Ours(s) => peak_rss_kib(s.pid()) as f64 / 1024.0,
            Host::HttpBackend(h, _) => h.take_usage().1,
        };
        Step { seconds, peak_mib }
    }

    fn maintain(&self) -> Step {
        let t = Instant::now();
        let kib = match self {
            Host::Ours(s) => peak_rss_of_run(s.cli_command(&[
                "maintain",
                "bench/mem",
                "--delete-replaced-after",
                "0s",
            ])),
            Host::HttpBackend(_, bare) => {
                let mut cmd = std::process::Command::new("git");
                cmd.args(["repack", "-adq"]).current_dir(bare);
                peak_rss_of_run(cmd)
            }
        };
        Step {
            seconds: t.elapsed().as_secs_f64(),
            peak_mib: kib as f64 / 1024.0,
        }
    }
}

fn run(name: &str, host: &Host, git: &Git, work: &Path, bytes: usize) -> Row {
    eprintln!("{name}...");
    let source = work.join(format!("source-{name}"));
    git.ok(
        work,
        &["init", "-q", "-b", "main", source.to_str().unwrap()],
    );
    write_random_files(&source, bytes, FILE_BYTES, 7);
    git.ok(&source, &["add", "."]);
    git.ok(&source, &["commit", "-q", "-m", "data"]);
    let url = host.url();
    let push = host.step(|| {
        git.ok(
            &source,
            &["-c", "core.bigFileThreshold=1m", "push", "-q", &url, "main"],
        );
    });
    edit_random_files(&source, 5, 8);
    git.ok(&source, &["commit", "-q", "-am", "edits"]);
    let deltas = host.step(|| {
        git.ok(&source, &["push", "-q", &url, "main"]);
    });
    let clone_dir = work.join(format!("clone-{name}"));
    let clone = host.step(|| {
        git.ok(work, &["clone", "-q", &url, clone_dir.to_str().unwrap()]);
    });
    assert_eq!(
        git.ok(&clone_dir, &["rev-parse", "HEAD^{tree}"]),
        git.ok(&source, &["rev-parse", "HEAD^{tree}"])
    );
    let maintenance = host.maintain();
    std::fs::remove_dir_all(&clone_dir).unwrap();
    // The maintained repository still serves the same history.
    git.ok(work, &["clone", "-q", &url, clone_dir.to_str().unwrap()]);
    git.ok(&clone_dir, &["fsck", "--strict"]);
    assert_eq!(
        git.ok(&clone_dir, &["rev-parse", "HEAD"]),
        git.ok(&source, &["rev-parse", "HEAD"])
    );
    std::fs::remove_dir_all(&clone_dir).unwrap();
    std::fs::remove_dir_all(&source).unwrap();
    Row {
        name: name.to_owned(),
        push,
        deltas,
        clone,
        maintenance,
    }
}

fn main() {
    let argv: Vec<String> = std::env::args().skip(1).collect();
    let mut gib = 1.0f64;
    let mut i = 0;
    while i < argv.len() {
        match (argv[i].as_str(), argv.get(i + 1)) {
            ("--gib", Some(v)) => gib = v.parse().expect(USAGE),
            _ => panic!("{USAGE}"),
        }
        i += 2;
    }
    let bytes = ((gib * (1u64 << 30) as f64) as usize / FILE_BYTES).max(1) * FILE_BYTES;
    let git = Git::default();
    let work = TempDir::new().unwrap();
    let mut rows = Vec::new();

    let hb_root = work.path().join("hb");
    std::fs::create_dir(&hb_root).unwrap();
    let bare = hb_root.join("mem.git");
    git.ok(&hb_root, &["init", "-q", "--bare", "-b", "main", "mem.git"]);
    git.ok(&bare, &["config", "http.receivepack", "true"]);
    let hb = Host::HttpBackend(HttpBackend::start_timed(&hb_root), bare);
    rows.push(run("http-backend", &hb, &git, work.path(), bytes));
    drop(hb);

    let fs = Host::Ours(Server::start_on_with(
        &Backend::Fs,
        &["--maintain-after-packs", "0"],
    ));
    if let Host::Ours(s) = &fs {
        s.init("bench/mem");
    }
    rows.push(run("ours (fs)", &fs, &git, work.path(), bytes));
    drop(fs);
    if let Some(backend) = Backend::s3_if_running() {
        let s3 = Host::Ours(Server::start_on_with(
            &backend,
            &["--maintain-after-packs", "0"],
        ));
        if let Host::Ours(s) = &s3 {
            s.init("bench/mem");
        }
        rows.push(run("ours (S3)", &s3, &git, work.path(), bytes));
    }

    println!(
        "\n{:.2} GiB of incompressible files ({} MiB each); a second push changes every fifth",
        bytes as f64 / (1u64 << 30) as f64,
        FILE_BYTES >> 20
    );
    println!("seconds and peak RSS in MiB (mapped pages included), per step\n");
    println!("| server | push | push of deltas | clone | maintenance |");
    println!("|---|---|---|---|---|");
    let cell = |s: Step| format!("{:.1} s, {:.0} MiB", s.seconds, s.peak_mib);
    for r in &rows {
        println!(
            "| {} | {} | {} | {} | {} |",
            r.name,
            cell(r.push),
            cell(r.deltas),
            cell(r.clone),
            cell(r.maintenance)
        );
    }
    let reference = &rows[0];
    for r in &rows[1..] {
        let ratio = |a: Step, b: Step| (a.seconds / b.seconds, a.peak_mib / b.peak_mib.max(1.0));
        let parts: Vec<String> = [
            ("push", ratio(r.push, reference.push)),
            ("deltas", ratio(r.deltas, reference.deltas)),
            ("clone", ratio(r.clone, reference.clone)),
            ("maintenance", ratio(r.maintenance, reference.maintenance)),
        ]
        .iter()
        .map(|(what, (t, m))| format!("{what} {t:.2}x time, {m:.2}x memory"))
        .collect();
        println!("{} / http-backend: {}", r.name, parts.join("; "));
    }
}
