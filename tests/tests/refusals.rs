//! A refused call changes nothing: each call below is refused with a readable error, and the
//! storage (every key and its bytes) is exactly as it was before it. Concurrent creators of a
//! repository: the one told "created" is the one whose settings stick.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use serde_json::{json, Value};

use artifact_git_e2e::*;

/// Call `method` as an admin of `lab`, which must be refused, and leave the storage as it was.
fn refused_without_a_trace(server: &Server, method: &str, params: Value) -> Value {
    let before = server.stored_state();
    let token = server.token("lab", None, "a");
    let answer = server.rpc(Some(&token), method, params.clone());
    assert!(
        answer["error"]["message"].is_string(),
        "{method} {params} was not refused: {answer}"
    );
    let after = server.stored_state();
    let changed: Vec<&String> = after
        .iter()
        .filter(|(k, v)| before.get(*k) != Some(*v))
        .map(|(k, _)| k)
        .chain(before.keys().filter(|k| !after.contains_key(*k)))
        .collect();
    assert!(changed.is_empty(), "{method} {params} changed {changed:?}");
    answer["error"].clone()
}

fn refused_calls_change_nothing(backend: &Backend) {
    let server =
        Server::start_on_with(backend, &["--webhook-allow-private", "--events-poll", "1h"]);
    server.init("lab/data");
    let receiver = Receiver::start();
    let hook = server.call(
        "lab",
        "add_webhook",
        json!({"artifact_id": "lab/data", "url": receiver.url, "secret": "s3cr3t", "active": false}),
    );
    let id = hook["id"].as_str().unwrap().to_owned();
    // (Inactive hooks: no ping is delivered, and logged, while the storage is compared.)
    // Updates that break a rule are checked before anything is stored.
    for bad in [
        json!({"events": ["nonsense"]}),
        json!({"events": []}),
        json!({"secret": ""}),
        json!({"secret": "x".repeat(1025)}),
        json!({"secret": "whsec_!!!"}),
        json!({"events": ["push"], "secret": ""}),
    ] {
        let mut params = json!({"artifact_id": "lab/data", "id": id});
        params
            .as_object_mut()
            .unwrap()
            .extend(bad.as_object().unwrap().clone());
        refused_without_a_trace(&server, "update_webhook", params);
    }
    let listed = server.call("lab", "list_webhooks", json!({"artifact_id": "lab/data"}));
    assert_eq!(listed["webhooks"][0]["events"], json!(["push"]), "{listed}");
    // At the cap, an added webhook is refused before anything is written.
    for n in 1..20 {
        server.call(
            "lab",
            "add_webhook",
            json!({"artifact_id": "lab/data", "url": format!("{}/{n}", receiver.url), "secret": "s", "active": false}),
        );
    }
    for _ in 0..5 {
        refused_without_a_trace(
            &server,
            "add_webhook",
            json!({"artifact_id": "lab/data", "url": receiver.url, "secret": "s"}),
        );
    }
    // Branch names git would refuse.
    for branch in ["HEAD", "-x", "a..b"] {
        refused_without_a_trace(
            &server,
            "enable_git",
            json!({"artifact_id": "lab/other", "default_branch": branch}),
        );
        refused_without_a_trace(
            &server,
            "commit_files",
            json!({"artifact_id": "lab/data", "branch": branch, "expected_head": null,
                   "message": "m", "changes": [{"op": "put", "path": "a.txt", "content": "a"}]}),
        );
    }
    // `.git` in the spellings other file systems read as `.git`: the caller's bad input
    // (invalid params), refused as a push of such a tree is.
    for path in [
        "GIT~1/config",
        ".git./hooks/x",
        "a/.GIT\u{200c}/x",
        ".git/config",
    ] {
        let error = refused_without_a_trace(
            &server,
            "commit_files",
            json!({"artifact_id": "lab/data", "branch": "main", "expected_head": null,
                   "message": "m", "changes": [{"op": "put", "path": path, "content": "x"}]}),
        );
        assert_eq!(error["code"], -32602, "{path}: {error}");
    }
    // A Git LFS pointer to an object never uploaded is refused, as a push of it is.
    let pointer = "version https://git-lfs.github.com/spec/v1\noid sha256:4d7a214614ab2935c943f9e0ff69d22eadbb8f32b1258daaa5e2ca24d17e2393\nsize 12345\n";
    let error = refused_without_a_trace(
        &server,
        "commit_files",
        json!({"artifact_id": "lab/data", "branch": "main", "expected_head": null,
               "message": "dangling", "changes": [{"op": "put", "path": "model.bin", "content": pointer}]}),
    );
    assert!(
        error["message"].as_str().unwrap().contains("Git LFS"),
        "{error}"
    );
}

/// Twenty concurrent `enable_git` calls, half asking for a public repository: one is told
/// "created", and the repository is as that one asked.
fn the_creators_settings_stick(backend: &Backend) {
    let server = Server::start_on(backend);
    let token = server.token("lab", None, "a");
    for round in 0..3 {
        let artifact = format!("lab/race{round}");
        let answers: Vec<(bool, Value)> = std::thread::scope(|scope| {
            let handles: Vec<_> = (0..20)
                .map(|i| {
                    let (server, token, artifact) = (&server, &token, &artifact);
                    scope.spawn(move || {
                        let public = i % 2 == 0;
                        let params = json!({"artifact_id": artifact, "public": public});
                        (public, server.rpc(Some(token), "enable_git", params))
                    })
                })
                .collect();
            handles.into_iter().map(|h| h.join().unwrap()).collect()
        });
        let creators: Vec<bool> = answers
            .iter()
            .filter(|(_, a)| a["result"]["created"] == json!(true))
            .map(|(public, _)| *public)
            .collect();
        assert_eq!(creators.len(), 1, "{answers:?}");
        let path = format!(
            "/{}/info/refs?service=git-upload-pack",
            artifact.replace("lab/", "lab/git/")
        );
        let anonymous = server.status(&path, None);
        let expected = if creators[0] { 200 } else { 401 };
        assert_eq!(
            anonymous, expected,
            "the creator asked public: {}",
            creators[0]
        );
    }
}

backend_tests!(refused_calls_change_nothing, the_creators_settings_stick);
