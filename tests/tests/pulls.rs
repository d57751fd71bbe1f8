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
    // The file as the merge base, main and the pull request's branch have it (git's stages).
    let stage = |rev: &str| git.rev(&src, &format!("{rev}:shared.txt"));
    let base = git.ok(&src, &["merge-base", &sha, "clash"]);
    for (field, rev) in [
        ("base_sha", base.trim()),
        ("ours_sha", sha.as_str()),
        ("theirs_sha", "clash"),
    ] {
        let want = stage(rev);
        assert_eq!(
            conflict["result"]["conflicts"][0][field],
            want.as_str(),
            "{field}: {conflict}"
        );
    }
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

/// A pull request's head is `refs/pull/{n}/head`: fetchable by name, not among a clone's
/// branches, following its branch as it is pushed, refused to pushers; its life goes to
/// webhooks as GitHub's signed `pull_request` events.
fn pull_request_refs_and_events(backend: &Backend) {
    let Scratch {
        server,
        url,
        git,
        work,
        src,
    } = Scratch::with_args(backend, "lab/prs", &["--webhook-allow-private"]);
    let admin = server.token_for("lab", None, "a", Some("alice"));
    let call = |method: &str, params: Value| {
        let answer = server.rpc(Some(&admin), method, params);
        assert!(answer.get("error").is_none(), "{method}: {answer}");
        answer["result"].clone()
    };
    let receiver = Receiver::start();
    let secret = "pr-secret";
    call(
        "add_webhook",
        json!({"artifact_id": "lab/prs", "url": receiver.url, "secret": secret, "events": ["push", "pull_request"]}),
    );
    commit_file(&git, &src, "a.txt", "a\n", "base");
    git.ok(&src, &["branch", "feature"]);
    git.ok(&src, &["branch", "other"]);
    git.ok(&src, &["checkout", "-q", "feature"]);
    commit_file(&git, &src, "f.txt", "f\n", "feature");
    git.ok(&src, &["checkout", "-q", "other"]);
    commit_file(&git, &src, "o.txt", "o\n", "other");
    git.ok(&src, &["checkout", "-q", "main"]);
    git.ok(&src, &["push", "-q", &url, "main", "feature", "other"]);

    let n = call(
        "create_pr",
        json!({"artifact_id": "lab/prs", "title": "Feature", "source_branch": "feature"}),
    )["pr_number"]
        .as_u64()
        .unwrap();
    let head_ref = format!("refs/pull/{n}/head");
    let remote_head = |git: &Git| {
        let out = git.ok(&src, &["ls-remote", &url, &head_ref]);
        out.split_whitespace().next().unwrap_or_default().to_owned()
    };
    assert_eq!(remote_head(&git), git.rev(&src, "feature"));
    // Fetched by name; a clone's branches do not include it.
    git.ok(&src, &["fetch", "-q", &url, &head_ref]);
    assert_eq!(git.rev(&src, "FETCH_HEAD"), git.rev(&src, "feature"));
    let clone = work.path().join("clone");
    git.ok(work.path(), &["clone", "-q", &url, clone.to_str().unwrap()]);
    let cloned = git.ok(&clone, &["for-each-ref", "--format=%(refname)"]);
    assert!(!cloned.contains("refs/pull/"), "{cloned}");
    assert!(cloned.contains("refs/remotes/origin/feature"), "{cloned}");
    // The head follows its branch.
    git.ok(&src, &["checkout", "-q", "feature"]);
    commit_file(&git, &src, "f2.txt", "f2\n", "more feature");
    git.ok(&src, &["push", "-q", &url, "feature"]);
    assert_eq!(remote_head(&git), git.rev(&src, "feature"));
    let synchronized = git.rev(&src, "feature");
    // Nobody pushes to it.
    let out = git.fails(&src, &["push", &url, &format!("+main:{head_ref}")]);
    assert!(out.contains("deny updating a hidden ref"), "{out}");
    let out = git.fails(&src, &["push", &url, "main:refs/pull/77/head"]);
    assert!(out.contains("deny updating a hidden ref"), "{out}");
    assert_eq!(remote_head(&git), synchronized, "a refused push moved it");
    git.ok(&src, &["checkout", "-q", "main"]);

    let merged = call(
        "merge_pr",
        json!({"artifact_id": "lab/prs", "pr_number": n}),
    );
    assert_eq!(merged["status"], "merged", "{merged}");
    let other = call(
        "create_pr",
        json!({"artifact_id": "lab/prs", "title": "Other", "source_branch": "other"}),
    )["pr_number"]
        .as_u64()
        .unwrap();
    call(
        "close_pr",
        json!({"artifact_id": "lab/prs", "pr_number": other, "comment": "not now"}),
    );
    call(
        "reopen_pr",
        json!({"artifact_id": "lab/prs", "pr_number": other}),
    );

    assert!(
        receiver.wait_for("pull_request", 6, std::time::Duration::from_secs(30)),
        "pull_request events: {:?}",
        receiver
            .of_event("pull_request")
            .iter()
            .map(Received::json)
            .collect::<Vec<_>>()
    );
    let events = receiver.of_event("pull_request");
    let seen: Vec<(u64, String, bool)> = events
        .iter()
        .map(|r| {
            assert_signed(r, secret);
            let p = r.json();
            (
                p["number"].as_u64().unwrap(),
                p["action"].as_str().unwrap().to_owned(),
                p["pull_request"]["merged"].as_bool().unwrap(),
            )
        })
        .collect();
    let action = |a: &str| a.to_owned();
    // The record is read when a payload is built: a late `synchronize` may already show
    // the merge.
    assert_eq!(
        seen,
        [
            (n, action("opened"), false),
            (n, action("synchronize"), seen[1].2),
            (n, action("closed"), true),
            (other, action("opened"), false),
            (other, action("closed"), false),
            (other, action("reopened"), false),
        ]
    );
    let sync = events[1].json();
    assert_eq!(sync["after"], synchronized.as_str());
    assert_eq!(sync["pull_request"]["head"]["ref"], "feature");
    assert_eq!(sync["pull_request"]["base"]["ref"], "main");
    assert_eq!(sync["repository"]["full_name"], "lab/prs");
    let closed = events[2].json();
    assert_eq!(
        closed["pull_request"]["merge_commit_sha"],
        merged["merge_sha"]
    );
    assert_eq!(closed["sender"]["login"], "alice");
    // The head ref's moves are not `push` events; the branches' are.
    let pushed: Vec<String> = receiver
        .of_event("push")
        .iter()
        .map(|r| r.json()["ref"].as_str().unwrap().to_owned())
        .collect();
    assert!(
        pushed.iter().all(|r| !r.starts_with("refs/pull/")),
        "{pushed:?}"
    );
    assert!(
        pushed.contains(&"refs/heads/feature".to_owned()),
        "{pushed:?}"
    );
}

backend_tests!(pull_request_refs_and_events);

/// `validate_push_policy` tries a policy on the recorded changes before it is saved.
fn validating_a_policy(backend: &Backend) {
    let Scratch {
        server,
        url: _,
        git,
        work: _work,
        src,
    } = Scratch::new(backend, "lab/trial");
    let admin = server.token_for("lab", None, "a", Some("alice"));
    let pusher = server.token_for("lab", None, "rw", Some("carol"));
    let validate = |policy: Value| {
        let answer = server.rpc(
            Some(&admin),
            "validate_push_policy",
            json!({"artifact_id": "lab/trial", "policy": policy, "last": 20}),
        );
        assert!(answer.get("error").is_none(), "{answer}");
        answer["result"].clone()
    };
    let no_force = json!({"rules": [{"refs": ["refs/heads/main"], "no_force": true}], "deny_paths": ["*.env"]});
    // Nothing recorded yet: recording starts.
    // A malformed or unknown-field policy is refused before anything is tried or recorded.
    for bad in [
        json!({"rules": [{"refs": ["heads/main"]}]}),
        json!({"rulez": []}),
        json!("x"),
    ] {
        let answer = server.rpc(
            Some(&admin),
            "validate_push_policy",
            json!({"artifact_id": "lab/trial", "policy": bad}),
        );
        assert_eq!(answer["error"]["code"], -32602, "{answer}");
    }
    let first = validate(no_force.clone());
    assert_eq!(first["recording_started"], true, "{first}");
    commit_file(&git, &src, "a.txt", "a\n", "one");
    let one = git.rev(&src, "HEAD");
    let authed = server.url_with_token("lab/trial", &pusher);
    git.ok(&src, &["push", "-q", &authed, "main"]);
    commit_file(&git, &src, "prod.env", "KEY=1\n", "two");
    git.ok(&src, &["push", "-q", &authed, "main"]);
    // A force push back to the first commit.
    git.ok(
        &src,
        &[
            "push",
            "-q",
            "-f",
            &authed,
            &format!("{one}:refs/heads/main"),
        ],
    );
    let report = validate(no_force);
    assert_eq!(report["checked"], 3, "{report}");
    let refused = report["refused"].as_array().unwrap();
    let reasons: Vec<(&str, &str)> = refused
        .iter()
        .map(|r| (r["pusher"].as_str().unwrap(), r["reason"].as_str().unwrap()))
        .collect();
    assert_eq!(reasons.len(), 2, "{report}");
    assert!(reasons[0].1.contains("prod.env"), "{reasons:?}");
    assert_eq!(
        reasons[1],
        (
            "carol",
            "protected branch: non-fast-forward updates are not allowed"
        )
    );
    // A policy that allows all of it refuses none; nothing was saved.
    let report = validate(json!({}));
    assert_eq!(report["refused"], json!([]), "{report}");
    let saved = server.rpc(
        Some(&admin),
        "get_push_policy",
        json!({"artifact_id": "lab/trial"}),
    );
    assert_eq!(saved["result"]["policy"]["rules"], json!([]), "{saved}");
}

backend_tests!(validating_a_policy);
