//! Git LFS with the real `git-lfs` client: uploads and downloads (straight to S3 where the
//! storage is S3, through the server on a filesystem), verification by hash, locks, pointer
//! checks on push, and large files on import.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::path::{Path, PathBuf};
use std::time::Duration;

use artifact_git_e2e::*;

const MIB: usize = 1 << 20;
const LFS_JSON: &str = "application/vnd.git-lfs+json";

fn sha256(data: &[u8]) -> String {
    sha256_hex(data)
}

/// A repository tracking `*.bin` with Git LFS, holding three files of 5, 20 and 50 MiB and two
/// ordinary files, committed on `main`.
fn lfs_work_tree(git: &Git, work: &Path) -> (PathBuf, Vec<(String, Vec<u8>)>) {
    let dir = work.join("source");
    git.ok(work, &["init", "-q", "-b", "main", dir.to_str().unwrap()]);
    git.ok(&dir, &["lfs", "track", "*.bin"]);
    let mut rng = Rng::new(17);
    let mut files = Vec::new();
    for (name, size) in [
        ("small.bin", 5 * MIB),
        ("medium.bin", 20 * MIB),
        ("large.bin", 50 * MIB),
    ] {
        let data = rng.bytes(size);
        std::fs::write(dir.join(name), &data).unwrap();
        files.push((name.to_owned(), data));
    }
    std::fs::write(dir.join("README.md"), "weights and notes\n").unwrap();
    std::fs::write(dir.join("notes.txt"), "plain text, kept in git\n").unwrap();
    git.ok(&dir, &["add", "."]);
    git.ok(&dir, &["commit", "-q", "-m", "model files"]);
    (dir, files)
}

fn assert_same_files(clone: &Path, files: &[(String, Vec<u8>)]) {
    for (name, data) in files {
        let got = std::fs::read(clone.join(name)).unwrap();
        assert!(
            got == *data,
            "{name}: {} bytes, expected {}",
            got.len(),
            data.len()
        );
    }
}

fn lfs_round_trip(backend: &Backend) {
    let logs = TempDir::new().unwrap();
    let log = logs.path().join("server.log");
    let server = Server::start_on_launched(
        backend,
        &[],
        &Launch {
            log_file: Some(log.clone()),
            log_filter: Some("debug".into()),
            ..Launch::default()
        },
    );
    server.init("lab/model");
    let git = Git::default();
    git.lfs_install();
    let work = TempDir::new().unwrap();
    let (source, files) = lfs_work_tree(&git, work.path());
    let url = server.repo_url("lab/model");
    git.ok(&source, &["remote", "add", "origin", &url]);
    git.ok(&source, &["push", "-q", "origin", "main"]);
    let total: u64 = files.iter().map(|(_, d)| d.len() as u64).sum();
    assert_eq!(server.metric("artifact_git_lfs_upload_bytes_total"), total);
    let proxied_in = server.metric("artifact_git_lfs_proxied_in_bytes_total");
    match backend {
        // On S3 the bytes go straight to the bucket: none through the server.
        Backend::S3 { .. } => assert_eq!(proxied_in, 0, "LFS bytes went through the server"),
        Backend::Fs => assert_eq!(proxied_in, total),
    }
    // The git objects are pointers.
    let pointer = git.ok(&source, &["cat-file", "-p", "HEAD:large.bin"]);
    assert!(
        pointer.starts_with("version https://git-lfs.github.com/spec/v1\n"),
        "{pointer}"
    );
    // A clone with smudge has every file back.
    let clone = work.path().join("clone");
    git.ok(work.path(), &["clone", "-q", &url, clone.to_str().unwrap()]);
    assert_same_files(&clone, &files);
    git.ok(&clone, &["lfs", "fsck"]);
    git.ok(&clone, &["fsck", "--strict"]);
    // Without smudge, then `git lfs pull`, from the repository's other URL form.
    let lazy = work.path().join("lazy");
    let other_form = url.replace("/lab/git/model", "/lab/artifacts/model/git");
    let mut cmd = git.command(work.path());
    cmd.env("GIT_LFS_SKIP_SMUDGE", "1")
        .args(["clone", "-q", &other_form, lazy.to_str().unwrap()]);
    assert!(cmd.output().unwrap().status.success());
    let pointer_file = std::fs::read_to_string(lazy.join("medium.bin")).unwrap();
    assert!(pointer_file.contains(&sha256(&files[1].1)));
    git.ok(&lazy, &["lfs", "pull"]);
    assert_same_files(&lazy, &files);
    git.ok(&lazy, &["lfs", "fsck"]);
    let proxied_out = server.metric("artifact_git_lfs_proxied_out_bytes_total");
    match backend {
        Backend::S3 { .. } => assert_eq!(proxied_out, 0, "LFS bytes came through the server"),
        Backend::Fs => assert_eq!(proxied_out, 2 * total),
    }
    // A second push of the same objects uploads nothing.
    let stored = server.metric("artifact_git_lfs_upload_bytes_total");
    git.ok(&source, &["lfs", "push", "--all", "origin"]);
    commit_file(&git, &source, "more.txt", "more\n", "more");
    git.ok(&source, &["push", "-q", "origin", "main"]);
    assert_eq!(server.metric("artifact_git_lfs_upload_bytes_total"), stored);
    // The stored prefix is a bare repository whose LFS objects stock tools find.
    let bare = server.bare_repo("lab/model");
    let oid = sha256(&files[0].1);
    assert!(bare
        .join("lfs/objects")
        .join(&oid[..2])
        .join(&oid[2..4])
        .join(&oid)
        .exists());
}

/// A batch request with curl; the JSON answer.
fn batch(
    url: &str,
    token: Option<&str>,
    operation: &str,
    objects: &[(String, u64)],
) -> (u16, serde_json::Value) {
    let objects: Vec<_> = objects
        .iter()
        .map(|(oid, size)| serde_json::json!({"oid": oid, "size": size}))
        .collect();
    let body =
        serde_json::json!({"operation": operation, "transfers": ["basic"], "objects": objects});
    let auth = token.map(|t| format!("Authorization: Bearer {t}"));
    let mut extra = vec!["-H", "Accept: application/vnd.git-lfs+json"];
    if let Some(a) = &auth {
        extra.extend(["-H", a.as_str()]);
    }
    let (status, out) = curl_post(
        &format!("{url}/info/lfs/objects/batch"),
        LFS_JSON,
        body.to_string().as_bytes(),
        &extra,
    );
    (
        status,
        serde_json::from_slice(&out).unwrap_or(serde_json::Value::Null),
    )
}

/// Send `body` to an action (`PUT` for uploads) with its headers; the status.
fn put_to(action: &serde_json::Value, body: &[u8], token: Option<&str>) -> u16 {
    let dir = TempDir::new().unwrap();
    let file = dir.path().join("body");
    std::fs::write(&file, body).unwrap();
    let mut cmd = std::process::Command::new("curl");
    // As `git lfs` sends it (curl's default form type would make the S3 test server parse
    // the body as a form).
    cmd.args([
        "-s",
        "-o",
        "/dev/null",
        "-w",
        "%{http_code}",
        "-X",
        "PUT",
        "-H",
        "Expect:",
    ])
    .args(["-H", "Content-Type: application/octet-stream"]);
    if let Some(headers) = action["header"].as_object() {
        for (k, v) in headers
            .iter()
            .filter(|(k, _)| !k.eq_ignore_ascii_case("content-length"))
        {
            cmd.args(["-H", &format!("{k}: {}", v.as_str().unwrap_or_default())]);
        }
    }
    if let Some(t) = token {
        cmd.args(["-H", &format!("Authorization: Bearer {t}")]);
    }
    let out = cmd
        .arg("--data-binary")
        .arg(format!("@{}", file.display()))
        .arg(action["href"].as_str().unwrap())
        .output()
        .unwrap();
    String::from_utf8_lossy(&out.stdout)
        .trim()
        .parse()
        .unwrap_or(0)
}

fn verify(action: &serde_json::Value, oid: &str, size: u64, token: &str) -> u16 {
    let body = serde_json::json!({"oid": oid, "size": size}).to_string();
    let auth = format!("Authorization: Bearer {token}");
    curl_post(
        action["href"].as_str().unwrap(),
        LFS_JSON,
        body.as_bytes(),
        &["-H", &auth],
    )
    .0
}

fn tampered_and_missized_uploads_are_refused(backend: &Backend) {
    let server = Server::start_on(backend);
    server.init("lab/tamper");
    let url = server.plain_url("lab/tamper");
    let token = server.token("lab", None, "rw");
    let data = b"the real model weights".repeat(1000);
    let oid = sha256(&data);
    let size = data.len() as u64;
    let (status, answer) = batch(&url, Some(&token), "upload", &[(oid.clone(), size)]);
    assert_eq!(status, 200, "{answer}");
    let actions = &answer["objects"][0]["actions"];
    // Other bytes of the same size at the upload URL, then verify: refused.
    let mut other = data.clone();
    other[0] ^= 1;
    let put = put_to(
        &actions["upload"],
        &other,
        match backend {
            Backend::Fs => Some(&token),
            _ => None,
        },
    );
    match backend {
        // The server hashes what it receives: refused at once.
        Backend::Fs => assert_eq!(put, 422),
        Backend::S3 { .. } => {
            assert_eq!(put, 200);
            assert_eq!(verify(&actions["verify"], &oid, size, &token), 422);
        }
    }
    let (_, download) = batch(&url, Some(&token), "download", &[(oid.clone(), size)]);
    assert_eq!(download["objects"][0]["error"]["code"], 404, "{download}");
    // The right bytes but a wrong size.
    let (_, answer) = batch(&url, Some(&token), "upload", &[(oid.clone(), size + 1)]);
    let actions = &answer["objects"][0]["actions"];
    let put = put_to(
        &actions["upload"],
        &data,
        match backend {
            Backend::Fs => Some(&token),
            _ => None,
        },
    );
    match backend {
        Backend::Fs => assert_eq!(put, 422),
        Backend::S3 { .. } => assert_ne!(verify(&actions["verify"], &oid, size + 1, &token), 200),
    }
    let (_, download) = batch(&url, Some(&token), "download", &[(oid.clone(), size)]);
    assert_eq!(download["objects"][0]["error"]["code"], 404);
    // Invalid oids and sizes get per-object errors; the valid object beside them an answer.
    let (status, answer) = batch(
        &url,
        Some(&token),
        "upload",
        &[("../../../packed-refs".into(), 1), (oid.clone(), size)],
    );
    assert_eq!(status, 200);
    assert_eq!(answer["objects"][0]["error"]["code"], 422);
    assert!(answer["objects"][1]["actions"]["upload"].is_object());
    // Finally the real upload is stored and served.
    let actions = &answer["objects"][1]["actions"];
    let put = put_to(
        &actions["upload"],
        &data,
        match backend {
            Backend::Fs => Some(&token),
            _ => None,
        },
    );
    assert_eq!(put, 200);
    assert_eq!(verify(&actions["verify"], &oid, size, &token), 200);
    let (_, download) = batch(&url, Some(&token), "download", &[(oid, size)]);
    assert!(
        download["objects"][0]["actions"]["download"].is_object(),
        "{download}"
    );
}

fn lfs_authentication(backend: &Backend) {
    let server = Server::start_on(backend);
    server.init("lab/private");
    server.cli(&["init", "lab/open", "--public"]);
    let oid = sha256(b"x");
    let objects = [(oid, 1u64)];
    // No credentials: 401 asking for them, as git lfs expects.
    let out = std::process::Command::new("curl")
        .args([
            "-s",
            "-D",
            "-",
            "-o",
            "/dev/null",
            "-X",
            "POST",
            "-H",
            &format!("Content-Type: {LFS_JSON}"),
            "-d",
        ])
        .arg(r#"{"operation":"download","objects":[]}"#)
        .arg(format!(
            "{}/info/lfs/objects/batch",
            server.plain_url("lab/private")
        ))
        .output()
        .unwrap();
    let head = String::from_utf8_lossy(&out.stdout).to_lowercase();
    assert!(head.starts_with("http/1.1 401"), "{head}");
    assert!(head.contains("lfs-authenticate: basic"), "{head}");
    // Read access: downloads, not uploads; the media type with a charset is the same type.
    let read = server.token("lab", None, "r");
    let body =
        serde_json::json!({"operation": "download", "objects": [{"oid": objects[0].0, "size": 1}]});
    let (status, answer) = curl_post(
        &format!("{}/info/lfs/objects/batch", server.plain_url("lab/private")),
        &format!("{LFS_JSON}; charset=utf-8"),
        body.to_string().as_bytes(),
        &[
            "-H",
            &format!("Authorization: Bearer {read}"),
            "-H",
            &format!("Accept: {LFS_JSON}; charset=utf-8"),
        ],
    );
    assert_eq!(status, 200, "{}", String::from_utf8_lossy(&answer));
    assert_eq!(
        batch(
            &server.plain_url("lab/private"),
            Some(&read),
            "download",
            &objects
        )
        .0,
        200
    );
    assert_eq!(
        batch(
            &server.plain_url("lab/private"),
            Some(&read),
            "upload",
            &objects
        )
        .0,
        403
    );
    // Another workspace's token: refused.
    let other = server.token("other", None, "rw");
    assert_eq!(
        batch(
            &server.plain_url("lab/private"),
            Some(&other),
            "download",
            &objects
        )
        .0,
        403
    );
    // A public repository: anonymous downloads only.
    assert_eq!(
        batch(&server.plain_url("lab/open"), None, "download", &objects).0,
        200
    );
    assert_eq!(
        batch(&server.plain_url("lab/open"), None, "upload", &objects).0,
        401
    );
}

fn pointers_to_missing_objects_are_refused(backend: &Backend) {
    let f = Fixture::new(backend, &[], "lab/pointers", 5, 19);
    let before = f.remote_refs();
    let fake = format!(
        "version https://git-lfs.github.com/spec/v1\noid sha256:{}\nsize 1234\n",
        sha256(b"never uploaded")
    );
    std::fs::write(f.source.join("weights.bin"), &fake).unwrap();
    f.git.ok(&f.source, &["add", "weights.bin"]);
    f.git.ok(
        &f.source,
        &["commit", "-q", "-m", "a pointer without its object"],
    );
    let err = f.git.fails(&f.source, &["push", "origin", "main"]);
    assert!(
        err.contains("Git LFS pointers to objects the server does not have"),
        "{err}"
    );
    assert!(err.contains(&sha256(b"never uploaded")), "{err}");
    assert_eq!(f.remote_refs(), before);
}

#[test]
fn the_pointer_check_can_be_turned_off() {
    let f = Fixture::new(
        &Backend::Fs,
        &["--lfs-check-pointers", "false"],
        "lab/nocheck",
        5,
        23,
    );
    let fake = format!(
        "version https://git-lfs.github.com/spec/v1\noid sha256:{}\nsize 1\n",
        sha256(b"y")
    );
    std::fs::write(f.source.join("w.bin"), fake).unwrap();
    f.git.ok(&f.source, &["add", "w.bin"]);
    f.git.ok(&f.source, &["commit", "-q", "-m", "pointer"]);
    f.git.ok(&f.source, &["push", "-q", "origin", "main"]);
}

/// `git lfs` as one user, with a token naming them.
fn lfs_as(git: &Git, dir: &Path, url: &str, args: &[&str]) -> std::process::Output {
    git.command(dir)
        .args(["-c", &format!("remote.origin.url={url}")])
        .args(args)
        .output()
        .unwrap()
}

fn locks_are_exclusive(backend: &Backend) {
    let server = Server::start_on(backend);
    server.init("lab/locks");
    let git = Git::default();
    git.lfs_install();
    let work = TempDir::new().unwrap();
    let (source, _) = lfs_work_tree(&git, work.path());
    let alice = server.url_with_token(
        "lab/locks",
        &server.token_for("lab", None, "rw", Some("alice")),
    );
    let bob = server.url_with_token(
        "lab/locks",
        &server.token_for("lab", None, "rw", Some("bob")),
    );
    let admin = server.url_with_token(
        "lab/locks",
        &server.token_for("lab", None, "a", Some("root")),
    );
    git.ok(&source, &["remote", "add", "origin", &alice]);
    git.ok(&source, &["push", "-q", "origin", "main"]);
    let out = lfs_as(&git, &source, &alice, &["lfs", "lock", "large.bin"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    // Bob cannot take it.
    let out = lfs_as(&git, &source, &bob, &["lfs", "lock", "large.bin"]);
    assert!(!out.status.success());
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("already"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    // Everybody sees it.
    let listed = lfs_as(&git, &source, &bob, &["lfs", "locks"]);
    let text = String::from_utf8_lossy(&listed.stdout);
    assert!(
        text.contains("large.bin") && text.contains("alice"),
        "{text}"
    );
    // Verify: ours for alice, theirs for bob.
    let ours = lfs_as(&git, &source, &alice, &["lfs", "locks", "--verify"]);
    assert!(
        String::from_utf8_lossy(&ours.stdout).contains("O large.bin"),
        "{}",
        String::from_utf8_lossy(&ours.stdout)
    );
    let theirs = lfs_as(&git, &source, &bob, &["lfs", "locks", "--verify"]);
    assert!(!String::from_utf8_lossy(&theirs.stdout).contains("O large.bin"));
    // Bob cannot unlock it, even with --force without admin rights; the admin can.
    let out = lfs_as(&git, &source, &bob, &["lfs", "unlock", "large.bin"]);
    assert!(!out.status.success());
    let out = lfs_as(
        &git,
        &source,
        &bob,
        &["lfs", "unlock", "--force", "large.bin"],
    );
    assert!(!out.status.success());
    let out = lfs_as(
        &git,
        &source,
        &admin,
        &["lfs", "unlock", "--force", "large.bin"],
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let listed = lfs_as(&git, &source, &bob, &["lfs", "locks"]);
    assert!(!String::from_utf8_lossy(&listed.stdout).contains("large.bin"));
    // Two replicas racing to lock one path: exactly one wins.
    let replica = server.replica();
    let token = server.token_for("lab", None, "rw", Some("racer"));
    let winners: usize = std::thread::scope(|scope| {
        let handles: Vec<_> = (0..8)
            .map(|i| {
                let base = if i % 2 == 0 {
                    server.plain_url("lab/locks")
                } else {
                    replica.plain_url("lab/locks")
                };
                let token = &token;
                scope.spawn(move || {
                    let auth = format!("Authorization: Bearer {token}");
                    curl_post(
                        &format!("{base}/info/lfs/locks"),
                        LFS_JSON,
                        br#"{"path":"contended.bin"}"#,
                        &["-H", &auth],
                    )
                    .0
                })
            })
            .collect();
        handles
            .into_iter()
            .map(|h| h.join().unwrap())
            .filter(|s| *s == 201)
            .count()
    });
    assert_eq!(winners, 1);
    lock_paths_are_repository_paths(&server);
}

/// An upload through the server that the client cuts short is the client's failure: a 4xx
/// it can read, nothing stored, and the same object can be uploaded whole afterwards.
fn cut_short_uploads_are_the_clients_failure(backend: &Backend) {
    use std::io::{Read, Write};
    // On S3, uploads above 1 MiB go through the server then (to presigned URLs otherwise).
    let server = Server::start_on_with(backend, &["--lfs-proxy-above", "1MiB"]);
    server.init("lab/cut");
    let token = server.token_for("lab", None, "rw", Some("uploader"));
    let data = Rng::new(71).bytes(2 << 20);
    let oid = sha256(&data);
    let size = data.len() as u64;
    let (status, answer) = batch(
        &server.plain_url("lab/cut"),
        Some(&token),
        "upload",
        &[(oid.clone(), size)],
    );
    assert_eq!(status, 200, "{answer}");
    let action = &answer["objects"][0]["actions"]["upload"];
    let href = action["href"].as_str().unwrap().to_owned();
    let path = href
        .strip_prefix(&server.url)
        .expect("uploads go through the server");
    let mut head = format!(
        "PUT {path} HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {token}\r\nContent-Type: application/octet-stream\r\nContent-Length: {size}\r\nConnection: close\r\n"
    );
    for (k, v) in action["header"].as_object().into_iter().flatten() {
        head.push_str(&format!("{k}: {}\r\n", v.as_str().unwrap()));
    }
    head.push_str("\r\n");
    let addr = server.url.trim_start_matches("http://").to_owned();
    let mut socket = std::net::TcpStream::connect(&addr).unwrap();
    socket.write_all(head.as_bytes()).unwrap();
    socket.write_all(&data[..100_000]).unwrap();
    let _ = socket.shutdown(std::net::Shutdown::Write);
    let mut reply = String::new();
    let _ = socket.read_to_string(&mut reply);
    let status_line = reply.lines().next().unwrap_or_default().to_owned();
    assert!(status_line.contains(" 400 "), "{reply}");
    assert!(reply.contains("cut short"), "{reply}");
    // Nothing was stored: the object is still to be uploaded, and uploads whole.
    let (_, again) = batch(
        &server.plain_url("lab/cut"),
        Some(&token),
        "upload",
        &[(oid, size)],
    );
    let action = &again["objects"][0]["actions"]["upload"];
    assert!(action.is_object(), "{again}");
}

/// A lock names a file of the repository: what cannot be one is refused (422), other
/// spellings of a path are the path, so one file has one lock.
fn lock_paths_are_repository_paths(server: &Server) {
    let token = server.token_for("lab", None, "rw", Some("paths"));
    let auth = format!("Authorization: Bearer {token}");
    let lock = |path: &str| {
        let body = serde_json::json!({ "path": path }).to_string();
        let url = format!("{}/info/lfs/locks", server.plain_url("lab/locks"));
        let (status, answer) = curl_post(&url, LFS_JSON, body.as_bytes(), &["-H", &auth]);
        let answer: serde_json::Value = serde_json::from_slice(&answer).unwrap_or_default();
        (status, answer)
    };
    for bad in [
        "../../etc/passwd",
        "/abs/x",
        "a/../../b",
        ".git/config",
        "./",
        "a\0b",
    ] {
        let (status, answer) = lock(bad);
        assert_eq!(status, 422, "{bad}: {answer}");
        assert!(answer["message"].is_string(), "{bad}: {answer}");
    }
    for (spelled, stored) in [
        ("a//b", "a/b"),
        ("./c", "c"),
        ("data/./x.bin", "data/x.bin"),
    ] {
        let (status, answer) = lock(spelled);
        assert_eq!(status, 201, "{spelled}: {answer}");
        assert_eq!(answer["lock"]["path"], stored, "{spelled}");
    }
    // The same file under another spelling is locked already.
    for other in ["data/x.bin", "data//x.bin", "./data/x.bin"] {
        let (status, answer) = lock(other);
        assert_eq!(status, 409, "{other}: {answer}");
        assert_eq!(answer["lock"]["path"], "data/x.bin", "{other}");
    }
}

#[test]
fn s3_expired_urls_are_asked_for_again() {
    let backend = Backend::s3();
    // Actions valid for 6 s: git lfs treats those expiring within 5 s as expired, so after the
    // first object's upload the others' have to be asked for again. The first upload takes
    // longer than that margin; its verify must still be valid after it (a verify that expired
    // with the upload URLs sent git lfs back to upload the object again, and again).
    let server = Server::start_on_with(&backend, &["--lfs-url-ttl", "6s"]);
    server.init("lab/expire");
    let git = Git::default();
    git.lfs_install();
    let work = TempDir::new().unwrap();
    let dir = work.path().join("source");
    git.ok(
        work.path(),
        &["init", "-q", "-b", "main", dir.to_str().unwrap()],
    );
    git.ok(&dir, &["lfs", "track", "*.bin"]);
    let mut rng = Rng::new(29);
    let mut files = Vec::new();
    for (name, size) in [("a-first.bin", 120 * MIB), ("b.bin", MIB), ("c.bin", MIB)] {
        let data = rng.bytes(size);
        std::fs::write(dir.join(name), &data).unwrap();
        files.push((name.to_owned(), data));
    }
    git.ok(&dir, &["add", "."]);
    git.ok(&dir, &["commit", "-q", "-m", "files"]);
    let url = server.repo_url("lab/expire");
    git.ok(&dir, &["remote", "add", "origin", &url]);
    git.ok(
        &dir,
        &[
            "-c",
            "lfs.concurrenttransfers=1",
            "push",
            "-q",
            "origin",
            "main",
        ],
    );
    let batches = server.metric("artifact_git_lfs_batches_total");
    eprintln!("batch requests for 3 objects with 6 s URLs: {batches}");
    assert!(batches >= 2, "the expired actions were not asked for again");
    assert!(
        batches <= 3,
        "{batches} batches: objects were uploaded again after their upload"
    );
    let clone = work.path().join("clone");
    git.ok(work.path(), &["clone", "-q", &url, clone.to_str().unwrap()]);
    assert_same_files(&clone, &files);
}

fn large_files_are_imported_into_lfs(backend: &Backend) {
    let server = Server::start_on(backend);
    let mut rng = Rng::new(31);
    let big = rng.bytes(20 * MIB);
    server.put_artifact_file("lab/data", 1, "big file.bin", &big);
    server.put_artifact_file("lab/data", 1, "small.txt", b"a small file\n");
    server.put_artifact_file("lab/data", 1, "dir/medium.csv", &rng.bytes(100_000));
    let admin = server.token("lab", None, "a");
    let answer = server.rpc(
        Some(&admin),
        "enable_git",
        serde_json::json!({"artifact_id": "lab/data"}),
    );
    let result = &answer["result"];
    assert_eq!(result["imported_files"], 3, "{answer}");
    assert_eq!(result["lfs_files"], 1, "{answer}");
    let git = Git::default();
    git.lfs_install();
    let work = TempDir::new().unwrap();
    let clone = work.path().join("clone");
    git.ok(
        work.path(),
        &[
            "clone",
            "-q",
            &server.repo_url("lab/data"),
            clone.to_str().unwrap(),
        ],
    );
    assert!(std::fs::read(clone.join("big file.bin")).unwrap() == big);
    assert_eq!(
        std::fs::read(clone.join("small.txt")).unwrap(),
        b"a small file\n"
    );
    let pointer = git.ok(&clone, &["cat-file", "-p", "HEAD:big file.bin"]);
    assert!(
        pointer.contains(&sha256(&big)) && pointer.contains("size 20971520"),
        "{pointer}"
    );
    let attributes = std::fs::read_to_string(clone.join(".gitattributes")).unwrap();
    assert!(
        attributes.contains("/big[[:space:]]file.bin filter=lfs"),
        "{attributes}"
    );
    git.ok(&clone, &["lfs", "fsck"]);
    // The repository stays small: the big file is not in the packs.
    let bare = server.bare_repo("lab/data");
    let pack_bytes: u64 = std::fs::read_dir(bare.join("objects/pack"))
        .unwrap()
        .filter_map(Result::ok)
        .map(|e| e.metadata().map(|m| m.len()).unwrap_or(0))
        .sum();
    assert!(pack_bytes < 2 * MIB as u64, "{pack_bytes} bytes of packs");
    let _ = Duration::ZERO;
}

#[test]
fn large_uploads_to_s3_go_through_the_server_in_parts() {
    let backend = Backend::s3();
    // Objects above 1 MiB come through the server, which streams them to S3 (in parts when
    // larger than a part) while hashing them, one 16 MiB part in memory each: with memory for
    // two at a time, the third is told to come back (503), which `git lfs` does.
    let server = Server::start_on_with(
        &backend,
        &[
            "--lfs-proxy-above",
            "1MiB",
            "--memory-budget",
            "36MiB",
            "--fetch-memory",
            "4MiB",
        ],
    );
    server.init("lab/big");
    let git = Git::default();
    git.lfs_install();
    let work = TempDir::new().unwrap();
    let (source, files) = lfs_work_tree(&git, work.path());
    let url = server.repo_url("lab/big");
    git.ok(&source, &["remote", "add", "origin", &url]);
    git.ok(&source, &["push", "-q", "origin", "main"]);
    let above: u64 = files
        .iter()
        .map(|(_, d)| d.len() as u64)
        .filter(|n| *n > MIB as u64)
        .sum();
    assert_eq!(
        server.metric("artifact_git_lfs_proxied_in_bytes_total"),
        above
    );
    eprintln!(
        "uploads told to come back: {}",
        server.metric("artifact_git_rejected_busy_total")
    );
    let clone = work.path().join("clone");
    git.ok(work.path(), &["clone", "-q", &url, clone.to_str().unwrap()]);
    assert_same_files(&clone, &files);
    // Other bytes through the server: refused once hashed, the multipart upload abandoned.
    let token = server.token("lab", None, "rw");
    let plain = server.plain_url("lab/big");
    let data = Rng::new(37).bytes(24 * MIB);
    let (oid, size) = (sha256(&data), data.len() as u64);
    let (_, answer) = batch(&plain, Some(&token), "upload", &[(oid.clone(), size)]);
    let actions = &answer["objects"][0]["actions"];
    assert!(
        actions["upload"]["href"]
            .as_str()
            .unwrap()
            .starts_with(&server.url),
        "{answer}"
    );
    let mut other = data.clone();
    other[size as usize - 1] ^= 1;
    assert_eq!(put_to(&actions["upload"], &other, Some(&token)), 422);
    let (_, download) = batch(&plain, Some(&token), "download", &[(oid.clone(), size)]);
    assert_eq!(download["objects"][0]["error"]["code"], 404, "{download}");
    assert_eq!(put_to(&actions["upload"], &data, Some(&token)), 200);
    let (_, download) = batch(&plain, Some(&token), "download", &[(oid, size)]);
    assert!(
        download["objects"][0]["actions"]["download"].is_object(),
        "{download}"
    );
}

backend_tests!(
    lfs_round_trip,
    tampered_and_missized_uploads_are_refused,
    lfs_authentication,
    pointers_to_missing_objects_are_refused,
    locks_are_exclusive,
    cut_short_uploads_are_the_clients_failure,
    large_files_are_imported_into_lfs,
);
