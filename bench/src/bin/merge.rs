//! Merging against `git merge-tree --write-tree`: two tips of a real repository (tokio's
//! `HEAD`, and a commit on top of `HEAD~N` that edits a few files; the merge base `HEAD~N`),
//! merged by `history::merge` from the repository's packs and by git on the same local
//! repository; both must give the same tree. Prints medians and the ratio. Run with
//! `bench/merge [--runs N] [--behind N] [--repo DIR]`.
#![forbid(unsafe_code)]
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::path::PathBuf;
use std::process::Command;
use std::sync::Arc;
use std::time::Instant;

use artifact_git_e2e::*;

const USAGE: &str = "usage: bench/merge [--runs N] [--behind N] [--repo DIR]";

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(|a, b| a.partial_cmp(b).unwrap());
    v[v.len() / 2]
}

fn main() {
    let argv: Vec<String> = std::env::args().skip(1).collect();
    let (mut runs, mut behind, mut repo) = (
        5usize,
        300usize,
        PathBuf::from("/work/.mirror/tokio-rs+tokio/repo"),
    );
    let mut i = 0;
    while i < argv.len() {
        let v = argv.get(i + 1).cloned().unwrap_or_default();
        match argv[i].as_str() {
            "--runs" => runs = v.parse().expect(USAGE),
            "--behind" => behind = v.parse().expect(USAGE),
            "--repo" => repo = PathBuf::from(v),
            _ => panic!("{USAGE}"),
        }
        i += 2;
    }
    let git = Git::default();
    let work = TempDir::new().unwrap();
    let clone = work.path().join("repo");
    git.ok(
        work.path(),
        &[
            "clone",
            "-q",
            repo.to_str().unwrap(),
            clone.to_str().unwrap(),
        ],
    );
    // theirs: a commit on top of HEAD~N editing files HEAD's history also changed.
    git.ok(
        &clone,
        &["checkout", "-q", "-b", "theirs", &format!("HEAD~{behind}")],
    );
    for file in ["README.md", "Cargo.toml"] {
        let path = clone.join(file);
        let mut text = std::fs::read_to_string(&path).unwrap_or_default();
        text.push_str("\n# edited on the other side\n");
        std::fs::write(&path, text).unwrap();
    }
    std::fs::write(clone.join("THEIRS.md"), "theirs\n").unwrap();
    git.ok(&clone, &["add", "."]);
    git.ok(&clone, &["commit", "-q", "-m", "theirs"]);
    git.ok(&clone, &["checkout", "-q", "-"]);
    git.ok(&clone, &["repack", "-a", "-d", "-q"]);
    let ours = git.rev(&clone, "HEAD");
    let theirs = git.rev(&clone, "theirs");
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let cache_dir = work.path().join("cache");
    let db = runtime.block_on(async {
        let bucket = Arc::new(objectstore::FsBucket::new(clone.join(".git")).unwrap());
        let cache = Arc::new(objectstore::PackCache::new(Some(cache_dir), 1 << 30));
        objectstore::ObjectDb::open(
            bucket,
            objectstore::layout::RepoKeys::at(""),
            cache,
            gix_hash::Kind::Sha1,
        )
        .await
        .unwrap()
    });
    let (mut ours_t, mut git_t) = (Vec::new(), Vec::new());
    let mut git_tree = String::new();
    for _ in 0..runs {
        let t = Instant::now();
        let out = Command::new("git")
            .current_dir(&clone)
            .args(["merge-tree", "--write-tree", &ours, &theirs])
            .output()
            .unwrap();
        git_t.push(t.elapsed().as_secs_f64());
        git_tree = String::from_utf8_lossy(&out.stdout)
            .lines()
            .next()
            .unwrap_or("")
            .to_owned();
        let t = Instant::now();
        let reader = db.reader();
        let objects = ::history::merge::MergeObjects::new(&reader);
        let id = |s: &str| gix_hash::ObjectId::from_hex(s.as_bytes()).unwrap();
        let outcome = ::history::merge::merge_commits(&objects, id(&ours), id(&theirs)).unwrap();
        ours_t.push(t.elapsed().as_secs_f64());
        match outcome {
            ::history::merge::MergeOutcome::Clean(tree) => {
                assert_eq!(tree.to_string(), git_tree, "the trees differ")
            }
            ::history::merge::MergeOutcome::Conflicts(c) => {
                panic!("conflicts git did not find: {c:?}")
            }
        }
    }
    let (ours_t, git_t) = (median(ours_t), median(git_t));
    println!(
        "| merge of {} (HEAD with a commit on HEAD~{behind}) | git merge-tree {:.3} s | history::merge {:.3} s | {:.2} | same tree {} |",
        repo.display(),
        git_t,
        ours_t,
        ours_t / git_t,
        &git_tree[..12]
    );
}
