//! Files, folders and archives over plain HTTP, checked with curl, `git archive --remote`, tar
//! and unzip against what git says of the same repository: bytes, blob ids, listings, last
//! commits, archive contents after Git LFS smudging; ranges and validators; hostile paths
//! and revisions; who may read.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::path::Path;

use artifact_git_e2e::*;

const MIB: usize = 1 << 20;

/// The work tree pushed: plain files (one with a space and accents), an executable, a
/// symbolic link, a 3 MiB file stored whole, a 2 MiB Git LFS file; `feature/x` adds 80 files
/// and changes the README; `v1` tags the first commit.
struct Fixture {
    source: std::path::PathBuf,
    big: Vec<u8>,
    model: Vec<u8>,
}

fn fixture(git: &Git, work: &Path, url: &str) -> Fixture {
    let src = work.join("src");
    git.ok(work, &["init", "-q", "-b", "main", src.to_str().unwrap()]);
    git.ok(&src, &["lfs", "track", "*.bin"]);
    std::fs::write(src.join("README.md"), "hello\n").unwrap();
    git.ok(&src, &["add", "."]);
    git.ok(&src, &["commit", "-q", "-m", "first"]);
    git.ok(&src, &["tag", "v1"]);
    let mut rng = Rng::new(5);
    let big = rng.bytes(3 * MIB);
    let model = rng.bytes(2 * MIB);
    for (path, data) in [
        ("docs/guide é.md", b"# guide\n".to_vec()),
        ("bin/run.sh", b"#!/bin/sh\necho run\n".to_vec()),
        ("data/big.dat", big.clone()),
        ("weights/model.bin", model.clone()),
    ] {
        let file = src.join(path);
        std::fs::create_dir_all(file.parent().unwrap()).unwrap();
        std::fs::write(file, data).unwrap();
    }
    std::os::unix::fs::symlink("README.md", src.join("link")).unwrap();
    git.ok(&src, &["add", "."]);
    git.ok(&src, &["update-index", "--chmod=+x", "bin/run.sh"]);
    git.ok(&src, &["commit", "-q", "-m", "content"]);
    git.ok(&src, &["checkout", "-q", "-b", "feature/x"]);
    std::fs::create_dir(src.join("many")).unwrap();
    for i in 0..80 {
        std::fs::write(src.join(format!("many/f{i}.txt")), format!("{i}\n")).unwrap();
    }
    std::fs::write(src.join("README.md"), "hello from x\n").unwrap();
    git.ok(&src, &["add", "."]);
    git.ok(&src, &["commit", "-q", "-m", "many"]);
    git.ok(&src, &["checkout", "-q", "main"]);
    git.ok(&src, &["push", "-q", url, "main", "feature/x", "v1"]);
    Fixture {
        source: src,
        big,
        model,
    }
}

fn files_over_http(backend: &Backend) {
    let server = Server::start_on_with(backend, &["--max-archive-entries", "60"]);
    server.init("lab/files");
    let git = Git::default();
    git.lfs_install();
    let work = TempDir::new().unwrap();
    let f = fixture(&git, work.path(), &server.repo_url("lab/files"));
    let src = &f.source;
    let base = server.plain_url("lab/files");
    let token = server.token("lab", None, "r");
    let auth = format!("Authorization: Bearer {token}");
    let get = |path: &str, extra: &[&str]| {
        let mut args = vec!["-H", auth.as_str()];
        args.extend_from_slice(extra);
        curl_get(&format!("{base}/{path}"), &args)
    };
    let head = git.ok(src, &["rev-parse", "main"]);
    let head = head.trim();

    // Plain files: git's bytes, the blob id as entity tag, the commit named.
    for (path, url_path) in [
        ("README.md", "README.md"),
        ("docs/guide é.md", "docs/guide%20%C3%A9.md"),
        ("bin/run.sh", "bin/run.sh"),
        ("data/big.dat", "data/big.dat"),
        ("link", "link"),
    ] {
        let got = get(&format!("resolve/main/{url_path}"), &[]);
        assert_eq!(got.status, 200, "{path}");
        let expected = git
            .command(src)
            .args(["cat-file", "blob", &format!("main:{path}")])
            .output()
            .unwrap()
            .stdout;
        assert!(got.body == expected, "{path}: bytes differ");
        let blob = git.ok(src, &["rev-parse", &format!("main:{path}")]);
        assert_eq!(
            got.header("etag"),
            Some(format!("\"{}\"", blob.trim()).as_str())
        );
        assert_eq!(got.header("x-repo-commit"), Some(head));
        assert_eq!(
            got.header("content-length"),
            Some(expected.len().to_string().as_str())
        );
    }
    assert!(get("resolve/main/data/big.dat", &[]).body == f.big);

    // Ranges and validators.
    let part = get(
        "resolve/main/data/big.dat",
        &["-H", "Range: bytes=1000-1999"],
    );
    assert_eq!(part.status, 206);
    assert_eq!(
        part.header("content-range"),
        Some("bytes 1000-1999/3145728")
    );
    assert!(part.body == f.big[1000..2000]);
    let tail = get("resolve/main/data/big.dat", &["-H", "Range: bytes=-500"]);
    assert!(tail.status == 206 && tail.body == f.big[f.big.len() - 500..]);
    let past = get(
        "resolve/main/data/big.dat",
        &["-H", "Range: bytes=3145728-"],
    );
    assert_eq!(
        (past.status, past.header("content-range")),
        (416, Some("bytes */3145728"))
    );
    let many = get(
        "resolve/main/README.md",
        &["-H", "Range: bytes=0-1,2-3,4-5"],
    );
    assert_eq!((many.status, many.body.as_slice()), (200, &b"hello\n"[..]));
    let etag = get("resolve/main/README.md", &[])
        .header("etag")
        .unwrap()
        .to_owned();
    let cached = get(
        "resolve/main/README.md",
        &["-H", &format!("If-None-Match: {etag}")],
    );
    assert!(cached.status == 304 && cached.body.is_empty());
    let stale = get(
        "resolve/main/data/big.dat",
        &["-H", "Range: bytes=0-9", "-H", "If-Range: \"0000\""],
    );
    assert_eq!((stale.status, stale.body.len()), (200, f.big.len()));
    let headers_only = get("resolve/main/data/big.dat", &["-I"]);
    assert_eq!(headers_only.status, 200);
    assert_eq!(headers_only.header("content-length"), Some("3145728"));

    // The LFS file: its object, by redirect to the bucket on S3 (no token in the URL).
    let oid = sha256_hex(&f.model);
    let lfs = get("resolve/main/weights/model.bin", &["-L"]);
    assert_eq!(lfs.status, 200);
    assert!(lfs.body == f.model, "the LFS object's bytes");
    let direct = get("resolve/main/weights/model.bin", &[]);
    assert_eq!(direct.header("x-linked-size"), Some("2097152"));
    assert_eq!(
        direct.header("x-linked-etag"),
        Some(format!("\"{oid}\"").as_str())
    );
    assert_eq!(direct.header("etag"), Some(format!("\"{oid}\"").as_str()));
    match backend {
        Backend::S3 { .. } => {
            assert_eq!(direct.status, 302);
            let location = direct.header("location").unwrap();
            assert!(!location.starts_with(&server.url) && !location.contains(&token));
            assert!(direct.body.is_empty());
        }
        Backend::Fs => assert!(direct.status == 200 && direct.body == f.model),
    }
    let lfs_part = get(
        "resolve/main/weights/model.bin",
        &["-L", "-H", "Range: bytes=100-199"],
    );
    assert!(lfs_part.status == 206 && lfs_part.body == f.model[100..200]);

    // Revisions: a tag, a branch with a slash (as is or encoded), a commit id (immutable).
    let at = |rev: &str| get(&format!("resolve/{rev}/README.md"), &[]);
    assert_eq!(at("v1").body, b"hello\n");
    assert_eq!(at("feature/x").body, b"hello from x\n");
    assert_eq!(at("feature%2Fx").body, b"hello from x\n");
    let pinned = at(head);
    assert!(pinned
        .header("cache-control")
        .unwrap()
        .contains("immutable"));
    assert!(!at("main")
        .header("cache-control")
        .unwrap()
        .contains("immutable"));
    assert_eq!(at(&head[..10]).body, b"hello\n");
    assert_eq!(at("main~1").body, b"hello\n");

    // Hostile paths and revisions: a clear status, nothing read outside the tree.
    for (path, status) in [
        ("resolve/main/../README.md", 400),
        ("resolve/main/%2e%2e/README.md", 400),
        ("resolve/main/docs/../../README.md", 400),
        ("resolve/main//etc/passwd", 400),
        ("resolve/main/README.md%00", 400),
        ("resolve/main/.git/config", 404),
        ("resolve/main/docs", 404),
        ("resolve/main/nothing.txt", 404),
        ("resolve/nope/README.md", 404),
        ("resolve/main%00/README.md", 400),
        (&format!("resolve/{}/README.md", "a".repeat(600)), 404),
        (&format!("resolve/{}/README.md", null_id()), 404),
        ("resolve/main", 400),
        ("tree/main/nothing", 404),
        ("tree/main?limit=0", 400),
        ("tree/main?cursor=-1", 400),
        ("archive/main.rar", 404),
        ("archive/main.zip?path=../x", 400),
        ("archive/main.zip?prefix=../x", 400),
    ] {
        let got = get(path, &[]);
        assert_eq!(
            got.status,
            status,
            "{path}: {}",
            String::from_utf8_lossy(&got.body)
        );
        assert!(!got.body.is_empty() || status == 304, "{path}: a reason");
    }

    // Folders: what `git ls-tree -l` says, in its order; recursive as `ls-tree -r -t`.
    let listed = |query: &str| -> Vec<serde_json::Value> {
        let got = get(&format!("tree/main{query}"), &[]);
        assert_eq!(got.status, 200, "{}", String::from_utf8_lossy(&got.body));
        let json: serde_json::Value = serde_json::from_slice(&got.body).unwrap();
        json["entries"].as_array().unwrap().clone()
    };
    for (query, args) in [
        ("", vec!["ls-tree", "-l", "main"]),
        ("?recursive=1", vec!["ls-tree", "-r", "-t", "-l", "main"]),
    ] {
        let ours: Vec<String> = listed(query)
            .iter()
            .map(|e| {
                let size = e["lfs"]["pointer_size"].as_u64().or(e["size"].as_u64());
                let size = size.map_or("-".to_owned(), |s| s.to_string());
                format!(
                    "{} {} {size} {}",
                    e["mode"].as_str().unwrap(),
                    e["oid"].as_str().unwrap(),
                    e["path"].as_str().unwrap()
                )
            })
            .collect();
        let theirs: Vec<String> = git
            .ok(src, &[&["-c", "core.quotePath=false"][..], &args].concat())
            .lines()
            .map(|l| {
                let (meta, path) = l.split_once('\t').unwrap();
                let f: Vec<&str> = meta.split_whitespace().collect();
                format!("{} {} {} {path}", f[0], f[2], f[3])
            })
            .collect();
        assert_eq!(ours, theirs, "tree{query}");
    }
    let model = listed("/weights").pop().unwrap();
    assert_eq!(model["lfs"]["oid"], oid.as_str());
    assert_eq!(model["size"], 2 * MIB as u64);
    // Pages of 3 make up the whole listing.
    let whole = listed("?recursive=1");
    let mut paged = Vec::new();
    let mut cursor = String::new();
    loop {
        let got = get(&format!("tree/main?recursive=1&limit=3{cursor}"), &[]);
        let json: serde_json::Value = serde_json::from_slice(&got.body).unwrap();
        paged.extend(json["entries"].as_array().unwrap().clone());
        match json["next"].as_str() {
            Some(next) => cursor = format!("&cursor={next}"),
            None => break,
        }
    }
    assert_eq!(paged, whole);
    // Last commits: what `git log -1 -- <path>` prints.
    for e in listed("?expand=1") {
        let path = e["path"].as_str().unwrap();
        let expected = git.ok(src, &["log", "-1", "--format=%H", "main", "--", path]);
        assert_eq!(e["last_commit"]["id"], expected.trim(), "{path}");
    }
    let rev: serde_json::Value =
        serde_json::from_slice(&get("revision/feature%2Fx", &[]).body).unwrap();
    assert_eq!(
        rev["commit"],
        git.ok(src, &["rev-parse", "feature/x"]).trim()
    );

    // Archives: what `git archive` holds, LFS files with their contents.
    let expected_archive = |args: &[&str]| {
        let bytes = git
            .command(src)
            .args(["archive", "--format=tar"])
            .args(args)
            .output()
            .unwrap()
            .stdout;
        let mut listing = archive_listing(&bytes);
        for (path, what) in listing.iter_mut() {
            if path.ends_with("model.bin") {
                *what = format!("file exec=false sha256={oid}");
            }
        }
        listing
    };
    for (url_path, args) in [
        ("archive/main.zip", vec!["main"]),
        ("archive/main.tar.gz", vec!["main"]),
        ("archive/main.tar?path=weights", vec!["main", "weights"]),
        (
            &format!("archive/{head}.zip?path=docs"),
            vec!["main", "docs"],
        ),
    ] {
        let got = get(url_path, &[]);
        assert_eq!(
            got.status,
            200,
            "{url_path}: {}",
            String::from_utf8_lossy(&got.body)
        );
        assert_eq!(
            archive_listing(&got.body),
            expected_archive(&args),
            "{url_path}"
        );
    }
    let prefixed = get("archive/v1.tar.gz?prefix=release", &[]);
    assert_eq!(
        archive_listing(&prefixed.body),
        expected_archive(&["--prefix=release/", "v1"])
    );
    // Over the server's limit of entries: refused before a byte is sent.
    let refused = get("archive/feature%2Fx.zip", &[]);
    assert_eq!(refused.status, 413);
    assert!(String::from_utf8_lossy(&refused.body).contains("entries"));
    // `git archive --remote`, over protocol v2 HTTP (git 2.44 and newer).
    match git_at_least(2, 44) {
        Some(bin) => remote_archive(
            &Git::new(bin),
            src,
            &server.url_with_token("lab/files", &token),
            &expected_archive,
        ),
        None => eprintln!("NOTE: no git >= 2.44 here: git archive --remote over HTTP not tried"),
    }

    // Who may read: nobody anonymous on a private repository, nobody of another workspace.
    assert_eq!(
        curl_get(&format!("{base}/resolve/main/README.md"), &[]).status,
        401
    );
    let other = server.token("elsewhere", None, "rw");
    let theirs = curl_get(
        &format!("{base}/resolve/main/README.md"),
        &["-H", &format!("Authorization: Bearer {other}")],
    );
    assert!(matches!(theirs.status, 403 | 404), "{}", theirs.status);
    assert!(theirs.body != b"hello\n");
}

/// `git archive --remote` against the server: the same archive as `git archive` (LFS files
/// smudged), `<rev>:<path>` as the root, an unknown revision refused with git's message.
fn remote_archive(
    git: &Git,
    src: &Path,
    remote: &str,
    expected_archive: &dyn Fn(&[&str]) -> Listing,
) {
    let out = git
        .command(src)
        .args(["archive", "--remote", remote, "--format=zip", "main"])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(archive_listing(&out.stdout), expected_archive(&["main"]));
    let out = git
        .command(src)
        .args(["archive", "--remote", remote, "main:docs"])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let docs = archive_listing(&out.stdout);
    assert_eq!(docs.len(), 1, "{docs:?}");
    assert!(docs[0].0 == "guide é.md");
    let refused = git
        .command(src)
        .args(["archive", "--remote", remote, "nope"])
        .output()
        .unwrap();
    assert!(!refused.status.success());
    assert!(String::from_utf8_lossy(&refused.stderr).contains("revision not found"));
}

/// A large file stored as a delta (git deltas text files against their earlier versions):
/// rebuilt within the memory budget and served whole and in ranges, its bytes git's.
fn deltas_over_http(backend: &Backend) {
    let Scratch {
        server,
        url,
        git,
        work: _work,
        src,
    } = Scratch::new(backend, "lab/deltas");
    let mut text: Vec<String> = (0..60_000)
        .map(|i| format!("line {i} of a long text file\n"))
        .collect();
    std::fs::write(src.join("notes.txt"), text.concat()).unwrap();
    git.ok(&src, &["add", "."]);
    git.ok(&src, &["commit", "-q", "-m", "first"]);
    for i in (0..60_000).step_by(7_000) {
        text[i] = format!("line {i} changed\n");
    }
    std::fs::write(src.join("notes.txt"), text.concat()).unwrap();
    git.ok(&src, &["commit", "-q", "-am", "second"]);
    git.ok(&src, &["push", "-q", &url, "main"]);
    // One of the two versions is stored as a delta of the other.
    let bare = server.bare_repo("lab/deltas");
    let idx = std::fs::read_dir(bare.join("objects/pack"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .find(|p| p.extension().is_some_and(|e| e == "idx"))
        .unwrap();
    let verify = git.ok(&bare, &["verify-pack", "-v", idx.to_str().unwrap()]);
    let blobs: Vec<String> = ["main:notes.txt", "main~1:notes.txt"]
        .iter()
        .map(|r| git.rev(&src, r))
        .collect();
    assert!(
        verify
            .lines()
            .any(|l| blobs.iter().any(|b| l.starts_with(b.as_str()))
                && l.split_whitespace().count() >= 7),
        "no delta stored:\n{verify}"
    );
    let token = server.token("lab", None, "r");
    let auth = format!("Authorization: Bearer {token}");
    let base = server.plain_url("lab/deltas");
    for rev in ["main", "main~1"] {
        let expected = git
            .command(&src)
            .args(["cat-file", "blob", &format!("{rev}:notes.txt")])
            .output()
            .unwrap()
            .stdout;
        let whole = curl_get(&format!("{base}/resolve/{rev}/notes.txt"), &["-H", &auth]);
        assert!(whole.status == 200 && whole.body == expected, "{rev}");
        let part = curl_get(
            &format!("{base}/resolve/{rev}/notes.txt"),
            &["-H", &auth, "-H", "Range: bytes=500000-500999"],
        );
        assert!(
            part.status == 206 && part.body == expected[500_000..501_000],
            "{rev}"
        );
    }
}

backend_tests!(files_over_http, deltas_over_http);
