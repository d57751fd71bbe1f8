#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
//! Per-request JWT auth, public repositories and the artifact JSON-RPC API, end to end.

use std::path::Path;
use std::time::{SystemTime, UNIX_EPOCH};

use artifact_git_e2e::*;
use base64::Engine;
use serde_json::{json, Value};

fn now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs()
}

fn hs256(secret: &str, claims: Value) -> String {
    jsonwebtoken::encode(
        &jsonwebtoken::Header::new(jsonwebtoken::Algorithm::HS256),
        &claims,
        &jsonwebtoken::EncodingKey::from_secret(secret.as_bytes()),
    )
    .unwrap()
}

fn error_code(answer: &Value) -> i64 {
    answer["error"]["code"]
        .as_i64()
        .unwrap_or_else(|| panic!("expected an error: {answer}"))
}

/// Every file of a work tree (outside `.git`), relative path -> content.
fn files(dir: &Path) -> std::collections::BTreeMap<String, Vec<u8>> {
    read_tree(dir, "")
}

fn enable_git_imports_the_newest_version(backend: &Backend) {
    let server = Server::start_on(backend);
    let admin = server.token("lab", None, "a");
    let reader = server.token("lab", None, "r");
    let writer = server.token("lab", Some("data"), "rw");
    // The artifact service stored two versions before git was enabled.
    server.put_artifact_file("lab/data", 0, "old.txt", b"only in v0\n");
    server.put_artifact_file("lab/data", 0, "README.md", b"v0 readme\n");
    let binary = Rng::new(5).bytes(10_000);
    let v1: Vec<(&str, Vec<u8>)> = vec![
        ("README.md", b"# Data\nversion one\n".to_vec()),
        ("data/nested/deep/table.csv", b"a,b\n1,2\n".to_vec()),
        ("empty.txt", Vec::new()),
        ("weights/model.bin", binary),
        ("notes with spaces.txt", b"spaces\n".to_vec()),
    ];
    for (path, data) in &v1 {
        server.put_artifact_file("lab/data", 1, path, data);
    }

    let answer = server.rpc(
        Some(&admin),
        "get_git_url",
        json!({"artifact_id": "lab/data"}),
    );
    assert_eq!(error_code(&answer), -32004);
    assert!(
        answer["error"]["message"]
            .as_str()
            .unwrap()
            .contains("enable_git"),
        "{answer}"
    );

    let answer = server.rpc(
        Some(&admin),
        "enable_git",
        json!({"artifact_id": "lab/data"}),
    );
    let result = &answer["result"];
    assert_eq!(result["created"], true, "{answer}");
    assert_eq!(result["imported_files"], 5);
    assert_eq!(result["default_branch"], "main");
    assert_eq!(result["git_url"], format!("{}/lab/git/data", server.url));
    let head = result["head"].as_str().unwrap().to_owned();
    let again = server.rpc(
        Some(&admin),
        "enable_git",
        json!({"artifact_id": "lab/data"}),
    );
    assert_eq!(again["result"]["created"], false, "{again}");
    assert_eq!(again["result"]["head"], head.as_str());
    let url = server.rpc(
        Some(&reader),
        "get_git_url",
        json!({"artifact_id": "lab/data"}),
    );
    assert_eq!(
        url["result"]["git_url"],
        format!("{}/lab/git/data", server.url)
    );

    // A read token clones exactly v1's files; `git clone URL` names the folder after the artifact.
    let git = Git::default();
    let work = TempDir::new().unwrap();
    git.ok(
        work.path(),
        &["clone", "-q", &server.url_with_token("lab/data", &reader)],
    );
    let clone = work.path().join("data");
    let expected: std::collections::BTreeMap<String, Vec<u8>> =
        v1.iter().map(|(p, d)| (p.to_string(), d.clone())).collect();
    assert_eq!(files(&clone), expected);
    assert_eq!(git.ok(&clone, &["rev-parse", "HEAD"]).trim(), head);
    assert!(git.ok(&clone, &["log", "-1", "--format=%s"]).contains("v1"));
    git.ok(&clone, &["fsck", "--strict"]);
    assert!(git
        .ok(&clone, &["ls-files", "-s"])
        .lines()
        .all(|l| l.starts_with("100644 ")));

    // Pushing needs rw: an r token is refused at discovery with a clear reason.
    commit_file(&git, &clone, "new.txt", "new\n", "a change");
    let err = git.fails(&clone, &["push", "origin", "main"]);
    assert!(
        err.contains("403") && err.contains("does not grant write access"),
        "{err}"
    );
    git.ok(
        &clone,
        &[
            "push",
            "-q",
            &server.url_with_token("lab/data", &writer),
            "main",
        ],
    );
    // The same token works on the other route form.
    let long = server
        .url_with_token("lab/data", &reader)
        .replace("/lab/git/data", "/lab/artifacts/data/git");
    git.ok(work.path(), &["clone", "-q", &long, "long-form"]);
    assert!(work.path().join("long-form/new.txt").exists());
}

fn credentials_are_asked_for_and_public_repositories(backend: &Backend) {
    let server = Server::start_on(backend);
    let admin = server.token("lab", None, "a");
    let answer = server.rpc(
        Some(&admin),
        "enable_git",
        json!({"artifact_id": "lab/private", "import_existing_files": false}),
    );
    assert_eq!(answer["result"]["created"], true, "{answer}");
    assert_eq!(answer["result"]["imported_files"], 0);
    let git = Git::default();
    let work = TempDir::new().unwrap();
    // No token: 401, and git, unable to prompt, says it needs credentials.
    let err = git.fails(
        work.path(),
        &["clone", &server.plain_url("lab/private"), "anon"],
    );
    assert!(
        err.contains("could not read Username") || err.contains("terminal prompts disabled"),
        "{err}"
    );
    assert_eq!(
        server.status("/lab/git/private/info/refs?service=git-upload-pack", None),
        401
    );
    // With a credential helper git retries with the token it supplies.
    let reader = server.token("lab", Some("private"), "r");
    let marker = work.path().join("helper-called");
    let helper = work.path().join("helper.sh");
    std::fs::write(
        &helper,
        format!(
            "#!/bin/sh\ntouch {}\necho username=git\necho password={reader}\n",
            marker.display()
        ),
    )
    .unwrap();
    std::process::Command::new("chmod")
        .arg("+x")
        .arg(&helper)
        .status()
        .unwrap();
    git.ok(
        work.path(),
        &[
            "-c",
            &format!("credential.helper={}", helper.display()),
            "clone",
            "-q",
            &server.plain_url("lab/private"),
            "helped",
        ],
    );
    assert!(marker.exists(), "git asked the credential helper");

    // A public repository: anonymous clone and fetch work, anonymous push does not.
    let answer = server.rpc(
        Some(&admin),
        "enable_git",
        json!({"artifact_id": "lab/open", "public": true, "import_existing_files": false}),
    );
    assert_eq!(answer["result"]["created"], true);
    let src = work.path().join("src");
    git.ok(
        work.path(),
        &["init", "-q", "-b", "main", src.to_str().unwrap()],
    );
    commit_file(&git, &src, "hello.txt", "hello\n", "hello");
    git.ok(
        &src,
        &[
            "push",
            "-q",
            &server.url_with_token("lab/open", &admin),
            "main",
        ],
    );
    git.ok(
        work.path(),
        &["clone", "-q", &server.plain_url("lab/open"), "anon-open"],
    );
    let anon = work.path().join("anon-open");
    assert!(anon.join("hello.txt").exists());
    commit_file(&git, &anon, "x.txt", "x\n", "anonymous change");
    let err = git.fails(&anon, &["push", "origin", "main"]);
    assert!(
        err.contains("could not read Username")
            || err.contains("terminal prompts disabled")
            || err.contains("401"),
        "{err}"
    );
    assert_eq!(
        server.status("/lab/git/open/info/refs?service=git-receive-pack", None),
        401
    );
}

fn token_attacks_are_refused(backend: &Backend) {
    let server = Server::start_on(backend);
    server.init("lab/x");
    server.init("lab2/x");
    let discovery = "/lab/git/x/info/refs?service=git-upload-pack";
    let valid = server.token("lab", None, "r");
    assert_eq!(server.status(discovery, Some(&valid)), 200);
    let claims = |extra: Value| {
        let mut c = json!({"exp": now() + 600, "scope": "ws:lab#rw"});
        for (k, v) in extra.as_object().unwrap() {
            c[k] = v.clone();
        }
        c
    };
    let expired = hs256(TEST_SECRET, claims(json!({"exp": now() - 3600})));
    let not_yet = hs256(TEST_SECRET, claims(json!({"nbf": now() + 3600})));
    let no_exp = hs256(TEST_SECRET, json!({"scope": "ws:lab#rw"}));
    let wrong_key = hs256("some-other-secret-0123456789abcdef", claims(json!({})));
    let b64 = |v: &Value| base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(v.to_string());
    let alg_none = format!(
        "{}.{}.",
        b64(&json!({"alg": "none", "typ": "JWT"})),
        b64(&claims(json!({})))
    );
    let tampered = {
        let mut parts: Vec<String> = valid.split('.').map(str::to_owned).collect();
        parts[1] = b64(&claims(json!({"scope": "ws:lab#a"})));
        parts.join(".")
    };
    for (name, token) in [
        ("expired", &expired),
        ("not yet valid", &not_yet),
        ("without exp", &no_exp),
        ("wrong signature", &wrong_key),
        ("alg none", &alg_none),
        ("tampered claims", &tampered),
        ("garbage", &"not.a.jwt".to_owned()),
    ] {
        assert_eq!(server.status(discovery, Some(token)), 401, "{name} token");
    }
    // Valid tokens without the permission.
    let other_ws = hs256(TEST_SECRET, claims(json!({"scope": "ws:other#a"})));
    let prefix_ws = hs256(TEST_SECRET, claims(json!({"scope": "ws:la#a"})));
    let other_artifact = hs256(TEST_SECRET, claims(json!({"scope": "artifact:lab/y#a"})));
    for (name, token) in [
        ("another workspace", &other_ws),
        ("a prefix of the workspace", &prefix_ws),
        ("another artifact", &other_artifact),
    ] {
        assert_eq!(server.status(discovery, Some(token)), 403, "{name}");
    }
    let lab = hs256(TEST_SECRET, claims(json!({"scope": "ws:lab#a"})));
    assert_eq!(
        server.status("/lab2/git/x/info/refs?service=git-upload-pack", Some(&lab)),
        403,
        "ws:lab on lab2"
    );
    // Push is refused at discovery for a read token.
    assert_eq!(
        server.status(
            "/lab/git/x/info/refs?service=git-receive-pack",
            Some(&valid)
        ),
        403
    );
    // Existence is revealed only to those allowed to know.
    assert_eq!(
        server.status(
            "/lab/git/missing/info/refs?service=git-upload-pack",
            Some(&valid)
        ),
        404
    );
    assert_eq!(
        server.status(
            "/lab/git/missing/info/refs?service=git-upload-pack",
            Some(&other_ws)
        ),
        403
    );
    assert_eq!(
        server.status("/lab/git/missing/info/refs?service=git-upload-pack", None),
        401
    );
    // Path tricks never reach another repository.
    let admin_all = server.token("*", None, "a");
    for path in [
        "/lab/git/..%2fx/info/refs?service=git-upload-pack",
        "/%2e%2e/git/x/info/refs?service=git-upload-pack",
        "/lab/git/x%2f..%2f..%2flab2%2fx/info/refs?service=git-upload-pack",
        "/lab/../lab2/git/x/info/refs?service=git-upload-pack",
        "/lab/git/../x/info/refs?service=git-upload-pack",
        "/lab%2fx/git/x/info/refs?service=git-upload-pack",
        "/lab/artifacts/x/../x/git/info/refs?service=git-upload-pack",
    ] {
        assert_eq!(server.status(path, Some(&admin_all)), 404, "{path}");
    }
}

fn rpc_errors_are_clear(backend: &Backend) {
    let server = Server::start_on(backend);
    let admin = server.token("lab", None, "a");
    let writer = server.token("lab", None, "rw");
    assert_eq!(
        error_code(&server.rpc(Some(&admin), "drop_everything", json!({}))),
        -32601
    );
    assert_eq!(
        error_code(&server.rpc(Some(&admin), "enable_git", json!({}))),
        -32602
    );
    assert_eq!(
        error_code(&server.rpc(Some(&admin), "enable_git", json!({"artifact_id": "../etc"}))),
        -32602
    );
    assert_eq!(
        error_code(&server.rpc(
            Some(&admin),
            "enable_git",
            json!({"artifact_id": "lab/x", "bogus": 1})
        )),
        -32602
    );
    assert_eq!(
        error_code(&server.rpc(None, "enable_git", json!({"artifact_id": "lab/x"}))),
        -32001
    );
    assert_eq!(
        error_code(&server.rpc(Some(&writer), "enable_git", json!({"artifact_id": "lab/x"}))),
        -32003
    );
    let (status, body) = curl_post(
        &format!("{}/rpc", server.url),
        "application/json",
        b"{not json",
        &[],
    );
    assert_eq!(status, 200);
    assert_eq!(error_code(&serde_json::from_slice(&body).unwrap()), -32700);
}

backend_tests!(
    enable_git_imports_the_newest_version,
    credentials_are_asked_for_and_public_repositories,
    token_attacks_are_refused,
    rpc_errors_are_clear,
);

fn openssl(args: &[&str], dir: &Path) {
    let status = std::process::Command::new("openssl")
        .current_dir(dir)
        .args(args)
        .status()
        .unwrap();
    assert!(status.success(), "openssl {args:?}");
}

#[test]
fn rs256_and_es256_public_keys_with_issuer_and_audience() {
    let keys = TempDir::new().unwrap();
    let dir = keys.path();
    openssl(
        &[
            "genpkey",
            "-algorithm",
            "RSA",
            "-pkeyopt",
            "rsa_keygen_bits:2048",
            "-out",
            "rsa.pem",
        ],
        dir,
    );
    openssl(
        &["pkey", "-in", "rsa.pem", "-pubout", "-out", "rsa.pub.pem"],
        dir,
    );
    openssl(
        &[
            "genpkey",
            "-algorithm",
            "EC",
            "-pkeyopt",
            "ec_paramgen_curve:P-256",
            "-out",
            "ec.pem",
        ],
        dir,
    );
    openssl(
        &["pkey", "-in", "ec.pem", "-pubout", "-out", "ec.pub.pem"],
        dir,
    );
    let read = |name: &str| std::fs::read(dir.join(name)).unwrap();
    let sign = |alg: jsonwebtoken::Algorithm, key: jsonwebtoken::EncodingKey, claims: Value| {
        jsonwebtoken::encode(&jsonwebtoken::Header::new(alg), &claims, &key).unwrap()
    };
    let good = json!({"exp": now() + 600, "scope": "ws:lab#r", "iss": "hypha", "aud": "git"});
    let discovery = "/lab/git/x/info/refs?service=git-upload-pack";

    let rsa_pub = dir.join("rsa.pub.pem");
    let rsa_key = format!("--jwt-public-key={}", rsa_pub.display());
    let server = Server::start_on_with(
        &Backend::Fs,
        &[&rsa_key, "--jwt-issuer", "hypha", "--jwt-audience", "git"],
    );
    server.init("lab/x");
    let rs = |claims: Value| {
        sign(
            jsonwebtoken::Algorithm::RS256,
            jsonwebtoken::EncodingKey::from_rsa_pem(&read("rsa.pem")).unwrap(),
            claims,
        )
    };
    assert_eq!(server.status(discovery, Some(&rs(good.clone()))), 200);
    let mut wrong_aud = good.clone();
    wrong_aud["aud"] = json!("other");
    assert_eq!(
        server.status(discovery, Some(&rs(wrong_aud))),
        401,
        "wrong audience"
    );
    let mut wrong_iss = good.clone();
    wrong_iss["iss"] = json!("mallory");
    assert_eq!(
        server.status(discovery, Some(&rs(wrong_iss))),
        401,
        "wrong issuer"
    );
    // The classic confusion: an HS256 token whose secret is the server's public key.
    let confused = sign(
        jsonwebtoken::Algorithm::HS256,
        jsonwebtoken::EncodingKey::from_secret(&read("rsa.pub.pem")),
        good.clone(),
    );
    assert_eq!(
        server.status(discovery, Some(&confused)),
        401,
        "HS256 against an RSA key"
    );
    let es_token = sign(
        jsonwebtoken::Algorithm::ES256,
        jsonwebtoken::EncodingKey::from_ec_pem(&read("ec.pem")).unwrap(),
        good.clone(),
    );
    assert_eq!(
        server.status(discovery, Some(&es_token)),
        401,
        "a key of the wrong kind"
    );
    let git = Git::default();
    let work = TempDir::new().unwrap();
    let out = git.run(
        work.path(),
        &[
            "clone",
            "-q",
            &server.url_with_token("lab/x", &rs(good.clone())),
            "c",
        ],
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    drop(server);

    let ec_pub = dir.join("ec.pub.pem");
    let ec_key = format!("--jwt-public-key={}", ec_pub.display());
    let server = Server::start_on_with(&Backend::Fs, &[&ec_key]);
    server.init("lab/x");
    assert_eq!(server.status(discovery, Some(&es_token)), 200, "ES256");
    assert_eq!(
        server.status(discovery, Some(&rs(good))),
        401,
        "RS256 against an EC key"
    );
}
