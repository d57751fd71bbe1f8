//! Clones served by the bucket (`bundle-uri`), with real git (2.47 here) on both
//! backends: maintenance keeps a base bundle and incremental ones; `git clone` with
//! `transfer.bundleURI` takes them (on S3 straight from the bucket: the server's byte counter
//! shows only the list and a small pack went through it) and fetches only what is newer; the
//! result equals a plain clone and passes `fsck --strict`; a force push and a deleted branch
//! since the bundles were made never break a clone nor ship the deleted branch's objects; a
//! fetch with `fetch.bundleURI` and a clone with `--bundle-uri` of the API's bundle URL work.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::path::Path;

use serde_json::json;

use artifact_git_e2e::*;

/// Branches and tags of a clone as `origin` has them.
fn remote_refs(git: &Git, dir: &Path) -> String {
    git.ok(
        dir,
        &[
            "for-each-ref",
            "--format=%(objectname) %(refname)",
            "refs/remotes/origin",
            "refs/tags",
        ],
    )
}

/// Clone with `transfer.bundleURI` (unless `args` hold `transfer.bundleURI=false`, as
/// `clone -c` options); fsck it.
fn clone(git: &Git, work: &Path, name: &str, args: &[&str], url: &str) -> std::path::PathBuf {
    let dir = work.join(name);
    let bundles = !args.contains(&"transfer.bundleURI=false");
    let mut all = match bundles {
        true => vec!["-c", "transfer.bundleURI=true", "clone", "-q"],
        false => vec!["clone", "-q"],
    };
    all.extend_from_slice(args);
    all.extend([url, dir.to_str().unwrap()]);
    let out = git.run(work, &all);
    assert!(
        out.status.success(),
        "clone: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    git.ok(&dir, &["fsck", "--strict", "--no-progress"]);
    dir
}

fn bundle_refs(git: &Git, dir: &Path) -> usize {
    git.ok(dir, &["for-each-ref", "refs/bundles"])
        .lines()
        .count()
}

fn bundles(server: &Server, repo: &str) -> serde_json::Value {
    let (ws, alias) = repo.split_once('/').unwrap();
    let key = format!("{ws}/artifacts/{alias}/git/bundles/list.json");
    let state = server.stored_state();
    let list = state
        .iter()
        .find(|(k, _)| k.ends_with(&key))
        .unwrap_or_else(|| panic!("no bundle list"));
    serde_json::from_slice(list.1).unwrap()
}

fn bundle_uri(backend: &Backend) {
    // Advertised bundle lists with creation tokens are taken by git 2.42 and newer.
    let Some(bin) = git_at_least(2, 45) else {
        panic!("bundle-uri needs a recent git (the test machine's /usr/local/bin/git is 2.47)");
    };
    let git = Git::new(bin);
    let server = Server::start_on(backend);
    server.init("lab/big");
    let url = server.repo_url("lab/big");
    let work = TempDir::new().unwrap();
    let src = work.path().join("src");
    std::fs::create_dir(&src).unwrap();
    make_history(&git, &src, 300, 21);
    git.ok(&src, &["tag", "-a", "v1", "-m", "one"]);
    git.ok(&src, &["branch", "secret"]);
    git.ok(&src, &["checkout", "-q", "secret"]);
    let secret = commit_file(&git, &src, "secret.txt", "password\n", "a secret");
    git.ok(&src, &["checkout", "-q", "main"]);
    git.ok(&src, &["push", "-q", &url, "--all"]);
    git.ok(&src, &["push", "-q", &url, "--tags"]);

    // Without bundles the list is empty and a clone is a plain one.
    let plain = clone(&git, work.path(), "plain0", &[], &url);
    assert_eq!(bundle_refs(&git, &plain), 0);

    // Maintenance makes the base bundle; a clone takes it and fetches nothing more.
    server.maintain("lab/big", &[]);
    let list = bundles(&server, "lab/big");
    assert_eq!(list["bundles"].as_array().unwrap().len(), 1, "{list}");
    let pack_size: u64 = list["bundles"][0]["size"].as_u64().unwrap();
    let sent = server.metric("artifact_git_sent_bytes_total");
    let with = clone(&git, work.path(), "with1", &[], &url);
    let through = server.metric("artifact_git_sent_bytes_total") - sent;
    assert!(bundle_refs(&git, &with) > 0, "the bundle was not used");
    assert_eq!(remote_refs(&git, &with), remote_refs(&git, &plain));
    if matches!(backend, Backend::S3 { .. }) {
        // The bundle came from the bucket: only the list and the refs went through the server.
        assert!(
            through * 50 < pack_size,
            "{through} bytes through the server for a {pack_size}-byte bundle"
        );
    }

    // Ten commits later, before maintenance: the bundle and a small fetch.
    for i in 0..10 {
        commit_file(
            &git,
            &src,
            "new.txt",
            &format!("{i}\n"),
            &format!("new {i}"),
        );
    }
    git.ok(&src, &["push", "-q", &url, "main"]);
    let sent = server.metric("artifact_git_sent_bytes_total");
    let newer = clone(&git, work.path(), "with2", &[], &url);
    let through_newer = server.metric("artifact_git_sent_bytes_total") - sent;
    let plain = clone(
        &git,
        work.path(),
        "plain2",
        &["-c", "transfer.bundleURI=false"],
        &url,
    );
    assert!(bundle_refs(&git, &newer) > 0);
    assert_eq!(remote_refs(&git, &newer), remote_refs(&git, &plain));
    // The next client of the fleet asks the same: the pack built for the first is sent again,
    // and it clones the same.
    let reused = server.metric("artifact_git_answers_reused_total");
    let again = clone(&git, work.path(), "with2-again", &[], &url);
    assert!(server.metric("artifact_git_answers_reused_total") > reused);
    assert_eq!(remote_refs(&git, &again), remote_refs(&git, &plain));
    git.ok(&again, &["fsck", "--strict"]);
    if matches!(backend, Backend::S3 { .. }) {
        assert!(
            through_newer * 20 < pack_size,
            "{through_newer} bytes for ten commits"
        );
    }

    // An incremental bundle on top; `fetch.bundleURI` for a later fetch.
    server.maintain("lab/big", &[]);
    let list = bundles(&server, "lab/big");
    assert_eq!(list["bundles"].as_array().unwrap().len(), 2, "{list}");
    assert!(!list["bundles"][1]["prerequisites"]
        .as_array()
        .unwrap()
        .is_empty());
    let fresh = clone(&git, work.path(), "with3", &[], &url);
    assert_eq!(remote_refs(&git, &fresh), remote_refs(&git, &plain));
    commit_file(&git, &src, "later.txt", "later\n", "later");
    git.ok(&src, &["push", "-q", &url, "main"]);
    git.ok(
        &newer,
        &[
            "-c",
            &format!("fetch.bundleURI={url}"),
            "fetch",
            "-q",
            "origin",
        ],
    );
    assert_eq!(git.rev(&newer, "origin/main"), git.rev(&src, "main"));

    // A force push and a deleted branch after the bundles were made: they are stale, the
    // list leaves them out, the clone is right and the deleted branch's commit is not in it.
    git.ok(&src, &["reset", "-q", "--hard", "HEAD~5"]);
    git.ok(&src, &["push", "-q", "--force", &url, "main"]);
    git.ok(&src, &["push", "-q", &url, ":secret"]);
    let after = clone(&git, work.path(), "with4", &[], &url);
    let plain = clone(
        &git,
        work.path(),
        "plain4",
        &["-c", "transfer.bundleURI=false"],
        &url,
    );
    assert_eq!(remote_refs(&git, &after), remote_refs(&git, &plain));
    assert_eq!(bundle_refs(&git, &after), 0, "a stale bundle was listed");
    assert!(
        !git.run(&after, &["cat-file", "-e", &secret])
            .status
            .success(),
        "the deleted branch's commit shipped"
    );
    // Maintenance makes a new base of what the refs reach now.
    server.maintain("lab/big", &[]);
    let list = bundles(&server, "lab/big");
    assert_eq!(list["bundles"].as_array().unwrap().len(), 1, "{list}");
    assert!(!list.to_string().contains("refs/heads/secret"));
    let rebuilt = clone(&git, work.path(), "with5", &[], &url);
    assert!(bundle_refs(&git, &rebuilt) > 0);
    assert_eq!(remote_refs(&git, &rebuilt), remote_refs(&git, &plain));
    assert!(!git
        .run(&rebuilt, &["cat-file", "-e", &secret])
        .status
        .success());

    // A bundle file lost behind the server's back: left out of the list, the clone is plain,
    // and the next maintenance makes a new base.
    let lost = list["bundles"][0]["file"].as_str().unwrap().to_owned();
    server.delete_stored(&format!("lab/artifacts/big/git/bundles/{lost}"));
    let without = clone(&git, work.path(), "with6", &[], &url);
    assert_eq!(bundle_refs(&git, &without), 0);
    assert_eq!(remote_refs(&git, &without), remote_refs(&git, &plain));
    server.maintain("lab/big", &[]);
    let list = bundles(&server, "lab/big");
    assert_ne!(list["bundles"][0]["file"].as_str().unwrap(), lost, "{list}");
    let restored = clone(&git, work.path(), "with7", &[], &url);
    assert!(bundle_refs(&git, &restored) > 0);

    // `git clone --bundle-uri` with the URL the `bundle` method hands out.
    let token = server.token("lab", None, "r");
    let answer = server.call("lab", "bundle", json!({"artifact_id": "lab/big"}));
    let bundle_url = answer["url"].as_str().unwrap();
    let header = format!("http.extraHeader=Authorization: Bearer {token}");
    let dir = work.path().join("by-uri");
    git.ok(
        work.path(),
        &[
            "-c",
            &header,
            "clone",
            "-q",
            &format!("--bundle-uri={bundle_url}"),
            &server.plain_url("lab/big"),
            dir.to_str().unwrap(),
        ],
    );
    git.ok(&dir, &["fsck", "--strict", "--no-progress"]);
    assert_eq!(remote_refs(&git, &dir), remote_refs(&git, &plain));

    // Hostile requests for bundle files.
    let file = list["bundles"][0]["file"].as_str().unwrap();
    let base = server.plain_url("lab/big");
    assert_eq!(http_status(&format!("{base}/bundles/{file}"), None), 401);
    assert_eq!(
        http_status(&format!("{base}/bundles/{file}?token=forged"), None),
        401
    );
    assert_eq!(
        http_status(&format!("{base}/bundles/list.json"), Some(&token)),
        404
    );
    assert_eq!(
        http_status(&format!("{base}/bundles/..%2flist.json"), Some(&token)),
        404
    );
    assert_eq!(
        http_status(&format!("{base}/bundles/0-base.bundle"), Some(&token)),
        404
    );
    if matches!(backend, Backend::Fs) {
        // A reader's own token does not fetch a bundle by name (a stale one may still be
        // stored); the URL a `bundle-uri` answer hands out does, with ranges.
        assert_eq!(
            http_status(&format!("{base}/bundles/{file}"), Some(&token)),
            404
        );
        let listed = listed_uris(&server, "lab/big", &token);
        assert_eq!(listed.len(), 1, "{listed:?}");
        let got = curl_get(&listed[0], &["-H", "Range: bytes=0-15"]);
        assert_eq!(got.status, 206);
        let signature = match object_format() {
            "sha1" => "# v2 git bundle\n",
            _ => "# v3 git bundle\n",
        };
        assert_eq!(got.body, signature.as_bytes());
    }
}

/// The bundle URIs a `bundle-uri` command answers for `repo`.
fn listed_uris(server: &Server, repo: &str, token: &str) -> Vec<String> {
    let body = [
        pkt("command=bundle-uri\n"),
        pkt(&format!("object-format={}\n", object_format())),
        b"0001".to_vec(),
        b"0000".to_vec(),
    ]
    .concat();
    let (status, out) = curl_post(
        &format!("{}/git-upload-pack", server.plain_url(repo)),
        "application/x-git-upload-pack-request",
        &body,
        &[
            "-H",
            "Git-Protocol: version=2",
            "-u",
            &format!("git:{token}"),
        ],
    );
    assert_eq!(status, 200);
    String::from_utf8_lossy(&out)
        .lines()
        .filter_map(|l| l.split_once(".uri=").map(|(_, u)| u.to_owned()))
        .collect()
}

backend_tests!(bundle_uri);

/// `packfile-uris`: a clone of everything downloads the stored packs itself, over the
/// schemes it accepts; anything else (another scheme, packs holding what a force push left
/// behind) gets the whole pack in-band.
fn packfile_uris(backend: &Backend) {
    let git = Git::new(git_at_least(2, 45).expect("a recent git"));
    let server = Server::start_on(backend);
    server.init("lab/packs");
    let url = server.repo_url("lab/packs");
    let work = TempDir::new().unwrap();
    let src = work.path().join("src");
    std::fs::create_dir(&src).unwrap();
    make_history(&git, &src, 100, 5);
    let mut rng = Rng::new(5);
    std::fs::write(src.join("weights.bin"), rng.bytes(3 << 20)).unwrap();
    git.ok(&src, &["add", "weights.bin"]);
    git.ok(&src, &["commit", "-q", "-m", "weights"]);
    git.ok(&src, &["branch", "secret"]);
    git.ok(&src, &["checkout", "-q", "secret"]);
    let secret = commit_file(&git, &src, "secret.txt", "password\n", "a secret");
    git.ok(&src, &["checkout", "-q", "main"]);
    git.ok(&src, &["push", "-q", &url, "--all"]);
    server.maintain("lab/packs", &[]);
    let plain = clone(
        &git,
        work.path(),
        "plain",
        &["-c", "transfer.bundleURI=false"],
        &url,
    );

    // Clones go to a replica started after maintenance (its pack list read fresh, as
    // maintenance inside a server keeps its own).
    let replica = std::cell::RefCell::new(server.replica());
    let uris = |name: &str, protocols: &str| -> (std::path::PathBuf, u64) {
        let server = replica.borrow();
        let url = server.repo_url("lab/packs");
        let sent = server.metric("artifact_git_sent_bytes_total");
        let dir = clone(
            &git,
            work.path(),
            name,
            &[
                "-c",
                "transfer.bundleURI=false",
                "-c",
                &format!("fetch.uriprotocols={protocols}"),
            ],
            &url,
        );
        (dir, server.metric("artifact_git_sent_bytes_total") - sent)
    };
    let (by_uri, through) = uris("by-uri", "http,https");
    assert_eq!(remote_refs(&git, &by_uri), remote_refs(&git, &plain));
    let packs = std::fs::read_dir(by_uri.join(".git/objects/pack"))
        .unwrap()
        .count();
    assert!(
        packs >= 6,
        "the stored pack and the (empty) in-band one: {packs} files"
    );
    if matches!(backend, Backend::S3 { .. }) {
        assert!(through < 100_000, "{through} bytes through the server");
    }
    // Only https accepted; the URLs here are http: everything in-band.
    let (in_band, through) = uris("in-band", "https");
    assert_eq!(remote_refs(&git, &in_band), remote_refs(&git, &plain));
    assert!(
        through > 3 << 20,
        "{through} bytes: the pack did not come in-band"
    );

    // A force push and a deleted branch: the stored packs hold what they left behind, so
    // the clone is answered in-band, without the secret.
    git.ok(&src, &["reset", "-q", "--hard", "HEAD~2"]);
    git.ok(&src, &["push", "-q", "--force", &url, "main"]);
    git.ok(&src, &["push", "-q", &url, ":secret"]);
    let (after, _) = uris("after", "http,https");
    git.ok(&after, &["fsck", "--strict", "--no-progress"]);
    assert_eq!(git.rev(&after, "origin/main"), git.rev(&src, "main"));
    assert!(
        !git.run(&after, &["cat-file", "-e", &secret])
            .status
            .success(),
        "the deleted branch's commit shipped"
    );
    // After maintenance, by URI again.
    server.maintain("lab/packs", &[]);
    *replica.borrow_mut() = server.replica();
    let (again, _) = uris("again", "http,https");
    assert_eq!(git.rev(&again, "origin/main"), git.rev(&src, "main"));
    assert!(!git
        .run(&again, &["cat-file", "-e", &secret])
        .status
        .success());

    // A pack's URL needs its token.
    let token = server.token("lab", None, "r");
    let base = server.plain_url("lab/packs");
    let name = format!("pack-{}.pack", null_id());
    assert_eq!(http_status(&format!("{base}/packs/{name}"), None), 401);
    assert_eq!(
        http_status(&format!("{base}/packs/{name}"), Some(&token)),
        404
    );
    assert_eq!(
        http_status(&format!("{base}/packs/..%2fpacked-refs"), Some(&token)),
        404
    );
    // A stored pack is not fetched by name with a reader's token: after the force push
    // above, the packs held the deleted branch's commit until maintenance.
    let bare = server.bare_repo("lab/packs");
    let stored = std::fs::read_dir(bare.join("objects/pack"))
        .unwrap()
        .filter_map(Result::ok)
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .find(|n| n.ends_with(".pack"))
        .unwrap();
    assert_eq!(
        http_status(&format!("{base}/packs/{stored}"), Some(&token)),
        404
    );
}

backend_tests!(packfile_uris);
