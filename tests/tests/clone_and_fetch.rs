//! Clone, fetch and push with stock git against a real server: full histories with every
//! protocol version and both git binaries, thin incremental fetches, shallow clones.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::path::Path;

use artifact_git_e2e::*;

/// Push a generated history and clone it back with `git_bin` and `protocol`; check refs,
/// integrity and the work tree.
fn round_trip(server: &Server, repo: &str, git: &Git, source: &Path, protocol: &str) {
    let work = TempDir::new().unwrap();
    let clone = work.path().join("clone");
    let url = server.repo_url(repo);
    git.ok(
        work.path(),
        &[
            "-c",
            &format!("protocol.version={protocol}"),
            "clone",
            "-q",
            &url,
            clone.to_str().unwrap(),
        ],
    );
    git.ok(
        &clone,
        &[
            "-c",
            &format!("protocol.version={protocol}"),
            "fetch",
            "-q",
            "--tags",
            "origin",
        ],
    );
    // Every branch and tag equal.
    let pushed_heads = git.refs(source, "refs/heads/");
    let cloned_heads = git
        .refs(&clone, "refs/remotes/origin/")
        .replace("refs/remotes/origin/", "refs/heads/");
    let cloned_heads: String = cloned_heads
        .lines()
        .filter(|l| !l.ends_with("refs/heads/HEAD"))
        .map(|l| format!("{l}\n"))
        .collect();
    assert_eq!(
        pushed_heads,
        cloned_heads,
        "branches differ ({protocol}, {})",
        git.bin.display()
    );
    assert_eq!(
        git.refs(source, "refs/tags/"),
        git.refs(&clone, "refs/tags/"),
        "tags differ"
    );
    git.ok(&clone, &["fsck", "--strict", "--no-dangling"]);
    // The checked-out tree is the pushed one, file for file.
    assert_eq!(
        git.ok(source, &["rev-parse", "main^{tree}"]),
        git.ok(&clone, &["rev-parse", "HEAD^{tree}"])
    );
    assert_eq!(git.ok(&clone, &["status", "--porcelain"]), "");
    assert_eq!(
        git.ok(source, &["ls-files", "-s"]),
        git.ok(&clone, &["ls-files", "-s"])
    );
    for entry in git.ok(&clone, &["ls-files"]).lines() {
        let a = std::fs::symlink_metadata(source.join(entry)).unwrap();
        if a.file_type().is_file() {
            assert_eq!(
                std::fs::read(source.join(entry)).unwrap(),
                std::fs::read(clone.join(entry)).unwrap(),
                "{entry}"
            );
        }
    }
}

fn push_then_clone_with_every_protocol_and_git(backend: &Backend) {
    let server = Server::start_on(backend);
    server.init("lab/project");
    let git = Git::default();
    let work = TempDir::new().unwrap();
    let source = work.path().join("source");
    std::fs::create_dir(&source).unwrap();
    make_history(&git, &source, 300, 7);
    let url = server.repo_url("lab/project");
    git.ok(&source, &["push", "-q", &url, "--all"]);
    git.ok(&source, &["push", "-q", &url, "--tags"]);
    // The bucket directory itself is a valid bare repository.
    let bare = server.bare_repo("lab/project");
    git.ok(&bare, &["fsck", "--strict"]);
    assert_eq!(git.refs(&bare, "refs/"), git.refs(&source, "refs/"));
    assert!(git.ok(&bare, &["log", "--oneline", "main"]).lines().count() > 300);
    for bin in git_binaries() {
        let git = Git::new(bin);
        for protocol in ["0", "1", "2"] {
            round_trip(&server, "lab/project", &git, &source, protocol);
        }
    }
}

fn the_same_on_the_other_route_form_and_with_dot_git(backend: &Backend) {
    let server = Server::start_on(backend);
    server.init("lab/forms");
    let git = Git::default();
    let work = TempDir::new().unwrap();
    let source = work.path().join("source");
    std::fs::create_dir(&source).unwrap();
    make_history(&git, &source, 20, 3);
    let long_form = server
        .repo_url("lab/forms")
        .replace("/lab/git/forms", "/lab/artifacts/forms/git");
    git.ok(&source, &["push", "-q", &long_form, "main"]);
    let clone = work.path().join("clone");
    git.ok(
        work.path(),
        &[
            "clone",
            "-q",
            &format!("{}.git", server.repo_url("lab/forms")),
            clone.to_str().unwrap(),
        ],
    );
    assert_eq!(
        git.ok(&source, &["rev-parse", "main"]),
        git.ok(&clone, &["rev-parse", "HEAD"])
    );
}

fn empty_repository_clones_and_says_so(backend: &Backend) {
    let server = Server::start_on(backend);
    server.init("lab/empty");
    for bin in git_binaries() {
        let git = Git::new(bin);
        for protocol in ["0", "2"] {
            let work = TempDir::new().unwrap();
            let out = git.run(
                work.path(),
                &[
                    "-c",
                    &format!("protocol.version={protocol}"),
                    "clone",
                    &server.repo_url("lab/empty"),
                    "e",
                ],
            );
            assert!(
                out.status.success(),
                "{}",
                String::from_utf8_lossy(&out.stderr)
            );
            assert!(String::from_utf8_lossy(&out.stderr).contains("empty repository"));
            // The first push into the empty clone works.
            let e = work.path().join("e");
            commit_file(&git, &e, "a.txt", "hello\n", "first");
            git.ok(&e, &["push", "-q", "origin", "HEAD:refs/heads/main"]);
            git.ok(&e, &["push", "-q", "origin", ":refs/heads/main"]);
        }
    }
}

fn unknown_repository_is_404(backend: &Backend) {
    let server = Server::start_on(backend);
    let git = Git::default();
    let work = TempDir::new().unwrap();
    let err = git.fails(
        work.path(),
        &["clone", &server.repo_url("lab/nothing-here"), "x"],
    );
    assert!(err.contains("not found"), "{err}");
}

fn incremental_fetch_and_push_send_only_new_objects(backend: &Backend) {
    let server = Server::start_on(backend);
    server.init("lab/inc");
    let git = Git::default();
    let work = TempDir::new().unwrap();
    let source = work.path().join("source");
    std::fs::create_dir(&source).unwrap();
    make_history(&git, &source, 120, 11);
    let url = server.repo_url("lab/inc");
    git.ok(&source, &["push", "-q", &url, "main"]);
    git.ok(&source, &["remote", "add", "origin", &url]);
    git.ok(&source, &["fetch", "-q", "origin"]);
    for protocol in ["0", "2"] {
        let clone = work.path().join(format!("clone{protocol}"));
        git.ok(work.path(), &["clone", "-q", &url, clone.to_str().unwrap()]);
        assert_eq!(loose_objects(&git, &clone), 0);
        // One commit changing one file in a nested folder: commit, 4 trees, 1 blob.
        let before = std::fs::read_to_string(source.join("src/deep/nested/file2.txt")).unwrap();
        let new = commit_file(
            &git,
            &source,
            "src/deep/nested/file2.txt",
            &format!("{before}one more line {protocol}\n"),
            "one more",
        );
        let push = git.run(&source, &["push", "--progress", "origin", "main"]);
        assert!(push.status.success());
        let stderr = String::from_utf8_lossy(&push.stderr);
        assert!(
            stderr.contains("Total 6 "),
            "a one-commit push sends that commit's 6 objects: {stderr}"
        );
        git.ok(
            &clone,
            &[
                "-c",
                &format!("protocol.version={protocol}"),
                "-c",
                "fetch.unpackLimit=100000",
                "fetch",
                "-q",
                "origin",
            ],
        );
        assert_eq!(git.ok(&clone, &["rev-parse", "origin/main"]).trim(), new);
        assert_eq!(
            loose_objects(&git, &clone),
            6,
            "the fetch transferred only the new objects"
        );
        git.ok(&clone, &["fsck", "--strict"]);
        // A bigger batch: 50 commits, received as a (thin) pack.
        for i in 0..50 {
            commit_file(
                &git,
                &source,
                &format!("batch/f{}.txt", i % 7),
                &format!("{i} {protocol}\n"),
                "batch",
            );
        }
        git.ok(&source, &["push", "-q", "origin", "main"]);
        git.ok(
            &clone,
            &[
                "-c",
                &format!("protocol.version={protocol}"),
                "pull",
                "-q",
                "--ff-only",
                "origin",
                "main",
            ],
        );
        assert_eq!(
            git.ok(&clone, &["rev-parse", "HEAD"]),
            git.ok(&source, &["rev-parse", "HEAD"])
        );
        git.ok(&clone, &["fsck", "--strict"]);
    }
}

fn commit_count(git: &Git, dir: &Path) -> usize {
    git.ok(dir, &["rev-list", "--count", "HEAD"])
        .trim()
        .parse()
        .unwrap()
}

/// What a shallow operation left in a clone: its commits and its shallow boundary.
fn shallow_state(git: &Git, dir: &Path) -> (Vec<String>, Vec<String>) {
    let mut commits: Vec<String> = git
        .ok(dir, &["rev-list", "--all"])
        .lines()
        .map(str::to_owned)
        .collect();
    commits.sort();
    let mut boundary: Vec<String> = std::fs::read_to_string(dir.join(".git/shallow"))
        .unwrap_or_default()
        .lines()
        .map(str::to_owned)
        .collect();
    boundary.sort();
    (commits, boundary)
}

fn shallow_clones_deepen_and_unshallow_exactly_like_git(backend: &Backend) {
    let server = Server::start_on(backend);
    server.init("lab/shallow");
    let git = Git::default();
    let work = TempDir::new().unwrap();
    let source = work.path().join("source");
    std::fs::create_dir(&source).unwrap();
    make_history(&git, &source, 60, 5);
    let url = server.repo_url("lab/shallow");
    git.ok(&source, &["push", "-q", &url, "--all"]);
    git.ok(&source, &["push", "-q", &url, "--tags"]);
    // git's own upload-pack over file:// is the reference for every operation.
    let reference = format!("file://{}", source.display());
    let full = git.ok(&source, &["rev-list", "--all"]).lines().count();
    let since = format!("--shallow-since={}", HISTORY_EPOCH + 40 * 3600);
    type Scenario<'a> = (&'a str, Vec<&'a str>, Vec<Vec<&'a str>>);
    let scenarios: Vec<Scenario> = vec![
        (
            "depth1",
            vec!["--depth", "1"],
            vec![vec!["--deepen", "2"], vec!["--unshallow"]],
        ),
        (
            "depth3",
            vec!["--depth", "3", "--no-single-branch"],
            vec![vec!["--depth", "10"], vec!["--unshallow"]],
        ),
        ("huge", vec!["--depth", "100000"], vec![]),
        ("since", vec![since.as_str()], vec![vec!["--unshallow"]]),
        (
            "exclude",
            vec!["--shallow-exclude=v1.0"],
            vec![vec!["--deepen", "1"], vec!["--unshallow"]],
        ),
    ];
    for bin in git_binaries() {
        let git = Git::new(bin);
        for protocol in ["0", "2"] {
            let p = format!("protocol.version={protocol}");
            for (name, clone_args, fetches) in &scenarios {
                let ours = work.path().join(format!("{name}-{protocol}-ours"));
                let theirs = work.path().join(format!("{name}-{protocol}-git"));
                let _ = std::fs::remove_dir_all(&ours);
                let _ = std::fs::remove_dir_all(&theirs);
                for (from, dir) in [(&url, &ours), (&reference, &theirs)] {
                    let mut args = vec!["-c", p.as_str(), "clone", "-q"];
                    args.extend_from_slice(clone_args);
                    args.push(from);
                    args.push(dir.to_str().unwrap());
                    git.ok(work.path(), &args);
                }
                let label = format!("{name}, protocol {protocol}, {}", git.bin.display());
                assert_eq!(
                    shallow_state(&git, &ours),
                    shallow_state(&git, &theirs),
                    "clone {label}"
                );
                git.ok(&ours, &["fsck", "--strict"]);
                let mut diverged = false;
                for fetch in fetches {
                    let mut args = vec!["-c", p.as_str(), "fetch", "-q"];
                    args.extend_from_slice(fetch);
                    // Some histories make git's client refuse git's own answer (a v0
                    // `--unshallow` after `--shallow-since` across a merge): then ours must be
                    // refused the same way.
                    if !git.run(&theirs, &args).status.success() {
                        assert!(
                            !git.run(&ours, &args).status.success(),
                            "git refused {fetch:?} after {label}; so must we"
                        );
                        diverged = true;
                        break;
                    }
                    git.ok(&ours, &args);
                    assert_eq!(
                        shallow_state(&git, &ours),
                        shallow_state(&git, &theirs),
                        "fetch {fetch:?} after {label}"
                    );
                    git.ok(&ours, &["fsck", "--strict"]);
                }
                if !diverged
                    && (fetches.last().is_some_and(|f| f == &vec!["--unshallow"])
                        || *name == "huge")
                {
                    assert_eq!(shallow_state(&git, &ours).0.len(), full, "{label}");
                    assert!(!ours.join(".git/shallow").exists());
                }
            }
        }
    }
}

fn shallow_clone_of_a_one_commit_repository(backend: &Backend) {
    let server = Server::start_on(backend);
    server.init("lab/one");
    let git = Git::default();
    let work = TempDir::new().unwrap();
    let source = work.path().join("source");
    git.ok(
        work.path(),
        &["init", "-q", "-b", "main", source.to_str().unwrap()],
    );
    commit_file(&git, &source, "only.txt", "only\n", "the only commit");
    git.ok(
        &source,
        &["push", "-q", &server.repo_url("lab/one"), "main"],
    );
    for protocol in ["0", "2"] {
        let c = work.path().join(format!("c{protocol}"));
        git.ok(
            work.path(),
            &[
                "-c",
                &format!("protocol.version={protocol}"),
                "clone",
                "-q",
                "--depth",
                "1",
                &server.repo_url("lab/one"),
                c.to_str().unwrap(),
            ],
        );
        assert_eq!(commit_count(&git, &c), 1);
        git.ok(
            &c,
            &[
                "-c",
                &format!("protocol.version={protocol}"),
                "fetch",
                "-q",
                "--unshallow",
            ],
        );
        assert_eq!(commit_count(&git, &c), 1);
        git.ok(&c, &["fsck", "--strict"]);
    }
}

fn fetch_follows_tags_including_tags_of_tags(backend: &Backend) {
    let server = Server::start_on(backend);
    server.init("lab/tags");
    let git = Git::default();
    let work = TempDir::new().unwrap();
    let source = work.path().join("source");
    git.ok(
        work.path(),
        &["init", "-q", "-b", "main", source.to_str().unwrap()],
    );
    commit_file(&git, &source, "a.txt", "a\n", "first");
    let url = server.repo_url("lab/tags");
    git.ok(&source, &["push", "-q", &url, "main"]);
    let reference = format!("file://{}", source.display());
    for protocol in ["0", "2"] {
        let p = format!("protocol.version={protocol}");
        let ours = work.path().join(format!("ours{protocol}"));
        let theirs = work.path().join(format!("theirs{protocol}"));
        git.ok(work.path(), &["clone", "-q", &url, ours.to_str().unwrap()]);
        git.ok(
            work.path(),
            &["clone", "-q", &reference, theirs.to_str().unwrap()],
        );
        commit_file(&git, &source, "a.txt", &format!("{protocol}\n"), "tagged");
        let release = format!("release-{protocol}");
        let about = format!("about-{protocol}");
        git.ok(&source, &["tag", "-a", "-m", "release", &release]);
        git.ok(
            &source,
            &[
                "-c",
                "advice.nestedTag=false",
                "tag",
                "-a",
                "-m",
                "about the release",
                &about,
                &release,
            ],
        );
        git.ok(&source, &["push", "-q", &url, "main", &release, &about]);
        // A plain fetch follows the tags that point into what it fetched (include-tag).
        for dir in [&ours, &theirs] {
            git.ok(dir, &["-c", &p, "fetch", "-q", "origin"]);
        }
        let tags = git.refs(&ours, "refs/tags/");
        assert_eq!(tags, git.refs(&theirs, "refs/tags/"), "protocol {protocol}");
        assert!(tags.contains(&about), "{tags}");
        git.ok(&ours, &["fsck", "--strict"]);
    }
}

fn first_push_of_another_branch_becomes_head(backend: &Backend) {
    let server = Server::start_on(backend);
    server.init("lab/head");
    let git = Git::default();
    let work = TempDir::new().unwrap();
    let source = work.path().join("source");
    git.ok(
        work.path(),
        &["init", "-q", "-b", "trunk", source.to_str().unwrap()],
    );
    commit_file(&git, &source, "a.txt", "a\n", "on trunk");
    git.ok(
        &source,
        &["push", "-q", &server.repo_url("lab/head"), "trunk"],
    );
    let clone = work.path().join("clone");
    git.ok(
        work.path(),
        &[
            "clone",
            "-q",
            &server.repo_url("lab/head"),
            clone.to_str().unwrap(),
        ],
    );
    assert_eq!(
        git.ok(&clone, &["rev-parse", "--abbrev-ref", "HEAD"])
            .trim(),
        "trunk"
    );
    assert!(clone.join("a.txt").exists());
    // Once HEAD names an existing branch, later pushes leave it alone.
    git.ok(
        &source,
        &["push", "-q", &server.repo_url("lab/head"), "trunk:main"],
    );
    let again = work.path().join("again");
    git.ok(
        work.path(),
        &[
            "clone",
            "-q",
            &server.repo_url("lab/head"),
            again.to_str().unwrap(),
        ],
    );
    assert_eq!(
        git.ok(&again, &["rev-parse", "--abbrev-ref", "HEAD"])
            .trim(),
        "trunk"
    );
}

/// Every local object of a repository, as sorted "id type" lines.
fn local_objects(git: &Git, dir: &Path) -> Vec<String> {
    let out = git.ok(
        dir,
        &[
            "cat-file",
            "--batch-all-objects",
            "--batch-check=%(objectname) %(objecttype)",
        ],
    );
    let mut lines: Vec<String> = out.lines().map(str::to_owned).collect();
    lines.sort();
    lines
}

fn partial_clones_get_what_git_sends_and_fetch_the_rest_lazily(backend: &Backend) {
    let server = Server::start_on(backend);
    server.init("lab/partial");
    let git = Git::default();
    let work = TempDir::new().unwrap();
    let source = work.path().join("source");
    std::fs::create_dir(&source).unwrap();
    make_history(&git, &source, 60, 9);
    let url = server.repo_url("lab/partial");
    git.ok(&source, &["push", "-q", &url, "--all"]);
    git.ok(&source, &["push", "-q", &url, "--tags"]);
    git.ok(&source, &["config", "uploadpack.allowFilter", "true"]);
    git.ok(
        &source,
        &["config", "uploadpack.allowAnySHA1InWant", "true"],
    );
    let reference = format!("file://{}", source.display());
    let everything = local_objects(&git, &source).len();
    for protocol in ["0", "2"] {
        let p = format!("protocol.version={protocol}");
        for spec in [
            "blob:none",
            "blob:limit=1k",
            "tree:0",
            "tree:2",
            "object:type=commit",
        ] {
            let filter = format!("--filter={spec}");
            let ours = work.path().join(format!("{spec}-{protocol}-ours"));
            let theirs = work.path().join(format!("{spec}-{protocol}-git"));
            for (from, dir) in [(&url, &ours), (&reference, &theirs)] {
                git.ok(
                    work.path(),
                    &[
                        "-c",
                        &p,
                        "clone",
                        "-q",
                        "--bare",
                        &filter,
                        from,
                        dir.to_str().unwrap(),
                    ],
                );
            }
            let got = local_objects(&git, &ours);
            assert_eq!(
                got,
                local_objects(&git, &theirs),
                "{spec}, protocol {protocol}"
            );
            assert!(
                !got.is_empty() && got.len() < everything,
                "{spec} kept {} of {everything} objects",
                got.len()
            );
            assert_eq!(
                git.ok(&ours, &["config", "remote.origin.partialclonefilter"]),
                git.ok(&theirs, &["config", "remote.origin.partialclonefilter"])
            );
        }
        // A working clone fetches the blobs of its checkout, and of history when asked.
        let clone = work.path().join(format!("lazy-{protocol}"));
        git.ok(
            work.path(),
            &[
                "-c",
                &p,
                "clone",
                "-q",
                "--filter=blob:none",
                &url,
                clone.to_str().unwrap(),
            ],
        );
        assert_eq!(
            git.ok(&clone, &["rev-parse", "HEAD^{tree}"]),
            git.ok(&source, &["rev-parse", "main^{tree}"])
        );
        assert_eq!(git.ok(&clone, &["status", "--porcelain"]), "");
        let show = ["-c", p.as_str(), "log", "-p", "-5", "--format=%H %s"];
        assert_eq!(
            git.ok(&clone, &show),
            git.ok(&source, &["log", "-p", "-5", "--format=%H %s", "main"])
        );
        git.ok(&clone, &["-c", &p, "fsck", "--strict"]);
    }
    // v2 object-info answers sizes from entry headers, deltas included.
    let sizes = git.ok(
        &source,
        &[
            "cat-file",
            "--batch-all-objects",
            "--batch-check=%(objectname) %(objectsize)",
        ],
    );
    let sample: Vec<&str> = sizes.lines().step_by(7).collect();
    let mut body = [
        pkt("command=object-info\n"),
        v2_format_line(),
        b"0001".to_vec(),
        pkt("size\n"),
    ]
    .concat();
    let unknown = "0123456789".repeat(7)[..hex_len()].to_owned();
    for line in &sample {
        let id = line.split(' ').next().unwrap();
        body.extend(pkt(&format!("oid {id}\n")));
    }
    body.extend(pkt(&format!("oid {unknown}\n")));
    body.extend(b"0000");
    let (status, answer) = curl_post(
        &format!("{url}/git-upload-pack"),
        "application/x-git-upload-pack-request",
        &body,
        &["-H", "Git-Protocol: version=2"],
    );
    assert_eq!(status, 200);
    let mut expected: Vec<u8> = pkt("size\n");
    for line in &sample {
        expected.extend(pkt(&format!("{line}\n")));
    }
    expected.extend(pkt(&format!("{unknown}\n")));
    expected.extend(b"0000");
    assert_eq!(
        String::from_utf8_lossy(&answer),
        String::from_utf8_lossy(&expected)
    );

    // A filter git has but this server does not: refused with a reason, not ignored.
    let refused = git.fails(
        work.path(),
        &[
            "clone",
            "-q",
            "--bare",
            "--filter=sparse:oid=main:sparse",
            &url,
            work.path().join("sparse").to_str().unwrap(),
        ],
    );
    assert!(refused.contains("unsupported filter spec"), "{refused}");
}

backend_tests!(
    partial_clones_get_what_git_sends_and_fetch_the_rest_lazily,
    first_push_of_another_branch_becomes_head,
    fetch_follows_tags_including_tags_of_tags,
    push_then_clone_with_every_protocol_and_git,
    the_same_on_the_other_route_form_and_with_dot_git,
    empty_repository_clones_and_says_so,
    unknown_repository_is_404,
    incremental_fetch_and_push_send_only_new_objects,
    shallow_clones_deepen_and_unshallow_exactly_like_git,
    shallow_clone_of_a_one_commit_repository,
);
