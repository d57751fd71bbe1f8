//! The real `git` binaries, isolated from the machine's configuration.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

use tempfile::TempDir;

/// The two git versions on the test machines; tests run against each that exists.
pub const GIT_BINARIES: &[&str] = &["/usr/bin/git", "/usr/local/bin/git"];

/// Every git of [`GIT_BINARIES`] this machine has.
pub fn git_binaries() -> Vec<PathBuf> {
    let found: Vec<PathBuf> = GIT_BINARIES
        .iter()
        .map(PathBuf::from)
        .filter(|p| p.exists())
        .collect();
    assert!(!found.is_empty(), "no git binary found in {GIT_BINARIES:?}");
    found
}

/// The default git: the first of [`GIT_BINARIES`] found.
pub fn default_git() -> PathBuf {
    git_binaries().remove(0)
}

/// The first git of [`GIT_BINARIES`] at least `major.minor`, if this machine has one.
pub fn git_at_least(major: u32, minor: u32) -> Option<PathBuf> {
    git_binaries().into_iter().find(|bin| {
        let out = Command::new(bin).arg("--version").output().ok();
        let text = out.map(|o| String::from_utf8_lossy(&o.stdout).into_owned());
        let version = text.as_deref().and_then(|t| t.split_whitespace().nth(2));
        let mut parts = version
            .unwrap_or("")
            .split('.')
            .map(|p| p.parse::<u32>().unwrap_or(0));
        let (a, b) = (parts.next().unwrap_or(0), parts.next().unwrap_or(0));
        (a, b) >= (major, minor)
    })
}

/// A git environment isolated from the machine's configuration.
pub struct Git {
    pub bin: PathBuf,
    home: TempDir,
}

impl Default for Git {
    fn default() -> Self {
        Git::new(default_git())
    }
}

impl Git {
    pub fn new(bin: PathBuf) -> Git {
        let home = TempDir::new().unwrap();
        Git { bin, home }
    }

    /// The home directory git runs with (its `--global` config lives there).
    pub fn home(&self) -> &Path {
        self.home.path()
    }

    pub fn command(&self, dir: &Path) -> Command {
        let mut cmd = Command::new(&self.bin);
        cmd.current_dir(dir)
            .env_clear()
            .env("PATH", std::env::var("PATH").unwrap_or_default())
            .env("HOME", self.home.path())
            .env("GIT_CONFIG_NOSYSTEM", "1")
            .env("GIT_TERMINAL_PROMPT", "0")
            .env("GIT_AUTHOR_NAME", "Ada Tester")
            .env("GIT_AUTHOR_EMAIL", "ada@example.com")
            .env("GIT_COMMITTER_NAME", "Ada Tester")
            .env("GIT_COMMITTER_EMAIL", "ada@example.com")
            .env("LC_ALL", "C")
            .env("GIT_DEFAULT_HASH", crate::object_format())
            .args([
                "-c",
                "init.defaultBranch=main",
                "-c",
                "advice.detachedHead=false",
            ]);
        cmd
    }

    /// Set up `git lfs` in this environment's home (its filters, as `git lfs install` does).
    pub fn lfs_install(&self) {
        let out = self
            .command(self.home.path())
            .args(["lfs", "install", "--skip-repo"])
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "git lfs install: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }

    /// Run git; the output whatever the exit status.
    pub fn run(&self, dir: &Path, args: &[&str]) -> Output {
        self.command(dir).args(args).output().unwrap()
    }

    /// Run git and require success; its stdout.
    pub fn ok(&self, dir: &Path, args: &[&str]) -> String {
        let out = self.run(dir, args);
        assert!(
            out.status.success(),
            "git {args:?} in {} failed:\n{}{}",
            dir.display(),
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    /// Run git and require failure; its stderr.
    pub fn fails(&self, dir: &Path, args: &[&str]) -> String {
        let out = self.run(dir, args);
        assert!(!out.status.success(), "git {args:?} unexpectedly succeeded");
        String::from_utf8_lossy(&out.stderr).into_owned()
    }

    /// `git rev-parse <what>` in `dir`.
    pub fn rev(&self, dir: &Path, what: &str) -> String {
        self.ok(dir, &["rev-parse", what]).trim().to_owned()
    }

    /// Every ref and its value, as `git for-each-ref` prints it, for comparison.
    pub fn refs(&self, dir: &Path, pattern: &str) -> String {
        self.ok(
            dir,
            &["for-each-ref", "--format=%(objectname) %(refname)", pattern],
        )
    }

    /// Feed a fast-import stream into the repository at `dir`.
    pub fn fast_import(&self, dir: &Path, stream: &[u8]) {
        let mut child = self
            .command(dir)
            .args(["fast-import", "--quiet"])
            .stdin(Stdio::piped())
            .spawn()
            .unwrap();
        child.stdin.take().unwrap().write_all(stream).unwrap();
        let status = child.wait().unwrap();
        assert!(status.success(), "fast-import failed");
    }
}

/// A deterministic pseudo-random generator for test content.
/// Commit a change to `file` in the work tree at `dir`; returns the new commit id.
pub fn commit_file(git: &Git, dir: &Path, file: &str, content: &str, message: &str) -> String {
    let path = dir.join(file);
    if let Some(parent) = path.parent() {
        std::fs::create_dir_all(parent).unwrap();
    }
    std::fs::write(&path, content).unwrap();
    git.ok(dir, &["add", file]);
    git.ok(dir, &["commit", "-q", "-m", message]);
    git.ok(dir, &["rev-parse", "HEAD"]).trim().to_owned()
}

/// The number of loose objects in a repository (what an unpacked fetch received).
pub fn loose_objects(git: &Git, dir: &Path) -> usize {
    let out = git.ok(dir, &["count-objects", "-v"]);
    out.lines()
        .find_map(|l| l.strip_prefix("count: "))
        .and_then(|n| n.trim().parse().ok())
        .unwrap()
}

/// POST raw bytes with curl (for requests stock git would never send); (status, body).
/// The packs of a bare repository (count of `.idx` files).
pub fn pack_count(bare: &Path) -> usize {
    std::fs::read_dir(bare.join("objects/pack"))
        .map(|d| {
            d.filter_map(Result::ok)
                .filter(|e| e.path().extension().is_some_and(|x| x == "idx"))
                .count()
        })
        .unwrap_or(0)
}
