//! The push policy, enforced on every writer: a force push and a deletion of a protected
//! branch refused with git's words and nothing moved, a bypassing subject let through, the
//! repository-wide limits (file size, denied paths, mass deletion) refused for pushes and API
//! commits alike, and the policy document checked before it is saved.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use serde_json::{json, Value};

use artifact_git_e2e::*;

fn push_policy(backend: &Backend) {
    let Scratch {
        server,
        url,
        git,
        work: _work,
        src,
    } = Scratch::new(backend, "lab/guarded");
    for name in ["a.txt", "b.txt", "c.txt"] {
        commit_file(&git, &src, name, &format!("{name}\n"), name);
    }
    git.ok(&src, &["tag", "v1"]);
    git.ok(&src, &["push", "-q", &url, "main", "v1"]);
    git.ok(&src, &["push", "-q", &url, "main:feature"]);
    let admin = server.token("lab", None, "a");
    let call = |method: &str, params: Value| server.rpc(Some(&admin), method, params);
    let policy = json!({
        "rules": [
            {"refs": ["refs/heads/main"], "no_force": true, "no_delete": true, "bypass": ["release-bot"]},
            {"refs": ["refs/tags/*"], "no_delete": true, "no_force": true},
        ],
        "max_file_size": 1000,
        "deny_paths": ["*.env", "secrets/**"],
        "max_deleted_files": 2,
    });
    let set = call(
        "set_push_policy",
        json!({"artifact_id": "lab/guarded", "policy": policy}),
    );
    assert!(set["result"].is_object(), "{set}");
    let got = call("get_push_policy", json!({"artifact_id": "lab/guarded"}));
    assert_eq!(
        got["result"]["policy"]["rules"][0]["bypass"][0],
        "release-bot"
    );
    let remote_main = || git.ok(&src, &["ls-remote", &url, "refs/heads/main"]);
    let before = remote_main();

    // A force push of main: refused in git's words; main does not move.
    git.ok(&src, &["reset", "-q", "--hard", "HEAD~1"]);
    let out = git.fails(&src, &["push", "--force", &url, "main"]);
    assert!(
        out.contains("protected branch: non-fast-forward updates are not allowed"),
        "{out}"
    );
    assert_eq!(remote_main(), before);
    // Deleting main or the tag: refused.
    let out = git.fails(&src, &["push", &url, ":refs/tags/v1"]);
    assert!(
        out.contains("protected branch: deletion is not allowed"),
        "{out}"
    );
    let out = git.fails(&src, &["push", &url, ":main"]);
    assert!(
        out.contains("deletion is not allowed") || out.contains("current branch"),
        "{out}"
    );
    assert_eq!(remote_main(), before);
    // The same force push by the subject the rule lets through.
    let bot = server.token_for("lab", None, "rw", Some("release-bot"));
    let bot_url = server.url_with_token("lab/guarded", &bot);
    git.ok(&src, &["push", "-q", "--force", &bot_url, "main"]);
    assert_ne!(remote_main(), before);
    // Fast-forwards are fine; feature (unprotected) may be forced.
    commit_file(&git, &src, "d.txt", "d\n", "d");
    git.ok(&src, &["push", "-q", &url, "main"]);
    git.ok(&src, &["push", "-q", "--force", &url, "HEAD~2:feature"]);

    // Repository-wide limits, on any branch.
    let head = remote_main();
    std::fs::write(src.join("big.dat"), vec![b'x'; 2000]).unwrap();
    git.ok(&src, &["add", "."]);
    git.ok(&src, &["commit", "-q", "-m", "big"]);
    let out = git.fails(&src, &["push", &url, "main"]);
    assert!(
        out.contains("big.dat has 2000 bytes, over the limit of 1000"),
        "{out}"
    );
    let out = git.fails(&src, &["push", &url, "HEAD:refs/heads/other"]);
    assert!(out.contains("over the limit of 1000"), "{out}");
    git.ok(&src, &["reset", "-q", "--hard", "HEAD~1"]);
    std::fs::create_dir(src.join("config")).unwrap();
    std::fs::write(src.join("config/prod.env"), "KEY=1\n").unwrap();
    git.ok(&src, &["add", "."]);
    git.ok(&src, &["commit", "-q", "-m", "env"]);
    let out = git.fails(&src, &["push", &url, "main"]);
    assert!(
        out.contains("config/prod.env matches the denied path *.env"),
        "{out}"
    );
    git.ok(&src, &["reset", "-q", "--hard", "HEAD~1"]);
    // Deleting three files at once on main: over the limit; on a feature branch: fine.
    git.ok(&src, &["rm", "-q", "a.txt", "b.txt", "d.txt"]);
    git.ok(&src, &["commit", "-q", "-m", "cleanup"]);
    let out = git.fails(&src, &["push", &url, "main"]);
    assert!(
        out.contains("deletes 3 files, over the limit of 2"),
        "{out}"
    );
    git.ok(&src, &["push", "-q", "--force", &url, "HEAD:feature"]);
    assert_eq!(remote_main(), head, "a refused push moved main");

    // The API is held to the same policy.
    let main = head.split('\t').next().unwrap().to_owned();
    let commit = call(
        "commit_files",
        json!({"artifact_id": "lab/guarded", "branch": "main", "expected_head": main,
               "message": "secret", "changes": [{"op": "put", "path": "secrets/key", "content": "k"}]}),
    );
    assert_eq!(commit["error"]["code"], -32010, "{commit}");
    assert!(commit["error"]["message"]
        .as_str()
        .unwrap()
        .contains("secrets/**"));
    let delete = call(
        "delete_branch",
        json!({"artifact_id": "lab/guarded", "branch": "feature"}),
    );
    assert!(delete["result"].is_object(), "{delete}");
    let tag = call(
        "delete_tag",
        json!({"artifact_id": "lab/guarded", "tag": "v1"}),
    );
    assert_eq!(tag["error"]["code"], -32010, "{tag}");

    // Documents that cannot be right are refused; only admins set them.
    for bad in [
        json!({"rules": [{"refs": ["main"]}]}),
        json!({"rules": [{"refs": []}]}),
        json!({"rules": [], "surprise": true}),
        json!({"rules": [{"refs": ["refs/heads/*"], "no_force": "yes"}]}),
        json!({"deny_paths": ["x".repeat(300)]}),
    ] {
        let out = call(
            "set_push_policy",
            json!({"artifact_id": "lab/guarded", "policy": bad}),
        );
        assert_eq!(out["error"]["code"], -32602, "{out}");
    }
    let writer = server.token("lab", None, "rw");
    let out = server.rpc(
        Some(&writer),
        "set_push_policy",
        json!({"artifact_id": "lab/guarded", "policy": {}}),
    );
    assert!(out["error"].is_object(), "{out}");
    // Removing the policy lets everything through again.
    call(
        "set_push_policy",
        json!({"artifact_id": "lab/guarded", "policy": {}}),
    );
    git.ok(&src, &["push", "-q", "--force", &url, "main"]);
}

backend_tests!(push_policy);
