//! The real `huggingface_hub` client (pinned by `scripts/install-git-clients`) against the
//! Hub API under `/hf`, on both backends: `tests/hub/hub_client.py` writes and reads a
//! repository every way the client can and reports what it saw; here that is compared with
//! what `git` and `git lfs` say of the same repository in a clone.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::path::{Path, PathBuf};
use std::process::Command;

use serde_json::Value;

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

backend_tests!(hub_client);
