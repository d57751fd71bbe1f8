//! The view models pages are rendered from: plain data the server's handlers fill. Every
//! string here is shown escaped unless its field says it is HTML this crate made.

use percent_encoding::{utf8_percent_encode, AsciiSet, NON_ALPHANUMERIC};

/// Characters left as they are in a path segment of a link.
const SEGMENT: &AsciiSet = &NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'_')
    .remove(b'.')
    .remove(b'~');

/// One path segment (a file name, a branch name's part) percent-encoded for a URL.
pub fn encode_segment(segment: &str) -> String {
    utf8_percent_encode(segment, SEGMENT).to_string()
}

/// A path (`a/b c/d`) percent-encoded segment by segment (`a/b%20c/d`).
pub fn encode_path(path: &str) -> String {
    path.split('/')
        .map(encode_segment)
        .collect::<Vec<_>>()
        .join("/")
}

/// A link: where, and its text.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Link {
    /// The URL (already encoded).
    pub href: String,
    /// The text shown.
    pub text: String,
}

impl Link {
    /// A link to `href` reading `text`.
    pub fn new(href: impl Into<String>, text: impl Into<String>) -> Link {
        Link {
            href: href.into(),
            text: text.into(),
        }
    }
}

/// Which tab of a repository's pages is showing.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Tab {
    /// Files and folders.
    Code,
    /// History.
    Commits,
    /// Branches and tags.
    Refs,
    /// Pull requests.
    Pulls,
    /// Settings.
    Settings,
}

/// What every page shows around its content.
#[derive(Debug, Clone, Default)]
pub struct Chrome {
    /// The page's title.
    pub title: String,
    /// Who is signed in (the token's subject, or "signed in"), if anyone.
    pub signed_in: Option<String>,
    /// The token forms post back to prove they came from these pages.
    pub csrf: String,
    /// Where the visitor is: workspace, repository, folder….
    pub crumbs: Vec<Link>,
    /// The repository's tabs, on a repository's pages.
    pub repo: Option<RepoNav>,
    /// Where sign-in returns to.
    pub here: String,
}

/// A repository's tabs.
#[derive(Debug, Clone)]
pub struct RepoNav {
    /// `/{ws}/git/{alias}`.
    pub base: String,
    /// The revision pages link to (encoded).
    pub rev: String,
    /// The tab showing.
    pub tab: Tab,
    /// Whether anyone may read it.
    pub public: bool,
    /// Whether the visitor may see settings.
    pub admin: bool,
}

impl RepoNav {
    /// The class of `tab`'s link: `on` for the one showing (for the templates).
    pub fn class(&self, tab: &str) -> &'static str {
        let showing = match self.tab {
            Tab::Code => "code",
            Tab::Commits => "commits",
            Tab::Refs => "refs",
            Tab::Pulls => "pulls",
            Tab::Settings => "settings",
        };
        if showing == tab {
            "on"
        } else {
            ""
        }
    }
}

/// The branch and tag chooser.
#[derive(Debug, Clone, Default)]
pub struct RevMenu {
    /// The revision showing.
    pub current: String,
    /// Branches, each linking to the same page at it.
    pub branches: Vec<Link>,
    /// Tags.
    pub tags: Vec<Link>,
}

/// A row of a folder listing.
#[derive(Debug, Clone)]
pub struct EntryRow {
    /// The name.
    pub name: String,
    /// Its page.
    pub href: String,
    /// `dir`, `file`, `lfs`, `link` or `submodule`.
    pub kind: &'static str,
    /// Its size, when a file.
    pub size: String,
}

/// A commit in a list.
#[derive(Debug, Clone)]
pub struct CommitRow {
    /// The full id.
    pub id: String,
    /// Seven digits.
    pub short: String,
    /// Its page.
    pub href: String,
    /// The first line of its message.
    pub summary: String,
    /// The author's name.
    pub author: String,
    /// When it was authored.
    pub date: String,
}

/// A repository in a workspace's list.
#[derive(Debug, Clone)]
pub struct RepoRow {
    /// Its name.
    pub alias: String,
    /// Its home page.
    pub href: String,
    /// Whether anyone may read it.
    pub public: bool,
}

/// How a file's page shows it.
#[derive(Debug, Clone)]
pub enum BlobView {
    /// Text (highlighted HTML made by [`crate::highlight`]) with its line count.
    Code {
        /// Safe HTML.
        html: String,
        /// Lines, for the number column.
        lines: usize,
    },
    /// A Markdown file rendered ([`crate::markdown`]); safe HTML.
    Markdown(String),
    /// An image, shown from its raw URL.
    Image(String),
    /// Bytes that are not text.
    Binary,
    /// A Git LFS file (its content is in LFS storage).
    Lfs,
    /// Too large to show.
    TooLarge,
}

/// A file of a diff.
#[derive(Debug, Clone)]
pub struct DiffFile {
    /// Its path (the new one).
    pub path: String,
    /// The old path, for a rename or copy.
    pub old_path: Option<String>,
    /// `added`, `deleted`, `modified`, `renamed`, …
    pub status: String,
    /// Lines added.
    pub additions: u64,
    /// Lines removed.
    pub deletions: u64,
    /// Either side is binary.
    pub binary: bool,
    /// Its lines were left out (too large).
    pub omitted: bool,
    /// Its lines.
    pub lines: Vec<crate::diff::Line>,
    /// The file's page at the new revision (or the old one when deleted).
    pub href: String,
}

/// A commit shown on its own page.
#[derive(Debug, Clone)]
pub struct CommitMeta {
    /// Its id.
    pub id: String,
    /// The first line of the message.
    pub summary: String,
    /// The rest of the message.
    pub body: String,
    /// Author and date.
    pub author: String,
    /// When.
    pub date: String,
    /// Its parents' pages.
    pub parents: Vec<Link>,
    /// Its tree's page.
    pub browse: String,
}

/// A branch or tag in the list.
#[derive(Debug, Clone)]
pub struct RefRow {
    /// The short name.
    pub name: String,
    /// Its files.
    pub href: String,
    /// Its history.
    pub commits: String,
    /// The commit it names (seven digits).
    pub short: String,
    /// Whether it is the default branch.
    pub default: bool,
}

/// A pull request in the list.
#[derive(Debug, Clone)]
pub struct PullRow {
    /// Its number.
    pub number: u64,
    /// Its title.
    pub title: String,
    /// `open`, `closed` or `merged`.
    pub state: String,
    /// Its page.
    pub href: String,
    /// Source and target branches.
    pub head: String,
    /// The target branch.
    pub base: String,
    /// Who opened it.
    pub author: String,
}

/// A titled table of read-only settings.
#[derive(Debug, Clone)]
pub struct Section {
    /// Its title.
    pub title: String,
    /// Name and value rows.
    pub rows: Vec<(String, String)>,
    /// Shown when there are no rows.
    pub empty: String,
}
