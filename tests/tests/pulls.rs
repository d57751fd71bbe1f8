//! Pull requests by API, merged as git merges: the merge commit's tree is the one `git
//! merge-tree --write-tree` makes, a conflict is refused with its paths and nothing moves, a
//! protected branch takes changes only through an approved pull request, and the branches
//! move as git then sees them.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::path::Path;

use serde_json::{json, Value};

use artifact_git_e2e::*;

fn write(dir: &Path, path: &str, text: &str) {
    std::fs::write(dir.join(path), text).unwrap();
}

fn pull_requests(backend: &Backend) {
    let Scratch {
        server,
        url,
        git,
        work: _work,
        src,
    } = Scratch::new(backend, "lab/collab");
    let lines: String = (0..30).map(|i| format!("line {i}\n")).collect();
    write(&src, "shared.txt", &lines);
    git.ok(&src, &["add", "."]);
    git.ok(&src, &["commit", "-q", "-m", "base"]);
    // feature: edits the bottom and adds a file; main meanwhile edits the top.
    git.ok(&src, &["checkout", "-q", "-b", "feature"]);
    write(
        &src,
        "shared.txt",
        &lines.replacen("line 28\n", "line 28 feature\n", 1),
    );
    write(&src, "feature.txt", "f\n");
    git.ok(&src, &["add", "."]);
    git.ok(&src, &["commit", "-q", "-m", "feature work"]);
    // clash: edits the top as main does, differently.
    git.ok(&src, &["checkout", "-q", "-b", "clash", "main"]);
    write(
        &src,
        "shared.txt",
        &lines.replacen("line 1\n", "line 1 clash\n", 1),
    );
    git.ok(&src, &["commit", "-q", "-am", "clash"]);
    git.ok(&src, &["checkout", "-q", "main"]);
    write(
        &src,
        "shared.txt",
        &lines.replacen("line 1\n", "line 1 main\n", 1),
    );
    git.ok(&src, &["commit", "-q", "-am", "main work"]);
    git.ok(&src, &["push", "-q", &url, "main", "feature", "clash"]);
    let expected_tree = git.ok(&src, &["merge-tree", "--write-tree", "main", "feature"]);
    let expected_tree = expected_tree.lines().next().unwrap().to_owned();

    let admin = server.token_for("lab", None, "a", Some("alice"));
    let reviewer = server.token_for("lab", None, "rw", Some("bob"));
    let call = |token: &str, method: &str, params: Value| server.rpc(Some(token), method, params);
    let policy = json!({"rules": [{"refs": ["refs/heads/main"], "pull_request_only": true, "required_approvals": 1}]});
    call(
        &admin,
        "set_push_policy",
        json!({"artifact_id": "lab/collab", "policy": policy}),
    );
    // A direct push to main is refused in git's words.
    commit_file(&git, &src, "direct.txt", "d\n", "direct");
    let out = git.fails(&src, &["push", &url, "main"]);
    assert!(
        out.contains("protected branch: changes must be made through a pull request"),
        "{out}"
    );
    git.ok(&src, &["reset", "-q", "--hard", "HEAD~1"]);

    let created = call(
        &admin,
        "create_pr",
        json!({"artifact_id": "lab/collab", "title": "Feature", "source_branch": "feature", "description": "adds a feature"}),
    );
    let n = created["result"]["pr_number"].as_u64().expect("a number");
    let pr = call(
        &admin,
        "get_pr",
        json!({"artifact_id": "lab/collab", "pr_number": n}),
    );
    assert_eq!(pr["result"]["head_sha"], git.rev(&src, "feature").as_str());
    assert_eq!(pr["result"]["target_branch"], "main");
    let listed = call(
        &admin,
        "list_prs",
        json!({"artifact_id": "lab/collab", "status": "open"}),
    );
    assert_eq!(listed["result"].as_array().unwrap().len(), 1);
    // The diff is git's.
    let diff = call(
        &admin,
        "get_diff",
        json!({"artifact_id": "lab/collab", "base": "main", "head": "feature", "include_content": true}),
    );
    let mut ours: Vec<String> = diff["result"]["files"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| {
            format!(
                "{} {}",
                f["status"].as_str().unwrap(),
                f["path"].as_str().unwrap()
            )
        })
        .collect();
    ours.sort();
    let mut theirs: Vec<String> = git
        .ok(
            &src,
            &["diff", "--name-status", "--no-renames", "main", "feature"],
        )
        .lines()
        .map(|l| {
            let (s, p) = l.split_once('\t').unwrap();
            let s = match s {
                "A" => "added",
                "D" => "deleted",
                _ => "modified",
            };
            format!("{s} {p}")
        })
        .collect();
    theirs.sort();
    assert_eq!(ours, theirs);
    assert!(diff["result"]["patch"]
        .as_str()
        .unwrap()
        .contains("+line 28 feature"));

    // Approvals the policy asks for: the author cannot give one; another reviewer can.
    let merge = |token: &str, n: u64, strategy: &str| {
        call(
            token,
            "merge_pr",
            json!({"artifact_id": "lab/collab", "pr_number": n, "merge_strategy": strategy}),
        )
    };
    let early = merge(&admin, n, "merge");
    assert_eq!(early["error"]["code"], -32010, "{early}");
    let own = call(
        &admin,
        "submit_review",
        json!({"artifact_id": "lab/collab", "pr_number": n, "verdict": "approve", "comment": "mine"}),
    );
    assert_eq!(own["error"]["code"], -32602, "{own}");
    call(
        &reviewer,
        "submit_review",
        json!({"artifact_id": "lab/collab", "pr_number": n, "verdict": "approve", "comment": "looks right"}),
    );
    let reviews = call(
        &admin,
        "list_reviews",
        json!({"artifact_id": "lab/collab", "pr_number": n}),
    );
    assert_eq!(reviews["result"][0]["reviewer"], "bob");
    let main_before = git.rev(&src, "main");
    let merged = merge(&admin, n, "merge");
    assert_eq!(merged["result"]["status"], "merged", "{merged}");
    let sha = merged["result"]["merge_sha"].as_str().unwrap().to_owned();
    git.ok(&src, &["fetch", "-q", &url, "main"]);
    assert_eq!(git.rev(&src, "FETCH_HEAD"), sha);
    assert_eq!(
        git.rev(&src, "FETCH_HEAD^{tree}"),
        expected_tree,
        "the merge is git's"
    );
    assert_eq!(
        git.ok(&src, &["rev-parse", "FETCH_HEAD^1", "FETCH_HEAD^2"]),
        format!("{main_before}\n{}\n", git.rev(&src, "feature"))
    );
    git.ok(&src, &["fsck", "--strict"]);
    let again = merge(&admin, n, "merge");
    assert_eq!(again["error"]["code"], -32009, "{again}");

    // A conflict: its path, and nothing moves.
    let clash = call(
        &admin,
        "create_pr",
        json!({"artifact_id": "lab/collab", "title": "Clash", "source_branch": "clash"}),
    )["result"]["pr_number"]
        .as_u64()
        .unwrap();
    call(
        &reviewer,
        "submit_review",
        json!({"artifact_id": "lab/collab", "pr_number": clash, "verdict": "approve", "comment": ""}),
    );
    let conflict = merge(&admin, clash, "auto");
    assert_eq!(conflict["result"]["status"], "conflict", "{conflict}");
    assert_eq!(conflict["result"]["conflicts"][0]["path"], "shared.txt");
    assert_eq!(conflict["result"]["conflicts"][0]["kind"], "content");
    let remote = git.ok(&src, &["ls-remote", &url, "refs/heads/main"]);
    assert!(remote.starts_with(&sha), "a conflicting merge moved main");
    // Close and reopen; a stale head refuses the merge.
    call(
        &admin,
        "close_pr",
        json!({"artifact_id": "lab/collab", "pr_number": clash, "comment": "later"}),
    );
    let closed = merge(&admin, clash, "auto");
    assert_eq!(closed["error"]["code"], -32009, "{closed}");
    call(
        &admin,
        "reopen_pr",
        json!({"artifact_id": "lab/collab", "pr_number": clash}),
    );
    let stale = call(
        &admin,
        "merge_pr",
        json!({"artifact_id": "lab/collab", "pr_number": clash, "expected_head_sha": "0000000"}),
    );
    assert_eq!(stale["error"]["code"], -32009, "{stale}");
    // Fast-forward and squash into an unprotected branch.
    git.ok(&src, &["push", "-q", &url, "main~1:refs/heads/stable"]);
    let ff = call(&admin, "create_pr", json!({"artifact_id": "lab/collab", "title": "ff", "source_branch": "main", "target_branch": "stable"}))["result"]["pr_number"].as_u64().unwrap();
    let out = merge(&admin, ff, "fast-forward");
    assert_eq!(
        (
            out["result"]["merge_type"].as_str(),
            out["result"]["merge_sha"].as_str()
        ),
        (Some("fast-forward"), Some(sha.as_str())),
        "{out}"
    );
    git.ok(
        &src,
        &[
            "push",
            "-q",
            &url,
            &format!("{main_before}:refs/heads/squashed"),
        ],
    );
    let sq = call(&admin, "create_pr", json!({"artifact_id": "lab/collab", "title": "Squash it", "source_branch": "feature", "target_branch": "squashed"}))["result"]["pr_number"].as_u64().unwrap();
    let out = call(
        &admin,
        "merge_pr",
        json!({"artifact_id": "lab/collab", "pr_number": sq, "merge_strategy": "squash", "delete_branch": true}),
    );
    assert_eq!(out["result"]["merge_type"], "squash", "{out}");
    git.ok(&src, &["fetch", "-q", &url, "squashed"]);
    assert_eq!(git.rev(&src, "FETCH_HEAD^{tree}"), expected_tree);
    assert_eq!(git.rev(&src, "FETCH_HEAD^"), main_before);
    assert!(
        !git.ok(&src, &["ls-remote", &url])
            .contains("refs/heads/feature"),
        "the source branch stays"
    );
    let missing = call(
        &admin,
        "get_pr",
        json!({"artifact_id": "lab/collab", "pr_number": 999}),
    );
    assert_eq!(missing["error"]["code"], -32004);
}

backend_tests!(pull_requests);
