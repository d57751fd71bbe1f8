//! Large files committed without git: an LFS object uploaded by `git lfs` (or the batch API)
//! committed by reference with `commit_files`, copies of paths from any revision, which paths
//! must go through LFS, and branches and tags made and removed by API; checked with `git`
//! and `git lfs` in a clone.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use serde_json::{json, Value};

use artifact_git_e2e::*;

fn commits_by_reference(backend: &Backend) {
    let server = Server::start_on(backend);
    server.init("lab/models");
    server.init("lab/other");
    let git = Git::default();
    git.lfs_install();
    let work = TempDir::new().unwrap();
    let url = server.repo_url("lab/models");
    // `git lfs` uploads a model on a side branch; main tracks only *.bin.
    let src = work.path().join("src");
    git.ok(
        work.path(),
        &["init", "-q", "-b", "main", src.to_str().unwrap()],
    );
    git.ok(&src, &["lfs", "track", "*.bin"]);
    std::fs::write(src.join("notes.txt"), "notes\n").unwrap();
    std::fs::create_dir(src.join("cfg")).unwrap();
    std::fs::write(src.join("cfg/a.json"), "{}\n").unwrap();
    git.ok(&src, &["add", "."]);
    git.ok(&src, &["commit", "-q", "-m", "start"]);
    git.ok(&src, &["tag", "v1"]);
    git.ok(&src, &["checkout", "-q", "-b", "upload"]);
    let model = Rng::new(3).bytes(3 << 20);
    std::fs::write(src.join("weights.bin"), &model).unwrap();
    git.ok(&src, &["add", "."]);
    git.ok(&src, &["commit", "-q", "-m", "upload"]);
    git.ok(&src, &["push", "-q", &url, "main", "upload", "v1"]);
    let oid = sha256_hex(&model);
    let token = server.token("lab", None, "rw");
    let call = |method: &str, params: Value| server.rpc(Some(&token), method, params);
    let head = |branch: &str| {
        git.ok(&src, &["ls-remote", &url, branch])
            .split('\t')
            .next()
            .unwrap_or("")
            .to_owned()
    };

    // By reference: the object is not sent again; the path is not tracked, so the commit adds
    // a .gitattributes line for it; a clone smudges it.
    let main = head("refs/heads/main");
    let done = call(
        "commit_files",
        json!({"artifact_id": "lab/models", "branch": "main", "expected_head": main,
        "message": "model by reference", "changes": [
            {"op": "lfs", "path": "models/final weights.safetensors", "oid": oid, "size": model.len()},
            {"op": "copy", "from": "cfg", "to": "cfg-copy"},
            {"op": "copy", "from": "notes.txt", "to": "old/notes.txt", "rev": "v1"},
        ]}),
    );
    assert!(done["result"]["commit"].is_string(), "{done}");
    let clone = work.path().join("clone");
    git.ok(work.path(), &["clone", "-q", &url, clone.to_str().unwrap()]);
    assert!(std::fs::read(clone.join("models/final weights.safetensors")).unwrap() == model);
    let attributes = std::fs::read_to_string(clone.join(".gitattributes")).unwrap();
    assert!(attributes.contains("*.bin filter=lfs"), "{attributes}");
    assert!(
        attributes.contains("/models/final[[:space:]]weights.safetensors filter=lfs"),
        "{attributes}"
    );
    git.ok(&clone, &["lfs", "fsck"]);
    git.ok(&clone, &["fsck", "--strict"]);
    // Copies name the same objects.
    for (copy, original) in [
        ("HEAD:cfg-copy", "HEAD:cfg"),
        ("HEAD:old/notes.txt", "v1:notes.txt"),
    ] {
        assert_eq!(git.rev(&clone, copy), git.rev(&clone, original));
    }

    // Refused: an object not uploaded, a size that differs, another repository's object, a
    // malformed id; nothing moves.
    let main = head("refs/heads/main");
    let refused = |changes: Value, code: i64| {
        let out = call(
            "commit_files",
            json!({"artifact_id": "lab/models", "branch": "main", "expected_head": main,
                   "message": "nope", "changes": changes}),
        );
        assert_eq!(out["error"]["code"], code, "{out}");
        assert!(out["error"]["message"].as_str().unwrap().len() > 10);
    };
    refused(
        json!([{"op": "lfs", "path": "x.bin", "oid": "0".repeat(64), "size": 3}]),
        -32004,
    );
    refused(
        json!([{"op": "lfs", "path": "x.bin", "oid": oid, "size": 5}]),
        -32602,
    );
    refused(
        json!([{"op": "lfs", "path": "x.bin", "oid": "xyz", "size": 5}]),
        -32602,
    );
    refused(
        json!([{"op": "copy", "from": "nothing", "to": "x"}]),
        -32004,
    );
    refused(
        json!([{"op": "copy", "from": "notes.txt", "to": "x", "rev": "no-such-rev"}]),
        -32602,
    );
    refused(
        json!([{"op": "copy", "from": "../notes.txt", "to": "x"}]),
        -32602,
    );
    assert_eq!(head("refs/heads/main"), main);
    let elsewhere = call(
        "commit_files",
        json!({"artifact_id": "lab/other", "branch": "main", "expected_head": null,
               "message": "steal", "changes": [{"op": "lfs", "path": "w.bin", "oid": oid, "size": model.len()}]}),
    );
    assert_eq!(elsewhere["error"]["code"], -32004, "{elsewhere}");

    // Which paths must go through LFS: tracked, or over the server's threshold.
    let placement = call(
        "lfs_placement",
        json!({"artifact_id": "lab/models", "files": [
            {"path": "a.bin", "size": 10}, {"path": "b.txt", "size": 10},
            {"path": "c.txt", "size": 1u64 << 40}]}),
    );
    let lfs: Vec<bool> = placement["result"]["files"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f["lfs"].as_bool().unwrap())
        .collect();
    assert_eq!(lfs, vec![true, false, true], "{placement}");

    // Branches and tags by API, as `git ls-remote` then sees them.
    let v1 = head("refs/tags/v1");
    let made = call(
        "create_branch",
        json!({"artifact_id": "lab/models", "branch": "release/1", "rev": "v1"}),
    );
    assert_eq!(made["result"]["commit"], v1.as_str(), "{made}");
    assert_eq!(head("refs/heads/release/1"), v1);
    let again = call(
        "create_branch",
        json!({"artifact_id": "lab/models", "branch": "release/1"}),
    );
    assert_eq!(again["error"]["code"], -32009, "{again}");
    let bad = call(
        "create_branch",
        json!({"artifact_id": "lab/models", "branch": "a..b"}),
    );
    assert_eq!(bad["error"]["code"], -32602, "{bad}");
    let annotated = call(
        "create_tag",
        json!({"artifact_id": "lab/models", "tag": "v2", "rev": "main", "message": "second"}),
    );
    assert!(annotated["result"]["target"].is_string(), "{annotated}");
    call(
        "create_tag",
        json!({"artifact_id": "lab/models", "tag": "light", "rev": "upload"}),
    );
    git.ok(&clone, &["fetch", "-q", "--tags", "origin"]);
    assert_eq!(git.ok(&clone, &["cat-file", "-t", "v2"]).trim(), "tag");
    assert_eq!(
        git.ok(&clone, &["cat-file", "-t", "light"]).trim(),
        "commit"
    );
    assert_eq!(
        git.rev(&clone, "v2^{commit}"),
        git.rev(&clone, "origin/main")
    );
    let listed = call("list_refs", json!({"artifact_id": "lab/models"}));
    let names: Vec<&str> = listed["result"]["branches"]
        .as_array()
        .unwrap()
        .iter()
        .map(|b| b["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, vec!["main", "release/1", "upload"], "{listed}");
    assert_eq!(listed["result"]["head"], "refs/heads/main");
    let default = call(
        "delete_branch",
        json!({"artifact_id": "lab/models", "branch": "main"}),
    );
    assert_eq!(default["error"]["code"], -32009, "{default}");
    let stale = call(
        "delete_branch",
        json!({"artifact_id": "lab/models", "branch": "upload", "expected_head": v1}),
    );
    assert!(stale["error"].is_object(), "{stale}");
    call(
        "delete_branch",
        json!({"artifact_id": "lab/models", "branch": "release/1"}),
    );
    call(
        "delete_tag",
        json!({"artifact_id": "lab/models", "tag": "light"}),
    );
    let remote = git.ok(&src, &["ls-remote", &url]);
    assert!(
        !remote.contains("release/1") && !remote.contains("refs/tags/light"),
        "{remote}"
    );
    assert!(remote.contains("refs/tags/v2") && remote.contains("refs/heads/upload"));
    // Hypha's names: `source`, and `list_branches` as [{name, sha, default}].
    call(
        "create_branch",
        json!({"artifact_id": "lab/models", "branch": "from-source", "source": "v1"}),
    );
    let branches = call("list_branches", json!({"artifact_id": "lab/models"}));
    let listed: Vec<(String, String, bool)> = branches["result"]
        .as_array()
        .unwrap()
        .iter()
        .map(|b| {
            (
                b["name"].as_str().unwrap().to_owned(),
                b["sha"].as_str().unwrap().to_owned(),
                b["default"].as_bool().unwrap(),
            )
        })
        .collect();
    assert!(
        listed.contains(&("from-source".to_owned(), v1.clone(), false)),
        "{branches}"
    );
    assert!(
        listed.iter().any(|(n, _, d)| n == "main" && *d),
        "{branches}"
    );
    let reader = server.token("lab", None, "r");
    let denied = server.rpc(
        Some(&reader),
        "create_branch",
        json!({"artifact_id": "lab/models", "branch": "x"}),
    );
    assert!(denied["error"].is_object(), "{denied}");
}

backend_tests!(commits_by_reference);
