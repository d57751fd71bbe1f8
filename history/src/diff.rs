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
}

/// One changed file (trees themselves are never listed, only what is in them).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FileChange {
    /// The path from the root, `/`-separated (invalid UTF-8 replaced).
    pub path: String,
    /// How it changed.
    pub kind: FileChangeKind,
    /// The blob before (none when added).
    pub old: Option<ObjectId>,
    /// The blob after (none when deleted).
    pub new: Option<ObjectId>,
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
    let (mut old_buf, mut new_buf) = (Vec::new(), Vec::new());
    if let Some(old) = old {
        reader.read_kind(old, gix_object::Kind::Tree, &mut old_buf)?;
    }
    reader.read_kind(new, gix_object::Kind::Tree, &mut new_buf)?;
    let mut capped = Capped {
        inner: Recorder::default(),
        max,
        files: 0,
    };
    let outcome = gix_diff::tree(
        TreeRefIter::from_bytes(&old_buf, gix_hash::Kind::Sha1),
        TreeRefIter::from_bytes(&new_buf, gix_hash::Kind::Sha1),
        State::default(),
        reader,
        &mut capped,
    );
    let truncated = match outcome {
        Ok(()) => false,
        Err(gix_diff::tree::Error::Cancelled) => true,
        Err(e) => return Err(Error::Diff(e.to_string())),
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
            } => (!entry_mode.is_tree()).then(|| FileChange {
                path: path.to_str_lossy().into_owned(),
                kind: FileChangeKind::Added,
                old: None,
                new: Some(oid),
            }),
            recorder::Change::Deletion {
                entry_mode,
                oid,
                path,
                ..
            } => (!entry_mode.is_tree()).then(|| FileChange {
                path: path.to_str_lossy().into_owned(),
                kind: FileChangeKind::Deleted,
                old: Some(oid),
                new: None,
            }),
            recorder::Change::Modification {
                previous_entry_mode,
                previous_oid,
                entry_mode,
                oid,
                path,
            } => match (previous_entry_mode.is_tree(), entry_mode.is_tree()) {
                (false, false) => Some(FileChange {
                    path: path.to_str_lossy().into_owned(),
                    kind: FileChangeKind::Modified,
                    old: Some(previous_oid),
                    new: Some(oid),
                }),
                // A file that became a directory (or back): the file went or came; the
                // directory's files are listed on their own.
                (false, true) => Some(FileChange {
                    path: path.to_str_lossy().into_owned(),
                    kind: FileChangeKind::Deleted,
                    old: Some(previous_oid),
                    new: None,
                }),
                (true, false) => Some(FileChange {
                    path: path.to_str_lossy().into_owned(),
                    kind: FileChangeKind::Added,
                    old: None,
                    new: Some(oid),
                }),
                (true, true) => None,
            },
        })
        .collect();
    Ok((changes, truncated))
}
