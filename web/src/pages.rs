//! The pages, one template each (under `templates/`, compiled into the binary). Every value is
//! HTML-escaped when it is put in a page; only fields documented as HTML this crate made are
//! inserted as they are.

use askama::Template;

use crate::view::{
    BlobView, Chrome, CommitMeta, CommitRow, DiffFile, EntryRow, Link, PullRow, RefRow, RepoRow,
    RevMenu, Section,
};

/// Render `page`; a template that cannot render (a bug, never input) becomes a short page.
pub fn render(page: &impl Template) -> String {
    page.render().unwrap_or_else(|e| {
        format!(
            "<!doctype html><title>error</title><p>the page failed: {}",
            crate::highlight::escape(&e.to_string())
        )
    })
}

/// `/`: where a visitor starts.
#[derive(Template)]
#[template(path = "start.html")]
pub struct Start {
    /// Around the page.
    pub chrome: Chrome,
    /// The workspaces the visitor's token names.
    pub workspaces: Vec<Link>,
}

/// `/-/signin`: the token form.
#[derive(Template)]
#[template(path = "signin.html")]
pub struct SignIn {
    /// Around the page.
    pub chrome: Chrome,
    /// Where to go once signed in (a path on this server).
    pub next: String,
    /// Why the last attempt failed.
    pub message: Option<String>,
}

/// `/{ws}`: a workspace's repositories.
#[derive(Template)]
#[template(path = "workspace.html")]
pub struct Workspace {
    /// Around the page.
    pub chrome: Chrome,
    /// Its name.
    pub workspace: String,
    /// The repositories the visitor may see.
    pub repos: Vec<RepoRow>,
    /// The next page.
    pub next: Option<String>,
}

/// The clone box of a repository's home.
#[derive(Debug, Clone)]
pub struct CloneBox {
    /// The clone URL.
    pub url: String,
    /// The one line that sets the token for git.
    pub token_line: String,
}

/// A folder (the repository's home is its root folder).
#[derive(Template)]
#[template(path = "tree.html")]
pub struct Tree {
    /// Around the page.
    pub chrome: Chrome,
    /// Branches and tags.
    pub menu: RevMenu,
    /// The folders down to this one.
    pub path: Vec<Link>,
    /// Its entries (this page of them).
    pub entries: Vec<EntryRow>,
    /// The previous page of entries.
    pub previous: Option<String>,
    /// The next page of entries.
    pub next: Option<String>,
    /// The README, rendered (safe HTML).
    pub readme: Option<String>,
    /// On the home page: how to clone.
    pub clone: Option<CloneBox>,
    /// The folder's history.
    pub history: String,
    /// The folder as a zip archive.
    pub archive: String,
    /// The last commit at the revision.
    pub last: Option<CommitRow>,
    /// The repository has no commit.
    pub empty: bool,
}

/// A file.
#[derive(Template)]
#[template(path = "blob.html")]
pub struct Blob {
    /// Around the page.
    pub chrome: Chrome,
    /// Branches and tags.
    pub menu: RevMenu,
    /// The folders down to the file's.
    pub path: Vec<Link>,
    /// The file's name.
    pub name: String,
    /// Its size.
    pub size: String,
    /// How it is shown.
    pub view: BlobView,
    /// Its bytes, inline.
    pub raw: String,
    /// Its bytes, to save.
    pub download: String,
    /// Its history.
    pub history: String,
}

/// History of a revision or a path.
#[derive(Template)]
#[template(path = "commits.html")]
pub struct Commits {
    /// Around the page.
    pub chrome: Chrome,
    /// Branches and tags.
    pub menu: RevMenu,
    /// The path the history is of (`""` for all).
    pub path: String,
    /// This page of commits.
    pub commits: Vec<CommitRow>,
    /// The next page.
    pub next: Option<String>,
}

/// A commit and its diff, or a comparison of two revisions.
#[derive(Template)]
#[template(path = "commit.html")]
pub struct Commit {
    /// Around the page.
    pub chrome: Chrome,
    /// The commit, on a commit's page.
    pub commit: Option<CommitMeta>,
    /// The title of a comparison.
    pub heading: Option<String>,
    /// On a comparison: the form's action (`href`) and its `from`.
    pub compare: Option<Link>,
    /// On a comparison: its `to`.
    pub to: String,
    /// The files changed.
    pub files: Vec<DiffFile>,
    /// Files or lines were left out.
    pub truncated: bool,
}

/// Branches and tags.
#[derive(Template)]
#[template(path = "refs.html")]
pub struct Refs {
    /// Around the page.
    pub chrome: Chrome,
    /// Branches.
    pub branches: Vec<RefRow>,
    /// Tags.
    pub tags: Vec<RefRow>,
    /// The comparison page.
    pub compare: String,
}

/// Pull requests.
#[derive(Template)]
#[template(path = "pulls.html")]
pub struct Pulls {
    /// Around the page.
    pub chrome: Chrome,
    /// The pull requests.
    pub pulls: Vec<PullRow>,
}

/// One pull request.
#[derive(Template)]
#[template(path = "pull.html")]
pub struct Pull {
    /// Around the page.
    pub chrome: Chrome,
    /// Its number.
    pub number: u64,
    /// Its title.
    pub title: String,
    /// Its description.
    pub body: String,
    /// `open`, `closed`, `merged`.
    pub state: String,
    /// The source branch.
    pub head: String,
    /// The target branch.
    pub base: String,
    /// Who opened it.
    pub author: String,
    /// The visitor may merge it now.
    pub can_merge: bool,
    /// Where the merge form posts.
    pub merge_action: String,
    /// What the last action said.
    pub message: Option<String>,
    /// Its diff.
    pub files: Vec<DiffFile>,
    /// The diff was cut short.
    pub truncated: bool,
}

/// A repository's settings, read-only.
#[derive(Template)]
#[template(path = "settings.html")]
pub struct Settings {
    /// Around the page.
    pub chrome: Chrome,
    /// Visibility, webhooks, mirrors, upstreams, policy….
    pub sections: Vec<Section>,
}

/// An error page.
#[derive(Template)]
#[template(path = "error.html")]
pub struct Error {
    /// Around the page.
    pub chrome: Chrome,
    /// The HTTP status.
    pub status: u16,
    /// What went wrong.
    pub message: String,
    /// Whether signing in might help.
    pub sign_in: bool,
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::view::{RepoNav, Tab};

    #[test]
    fn values_are_escaped() {
        let chrome = Chrome {
            title: "<script>t</script>".into(),
            signed_in: Some("<b>me</b>".into()),
            csrf: "c\"x".into(),
            crumbs: vec![Link::new("/w", "<i>w</i>")],
            repo: Some(RepoNav {
                base: "/w/git/r".into(),
                rev: "main".into(),
                tab: Tab::Code,
                public: false,
                admin: true,
            }),
            here: "/w?\"x".into(),
        };
        let html = render(&Commits {
            chrome,
            menu: RevMenu {
                current: "<img src=x onerror=alert(1)>".into(),
                ..Default::default()
            },
            path: "\"><script>alert(1)</script>".into(),
            commits: vec![CommitRow {
                id: "0".repeat(40),
                short: "0000000".into(),
                href: "/w/git/r/-/commit/0".into(),
                summary: "<script>window.pwned=1</script>".into(),
                author: "a&b".into(),
                date: "2026".into(),
            }],
            next: None,
        });
        assert!(!html.contains("<script>"), "{html}");
        assert!(!html.contains("<img src=x"), "{html}");
        assert!(!html.contains("<b>me"), "{html}");
        assert!(html.contains("&#60;script&#62;window.pwned=1"), "{html}");
        assert!(
            html.contains("class=\"on\" href=\"/w/git/r/-/tree/main\""),
            "{html}"
        );
    }
}
