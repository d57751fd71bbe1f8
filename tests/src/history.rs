//! Test histories like a real project's, built with `git fast-import`.

use std::io::Write;
use std::path::Path;

use crate::git::Git;

pub struct Rng(u64);

impl Rng {
    pub fn new(seed: u64) -> Rng {
        Rng(seed
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407))
    }
    pub fn next_u64(&mut self) -> u64 {
        self.0 = self
            .0
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        let mut x = self.0;
        x ^= x >> 33;
        x = x.wrapping_mul(0xff51afd7ed558ccd);
        x ^ (x >> 33)
    }
    pub fn below(&mut self, n: u64) -> u64 {
        self.next_u64() % n.max(1)
    }
    pub fn bytes(&mut self, n: usize) -> Vec<u8> {
        (0..n).map(|_| self.next_u64() as u8).collect()
    }
}

/// Fill `dir` with `total / each` files of `each` random (incompressible) bytes, named
/// `data0000.bin` on: a pack of them is as large as the data.
pub fn write_random_files(dir: &Path, total: usize, each: usize, seed: u64) {
    let mut rng = Rng::new(seed);
    for i in 0..total / each.max(1) {
        std::fs::write(dir.join(format!("data{i:04}.bin")), rng.bytes(each)).unwrap();
    }
}

/// Change 4 KiB in the middle of every `every`-th `.bin` file of `dir`: the next push sends
/// them as deltas against their previous versions.
pub fn edit_random_files(dir: &Path, every: usize, seed: u64) {
    let mut rng = Rng::new(seed);
    let mut names: Vec<_> = std::fs::read_dir(dir)
        .unwrap()
        .flatten()
        .map(|e| e.path())
        .filter(|p| p.extension().is_some_and(|e| e == "bin"))
        .collect();
    names.sort();
    for path in names.iter().step_by(every.max(1)) {
        let mut data = std::fs::read(path).unwrap();
        let at = data.len() / 2;
        let end = (at + 4096).min(data.len());
        data[at..end].copy_from_slice(&rng.bytes(end - at));
        std::fs::write(path, data).unwrap();
    }
}

/// The first commit date of generated histories; commit `i` is `i` hours later.
pub const HISTORY_EPOCH: u64 = 1_600_000_000;

/// Build a history like a real project's in `dir` (a new repository): `commits` commits on
/// `main` with text files that change a little each time (so packs hold deltas), nested
/// folders, renames, deletions, binary and executable files and a symlink; a `feature` branch
/// merged back, a `release` branch, annotated and lightweight tags.
pub fn make_history(git: &Git, dir: &Path, commits: usize, seed: u64) {
    git.ok(dir, &["init", "-q", "-b", "main"]);
    let mut rng = Rng::new(seed);
    let mut s = Vec::new();
    let mut mark = 0usize;
    let mut files: Vec<(String, Vec<u8>)> = (0..12)
        .map(|i| {
            let dir = ["", "src/", "src/deep/nested/", "docs/"][i % 4];
            let body: String = (0..40)
                .map(|l| format!("line {l} of file {i}: {}\n", rng.below(1000)))
                .collect();
            (format!("{dir}file{i}.txt"), body.into_bytes())
        })
        .collect();
    let mut commit_marks = Vec::new();
    let blob = |s: &mut Vec<u8>, mark: &mut usize, data: &[u8]| -> usize {
        *mark += 1;
        write!(s, "blob\nmark :{mark}\ndata {}\n", data.len()).unwrap();
        s.extend_from_slice(data);
        s.push(b'\n');
        *mark
    };
    let mut last_main: Option<usize> = None;
    let mut feature_from = None;
    for i in 0..commits {
        let mut ops: Vec<String> = Vec::new();
        let mut new_blobs = Vec::new();
        if i == 0 {
            for (path, data) in &files {
                let m = blob(&mut s, &mut mark, data);
                new_blobs.push((path.clone(), m, "100644"));
            }
            let bin = rng.bytes(3000);
            let m = blob(&mut s, &mut mark, &bin);
            new_blobs.push(("assets/model.bin".into(), m, "100644"));
            let m = blob(&mut s, &mut mark, b"#!/bin/sh\necho hello\n");
            new_blobs.push(("run.sh".into(), m, "100755"));
            let m = blob(&mut s, &mut mark, b"file0.txt");
            new_blobs.push(("link-to-file0".into(), m, "120000"));
            let m = blob(&mut s, &mut mark, b"");
            new_blobs.push(("empty.txt".into(), m, "100644"));
        } else {
            let k = rng.below(files.len() as u64) as usize;
            let (path, data) = &mut files[k];
            let line = format!("change {i}: {}\n", rng.below(1_000_000));
            let at = (rng.below(data.len() as u64) as usize).min(data.len());
            let at = data[..at]
                .iter()
                .rposition(|b| *b == b'\n')
                .map_or(0, |p| p + 1);
            // Files grow to a few hundred lines, then lines are rewritten in place: many
            // versions of text files, with the deltas real projects have.
            let end = if data.len() > 24_000 {
                data[at..]
                    .iter()
                    .position(|b| *b == b'\n')
                    .map_or(data.len(), |p| at + p + 1)
            } else {
                at
            };
            data.splice(at..end, line.bytes());
            let m = blob(&mut s, &mut mark, data);
            new_blobs.push((path.clone(), m, "100644"));
            if i % 37 == 0 {
                let len = 2000 + rng.below(2000) as usize;
                let bin = rng.bytes(len);
                let m = blob(&mut s, &mut mark, &bin);
                new_blobs.push((format!("assets/data{i}.bin"), m, "100644"));
            }
            if i % 53 == 0 {
                let k = rng.below(files.len() as u64) as usize;
                let old = files[k].0.clone();
                let new = format!("renamed/r{i}-{}", old.rsplit('/').next().unwrap_or("x"));
                ops.push(format!("R {old} {new}"));
                files[k].0 = new;
            }
            if i % 71 == 0 {
                ops.push(format!("D assets/data{}.bin", (i / 37) * 37));
            }
        }
        mark += 1;
        let this = mark;
        let when = HISTORY_EPOCH + i as u64 * 3600;
        write!(s, "commit refs/heads/main\nmark :{this}\nauthor Ada Tester <ada@example.com> {when} +0000\ncommitter Ada Tester <ada@example.com> {when} +0000\n").unwrap();
        let msg = format!("commit {i}\n\nchanges made in step {i}\n");
        write!(s, "data {}\n{msg}", msg.len()).unwrap();
        if let Some(prev) = last_main {
            writeln!(s, "from :{prev}").unwrap();
        }
        for op in ops {
            writeln!(s, "{op}").unwrap();
        }
        for (path, m, mode) in new_blobs {
            writeln!(s, "M {mode} :{m} {path}").unwrap();
        }
        s.push(b'\n');
        last_main = Some(this);
        commit_marks.push(this);
        if i == commits / 3 {
            feature_from = Some(this);
        }
        if i == commits / 2 {
            write!(s, "tag v1.0\nfrom :{this}\ntagger Ada Tester <ada@example.com> {when} +0000\ndata 13\nrelease v1.0\n\n").unwrap();
            write!(s, "reset refs/tags/light\nfrom :{this}\n\n").unwrap();
            write!(s, "reset refs/heads/release\nfrom :{this}\n\n").unwrap();
        }
    }
    // A feature branch with its own commits, merged into main.
    if let (Some(base), Some(tip)) = (feature_from, last_main) {
        let mut prev = base;
        for j in 0..10 {
            let data = format!("feature work {j}\n{}\n", rng.below(1000));
            let m = blob(&mut s, &mut mark, data.as_bytes());
            mark += 1;
            let when = HISTORY_EPOCH + (commits as u64 / 3) * 3600 + j * 60 + 30;
            write!(s, "commit refs/heads/feature\nmark :{mark}\ncommitter Ada Tester <ada@example.com> {when} +0000\ndata 8\nfeature\nfrom :{prev}\nM 100644 :{m} feature/notes-{j}.md\n\n").unwrap();
            prev = mark;
        }
        mark += 1;
        let when = HISTORY_EPOCH + commits as u64 * 3600;
        write!(s, "commit refs/heads/main\nmark :{mark}\ncommitter Ada Tester <ada@example.com> {when} +0000\ndata 14\nmerge feature\nfrom :{tip}\nmerge :{prev}\nM 100644 inline MERGED.md\ndata 7\nmerged\n\n").unwrap();
        write!(s, "tag v2.0\nfrom :{mark}\ntagger Ada Tester <ada@example.com> {when} +0000\ndata 13\nrelease v2.0\n\n").unwrap();
    }
    git.fast_import(dir, &s);
    git.ok(dir, &["checkout", "-q", "main"]);
    if feature_from.is_some() {
        // A tag of a tag: include-tag and peeling must follow the chain.
        git.ok(
            dir,
            &[
                "-c",
                "advice.nestedTag=false",
                "tag",
                "-a",
                "-m",
                "about v2.0",
                "v2.0-notes",
                "v2.0",
            ],
        );
    }
}
