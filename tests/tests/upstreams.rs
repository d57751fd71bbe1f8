//! Upstreams: a repository that follows another host's. Commits pushed upstream arrive after
//! a signed webhook and on a timer, with their LFS objects; a force push upstream is reported
//! as diverged and not applied; forged, unsigned and replayed webhooks change nothing; a
//! mirror to the same remote does not send the updates back; `git_status` shows it all; a
//! one-shot import equals a mirror clone, from `git http-backend` and from another server.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::path::Path;
use std::time::Duration;

use serde_json::{json, Value};

use artifact_git_e2e::*;

const SECRET: &str = "upstream webhook secret";

fn remote_ref(git: &Git, dir: &Path, url: &str, name: &str) -> String {
    let out = git.ok(dir, &["ls-remote", url, name]);
    out.split_whitespace().next().unwrap_or_default().to_owned()
}

fn post_webhook(url: &str, body: &[u8], headers: &[String]) -> u16 {
    let mut extra = Vec::new();
    for h in headers {
        extra.push("-H");
        extra.push(h.as_str());
    }
    curl_post(url, "application/json", body, &extra).0
}

fn github_headers(body: &[u8], secret: &str, delivery: &str) -> Vec<String> {
    let mac: String = hmac(secret.as_bytes(), &[body])
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    vec![
        format!("X-Hub-Signature-256: sha256={mac}"),
        "X-GitHub-Event: push".into(),
        format!("X-GitHub-Delivery: {delivery}"),
    ]
}

fn follows_an_upstream(backend: &Backend) {
    let up = Server::start_on(backend);
    let down = Server::start_on_with(backend, &["--webhook-allow-private", "--events-poll", "1s"]);
    up.init("lab/source");
    down.init("lab/follow");
    let up_token = up.token("lab", None, "a");
    let down_token = down.token("lab", None, "a");
    let git = Git::default();
    git.lfs_install();
    let work = TempDir::new().unwrap();
    let src = work.path().join("src");
    git.ok(
        work.path(),
        &["init", "-q", "-b", "main", src.to_str().unwrap()],
    );
    git.ok(&src, &["lfs", "track", "*.bin"]);
    let weights: Vec<u8> = (0..300_000u32).flat_map(|i| i.to_le_bytes()).collect();
    std::fs::write(src.join("weights.bin"), &weights).unwrap();
    git.ok(&src, &["add", "."]);
    commit_file(&git, &src, "README.md", "model\n", "first");
    let up_url = up.url_with_token("lab/source", &up_token);
    git.ok(&src, &["push", "-q", &up_url, "main"]);

    // Credentials in the URL are moved out of it and never shown.
    let added = down.call(
        "lab",
        "add_upstream",
        json!({"artifact_id": "lab/follow", "url": up_url, "secret": SECRET}),
    );
    assert!(!added.to_string().contains(&up_token), "{added}");
    let hook = added["webhook_url"].as_str().unwrap().to_owned();
    assert!(hook.ends_with("/webhook"), "{hook}");
    let status = wait_for_syncs(&down, "lab/follow", 1, Duration::from_secs(60));
    assert!(!status.to_string().contains(&up_token), "{status}");
    assert_eq!(status["url"], up.plain_url("lab/source").as_str());
    let down_url = down.url_with_token("lab/follow", &down_token);
    assert_eq!(
        remote_ref(&git, work.path(), &down_url, "refs/heads/main"),
        git.rev(&src, "main"),
        "{status}"
    );
    // The LFS object came along, checked: a clone from us has the file.
    let clone = work.path().join("clone");
    git.ok(
        work.path(),
        &["clone", "-q", &down_url, clone.to_str().unwrap()],
    );
    assert_eq!(std::fs::read(clone.join("weights.bin")).unwrap(), weights);
    git.ok(&clone, &["fsck", "--strict"]);
    assert_eq!(status["status"]["last_lfs_objects"], 1, "{status}");

    // A new commit upstream arrives after a signed webhook, in a pack of about its size.
    commit_file(&git, &src, "notes.txt", "one more line\n", "second");
    git.ok(&src, &["push", "-q", &up_url, "main"]);
    let body = br#"{"ref":"refs/heads/main"}"#;
    // Forged, unsigned: refused, nothing fetched.
    assert_eq!(
        post_webhook(&hook, body, &github_headers(body, "wrong", "f1")),
        401
    );
    assert_eq!(post_webhook(&hook, body, &[]), 401);
    assert_eq!(
        post_webhook(&hook, body, &["X-Gitlab-Token: nope".into()]),
        401
    );
    std::thread::sleep(Duration::from_millis(500));
    assert_eq!(upstream_status(&down, "lab/follow")["status"]["syncs"], 1);
    assert_eq!(
        post_webhook(&hook, body, &github_headers(body, SECRET, "d1")),
        202
    );
    let status = wait_for_syncs(&down, "lab/follow", 2, Duration::from_secs(60));
    assert_eq!(
        remote_ref(&git, work.path(), &down_url, "refs/heads/main"),
        git.rev(&src, "main")
    );
    // One commit costs one small pack (0 when a later sync, asked meanwhile, found nothing
    // new: the last sync's figure is shown).
    let pack_bytes = status["status"]["last_pack_bytes"].as_u64().unwrap();
    assert!(pack_bytes < 2048, "one commit, {pack_bytes} bytes");
    assert_eq!(status["status"]["last_webhook"]["outcome"], "accepted");
    // The same delivery again is a replay.
    assert_eq!(
        post_webhook(&hook, body, &github_headers(body, SECRET, "d1")),
        401
    );

    // A force push upstream: reported as diverged, not applied.
    let ours = git.rev(&src, "main");
    git.ok(&src, &["reset", "-q", "--hard", "HEAD~1"]);
    commit_file(&git, &src, "other.txt", "rewritten\n", "rewritten");
    git.ok(&src, &["push", "-q", "-f", &up_url, "main"]);
    assert_eq!(
        post_webhook(&hook, body, &github_headers(body, SECRET, "d2")),
        202
    );
    let status = wait_for_syncs(&down, "lab/follow", 3, Duration::from_secs(60));
    let main = &status["status"]["refs"]["refs/heads/main"];
    assert_eq!(main["status"], "diverged", "{status}");
    assert_eq!(
        (main["ahead"].as_u64(), main["behind"].as_u64()),
        (Some(1), Some(1))
    );
    assert_eq!(
        remote_ref(&git, work.path(), &down_url, "refs/heads/main"),
        ours
    );

    // git_status shows the upstream, its last webhook and the last change.
    let all = down.call("lab", "git_status", json!({"artifact_id": "lab/follow"}));
    assert_eq!(
        all["upstreams"][0]["status"]["refs"]["refs/heads/main"]["status"],
        "diverged"
    );
    assert_eq!(all["last_change"]["source"], "upstream", "{all}");
    assert!(!all.to_string().contains(SECRET), "{all}");
}

backend_tests!(follows_an_upstream);

/// On a timer, with a push mirror to the same remote that sends nothing back, and the remote
/// mirroring here in turn: the two settle.
fn a_timer_and_a_mirror_do_not_loop(backend: &Backend) {
    let up = Server::start_on_with(backend, &["--webhook-allow-private", "--events-poll", "1s"]);
    let down = Server::start_on_with(backend, &["--webhook-allow-private", "--events-poll", "1s"]);
    up.init("lab/source");
    down.init("lab/follow");
    let up_token = up.token("lab", None, "a");
    let down_token = down.token("lab", None, "a");
    let git = Git::default();
    let work = TempDir::new().unwrap();
    let src = work.path().join("src");
    git.ok(
        work.path(),
        &["init", "-q", "-b", "main", src.to_str().unwrap()],
    );
    commit_file(&git, &src, "a.txt", "a\n", "first");
    let up_url = up.url_with_token("lab/source", &up_token);
    git.ok(&src, &["push", "-q", &up_url, "main"]);
    let remote = up.plain_url("lab/source");
    down.call("lab", "add_upstream",
        json!({"artifact_id": "lab/follow", "url": remote, "password": up_token, "interval": 5, "refs": ["refs/heads/*"]}),
    );
    down.call(
        "lab",
        "add_mirror",
        json!({"artifact_id": "lab/follow", "url": remote, "password": up_token}),
    );
    up.call("lab", "add_mirror",
        json!({"artifact_id": "lab/source", "url": down.plain_url("lab/follow"), "password": down_token}),
    );
    wait_for_syncs(&down, "lab/follow", 1, Duration::from_secs(60));
    let seq = |s: &Server, r: &str| {
        s.call("lab", "git_status", json!({"artifact_id": r}))["refs_seq"]
            .as_u64()
            .unwrap()
    };
    let up_seq = seq(&up, "lab/source");
    // A new branch upstream arrives on the timer, no webhook.
    git.ok(&src, &["push", "-q", &up_url, "main:refs/heads/topic"]);
    let down_url = down.url_with_token("lab/follow", &down_token);
    let arrived = eventually(Duration::from_secs(30), || {
        remote_ref(&git, work.path(), &down_url, "refs/heads/topic") == git.rev(&src, "main")
    });
    assert!(arrived, "{}", upstream_status(&down, "lab/follow"));
    // The mirrors had their turns and pushed nothing back: the upstream changed once (the
    // push).
    std::thread::sleep(Duration::from_secs(3));
    let status = down.call("lab", "git_status", json!({"artifact_id": "lab/follow"}));
    assert!(
        status["mirrors"][0]["status"]["last_error"].is_null(),
        "{status}"
    );
    assert_eq!(seq(&up, "lab/source"), up_seq + 1, "{status}");
    // And both settle.
    let down_seq = seq(&down, "lab/follow");
    std::thread::sleep(Duration::from_secs(7));
    assert_eq!(seq(&up, "lab/source"), up_seq + 1);
    assert_eq!(seq(&down, "lab/follow"), down_seq, "they settle");
}

backend_tests!(a_timer_and_a_mirror_do_not_loop);

/// `import_repository` from another server (with LFS) and from `git http-backend`.
fn imports_a_repository(backend: &Backend) {
    let up = Server::start_on(backend);
    let down = Server::start_on_with(backend, &["--webhook-allow-private", "--events-poll", "1s"]);
    up.init("lab/source");
    let up_token = up.token("lab", None, "a");
    let down_token = down.token("lab", None, "a");
    let git = Git::default();
    git.lfs_install();
    let work = TempDir::new().unwrap();
    let src = work.path().join("src");
    git.ok(
        work.path(),
        &["init", "-q", "-b", "trunk", src.to_str().unwrap()],
    );
    git.ok(&src, &["lfs", "track", "*.bin"]);
    std::fs::write(src.join("data.bin"), vec![7u8; 100_000]).unwrap();
    git.ok(&src, &["add", "."]);
    commit_file(&git, &src, "README.md", "r\n", "first");
    git.ok(&src, &["tag", "-a", "v1", "-m", "one"]);
    git.ok(&src, &["checkout", "-q", "-b", "dev"]);
    std::fs::write(src.join("more.bin"), vec![9u8; 50_000]).unwrap();
    git.ok(&src, &["add", "."]);
    commit_file(&git, &src, "dev.txt", "d\n", "dev");
    let up_url = up.url_with_token("lab/source", &up_token);
    git.ok(&src, &["push", "-q", "--all", &up_url]);
    git.ok(&src, &["push", "-q", "--tags", &up_url]);
    let answer = down.call("lab", "import_repository",
        json!({"artifact_id": "lab/imported", "url": up.plain_url("lab/source"), "password": up_token}),
    );
    // The remote's default branch is ours (the first branch its first push created).
    let symref = git.ok(work.path(), &["ls-remote", "--symref", &up_url, "HEAD"]);
    let remote_head = symref
        .lines()
        .find_map(|l| l.strip_prefix("ref: refs/heads/"))
        .and_then(|l| l.split_whitespace().next())
        .unwrap();
    assert_eq!(answer["default_branch"], remote_head, "{answer}");
    wait_for_syncs(&down, "lab/imported", 1, Duration::from_secs(60));
    let down_url = down.url_with_token("lab/imported", &down_token);
    let listing = |url: &str| {
        let out = git.ok(work.path(), &["ls-remote", url]);
        out.lines()
            .filter(|l| !l.ends_with("HEAD"))
            .map(str::to_owned)
            .collect::<Vec<_>>()
    };
    assert_eq!(listing(&down_url), listing(&up_url));
    // Equal to a mirror clone plus every LFS object.
    let mirror = work.path().join("mirror.git");
    git.ok(
        work.path(),
        &[
            "clone",
            "-q",
            "--mirror",
            &down_url,
            mirror.to_str().unwrap(),
        ],
    );
    git.ok(&mirror, &["lfs", "fetch", "--all"]);
    git.ok(&mirror, &["fsck", "--strict"]);
    let clone = work.path().join("clone");
    git.ok(
        work.path(),
        &[
            "clone",
            "-q",
            "-b",
            "dev",
            &down_url,
            clone.to_str().unwrap(),
        ],
    );
    assert_eq!(
        std::fs::read(clone.join("data.bin")).unwrap(),
        vec![7u8; 100_000]
    );
    assert_eq!(
        std::fs::read(clone.join("more.bin")).unwrap(),
        vec![9u8; 50_000]
    );
    assert_eq!(git.rev(&clone, "HEAD"), git.rev(&src, "dev"));
    // Importing into an artifact that exists is refused.
    let again = down.rpc(
        Some(&down_token),
        "import_repository",
        json!({"artifact_id": "lab/imported", "url": up.plain_url("lab/source")}),
    );
    assert_eq!(again["error"]["code"], -32009, "{again}");

    // From C git's http-backend (protocol v2), the same refs.
    let root = TempDir::new().unwrap();
    let bare = root.path().join("plain.git");
    let plain_src = work.path().join("plain-src");
    git.ok(
        work.path(),
        &["init", "-q", "-b", "main", plain_src.to_str().unwrap()],
    );
    commit_file(&git, &plain_src, "a.txt", "a\n", "one");
    git.ok(&plain_src, &["tag", "light"]);
    git.ok(&plain_src, &["checkout", "-q", "-b", "side"]);
    commit_file(&git, &plain_src, "b.txt", "b\n", "two");
    git.ok(
        work.path(),
        &[
            "clone",
            "-q",
            "--mirror",
            plain_src.to_str().unwrap(),
            bare.to_str().unwrap(),
        ],
    );
    let backend_server = HttpBackend::start(root.path());
    let plain = format!("{}/plain.git", backend_server.url);
    down.call(
        "lab",
        "import_repository",
        json!({"artifact_id": "lab/plain", "url": plain, "lfs": false}),
    );
    wait_for_syncs(&down, "lab/plain", 1, Duration::from_secs(60));
    let plain_down = down.url_with_token("lab/plain", &down_token);
    assert_eq!(listing(&plain_down), listing(&plain));
}

backend_tests!(imports_a_repository);

/// Hostile upstreams: private addresses unless allowed, garbage answers, bad parameters.
fn hostile_upstreams(backend: &Backend) {
    let strict = Server::start_on(backend);
    strict.init("lab/strict");
    let token = strict.token("lab", None, "a");
    let refused = strict.rpc(
        Some(&token),
        "add_upstream",
        json!({"artifact_id": "lab/strict", "url": "http://127.0.0.1:9/x/git/y"}),
    );
    let message = refused["error"]["message"].as_str().unwrap_or_default();
    assert!(message.contains("private or internal"), "{refused}");
    for bad in [
        json!({"artifact_id": "lab/strict", "url": "https://example.com/r", "mode": "merge"}),
        json!({"artifact_id": "lab/strict", "url": "https://example.com/r", "interval": 1}),
        json!({"artifact_id": "lab/strict", "url": "https://example.com/r", "refs": ["heads/*"]}),
        json!({"artifact_id": "lab/strict", "url": "ftp://example.com/r"}),
        json!({"artifact_id": "lab/strict", "url": "https://example.com/r", "password": ["hunter2"]}),
    ] {
        let answer = strict.rpc(Some(&token), "add_upstream", bad.clone());
        assert_eq!(answer["error"]["code"], -32602, "{bad}: {answer}");
        assert!(!answer.to_string().contains("hunter2"));
    }
    // A writer is not an admin.
    let rw = strict.token("lab", None, "rw");
    let answer = strict.rpc(
        Some(&rw),
        "list_upstreams",
        json!({"artifact_id": "lab/strict"}),
    );
    assert!(answer.get("error").is_some(), "{answer}");

    // An upstream that answers garbage: the sync fails with a reason, nothing moves.
    let junk_root = TempDir::new().unwrap();
    std::fs::create_dir_all(junk_root.path().join("junk/info")).unwrap();
    std::fs::write(junk_root.path().join("junk/info/refs"), "not git\n").unwrap();
    let junk = HttpBackend::start_static(junk_root.path());
    let open = Server::start_on_with(backend, &["--webhook-allow-private"]);
    open.init("lab/victim");
    let token = open.token("lab", None, "a");
    let added = open.call(
        "lab",
        "add_upstream",
        json!({"artifact_id": "lab/victim", "url": format!("{}/junk", junk.url), "secret": SECRET}),
    );
    let status = wait_for_syncs(&open, "lab/victim", 0, Duration::from_secs(60));
    // A webhook body over its limit gets a readable 413, whatever it claims to be.
    let hook = added["webhook_url"].as_str().unwrap();
    let huge = vec![b'x'; 9 << 20];
    let (code, answer) = curl_post(hook, "application/json", &huge, &[]);
    assert_eq!(code, 413, "{}", String::from_utf8_lossy(&answer));
    assert!(String::from_utf8_lossy(&answer).contains("larger than"));
    let failed = eventually(Duration::from_secs(30), || {
        upstream_status(&open, "lab/victim")["status"]["last_error"].is_string()
    });
    assert!(failed, "{status}");
    let git = Git::default();
    let work = TempDir::new().unwrap();
    let out = git.ok(
        work.path(),
        &["ls-remote", &open.url_with_token("lab/victim", &token)],
    );
    assert!(!out.contains("refs/heads/"), "{out}");
    // A webhook for an upstream that does not exist, or with no secret set: not found.
    let nowhere = format!(
        "{}/lab/git/victim/upstreams/upstream-0000/webhook",
        open.url
    );
    assert_eq!(post_webhook(&nowhere, b"{}", &[]), 404);

    // An upstream's pack is held to a push's limits: an object over the size limit refuses
    // the pack, and nothing moves.
    let up = Server::start_on(backend);
    up.init("lab/big");
    let up_token = up.token("lab", None, "a");
    let src = work.path().join("big");
    git.ok(
        work.path(),
        &["init", "-q", "-b", "main", src.to_str().unwrap()],
    );
    commit_file(&git, &src, "big.txt", &"x".repeat(50_000), "big");
    git.ok(
        &src,
        &[
            "push",
            "-q",
            &up.url_with_token("lab/big", &up_token),
            "main",
        ],
    );
    let small = Server::start_on_with(
        backend,
        &["--webhook-allow-private", "--max-object-size", "10000"],
    );
    small.init("lab/small");
    let token = small.token("lab", None, "a");
    small.call(
        "lab",
        "add_upstream",
        json!({"artifact_id": "lab/small", "url": up.plain_url("lab/big"), "password": up_token}),
    );
    let mut status = Value::Null;
    let refused = eventually(Duration::from_secs(30), || {
        status = upstream_status(&small, "lab/small");
        status["status"]["last_error"].is_string()
    });
    assert!(refused, "{status}");
    let why = status["status"]["last_error"].as_str().unwrap();
    assert!(why.contains("refused") && why.contains("10000"), "{why}");
    let out = git.ok(
        work.path(),
        &["ls-remote", &small.url_with_token("lab/small", &token)],
    );
    assert!(!out.contains("refs/heads/"), "{out}");
}

backend_tests!(hostile_upstreams);

fn standard_headers(body: &[u8], key: &[u8], id: &str, at: i64) -> Vec<String> {
    use base64::Engine;
    let mac = hmac(
        key,
        &[id.as_bytes(), b".", at.to_string().as_bytes(), b".", body],
    );
    vec![
        format!("webhook-id: {id}"),
        format!("webhook-timestamp: {at}"),
        format!(
            "webhook-signature: v1,{}",
            base64::engine::general_purpose::STANDARD.encode(mac)
        ),
    ]
}

fn now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64
}

/// Standard Webhooks and GitLab senders; a flood to two replicas collapses into few syncs; an
/// import whose replica is killed is finished by another.
fn floods_replicas_and_resumed_imports(backend: &Backend) {
    use base64::Engine;
    let up = Server::start_on(backend);
    let args = [
        "--webhook-allow-private",
        "--events-poll",
        "1s",
        "--events-lease",
        "2s",
    ];
    let mut down = Server::start_on_with(backend, &args);
    let other = down.replica_with(&args);
    up.init("lab/source");
    down.init("lab/follow");
    let up_token = up.token("lab", None, "a");
    let token = down.token("lab", None, "a");
    let git = Git::default();
    git.lfs_install();
    let work = TempDir::new().unwrap();
    let src = work.path().join("src");
    git.ok(
        work.path(),
        &["init", "-q", "-b", "main", src.to_str().unwrap()],
    );
    git.ok(&src, &["lfs", "track", "*.bin"]);
    let big: Vec<u8> = (0..6_000_000u32)
        .flat_map(|i| i.wrapping_mul(2_654_435_761).to_le_bytes())
        .collect();
    std::fs::write(src.join("big.bin"), &big).unwrap();
    git.ok(&src, &["add", "."]);
    commit_file(&git, &src, "a.txt", "a\n", "first");
    let up_url = up.url_with_token("lab/source", &up_token);
    git.ok(&src, &["push", "-q", &up_url, "main"]);
    let key = b"0123456789abcdef0123456789abcdef";
    let secret = format!(
        "whsec_{}",
        base64::engine::general_purpose::STANDARD.encode(key)
    );
    let added = down.call("lab", "add_upstream",
        json!({"artifact_id": "lab/follow", "url": up.plain_url("lab/source"), "password": up_token, "secret": secret}),
    );
    let hook = added["webhook_url"].as_str().unwrap().to_owned();
    let other_hook = hook.replace(&down.url, &other.url);
    wait_for_syncs(&down, "lab/follow", 1, Duration::from_secs(60));
    commit_file(&git, &src, "b.txt", "b\n", "second");
    git.ok(&src, &["push", "-q", &up_url, "main"]);
    let body = br#"{"type":"push"}"#;
    // Twenty deliveries at once, to both replicas.
    let sent: Vec<u16> = std::thread::scope(|s| {
        let handles: Vec<_> = (0..20)
            .map(|i| {
                let url = if i % 2 == 0 {
                    hook.clone()
                } else {
                    other_hook.clone()
                };
                s.spawn(move || {
                    post_webhook(
                        &url,
                        body,
                        &standard_headers(body, key, &format!("msg_{i}"), now()),
                    )
                })
            })
            .collect();
        handles.into_iter().map(|h| h.join().unwrap()).collect()
    });
    assert!(sent.iter().all(|s| *s == 202), "{sent:?}");
    let down_url = down.url_with_token("lab/follow", &token);
    let arrived = eventually(Duration::from_secs(30), || {
        remote_ref(&git, work.path(), &down_url, "refs/heads/main") == git.rev(&src, "main")
    });
    assert!(arrived);
    let status = wait_for_syncs(&down, "lab/follow", 2, Duration::from_secs(60));
    let syncs = status["status"]["syncs"].as_u64().unwrap();
    // One sync per burst window (250 ms), plus the first: a few, not twenty (on a loaded
    // machine the deliveries spread over more windows).
    assert!(syncs <= 8, "twenty webhooks made {syncs} syncs");
    // Stale timestamps and GitLab's token.
    let stale = standard_headers(body, key, "msg_old", now() - 3600);
    assert_eq!(post_webhook(&hook, body, &stale), 401);
    let gitlab = vec![
        format!("X-Gitlab-Token: {secret}"),
        "X-Gitlab-Event: Push Hook".into(),
    ];
    assert_eq!(post_webhook(&hook, body, &gitlab), 202);

    // An import whose replica dies midway is finished by the other one.
    let started = down.call("lab", "import_repository",
        json!({"artifact_id": "lab/resumed", "url": up.plain_url("lab/source"), "password": up_token}),
    );
    assert_eq!(started["status"], "importing");
    down.kill();
    let status = wait_for_syncs(&other, "lab/resumed", 1, Duration::from_secs(60));
    let resumed = other.url_with_token("lab/resumed", &token);
    assert_eq!(
        remote_ref(&git, work.path(), &resumed, "refs/heads/main"),
        git.rev(&src, "main"),
        "{status}"
    );
    let clone = work.path().join("clone");
    git.ok(
        work.path(),
        &["clone", "-q", &resumed, clone.to_str().unwrap()],
    );
    assert_eq!(std::fs::read(clone.join("big.bin")).unwrap(), big);
}

backend_tests!(floods_replicas_and_resumed_imports);
