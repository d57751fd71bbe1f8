//! Whole servers over a misbehaving bucket: three instances in this process share one
//! in-memory bucket, each through its own faulty link (errors before and after a call takes
//! effect, `PreconditionFailed` for a conditional write that landed, latency, listings that
//! miss recent keys). Pushers drive the real `git` against random instances, each on its own
//! branch and, every third step, on a shared `main` (fetch, merge, push); maintenance repacks
//! through one of the faulty links meanwhile, deleting replaced packs quickly.
//!
//! Checked after every push, through a healthy link: a push git reports done is stored; one
//! reported failed is not (unless the server said its outcome is unknown). At the end, with
//! every link healed and a fresh instance: each branch holds its last acknowledged push (or a
//! later one of unknown outcome), every acknowledged push to `main` is in its history, the
//! refs a fresh instance advertises are the stored ones, and a mirror clone from it passes
//! `git fsck --strict` (no ref names a missing object).
//!
//! A webhook is added through one of the instances partway through (which turns event
//! records on for the repository while pushes race with it), to a receiver that sometimes
//! answers 503: every acknowledged push that started after it was added must reach the
//! receiver, through stale listings of the event log, retries and the instances' restart.
//!
//! Odd seeds simulate a SHA-1 repository, even ones a SHA-256 repository (its pushers' git
//! repositories too).
//!
//! `ARTIFACT_GIT_SIM_SEEDS` (default 2) runs that many seeds from `ARTIFACT_GIT_SIM_SEED`
//! (default 1). A failure names its seed; the faults each link injects and the instances the
//! pushers pick follow from it, the interleaving of concurrent pushers does not, so a failing
//! seed may take a few runs to fail again.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use artifact_git::app::App;
use artifact_git::cli::{Cli, Command as CliCommand};
use artifact_git::repo::Repo;
use artifact_git::storage::{RepoId, Storage};
use artifact_git_e2e::receiver::{Receiver, Reply};
use clap::Parser;
use objectstore::bucket::{Bucket, Faults, FaultyBucket, MemoryBucket};
use tokio_util::sync::CancellationToken;

const INSTANCES: usize = 3;
const PUSHERS: usize = 3;
const STEPS: usize = 15;
const SECRET: &str = "simulation-secret-0123456789";

fn faults() -> Faults {
    Faults {
        fail_before: 0.02,
        fail_after: 0.02,
        after_as_precondition: 0.5,
        max_latency: Duration::from_millis(3),
        stale_list: 0.3,
        stale_for: Duration::from_millis(300),
    }
}

/// A small seedable generator for the pushers' choices (splitmix64).
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }
    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }
}

/// One server instance: its app over `bucket`, serving on a loopback port.
struct Instance {
    url: String,
    app: Arc<App>,
}

fn app_over(bucket: Arc<dyn Bucket>, dir: &Path) -> (Arc<App>, tokio::net::TcpListener) {
    let cli = Cli::try_parse_from([
        "artifact-git",
        "serve",
        "--storage",
        dir.to_str().unwrap(),
        "--jwt-secret",
        SECRET,
        "--maintain-after-packs",
        "0",
        "--events-poll",
        "300ms",
        "--events-lease",
        "2s",
        "--events-backoff",
        "100ms",
        "--events-backoff-max",
        "500ms",
        "--webhook-allow-private",
    ])
    .unwrap();
    let CliCommand::Serve(args) = cli.command else {
        unreachable!()
    };
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    listener.set_nonblocking(true).unwrap();
    let local = listener.local_addr().unwrap();
    let built =
        artifact_git::cli::build(&args, Storage::new(bucket, String::new()), local, false).unwrap();
    (
        built.app,
        tokio::net::TcpListener::from_std(listener).unwrap(),
    )
}

fn start(
    runtime: &tokio::runtime::Runtime,
    bucket: Arc<dyn Bucket>,
    dir: &Path,
    stop: &CancellationToken,
) -> Instance {
    let _guard = runtime.enter();
    let (app, listener) = app_over(bucket, dir);
    let url = format!("http://{}", listener.local_addr().unwrap());
    let stop = stop.clone();
    runtime.spawn(artifact_git::serve::serve(
        app.clone(),
        listener,
        None,
        async move { stop.cancelled().await },
    ));
    Instance { url, app }
}

struct Git {
    home: PathBuf,
    header: String,
    /// The object format of the repositories it creates.
    format: gix_hash::Kind,
}

impl Git {
    fn run(&self, dir: &Path, args: &[&str]) -> std::process::Output {
        Command::new("git")
            .current_dir(dir)
            .env("HOME", &self.home)
            .env("GIT_CONFIG_NOSYSTEM", "1")
            .env("GIT_TERMINAL_PROMPT", "0")
            .env("GIT_DEFAULT_HASH", self.format.to_string())
            .args([
                "-c",
                &self.header,
                "-c",
                "user.name=Sim",
                "-c",
                "user.email=sim@x",
            ])
            .args(args)
            .output()
            .unwrap()
    }
    fn ok(&self, dir: &Path, args: &[&str]) -> String {
        let out = self.run(dir, args);
        assert!(
            out.status.success(),
            "git {args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).trim().to_owned()
    }
}

/// How git reported a push.
#[derive(Debug, Clone, PartialEq)]
enum Outcome {
    Done,
    Unknown,
    Failed(String),
}

fn push(git: &Git, dir: &Path, url: &str, refspec: &str) -> Outcome {
    let out = git.run(dir, &["push", "--porcelain", url, refspec]);
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    if out.status.success() {
        Outcome::Done
    } else if text.contains("outcome is unknown") {
        Outcome::Unknown
    } else {
        Outcome::Failed(text)
    }
}

/// The value of `branch` as stored, read through a healthy link.
async fn stored(healthy: &Storage, branch: &str) -> Option<String> {
    let repo = Repo::new(healthy, repo_id());
    let snapshot = repo.refs.snapshot().await.unwrap();
    snapshot.get(branch).map(|id| id.to_string())
}

/// One in-memory bucket holding the repository `sim/data` of `format`, and a healthy view
/// of it.
fn shared_repository(
    runtime: &tokio::runtime::Runtime,
    format: gix_hash::Kind,
) -> (Arc<dyn Bucket>, Storage) {
    let shared: Arc<dyn Bucket> = Arc::new(MemoryBucket::new());
    let healthy = Storage::new(shared.clone(), String::new());
    runtime
        .block_on(Repo::new(&healthy, repo_id()).refs.init("main", format))
        .unwrap();
    (shared, healthy)
}

fn repo_id() -> RepoId {
    "sim/data".parse().unwrap()
}

#[derive(Default, Debug)]
struct Record {
    /// Per branch, the commits of its pushes in order, with their outcome.
    pushes: Vec<(String, String, Outcome)>,
    /// The (branch, commit) of acknowledged pushes that started after the webhook was added.
    watched: Vec<(String, String)>,
}

/// What every pusher shares.
struct World<'a> {
    seed: u64,
    urls: &'a [String],
    git: &'a Git,
    work: &'a Path,
    runtime: &'a tokio::runtime::Handle,
    healthy: &'a Storage,
    record: &'a Mutex<Record>,
    /// Set once the webhook is added.
    hooked: &'a AtomicBool,
}

fn pusher(k: usize, world: &World<'_>) {
    let World {
        seed,
        urls,
        git,
        work,
        runtime,
        healthy,
        record,
        hooked,
    } = *world;
    let mut rng = Rng(seed * 1000 + k as u64);
    let dir = work.join(format!("pusher-{k}"));
    git.ok(work, &["init", "-q", "-b", "main", dir.to_str().unwrap()]);
    let own = format!("refs/heads/w{k}");
    for step in 0..STEPS {
        let url = &urls[rng.below(urls.len())];
        let on_main = step % 3 == 2;
        if on_main {
            // Take main as it is (if it can be read now) and build on it.
            let fetched = git.run(&dir, &["fetch", "-q", url, "main"]);
            if fetched.status.success() {
                git.ok(
                    &dir,
                    &[
                        "merge",
                        "-q",
                        "--no-edit",
                        "--allow-unrelated-histories",
                        "FETCH_HEAD",
                    ],
                );
            }
        }
        std::fs::write(
            dir.join(format!("f{k}.txt")),
            format!("pusher {k} step {step}\n"),
        )
        .unwrap();
        std::fs::write(
            dir.join(format!("blob-{k}-{step}.bin")),
            vec![(step * 7 + k) as u8; 3000 + step * 100],
        )
        .unwrap();
        git.ok(&dir, &["add", "-A"]);
        git.ok(
            &dir,
            &["commit", "-q", "-m", &format!("pusher {k} step {step}")],
        );
        let sha = git.ok(&dir, &["rev-parse", "HEAD"]);
        let branch = if on_main {
            "refs/heads/main".to_owned()
        } else {
            own.clone()
        };
        let after_hook = hooked.load(Ordering::SeqCst);
        let outcome = push(git, &dir, url, &format!("HEAD:{branch}"));
        let now = runtime.block_on(stored(healthy, &branch));
        match &outcome {
            Outcome::Done => assert_eq!(
                now.as_deref(),
                Some(sha.as_str()),
                "seed {seed}: pusher {k} step {step}: a push reported done is not stored"
            ),
            Outcome::Failed(why) => assert_ne!(
                now.as_deref(),
                Some(sha.as_str()),
                "seed {seed}: pusher {k} step {step}: a push reported failed landed: {why}"
            ),
            Outcome::Unknown => {}
        }
        if std::env::var_os("ARTIFACT_GIT_SIM_VERBOSE").is_some() {
            if let Outcome::Failed(why) = &outcome {
                let line = why
                    .lines()
                    .find(|l| l.contains("error") || l.contains("!"))
                    .unwrap_or("");
                eprintln!("push failed: {line}");
            }
        }
        let mut record = record.lock().unwrap();
        if after_hook && outcome == Outcome::Done {
            record.watched.push((branch.clone(), sha.clone()));
        }
        record.pushes.push((branch, sha, outcome));
    }
}

/// Once a few pushes are in, add a webhook to `receiver` through a random instance (retried
/// until the server answers; a retry after a lost answer may add a second hook, which only
/// doubles deliveries).
fn add_webhook_midway(world: &World<'_>, token: &str, receiver: &str) {
    let mut rng = Rng(world.seed * 7 + 3);
    let after = 2 + rng.below(6);
    while world.record.lock().unwrap().pushes.len() < after {
        std::thread::sleep(Duration::from_millis(20));
    }
    let body = serde_json::json!({
        "jsonrpc": "2.0", "id": 1, "method": "add_webhook",
        "params": {"artifact_id": "sim/data", "url": receiver, "secret": "sim-hook-secret"},
    })
    .to_string();
    for _ in 0..100 {
        let base = world.urls[rng.below(world.urls.len())]
            .trim_end_matches("/sim/git/data")
            .to_owned();
        let out = Command::new("curl")
            .args(["-s", "-X", "POST", "-H", "content-type: application/json"])
            .args(["-H", &format!("Authorization: Bearer {token}")])
            .args(["--data-binary", &body, &format!("{base}/rpc")])
            .output()
            .unwrap();
        let answer: serde_json::Value =
            serde_json::from_slice(&out.stdout).unwrap_or(serde_json::Value::Null);
        if answer["result"]["id"].is_string() {
            world.hooked.store(true, Ordering::SeqCst);
            return;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    panic!("seed {}: add_webhook never succeeded", world.seed);
}

/// Whether the receiver got a push event moving `branch` to `sha`.
fn delivered(receiver: &Receiver, branch: &str, sha: &str) -> bool {
    receiver.of_event("push").iter().any(|r| {
        let body = r.json();
        body["ref"] == branch && body["after"] == sha
    })
}

async fn maintain_loop(
    instance_app: Arc<App>,
    stop: CancellationToken,
    runs: Arc<Mutex<(u32, u32)>>,
) {
    let repo = Repo::new(&instance_app.storage, repo_id());
    let workspace = objectstore::odb::maintain::Workspace {
        staging: instance_app.config.staging.join("maintenance"),
        budget: instance_app.budget.clone(),
    };
    let options = objectstore::odb::maintain::Options {
        prune_after: Duration::from_secs(3600),
        delete_after: Duration::from_millis(300),
    };
    while !stop.is_cancelled() {
        tokio::time::sleep(Duration::from_millis(400)).await;
        let kind = artifact_git::maintenance::Kind::Full;
        let result =
            artifact_git::maintenance::run(&repo, &instance_app.cache, &workspace, options, kind)
                .await;
        let mut r = runs.lock().unwrap();
        match result {
            Ok(_) => r.0 += 1,
            Err(e) => {
                if std::env::var_os("ARTIFACT_GIT_SIM_VERBOSE").is_some() {
                    eprintln!("maintenance failed: {e}");
                }
                r.1 += 1
            }
        }
    }
}

fn is_ancestor(git: &Git, dir: &Path, ancestor: &str, of: &str) -> bool {
    git.run(dir, &["merge-base", "--is-ancestor", ancestor, of])
        .status
        .success()
}

/// Each branch as stored against the pushes made to it: every acknowledged push is in its
/// history, and a branch one pusher moves holds its last acknowledged push (or a later one of
/// unknown outcome).
fn check_branches(seed: u64, git: &Git, mirror: &Path, snapshot: &refs::Snapshot, record: &Record) {
    let mut branches: Vec<&String> = record.pushes.iter().map(|(b, _, _)| b).collect();
    branches.sort();
    branches.dedup();
    for branch in branches {
        let pushes: Vec<&(String, String, Outcome)> = record
            .pushes
            .iter()
            .filter(|(b, _, _)| b == branch)
            .collect();
        let Some(fin) = snapshot.get(branch).map(|id| id.to_string()) else {
            assert!(
                pushes.iter().all(|(_, _, o)| *o != Outcome::Done),
                "seed {seed}: {branch} is gone although a push to it was acknowledged"
            );
            continue;
        };
        for (_, sha, outcome) in &pushes {
            if *outcome == Outcome::Done {
                assert!(
                    is_ancestor(git, mirror, sha, &fin),
                    "seed {seed}: the acknowledged push {sha} is not in the history of {branch}"
                );
            }
        }
        // A branch only one pusher moves holds its last acknowledged push or a later push
        // whose outcome was unknown.
        if branch != "refs/heads/main" {
            let last_done = pushes.iter().rposition(|(_, _, o)| *o == Outcome::Done);
            let allowed: Vec<&str> = pushes
                .iter()
                .enumerate()
                .filter(|(i, (_, _, o))| {
                    Some(*i) == last_done
                        || (*o == Outcome::Unknown && last_done.is_none_or(|d| *i > d))
                })
                .map(|(_, (_, sha, _))| sha.as_str())
                .collect();
            assert!(
                allowed.contains(&fin.as_str()),
                "seed {seed}: {branch} is at {fin}, not at its last acknowledged push: {pushes:?}"
            );
        }
    }
}

/// Some pushes got through, and every acknowledged push made after the webhook was added
/// reached it (the fresh instance's dispatcher, over a healthy link, finishes what the others
/// left).
fn check_outcomes(seed: u64, record: &Record, receiver: &Receiver, maintenance: (u32, u32)) {
    let (maint_ok, maint_failed) = maintenance;
    let done = record
        .pushes
        .iter()
        .filter(|(_, _, o)| *o == Outcome::Done)
        .count();
    let unknown = record
        .pushes
        .iter()
        .filter(|(_, _, o)| *o == Outcome::Unknown)
        .count();
    eprintln!(
        "seed {seed}: {} pushes: {done} done, {unknown} unknown, {} failed; maintenance {maint_ok} ran, {maint_failed} failed",
        record.pushes.len(),
        record.pushes.len() - done - unknown
    );
    assert!(done > 0, "seed {seed}: no push got through");
    // Every acknowledged push after the webhook was added reaches it (the fresh instance's
    // dispatcher, over a healthy link, finishes what the others left).
    let deadline = std::time::Instant::now() + Duration::from_secs(60);
    let missing = loop {
        let missing: Vec<&(String, String)> = record
            .watched
            .iter()
            .filter(|(branch, sha)| !delivered(receiver, branch, sha))
            .collect();
        if missing.is_empty() || std::time::Instant::now() > deadline {
            break missing;
        }
        std::thread::sleep(Duration::from_millis(200));
    };
    assert!(
        missing.is_empty(),
        "seed {seed}: acknowledged pushes never delivered to the webhook: {missing:?} (of {})",
        record.watched.len()
    );
    eprintln!(
        "seed {seed}: {} pushes after the webhook was added, all delivered ({} requests)",
        record.watched.len(),
        receiver.received().len()
    );
}

fn simulate(seed: u64) {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(4)
        .enable_all()
        .build()
        .unwrap();
    let work = tempfile::tempdir().unwrap();
    let format = match seed % 2 {
        0 => gix_hash::Kind::Sha256,
        _ => gix_hash::Kind::Sha1,
    };
    let (shared, healthy) = shared_repository(&runtime, format);
    let stop = CancellationToken::new();
    let links: Vec<Arc<FaultyBucket>> = (0..INSTANCES)
        .map(|i| {
            Arc::new(FaultyBucket::new(
                shared.clone(),
                faults(),
                seed * 100 + i as u64,
            ))
        })
        .collect();
    let instances: Vec<Instance> = links
        .iter()
        .enumerate()
        .map(|(i, link)| {
            let dir = work.path().join(format!("instance-{i}"));
            start(&runtime, link.clone(), &dir, &stop)
        })
        .collect();
    let token = instances[0]
        .app
        .auth
        .mint("ws:sim#a", Duration::from_secs(3600), Some("sim"))
        .unwrap();
    let receiver = Receiver::start();
    let mut rng = Rng(seed * 31 + 7);
    let replies: Vec<Reply> = (0..8)
        .map(|_| Reply::Status(if rng.below(3) == 0 { 503 } else { 200 }))
        .collect();
    receiver.plan(&replies);
    let hooked = AtomicBool::new(false);
    let git = Git {
        home: work.path().join("home"),
        header: format!("http.extraHeader=Authorization: Bearer {token}"),
        format,
    };
    std::fs::create_dir_all(&git.home).unwrap();
    let urls: Vec<String> = instances
        .iter()
        .map(|i| format!("{}/sim/git/data", i.url))
        .collect();
    let maintenance_runs = Arc::new(Mutex::new((0u32, 0u32)));
    let maintenance = runtime.spawn(maintain_loop(
        instances[0].app.clone(),
        stop.clone(),
        maintenance_runs.clone(),
    ));
    let record = Mutex::new(Record::default());
    let handle = runtime.handle().clone();
    let world = World {
        seed,
        urls: &urls,
        git: &git,
        work: work.path(),
        runtime: &handle,
        healthy: &healthy,
        record: &record,
        hooked: &hooked,
    };
    std::thread::scope(|scope| {
        for k in 0..PUSHERS {
            let world = &world;
            scope.spawn(move || pusher(k, world));
        }
        let world = &world;
        let (token, hook_url) = (&token, &receiver.url);
        scope.spawn(move || add_webhook_midway(world, token, hook_url));
    });
    stop.cancel();
    runtime.block_on(maintenance).unwrap();
    for link in &links {
        link.heal();
    }

    // A fresh instance over a healthy link serves what is stored.
    let fresh_stop = CancellationToken::new();
    let fresh = start(
        &runtime,
        shared.clone(),
        &work.path().join("fresh"),
        &fresh_stop,
    );
    let url = format!("{}/sim/git/data", fresh.url);
    let mirror = work.path().join("mirror.git");
    git.ok(
        work.path(),
        &["clone", "-q", "--mirror", &url, mirror.to_str().unwrap()],
    );
    git.ok(&mirror, &["fsck", "--strict", "--no-dangling"]);
    let mirror_format = git.ok(&mirror, &["rev-parse", "--show-object-format"]);
    assert_eq!(mirror_format, format.to_string(), "seed {seed}");
    let snapshot = runtime
        .block_on(Repo::new(&healthy, repo_id()).refs.snapshot())
        .unwrap();
    assert_eq!(snapshot.object_hash, format, "seed {seed}");
    let advertised = git.ok(work.path(), &["ls-remote", &url]);
    for (name, value) in &snapshot.refs {
        assert!(
            advertised.contains(&format!("{}\t{name}", value.target)),
            "seed {seed}: {name} is not advertised as stored:\n{advertised}"
        );
    }
    let record = record.into_inner().unwrap();
    check_branches(seed, &git, &mirror, &snapshot, &record);
    let (maint_ok, maint_failed) = *maintenance_runs.lock().unwrap();
    check_outcomes(seed, &record, &receiver, (maint_ok, maint_failed));
    fresh_stop.cancel();
    stop.cancel();
    runtime.shutdown_timeout(Duration::from_secs(5));
}

#[test]
fn servers_over_faulty_links_keep_every_acknowledged_push() {
    let first: u64 = std::env::var("ARTIFACT_GIT_SIM_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(1);
    let seeds: u64 = std::env::var("ARTIFACT_GIT_SIM_SEEDS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(2);
    for seed in first..first + seeds {
        let result = std::panic::catch_unwind(|| simulate(seed));
        if let Err(e) = result {
            eprintln!(
                "simulation failed at seed {seed}; replay with ARTIFACT_GIT_SIM_SEED={seed} ARTIFACT_GIT_SIM_SEEDS=1 cargo test -p artifact-git --test simulation"
            );
            std::panic::resume_unwind(e);
        }
    }
}

/// A read of a stored pack that fails while a push resolves its thin pack (the base of a
/// delta is in that pack) is the storage's failure: git is told the push could not be stored,
/// not that its pack was bad, and the branch does not move.
#[test]
fn a_storage_failure_during_a_push_is_told_as_one() {
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let work = tempfile::tempdir().unwrap();
    let (shared, healthy) = shared_repository(&runtime, gix_hash::Kind::Sha1);
    let stop = CancellationToken::new();
    let first = start(&runtime, shared.clone(), &work.path().join("first"), &stop);
    let quiet = Faults {
        fail_before: 0.0,
        fail_after: 0.0,
        after_as_precondition: 0.0,
        max_latency: Duration::ZERO,
        stale_list: 0.0,
        stale_for: Duration::ZERO,
    };
    let link = Arc::new(FaultyBucket::new(shared.clone(), quiet, 1));
    // Another replica: its pack cache is empty, so a base is read from the bucket.
    let second = start(&runtime, link.clone(), &work.path().join("second"), &stop);
    let token = first
        .app
        .auth
        .mint("ws:sim#a", Duration::from_secs(3600), Some("sim"))
        .unwrap();
    let git = Git {
        home: work.path().join("home"),
        header: format!("http.extraHeader=Authorization: Bearer {token}"),
        format: gix_hash::Kind::Sha1,
    };
    std::fs::create_dir_all(&git.home).unwrap();
    let dir = work.path().join("clone");
    git.ok(
        work.path(),
        &["init", "-q", "-b", "main", dir.to_str().unwrap()],
    );
    let text: String = (0..4000).map(|i| format!("line {i} of a file\n")).collect();
    std::fs::write(dir.join("data.txt"), &text).unwrap();
    git.ok(&dir, &["add", "-A"]);
    git.ok(&dir, &["commit", "-qm", "first"]);
    let first_url = format!("{}/sim/git/data", first.url);
    assert_eq!(push(&git, &dir, &first_url, "main"), Outcome::Done);
    let before = runtime.block_on(stored(&healthy, "refs/heads/main"));
    // A small edit: git sends the new blob as a delta against the stored one.
    std::fs::write(dir.join("data.txt"), format!("{text}one more line\n")).unwrap();
    git.ok(&dir, &["commit", "-qam", "second"]);
    link.fail_reads_of(".pack");
    let second_url = format!("{}/sim/git/data", second.url);
    let Outcome::Failed(told) = push(&git, &dir, &second_url, "main") else {
        panic!("a push whose base cannot be read went through");
    };
    assert!(told.contains("could not be stored"), "{told}");
    assert!(told.contains("cannot be read"), "{told}");
    assert!(!told.contains("unpacker error"), "{told}");
    assert_eq!(
        runtime.block_on(stored(&healthy, "refs/heads/main")),
        before
    );
    // Healed, the same push lands.
    link.heal();
    assert_eq!(push(&git, &dir, &second_url, "main"), Outcome::Done);
    let head = git.ok(&dir, &["rev-parse", "HEAD"]);
    assert_eq!(
        runtime.block_on(stored(&healthy, "refs/heads/main")),
        Some(head)
    );
    stop.cancel();
}
