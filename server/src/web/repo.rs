//! A repository's pages: home, folders, files, history, commits, comparisons, branches and
//! tags (read here from the refs and the packs), pull requests and settings (the API's
//! answers rendered).

use gix_hash::ObjectId;
use http::{header, HeaderValue, Request, Response, StatusCode};
use hyper::body::Incoming;
use serde_json::{json, Value};
use webview::format;
use webview::view::{
    encode_path, BlobView, Chrome, CommitMeta, CommitRow, DiffFile, EntryRow, Link, RefRow,
    RepoNav, RevMenu, Tab,
};

use super::{respond, Visit};
use crate::admission::{granted, open_repository};
use crate::auth::Access;
use crate::body::ResponseBody;
use crate::files::{self, AtRevision, FolderQuery};
use crate::repo::{Repo, Settings};
use crate::response::HttpError;
use crate::storage::RepoId;

use super::RepoPage;

/// Entries per page of a folder.
const ENTRIES_PAGE: usize = 500;
/// Commits per page of history.
const COMMITS_PAGE: usize = 50;
/// Files shown of one diff.
const DIFF_FILES: usize = 300;
/// Bytes of patch text shown of one diff (the history API's default budget).
const DIFF_BYTES: usize = 1 << 20;
/// Files above this size are offered for download instead of shown.
const SHOWN_BYTES: u64 = 1 << 20;
/// The history API's walk budget for one page of history.
const MAX_VISITED: usize = 2_000_000;

/// A repository opened for a page.
pub(super) struct Opened {
    pub(super) repo: Repo,
    pub(super) snapshot: refs::Snapshot,
    pub(super) settings: Settings,
    /// `/{ws}/git/{alias}`.
    pub(super) base: String,
}

impl Opened {
    /// The default branch's short name, when `HEAD` names a branch.
    fn default_branch(&self) -> Option<String> {
        self.snapshot
            .head
            .as_deref()
            .and_then(|h| h.strip_prefix("refs/heads/"))
            .map(str::to_owned)
    }
}

pub(super) async fn open(visit: &Visit, id: RepoId) -> Result<Opened, HttpError> {
    let base = format!("/{}/git/{}", id.workspace, id.alias);
    let (repo, snapshot, settings) =
        open_repository(&visit.app, visit.identity.as_ref(), id, Access::Read).await?;
    Ok(Opened {
        repo,
        snapshot,
        settings,
        base,
    })
}

/// The chrome of a repository's page.
pub(super) fn chrome(visit: &Visit, o: &Opened, tab: Tab, rev: &str, title: String) -> Chrome {
    let mut chrome = visit.chrome(title);
    let id = &o.repo.id;
    chrome.crumbs = vec![
        Link::new(format!("/{}", id.workspace), id.workspace.clone()),
        Link::new(o.base.clone(), id.alias.clone()),
    ];
    chrome.repo = Some(RepoNav {
        base: o.base.clone(),
        rev: encode_path(rev),
        tab,
        public: o.settings.public,
        admin: granted(visit.identity.as_ref(), &o.repo, Access::Admin),
    });
    chrome
}

/// Branches and tags, each linking to `page` (`tree`, `commits`, …) at it, under `path`.
fn rev_menu(o: &Opened, current: &str, page: &str, path: &str) -> RevMenu {
    let link = |name: &str| {
        let mut href = format!("{}/-/{page}/{}", o.base, encode_path(name));
        if !path.is_empty() {
            href.push('/');
            href.push_str(&encode_path(path));
        }
        Link::new(href, name)
    };
    let names = |prefix: &str| -> Vec<Link> {
        o.snapshot
            .refs
            .keys()
            .filter_map(|r| r.strip_prefix(prefix))
            .take(200)
            .map(link)
            .collect()
    };
    RevMenu {
        current: current.to_owned(),
        branches: names("refs/heads/"),
        tags: names("refs/tags/"),
    }
}

/// Links to each folder from the root down to (and including) `path`.
fn path_links(o: &Opened, rev: &str, path: &str) -> Vec<Link> {
    let mut links = vec![Link::new(
        format!("{}/-/tree/{}", o.base, encode_path(rev)),
        o.repo.id.alias.clone(),
    )];
    let mut so_far = String::new();
    for part in path.split('/').filter(|p| !p.is_empty()) {
        if !so_far.is_empty() {
            so_far.push('/');
        }
        so_far.push_str(part);
        links.push(Link::new(
            format!(
                "{}/-/tree/{}/{}",
                o.base,
                encode_path(rev),
                encode_path(&so_far)
            ),
            part,
        ));
    }
    links
}

pub(super) fn html(html: String) -> Response<ResponseBody> {
    respond::page(StatusCode::OK, html)
}

/// Run CPU work off the async threads.
pub(super) async fn blocking<T: Send + 'static>(
    f: impl FnOnce() -> Result<T, HttpError> + Send + 'static,
) -> Result<T, HttpError> {
    tokio::task::spawn_blocking(f)
        .await
        .map_err(|e| HttpError::Internal(format!("task failed: {e}")))?
}

fn query_value(query: &str, name: &str) -> Option<String> {
    form_urlencoded::parse(query.as_bytes())
        .find(|(k, _)| k == name)
        .map(|(_, v)| v.into_owned())
}

fn decode(segments: &[String]) -> Result<Vec<String>, HttpError> {
    segments.iter().map(|s| files::decode_segment(s)).collect()
}

/// Answer a `GET` of a repository's page.
pub async fn page(
    visit: &Visit,
    id: RepoId,
    page: RepoPage,
    query: &str,
    req: &Request<Incoming>,
) -> Result<Response<ResponseBody>, HttpError> {
    let o = open(visit, id).await?;
    match page {
        RepoPage::Home => home(visit, o).await,
        RepoPage::Tree(segments) => {
            let (rev, path) = files::split_revision(&o.snapshot, &decode(&segments)?)?;
            tree(visit, o, rev, path, query, false).await
        }
        RepoPage::Blob(segments) => {
            let (rev, path) = files::split_revision(&o.snapshot, &decode(&segments)?)?;
            blob(visit, o, rev, path).await
        }
        RepoPage::Raw(segments) => {
            let (rev, path) = files::split_revision(&o.snapshot, &decode(&segments)?)?;
            raw(visit, o, rev, path, req).await
        }
        RepoPage::Commits(segments) => {
            let (rev, path) = files::split_revision(&o.snapshot, &decode(&segments)?)?;
            commits(visit, o, rev, path, query).await
        }
        RepoPage::Commit(id) => commit(visit, o, id).await,
        RepoPage::Compare => compare(visit, o, query).await,
        RepoPage::Refs => refs_page(visit, o),
        RepoPage::Pulls => super::pulls::list(visit, &o).await,
        RepoPage::Pull(n) => super::pulls::show(visit, &o, n, None).await,
        RepoPage::Settings => super::pulls::settings(visit, &o).await,
        RepoPage::Merge(_) => Err(HttpError::MethodNotAllowed("merge with POST")),
    }
}

/// The repository's home: the default branch's root, with how to clone.
async fn home(visit: &Visit, o: Opened) -> Result<Response<ResponseBody>, HttpError> {
    let branch = o.default_branch().unwrap_or_else(|| "HEAD".to_owned());
    let has_commit = o
        .snapshot
        .head
        .as_deref()
        .and_then(|h| o.snapshot.get(h))
        .is_some();
    if !has_commit {
        let title = o.repo.id.to_string();
        let page = webview::pages::Tree {
            chrome: chrome(visit, &o, Tab::Code, &branch, title),
            menu: rev_menu(&o, &branch, "tree", ""),
            path: Vec::new(),
            entries: Vec::new(),
            previous: None,
            next: None,
            readme: None,
            clone: Some(clone_box(visit, &o)),
            history: format!("{}/-/commits/{}", o.base, encode_path(&branch)),
            archive: String::new(),
            last: None,
            empty: true,
        };
        return Ok(html(webview::pages::render(&page)));
    }
    tree(visit, o, branch, String::new(), "", true).await
}

fn clone_box(visit: &Visit, o: &Opened) -> webview::pages::CloneBox {
    let url = format!("{}{}", visit.base_url, o.base);
    let origin = visit.base_url.clone();
    webview::pages::CloneBox {
        token_line: format!(
            "git config --global http.{origin}/.extraHeader \"Authorization: Bearer $TOKEN\""
        ),
        url,
    }
}

fn commit_row(base: &str, info: &history::CommitInfo) -> CommitRow {
    let id = info.id.to_string();
    CommitRow {
        short: format::short_id(&id),
        href: format!("{base}/-/commit/{id}"),
        summary: format::summary(&info.message),
        author: info.author.name.clone(),
        date: format::date(&info.author.rfc3339()),
        id,
    }
}

/// What a folder page reads on a blocking thread.
struct Folder {
    entries: Vec<EntryRow>,
    more: bool,
    readme: Option<String>,
    last: CommitRow,
}

/// A folder; with `home`, the repository's home page.
async fn tree(
    visit: &Visit,
    o: Opened,
    rev: String,
    path: String,
    query: &str,
    home: bool,
) -> Result<Response<ResponseBody>, HttpError> {
    let offset = query_value(query, "offset")
        .and_then(|v| v.parse::<usize>().ok())
        .unwrap_or(0)
        .min(10_000_000);
    let at = files::open_at(&visit.app, o.repo.clone(), o.snapshot.clone(), rev.clone()).await?;
    let folder = {
        let (at, path, base, rev) = (at.clone(), path.clone(), o.base.clone(), rev.clone());
        blocking(move || read_folder(&at, &path, offset, &base, &rev)).await?
    };
    let Some(folder) = folder else {
        // A file: its page.
        return Ok(respond::redirect(&format!(
            "{}/-/blob/{}/{}",
            o.base,
            encode_path(&rev),
            encode_path(&path)
        )));
    };
    let mut here = format!("{}/-/tree/{}", o.base, encode_path(&rev));
    if !path.is_empty() {
        here = format!("{here}/{}", encode_path(&path));
    }
    let previous =
        (offset > 0).then(|| format!("{here}?offset={}", offset.saturating_sub(ENTRIES_PAGE)));
    let next = folder
        .more
        .then(|| format!("{here}?offset={}", offset + ENTRIES_PAGE));
    let title = match path.is_empty() {
        true => o.repo.id.to_string(),
        false => format!("{path} at {rev} · {}", o.repo.id),
    };
    let mut archive = format!("{}/archive/{}.zip", o.base, encode_path(&rev));
    if !path.is_empty() {
        archive.push_str("?path=");
        archive.push_str(&form_urlencoded::byte_serialize(path.as_bytes()).collect::<String>());
    }
    let mut history = format!("{}/-/commits/{}", o.base, encode_path(&rev));
    if !path.is_empty() {
        history = format!("{history}/{}", encode_path(&path));
    }
    let page = webview::pages::Tree {
        chrome: chrome(visit, &o, Tab::Code, &rev, title),
        menu: rev_menu(&o, &rev, "tree", &path),
        path: if path.is_empty() {
            Vec::new()
        } else {
            path_links(&o, &rev, &path)
        },
        entries: folder.entries,
        previous,
        next,
        readme: folder.readme,
        clone: home.then(|| clone_box(visit, &o)),
        history,
        archive,
        last: Some(folder.last),
        empty: false,
    };
    Ok(html(webview::pages::render(&page)))
}

/// A page of the folder at `path` (`None` when `path` is a file), its README rendered.
fn read_folder(
    at: &AtRevision,
    path: &str,
    offset: usize,
    base: &str,
    rev: &str,
) -> Result<Option<Folder>, HttpError> {
    let reader = at.db.reader();
    match history::entry_at(&reader, &at.tree, path).map_err(files::history_error)? {
        None => {
            return Err(HttpError::EntryNotFound(format!(
                "no file or folder {path:?}"
            )))
        }
        Some((mode, _)) if mode & 0o170000 != 0o040000 => return Ok(None),
        Some(_) => {}
    }
    let q = FolderQuery {
        recursive: false,
        expand: false,
        limit: ENTRIES_PAGE,
        offset,
    };
    let (listed, more) = files::list_entries(at, path, &q)?;
    let rev_enc = encode_path(rev);
    let mut readme = None;
    let mut entries = Vec::with_capacity(listed.len());
    for l in &listed {
        let e = &l.entry;
        let name = e.path.rsplit('/').next().unwrap_or(&e.path).to_owned();
        let (kind, page) = match (e.kind, e.mode, &l.lfs) {
            (history::EntryKind::Tree, _, _) => ("dir", "tree"),
            (history::EntryKind::Commit, _, _) => ("submodule", "tree"),
            (_, 0o120000, _) => ("link", "blob"),
            (_, _, Some(_)) => ("lfs", "blob"),
            _ => ("file", "blob"),
        };
        let size = match (&l.lfs, e.size) {
            (Some(p), _) => format::size(p.size),
            (None, Some(s)) if kind != "dir" => format::size(s),
            _ => String::new(),
        };
        if readme.is_none() && kind == "file" && is_readme(&name) {
            readme = render_readme(at, e, &name, base, rev, path)?;
        }
        entries.push(EntryRow {
            href: format!("{base}/-/{page}/{rev_enc}/{}", encode_path(&e.path)),
            name,
            kind,
            size,
        });
    }
    let info = history::commit_info(&reader, &at.commit).map_err(files::history_error)?;
    Ok(Some(Folder {
        entries,
        more,
        readme,
        last: commit_row(base, &info),
    }))
}

fn is_readme(name: &str) -> bool {
    let lower = name.to_ascii_lowercase();
    [
        "readme.md",
        "readme.markdown",
        "readme",
        "readme.txt",
        "readme.rst",
    ]
    .contains(&lower.as_str())
}

fn is_markdown(name: &str) -> bool {
    let lower = name.to_ascii_lowercase();
    lower.ends_with(".md") || lower.ends_with(".markdown")
}

/// The README `e`, rendered (Markdown) or escaped in a `<pre>`, when small enough to show.
fn render_readme(
    at: &AtRevision,
    e: &history::Entry,
    name: &str,
    base: &str,
    rev: &str,
    folder: &str,
) -> Result<Option<String>, HttpError> {
    if e.size.is_none_or(|s| s > SHOWN_BYTES) {
        return Ok(None);
    }
    let mut data = Vec::new();
    at.db.reader().read(&e.id, &mut data)?;
    if lfs::Pointer::parse(&data).is_some() || history::is_binary(&data) {
        return Ok(None);
    }
    let text = String::from_utf8_lossy(&data);
    Ok(Some(match is_markdown(name) {
        true => webview::markdown::render(&text, &link_base(base, rev, folder)),
        false => format!("<pre>{}</pre>", webview::highlight::escape(&text)),
    }))
}

fn link_base(base: &str, rev: &str, folder: &str) -> webview::markdown::LinkBase {
    webview::markdown::LinkBase {
        pages: format!("{base}/-/blob/{}", encode_path(rev)),
        raw: format!("{base}/-/raw/{}", encode_path(rev)),
        folder: folder.to_owned(),
    }
}

/// The image formats shown inline, by extension, with their content types. SVG is among
/// them: shown by an `<img>`, which runs no script, and served with a sandboxing policy.
fn image_type(name: &str) -> Option<&'static str> {
    let ext = name.rsplit_once('.')?.1.to_ascii_lowercase();
    Some(match ext.as_str() {
        "png" => "image/png",
        "jpg" | "jpeg" => "image/jpeg",
        "gif" => "image/gif",
        "webp" => "image/webp",
        "avif" => "image/avif",
        "bmp" => "image/bmp",
        "ico" => "image/x-icon",
        "svg" => "image/svg+xml",
        _ => return None,
    })
}

/// What a file page reads on a blocking thread.
enum FileRead {
    /// A folder: its page.
    Folder,
    /// A file: its size and view.
    File(u64, BlobView),
}

/// A file.
async fn blob(
    visit: &Visit,
    o: Opened,
    rev: String,
    path: String,
) -> Result<Response<ResponseBody>, HttpError> {
    if path.is_empty() {
        return Ok(respond::redirect(&format!(
            "{}/-/tree/{}",
            o.base,
            encode_path(&rev)
        )));
    }
    let at = files::open_at(&visit.app, o.repo.clone(), o.snapshot.clone(), rev.clone()).await?;
    let name = path.rsplit('/').next().unwrap_or(&path).to_owned();
    let folder = path.rsplit_once('/').map_or("", |(f, _)| f).to_owned();
    let raw = format!(
        "{}/-/raw/{}/{}",
        o.base,
        encode_path(&rev),
        encode_path(&path)
    );
    let read = {
        let (at, path, name, raw) = (at.clone(), path.clone(), name.clone(), raw.clone());
        let links = link_base(&o.base, &rev, &folder);
        blocking(move || read_file(&at, &path, &name, &raw, &links)).await?
    };
    let (size, view) = match read {
        FileRead::Folder => {
            return Ok(respond::redirect(&format!(
                "{}/-/tree/{}/{}",
                o.base,
                encode_path(&rev),
                encode_path(&path)
            )))
        }
        FileRead::File(size, view) => (size, view),
    };
    let mut crumbs = path_links(&o, &rev, &folder);
    if folder.is_empty() {
        crumbs.truncate(1);
    }
    let page = webview::pages::Blob {
        chrome: chrome(
            visit,
            &o,
            Tab::Code,
            &rev,
            format!("{path} at {rev} · {}", o.repo.id),
        ),
        menu: rev_menu(&o, &rev, "blob", &path),
        path: crumbs,
        size: format::size(size),
        view,
        raw,
        download: format!(
            "{}/resolve/{}/{}",
            o.base,
            encode_path(&rev),
            encode_path(&path)
        ),
        history: format!(
            "{}/-/commits/{}/{}",
            o.base,
            encode_path(&rev),
            encode_path(&path)
        ),
        name,
    };
    Ok(html(webview::pages::render(&page)))
}

fn read_file(
    at: &AtRevision,
    path: &str,
    name: &str,
    raw: &str,
    links: &webview::markdown::LinkBase,
) -> Result<FileRead, HttpError> {
    let reader = at.db.reader();
    let Some((mode, id)) =
        history::entry_at(&reader, &at.tree, path).map_err(files::history_error)?
    else {
        return Err(HttpError::EntryNotFound(format!("no file {path:?}")));
    };
    if mode & 0o170000 == 0o040000 || mode == 0o160000 {
        return Ok(FileRead::Folder);
    }
    let size = reader.header(&id)?.map_or(0, |(_, size)| size);
    if size > SHOWN_BYTES {
        let view = match image_type(name) {
            Some(_) => BlobView::Image(raw.to_owned()),
            None => BlobView::TooLarge,
        };
        return Ok(FileRead::File(size, view));
    }
    let mut data = Vec::new();
    reader.read(&id, &mut data)?;
    if let Some(pointer) = lfs::Pointer::parse(&data) {
        let view = match image_type(name) {
            Some(_) => BlobView::Image(raw.to_owned()),
            None => BlobView::Lfs,
        };
        return Ok(FileRead::File(pointer.size, view));
    }
    let view = if image_type(name).is_some() {
        BlobView::Image(raw.to_owned())
    } else if history::is_binary(&data) {
        BlobView::Binary
    } else {
        let text = String::from_utf8_lossy(&data);
        if is_markdown(name) {
            BlobView::Markdown(webview::markdown::render(&text, links))
        } else {
            BlobView::Code {
                lines: text.lines().count().max(1),
                html: webview::highlight::highlight(path, &text),
            }
        }
    };
    Ok(FileRead::File(size, view))
}

/// A file's bytes for the page's images and its Raw button: the file route's answer (ranges,
/// validators, LFS content) with the content type of an image, or plain text, and the
/// sandboxing policy, so nothing pushed runs as a page of this origin.
async fn raw(
    visit: &Visit,
    o: Opened,
    rev: String,
    path: String,
    req: &Request<Incoming>,
) -> Result<Response<ResponseBody>, HttpError> {
    let at = files::open_at(&visit.app, o.repo, o.snapshot, rev).await?;
    let head = req.method() == http::Method::HEAD;
    let ask = files::FileRequest::from_headers(req.headers(), head);
    let mut resp = files::serve_file(&visit.app, &at, &path, &ask, files::FileView::Plain).await?;
    let h = resp.headers_mut();
    let name = path.rsplit('/').next().unwrap_or(&path);
    let content_type = image_type(name).unwrap_or("text/plain; charset=utf-8");
    h.insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
    respond::protect(h, webview::RAW_CONTENT_SECURITY_POLICY);
    Ok(resp)
}

/// History of a revision, or of a path at it, a page at a time.
async fn commits(
    visit: &Visit,
    o: Opened,
    rev: String,
    path: String,
    query: &str,
) -> Result<Response<ResponseBody>, HttpError> {
    let skip = query_value(query, "skip")
        .and_then(|v| v.parse::<usize>().ok())
        .unwrap_or(0)
        .min(MAX_VISITED);
    let at = files::open_at(&visit.app, o.repo.clone(), o.snapshot.clone(), rev.clone()).await?;
    let (rows, more) = {
        let (at, path, base) = (at.clone(), path.clone(), o.base.clone());
        blocking(move || {
            let reader = at.db.reader();
            let limits = history::LogLimits {
                max_commits: COMMITS_PAGE,
                max_visited: MAX_VISITED,
            };
            let filter = (!path.is_empty()).then_some(path.as_str());
            let page = history::log_page(&reader, &at.commit, filter, skip, limits)
                .map_err(files::history_error)?;
            let mut rows = Vec::with_capacity(page.commits.len());
            for id in &page.commits {
                let info = history::commit_info(&reader, id).map_err(files::history_error)?;
                rows.push(commit_row(&base, &info));
            }
            Ok((rows, page.truncated))
        })
        .await?
    };
    // The next page walks from the same commit, whatever the branch does meanwhile.
    let next = more.then(|| {
        let mut href = format!("{}/-/commits/{}", o.base, at.commit);
        if !path.is_empty() {
            href = format!("{href}/{}", encode_path(&path));
        }
        format!("{href}?skip={}", skip + rows.len())
    });
    let title = match path.is_empty() {
        true => format!("History of {rev} · {}", o.repo.id),
        false => format!("History of {path} · {}", o.repo.id),
    };
    let page = webview::pages::Commits {
        chrome: chrome(visit, &o, Tab::Commits, &rev, title),
        menu: rev_menu(&o, &rev, "commits", &path),
        path,
        commits: rows,
        next,
    };
    Ok(html(webview::pages::render(&page)))
}

/// The diff between two trees, as the history API makes it, cut into files for display.
pub(super) fn diff_files(
    at: &AtRevision,
    old_tree: Option<ObjectId>,
    new_tree: ObjectId,
    base: &str,
    new_rev: &str,
    old_rev: &str,
) -> Result<(Vec<DiffFile>, bool), HttpError> {
    let reader = at.db.reader();
    let (changes, mut truncated) = history::diff_at_path(
        &reader,
        old_tree.as_ref(),
        Some(&new_tree),
        "",
        DIFF_FILES * 2,
    )
    .map_err(files::history_error)?;
    let mut changes = history::detect_renames(changes);
    if changes.len() > DIFF_FILES {
        changes.truncate(DIFF_FILES);
        truncated = true;
    }
    let limits = history::PatchLimits {
        max_bytes: DIFF_BYTES,
        ..history::PatchLimits::default()
    };
    let patch = history::patch(&reader, changes, limits).map_err(files::history_error)?;
    let mut parts = webview::diff::split_files(&patch.text).into_iter();
    let files = patch
        .files
        .iter()
        .map(|f| {
            let lines = match f.omitted {
                true => Vec::new(),
                false => parts.next().unwrap_or_default(),
            };
            let deleted = f.change.kind == history::FileChangeKind::Deleted;
            let (rev, path) = match deleted {
                true => (old_rev, f.change.old_path()),
                false => (new_rev, f.change.path.as_str()),
            };
            DiffFile {
                path: f.change.path.clone(),
                old_path: f.change.old_path.clone(),
                status: f.change.kind.as_str().to_owned(),
                additions: f.additions as u64,
                deletions: f.deletions as u64,
                binary: f.binary,
                omitted: f.omitted,
                lines,
                href: format!("{base}/-/blob/{}/{}", encode_path(rev), encode_path(path)),
            }
        })
        .collect();
    Ok((files, truncated || patch.truncated))
}

/// The diff from the revision `from` to the revision `to` (both resolved within what the
/// refs reach), cut into files for display.
pub(super) async fn diff_between(
    visit: &Visit,
    o: &Opened,
    from: &str,
    to: &str,
) -> Result<(Vec<DiffFile>, bool), HttpError> {
    let at = files::open_at(
        &visit.app,
        o.repo.clone(),
        o.snapshot.clone(),
        to.to_owned(),
    )
    .await?;
    let visible = visit
        .app
        .visible
        .get(&at.repo, &at.snapshot, &at.db)
        .await
        .map_err(|e| HttpError::Storage(e.to_string()))?;
    let (base, from) = (o.base.clone(), from.to_owned());
    blocking(move || {
        let reader = at.db.reader();
        let old = history::resolve_commit(&reader, &at.snapshot, &visible, &from)
            .map_err(files::history_error)?;
        let old_tree = reader.commit(&old)?.tree;
        let (old_rev, new_rev) = (old.to_string(), at.commit.to_string());
        diff_files(&at, Some(old_tree), at.tree, &base, &new_rev, &old_rev)
    })
    .await
}

/// A commit and its diff against its first parent.
async fn commit(visit: &Visit, o: Opened, id: String) -> Result<Response<ResponseBody>, HttpError> {
    let id = files::decode_segment(&id)?;
    let at = files::open_at(&visit.app, o.repo.clone(), o.snapshot.clone(), id).await?;
    let base = o.base.clone();
    let (meta, files, truncated) = {
        let at = at.clone();
        blocking(move || {
            let reader = at.db.reader();
            let info = history::commit_info(&reader, &at.commit).map_err(files::history_error)?;
            let parent = match info.parents.first() {
                Some(p) => Some((*p, reader.commit(p)?.tree)),
                None => None,
            };
            let id = at.commit.to_string();
            let old_rev = parent.map(|(p, _)| p.to_string()).unwrap_or_default();
            let (files, truncated) =
                diff_files(&at, parent.map(|(_, t)| t), info.tree, &base, &id, &old_rev)?;
            let body = info
                .message
                .split_once('\n')
                .map_or("", |(_, rest)| rest)
                .trim()
                .to_owned();
            let meta = CommitMeta {
                summary: format::summary(&info.message),
                body,
                author: format!("{} <{}>", info.author.name, info.author.email),
                date: format::date(&info.author.rfc3339()),
                parents: info
                    .parents
                    .iter()
                    .map(|p| {
                        Link::new(
                            format!("{base}/-/commit/{p}"),
                            format::short_id(&p.to_string()),
                        )
                    })
                    .collect(),
                browse: format!("{base}/-/tree/{id}"),
                id,
            };
            Ok((meta, files, truncated))
        })
        .await?
    };
    let title = format!("{} · {}", meta.summary, o.repo.id);
    let rev = meta.id.clone();
    let page = webview::pages::Commit {
        chrome: chrome(visit, &o, Tab::Commits, &rev, title),
        commit: Some(meta),
        heading: None,
        compare: None,
        to: String::new(),
        files,
        truncated,
    };
    Ok(html(webview::pages::render(&page)))
}

/// `-/compare?from=&to=`: what changed from one revision to another (`to` defaults to the
/// default branch).
async fn compare(
    visit: &Visit,
    o: Opened,
    query: &str,
) -> Result<Response<ResponseBody>, HttpError> {
    let default = o.default_branch().unwrap_or_else(|| "HEAD".to_owned());
    let to = query_value(query, "to")
        .filter(|t| !t.is_empty())
        .unwrap_or(default);
    let from = query_value(query, "from").filter(|f| !f.is_empty());
    let action = format!("{}/-/compare", o.base);
    let (files, truncated, heading) = match &from {
        None => (Vec::new(), false, "Compare revisions".to_owned()),
        Some(from) => {
            let (files, truncated) = diff_between(visit, &o, from, &to).await?;
            (files, truncated, format!("Changes from {from} to {to}"))
        }
    };
    let page = webview::pages::Commit {
        chrome: chrome(
            visit,
            &o,
            Tab::Refs,
            &to,
            format!("{heading} · {}", o.repo.id),
        ),
        commit: None,
        heading: Some(heading),
        compare: Some(Link::new(action, from.unwrap_or_default())),
        to,
        files,
        truncated,
    };
    Ok(html(webview::pages::render(&page)))
}

/// Branches and tags.
fn refs_page(visit: &Visit, o: Opened) -> Result<Response<ResponseBody>, HttpError> {
    let default = o.snapshot.head.clone();
    let rows = |prefix: &str, page: &str| -> Vec<RefRow> {
        o.snapshot
            .refs
            .iter()
            .filter_map(|(name, value)| Some((name, name.strip_prefix(prefix)?, value)))
            .map(|(full, short, value)| RefRow {
                href: format!("{}/-/{page}/{}", o.base, encode_path(short)),
                commits: format!("{}/-/commits/{}", o.base, encode_path(short)),
                short: format::short_id(&value.target.to_string()),
                default: default.as_deref() == Some(full.as_str()),
                name: short.to_owned(),
            })
            .collect()
    };
    let branch = o.default_branch().unwrap_or_else(|| "HEAD".to_owned());
    let page = webview::pages::Refs {
        branches: rows("refs/heads/", "tree"),
        tags: rows("refs/tags/", "tree"),
        compare: format!("{}/-/compare", o.base),
        chrome: chrome(
            visit,
            &o,
            Tab::Refs,
            &branch,
            format!("Branches · {}", o.repo.id),
        ),
    };
    Ok(html(webview::pages::render(&page)))
}

/// The JSON answer of an API method called as the visitor.
pub(super) async fn api(visit: &Visit, method: &str, params: Value) -> Result<Value, HttpError> {
    let mut held = None;
    crate::rpc::call(
        &visit.app,
        visit.identity.as_ref(),
        &visit.base_url,
        method,
        params,
        &mut held,
    )
    .await
    .map_err(HttpError::from)
}

/// `{artifact_id}` of a repository.
pub(super) fn artifact(repo: &Repo) -> Value {
    json!({"artifact_id": repo.id.to_string()})
}
