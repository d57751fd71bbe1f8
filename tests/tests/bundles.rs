//! `bundle`: a bundle URL fetched with the same token; `git bundle verify` accepts the file, a
//! clone from it equals a clone over HTTP, an incremental bundle applies on an older clone.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::path::{Path, PathBuf};

use artifact_git_e2e::*;
use serde_json::{json, Value};

/// Download `url` with `token` as the Basic password into `dest`; the HTTP status.
fn download(url: &str, token: Option<&str>, dest: &Path) -> u16 {
    http_get_to(url, token, dest)
}

fn bundle(server: &Server, params: Value, token: &str, dest: &Path) -> Value {
    let answer = server.call("lab", "bundle", params);
    let url = answer["url"].as_str().unwrap();
    assert_eq!(download(url, Some(token), dest), 200, "GET {url}");
    answer
}

/// `git for-each-ref` of a repository: every ref with its object.
fn all_refs(git: &Git, dir: &Path) -> String {
    git.ok(dir, &["for-each-ref", "--format=%(objectname) %(refname)"])
}

fn bundles_clone_and_apply(backend: &Backend) {
    let f = Fixture::new(backend, &[], "lab/bund", 400, 5);
    let (git, src, work) = (&f.git, f.source.as_path(), f.work.path());
    let token = f.server.token("lab", Some("bund"), "r");

    // A full bundle: verified, cloned, equal to a clone over HTTP.
    let full = work.join("full.bundle");
    let answer = bundle(&f.server, json!({"artifact_id": "lab/bund"}), &token, &full);
    assert_eq!(answer["prerequisites"], json!([]));
    let listed = git.ok(work, &["bundle", "list-heads", full.to_str().unwrap()]);
    assert!(listed.contains(" HEAD\n"), "{listed}");
    git.ok(src, &["bundle", "verify", full.to_str().unwrap()]);
    let from_bundle: PathBuf = work.join("from-bundle");
    git.ok(
        work,
        &[
            "clone",
            "-q",
            "--mirror",
            full.to_str().unwrap(),
            from_bundle.to_str().unwrap(),
        ],
    );
    git.ok(&from_bundle, &["fsck", "--strict"]);
    let over_http = f.fresh_clone("over-http", true);
    assert_eq!(all_refs(git, &from_bundle), all_refs(git, &over_http));
    let checkout = work.join("checkout");
    git.ok(
        work,
        &[
            "clone",
            "-q",
            full.to_str().unwrap(),
            checkout.to_str().unwrap(),
        ],
    );
    assert_eq!(git.rev(&checkout, "HEAD"), git.rev(src, "main"));
    assert_eq!(
        git.ok(&checkout, &["ls-files", "-s"]),
        git.ok(src, &["ls-files", "-s"])
    );

    // An incremental bundle on top of an older clone.
    let old = f.fresh_clone("old", false);
    let old_main = git.rev(src, "main");
    for i in 0..5 {
        commit_file(
            git,
            src,
            &format!("new/{i}.txt"),
            &format!("{i}\n"),
            &format!("new {i}"),
        );
    }
    git.ok(src, &["tag", "-a", "-m", "release two", "v-two"]);
    git.ok(src, &["push", "-q", "origin", "main", "v-two"]);
    let inc = work.join("inc.bundle");
    let answer = bundle(
        &f.server,
        json!({"artifact_id": "lab/bund", "refs": ["main", "v-two"], "since": "main~5"}),
        &token,
        &inc,
    );
    assert_eq!(answer["prerequisites"], json!([old_main]));
    let heads = git.ok(work, &["bundle", "list-heads", inc.to_str().unwrap()]);
    assert!(heads.contains(" refs/heads/main\n") && heads.contains(" refs/tags/v-two\n"));
    git.ok(&old, &["bundle", "verify", inc.to_str().unwrap()]);
    git.ok(
        &old,
        &[
            "fetch",
            "-q",
            inc.to_str().unwrap(),
            "refs/heads/main:refs/remotes/bundle/main",
            "refs/tags/v-two:refs/tags/v-two",
        ],
    );
    assert_eq!(git.rev(&old, "bundle/main"), git.rev(src, "main"));
    assert_eq!(git.rev(&old, "v-two"), git.rev(src, "v-two"));
    git.ok(&old, &["fsck", "--strict"]);
    // It is smaller than the full one, and useless to a repository without the history.
    assert!(std::fs::metadata(&inc).unwrap().len() < std::fs::metadata(&full).unwrap().len() / 10);
    let empty = work.join("empty");
    git.ok(work, &["init", "-q", empty.to_str().unwrap()]);
    let refused = git.fails(&empty, &["bundle", "verify", inc.to_str().unwrap()]);
    assert!(refused.contains("prerequisite"), "{refused}");

    // What cannot be bundled, and who cannot fetch one.
    let err = |params: Value| {
        let answer = f.server.rpc(Some(&token), "bundle", params);
        assert!(answer["result"].is_null(), "{answer}");
        answer["error"]["message"].as_str().unwrap().to_owned()
    };
    assert!(err(json!({"artifact_id": "lab/bund", "refs": ["nope"]})).contains("nope"));
    assert!(
        err(json!({"artifact_id": "lab/bund", "since": "no-such-rev"})).contains("no-such-rev")
    );
    assert!(
        err(json!({"artifact_id": "lab/bund", "refs": ["main"], "since": "main"}))
            .contains("nothing to bundle")
    );
    assert!(err(json!({"artifact_id": "lab/bund", "refs": []})).contains("empty"));
    assert!(err(json!({"artifact_id": "lab/bund", "token": "x"})).contains("unknown field"));
    let url = answer["url"].as_str().unwrap();
    let scratch = work.join("scratch");
    assert_eq!(download(url, None, &scratch), 401);
    let other = f.server.token("elsewhere", None, "a");
    assert!([403, 404].contains(&download(url, Some(&other), &scratch)));
    let base = format!("{}/lab/git/bund/bundle", f.server.url);
    assert_eq!(
        download(&format!("{base}?since=abc"), Some(&token), &scratch),
        400
    );
    let missing = "1234567890".repeat(7)[..hex_len()].to_owned();
    assert_eq!(
        download(&format!("{base}?since={missing}"), Some(&token), &scratch),
        404
    );
    assert_eq!(
        download(
            &format!("{base}?ref=refs/heads/nope"),
            Some(&token),
            &scratch
        ),
        404
    );
    // A commit only a deleted branch reached: not a prerequisite, and its subject not shown.
    git.ok(src, &["checkout", "-q", "-b", "secret"]);
    let hidden = commit_file(git, src, "secret.txt", "s\n", "the secret subject");
    git.ok(src, &["push", "-q", "origin", "secret"]);
    git.ok(src, &["push", "-q", "origin", "--delete", "secret"]);
    git.ok(src, &["checkout", "-q", "main"]);
    let hidden_url = format!("{base}?since={hidden}");
    assert_eq!(download(&hidden_url, Some(&token), &scratch), 404);
    let answer = std::fs::read_to_string(&scratch).unwrap();
    assert!(!answer.contains("secret subject"), "{answer}");
    // Nothing above changed the repository.
    assert_eq!(f.remote_refs(), git.ok(src, &["ls-remote", "origin"]),);
}

backend_tests!(bundles_clone_and_apply);
