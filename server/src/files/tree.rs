//! `GET …/tree/{rev}/{path}`: a folder at a revision, as JSON, a page at a time.
//!
//! Entries come in git's order (`git ls-tree`), each with its type, mode, blob id and size;
//! a Git LFS pointer also with the object's id and size. `recursive=1` lists everything below
//! (folders before what they hold, as `git ls-tree -r -t`); `expand=1` adds the last commit
//! that changed each entry (what `git log -1 -- <path>` prints), found in one walk per
//! folder. Pages hold `limit` entries; `next` is the cursor of the following page (also in a
//! `Link` header).

use std::collections::BTreeMap;

use gix_hash::ObjectId;
use serde_json::{json, Value};

use super::AtRevision;
use crate::app::App;
use crate::response::HttpError;

/// Entries per page unless asked otherwise, and at most.
const DEFAULT_LIMIT: usize = 1000;
const MAX_LIMIT: usize = 10_000;
/// With `expand`, at most this many entries per page (each needs its last commit).
const MAX_EXPANDED: usize = 1000;
/// Commits walked at most to find the last changes of one folder's entries.
const MAX_EXPAND_WALK: usize = 200_000;
/// The deepest page a cursor may ask for (each page lists the entries before it again).
const MAX_OFFSET: usize = 10_000_000;

/// What a listing asks for.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct FolderQuery {
    /// Everything below, not just the folder's own entries.
    pub recursive: bool,
    /// The last commit of each entry.
    pub expand: bool,
    /// Entries per page.
    pub limit: usize,
    /// Entries to skip (from a cursor).
    pub offset: usize,
}

impl FolderQuery {
    /// Parse `recursive`, `expand`, `limit` and `cursor` from a query string.
    pub fn parse(query: &str) -> Result<Self, HttpError> {
        let mut q = FolderQuery {
            limit: DEFAULT_LIMIT,
            ..FolderQuery::default()
        };
        let flag = |v: &str| matches!(v, "1" | "true" | "True" | "yes");
        for (key, value) in form_urlencoded::parse(query.as_bytes()) {
            match &*key {
                "recursive" => q.recursive = flag(&value),
                "expand" => q.expand = flag(&value),
                "limit" => {
                    q.limit = value
                        .parse::<usize>()
                        .ok()
                        .filter(|n| (1..=MAX_LIMIT).contains(n))
                        .ok_or_else(|| {
                            HttpError::BadRequest(format!("limit must be 1 to {MAX_LIMIT}"))
                        })?
                }
                "cursor" => {
                    q.offset = value
                        .parse::<usize>()
                        .ok()
                        .filter(|n| *n <= MAX_OFFSET)
                        .ok_or_else(|| HttpError::BadRequest("invalid cursor".into()))?
                }
                _ => {}
            }
        }
        if q.expand {
            q.limit = q.limit.min(MAX_EXPANDED);
        }
        Ok(q)
    }
}

/// One page of the listing of `path` at `at`.
pub async fn folder_json(
    _app: &App,
    at: &AtRevision,
    path: &str,
    q: &FolderQuery,
) -> Result<Value, HttpError> {
    let (at, path, q) = (at.clone(), path.to_owned(), q.clone());
    tokio::task::spawn_blocking(move || list_page(&at, &path, &q))
        .await
        .map_err(|e| HttpError::Internal(format!("task failed: {e}")))?
}

/// A listed entry and what the page says of it.
pub struct Listed {
    /// The entry.
    pub entry: history::Entry,
    /// The LFS object it points to, if it is a pointer.
    pub lfs: Option<lfs::Pointer>,
    /// The last commit that changed it.
    pub last_commit: Option<LastCommit>,
}

/// The last commit that changed an entry.
#[derive(Debug, Clone)]
pub struct LastCommit {
    /// Its id.
    pub id: ObjectId,
    /// The first line of its message.
    pub title: String,
    /// Its committer time (seconds since 1970).
    pub time: i64,
    /// That time as RFC 3339 in the committer's zone.
    pub date: String,
}

/// One page of entries, with LFS pointers read and (if asked) last commits found; the flag
/// says whether there are more.
pub fn list_entries(
    at: &AtRevision,
    path: &str,
    q: &FolderQuery,
) -> Result<(Vec<Listed>, bool), HttpError> {
    let reader = at.db.reader();
    let depth = match q.recursive {
        true => history::Depth::All,
        false => history::Depth::One,
    };
    let (mut entries, more) = history::list(&reader, &at.tree, path, depth, q.offset + q.limit)
        .map_err(super::history_error)?;
    let page: Vec<history::Entry> = entries.drain(q.offset.min(entries.len())..).collect();
    let mut listed = Vec::with_capacity(page.len());
    let mut buf = Vec::new();
    for entry in page {
        let lfs = pointer_of(&reader, &entry, &mut buf)?;
        listed.push(Listed {
            entry,
            lfs,
            last_commit: None,
        });
    }
    if q.expand {
        expand(at, &reader, &mut listed)?;
    }
    Ok((listed, more))
}

/// Every file (no folders) under `path`, at most `max`; with `lfs`, small blobs are read to
/// find the Git LFS pointers among them.
pub fn list_files(
    at: &AtRevision,
    path: &str,
    max: usize,
    lfs: bool,
) -> Result<Vec<Listed>, HttpError> {
    let reader = at.db.reader();
    let (entries, _) = history::list(&reader, &at.tree, path, history::Depth::Files, max)
        .map_err(super::history_error)?;
    let mut buf = Vec::new();
    let mut listed = Vec::with_capacity(entries.len());
    for entry in entries {
        let lfs = match lfs {
            true => pointer_of(&reader, &entry, &mut buf)?,
            false => None,
        };
        listed.push(Listed {
            entry,
            lfs,
            last_commit: None,
        });
    }
    Ok(listed)
}

/// The LFS pointer a (small) blob entry is, if it is one.
pub fn pointer_of(
    reader: &objectstore::odb::Reader<'_>,
    entry: &history::Entry,
    buf: &mut Vec<u8>,
) -> Result<Option<lfs::Pointer>, HttpError> {
    Ok(match (entry.kind, entry.size) {
        (history::EntryKind::Blob, Some(size)) if size <= 1024 && entry.mode != 0o120000 => {
            reader.read(&entry.id, buf)?;
            lfs::Pointer::parse(buf)
        }
        _ => None,
    })
}

fn list_page(at: &AtRevision, path: &str, q: &FolderQuery) -> Result<Value, HttpError> {
    let (listed, more) = list_entries(at, path, q)?;
    let entries: Vec<Value> = listed.iter().map(entry_json).collect();
    let count = entries.len();
    Ok(json!({
        "rev": at.rev,
        "commit": at.commit.to_string(),
        "path": path,
        "entries": entries,
        "next": more.then(|| (q.offset + count).to_string()),
    }))
}

/// The type of an entry as these routes name it.
pub fn entry_type(e: &history::Entry) -> &'static str {
    match (e.kind, e.mode) {
        (history::EntryKind::Tree, _) => "directory",
        (history::EntryKind::Commit, _) => "submodule",
        (_, 0o120000) => "symlink",
        _ => "file",
    }
}

fn entry_json(l: &Listed) -> Value {
    let e = &l.entry;
    let mut out = json!({
        "type": entry_type(e),
        "path": e.path,
        "mode": e.mode_string(),
        "oid": e.id.to_string(),
    });
    if let Some(size) = e.size {
        out["size"] = json!(l.lfs.as_ref().map_or(size, |p| p.size));
    }
    if let Some(p) = &l.lfs {
        out["lfs"] = json!({"oid": p.oid.as_str(), "size": p.size, "pointer_size": e.size});
    }
    if let Some(c) = &l.last_commit {
        out["last_commit"] = json!({"id": c.id.to_string(), "title": c.title, "date": c.date});
    }
    out
}

/// Find the last commit of every listed entry: one walk per folder they are in.
pub fn expand(
    at: &AtRevision,
    reader: &objectstore::odb::Reader<'_>,
    listed: &mut [Listed],
) -> Result<(), HttpError> {
    let mut by_folder: BTreeMap<String, Vec<usize>> = BTreeMap::new();
    for (i, l) in listed.iter().enumerate() {
        let folder = l.entry.path.rsplit_once('/').map_or("", |(f, _)| f);
        by_folder.entry(folder.to_owned()).or_default().push(i);
    }
    let mut commits: BTreeMap<ObjectId, LastCommit> = BTreeMap::new();
    for (folder, members) in by_folder {
        let names: Vec<&str> = members
            .iter()
            .map(|i| {
                let p = listed[*i].entry.path.as_str();
                p.rsplit_once('/').map_or(p, |(_, n)| n)
            })
            .collect();
        let found = history::last_changes(reader, &at.commit, &folder, &names, MAX_EXPAND_WALK)
            .map_err(super::history_error)?;
        for (i, commit) in members.iter().zip(found) {
            let Some(commit) = commit else { continue };
            if let std::collections::btree_map::Entry::Vacant(slot) = commits.entry(commit) {
                let info = history::commit_info(reader, &commit).map_err(super::history_error)?;
                let title = info.message.lines().next().unwrap_or("").to_owned();
                slot.insert(LastCommit {
                    id: commit,
                    title,
                    time: info.committer.time,
                    date: info.committer.rfc3339(),
                });
            }
            listed[*i].last_commit = commits.get(&commit).cloned();
        }
    }
    Ok(())
}
