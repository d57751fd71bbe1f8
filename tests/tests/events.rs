//! Push events: webhooks signed both ways with GitHub-shaped payloads, retries, `410 Gone`,
//! slow receivers, crashes and replicas, and the address policy.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::path::Path;
use std::time::{Duration, Instant};

use artifact_git_e2e::*;
use base64::Engine;
use serde_json::{json, Value};

const SECRET: &str = "It's a Secret to Everybody";
use artifact_git_e2e::packs::ZERO;

fn standard_secret() -> String {
    format!(
        "whsec_{}",
        base64::engine::general_purpose::STANDARD.encode(b"0123456789abcdef0123456789abcdef")
    )
}

/// Call an API method with an admin token of `lab`; its result.
fn call(server: &Server, method: &str, params: Value) -> Value {
    server.call("lab", method, params)
}

fn add_hook(server: &Server, repo: &str, url: &str, secret: &str) -> String {
    let result = call(
        server,
        "add_webhook",
        json!({"artifact_id": repo, "url": url, "secret": secret}),
    );
    result["id"].as_str().unwrap().to_owned()
}

fn rev(git: &Git, dir: &Path, what: &str) -> String {
    git.rev(dir, what)
}

/// `git show --name-status` of a commit as (added, removed, modified).
fn name_status(git: &Git, dir: &Path, commit: &str) -> (Vec<String>, Vec<String>, Vec<String>) {
    let out = git.ok(
        dir,
        &["show", "--no-renames", "--name-status", "--format=", commit],
    );
    let (mut a, mut d, mut m) = (vec![], vec![], vec![]);
    for line in out.lines().filter(|l| !l.is_empty()) {
        let (kind, path) = line.split_once('\t').unwrap();
        match kind {
            "A" => a.push(path.to_owned()),
            "D" => d.push(path.to_owned()),
            _ => m.push(path.to_owned()),
        }
    }
    (a, d, m)
}

fn strings(v: &Value) -> Vec<String> {
    let mut out: Vec<String> = v
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s.as_str().unwrap().to_owned())
        .collect();
    out.sort();
    out
}

fn webhooks_report_every_push(backend: &Backend) {
    let f = Fixture::new(backend, &["--webhook-allow-private"], "lab/hooks", 6, 51);
    let (github, standard) = (Receiver::start(), Receiver::start());
    let hook = add_hook(&f.server, "lab/hooks", &github.url, SECRET);
    add_hook(&f.server, "lab/hooks", &standard.url, &standard_secret());
    // A ping on creation.
    assert!(github.wait_for("ping", 1, Duration::from_secs(20)));
    assert!(standard.wait_for("ping", 1, Duration::from_secs(20)));
    assert_eq!(github.of_event("ping")[0].json()["hook_id"], hook.as_str());

    let (git, src) = (&f.git, f.source.as_path());
    git.ok(src, &["checkout", "-q", "main"]);
    // 1. Two commits on main.
    let main_before = rev(git, src, "main");
    std::fs::write(src.join("new.txt"), "new file\n").unwrap();
    git.ok(src, &["add", "new.txt"]);
    git.ok(src, &["commit", "-q", "-m", "add new.txt"]);
    std::fs::write(src.join("new.txt"), "changed\n").unwrap();
    std::fs::create_dir_all(src.join("sub")).unwrap();
    std::fs::write(src.join("sub/deep.txt"), "deep\n").unwrap();
    git.ok(src, &["add", "-A"]);
    git.ok(src, &["commit", "-q", "-m", "change it\n\nwith a body"]);
    let main_after = rev(git, src, "main");
    git.ok(src, &["push", "-q", "origin", "main"]);
    // 2. A new branch with one commit.
    git.ok(src, &["checkout", "-q", "-b", "topic"]);
    commit_file(git, src, "topic.txt", "topic\n", "topic work");
    let feature = rev(git, src, "topic");
    git.ok(src, &["push", "-q", "origin", "topic"]);
    // 3. An annotated tag.
    git.ok(src, &["tag", "-a", "v9", "-m", "release 9"]);
    git.ok(src, &["push", "-q", "origin", "v9"]);
    let tag = rev(git, src, "v9");
    // 4. A force push of main.
    git.ok(src, &["checkout", "-q", "main"]);
    git.ok(src, &["reset", "-q", "--hard", "HEAD~1"]);
    commit_file(git, src, "other.txt", "other\n", "rewritten");
    let forced = rev(git, src, "main");
    git.ok(src, &["push", "-q", "-f", "origin", "main"]);
    // 5. Deleting the branch and the tag.
    git.ok(src, &["push", "-q", "origin", ":topic", ":refs/tags/v9"]);

    for receiver in [&github, &standard] {
        assert!(
            receiver.wait_for("push", 6, Duration::from_secs(30)),
            "{} pushes",
            receiver.of_event("push").len()
        );
    }
    std::thread::sleep(Duration::from_millis(500));
    let pushes = github.of_event("push");
    assert_eq!(pushes.len(), 6, "one delivery per ref update");
    for r in &pushes {
        assert_signed(r, SECRET);
    }
    for r in &standard.of_event("push") {
        assert_signed(r, &standard_secret());
    }
    let p: Vec<Value> = pushes.iter().map(Received::json).collect();
    // 1: the two commits, oldest first, with their paths as git lists them.
    assert_eq!(
        (
            p[0]["ref"].as_str(),
            p[0]["before"].as_str(),
            p[0]["after"].as_str()
        ),
        (
            Some("refs/heads/main"),
            Some(main_before.as_str()),
            Some(main_after.as_str())
        )
    );
    assert_eq!(
        (
            p[0]["created"].as_bool(),
            p[0]["deleted"].as_bool(),
            p[0]["forced"].as_bool()
        ),
        (Some(false), Some(false), Some(false))
    );
    let listed: Vec<&str> = p[0]["commits"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["id"].as_str().unwrap())
        .collect();
    let expected = git.ok(
        src,
        &[
            "rev-list",
            "--reverse",
            &format!("{main_before}..{main_after}"),
        ],
    );
    assert_eq!(listed, expected.lines().collect::<Vec<_>>());
    for c in p[0]["commits"].as_array().unwrap() {
        let (a, d, m) = name_status(git, src, c["id"].as_str().unwrap());
        assert_eq!(
            (
                strings(&c["added"]),
                strings(&c["removed"]),
                strings(&c["modified"])
            ),
            (a, d, m),
            "{c}"
        );
        let message = git.ok(
            src,
            &["log", "-1", "--format=%B", c["id"].as_str().unwrap()],
        );
        assert_eq!(c["message"].as_str().unwrap(), message.trim_end());
        assert_eq!(
            c["author"]["email"].as_str().unwrap(),
            git.ok(
                src,
                &["log", "-1", "--format=%ae", c["id"].as_str().unwrap()]
            )
            .trim()
        );
        assert_eq!(
            c["timestamp"].as_str().unwrap(),
            git.ok(
                src,
                &["log", "-1", "--format=%cI", c["id"].as_str().unwrap()]
            )
            .trim()
        );
    }
    assert_eq!(p[0]["head_commit"]["id"], main_after.as_str());
    assert_eq!(p[0]["repository"]["full_name"], "lab/hooks");
    // 2: a created branch lists only its own commit.
    assert_eq!(
        (
            p[1]["ref"].as_str(),
            p[1]["created"].as_bool(),
            p[1]["before"].as_str()
        ),
        (Some("refs/heads/topic"), Some(true), Some(ZERO.as_str()))
    );
    let ids: Vec<&str> = p[1]["commits"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["id"].as_str().unwrap())
        .collect();
    assert_eq!(ids, [feature.as_str()]);
    // 3: the tag.
    assert_eq!(
        (
            p[2]["ref"].as_str(),
            p[2]["after"].as_str(),
            p[2]["created"].as_bool()
        ),
        (Some("refs/tags/v9"), Some(tag.as_str()), Some(true))
    );
    // 4: forced.
    assert_eq!(
        (
            p[3]["ref"].as_str(),
            p[3]["forced"].as_bool(),
            p[3]["after"].as_str()
        ),
        (Some("refs/heads/main"), Some(true), Some(forced.as_str()))
    );
    // 5: deletions.
    let deleted: Vec<(&str, bool, &str)> = p[4..]
        .iter()
        .map(|x| {
            (
                x["ref"].as_str().unwrap(),
                x["deleted"].as_bool().unwrap(),
                x["after"].as_str().unwrap(),
            )
        })
        .collect();
    assert_eq!(
        deleted,
        [
            ("refs/heads/topic", true, ZERO.as_str()),
            ("refs/tags/v9", true, ZERO.as_str())
        ]
    );

    // The delivery log, and a redelivery with the same id.
    let log = call(
        &f.server,
        "list_deliveries",
        json!({"artifact_id": "lab/hooks", "id": hook}),
    );
    let deliveries = log["deliveries"].as_array().unwrap();
    assert_eq!(deliveries.len(), 7, "{log}");
    assert!(deliveries.iter().all(|d| d["status"] == 200));
    assert!(!log.to_string().contains(SECRET));
    let first_push = deliveries
        .iter()
        .rev()
        .find(|d| d["event"] == "push")
        .unwrap();
    let again = call(
        &f.server,
        "redeliver",
        json!({"artifact_id": "lab/hooks", "id": hook, "delivery_id": first_push["id"]}),
    );
    assert_eq!(again["delivery"]["status"], 200);
    let pushes = github.of_event("push");
    assert_eq!(pushes.len(), 7);
    assert_eq!(
        pushes[6].header("x-github-delivery"),
        pushes[0].header("x-github-delivery")
    );
    assert_eq!(pushes[6].body, pushes[0].body);
    // Secrets never come back.
    let listed = call(
        &f.server,
        "list_webhooks",
        json!({"artifact_id": "lab/hooks"}),
    );
    assert!(
        !listed.to_string().contains(SECRET) && !listed.to_string().contains("whsec_"),
        "{listed}"
    );
    assert_eq!(listed["webhooks"][0]["status"]["pending_events"], 0);
    assert_eq!(
        f.server
            .metric("artifact_git_webhook_deliveries_total{outcome=\"delivered\"}"),
        2 + 12 + 1
    );
}

fn push_one(git: &Git, dir: &Path, branch: &str, n: usize) -> Duration {
    commit_file(
        git,
        dir,
        &format!("{branch}.txt"),
        &format!("{n}\n"),
        &format!("{branch} {n}"),
    );
    let start = Instant::now();
    git.ok(
        dir,
        &["push", "-q", "origin", &format!("HEAD:refs/heads/{branch}")],
    );
    start.elapsed()
}

fn median(mut v: Vec<Duration>) -> Duration {
    v.sort();
    v[v.len() / 2]
}

fn failing_and_slow_receivers(backend: &Backend) {
    let f = Fixture::new(
        backend,
        &[
            "--webhook-allow-private",
            "--events-backoff",
            "300ms",
            "--events-poll",
            "300ms",
            "--webhook-timeout",
            "3s",
        ],
        "lab/flaky",
        4,
        53,
    );
    let (git, src) = (&f.git, f.source.as_path());
    git.ok(src, &["checkout", "-q", "main"]);
    // Push latency with no webhook at all.
    let baseline = median((0..3).map(|n| push_one(git, src, "base", n)).collect());

    // Down for the first two attempts, then up: delivered after retries, same delivery id.
    let flaky = Receiver::start();
    flaky.plan(&[Reply::Status(503), Reply::Status(503), Reply::Status(503)]);
    let hook = add_hook(&f.server, "lab/flaky", &flaky.url, SECRET);
    push_one(git, src, "main", 1);
    assert!(flaky.wait_for("push", 3, Duration::from_secs(30)));
    let attempts = flaky.of_event("push");
    assert!(attempts
        .iter()
        .all(|a| a.header("x-github-delivery") == attempts[0].header("x-github-delivery")));
    // The ping took the first 503: the push itself failed twice, then went through.
    let log = call(
        &f.server,
        "list_deliveries",
        json!({"artifact_id": "lab/flaky", "id": hook}),
    );
    let statuses: Vec<u64> = log["deliveries"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|d| d["event"] == "push")
        .map(|d| d["status"].as_u64().unwrap())
        .collect();
    assert_eq!(statuses, [200, 503, 503], "{log}");
    call(
        &f.server,
        "remove_webhook",
        json!({"artifact_id": "lab/flaky", "id": hook}),
    );

    // 410 Gone turns the hook off.
    let gone = Receiver::start();
    let gone_hook = add_hook(&f.server, "lab/flaky", &gone.url, SECRET);
    assert!(gone.wait_for("ping", 1, Duration::from_secs(20)));
    gone.plan(&[Reply::Status(410)]);
    push_one(git, src, "main", 2);
    assert!(gone.wait_for("push", 1, Duration::from_secs(20)));
    assert!(eventually(Duration::from_secs(10), || {
        let listed = call(
            &f.server,
            "list_webhooks",
            json!({"artifact_id": "lab/flaky"}),
        );
        listed["webhooks"][0]["active"] == false
    }));
    let listed = call(
        &f.server,
        "list_webhooks",
        json!({"artifact_id": "lab/flaky"}),
    );
    assert!(
        listed["webhooks"][0]["disabled_reason"]
            .as_str()
            .unwrap()
            .contains("410"),
        "{listed}"
    );
    push_one(git, src, "main", 3);
    std::thread::sleep(Duration::from_secs(2));
    assert_eq!(
        gone.of_event("push").len(),
        1,
        "a disabled hook gets nothing"
    );
    call(
        &f.server,
        "remove_webhook",
        json!({"artifact_id": "lab/flaky", "id": gone_hook}),
    );

    // A receiver that sleeps 30 s: pushes take as long as without it.
    let slow = Receiver::start();
    slow.plan(&[Reply::After(Duration::from_secs(30), 200); 8]);
    add_hook(&f.server, "lab/flaky", &slow.url, SECRET);
    let with_slow = median((0..3).map(|n| push_one(git, src, "slow", n)).collect());
    eprintln!("push latency: {baseline:?} without webhooks, {with_slow:?} with a receiver that sleeps 30 s");
    assert!(
        with_slow < baseline * 2 + Duration::from_millis(500),
        "{with_slow:?} vs {baseline:?}"
    );
}

#[test]
fn private_targets_are_refused_without_the_flag() {
    let f = Fixture::new(&Backend::Fs, &[], "lab/strict", 3, 55);
    let token = f.server.token("lab", None, "a");
    for url in [
        "http://127.0.0.1:9/hook",
        "http://10.0.0.5/hook",
        "http://[::1]:9/hook",
        "http://169.254.169.254/latest",
    ] {
        let answer = f.server.rpc(
            Some(&token),
            "add_webhook",
            json!({"artifact_id": "lab/strict", "url": url, "secret": "s"}),
        );
        let message = answer["error"]["message"].as_str().unwrap_or_default();
        assert!(
            message.contains("private or internal") && message.contains("--webhook-allow-private"),
            "{url}: {answer}"
        );
    }
    let answer = f.server.rpc(
        Some(&token),
        "add_mirror",
        json!({"artifact_id": "lab/strict", "url": "http://127.0.0.1:9/x/git/y", "password": "p"}),
    );
    assert!(
        answer["error"]["message"]
            .as_str()
            .unwrap_or_default()
            .contains("private or internal"),
        "{answer}"
    );
    // A name that resolves to loopback is refused when delivering.
    let receiver = Receiver::start();
    let port = receiver.url.rsplit(':').next().unwrap();
    let hook = add_hook(
        &f.server,
        "lab/strict",
        &format!("http://localhost:{port}"),
        "s",
    );
    std::thread::sleep(Duration::from_secs(2));
    assert!(receiver.received().is_empty());
    let log = call(
        &f.server,
        "list_deliveries",
        json!({"artifact_id": "lab/strict", "id": hook}),
    );
    assert!(
        log["deliveries"][0]["error"]
            .as_str()
            .unwrap_or_default()
            .contains("private or internal"),
        "{log}"
    );
    // Secrets given as the wrong type are not quoted back.
    let answer = f.server.rpc(
        Some(&token),
        "add_webhook",
        json!({"artifact_id": "lab/strict", "url": "https://example.com/h", "secret": 987654321}),
    );
    assert!(!answer.to_string().contains("987654321"), "{answer}");
    let answer = f.server.rpc(Some(&token), "add_mirror", json!({"artifact_id": "lab/strict", "url": "https://example.com/r", "password": ["hunter2"]}));
    assert!(!answer.to_string().contains("hunter2"), "{answer}");
    // Read or write access is not enough.
    let rw = f.server.token("lab", None, "rw");
    let answer = f.server.rpc(
        Some(&rw),
        "list_webhooks",
        json!({"artifact_id": "lab/strict"}),
    );
    assert!(answer["error"]["code"] == -32003, "{answer}");
}

fn crashes_and_replicas_lose_nothing(backend: &Backend) {
    // Replicas behind one load balancer share the public URL, so their payloads are identical.
    let args = [
        "--webhook-allow-private",
        "--events-lease",
        "2s",
        "--events-poll",
        "300ms",
        "--public-url",
        "https://git.example.test",
    ];
    let mut f = Fixture::new(backend, &args, "lab/replicas", 3, 57);
    let receiver = Receiver::start();
    add_hook(&f.server, "lab/replicas", &receiver.url, SECRET);
    assert!(receiver.wait_for("ping", 1, Duration::from_secs(20)));
    let other = f.server.replica_with(&args);
    // The first delivery hangs; the replica that started it dies (kill -9) meanwhile.
    receiver.plan(&[Reply::After(Duration::from_secs(20), 200)]);
    let (git, src) = (&f.git, f.source.as_path());
    git.ok(src, &["checkout", "-q", "main"]);
    push_one(git, src, "main", 0);
    assert!(receiver.wait_for("push", 1, Duration::from_secs(20)));
    f.server.kill();
    // The other replica takes over once the lease runs out, and delivers it again.
    assert!(receiver.wait_for("push", 2, Duration::from_secs(30)));
    let pushes = receiver.of_event("push");
    assert_eq!(
        pushes[0].header("x-github-delivery"),
        pushes[1].header("x-github-delivery")
    );
    assert_eq!(pushes[0].body, pushes[1].body);

    // 50 pushes through two replicas: every event delivered once.
    let third = other.replica_with(&args);
    let second = f.work.path().join("second");
    git.ok(
        f.work.path(),
        &[
            "clone",
            "-q",
            &other.repo_url("lab/replicas"),
            second.to_str().unwrap(),
        ],
    );
    git.ok(
        src,
        &[
            "remote",
            "set-url",
            "origin",
            &third.repo_url("lab/replicas"),
        ],
    );
    let mut pushed = Vec::new();
    for n in 0..25 {
        push_one(git, src, "one", n);
        pushed.push(("refs/heads/one".to_owned(), rev(git, src, "HEAD")));
        push_one(git, &second, "two", n);
        pushed.push(("refs/heads/two".to_owned(), rev(git, &second, "HEAD")));
    }
    assert!(
        receiver.wait_for("push", 52, Duration::from_secs(60)),
        "{}",
        receiver.of_event("push").len()
    );
    std::thread::sleep(Duration::from_secs(2));
    let pushes = receiver.of_event("push");
    let mut got: Vec<(String, String)> = pushes[2..]
        .iter()
        .map(|r| {
            let p = r.json();
            (
                p["ref"].as_str().unwrap().to_owned(),
                p["after"].as_str().unwrap().to_owned(),
            )
        })
        .collect();
    eprintln!(
        "{} deliveries for 50 pushes through two replicas",
        got.len()
    );
    assert_eq!(got.len(), 50, "no event twice in the normal case");
    let mut ids: Vec<&str> = pushes[2..]
        .iter()
        .map(|r| r.header("x-github-delivery"))
        .collect();
    ids.sort();
    ids.dedup();
    assert_eq!(ids.len(), 50);
    got.sort();
    pushed.sort();
    assert_eq!(got, pushed);
    // In order per branch, as pushed.
    let ones: Vec<String> = pushes[2..]
        .iter()
        .map(Received::json)
        .filter(|p| p["ref"] == "refs/heads/one")
        .map(|p| p["after"].as_str().unwrap().to_owned())
        .collect();
    let expected: Vec<String> = git
        .ok(
            src,
            &["rev-list", "--reverse", "--first-parent", "-25", "HEAD"],
        )
        .lines()
        .map(str::to_owned)
        .collect();
    assert_eq!(ones, expected);
}

/// Kill the replica `replica-a` while it delivers a push (the receiver holds the request for
/// 30 s; the lease lasts a minute), start `successor` on the same storage, and require the
/// event delivered again, the same payload, within `within`; how long it took.
fn taken_over_after_a_kill(
    backend: &Backend,
    repo: &str,
    successor: &'static str,
    within: Duration,
) -> Duration {
    let args = |id: &'static str| {
        [
            "--webhook-allow-private",
            "--events-lease",
            "60s",
            "--events-poll",
            "300ms",
            "--replica-id",
            id,
            // Replicas behind one URL make identical payloads.
            "--public-url",
            "https://git.example.test",
        ]
    };
    let mut f = Fixture::new(backend, &args("replica-a"), repo, 3, 58);
    let receiver = Receiver::start();
    add_hook(&f.server, repo, &receiver.url, SECRET);
    assert!(receiver.wait_for("ping", 1, Duration::from_secs(20)));
    receiver.plan(&[Reply::After(Duration::from_secs(30), 200)]);
    let (git, src) = (&f.git, f.source.as_path());
    git.ok(src, &["checkout", "-q", "main"]);
    push_one(git, src, "main", 0);
    assert!(receiver.wait_for("push", 1, Duration::from_secs(20)));
    f.server.kill();
    let killed = std::time::Instant::now();
    let _successor = f.server.replica_with(&args(successor));
    assert!(
        receiver.wait_for("push", 2, within),
        "{successor} did not take the lease over"
    );
    let pushes = receiver.of_event("push");
    assert_eq!(pushes[0].body, pushes[1].body);
    killed.elapsed()
}

/// A replica with a stable name (`--replica-id`) that is killed mid-delivery and restarts
/// takes its lease back at once: the event is delivered again within seconds, not after the
/// lease (a minute here) runs out.
fn a_restarted_replica_takes_its_leases_back(backend: &Backend) {
    let took =
        taken_over_after_a_kill(backend, "lab/restart", "replica-a", Duration::from_secs(15));
    eprintln!("delivered again {} ms after the restart", took.as_millis());
}

/// A live replica takes over the lease of one that stopped (its heartbeat went quiet) within
/// seconds, not when the lease (a minute here) runs out.
fn a_live_replica_takes_over_from_a_dead_one(backend: &Backend) {
    let took = taken_over_after_a_kill(
        backend,
        "lab/takeover",
        "replica-b",
        Duration::from_secs(20),
    );
    eprintln!(
        "delivered again by the other replica {} ms after the kill",
        took.as_millis()
    );
}

backend_tests!(
    webhooks_report_every_push,
    failing_and_slow_receivers,
    crashes_and_replicas_lose_nothing,
    a_restarted_replica_takes_its_leases_back,
    a_live_replica_takes_over_from_a_dead_one
);
