//! Commits made without a client: a tree edited path by path from a base tree (only the trees
//! on the edited paths are rewritten; every other subtree is kept by id), and the commit and
//! tag objects around it.

use std::collections::BTreeMap;

use gix_hash::ObjectId;
use gix_object::bstr::BString;
use gix_object::tree::EntryMode;
use gix_object::{Kind, TreeRefIter, WriteTo};
use objectstore::odb::build::PackBuilder;
use objectstore::odb::Reader;

use crate::{Error, Result};

/// One change to a tree.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TreeEdit {
    /// Put `id` at `path` with `mode` (creating directories on the way; replacing a file).
    Upsert {
        /// Where, `/`-separated from the root.
        path: String,
        /// `0o100644`, `0o100755` or `0o120000`.
        mode: u32,
        /// The blob (already in the pack being built, or in the repository).
        id: ObjectId,
    },
    /// Remove the file or the whole directory at `path` (it must exist).
    Remove {
        /// Where.
        path: String,
    },
}

impl TreeEdit {
    fn path(&self) -> &str {
        match self {
            TreeEdit::Upsert { path, .. } | TreeEdit::Remove { path } => path,
        }
    }
}

/// The tree `base` (none: empty) with `edits` applied, written into `pack` with every tree on
/// an edited path; its id. Edits apply in order of path, not of the list: two edits of one
/// path are refused.
pub fn edit_tree(
    reader: &Reader<'_>,
    pack: &mut PackBuilder,
    base: Option<&ObjectId>,
    edits: &[TreeEdit],
) -> Result<ObjectId> {
    let mut paths = std::collections::HashSet::new();
    for edit in edits {
        let path = edit.path();
        if path.is_empty() || crate::tree::normalize_path(path)? != path {
            return Err(Error::InvalidPath(path.to_owned()));
        }
        if path.split('/').any(|c| c.eq_ignore_ascii_case(".git")) {
            return Err(Error::InvalidPath(format!("{path}: .git is reserved")));
        }
        if !paths.insert(path) {
            return Err(Error::InvalidPath(format!("{path} is changed twice")));
        }
    }
    let split: Vec<(Vec<&str>, &TreeEdit)> = edits
        .iter()
        .map(|e| (e.path().split('/').collect(), e))
        .collect();
    let refs: Vec<(&[&str], &TreeEdit)> = split.iter().map(|(p, e)| (p.as_slice(), *e)).collect();
    match apply(reader, pack, base, "", &refs)? {
        Some(id) => Ok(id),
        None => Ok(pack.add(Kind::Tree, b"")?),
    }
}

/// Apply edits (paths relative to this tree) to `tree`; `None` when it ends up empty.
fn apply(
    reader: &Reader<'_>,
    pack: &mut PackBuilder,
    tree: Option<&ObjectId>,
    at: &str,
    edits: &[(&[&str], &TreeEdit)],
) -> Result<Option<ObjectId>> {
    let mut entries: BTreeMap<BString, (EntryMode, ObjectId)> = BTreeMap::new();
    if let Some(tree) = tree {
        let mut buf = Vec::new();
        reader.read_kind(tree, Kind::Tree, &mut buf)?;
        for entry in TreeRefIter::from_bytes(&buf, tree.kind()) {
            let entry = entry.map_err(|e| Error::Corrupt {
                id: *tree,
                message: e.to_string(),
            })?;
            entries.insert(
                entry.filename.to_owned(),
                (entry.mode, entry.oid.to_owned()),
            );
        }
    }
    let full = |name: &str| {
        if at.is_empty() {
            name.to_owned()
        } else {
            format!("{at}/{name}")
        }
    };
    // Edits of this level first (a directory removed, then files put below its name).
    for (parts, edit) in edits.iter().filter(|(p, _)| p.len() == 1) {
        let name = BString::from(parts[0]);
        match edit {
            TreeEdit::Upsert { mode, id, .. } => {
                // A directory is replaced only by a directory (a restore); a file may not
                // silently take a directory's place.
                if entries.get(&name).is_some_and(|(m, _)| m.is_tree()) && *mode != 0o040000 {
                    return Err(Error::InvalidPath(format!(
                        "{} is a directory",
                        full(parts[0])
                    )));
                }
                let mode = EntryMode::try_from(*mode)
                    .map_err(|m| Error::InvalidPath(format!("invalid mode {m:o}")))?;
                entries.insert(name, (mode, *id));
            }
            TreeEdit::Remove { .. } => {
                if entries.remove(&name).is_none() {
                    return Err(Error::NoSuchPath(full(parts[0])));
                }
            }
        }
    }
    let mut below: BTreeMap<&str, Vec<(&[&str], &TreeEdit)>> = BTreeMap::new();
    for (parts, edit) in edits.iter().filter(|(p, _)| p.len() > 1) {
        below
            .entry(parts[0])
            .or_default()
            .push((&parts[1..], *edit));
    }
    for (name, sub_edits) in below {
        let key = BString::from(name);
        let sub = match entries.get(&key) {
            Some((mode, id)) if mode.is_tree() => Some(*id),
            Some(_) => {
                return Err(Error::InvalidPath(format!(
                    "{} is a file, not a directory",
                    full(name)
                )))
            }
            None => None,
        };
        match apply(reader, pack, sub.as_ref(), &full(name), &sub_edits)? {
            Some(id) => {
                entries.insert(key, (gix_object::tree::EntryKind::Tree.into(), id));
            }
            None => {
                entries.remove(&key);
            }
        }
    }
    if entries.is_empty() {
        return Ok(None);
    }
    let mut tree = gix_object::Tree {
        entries: entries
            .into_iter()
            .map(|(filename, (mode, oid))| gix_object::tree::Entry {
                mode,
                filename,
                oid,
            })
            .collect(),
    };
    tree.entries.sort();
    let mut data = Vec::new();
    tree.write_to(&mut data)
        .map_err(|e| Error::InvalidPath(e.to_string()))?;
    Ok(Some(pack.add(Kind::Tree, &data)?))
}

/// Who made a commit or tag: name, email, seconds since the epoch and zone offset (seconds).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Person {
    /// The name (no `<`, `>` or line breaks).
    pub name: String,
    /// The email (same rule).
    pub email: String,
    /// Seconds since the epoch.
    pub time: i64,
    /// Seconds east of UTC.
    pub offset: i32,
}

impl Person {
    /// `name <email>` now, in UTC.
    pub fn now(name: impl Into<String>, email: impl Into<String>) -> Self {
        let time = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_secs() as i64);
        Person {
            name: name.into(),
            email: email.into(),
            time,
            offset: 0,
        }
    }

    /// Check the name and email as git's fsck would.
    pub fn validate(&self) -> Result<()> {
        for (what, v) in [("name", &self.name), ("email", &self.email)] {
            if v.len() > 256 || v.contains(['<', '>', '\n', '\0']) {
                return Err(Error::InvalidPath(format!(
                    "the {what} may not hold <, >, line breaks or be over 256 bytes"
                )));
            }
        }
        if self.name.trim().is_empty() {
            return Err(Error::InvalidPath("the name is empty".into()));
        }
        Ok(())
    }

    /// The signature gix-object writes.
    fn signature(&self) -> gix_actor::Signature {
        gix_actor::Signature {
            name: self.name.as_str().into(),
            email: self.email.as_str().into(),
            time: gix_object::date::Time {
                seconds: self.time,
                offset: self.offset,
            },
        }
    }
}

/// A message as git stores it: ending in one line break.
fn message_text(message: &str) -> String {
    let trimmed = message.trim_end();
    format!("{trimmed}\n")
}

/// Write a commit of `tree` with `parents` into `pack`; its id. The one builder of commits
/// for every writer without a client (API commits, restores, imports, merges).
pub fn write_commit(
    pack: &mut PackBuilder,
    tree: &ObjectId,
    parents: &[ObjectId],
    author: &Person,
    committer: &Person,
    message: &str,
) -> Result<ObjectId> {
    author.validate()?;
    committer.validate()?;
    let commit = gix_object::Commit {
        tree: *tree,
        parents: parents.iter().copied().collect(),
        author: author.signature(),
        committer: committer.signature(),
        encoding: None,
        message: message_text(message).into(),
        extra_headers: Vec::new(),
    };
    add_object(pack, &commit)
}

/// Write an annotated tag `name` of `target` (a commit) into `pack`; its id.
pub fn write_tag(
    pack: &mut PackBuilder,
    target: &ObjectId,
    name: &str,
    tagger: &Person,
    message: &str,
) -> Result<ObjectId> {
    tagger.validate()?;
    let tag = gix_object::Tag {
        target: *target,
        target_kind: Kind::Commit,
        name: name.into(),
        tagger: Some(tagger.signature()),
        message: message_text(message).into(),
        signature: None,
    };
    add_object(pack, &tag)
}

/// Encode `object` as git stores it and add it to `pack`.
fn add_object(pack: &mut PackBuilder, object: &impl WriteTo) -> Result<ObjectId> {
    let mut data = Vec::with_capacity(object.size() as usize);
    object
        .write_to(&mut data)
        .map_err(|e| Error::InvalidPath(format!("the object cannot be encoded: {e}")))?;
    Ok(pack.add(object.kind(), &data)?)
}
