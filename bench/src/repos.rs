//! The repositories the benchmark serves: deterministic synthetic histories of three sizes and,
//! when the machine has one, a history of real source code (the crates in the cargo registry).

use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};
use std::process::Stdio;

use artifact_git_e2e::{make_history, Git, Rng, HISTORY_EPOCH};

/// Which repository to build.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RepoKind {
    /// `make_history` with this many commits (the test suite's generator).
    Synthetic(usize),
    /// Many versions of many text files, this many commits (`large`: ~400k objects, a
    /// pack of ~150 MB).
    Large(usize),
    /// The crate sources of the local cargo registry, one crate version per commit.
    Registry,
}

impl RepoKind {
    pub fn parse(name: &str) -> Option<RepoKind> {
        match name {
            "small" => Some(RepoKind::Synthetic(1_000)),
            "medium" => Some(RepoKind::Synthetic(12_500)),
            "large" => Some(RepoKind::Large(LARGE_COMMITS)),
            "registry" => Some(RepoKind::Registry),
            _ => {
                let (kind, n) = name.split_once('=')?;
                let n = n.parse().ok()?;
                match kind {
                    "commits" => Some(RepoKind::Synthetic(n)),
                    "large" => Some(RepoKind::Large(n)),
                    _ => None,
                }
            }
        }
    }

    pub fn describe(self) -> String {
        match self {
            RepoKind::Synthetic(n) => format!("synthetic, {n} commits"),
            RepoKind::Large(n) => format!("synthetic large, {n} commits"),
            RepoKind::Registry => "real source: the cargo registry's crates".into(),
        }
    }

    /// Build the repository in `dir` (a new directory); every kind ends with `main` and at
    /// least 60 commits, so "fetch 50 commits" has something to fetch.
    pub fn build(self, git: &Git, dir: &Path) {
        match self {
            RepoKind::Synthetic(n) => make_history(git, dir, n, 42),
            RepoKind::Large(n) => large_history(git, dir, n, 7),
            RepoKind::Registry => registry_history(git, dir),
        }
    }
}

const LARGE_COMMITS: usize = 46_000;

/// A fast-import process fed as the history is generated: the stream of a large history is
/// gigabytes of file versions, too much to hold.
struct FastImport {
    child: std::process::Child,
    stdin: BufWriter<std::process::ChildStdin>,
}

impl FastImport {
    fn start(git: &Git, dir: &Path) -> FastImport {
        git.ok(dir, &["init", "-q", "-b", "main"]);
        let mut child = git
            .command(dir)
            .args(["fast-import", "--quiet", "--depth=50"])
            .stdin(Stdio::piped())
            .spawn()
            .expect("git fast-import");
        let stdin = BufWriter::with_capacity(1 << 20, child.stdin.take().expect("stdin"));
        FastImport { child, stdin }
    }

    fn data(&mut self, data: &[u8]) {
        writeln!(self.stdin, "data {}", data.len()).unwrap();
        self.stdin.write_all(data).unwrap();
        self.stdin.write_all(b"\n").unwrap();
    }

    fn finish(self) {
        let FastImport { mut child, stdin } = self;
        drop(stdin.into_inner().unwrap());
        assert!(child.wait().unwrap().success(), "fast-import failed");
    }
}

/// Many text files in nested folders, two edited per commit (lines rewritten and inserted
/// with words from a fixed vocabulary, so text compresses and deltas as source does), a new
/// file every eighth commit, a `release` branch and tags along the way.
fn large_history(git: &Git, dir: &Path, commits: usize, seed: u64) {
    let mut rng = Rng::new(seed);
    let words: Vec<String> = (0..4096)
        .map(|_| {
            let len = 2 + rng.below(9) as usize;
            (0..len)
                .map(|_| (b'a' + rng.below(26) as u8) as char)
                .collect()
        })
        .collect();
    let line = |rng: &mut Rng| -> String {
        let n = 4 + rng.below(9) as usize;
        let mut l = "    ".to_owned();
        for i in 0..n {
            if i > 0 {
                l.push(' ');
            }
            l.push_str(&words[rng.below(words.len() as u64) as usize]);
        }
        l.push('\n');
        l
    };
    let folders: Vec<String> = (0..40)
        .map(|d| match d % 4 {
            0 => format!("src/module{d}"),
            1 => format!("src/module{}/sub{d}", d - 1),
            2 => format!("lib/part{d}"),
            _ => format!("docs/section{d}"),
        })
        .collect();
    let mut files: Vec<(String, Vec<String>)> = Vec::new();
    for (d, folder) in folders.iter().enumerate() {
        for f in 0..25 {
            let lines = (0..40).map(|_| line(&mut rng)).collect();
            files.push((format!("{folder}/file{d}_{f}.txt"), lines));
        }
    }
    let mut fi = FastImport::start(git, dir);
    for i in 0..commits {
        let mut touched: Vec<usize> = Vec::new();
        if i == 0 {
            touched.extend(0..files.len());
        } else {
            for _ in 0..2 {
                let k = rng.below(files.len() as u64) as usize;
                let lines = &mut files[k].1;
                for _ in 0..18 {
                    let at = rng.below(lines.len() as u64) as usize;
                    let new = line(&mut rng);
                    if lines.len() < 150 {
                        lines.insert(at, new);
                    } else {
                        lines[at] = new;
                    }
                }
                touched.push(k);
            }
            if i % 8 == 0 {
                let folder = &folders[rng.below(folders.len() as u64) as usize];
                let lines = (0..50).map(|_| line(&mut rng)).collect();
                files.push((format!("{folder}/added{i}.txt"), lines));
                touched.push(files.len() - 1);
            }
        }
        let when = HISTORY_EPOCH + i as u64 * 600;
        write!(
            fi.stdin,
            "commit refs/heads/main\ncommitter Ada Tester <ada@example.com> {when} +0000\n"
        )
        .unwrap();
        fi.data(format!("change {i}\n\nedit {} files\n", touched.len()).as_bytes());
        for k in touched {
            let (path, lines) = &files[k];
            writeln!(fi.stdin, "M 100644 inline {path}").unwrap();
            fi.data(lines.concat().as_bytes());
        }
        fi.stdin.write_all(b"\n").unwrap();
        if i == commits / 2 {
            write!(
                fi.stdin,
                "reset refs/heads/release\nfrom refs/heads/main\n\n"
            )
            .unwrap();
        }
        if i > 0 && i % 5_000 == 0 {
            write!(
                fi.stdin,
                "tag v{}\nfrom refs/heads/main\ntagger Ada Tester <ada@example.com> {when} +0000\n",
                i / 5_000
            )
            .unwrap();
            fi.data(b"release\n");
        }
    }
    fi.finish();
}

/// The registry's unpacked crates, sorted by name and version: each commit puts one crate
/// version under `vendor/<name>/`, replacing the previous version of that crate, so where the
/// registry holds several versions of a crate the deltas between them are real ones.
fn registry_history(git: &Git, dir: &Path) {
    let mut crates: Vec<PathBuf> = registry_dirs()
        .into_iter()
        .flat_map(|r| std::fs::read_dir(r).into_iter().flatten().flatten())
        .map(|e| e.path())
        .filter(|p| p.is_dir())
        .collect();
    crates.sort();
    assert!(
        crates.len() >= 60,
        "the cargo registry holds {} crates; build the workspace first",
        crates.len()
    );
    let mut fi = FastImport::start(git, dir);
    for (i, krate) in crates.iter().enumerate() {
        let full = krate.file_name().unwrap().to_string_lossy().into_owned();
        // "name-1.2.3": the name is everything before the last '-' followed by a digit.
        let name = full
            .char_indices()
            .filter(|(i, c)| *c == '-' && full[i + 1..].starts_with(|d: char| d.is_ascii_digit()))
            .map(|(i, _)| &full[..i])
            .next_back()
            .unwrap_or(&full)
            .to_owned();
        let when = HISTORY_EPOCH + i as u64 * 3600;
        write!(
            fi.stdin,
            "commit refs/heads/main\ncommitter Ada Tester <ada@example.com> {when} +0000\n"
        )
        .unwrap();
        fi.data(format!("vendor {full}\n").as_bytes());
        writeln!(fi.stdin, "D vendor/{name}").unwrap();
        let mut stack = vec![krate.clone()];
        while let Some(d) = stack.pop() {
            let mut entries: Vec<_> = std::fs::read_dir(&d).unwrap().flatten().collect();
            entries.sort_by_key(|e| e.file_name());
            for e in entries {
                let path = e.path();
                let meta = std::fs::symlink_metadata(&path).unwrap();
                let rel = path
                    .strip_prefix(krate)
                    .unwrap()
                    .to_string_lossy()
                    .into_owned();
                if rel.contains('\n') || rel.contains('"') {
                    continue;
                }
                if meta.is_dir() {
                    stack.push(path);
                } else if meta.is_file() {
                    use std::os::unix::fs::PermissionsExt;
                    let mode = if meta.permissions().mode() & 0o111 != 0 {
                        "100755"
                    } else {
                        "100644"
                    };
                    writeln!(fi.stdin, "M {mode} inline \"vendor/{name}/{rel}\"").unwrap();
                    fi.data(&std::fs::read(&path).unwrap());
                }
            }
        }
        fi.stdin.write_all(b"\n").unwrap();
    }
    fi.finish();
}

fn registry_dirs() -> Vec<PathBuf> {
    let home = std::env::var_os("CARGO_HOME")
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".cargo")))
        .unwrap_or_default();
    std::fs::read_dir(home.join("registry/src"))
        .into_iter()
        .flatten()
        .flatten()
        .map(|e| e.path())
        .collect()
}
