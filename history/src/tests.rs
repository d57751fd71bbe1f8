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
    ObjectDb::open(bucket, RepoKeys::at(""), cache)
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
