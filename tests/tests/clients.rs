//! The client matrix: besides the git CLI (every other test), libgit2 (through pygit2) and
//! dulwich clone, fetch and push against the server on both backends, with the token as the
//! Basic password; what they did is checked with the git CLI.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::path::{Path, PathBuf};
use std::process::Command;

use artifact_git_e2e::*;

/// The virtualenv with pygit2 and dulwich (installed by `scripts/install-git-clients`).
fn python() -> PathBuf {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    let out = Command::new(root.join("scripts/install-git-clients"))
        .output()
        .expect("scripts/install-git-clients");
    assert!(
        out.status.success(),
        "installing the client libraries failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let venv = String::from_utf8(out.stdout).unwrap();
    root.join(venv.trim()).join("bin/python")
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

backend_tests!(libraries_clone_fetch_and_push);
