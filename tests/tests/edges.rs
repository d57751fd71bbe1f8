//! Where users meet the server first: HTTPS with a certificate swapped on disk, plain HTTP
//! refused off loopback, tokens sent as a header (never in `.git/config`), push-to-create,
//! and links that follow a trusted proxy's forwarded headers.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::process::Command;
use std::time::Duration;

use artifact_git_e2e::*;
use serde_json::{json, Value};

/// git with the token as a header and `ca` as the only trusted authority.
fn git_args<'a>(header: &'a str, ca: &'a str) -> Vec<&'a str> {
    vec!["-c", header, "-c", ca]
}

fn tls_clone_push_lfs_and_reload(backend: &Backend) {
    let dir = TempDir::new().unwrap();
    let first = certificate(dir.path(), "first");
    let (served_cert, served_key) = (dir.path().join("served.pem"), dir.path().join("served.key"));
    std::fs::copy(&first.cert, &served_cert).unwrap();
    std::fs::copy(&first.key, &served_key).unwrap();
    let server = Server::start_on_with(
        backend,
        &[
            "--tls-cert",
            served_cert.to_str().unwrap(),
            "--tls-key",
            served_key.to_str().unwrap(),
        ],
    );
    assert!(
        server.url.starts_with("https://127.0.0.1:"),
        "{}",
        server.url
    );
    server.init("lab/tls");
    let token = server.token("lab", None, "rw");
    let header = format!("http.extraHeader=Authorization: Bearer {token}");
    let ca = format!("http.sslCAInfo={}", first.ca.display());
    let url = server.plain_url("lab/tls");
    let git = Git::default();
    git.lfs_install();
    let work = TempDir::new().unwrap();
    let src = work.path().join("src");
    let mut clone = git_args(&header, &ca);
    clone.extend(["clone", "-q", &url, src.to_str().unwrap()]);
    git.ok(work.path(), &clone);
    // The token is sent, never stored.
    let config = std::fs::read_to_string(src.join(".git/config")).unwrap();
    assert!(!config.contains(&token), "{config}");
    git.ok(
        &src,
        &["config", "http.sslCAInfo", first.ca.to_str().unwrap()],
    );
    git.ok(
        &src,
        &[
            "config",
            "http.extraHeader",
            &format!("Authorization: Bearer {token}"),
        ],
    );
    git.ok(&src, &["lfs", "track", "*.bin"]);
    let model: Vec<u8> = (0..200_000u32).map(|i| (i % 253) as u8).collect();
    std::fs::write(src.join("model.bin"), &model).unwrap();
    commit_file(&git, &src, "README.md", "over TLS\n", "first");
    git.ok(&src, &["add", ".gitattributes", "model.bin"]);
    git.ok(&src, &["commit", "-q", "-m", "a model"]);
    git.ok(&src, &["push", "-q", "origin", "main"]);
    let copy = work.path().join("copy");
    let mut clone = git_args(&header, &ca);
    clone.extend(["clone", "-q", &url, copy.to_str().unwrap()]);
    git.ok(work.path(), &clone);
    assert_eq!(git.rev(&copy, "HEAD"), git.rev(&src, "HEAD"));
    assert_eq!(std::fs::read(copy.join("model.bin")).unwrap(), model);
    git.ok(&copy, &["fsck", "--strict"]);
    // Without the authority, git refuses the certificate.
    let refused = git.fails(work.path(), &["-c", &header, "ls-remote", &url]);
    assert!(refused.contains("certificate"), "{refused}");

    // A new certificate on disk is served to the next connection.
    let second = certificate(dir.path(), "second");
    std::fs::copy(&second.key, &served_key).unwrap();
    std::fs::copy(&second.cert, &served_cert).unwrap();
    let ca2 = format!("http.sslCAInfo={}", second.ca.display());
    let ls = |ca: &str| {
        git.run(work.path(), &["-c", &header, "-c", ca, "ls-remote", &url])
            .status
            .success()
    };
    assert!(
        eventually(Duration::from_secs(15), || ls(&ca2)),
        "the new certificate was not served"
    );
    assert!(!ls(&ca), "the old certificate is still served");
}

fn run_cli(args: &[&str]) -> std::process::Output {
    Command::new(server_bin())
        .args(args)
        .env(
            "ARTIFACT_GIT_JWT_SECRET",
            "0123456789abcdef0123456789abcdef",
        )
        .output()
        .unwrap()
}

#[test]
fn plain_http_off_loopback_needs_a_flag() {
    let dir = TempDir::new().unwrap();
    let storage = format!("file://{}", dir.path().join("data").display());
    let out = run_cli(&["serve", "--listen", "0.0.0.0:0", "--storage", &storage]);
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("--insecure-http") && err.contains("--tls-cert"),
        "{err}"
    );
    // With the flag it serves (behind a proxy): it announces itself and keeps running.
    let mut child = Command::new(server_bin())
        .args([
            "serve",
            "--listen",
            "0.0.0.0:0",
            "--insecure-http",
            "--storage",
            &storage,
        ])
        .env(
            "ARTIFACT_GIT_JWT_SECRET",
            "0123456789abcdef0123456789abcdef",
        )
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let mut first = String::new();
    std::io::BufRead::read_line(
        &mut std::io::BufReader::new(child.stdout.take().unwrap()),
        &mut first,
    )
    .unwrap();
    assert!(first.contains("listening on http://0.0.0.0:"), "{first}");
    let _ = child.kill();
    let _ = child.wait();
    // A certificate that does not parse is refused at start, saying which file.
    let bad = dir.path().join("bad.pem");
    std::fs::write(&bad, "not a certificate").unwrap();
    let out = run_cli(&[
        "serve",
        "--storage",
        &storage,
        "--tls-cert",
        bad.to_str().unwrap(),
        "--tls-key",
        bad.to_str().unwrap(),
    ]);
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("bad.pem"));
}

fn push_to_create(backend: &Backend) {
    let git = Git::default();
    let work = TempDir::new().unwrap();
    let src = work.path().join("src");
    git.ok(
        work.path(),
        &["init", "-q", "-b", "trunk", src.to_str().unwrap()],
    );
    commit_file(&git, &src, "a.txt", "a\n", "first");
    commit_file(&git, &src, "b.txt", "b\n", "second");
    let push = |server: &Server, token: &str, repo: &str| {
        let header = format!("http.extraHeader=Authorization: Bearer {token}");
        git.run(
            &src,
            &[
                "-c",
                &header,
                "push",
                "-q",
                &server.plain_url(repo),
                "trunk",
            ],
        )
    };

    // Off (the default): nothing is created, whoever pushes.
    let off = Server::start_on(backend);
    let admin = off.token("lab", None, "a");
    assert!(!push(&off, &admin, "lab/new").status.success());
    assert_eq!(
        off.status(
            "/lab/git/new/info/refs?service=git-upload-pack",
            Some(&admin)
        ),
        404
    );

    // On for admins: an admin's push creates it, with the pushed branch as HEAD.
    let on = Server::start_on_with(backend, &["--create-on-push", "admin"]);
    let (admin, rw, read) = (
        on.token("lab", None, "a"),
        on.token("lab", None, "rw"),
        on.token("lab", None, "r"),
    );
    for token in [&rw, &read] {
        let out = push(&on, token, "lab/new");
        assert!(!out.status.success(), "created with a token without a");
    }
    assert_eq!(
        on.status(
            "/lab/git/new/info/refs?service=git-upload-pack",
            Some(&admin)
        ),
        404
    );
    let out = push(&on, &admin, "lab/new");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let copy = work.path().join("copy");
    git.ok(
        work.path(),
        &[
            "clone",
            "-q",
            &on.url_with_token("lab/new", &admin),
            copy.to_str().unwrap(),
        ],
    );
    assert_eq!(git.rev(&copy, "HEAD"), git.rev(&src, "trunk"));
    assert_eq!(
        git.ok(&copy, &["symbolic-ref", "HEAD"]).trim(),
        "refs/heads/trunk"
    );
    git.ok(&copy, &["fsck", "--strict"]);
    // A token for another workspace creates nothing there.
    let other = on.token("elsewhere", None, "a");
    assert!(!push(&on, &other, "lab/other").status.success());
    // The created repository is a normal one: the API knows it.
    let url = on.call("lab", "get_git_url", json!({"artifact_id": "lab/new"}));
    assert!(url["git_url"].as_str().unwrap().ends_with("/lab/git/new"));

    // `write`: rw tokens may create too, read tokens still not.
    let rw_on = Server::start_on_with(backend, &["--create-on-push", "write"]);
    let read = rw_on.token("lab", None, "r");
    assert!(!push(&rw_on, &read, "lab/w").status.success());
    let rw = rw_on.token("lab", None, "rw");
    assert!(push(&rw_on, &rw, "lab/w").status.success());
}

/// `get_git_url` through curl with extra headers; the URL it answers.
fn git_url_via(server: &Server, headers: &[&str]) -> String {
    let token = server.token("lab", None, "a");
    let auth = format!("Authorization: Bearer {token}");
    let mut extra = vec!["-H", auth.as_str()];
    for h in headers {
        extra.extend(["-H", h]);
    }
    let body = json!({"jsonrpc": "2.0", "id": 1, "method": "get_git_url",
        "params": {"artifact_id": "lab/px"}});
    let (status, out) = curl_post(
        &format!("{}/rpc", server.url),
        "application/json",
        body.to_string().as_bytes(),
        &extra,
    );
    assert_eq!(status, 200);
    let v: Value = serde_json::from_slice(&out).unwrap();
    v["result"]["git_url"]
        .as_str()
        .unwrap_or_else(|| panic!("{v}"))
        .to_owned()
}

#[test]
fn links_follow_trusted_proxies_only() {
    let forwarded = [
        "X-Forwarded-Proto: https",
        "X-Forwarded-Host: git.example.com",
    ];
    let trusting = Server::start_on_with(
        &Backend::Fs,
        &["--trusted-proxy", "127.0.0.1/32,10.0.0.0/8"],
    );
    trusting.init("lab/px");
    assert_eq!(
        git_url_via(&trusting, &forwarded),
        "https://git.example.com/lab/git/px"
    );
    // Without forwarded headers: the listen address.
    assert_eq!(
        git_url_via(&trusting, &[]),
        format!("{}/lab/git/px", trusting.url)
    );
    // A host that is not a host name is ignored.
    let evil = ["X-Forwarded-Proto: https", "X-Forwarded-Host: evil.com/x?"];
    assert_eq!(
        git_url_via(&trusting, &evil),
        format!("{}/lab/git/px", trusting.url.replace("http://", "https://"))
    );
    // Not from a trusted proxy: the headers are ignored.
    let untrusting = Server::start_on_with(&Backend::Fs, &["--trusted-proxy", "10.0.0.0/8"]);
    untrusting.init("lab/px");
    assert_eq!(
        git_url_via(&untrusting, &forwarded),
        format!("{}/lab/git/px", untrusting.url)
    );
    // --public-url wins over everything.
    let fixed = Server::start_on_with(
        &Backend::Fs,
        &[
            "--trusted-proxy",
            "127.0.0.1",
            "--public-url",
            "https://public.example.org/",
        ],
    );
    fixed.init("lab/px");
    assert_eq!(
        git_url_via(&fixed, &forwarded),
        "https://public.example.org/lab/git/px"
    );
}

#[test]
fn token_git_config_keeps_the_token_out_of_the_repository() {
    let server = Server::start();
    server.init("lab/cfg");
    let git = Git::default();
    let work = TempDir::new().unwrap();
    let src = work.path().join("src");
    git.ok(
        work.path(),
        &["init", "-q", "-b", "main", src.to_str().unwrap()],
    );
    commit_file(&git, &src, "a.txt", "a\n", "first");
    let line = server.cli(&[
        "token",
        "--workspace",
        "lab",
        "--scope",
        "rw",
        "--git-config",
        &server.url,
    ]);
    let line = line.trim();
    assert!(line.starts_with("git config --global http."), "{line}");
    // Run it as printed (in the test's git home).
    let out = Command::new("sh")
        .args(["-c", line])
        .env("HOME", git.home())
        .env("GIT_CONFIG_NOSYSTEM", "1")
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let url = server.plain_url("lab/cfg");
    git.ok(&src, &["push", "-q", &url, "main"]);
    let copy = work.path().join("copy");
    git.ok(work.path(), &["clone", "-q", &url, copy.to_str().unwrap()]);
    assert_eq!(git.rev(&copy, "HEAD"), git.rev(&src, "HEAD"));
    let config = std::fs::read_to_string(copy.join(".git/config")).unwrap();
    assert!(!config.contains("Bearer"), "{config}");
    let bad = Command::new(server_bin())
        .args(["token", "--workspace", "lab", "--git-config", "not a url"])
        .args(["--storage", &server.storage])
        .env("ARTIFACT_GIT_JWT_SECRET", TEST_SECRET)
        .output()
        .unwrap();
    assert!(!bad.status.success());
}

backend_tests!(tls_clone_push_lfs_and_reload, push_to_create);
