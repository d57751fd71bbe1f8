//! The real `huggingface_hub` client (pinned by `scripts/install-git-clients`) against the
//! Hub API under `/hf`, on both backends: `tests/hub/hub_client.py` writes and reads a
//! repository every way the client can and reports what it saw; here that is compared with
//! what `git` and `git lfs` say of the same repository in a clone.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::path::{Path, PathBuf};
use std::process::Command;

use serde_json::{json, Value};

use artifact_git_e2e::*;

fn python() -> PathBuf {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../.ci/clientsvenv/bin/python");
    assert!(
        path.exists(),
        "{} is missing: run scripts/install-git-clients (scripts/test does)",
        path.display()
    );
    path
}

/// The folder the client uploads: a config, a 3 MiB model (LFS by `.gitattributes`), a text
/// file under the LFS threshold, two data files.
fn source(dir: &Path) {
    let mut rng = Rng::new(11);
    std::fs::create_dir_all(dir.join("data")).unwrap();
    std::fs::write(dir.join("config.json"), "{\"hidden\": 64}\n").unwrap();
    std::fs::write(dir.join("model.safetensors"), rng.bytes(3 << 20)).unwrap();
    let text: String = (0..30_000)
        .map(|i| format!("line {i} {}\n", rng.next_u64()))
        .collect();
    std::fs::write(dir.join("big.dat"), text).unwrap();
    std::fs::write(dir.join("data/a.txt"), "a\n").unwrap();
    std::fs::write(dir.join("data/b.txt"), "b\n").unwrap();
}

fn strings(v: &Value) -> Vec<String> {
    v.as_array()
        .unwrap()
        .iter()
        .map(|s| s.as_str().unwrap().to_owned())
        .collect()
}

fn hub_client(backend: &Backend) {
    let server = Server::start_on(backend);
    let work = TempDir::new().unwrap();
    let src = work.path().join("source");
    source(&src);
    let scratch = work.path().join("scratch");
    std::fs::create_dir(&scratch).unwrap();
    let token = server.token("lab", None, "a");
    let out = Command::new(python())
        .arg(Path::new(env!("CARGO_MANIFEST_DIR")).join("hub/hub_client.py"))
        .env("HF_ENDPOINT", format!("{}/hf", server.url))
        .env("HF_TOKEN", &token)
        .env("HF_HOME", scratch.join("home"))
        .env("HF_HUB_DISABLE_TELEMETRY", "1")
        .env("HF_HUB_DISABLE_PROGRESS_BARS", "1")
        .env("REPO_ID", "lab/hubmodel")
        .env("SOURCE", &src)
        .env("WORK", &scratch)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "the client failed:\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let seen: Value = serde_json::from_slice(&out.stdout).unwrap();

    // What git says of the same repository.
    let git = Git::default();
    git.lfs_install();
    let url = server.repo_url("lab/hubmodel");
    let clone = work.path().join("clone");
    git.ok(work.path(), &["clone", "-q", &url, clone.to_str().unwrap()]);
    git.ok(&clone, &["fsck", "--strict"]);
    git.ok(&clone, &["lfs", "fsck"]);
    let log = git.ok(&clone, &["log", "--format=%H", "main"]);
    assert_eq!(strings(&seen["commits"]), log.lines().collect::<Vec<_>>());
    assert_eq!(seen["sha"], git.rev(&clone, "main").as_str());
    let titles = git.ok(&clone, &["log", "--format=%s", "main"]);
    assert_eq!(
        strings(&seen["commit_titles"]),
        titles.lines().collect::<Vec<_>>()
    );
    // Refs: the branches and tags the client listed are the ones git sees.
    let remote = git.ok(&clone, &["ls-remote", &url]);
    for (kind, prefix) in [("branches", "refs/heads/"), ("tags", "refs/tags/")] {
        let mut ours: Vec<String> = seen[kind]
            .as_array()
            .unwrap()
            .iter()
            .map(|p| {
                format!(
                    "{} {prefix}{}",
                    p[1].as_str().unwrap(),
                    p[0].as_str().unwrap()
                )
            })
            .collect();
        ours.sort();
        let mut theirs: Vec<String> = remote
            .lines()
            .filter(|l| l.contains(prefix) && !l.ends_with("^{}"))
            .map(|l| {
                let (id, name) = l.split_once('\t').unwrap();
                let peeled = if prefix == "refs/tags/" {
                    git.rev(&clone, &format!("{name}^{{commit}}"))
                } else {
                    id.to_owned()
                };
                format!("{peeled} {name}")
            })
            .collect();
        theirs.sort();
        assert_eq!(ours, theirs, "{kind}");
    }
    assert_eq!(git.ok(&clone, &["cat-file", "-t", "v1"]).trim(), "tag");
    // Storage managed through the client: the unreferenced LFS object deleted, the history
    // squashed into one commit, the scratch repository deleted.
    assert_eq!(
        seen["lfs_files"],
        json!([["", 300_000], ["new.bin", 200_000]]),
        "{}",
        seen["lfs_files"]
    );
    assert_eq!(seen["lfs_files_after"], json!([["new.bin", 200_000]]));
    assert_eq!(seen["squashed"], json!(["squashed"]));
    assert_eq!(seen["deleted"], true);
    // Files: the names, blob ids and LFS objects the client saw.
    let files = git.ok(&clone, &["ls-files"]);
    assert_eq!(strings(&seen["files"]), files.lines().collect::<Vec<_>>());
    for s in seen["siblings"].as_array().unwrap() {
        let path = s[0].as_str().unwrap();
        assert_eq!(
            s[2],
            git.rev(&clone, &format!("main:{path}")).as_str(),
            "{path}"
        );
        let bytes = std::fs::read(clone.join(path)).unwrap();
        assert_eq!(s[1].as_u64().unwrap(), bytes.len() as u64, "{path}");
        if let Some(oid) = s[3].as_str() {
            assert_eq!(oid, sha256_hex(&bytes), "{path}");
        }
    }
    // The model uploaded through LFS is the source's, in the clone and copied.
    let model = std::fs::read(src.join("model.safetensors")).unwrap();
    assert!(std::fs::read(clone.join("model.safetensors")).unwrap() == model);
    assert!(std::fs::read(clone.join("copies/model.safetensors")).unwrap() == model);
    let v1_files = git.ok(&clone, &["ls-tree", "-r", "--name-only", "v1"]);
    assert_eq!(
        strings(&seen["files_at_v1"]),
        v1_files.lines().collect::<Vec<_>>()
    );
    // Downloads: the bytes of each file at each revision.
    let at = |rev: &str, path: &str| -> String {
        git.ok(&clone, &["checkout", "-q", rev, "--", path]);
        let bytes = std::fs::read(clone.join(path)).unwrap();
        git.ok(&clone, &["checkout", "-q", "main", "--", "."]);
        sha256_hex(&bytes)
    };
    let folder = seen["folder_commit"].as_str().unwrap().to_owned();
    let downloads = &seen["downloads"];
    assert_eq!(
        downloads["config.json@None"],
        at("main", "config.json").as_str()
    );
    assert_eq!(
        downloads["model.safetensors@main"],
        sha256_hex(&model).as_str()
    );
    assert_eq!(
        downloads[&format!("big.dat@{folder}")],
        at(&folder, "big.dat").as_str()
    );
    assert_eq!(downloads["README.md@v1"], at("v1", "README.md").as_str());
    assert_eq!(
        downloads["data/a.txt@dev"],
        at("origin/dev", "data/a.txt").as_str()
    );
    assert_eq!(
        downloads["data/a.txt (subfolder)"],
        downloads["data/a.txt@dev"]
    );
    assert_eq!(seen["resumed"], true);
    // Snapshots: the patterns' files; all of them with their bytes.
    assert_eq!(
        strings(&seen["snapshot"]),
        vec!["config.json", "data/c.txt"]
    );
    let all: Vec<(String, String)> = seen["snapshot_all"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| {
            (
                p[0].as_str().unwrap().to_owned(),
                p[1].as_str().unwrap().to_owned(),
            )
        })
        .collect();
    let expected: Vec<(String, String)> = files
        .lines()
        .map(|p| {
            (
                p.to_owned(),
                sha256_hex(&std::fs::read(clone.join(p)).unwrap()),
            )
        })
        .collect();
    assert_eq!(all, expected);
    // Listings: last commits as `git log -1 -- <path>` finds them.
    for e in seen["tree"].as_array().unwrap() {
        let path = e[0].as_str().unwrap();
        let last = git.ok(&clone, &["log", "-1", "--format=%H", "main", "--", path]);
        assert_eq!(e[3], last.trim(), "{path}");
        assert_eq!(
            e[2],
            git.rev(&clone, &format!("main:{path}")).as_str(),
            "{path}"
        );
    }
    let infos: Vec<&str> = seen["paths_info"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p[0].as_str().unwrap())
        .collect();
    assert_eq!(infos, vec!["config.json", "data", "model.safetensors"]);
    assert_eq!(seen["fs_read"], true);
    let ls = strings(&seen["fs_ls"]);
    assert!(
        ls.contains(&"lab/hubmodel/data".to_owned())
            && ls.contains(&"lab/hubmodel/big.dat".to_owned())
    );
}

/// What a hostile or broken client could send to the Hub API: each gets a status and a
/// reason the client can read, nothing is written, and no signature or token reaches the log.
fn hub_hostile(backend: &Backend) {
    let logs = TempDir::new().unwrap();
    let log = logs.path().join("server.log");
    let server = Server::start_on_launched(
        backend,
        &["--max-hub-commit-size", "1MiB"],
        &Launch {
            log_file: Some(log.clone()),
            log_filter: Some("debug".into()),
            ..Launch::default()
        },
    );
    let token = server.token("lab", None, "a");
    let auth = format!("Authorization: Bearer {token}");
    let api = format!("{}/hf/api", server.url);
    let (status, body) = curl_post(
        &format!("{api}/repos/create"),
        "application/json",
        br#"{"name": "hostile", "organization": "lab", "private": true}"#,
        &["-H", &auth],
    );
    assert_eq!(status, 200, "{}", String::from_utf8_lossy(&body));
    let head = || {
        let (_, b) = curl_post(
            &format!("{api}/models/lab/hostile/refs"),
            "",
            b"",
            &["-X", "GET", "-H", &auth],
        );
        let v: Value = serde_json::from_slice(&b).unwrap();
        v["branches"][0]["targetCommit"]
            .as_str()
            .unwrap()
            .to_owned()
    };
    let before = head();
    let commit = |body: &[u8]| {
        curl_post(
            &format!("{api}/models/lab/hostile/commit/main"),
            "application/x-ndjson",
            body,
            &["-H", &auth],
        )
    };
    let header = r#"{"key":"header","value":{"summary":"x"}}"#;
    for (body, status) in [
        (b"not json\n".to_vec(), 400),
        (format!("{header}\n{{\"key\":\"file\",\"value\":{{\"path\":\"../x\",\"content\":\"eA==\",\"encoding\":\"base64\"}}}}\n").into_bytes(), 400),
        (format!("{header}\n{{\"key\":\"file\",\"value\":{{\"path\":\".git/config\",\"content\":\"eA==\"}}}}\n").into_bytes(), 400),
        (format!("{header}\n{{\"key\":\"lfsFile\",\"value\":{{\"path\":\"w.bin\",\"algo\":\"sha256\",\"oid\":\"{}\"}}}}\n", "a".repeat(64)).into_bytes(), 404),
        (format!("{header}\n{{\"key\":\"deletedFile\",\"value\":{{\"path\":\"nothing\"}}}}\n").into_bytes(), 404),
        (format!("{header}\n{{\"key\":\"rmrf\",\"value\":{{}}}}\n").into_bytes(), 400),
        (br#"{"key":"file","value":{"path":"a","content":"eA=="}}"#.to_vec(), 400),
        (vec![b'x'; 3 << 20], 413),
    ] {
        let (got, answer) = commit(&body);
        assert_eq!(got, status, "{}", String::from_utf8_lossy(&answer));
        let v: Value = serde_json::from_slice(&answer).unwrap_or(Value::Null);
        assert!(v["error"].is_string() || status == 413, "{}", String::from_utf8_lossy(&answer));
    }
    let (got, _) = curl_post(
        &format!("{api}/models/lab/hostile/commit/main?create_pr=1"),
        "application/x-ndjson",
        format!("{header}\n").as_bytes(),
        &["-H", &auth],
    );
    assert_eq!(got, 400);
    assert_eq!(head(), before, "a refused commit moved the branch");
    // Too many paths or files at once; a bad cursor; a branch that is not one.
    let many: String = (0..1001).map(|i| format!("paths=p{i}&")).collect();
    let (got, _) = curl_post(
        &format!("{api}/models/lab/hostile/paths-info/main"),
        "application/x-www-form-urlencoded",
        many.as_bytes(),
        &["-H", &auth],
    );
    assert_eq!(got, 400);
    let files: Vec<Value> = (0..1001)
        .map(|i| serde_json::json!({"path": format!("f{i}"), "size": 1, "sample": ""}))
        .collect();
    let (got, _) = curl_post(
        &format!("{api}/models/lab/hostile/preupload/main"),
        "application/json",
        serde_json::json!({"files": files}).to_string().as_bytes(),
        &["-H", &auth],
    );
    assert_eq!(got, 400);
    let bad = curl_get(
        &format!("{api}/models/lab/hostile/tree/main?cursor=-1"),
        &["-H", &auth],
    );
    assert_eq!(bad.status, 400);
    let (got, _) = curl_post(
        &format!("{api}/models/lab/hostile/preupload/refs%2Fpr%2F1"),
        "application/json",
        br#"{"files": []}"#,
        &["-H", &auth],
    );
    assert_eq!(got, 400);
    // Another workspace's token finds nothing; no token, the repository is not found either.
    let other = server.token("elsewhere", None, "a");
    let theirs = curl_get(
        &format!("{api}/models/lab/hostile"),
        &["-H", &format!("Authorization: Bearer {other}")],
    );
    assert!(matches!(theirs.status, 403 | 404), "{}", theirs.status);
    let anonymous = curl_get(&format!("{api}/models/lab/hostile"), &[]);
    assert_eq!(
        (anonymous.status, anonymous.header("x-error-code")),
        (401, Some("RepoNotFound"))
    );
    let forged = curl_get(
        &format!("{api}/whoami-v2"),
        &["-H", "Authorization: Bearer not-a-token"],
    );
    assert_eq!(
        forged.header("x-error-message"),
        Some("Invalid credentials in Authorization header")
    );
    // An object URL's token: good for that object's URL, nowhere else.
    let oid = sha256_hex(b"payload");
    let batch = serde_json::json!({"operation": "upload", "transfers": ["basic"], "objects": [{"oid": oid, "size": 7}]});
    let (got, answer) = curl_post(
        &format!("{}/hf/lab/hostile.git/info/lfs/objects/batch", server.url),
        "application/vnd.git-lfs+json",
        batch.to_string().as_bytes(),
        &["-H", &auth],
    );
    assert_eq!(got, 200);
    let v: Value = serde_json::from_slice(&answer).unwrap();
    let href = v["objects"][0]["actions"]["upload"]["href"]
        .as_str()
        .unwrap()
        .to_owned();
    if let Backend::Fs = backend {
        let object_token = href
            .split("token=")
            .nth(1)
            .expect("a signed object URL")
            .to_owned();
        let elsewhere = href.replace(&oid, &sha256_hex(b"other"));
        let (got, _) = curl_post(
            &elsewhere,
            "application/octet-stream",
            b"payload",
            &["-X", "PUT"],
        );
        assert_eq!(got, 401, "an object's token opened another object");
        let as_bearer = curl_get(
            &format!("{api}/models/lab/hostile"),
            &["-H", &format!("Authorization: Bearer {object_token}")],
        );
        assert_eq!(as_bearer.status, 401, "an object's token opened the API");
        let (got, _) = curl_post(
            &href,
            "application/octet-stream",
            b"payload",
            &["-X", "PUT"],
        );
        assert_eq!(got, 200, "the signed URL itself works");
    }
    // Nothing secret in the log.
    let text = std::fs::read_to_string(&log).unwrap();
    for secret in ["token=", "X-Amz-Signature", "Signature=", token.as_str()] {
        assert!(!text.contains(secret), "the log holds {secret:?}");
    }
}

backend_tests!(hub_client, hub_hostile);
