//! Object formats side by side: SHA-256 repositories created every way (`enable_git
//! {object_format}`, `init --object-format`, a SHA-256 client's push-to-create) next to SHA-1
//! ones on the same server; each stays a bare repository of its format that stock git opens;
//! clients of the other format are refused in git's own words, and ids of the wrong length
//! anywhere (commands, wants, the API) are refused without changing anything.
//!
//! Everything else a SHA-256 repository does is the rest of the suite run on SHA-256
//! (`scripts/test-sha256`); this file holds what only exists with two formats.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::path::Path;

use artifact_git_e2e::*;
use serde_json::json;

/// A git that speaks SHA-256 over HTTP with every feature used here (push-to-create's
/// advertisement offers two formats; git 2.39 reads only the first).
fn recent_git() -> Git {
    Git::new(
        git_at_least(2, 45).expect("a recent git (the test machines' /usr/local/bin/git is 2.47)"),
    )
}

/// A work tree of `format` with two commits and an annotated tag.
fn source(git: &Git, dir: &Path, format: &str) -> std::path::PathBuf {
    let src = dir.join(format!("src-{format}"));
    let format_arg = format!("--object-format={format}");
    git.ok(
        dir,
        &[
            "init",
            "-q",
            "-b",
            "main",
            &format_arg,
            src.to_str().unwrap(),
        ],
    );
    commit_file(git, &src, "a.txt", "one\n", "first");
    commit_file(git, &src, "b/c.txt", "two\n", "second");
    git.ok(&src, &["tag", "-a", "v1", "-m", "tag one"]);
    src
}

fn format_of(git: &Git, repo: &Path) -> String {
    git.ok(repo, &["rev-parse", "--show-object-format"])
        .trim()
        .to_owned()
}

fn sha256_repositories_beside_sha1_ones(backend: &Backend) {
    let git = recent_git();
    let server = Server::start_on_with(
        backend,
        &["--create-on-push", "write", "--object-format", "sha1"],
    );
    let admin = server.token("lab", None, "a");
    let work = TempDir::new().unwrap();

    // enable_git names the format; the answer says it; a second call with another is refused.
    let made = server.call(
        "lab",
        "enable_git",
        json!({"artifact_id": "lab/rpc256", "object_format": "sha256", "import_existing_files": false}),
    );
    assert_eq!(made["object_format"], "sha256", "{made}");
    let again = server.rpc(
        Some(&admin),
        "enable_git",
        json!({"artifact_id": "lab/rpc256", "object_format": "sha1"}),
    );
    assert!(
        again["error"]["message"]
            .as_str()
            .unwrap_or_default()
            .contains("object format sha256"),
        "{again}"
    );
    let bad = server.rpc(
        Some(&admin),
        "enable_git",
        json!({"artifact_id": "lab/md5", "object_format": "md5"}),
    );
    assert_eq!(bad["error"]["code"], -32602, "{bad}");
    let sha1 = server.call("lab", "enable_git", json!({"artifact_id": "lab/rpc1"}));
    assert_eq!(sha1["object_format"], "sha1", "the server's default");
    // The CLI.
    server.cli(&["init", "lab/cli256", "--object-format", "sha256"]);

    // Each SHA-256 repository takes a SHA-256 push and clones back equal, every protocol.
    let src = source(&git, work.path(), "sha256");
    for repo in ["lab/rpc256", "lab/cli256"] {
        let url = server.repo_url(repo);
        git.ok(&src, &["push", "-q", &url, "main", "--tags"]);
        for version in ["0", "1", "2"] {
            let clone = work
                .path()
                .join(format!("{}-v{version}", repo.replace('/', "-")));
            let protocol = format!("protocol.version={version}");
            git.ok(
                work.path(),
                &[
                    "-c",
                    &protocol,
                    "clone",
                    "-q",
                    &url,
                    clone.to_str().unwrap(),
                ],
            );
            assert_eq!(format_of(&git, &clone), "sha256");
            assert_eq!(git.refs(&clone, "refs/tags"), git.refs(&src, "refs/tags"));
            assert_eq!(git.rev(&clone, "HEAD"), git.rev(&src, "main"));
            git.ok(&clone, &["fsck", "--strict"]);
        }
        // The bucket's copy is a SHA-256 bare repository git opens and checks.
        let bare = server.bare_repo(repo);
        assert_eq!(format_of(&git, &bare), "sha256");
        git.ok(&bare, &["fsck", "--strict"]);
        assert_eq!(git.rev(&bare, "refs/heads/main"), git.rev(&src, "main"));
    }

    // Push-to-create in the client's format, on a server whose default is SHA-1.
    let url = server.url_with_token("lab/pushed256", &server.token("lab", None, "rw"));
    git.ok(&src, &["push", "-q", &url, "main"]);
    let bare = server.bare_repo("lab/pushed256");
    assert_eq!(format_of(&git, &bare), "sha256");
    git.ok(&bare, &["fsck", "--strict"]);
    let src1 = source(&git, work.path(), "sha1");
    let url1 = server.url_with_token("lab/pushed1", &server.token("lab", None, "rw"));
    git.ok(&src1, &["push", "-q", &url1, "main"]);
    assert_eq!(format_of(&git, &server.bare_repo("lab/pushed1")), "sha1");

    // A client of the other format is refused, as git refuses it, and nothing moves.
    let url256 = server.repo_url("lab/rpc256");
    let refs_before = git.ok(work.path(), &["ls-remote", &url256]);
    let err = git.fails(&src1, &["push", &url256, "main:other"]);
    assert!(
        err.contains("does not support this repository's hash algorithm"),
        "{err}"
    );
    let err = git.fails(&src1, &["fetch", &url256]);
    assert!(err.contains("mismatched algorithms"), "{err}");
    let err = git.fails(&src, &["push", &server.repo_url("lab/rpc1"), "main"]);
    assert!(
        err.contains("does not support this repository's hash algorithm"),
        "{err}"
    );
    assert_eq!(git.ok(work.path(), &["ls-remote", &url256]), refs_before);
}

/// Raw requests naming the wrong format or sending ids of the wrong length: git's words,
/// nothing changed.
fn wrong_formats_and_lengths_are_refused(backend: &Backend) {
    let git = recent_git();
    let server = Server::start_on(backend);
    server.cli(&["init", "lab/r256", "--object-format", "sha256"]);
    server.cli(&["init", "lab/r1", "--object-format", "sha1"]);
    let work = TempDir::new().unwrap();
    let src = source(&git, work.path(), "sha256");
    let url = server.repo_url("lab/r256");
    git.ok(&src, &["push", "-q", &url, "main"]);
    let tip = git.rev(&src, "main");
    let base = server.url_with_token("lab/r256", &server.token("lab", None, "a"));
    let refs_before = git.ok(work.path(), &["ls-remote", &url]);
    let upload = |body: &[u8], v2: bool| {
        let extra: &[&str] = match v2 {
            true => &["-H", "Git-Protocol: version=2"],
            false => &[],
        };
        let (status, out) = curl_post(
            &format!("{base}/git-upload-pack"),
            "application/x-git-upload-pack-request",
            body,
            extra,
        );
        (status, String::from_utf8_lossy(&out).into_owned())
    };

    // v2: a client naming SHA-1, or naming nothing (SHA-1), or an unknown format.
    for (line, expected) in [
        (
            pkt("object-format=sha1\n"),
            "mismatched object format: server sha256; client sha1",
        ),
        (
            Vec::new(),
            "mismatched object format: server sha256; client sha1",
        ),
        (pkt("object-format=md5\n"), "unknown object format 'md5'"),
    ] {
        let body = [
            pkt("command=ls-refs\n"),
            line,
            b"0001".to_vec(),
            b"0000".to_vec(),
        ]
        .concat();
        let (status, out) = upload(&body, true);
        assert_eq!(status, 200);
        assert!(out.contains(&format!("ERR {expected}")), "{out}");
    }
    // A SHA-1-length want in a SHA-256 fetch, v2 and v0.
    let short = &tip[..40];
    let v2_fetch = |want: &str| {
        [
            pkt("command=fetch\n"),
            pkt("object-format=sha256\n"),
            b"0001".to_vec(),
            pkt(&format!("want {want}\n")),
            pkt("done\n"),
            b"0000".to_vec(),
        ]
        .concat()
    };
    let (_, out) = upload(&v2_fetch(short), true);
    assert!(out.contains("expected to get a sha256 object id"), "{out}");
    let body = [
        pkt(&format!("want {short} side-band-64k\n")),
        b"0000".to_vec(),
        pkt("done\n"),
    ]
    .concat();
    let (_, out) = upload(&body, false);
    assert!(out.contains("expected to get a sha256 object id"), "{out}");
    // The right format and length is answered (a pack follows).
    let (_, out) = upload(&v2_fetch(&tip), true);
    assert!(out.contains("packfile"), "{}", &out[..out.len().min(200)]);

    // Pushes: no format named (SHA-1) to a SHA-256 repository, SHA-1 ids, mixed lengths.
    let receive = format!("{base}/git-receive-pack");
    let zero64 = "0".repeat(64);
    let cases = [
        (
            format!("{zero64} {tip} refs/heads/x\0report-status\n"),
            "unsupported object format 'sha1'",
        ),
        (
            format!(
                "{} {} refs/heads/x\0report-status object-format=sha256\n",
                "0".repeat(40),
                short
            ),
            "expected to get a sha256 object id",
        ),
        (
            format!(
                "{} {tip} refs/heads/x\0report-status object-format=sha256\n",
                "0".repeat(40)
            ),
            "invalid ref update command",
        ),
    ];
    for (line, expected) in cases {
        let body = [pkt(&line), b"0000".to_vec()].concat();
        let (status, out) = curl_post(
            &receive,
            "application/x-git-receive-pack-request",
            &body,
            &[],
        );
        let out = String::from_utf8_lossy(&out);
        assert_eq!(status, 200);
        assert!(out.contains(expected), "{line:?}: {out}");
    }
    // 64-digit ids to a SHA-1 repository.
    let receive1 = format!(
        "{}/git-receive-pack",
        server.url_with_token("lab/r1", &server.token("lab", None, "a"))
    );
    let body = [
        pkt(&format!(
            "{zero64} {tip} refs/heads/x\0report-status object-format=sha256\n"
        )),
        b"0000".to_vec(),
    ]
    .concat();
    let (_, out) = curl_post(
        &receive1,
        "application/x-git-receive-pack-request",
        &body,
        &[],
    );
    assert!(
        String::from_utf8_lossy(&out).contains("unsupported object format 'sha256'"),
        "{}",
        String::from_utf8_lossy(&out)
    );

    // The API answers in 64-digit ids (a 40-digit revision is an abbreviation there, as
    // for `git rev-parse`).
    let log = server.call("lab", "log", json!({"artifact_id": "lab/r256", "rev": tip}));
    assert_eq!(log["commits"][0]["id"], tip.as_str(), "{log}");
    let abbreviated = server.call(
        "lab",
        "log",
        json!({"artifact_id": "lab/r256", "rev": short}),
    );
    assert_eq!(abbreviated["commits"][0]["id"], tip.as_str());

    assert_eq!(git.ok(work.path(), &["ls-remote", &url]), refs_before);
    git.ok(&server.bare_repo("lab/r256"), &["fsck", "--strict"]);
}

backend_tests!(
    sha256_repositories_beside_sha1_ones,
    wrong_formats_and_lengths_are_refused
);
