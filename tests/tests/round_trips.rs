//! What each operation costs in calls to the bucket (each a round trip to S3), counted by the
//! server at `/metrics`: the refs and settings read on every request are revalidated (a 304
//! with no body when nothing changed), a v2 capability advertisement reads `HEAD` and the
//! refs (it names the object format), `ls-refs` reads no pack list, and a push builds on the pack list it has when that list holds
//! every object the refs name. These bounds keep a change from quietly adding round trips.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::collections::BTreeMap;

use artifact_git_e2e::*;

/// Calls by kind, read from `/metrics` (which must answer).
fn calls(server: &Server) -> BTreeMap<String, u64> {
    server.bucket_calls()
}

/// Calls made by `f`, once the server is quiet again (a push wakes the event dispatcher,
/// whose reads count too).
fn cost(server: &Server, f: impl FnOnce()) -> BTreeMap<String, u64> {
    let before = calls(server);
    f();
    let mut after = calls(server);
    loop {
        std::thread::sleep(std::time::Duration::from_millis(300));
        let now = calls(server);
        if now == after {
            break;
        }
        after = now;
    }
    after
        .into_iter()
        .map(|(k, n)| {
            let d = n - before.get(&k).copied().unwrap_or(0);
            (k, d)
        })
        .filter(|(_, d)| *d > 0)
        .collect()
}

fn total(c: &BTreeMap<String, u64>) -> u64 {
    c.values().sum()
}

fn round_trips(backend: &Backend) {
    // No background polling: what is counted is what the operations cause.
    let server =
        Server::start_on_with(backend, &["--events-poll", "1h", "--webhook-allow-private"]);
    server.init("lab/rt");
    let url = server.repo_url("lab/rt");
    let git = Git::default();
    let work = TempDir::new().unwrap();
    let src = work.path().join("src");
    git.ok(
        work.path(),
        &["init", "-q", "-b", "main", src.to_str().unwrap()],
    );
    std::fs::write(src.join("a.txt"), "one\n").unwrap();
    git.ok(&src, &["add", "-A"]);
    git.ok(&src, &["commit", "-qm", "one"]);
    git.ok(&src, &["push", "-q", &url, "main"]);
    let clone = work.path().join("clone");
    git.ok(work.path(), &["clone", "-q", &url, clone.to_str().unwrap()]);

    // ls-remote (v2). git asks anonymously first (the settings say whether the repository
    // is public: at most one read, none when read a moment ago), then with the token: the
    // advertisement reads HEAD and the refs at most, ls-refs revalidates the refs (and
    // HEAD, when it was last read over a second ago). No pack list, no objects, no
    // settings (the token decides).
    let ls = cost(&server, || {
        git.ok(work.path(), &["ls-remote", &url]);
    });
    eprintln!("ls-remote: {ls:?}");
    assert!(
        total(&ls) <= 4 && !ls.contains_key("list"),
        "ls-remote: {ls:?}"
    );
    assert!(
        ls.get("get_if_changed").copied().unwrap_or(0) >= 1,
        "refs are revalidated: {ls:?}"
    );
    let again = cost(&server, || {
        git.ok(work.path(), &["ls-remote", &url]);
    });
    eprintln!("ls-remote again: {again:?}");
    assert!(total(&again) <= 2, "ls-remote again: {again:?}");

    // A fetch with nothing new: the same reads.
    let noop = cost(&server, || {
        git.ok(&clone, &["fetch", "-q"]);
    });
    eprintln!("no-op fetch: {noop:?}");
    assert!(
        total(&noop) <= 4 && !noop.contains_key("list"),
        "no-op fetch: {noop:?}"
    );

    // Commit a new file and push it: the calls the push made.
    let push_a_commit = |file: &str, text: &str| {
        std::fs::write(src.join(file), text).unwrap();
        git.ok(&src, &["add", "-A"]);
        git.ok(&src, &["commit", "-qm", file]);
        cost(&server, || {
            git.ok(&src, &["push", "-q", &url, "main"]);
        })
    };

    // One commit pushed right after a clone (the pack list is warm): the advertisement and
    // the request read the refs and maybe HEAD (2-4), then the pack with its record, its
    // index (3), the refs (1), and the push policy's conditional read (1, beside the
    // verification, not after it). Nothing watches this repository (no webhook, mirror or
    // version sync), so no event is recorded and the dispatcher has nothing to do: no
    // listing at all.
    let push = push_a_commit("b.txt", "two\n");
    eprintln!("push one commit: {push:?}");
    assert_eq!(push.get("put").copied(), Some(4), "push: {push:?}");
    assert!(total(&push) <= 8, "push: {push:?}");
    assert!(!push.contains_key("list"), "push: {push:?}");
    // The next push builds on that pack: the server kept the files it uploaded, so nothing
    // is downloaded (no `.idx`, no `.pack`), and the same calls at most.
    let next = push_a_commit("b2.txt", "two more\n");
    eprintln!("next push: {next:?}");
    assert!(!next.contains_key("get"), "next push: {next:?}");
    assert_eq!(next.get("put").copied(), Some(4), "next push: {next:?}");
    assert!(total(&next) <= 8, "next push: {next:?}");

    // And the result is what was pushed.
    let remote = git.ok(work.path(), &["ls-remote", &url, "refs/heads/main"]);
    let local = git.ok(&src, &["rev-parse", "HEAD"]);
    assert!(remote.starts_with(local.trim()), "{remote} vs {local}");
    git.ok(&clone, &["pull", "-q"]);
    assert_eq!(std::fs::read(clone.join("b.txt")).unwrap(), b"two\n");

    // Once a webhook watches the repository, a push also records its event and a marker for
    // the dispatcher (two more writes), and the hook hears of it.
    let hook = Receiver::start();
    server.call(
        "lab",
        "add_webhook",
        serde_json::json!({"artifact_id": "lab/rt", "url": hook.url, "secret": "s3cr3t"}),
    );
    let watched = push_a_commit("c.txt", "three\n");
    eprintln!("push one commit, watched: {watched:?}");
    assert!(
        watched.get("put").copied().unwrap_or(0) >= 6,
        "push: {watched:?}"
    );
    assert!(
        hook.wait_for("push", 1, std::time::Duration::from_secs(20)),
        "the webhook heard of the push"
    );
    let after = git.rev(&src, "HEAD");
    assert_eq!(hook.of_event("push")[0].json()["after"], after.as_str());

    // Latency histograms: the pushes, the clone and fetches, the bucket calls they made.
    let text = server.metrics_text();
    let backend = match backend {
        Backend::Fs => "fs",
        Backend::S3 { .. } => "s3",
    };
    for (series, least) in [
        ("artifact_git_push_seconds_count{outcome=\"applied\"}".to_owned(), 4.0),
        ("artifact_git_fetch_seconds_count".to_owned(), 1.0),
        ("artifact_git_ls_refs_seconds_count".to_owned(), 1.0),
        (format!("artifact_git_bucket_call_seconds_count{{kind=\"put\",backend=\"{backend}\"}}"), 4.0),
        (format!("artifact_git_bucket_call_seconds_count{{kind=\"get_if_changed\",backend=\"{backend}\"}}"), 1.0),
    ] {
        let count: f64 = text
            .lines()
            .find_map(|l| l.strip_prefix(&format!("{series} ")))
            .unwrap_or_else(|| panic!("no {series} at /metrics:\n{text}"))
            .trim()
            .parse()
            .unwrap();
        assert!(count >= least, "{series}: {count}");
    }
    assert!(
        text.contains("artifact_git_push_seconds_bucket{outcome=\"applied\",le=\"0.5\"}"),
        "the push histogram has buckets:\n{text}"
    );
}

/// Settings are cached (and an anonymous caller is refused from that cache for a moment), but
/// a change made through this server is seen by its next request at once, both ways.
fn settings_changes_are_seen_at_once(backend: &Backend) {
    let server = Server::start_on(backend);
    server.init("lab/pub");
    let url = server.plain_url("lab/pub");
    let git = Git::default();
    let work = TempDir::new().unwrap();
    // Anonymous: refused (and the private settings are now cached).
    let refused = git.run(work.path(), &["ls-remote", &url]);
    assert!(!refused.status.success());
    let public = |on: bool| {
        server.call(
            "lab",
            "set_git_settings",
            serde_json::json!({"artifact_id": "lab/pub", "public": on}),
        )
    };
    public(true);
    git.ok(work.path(), &["ls-remote", &url]);
    public(false);
    let refused = git.run(work.path(), &["ls-remote", &url]);
    assert!(
        !refused.status.success(),
        "still readable anonymously after going private"
    );
}

backend_tests!(round_trips, settings_changes_are_seen_at_once);
