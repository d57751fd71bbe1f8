//! Benchmarks of artifact-git against C git's `git http-backend` (under lighttpd, on local
//! disk, repository repacked with bitmaps), on the same machine, in the same run: medians,
//! ratios (ours / http-backend), server CPU time and peak RSS per scenario, and the client's
//! floor (`git index-pack` of the same pack). Run with `bench/run`.
#![forbid(unsafe_code)]
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::path::PathBuf;
use std::process::Stdio;
use std::time::{Duration, Instant};

use artifact_git_e2e::*;

mod repos;
use repos::RepoKind;

const USAGE: &str =
    "usage: bench/run [--repo small|medium|large|registry] [--commits N] [--runs N] [--no-s3] [--only NAME[,NAME...]]";

struct Args {
    repo: RepoKind,
    runs: usize,
    s3: bool,
    /// Build the repository in this directory, print its size, and stop.
    build_only: Option<PathBuf>,
    /// Measure only the scenarios whose name contains this (or one of these, comma-separated).
    only: Option<String>,
}

fn args() -> Args {
    let mut a = Args {
        repo: RepoKind::Synthetic(12_500),
        runs: 5,
        s3: true,
        build_only: None,
        only: None,
    };
    let argv: Vec<String> = std::env::args().skip(1).collect();
    let mut i = 0;
    while i < argv.len() {
        let value = argv.get(i + 1).and_then(|v| v.parse().ok());
        match (argv[i].as_str(), value) {
            ("--commits", Some(v)) => a.repo = RepoKind::Synthetic(v),
            ("--runs", Some(v)) => a.runs = v,
            ("--repo", _) => {
                a.repo = argv
                    .get(i + 1)
                    .and_then(|r| RepoKind::parse(r))
                    .unwrap_or_else(|| panic!("{USAGE}"));
            }
            ("--no-s3", _) => {
                a.s3 = false;
                i += 1;
                continue;
            }
            ("--only", _) => {
                a.only = Some(argv.get(i + 1).unwrap_or_else(|| panic!("{USAGE}")).clone());
            }
            ("--build-only", _) => {
                a.build_only = Some(argv.get(i + 1).unwrap_or_else(|| panic!("{USAGE}")).into());
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

fn time(f: impl FnOnce()) -> Duration {
    let start = Instant::now();
    f();
    start.elapsed()
}

/// `utime + stime` of a process and of its reaped children, in seconds.
fn cpu_seconds(pid: u32) -> f64 {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    let after = stat.rsplit_once(')').map(|(_, r)| r).unwrap_or_default();
    let fields: Vec<f64> = after
        .split_whitespace()
        .map(|f| f.parse().unwrap_or(0.0))
        .collect();
    // Fields 14-17 of stat (utime, stime, cutime, cstime) are 11..=14 after the name.
    let ticks: f64 = fields.get(11..15).map_or(0.0, |f| f.iter().sum());
    ticks / 100.0
}

fn reset_peak_rss(pid: u32) {
    let _ = std::fs::write(format!("/proc/{pid}/clear_refs"), "5");
}

fn peak_rss_mib(pid: u32) -> f64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<f64>().ok())
        .map_or(0.0, |k| k / 1024.0)
}

/// One server under test.
enum Target {
    HttpBackend(HttpBackend),
    Ours(Server),
}

impl Target {
    fn name(&self, s3: bool) -> &'static str {
        match (self, s3) {
            (Target::HttpBackend(_), _) => "http-backend",
            (Target::Ours(_), false) => "artifact-git fs",
            (Target::Ours(_), true) => "artifact-git s3",
        }
    }

    fn url(&self, repo: &str) -> String {
        match self {
            Target::HttpBackend(h) => format!("{}/{}.git", h.url, repo.replace('/', "-")),
            Target::Ours(s) => s.repo_url(repo),
        }
    }

    fn start_usage(&self) -> Usage {
        match self {
            Target::HttpBackend(h) => {
                h.take_usage();
                Usage {
                    cpu: 0.0,
                    anon: None,
                }
            }
            Target::Ours(s) => {
                reset_peak_rss(s.pid());
                Usage {
                    cpu: cpu_seconds(s.pid()),
                    anon: Some(AnonSampler::start(s.pid())),
                }
            }
        }
    }

    /// CPU seconds, peak RSS and (ours only) peak anonymous RSS, in MiB, since `start`.
    fn end_usage(&self, start: Usage) -> (f64, f64, Option<f64>) {
        let anon = start.anon.map(AnonSampler::stop);
        match self {
            Target::HttpBackend(h) => {
                let (cpu, rss) = h.take_usage();
                (cpu, rss, None)
            }
            Target::Ours(s) => (
                cpu_seconds(s.pid()) - start.cpu,
                peak_rss_mib(s.pid()),
                anon,
            ),
        }
    }
}

struct Usage {
    cpu: f64,
    anon: Option<AnonSampler>,
}

/// Samples a process's anonymous resident memory (heap, buffers: what it really holds, as
/// opposed to mapped pack file pages the kernel can drop) every 10 ms and keeps the peak.
struct AnonSampler {
    stop: std::sync::Arc<std::sync::atomic::AtomicBool>,
    thread: std::thread::JoinHandle<f64>,
}

impl AnonSampler {
    fn start(pid: u32) -> AnonSampler {
        let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
        let flag = stop.clone();
        let thread = std::thread::spawn(move || {
            let mut peak: f64 = 0.0;
            loop {
                let status =
                    std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
                let anon = status
                    .lines()
                    .find_map(|l| l.strip_prefix("RssAnon:"))
                    .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<f64>().ok())
                    .map_or(0.0, |k| k / 1024.0);
                peak = peak.max(anon);
                if flag.load(std::sync::atomic::Ordering::Relaxed) {
                    return peak;
                }
                std::thread::sleep(Duration::from_millis(10));
            }
        });
        AnonSampler { stop, thread }
    }

    fn stop(self) -> f64 {
        self.stop.store(true, std::sync::atomic::Ordering::Relaxed);
        self.thread.join().unwrap_or(0.0)
    }
}

struct Row {
    scenario: String,
    cells: Vec<Cell>,
}

/// One scenario on one target.
struct Cell {
    median: Duration,
    cpu_per_run: f64,
    peak_rss: f64,
    peak_anon: Option<f64>,
}

fn main() {
    let args = args();
    let git = Git::default();
    let work = TempDir::new().unwrap();
    let source = args
        .build_only
        .clone()
        .unwrap_or_else(|| work.path().join("source"));
    std::fs::create_dir(&source).unwrap();
    eprintln!("building the repository ({})...", args.repo.describe());
    let started = Instant::now();
    args.repo.build(&git, &source);
    git.ok(&source, &["branch", "bench-old", "main~50"]);
    // fast-import's deltas are only against the previous version of a path: find real ones.
    git.ok(&source, &["repack", "-adfq", "--window=10", "--depth=50"]);
    let count = git.ok(&source, &["count-objects", "-v"]);
    let stat = |k: &str| {
        count
            .lines()
            .find_map(|l| l.strip_prefix(k))
            .unwrap_or("?")
            .trim()
            .to_owned()
    };
    let in_pack = stat("in-pack:");
    let size_pack = stat("size-pack:");
    eprintln!(
        "{in_pack} objects, {size_pack} KiB packed, built in {:.0} s",
        started.elapsed().as_secs_f64()
    );

    if args.build_only.is_some() {
        return;
    }

    // The client's floor: indexing the full pack, as every clone must.
    let pack = work.path().join("full.pack");
    let out = git
        .command(&source)
        .args(["pack-objects", "--all", "--stdout", "-q"])
        .stdin(Stdio::null())
        .output()
        .unwrap();
    std::fs::write(&pack, &out.stdout).unwrap();
    let floor = median(
        (0..args.runs)
            .map(|i| {
                let dir = work.path().join(format!("floor{i}"));
                git.ok(
                    work.path(),
                    &["init", "-q", "--bare", dir.to_str().unwrap()],
                );
                let t = time(|| {
                    let status = git
                        .command(&dir)
                        .args(["index-pack", "--stdin"])
                        .stdin(std::fs::File::open(&pack).unwrap())
                        .stdout(Stdio::null())
                        .status()
                        .unwrap();
                    assert!(status.success());
                });
                let _ = std::fs::remove_dir_all(&dir);
                t
            })
            .collect(),
    );

    // Targets: http-backend (bitmaps), ours on disk, ours on S3.
    let hb_root = work.path().join("hb");
    std::fs::create_dir(&hb_root).unwrap();
    let hb_repo = hb_root.join("bench-repo.git");
    git.ok(
        work.path(),
        &[
            "clone",
            "-q",
            "--bare",
            source.to_str().unwrap(),
            hb_repo.to_str().unwrap(),
        ],
    );
    git.ok(&hb_repo, &["repack", "-adq", "--write-bitmap-index"]);
    git.ok(&hb_repo, &["config", "http.receivepack", "true"]);
    // Without it upload-pack ignores a filter and sends everything.
    git.ok(&hb_repo, &["config", "uploadpack.allowFilter", "true"]);
    let hb_push = hb_root.join("bench-push.git");
    git.ok(
        work.path(),
        &["init", "-q", "--bare", hb_push.to_str().unwrap()],
    );
    git.ok(&hb_push, &["config", "http.receivepack", "true"]);
    let mut targets: Vec<(Target, bool)> = vec![(
        Target::HttpBackend(HttpBackend::start_timed(&hb_root)),
        false,
    )];
    targets.push((
        Target::Ours(Server::start_on_with(
            &Backend::Fs,
            &["--maintain-after-packs", "0"],
        )),
        false,
    ));
    if args.s3 {
        if let Some(s3) = Backend::s3_if_running() {
            targets.push((
                Target::Ours(Server::start_on_with(&s3, &["--maintain-after-packs", "0"])),
                true,
            ));
        }
    }

    let mut rows: Vec<Row> = Vec::new();
    let add = |rows: &mut Vec<Row>, scenario: &str, t: usize, cell: Cell| {
        if t == 0 {
            rows.push(Row {
                scenario: scenario.to_owned(),
                cells: Vec::new(),
            });
        }
        rows.last_mut().unwrap().cells.push(cell);
    };

    let measured = |name: &str| {
        args.only
            .as_ref()
            .is_none_or(|o| o.split(',').any(|part| name.contains(part)))
    };
    for (t, (target, _)) in targets.iter().enumerate() {
        if !measured("initial push") {
            if let Target::Ours(s) = target {
                s.init("bench/repo");
                git.ok(&source, &["push", "-q", &target.url("bench/repo"), "--all"]);
                git.ok(
                    &source,
                    &["push", "-q", &target.url("bench/repo"), "--tags"],
                );
                s.maintain("bench/repo", &["--delete-replaced-after", "0s"]);
            }
            continue;
        }
        // Initial push of the whole repository.
        let push_url = match target {
            Target::HttpBackend(_) => target.url("bench/push"),
            Target::Ours(s) => {
                s.init("bench/repo");
                s.init("bench/push");
                target.url("bench/push")
            }
        };
        let start = target.start_usage();
        let d = time(|| {
            git.ok(&source, &["push", "-q", &push_url, "--all"]);
        });
        let (cpu, rss, anon) = target.end_usage(start);
        add(
            &mut rows,
            "initial push",
            t,
            Cell {
                median: d,
                cpu_per_run: cpu,
                peak_rss: rss,
                peak_anon: anon,
            },
        );
        if let Target::Ours(s) = target {
            git.ok(&source, &["push", "-q", &target.url("bench/repo"), "--all"]);
            git.ok(
                &source,
                &["push", "-q", &target.url("bench/repo"), "--tags"],
            );
            s.maintain("bench/repo", &["--delete-replaced-after", "0s"]);
        }
    }

    let url_of = |target: &Target| target.url("bench/repo");
    type Run<'a> = Box<dyn Fn(&Target, usize) -> Duration + 'a>;
    type Scenario<'a> = (&'a str, Run<'a>);
    // A bare clone with git options `config` and clone options `options`, into a new
    // directory, timed, then removed.
    let clone = |config: &'static [&'static str], options: &'static [&'static str]| -> Run<'_> {
        let (work, git, url_of) = (&work, &git, &url_of);
        Box::new(move |target, i| {
            let dir = work.path().join(format!("clone-{i}"));
            let url = url_of(target);
            let mut argv: Vec<&str> = config.to_vec();
            argv.extend(["clone", "-q", "--bare"]);
            argv.extend(options);
            argv.extend([url.as_str(), dir.to_str().unwrap()]);
            let d = time(|| {
                git.ok(work.path(), &argv);
            });
            let _ = std::fs::remove_dir_all(&dir);
            d
        })
    };
    let scenarios: Vec<Scenario> = vec![
        ("full clone v2", clone(&["-c", "protocol.version=2"], &[])),
        ("full clone v0", clone(&["-c", "protocol.version=0"], &[])),
        ("clone --depth 1", clone(&[], &["--depth", "1"])),
        (
            "clone --filter=blob:none",
            clone(&[], &["--filter=blob:none"]),
        ),
        (
            "ls-remote",
            Box::new(|target, _| {
                time(|| {
                    git.ok(work.path(), &["ls-remote", &url_of(target)]);
                })
            }),
        ),
        (
            "fetch 50 commits",
            Box::new(|target, i| {
                let dir = work.path().join(format!("inc-{i}"));
                let d = time(|| {
                    git.ok(
                        &dir,
                        &["fetch", "-q", &url_of(target), "main:refs/heads/main"],
                    );
                });
                let _ = std::fs::remove_dir_all(&dir);
                d
            }),
        ),
        (
            "push one commit",
            Box::new(|target, i| {
                let dir = work.path().join(format!("p1-{i}"));
                let url = url_of(target);
                let d = time(|| {
                    git.ok(&dir, &["push", "-q", &url, "HEAD:refs/heads/bench-push"]);
                    // Leave the branch where it was so every run pushes one commit on the same base.
                    git.ok(&dir, &["push", "-q", &url, ":refs/heads/bench-push"]);
                });
                let _ = std::fs::remove_dir_all(&dir);
                d
            }),
        ),
        (
            "8 concurrent clones",
            Box::new(|target, i| {
                time(|| {
                    let children: Vec<_> = (0..8)
                        .map(|k| {
                            let dir = work.path().join(format!("cc-{i}-{k}"));
                            // The warm-up of every target uses the same run number.
                            let _ = std::fs::remove_dir_all(&dir);
                            git.command(work.path())
                                .args([
                                    "clone",
                                    "-q",
                                    "--bare",
                                    &url_of(target),
                                    dir.to_str().unwrap(),
                                ])
                                .spawn()
                                .unwrap()
                        })
                        .collect();
                    for mut c in children {
                        assert!(c.wait().unwrap().success());
                    }
                })
            }),
        ),
    ];
    // Per-run preparation that must not count as the scenario's time or server CPU.
    let prepare = |name: &str, target: &Target, i: usize| match name {
        "fetch 50 commits" => {
            let dir = work.path().join(format!("inc-{i}"));
            git.ok(
                work.path(),
                &[
                    "clone",
                    "-q",
                    "--bare",
                    "--single-branch",
                    "--branch",
                    "bench-old",
                    &url_of(target),
                    dir.to_str().unwrap(),
                ],
            );
        }
        "push one commit" => {
            let dir = work.path().join(format!("p1-{i}"));
            git.ok(
                work.path(),
                &[
                    "clone",
                    "-q",
                    "--single-branch",
                    "--depth",
                    "5",
                    &url_of(target),
                    dir.to_str().unwrap(),
                ],
            );
            commit_file(
                &git,
                &dir,
                "bench.txt",
                &format!("{i} {:?}\n", Instant::now()),
                "bench",
            );
        }
        _ => {}
    };
    for (name, run) in scenarios.iter().filter(|(name, _)| measured(name)) {
        // Preparation (the clones a fetch or a push starts from) goes through the long-lived
        // servers; the scenario itself runs against a fresh process on the same storage, so
        // its CPU and memory are the scenario's alone (http-backend starts a process per
        // request). Run `i` of target `t` works in its own directories (`key`).
        let key = |t: usize, i: usize| t * 1_000_000 + i;
        let mut fresh = Vec::new();
        for (t, (target, _)) in targets.iter().enumerate() {
            for i in 0..args.runs {
                prepare(name, target, key(t, i));
            }
            fresh.push(match target {
                Target::Ours(s) => Some(Target::Ours(
                    s.replica_with(&["--maintain-after-packs", "0"]),
                )),
                Target::HttpBackend(_) => None,
            });
        }
        let measured_target = |t: usize| fresh[t].as_ref().unwrap_or(&targets[t].0);
        for (t, (target, _)) in targets.iter().enumerate() {
            // Warm-up (and, on S3, the pack cache).
            prepare(name, target, usize::MAX);
            run(measured_target(t), usize::MAX);
        }
        let starts: Vec<Usage> = (0..targets.len())
            .map(|t| measured_target(t).start_usage())
            .collect();
        // The targets take turns, run by run, each run starting with the next one: a slow
        // spell of the machine is shared by all of them instead of landing on one cell.
        let mut times: Vec<Vec<Duration>> = vec![Vec::new(); targets.len()];
        for i in 0..args.runs {
            for k in 0..targets.len() {
                let t = (i + k) % targets.len();
                times[t].push(run(measured_target(t), key(t, i)));
            }
        }
        for (t, (start, times)) in starts.into_iter().zip(times).enumerate() {
            let (cpu, rss, anon) = measured_target(t).end_usage(start);
            add(
                &mut rows,
                name,
                t,
                Cell {
                    median: median(times),
                    cpu_per_run: cpu / args.runs as f64,
                    peak_rss: rss,
                    peak_anon: anon,
                },
            );
        }
        drop(fresh);
        for entry in std::fs::read_dir(work.path()).unwrap().flatten() {
            let n = entry.file_name().to_string_lossy().into_owned();
            if n.starts_with("cc-") {
                let _ = std::fs::remove_dir_all(entry.path());
            }
        }
    }

    let names: Vec<&str> = targets.iter().map(|(t, s3)| t.name(*s3)).collect();
    println!();
    println!(
        "repository: {}, {in_pack} objects, {size_pack} KiB pack; {} runs per cell, medians",
        args.repo.describe(),
        args.runs
    );
    println!(
        "client floor (git index-pack of the full pack): {:.3} s",
        floor.as_secs_f64()
    );
    println!();
    let mut header = format!("| {:<20} |", "scenario");
    for n in &names {
        header.push_str(&format!(" {n} s |"));
    }
    for n in names.iter().skip(1) {
        header.push_str(&format!(
            " ratio {} |",
            n.trim_start_matches("artifact-git ")
        ));
    }
    for n in &names {
        header.push_str(&format!(
            " CPU s/run, peak RSS MiB (anon): {} |",
            n.trim_start_matches("artifact-git ")
        ));
    }
    println!("{header}");
    println!("|{}", "---|".repeat(1 + names.len() * 3 - 1));
    for row in rows {
        let mut line = format!("| {:<20} |", row.scenario);
        for c in &row.cells {
            line.push_str(&format!(" {:.3} |", c.median.as_secs_f64()));
        }
        let base = row.cells[0].median.as_secs_f64();
        for c in row.cells.iter().skip(1) {
            line.push_str(&format!(" {:.2} |", c.median.as_secs_f64() / base));
        }
        for c in &row.cells {
            line.push_str(&format!(" {:.2}, {:.0}", c.cpu_per_run, c.peak_rss));
            if let Some(anon) = c.peak_anon {
                line.push_str(&format!(" ({anon:.0})"));
            }
            line.push_str(" |");
        }
        println!("{line}");
    }
}
