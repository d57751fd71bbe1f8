//! The client matrix: besides the git CLI (every other test), libgit2 (through pygit2) and
//! dulwich clone, fetch and push against the server on both backends, with the token as the
//! Basic password; gitoxide's `gix` clones (protocol v1 and v2, shallow) and fetches over
//! HTTPS with the token as a header. What they did is checked with the git CLI.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::path::{Path, PathBuf};
use std::process::Command;

use artifact_git_e2e::*;

/// A tool `scripts/install-git-clients` installs (which `scripts/test` runs first), under
/// `.ci/`.
fn installed(rel: &str) -> PathBuf {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../.ci")
        .join(rel);
    assert!(
        path.exists(),
        "{} is missing: run scripts/install-git-clients (scripts/test does)",
        path.display()
    );
    path
}

/// The virtualenv's python, with pygit2 and dulwich.
fn python() -> PathBuf {
    installed("clientsvenv/bin/python")
}

/// gitoxide's `gix`.
fn gix() -> PathBuf {
    installed("gix/bin/gix")
}

fn gix_clones_and_fetches_over_https(backend: &Backend) {
    let gix = gix();
    let dir = TempDir::new().unwrap();
    let tls = certificate(dir.path(), "gix");
    let server = Server::start_on_with(
        backend,
        &[
            "--tls-cert",
            tls.cert.to_str().unwrap(),
            "--tls-key",
            tls.key.to_str().unwrap(),
        ],
    );
    server.init("lab/gix");
    let token = server.token("lab", Some("gix"), "rw");
    let header = format!("http.extraHeader=Authorization: Bearer {token}");
    let ca = format!("http.sslCAInfo={}", tls.ca.display());
    let url = server.plain_url("lab/gix");
    let git = Git::default();
    let work = TempDir::new().unwrap();
    let src = work.path().join("src");
    std::fs::create_dir(&src).unwrap();
    make_history(&git, &src, 150, 3);
    git.ok(
        &src,
        &["-c", &header, "-c", &ca, "push", "-q", &url, "main"],
    );
    let run = |dir: &Path, args: &[&str]| {
        let out = Command::new(&gix)
            .current_dir(dir)
            .env("HOME", git.home())
            // gix verifies with the platform's roots, which `SSL_CERT_FILE` names here.
            .env("SSL_CERT_FILE", &tls.ca)
            // Its reflog entries need a committer.
            .args([
                "-c",
                "user.name=Ada Tester",
                "-c",
                "user.email=ada@example.com",
            ])
            .args(["-c", &header, "-c", &ca])
            .args(args)
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "gix {args:?}: {}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
    };
    for (name, version) in [("v2", "2"), ("v1", "1")] {
        let dest = work.path().join(name);
        let protocol = format!("protocol.version={version}");
        run(
            work.path(),
            &["-c", &protocol, "clone", &url, dest.to_str().unwrap()],
        );
        assert_eq!(
            git.rev(&dest, "HEAD"),
            git.rev(&src, "main"),
            "gix clone {name}"
        );
        git.ok(&dest, &["fsck", "--strict"]);
    }
    let shallow = work.path().join("shallow");
    run(
        work.path(),
        &["clone", "--depth", "1", &url, shallow.to_str().unwrap()],
    );
    assert_eq!(
        git.ok(&shallow, &["rev-list", "--count", "HEAD"]).trim(),
        "1"
    );
    assert!(shallow.join(".git/shallow").exists());
    let newer = commit_file(&git, &src, "newer.txt", "newer\n", "newer");
    git.ok(
        &src,
        &["-c", &header, "-c", &ca, "push", "-q", &url, "main"],
    );
    let v2 = work.path().join("v2");
    run(&v2, &["fetch"]);
    assert_eq!(git.rev(&v2, "refs/remotes/origin/main"), newer, "gix fetch");
    git.ok(&v2, &["fsck", "--strict"]);
}

fn client(python: &Path, args: &[&str]) -> String {
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("clients/client.py");
    let out = Command::new(python)
        .arg(script)
        .args(args)
        .env("HOME", std::env::temp_dir())
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "client.py {args:?}: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn libraries_clone_fetch_and_push(backend: &Backend) {
    let python = python();
    let f = Fixture::new(backend, &[], "lab/clients", 200, 9);
    let (git, src, work) = (&f.git, f.source.as_path(), f.work.path());
    let token = f.server.token("lab", Some("clients"), "rw");
    let url = f.server.plain_url("lab/clients");
    for lib in ["pygit2", "dulwich"] {
        // Clone: the same history as the git CLI's clone, and no token in the config.
        let dest = work.join(format!("{lib}-clone"));
        let version = client(
            &python,
            &[lib, "clone", &url, &token, dest.to_str().unwrap()],
        );
        eprintln!("{}", version.trim());
        assert_eq!(git.rev(&dest, "HEAD"), git.rev(src, "main"), "{lib} clone");
        git.ok(&dest, &["fsck", "--strict"]);
        let config = std::fs::read_to_string(dest.join(".git/config")).unwrap();
        assert!(!config.contains(&token), "{lib} stored the token");

        // Push a commit made in its clone; the server has it, a fresh git clone sees it.
        git.ok(&dest, &["checkout", "-q", "-B", &format!("{lib}-work")]);
        let pushed = commit_file(git, &dest, &format!("{lib}.txt"), "from a library\n", lib);
        client(
            &python,
            &[
                lib,
                "push",
                &url,
                &token,
                dest.to_str().unwrap(),
                &format!("{lib}-work"),
            ],
        );
        let remote = git.ok(
            src,
            &["ls-remote", "origin", &format!("refs/heads/{lib}-work")],
        );
        assert!(remote.starts_with(&pushed), "{lib} push: {remote}");

        // Fetch what someone else pushed meanwhile.
        git.ok(src, &["checkout", "-q", "main"]);
        let newer = commit_file(git, src, &format!("after-{lib}.txt"), "newer\n", "newer");
        git.ok(src, &["push", "-q", "origin", "main"]);
        client(
            &python,
            &[lib, "fetch", &url, &token, dest.to_str().unwrap()],
        );
        assert_eq!(
            git.rev(&dest, "refs/remotes/origin/main"),
            newer,
            "{lib} fetch"
        );
        git.ok(&dest, &["fsck", "--strict"]);
    }
    let fresh = f.fresh_clone("after-libraries", true);
    for lib in ["pygit2", "dulwich"] {
        git.ok(&fresh, &["rev-parse", &format!("refs/heads/{lib}-work")]);
    }
    // A read token cannot push through a library either.
    let read = f.server.token("lab", Some("clients"), "r");
    let dest = work.join("pygit2-clone");
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("clients/client.py");
    let out = Command::new(&python)
        .arg(script)
        .args([
            "dulwich",
            "push",
            &url,
            &read,
            dest.to_str().unwrap(),
            "pygit2-work",
        ])
        .output()
        .unwrap();
    assert!(!out.status.success());
}

backend_tests!(
    libraries_clone_fetch_and_push,
    gix_clones_and_fetches_over_https
);
