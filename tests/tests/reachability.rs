//! What no ref reaches is gone for readers: a secret committed on a branch that was then
//! deleted (or force-pushed away) is unknown to every read method of the API, under its full
//! id, any abbreviation, `id~0`, a cursor handed out before the deletion or one made by hand;
//! and a writer cannot bring it back by tagging or restoring from it.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use base64::Engine;
use serde_json::{json, Value};

use artifact_git_e2e::*;

const SECRET: &str = "TOPSECRET-7f3a";

fn deleted_history_is_unreachable(backend: &Backend) {
    let server = Server::start_on_with(backend, &["--maintain-after-packs", "0"]);
    server.init("lab/secret");
    let url = server.repo_url("lab/secret");
    let git = Git::default();
    let work = TempDir::new().unwrap();
    let src = work.path().join("src");
    git.ok(
        work.path(),
        &["init", "-q", "-b", "main", src.to_str().unwrap()],
    );
    let main = commit_file(&git, &src, "readme.txt", "public\n", "public");
    git.ok(&src, &["push", "-q", &url, "main"]);
    git.ok(&src, &["checkout", "-q", "-b", "leak"]);
    let leaked = commit_file(&git, &src, "secret.txt", &format!("{SECRET}\n"), "oops");
    git.ok(&src, &["push", "-q", &url, "leak"]);
    let token = server.token("lab", None, "rw");
    let call = |method: &str, params: Value| server.rpc(Some(&token), method, params);
    // Readable while the branch exists; a cursor is handed out then.
    let page = call(
        "log",
        json!({"artifact_id": "lab/secret", "rev": "leak", "max_count": 1}),
    );
    let cursor = page["result"]["next_cursor"].as_str().unwrap().to_owned();
    let read = call(
        "read_file",
        json!({"artifact_id": "lab/secret", "rev": leaked, "path": "secret.txt"}),
    );
    assert!(read["result"]["content"].as_str().unwrap().contains(SECRET));
    git.ok(&src, &["push", "-q", &url, ":leak"]);

    let hand_made = base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(format!("{leaked}:0"));
    let mut names = vec![
        leaked.clone(),
        format!("{leaked}~0"),
        format!("{leaked}^{{}}"),
    ];
    names.extend([7, 10, 20, 39].map(|n| leaked[..n].to_owned()));
    let mut calls: Vec<(&str, Value)> = Vec::new();
    for rev in &names {
        calls.extend([
            ("show", json!({"artifact_id": "lab/secret", "rev": rev})),
            (
                "read_file",
                json!({"artifact_id": "lab/secret", "rev": rev, "path": "secret.txt"}),
            ),
            (
                "list_files",
                json!({"artifact_id": "lab/secret", "rev": rev}),
            ),
            ("log", json!({"artifact_id": "lab/secret", "rev": rev})),
            (
                "diff",
                json!({"artifact_id": "lab/secret", "from": main, "to": rev}),
            ),
            (
                "diff",
                json!({"artifact_id": "lab/secret", "from": rev, "to": "main"}),
            ),
            (
                "bundle",
                json!({"artifact_id": "lab/secret", "since": [rev]}),
            ),
            (
                "restore",
                json!({"artifact_id": "lab/secret", "path": "secret.txt", "from_rev": rev,
                                "branch": "main", "expected_head": main, "dry_run": true}),
            ),
            (
                "create_snapshot",
                json!({"artifact_id": "lab/secret", "name": "resurrected",
                                       "rev": rev, "message": "m"}),
            ),
        ]);
    }
    for c in [&cursor, &hand_made] {
        calls.push(("log", json!({"artifact_id": "lab/secret", "cursor": c})));
    }
    for (method, params) in calls {
        let answer = call(method, params.clone());
        let text = answer.to_string();
        assert!(
            !text.contains(SECRET),
            "{method} {params} revealed the secret: {text}"
        );
        assert!(
            answer["error"]["message"].is_string(),
            "{method} {params} answered for a deleted commit: {text}"
        );
    }
    assert!(git
        .ok(work.path(), &["ls-remote", &url])
        .lines()
        .all(|l| !l.contains("resurrected")));
    // What the refs reach is as readable as before.
    let read = call(
        "read_file",
        json!({"artifact_id": "lab/secret", "rev": &main[..8], "path": "readme.txt"}),
    );
    assert_eq!(read["result"]["content"], "public\n", "{read}");
    let shown = call(
        "show",
        json!({"artifact_id": "lab/secret", "rev": format!("{main}~0")}),
    );
    assert_eq!(shown["result"]["commit"]["id"], main.as_str(), "{shown}");
}

backend_tests!(deleted_history_is_unreachable);
