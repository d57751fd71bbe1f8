#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::path::Path;
use std::process::Command;
use std::sync::Arc;

use gix_hash::ObjectId;
use objectstore::layout::RepoKeys;
use objectstore::{FsBucket, ObjectDb, PackCache};

use super::*;

fn git(dir: &Path, args: &[&str], when: u32) -> String {
    let date = format!("{} +0100", 1_700_000_000 + when * 60);
    let out = Command::new("git")
        .current_dir(dir)
        .env("GIT_CONFIG_NOSYSTEM", "1")
        .env("HOME", dir)
        .env("GIT_AUTHOR_NAME", "Ada Lovelace")
        .env("GIT_AUTHOR_EMAIL", "ada@example.com")
        .env("GIT_AUTHOR_DATE", &date)
        .env("GIT_COMMITTER_NAME", "C")
        .env("GIT_COMMITTER_EMAIL", "c@example.com")
        .env("GIT_COMMITTER_DATE", &date)
        .args(args)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "git {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

fn id(s: &str) -> ObjectId {
    ObjectId::from_hex(s.trim().as_bytes()).unwrap()
}

fn write(dir: &Path, path: &str, text: &str) {
    let file = dir.join(path);
    std::fs::create_dir_all(file.parent().unwrap()).unwrap();
    std::fs::write(file, text).unwrap();
}

/// main: c1 (a.txt, dir/b.txt) -> c2 (a.txt changed, dir/b.txt gone, dir/c/d.txt new)
/// side: c1 -> c3.
fn repository(dir: &Path) -> [ObjectId; 3] {
    git(dir, &["init", "-q", "-b", "main"], 0);
    write(dir, "a.txt", "one\n");
    write(dir, "dir/b.txt", "b\n");
    git(dir, &["add", "."], 0);
    git(dir, &["commit", "-q", "-m", "first\n\nwith a body"], 1);
    let c1 = id(&git(dir, &["rev-parse", "HEAD"], 0));
    write(dir, "a.txt", "two\n");
    std::fs::remove_file(dir.join("dir/b.txt")).unwrap();
    write(dir, "dir/c/d.txt", "d\n");
    git(dir, &["add", "-A"], 0);
    git(dir, &["commit", "-q", "-m", "second"], 2);
    let c2 = id(&git(dir, &["rev-parse", "HEAD"], 0));
    git(dir, &["checkout", "-q", "-b", "side", &c1.to_string()], 0);
    write(dir, "side.txt", "s\n");
    git(dir, &["add", "."], 0);
    git(dir, &["commit", "-q", "-m", "side"], 3);
    let c3 = id(&git(dir, &["rev-parse", "HEAD"], 0));
    git(dir, &["repack", "-a", "-d", "-q"], 0);
    [c1, c2, c3]
}

async fn open(git_dir: &Path, cache: &Path) -> ObjectDb {
    let bucket = Arc::new(FsBucket::new(git_dir).unwrap());
    let cache = Arc::new(PackCache::new(Some(cache.to_path_buf()), 1 << 30));
    ObjectDb::open(bucket, RepoKeys::at(""), cache, gix_hash::Kind::Sha1)
        .await
        .unwrap()
}

#[tokio::test]
async fn log_diff_and_commits_agree_with_git() {
    let dir = tempfile::tempdir().unwrap();
    let cache = tempfile::tempdir().unwrap();
    let [c1, c2, c3] = repository(dir.path());
    let db = open(&dir.path().join(".git"), cache.path()).await;
    let reader = db.reader();

    let all = log(&reader, &[c2], &[], LogLimits::default()).unwrap();
    assert_eq!(all.commits, vec![c2, c1]);
    assert!(!all.truncated);
    // What side does not reach: `git log main ^side`.
    let only_main = log(&reader, &[c2], &[c3], LogLimits::default()).unwrap();
    assert_eq!(only_main.commits, vec![c2]);
    let both = log(&reader, &[c2, c3], &[], LogLimits::default()).unwrap();
    assert_eq!(both.commits, vec![c3, c2, c1]);
    let capped = log(
        &reader,
        &[c2],
        &[],
        LogLimits {
            max_commits: 1,
            max_visited: 100,
        },
    )
    .unwrap();
    assert_eq!((capped.commits, capped.truncated), (vec![c2], true));

    let info = commit_info(&reader, &c1).unwrap();
    assert_eq!(info.message, "first\n\nwith a body\n");
    assert_eq!(
        (info.author.name.as_str(), info.author.email.as_str()),
        ("Ada Lovelace", "ada@example.com")
    );
    assert_eq!(info.author.time, 1_700_000_060);
    assert_eq!(
        info.author.rfc3339(),
        git(
            dir.path(),
            &["log", "-1", "--format=%aI", &c1.to_string()],
            0
        )
        .trim()
    );
    assert!(info.parents.is_empty());
    let second = commit_info(&reader, &c2).unwrap();
    assert_eq!(second.parents, vec![c1]);

    let (changes, truncated) = diff_trees(&reader, Some(&info.tree), &second.tree, 100).unwrap();
    assert!(!truncated);
    let listed: Vec<String> = changes
        .iter()
        .map(|c| {
            let k = match c.kind {
                FileChangeKind::Added => 'A',
                FileChangeKind::Deleted => 'D',
                FileChangeKind::Modified => 'M',
                FileChangeKind::Renamed => 'R',
            };
            format!("{k}\t{}", c.path)
        })
        .collect();
    let mut expected: Vec<String> = git(
        dir.path(),
        &[
            "diff",
            "--name-status",
            "--no-renames",
            &c1.to_string(),
            &c2.to_string(),
        ],
        0,
    )
    .lines()
    .map(str::to_owned)
    .collect();
    let mut sorted = listed.clone();
    sorted.sort();
    expected.sort();
    assert_eq!(sorted, expected);
    // From nothing: every file is added; a cap stops early and says so.
    let (root, _) = diff_trees(&reader, None, &info.tree, 100).unwrap();
    assert_eq!(root.len(), 2);
    assert!(root.iter().all(|c| c.kind == FileChangeKind::Added));
    let (one, more) = diff_trees(&reader, None, &info.tree, 1).unwrap();
    assert_eq!((one.len(), more), (1, true));
}

/// Extract an archive with the system's tools; list every path under `dir` with its kind,
/// executable bit and content (or link target).
fn extracted(dir: &Path) -> Vec<(String, String)> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).unwrap() {
            let e = e.unwrap();
            let path = e.path();
            let rel = path
                .strip_prefix(dir)
                .unwrap()
                .to_string_lossy()
                .into_owned();
            let meta = std::fs::symlink_metadata(&path).unwrap();
            let what = if meta.file_type().is_symlink() {
                format!("link {}", std::fs::read_link(&path).unwrap().display())
            } else if meta.is_dir() {
                stack.push(path.clone());
                "dir".to_owned()
            } else {
                use std::os::unix::fs::PermissionsExt;
                let exec = meta.permissions().mode() & 0o100 != 0;
                let data = std::fs::read(&path).unwrap();
                format!("file exec={exec} {}", String::from_utf8_lossy(&data))
            };
            out.push((rel, what));
        }
    }
    out.sort();
    out
}

#[tokio::test]
async fn archives_hold_what_git_archive_holds() {
    use std::io::Write;
    let dir = tempfile::tempdir().unwrap();
    let cache = tempfile::tempdir().unwrap();
    repository(dir.path());
    let d = dir.path();
    git(d, &["checkout", "-q", "main"], 0);
    write(d, "bin/run.sh", "#!/bin/sh\necho hi\n");
    git(d, &["add", "."], 0);
    git(d, &["update-index", "--chmod=+x", "bin/run.sh"], 0);
    std::os::unix::fs::symlink("../a.txt", d.join("dir/link")).unwrap();
    write(d, "dir/ünïcode name.txt", "u\n");
    write(d, "pointer.bin", "lfs pointer stand-in\n");
    // Large enough to be stored whole and read as a stream.
    let big: Vec<u8> = (0..3_000_000u32)
        .map(|i| (i.wrapping_mul(2_654_435_761) >> 13) as u8)
        .collect();
    std::fs::write(d.join("big.bin"), &big).unwrap();
    git(d, &["add", "-A"], 0);
    git(d, &["commit", "-q", "-m", "more"], 4);
    git(d, &["repack", "-a", "-d", "-q"], 0);
    let head = id(&git(d, &["rev-parse", "HEAD"], 0));
    let db = open(&d.join(".git"), cache.path()).await;
    let reader = db.reader();
    let tree = reader.commit(&head).unwrap().tree;
    let limits = archive::ArchiveLimits {
        max_entries: 1000,
        max_bytes: 1 << 30,
    };

    // A substitute that replaces one file's content, as an LFS pointer is replaced.
    struct Swap;
    impl archive::Substitute for Swap {
        fn size(&mut self, data: &[u8]) -> Option<u64> {
            (data == b"lfs pointer stand-in\n").then_some(9)
        }
        fn open(&mut self, data: &[u8]) -> std::io::Result<Option<Box<dyn std::io::Read + Send>>> {
            Ok((data == b"lfs pointer stand-in\n")
                .then(|| Box::new(std::io::Cursor::new(b"swapped!\n".to_vec())) as Box<_>))
        }
    }
    for (format, path, git_args) in [
        (
            archive::Format::Tar,
            "",
            vec!["archive", "--format=tar", "HEAD"],
        ),
        (
            archive::Format::TarGz,
            "dir",
            vec!["archive", "--format=tar.gz", "HEAD", "dir"],
        ),
        (
            archive::Format::Zip,
            "",
            vec!["archive", "--format=zip", "HEAD"],
        ),
        (
            archive::Format::Zip,
            "dir/c",
            vec!["archive", "--format=zip", "HEAD", "dir/c"],
        ),
    ] {
        let plan = archive::plan(&reader, &tree, path, limits, &mut Swap).unwrap();
        let mut ours = Vec::new();
        archive::write(
            &reader,
            &plan,
            format,
            "",
            1_700_000_000,
            &mut Swap,
            &mut ours,
        )
        .unwrap();
        let theirs = std::process::Command::new("git")
            .current_dir(d)
            .args(&git_args)
            .output()
            .unwrap()
            .stdout;
        let mut listings = Vec::new();
        for (name, bytes) in [("ours", &ours), ("git", &theirs)] {
            let out = tempfile::tempdir().unwrap();
            let file = out.path().join(format!("archive-{name}"));
            std::fs::File::create(&file)
                .unwrap()
                .write_all(bytes)
                .unwrap();
            let into = out.path().join("x");
            std::fs::create_dir(&into).unwrap();
            let status = match format {
                archive::Format::Zip => std::process::Command::new("unzip")
                    .args(["-q", file.to_str().unwrap(), "-d", into.to_str().unwrap()])
                    .status(),
                _ => std::process::Command::new("tar")
                    .args(["-xf", file.to_str().unwrap(), "-C", into.to_str().unwrap()])
                    .status(),
            };
            assert!(status.unwrap().success(), "{format:?} {name} extracts");
            listings.push(extracted(&into));
        }
        let mut expected = listings.pop().unwrap();
        for (path, what) in expected.iter_mut() {
            if path == "pointer.bin" {
                *what = "file exec=false swapped!\n".into();
            }
        }
        assert_eq!(listings.pop().unwrap(), expected, "{format:?} of {path:?}");
    }
    let small = archive::ArchiveLimits {
        max_entries: 1000,
        max_bytes: 1_000_000,
    };
    assert!(matches!(
        archive::plan(&reader, &tree, "", small, &mut archive::Verbatim),
        Err(archive::PlanError::TooLarge { .. })
    ));
    // The big file streams from its pack and is byte for byte the same.
    let big_id = entry_at(&reader, &tree, "big.bin").unwrap().unwrap().1;
    let mut streamed = Vec::new();
    std::io::Read::read_to_end(&mut db.stream(&big_id).unwrap().unwrap(), &mut streamed).unwrap();
    assert!(streamed == big);
}

#[tokio::test]
async fn last_changes_agree_with_git_log() {
    let dir = tempfile::tempdir().unwrap();
    let cache = tempfile::tempdir().unwrap();
    let d = dir.path();
    repository(d);
    // A merge of side into main, then a change on main.
    git(d, &["checkout", "-q", "main"], 0);
    git(d, &["merge", "-q", "--no-edit", "side"], 5);
    write(d, "dir/c/d.txt", "d2\n");
    git(d, &["commit", "-q", "-am", "d again"], 6);
    git(d, &["repack", "-a", "-d", "-q"], 0);
    let head = id(&git(d, &["rev-parse", "HEAD"], 0));
    let db = open(&d.join(".git"), cache.path()).await;
    let reader = db.reader();
    for (folder, names) in [
        ("", vec!["a.txt", "dir", "side.txt"]),
        ("dir", vec!["c"]),
        ("dir/c", vec!["d.txt"]),
    ] {
        let found = last_changes(&reader, &head, folder, &names, 1000).unwrap();
        for (name, found) in names.iter().zip(found) {
            let path = if folder.is_empty() {
                name.to_string()
            } else {
                format!("{folder}/{name}")
            };
            let expected = git(d, &["log", "-1", "--format=%H", "HEAD", "--", &path], 0);
            assert_eq!(
                found.map(|c| c.to_string()),
                Some(expected.trim().to_owned()),
                "{path}"
            );
        }
    }
}

/// `git merge-tree --write-tree --name-only --no-messages A B`: the tree, and the conflicted
/// paths (none when clean).
fn git_merge_tree(dir: &Path, a: &str, b: &str) -> (String, Vec<String>) {
    let out = Command::new("git")
        .current_dir(dir)
        .env("GIT_CONFIG_NOSYSTEM", "1")
        .env("HOME", dir)
        .args([
            "merge-tree",
            "--write-tree",
            "--name-only",
            "--no-messages",
            a,
            b,
        ])
        .output()
        .unwrap();
    let text = String::from_utf8(out.stdout).unwrap();
    let mut lines = text.lines();
    let tree = lines.next().unwrap_or("").to_owned();
    let mut paths: Vec<String> = lines.filter(|l| !l.is_empty()).map(str::to_owned).collect();
    paths.sort();
    paths.dedup();
    (tree, paths)
}

#[tokio::test]
async fn merges_agree_with_git_merge_tree() {
    let dir = tempfile::tempdir().unwrap();
    let cache = tempfile::tempdir().unwrap();
    let d = dir.path();
    git(d, &["init", "-q", "-b", "main"], 0);
    let lines: String = (0..40).map(|i| format!("line {i}\n")).collect();
    write(d, "shared.txt", &lines);
    write(d, "keep.txt", "keep\n");
    write(d, "gone.txt", "to be changed and deleted\n");
    write(
        d,
        "move/me.txt",
        "moved content that is long enough to be found again\n",
    );
    git(d, &["add", "."], 0);
    git(d, &["commit", "-q", "-m", "base"], 1);
    // ours: edits the top of shared.txt, adds a file, renames move/me.txt, changes gone.txt.
    git(d, &["checkout", "-q", "-b", "ours"], 0);
    write(
        d,
        "shared.txt",
        &lines.replacen("line 1\n", "line 1 ours\n", 1),
    );
    write(d, "ours.txt", "o\n");
    git(d, &["mv", "move/me.txt", "moved.txt"], 0);
    write(d, "gone.txt", "changed by ours\n");
    git(d, &["add", "-A"], 0);
    git(d, &["commit", "-q", "-m", "ours"], 2);
    // theirs: edits the bottom of shared.txt, adds another file, deletes gone.txt.
    git(d, &["checkout", "-q", "-b", "theirs", "main"], 0);
    write(
        d,
        "shared.txt",
        &lines.replacen("line 38\n", "line 38 theirs\n", 1),
    );
    write(d, "theirs.txt", "t\n");
    git(d, &["rm", "-q", "gone.txt"], 0);
    git(d, &["add", "-A"], 0);
    git(d, &["commit", "-q", "-m", "theirs"], 3);
    // clean: the same edits without the delete/modify.
    git(d, &["checkout", "-q", "-b", "clean", "main"], 0);
    write(
        d,
        "shared.txt",
        &lines.replacen("line 38\n", "line 38 theirs\n", 1),
    );
    write(d, "theirs.txt", "t\n");
    git(d, &["add", "-A"], 0);
    git(d, &["commit", "-q", "-m", "clean"], 4);
    // same-line: a content conflict with ours.
    git(d, &["checkout", "-q", "-b", "same-line", "main"], 0);
    write(
        d,
        "shared.txt",
        &lines.replacen("line 1\n", "line 1 theirs\n", 1),
    );
    git(d, &["commit", "-q", "-am", "same line"], 5);
    // criss-cross: two merge bases.
    git(d, &["checkout", "-q", "-b", "x1", "ours"], 0);
    git(d, &["merge", "-q", "--no-edit", "clean"], 6);
    git(d, &["checkout", "-q", "-b", "x2", "clean"], 0);
    git(d, &["merge", "-q", "--no-edit", "ours"], 7);
    write(d, "x2.txt", "x2\n");
    git(d, &["add", "."], 0);
    git(d, &["commit", "-q", "-m", "x2"], 8);
    git(d, &["checkout", "-q", "x1"], 0);
    write(d, "x1.txt", "x1\n");
    git(d, &["add", "."], 0);
    git(d, &["commit", "-q", "-m", "x1"], 9);
    git(d, &["repack", "-a", "-d", "-q"], 0);
    let db = open(&d.join(".git"), cache.path()).await;
    let reader = db.reader();
    let (mut clean, mut conflicts) = (0, 0);
    for (a, b) in [
        ("ours", "clean"),
        ("ours", "theirs"),
        ("ours", "same-line"),
        ("x1", "x2"),
        ("clean", "ours"),
    ] {
        let (tree, conflicted) = git_merge_tree(d, a, b);
        let objects = merge::MergeObjects::new(&reader);
        let ours = id(&git(d, &["rev-parse", a], 0));
        let theirs = id(&git(d, &["rev-parse", b], 0));
        match merge::merge_commits(&objects, ours, theirs).unwrap() {
            merge::MergeOutcome::Clean(ours_tree) => {
                assert!(
                    conflicted.is_empty(),
                    "{a} {b}: git found conflicts in {conflicted:?}"
                );
                assert_eq!(ours_tree.to_string(), tree, "{a} {b}");
                clean += 1;
            }
            merge::MergeOutcome::Conflicts(found) => {
                let mut paths: Vec<String> = found.iter().map(|c| c.path.clone()).collect();
                paths.sort();
                paths.dedup();
                assert_eq!(paths, conflicted, "{a} {b}: {found:?}");
                conflicts += 1;
            }
        }
    }
    // Three clean merges (one over a rename, one criss-cross), two conflicts (content,
    // modify/delete).
    assert_eq!((clean, conflicts), (3, 2));

    // A content conflict names the file in the merge base, ours and theirs, as git's stages.
    let commit = |r: &str| id(&git(d, &["rev-parse", r], 0));
    let objects = merge::MergeObjects::new(&reader);
    let merge::MergeOutcome::Conflicts(found) =
        merge::merge_commits(&objects, commit("ours"), commit("same-line")).unwrap()
    else {
        panic!("ours and same-line conflict");
    };
    let blob = |r: &str| Some(commit(&format!("{r}:shared.txt")));
    assert_eq!(found.len(), 1, "{found:?}");
    assert_eq!(
        (found[0].kind, found[0].base, found[0].ours, found[0].theirs),
        ("content", blob("main"), blob("ours"), blob("same-line"))
    );

    // Past its limits a merge stops with a refusal that says so.
    let few = merge::MergeLimits {
        max_objects: 3,
        ..Default::default()
    };
    let objects = merge::MergeObjects::with_limits(&reader, few);
    match merge::merge_commits(&objects, commit("x1"), commit("x2")) {
        Err(crate::Error::TooLarge(why)) => assert!(why.contains("merge it with git"), "{why}"),
        other => panic!("a merge past its object limit: {other:?}"),
    }
    // A file past the line-merge size is merged as git merges a binary file: a conflict when
    // both sides changed it, though their lines do not overlap.
    let small = merge::MergeLimits {
        max_text_merge_bytes: 16,
        ..Default::default()
    };
    let objects = merge::MergeObjects::with_limits(&reader, small);
    match merge::merge_commits(&objects, commit("ours"), commit("clean")).unwrap() {
        merge::MergeOutcome::Conflicts(found) => {
            let paths: Vec<&str> = found.iter().map(|c| c.path.as_str()).collect();
            assert_eq!(paths, ["shared.txt"]);
        }
        other => panic!("a large file changed on both sides merged: {other:?}"),
    }
}
