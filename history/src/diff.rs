//! Which files differ between two trees, with gix-diff's tree walk (identical subtrees are
//! skipped by id, so the cost follows the change, not the tree).

use gix_diff::tree::{recorder, visit, Recorder, State, Visit};
use gix_hash::ObjectId;
use gix_object::bstr::{BStr, ByteSlice};
use gix_object::TreeRefIter;
use objectstore::odb::Reader;

use crate::{Error, Result};

/// How a file changed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum FileChangeKind {
    /// It is new.
    Added,
    /// It is gone.
    Deleted,
    /// Its content or mode changed.
    Modified,
    /// It moved (see [`FileChange::old_path`]), its content the same or changed.
    Renamed,
}

impl FileChangeKind {
    /// `added`, `deleted`, `modified` or `renamed`.
    pub fn as_str(self) -> &'static str {
        match self {
            FileChangeKind::Added => "added",
            FileChangeKind::Deleted => "deleted",
            FileChangeKind::Modified => "modified",
            FileChangeKind::Renamed => "renamed",
        }
    }
}

/// One changed file (trees themselves are never listed, only what is in them).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FileChange {
    /// The path from the root, `/`-separated (invalid UTF-8 replaced); for a rename, the new
    /// path.
    pub path: String,
    /// How it changed.
    pub kind: FileChangeKind,
    /// The blob before (none when added).
    pub old: Option<ObjectId>,
    /// The blob after (none when deleted).
    pub new: Option<ObjectId>,
    /// The mode before (0 when added).
    pub old_mode: u32,
    /// The mode after (0 when deleted).
    pub new_mode: u32,
    /// Where a renamed file was.
    pub old_path: Option<String>,
}

impl FileChange {
    /// The path before the change (the same as `path` unless renamed).
    pub fn old_path(&self) -> &str {
        self.old_path.as_deref().unwrap_or(&self.path)
    }
}

/// Pair deletions and additions of the same content (and mode) as renames, as git's rename
/// detection does first (exact renames); the renamed entry takes the added path's place.
/// Empty files are left alone: they have no identity to follow.
pub fn detect_renames(changes: Vec<FileChange>) -> Vec<FileChange> {
    let mut deleted: std::collections::HashMap<ObjectId, Vec<usize>> = Default::default();
    for (i, c) in changes.iter().enumerate() {
        if let (FileChangeKind::Deleted, Some(old)) = (c.kind, c.old) {
            if old != ObjectId::empty_blob(old.kind()) {
                deleted.entry(old).or_default().push(i);
            }
        }
    }
    let mut taken = vec![false; changes.len()];
    let mut renamed_from: Vec<Option<usize>> = vec![None; changes.len()];
    for (i, c) in changes.iter().enumerate() {
        if let (FileChangeKind::Added, Some(new)) = (c.kind, c.new) {
            if let Some(candidates) = deleted.get_mut(&new) {
                if let Some(pos) = candidates
                    .iter()
                    .position(|&d| changes[d].old_mode == c.new_mode)
                {
                    let d = candidates.remove(pos);
                    taken[d] = true;
                    renamed_from[i] = Some(d);
                }
            }
        }
    }
    let olds: Vec<(String, u32)> = changes
        .iter()
        .map(|c| (c.path.clone(), c.old_mode))
        .collect();
    changes
        .into_iter()
        .enumerate()
        .filter(|(i, _)| !taken[*i])
        .map(|(i, mut c)| {
            if let Some(d) = renamed_from[i] {
                c.kind = FileChangeKind::Renamed;
                c.old = c.new;
                c.old_path = Some(olds[d].0.clone());
                c.old_mode = olds[d].1;
            }
            c
        })
        .collect()
}

/// A recorder that stops after `max` changes.
struct Capped {
    inner: Recorder,
    max: usize,
    files: usize,
}

impl Visit for Capped {
    fn pop_front_tracked_path_and_set_current(&mut self) {
        self.inner.pop_front_tracked_path_and_set_current()
    }
    fn push_back_tracked_path_component(&mut self, component: &BStr) {
        self.inner.push_back_tracked_path_component(component)
    }
    fn push_path_component(&mut self, component: &BStr) {
        self.inner.push_path_component(component)
    }
    fn pop_path_component(&mut self) {
        self.inner.pop_path_component()
    }
    fn visit(&mut self, change: visit::Change) -> visit::Action {
        let is_file = match &change {
            visit::Change::Addition { entry_mode, .. }
            | visit::Change::Deletion { entry_mode, .. } => !entry_mode.is_tree(),
            visit::Change::Modification { entry_mode, .. } => !entry_mode.is_tree(),
        };
        if is_file {
            if self.files == self.max {
                return std::ops::ControlFlow::Break(());
            }
            self.files += 1;
        }
        self.inner.visit(change)
    }
}

/// The files that differ from `old` (none: the empty tree) to `new`, in tree order, at most
/// `max`; the flag says whether there were more.
pub fn diff_trees(
    reader: &Reader<'_>,
    old: Option<&ObjectId>,
    new: &ObjectId,
    max: usize,
) -> Result<(Vec<FileChange>, bool)> {
    diff_tree_pair(reader, old, Some(new), max)
}

/// The files that differ below `path` between two trees (none: empty), with paths from the
/// root. Only the entries at `path` are compared, so the cost follows what lies below `path`,
/// not the whole tree; a file that became a directory (or back) is listed as gone and came.
pub fn diff_at_path(
    reader: &Reader<'_>,
    old_tree: Option<&ObjectId>,
    new_tree: Option<&ObjectId>,
    path: &str,
    max: usize,
) -> Result<(Vec<FileChange>, bool)> {
    if path.is_empty() {
        return diff_tree_pair(reader, old_tree, new_tree, max);
    }
    let at = |tree: Option<&ObjectId>| -> Result<Option<(u32, ObjectId)>> {
        match tree {
            Some(t) => crate::tree::entry_at(reader, t, path),
            None => Ok(None),
        }
    };
    let (old, new) = (at(old_tree)?, at(new_tree)?);
    let tree = |e: Option<(u32, ObjectId)>| e.filter(|(m, _)| *m == TREE_MODE).map(|(_, id)| id);
    let file = |e: Option<(u32, ObjectId)>| e.filter(|(m, _)| *m != TREE_MODE);
    let (mut changes, truncated) =
        diff_tree_pair(reader, tree(old).as_ref(), tree(new).as_ref(), max)?;
    for change in &mut changes {
        change.path = format!("{path}/{}", change.path);
    }
    let (old_file, new_file) = (file(old), file(new));
    if old_file != new_file {
        let kind = match (old_file, new_file) {
            (None, Some(_)) => FileChangeKind::Added,
            (Some(_), None) => FileChangeKind::Deleted,
            _ => FileChangeKind::Modified,
        };
        changes.insert(
            0,
            FileChange {
                path: path.to_owned(),
                kind,
                old: old_file.map(|(_, id)| id),
                new: new_file.map(|(_, id)| id),
                old_mode: old_file.map_or(0, |(m, _)| m),
                new_mode: new_file.map_or(0, |(m, _)| m),
                old_path: None,
            },
        );
    }
    Ok((changes, truncated))
}

const TREE_MODE: u32 = 0o040000;

fn diff_tree_pair(
    reader: &Reader<'_>,
    old: Option<&ObjectId>,
    new: Option<&ObjectId>,
    max: usize,
) -> Result<(Vec<FileChange>, bool)> {
    if old.is_none() && new.is_none() {
        return Ok((Vec::new(), false));
    }
    let (mut old_buf, mut new_buf) = (Vec::new(), Vec::new());
    if let Some(old) = old {
        reader.read_kind(old, gix_object::Kind::Tree, &mut old_buf)?;
    }
    if let Some(new) = new {
        reader.read_kind(new, gix_object::Kind::Tree, &mut new_buf)?;
    }
    let mut capped = Capped {
        inner: Recorder::default(),
        max,
        files: 0,
    };
    let outcome = gix_diff::tree(
        TreeRefIter::from_bytes(&old_buf, reader.db().object_hash()),
        TreeRefIter::from_bytes(&new_buf, reader.db().object_hash()),
        State::default(),
        reader,
        &mut capped,
    );
    let truncated = match outcome {
        Ok(()) => false,
        Err(gix_diff::tree::Error::Cancelled) => true,
        Err(e) => return Err(Error::Diff(e.to_string())),
    };
    let mode = |m: gix_object::tree::EntryMode| u32::from(m.value());
    let file = |path: &BStr, kind, old, new, old_mode, new_mode| FileChange {
        path: path.to_str_lossy().into_owned(),
        kind,
        old,
        new,
        old_mode,
        new_mode,
        old_path: None,
    };
    let changes = capped
        .inner
        .records
        .into_iter()
        .filter_map(|change| match change {
            recorder::Change::Addition {
                entry_mode,
                oid,
                path,
                ..
            } => (!entry_mode.is_tree()).then(|| {
                file(
                    path.as_ref(),
                    FileChangeKind::Added,
                    None,
                    Some(oid),
                    0,
                    mode(entry_mode),
                )
            }),
            recorder::Change::Deletion {
                entry_mode,
                oid,
                path,
                ..
            } => (!entry_mode.is_tree()).then(|| {
                file(
                    path.as_ref(),
                    FileChangeKind::Deleted,
                    Some(oid),
                    None,
                    mode(entry_mode),
                    0,
                )
            }),
            recorder::Change::Modification {
                previous_entry_mode,
                previous_oid,
                entry_mode,
                oid,
                path,
            } => match (previous_entry_mode.is_tree(), entry_mode.is_tree()) {
                (false, false) => Some(file(
                    path.as_ref(),
                    FileChangeKind::Modified,
                    Some(previous_oid),
                    Some(oid),
                    mode(previous_entry_mode),
                    mode(entry_mode),
                )),
                // A file that became a directory (or back): the file went or came; the
                // directory's files are listed on their own.
                (false, true) => Some(file(
                    path.as_ref(),
                    FileChangeKind::Deleted,
                    Some(previous_oid),
                    None,
                    mode(previous_entry_mode),
                    0,
                )),
                (true, false) => Some(file(
                    path.as_ref(),
                    FileChangeKind::Added,
                    None,
                    Some(oid),
                    0,
                    mode(entry_mode),
                )),
                (true, true) => None,
            },
        })
        .collect();
    Ok((changes, truncated))
}
