//! Trees at a revision: what is at a path, and the listing `git ls-tree` gives.

use gix_hash::ObjectId;
use gix_object::bstr::ByteSlice;
use gix_object::tree::EntryMode;
use gix_object::TreeRefIter;
use objectstore::odb::Reader;

use crate::{Error, Result};

/// What a tree entry names.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EntryKind {
    /// A file or symbolic link.
    Blob,
    /// A directory.
    Tree,
    /// A submodule's commit (in another repository).
    Commit,
}

impl EntryKind {
    /// `blob`, `tree` or `commit`, as `git ls-tree` prints it.
    pub fn as_str(self) -> &'static str {
        match self {
            EntryKind::Blob => "blob",
            EntryKind::Tree => "tree",
            EntryKind::Commit => "commit",
        }
    }

    fn of(mode: EntryMode) -> EntryKind {
        if mode.is_tree() {
            EntryKind::Tree
        } else if mode.is_commit() {
            EntryKind::Commit
        } else {
            EntryKind::Blob
        }
    }
}

/// One entry of a listing.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entry {
    /// The path from the repository's root (invalid UTF-8 replaced).
    pub path: String,
    /// The mode as git writes it (`100644`, `100755`, `120000`, `040000`, `160000`).
    pub mode: u32,
    /// What it names.
    pub kind: EntryKind,
    /// The object.
    pub id: ObjectId,
    /// The blob's size (none for trees and submodules).
    pub size: Option<u64>,
}

impl Entry {
    /// The mode as `git ls-tree` prints it: six octal digits.
    pub fn mode_string(&self) -> String {
        format!("{:06o}", self.mode)
    }
}

/// A path as the API takes it: `/`-separated, relative to the root, no empty, `.` or `..`
/// components; a leading or trailing `/` is ignored. The empty path is the root.
pub fn normalize_path(path: &str) -> Result<String> {
    let trimmed = path.trim_matches('/');
    if trimmed.len() > 4096 {
        return Err(Error::InvalidPath(format!("{} bytes", path.len())));
    }
    if trimmed.is_empty() {
        return Ok(String::new());
    }
    if trimmed
        .split('/')
        .any(|c| c.is_empty() || c == "." || c == ".." || c.contains('\0'))
    {
        return Err(Error::InvalidPath(path.to_owned()));
    }
    Ok(trimmed.to_owned())
}

/// The mode and object at `path` in `tree` (the empty path is the tree itself).
pub fn entry_at(
    reader: &Reader<'_>,
    tree: &ObjectId,
    path: &str,
) -> Result<Option<(u32, ObjectId)>> {
    if path.is_empty() {
        return Ok(Some((0o040000, *tree)));
    }
    let mut current = *tree;
    let mut buf = Vec::new();
    let mut parts = path.split('/').peekable();
    while let Some(name) = parts.next() {
        reader.read_kind(&current, gix_object::Kind::Tree, &mut buf)?;
        let mut found = None;
        for entry in TreeRefIter::from_bytes(&buf, current.kind()) {
            let entry = entry.map_err(|e| Error::Corrupt {
                id: current,
                message: e.to_string(),
            })?;
            if entry.filename.as_bytes() == name.as_bytes() {
                found = Some((entry.mode, entry.oid.to_owned()));
                break;
            }
        }
        let Some((mode, id)) = found else {
            return Ok(None);
        };
        if parts.peek().is_none() {
            return Ok(Some((mode_bits(mode), id)));
        }
        if !mode.is_tree() {
            return Ok(None);
        }
        current = id;
    }
    Ok(None)
}

/// [`entry_at`] for one path asked of many trees (every commit of a history): what a subtree
/// holds at the rest of the path is remembered by the subtree's id, so the subtrees most
/// commits share (everything but the folders a commit touched) are read once.
pub(crate) struct PathLookup<'p> {
    parts: Vec<&'p str>,
    memo: std::collections::HashMap<(ObjectId, usize), Option<(u32, ObjectId)>>,
    buf: Vec<u8>,
}

/// Subtree answers remembered at most (then forgotten all at once).
const MAX_MEMO: usize = 1 << 16;

impl<'p> PathLookup<'p> {
    /// Lookups of `path` (not empty).
    pub(crate) fn new(path: &'p str) -> Self {
        PathLookup {
            parts: path.split('/').collect(),
            memo: std::collections::HashMap::new(),
            buf: Vec::new(),
        }
    }

    /// What is at the path in `tree`.
    pub(crate) fn at(
        &mut self,
        reader: &Reader<'_>,
        tree: &ObjectId,
    ) -> Result<Option<(u32, ObjectId)>> {
        self.lookup_level(reader, *tree, 0)
    }

    fn lookup_level(
        &mut self,
        reader: &Reader<'_>,
        tree: ObjectId,
        level: usize,
    ) -> Result<Option<(u32, ObjectId)>> {
        if level > 0 {
            if let Some(found) = self.memo.get(&(tree, level)) {
                return Ok(*found);
            }
        }
        reader.read_kind(&tree, gix_object::Kind::Tree, &mut self.buf)?;
        let name = self.parts[level];
        let mut found = None;
        for entry in TreeRefIter::from_bytes(&self.buf, tree.kind()) {
            let entry = entry.map_err(|e| Error::Corrupt {
                id: tree,
                message: e.to_string(),
            })?;
            if entry.filename.as_bytes() == name.as_bytes() {
                found = Some((entry.mode, entry.oid.to_owned()));
                break;
            }
        }
        let answer = match found {
            None => None,
            Some((mode, id)) if level + 1 == self.parts.len() => Some((mode_bits(mode), id)),
            Some((mode, _)) if !mode.is_tree() => None,
            Some((_, id)) => self.lookup_level(reader, id, level + 1)?,
        };
        if level > 0 {
            if self.memo.len() >= MAX_MEMO {
                self.memo.clear();
            }
            self.memo.insert((tree, level), answer);
        }
        Ok(answer)
    }
}

fn mode_bits(mode: EntryMode) -> u32 {
    u32::from(mode.value())
}

/// How deep a listing goes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Depth {
    /// The folder's own entries (`git ls-tree`).
    One,
    /// Every file below it; folders are walked, not listed (`git ls-tree -r`).
    Files,
    /// Every file and folder below it, each folder before what it holds (`git ls-tree -r -t`).
    All,
}

/// The entries under `path` in `tree`, in git's order, as `git ls-tree [-r [-t]] -l <tree>
/// <path>/` lists them (see [`Depth`]). At most `max` entries; the flag says whether there
/// were more. A `path` naming a file lists that file.
pub fn list(
    reader: &Reader<'_>,
    tree: &ObjectId,
    path: &str,
    depth: Depth,
    max: usize,
) -> Result<(Vec<Entry>, bool)> {
    let Some((mode, id)) = entry_at(reader, tree, path)? else {
        return Err(Error::NoSuchPath(path.to_owned()));
    };
    let mut out = Vec::new();
    if mode != 0o040000 {
        let size = sized(reader, EntryKind::of(mode_of(mode)), &id)?;
        out.push(Entry {
            path: path.to_owned(),
            mode,
            kind: EntryKind::of(mode_of(mode)),
            id,
            size,
        });
        return Ok((out, false));
    }
    let truncated = walk(reader, &id, path, depth, max, &mut out)?;
    Ok((out, truncated))
}

fn mode_of(bits: u32) -> EntryMode {
    EntryMode::try_from(bits).unwrap_or(gix_object::tree::EntryKind::Blob.into())
}

fn sized(reader: &Reader<'_>, kind: EntryKind, id: &ObjectId) -> Result<Option<u64>> {
    Ok(match kind {
        EntryKind::Blob => reader.header(id)?.map(|(_, size)| size),
        _ => None,
    })
}

/// The entries of `tree` in git's order: mode, name (invalid UTF-8 replaced), object.
pub(crate) fn entries_of(
    reader: &Reader<'_>,
    tree: &ObjectId,
    buf: &mut Vec<u8>,
) -> Result<Vec<(EntryMode, String, ObjectId)>> {
    reader.read_kind(tree, gix_object::Kind::Tree, buf)?;
    let mut entries = Vec::new();
    for entry in TreeRefIter::from_bytes(buf, tree.kind()) {
        let entry = entry.map_err(|e| Error::Corrupt {
            id: *tree,
            message: e.to_string(),
        })?;
        entries.push((
            entry.mode,
            entry.filename.to_str_lossy().into_owned(),
            entry.oid.to_owned(),
        ));
    }
    Ok(entries)
}

fn walk(
    reader: &Reader<'_>,
    tree: &ObjectId,
    prefix: &str,
    depth: Depth,
    max: usize,
    out: &mut Vec<Entry>,
) -> Result<bool> {
    let mut buf = Vec::new();
    for (mode, name, id) in entries_of(reader, tree, &mut buf)? {
        let path = if prefix.is_empty() {
            name
        } else {
            format!("{prefix}/{name}")
        };
        let kind = EntryKind::of(mode);
        let descend = depth != Depth::One && kind == EntryKind::Tree;
        if !descend || depth == Depth::All {
            if out.len() == max {
                return Ok(true);
            }
            out.push(Entry {
                size: sized(reader, kind, &id)?,
                path: path.clone(),
                mode: mode_bits(mode),
                kind,
                id,
            });
        }
        if descend && walk(reader, &id, &path, depth, max, out)? {
            return Ok(true);
        }
    }
    Ok(false)
}
