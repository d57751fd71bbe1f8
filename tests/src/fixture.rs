//! The usual start of a test: a server with a repository that holds a pushed history.

use std::path::PathBuf;

use tempfile::TempDir;

use crate::git::Git;
use crate::history::make_history;
use crate::server::{Backend, Server};

/// A server, a repository on it, and a local clone (`source`) whose history was pushed.
pub struct Fixture {
    pub server: Server,
    pub git: Git,
    pub work: TempDir,
    /// The local repository the history was pushed from, with `origin` set.
    pub source: PathBuf,
    /// `workspace/alias`.
    pub repo: String,
    /// The clone URL with an admin token.
    pub url: String,
}

impl Fixture {
    /// A server on `backend` started with `args`, the repository `repo`, and a generated
    /// history of `commits` commits (branches and tags included) pushed to it.
    pub fn new(backend: &Backend, args: &[&str], repo: &str, commits: usize, seed: u64) -> Fixture {
        let server = Server::start_on_with(backend, args);
        server.init(repo);
        let git = Git::default();
        let work = TempDir::new().unwrap();
        let source = work.path().join("source");
        std::fs::create_dir(&source).unwrap();
        make_history(&git, &source, commits, seed);
        let url = server.repo_url(repo);
        git.ok(&source, &["remote", "add", "origin", &url]);
        git.ok(&source, &["push", "-q", "origin", "--all"]);
        git.ok(&source, &["push", "-q", "origin", "--tags"]);
        Fixture {
            server,
            git,
            work,
            source,
            repo: repo.to_owned(),
            url,
        }
    }

    /// `git ls-remote` of the repository.
    pub fn remote_refs(&self) -> String {
        self.git.ok(&self.source, &["ls-remote", &self.url])
    }

    /// A fresh clone (`--mirror` when `mirror`), checked with `git fsck --strict`.
    pub fn fresh_clone(&self, name: &str, mirror: bool) -> PathBuf {
        let dir = self.work.path().join(name);
        let mut args = vec!["clone", "-q"];
        if mirror {
            args.push("--mirror");
        }
        args.extend([self.url.as_str(), dir.to_str().unwrap()]);
        self.git.ok(self.work.path(), &args);
        self.git.ok(&dir, &["fsck", "--strict"]);
        dir
    }
}
