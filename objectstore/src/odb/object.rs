//! Just enough of commits, trees and tags for walks: the fields that link objects, read with
//! gix-object's parsers.

use gix_hash::{oid, ObjectId};
use gix_object::commit::ref_iter::Token;
use gix_object::{CommitRefIter, TagRefIter, TreeRefIter};

use super::{Error, Result};

/// The links and date of a commit.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Commit {
    /// Its tree.
    pub tree: ObjectId,
    /// Its parents, in order.
    pub parents: Vec<ObjectId>,
    /// Committer time, seconds since the epoch (what `--shallow-since` compares).
    pub time: i64,
}

fn corrupt(id: &oid, message: impl std::fmt::Display) -> Error {
    Error::Corrupt {
        id: id.to_owned(),
        message: message.to_string(),
    }
}

impl Commit {
    /// Parse the header of the commit `id` (stopping after the committer).
    pub fn parse(id: &oid, data: &[u8]) -> Result<Self> {
        let mut tree = None;
        let mut parents = Vec::new();
        let mut time = 0;
        for token in CommitRefIter::from_bytes(data, id.kind()) {
            match token.map_err(|e| corrupt(id, e))? {
                Token::Tree { id } => tree = Some(id),
                Token::Parent { id } => parents.push(id),
                Token::Author { .. } => {}
                Token::Committer { signature } => {
                    time = signature.seconds();
                    break;
                }
                _ => break,
            }
        }
        Ok(Commit {
            tree: tree.ok_or_else(|| corrupt(id, "commit without tree"))?,
            parents,
            time,
        })
    }
}

/// One entry of a tree.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TreeEntry {
    /// What it names.
    pub id: ObjectId,
    /// Its mode.
    pub mode: gix_object::tree::EntryMode,
}

impl TreeEntry {
    /// A subtree.
    pub fn is_tree(&self) -> bool {
        self.mode.is_tree()
    }
    /// Submodule commits are links to other repositories, never objects of this one.
    pub fn is_gitlink(&self) -> bool {
        self.mode.is_commit()
    }
}

/// Call `f` for every entry of the tree `data`.
pub fn for_each_tree_entry(id: &oid, data: &[u8], mut f: impl FnMut(TreeEntry)) -> Result<()> {
    for entry in TreeRefIter::from_bytes(data, id.kind()) {
        let entry = entry.map_err(|e| corrupt(id, e))?;
        f(TreeEntry {
            id: entry.oid.to_owned(),
            mode: entry.mode,
        });
    }
    Ok(())
}

/// The object an annotated tag points at.
pub fn tag_target(id: &oid, data: &[u8]) -> Result<ObjectId> {
    TagRefIter::from_bytes(data, id.kind())
        .target_id()
        .map_err(|e| corrupt(id, e))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_commit_links_and_time() -> Result<()> {
        let id = ObjectId::null(gix_hash::Kind::Sha1);
        let data = b"tree 1111111111111111111111111111111111111111\nparent 2222222222222222222222222222222222222222\nauthor A <a@b> 1 +0000\ncommitter C <c@d> 1700000000 +0100\n\nmsg\nparent x\n";
        let c = Commit::parse(&id, data)?;
        assert_eq!(c.parents.len(), 1);
        assert_eq!(c.time, 1700000000);
        Ok(())
    }

    #[test]
    fn parses_tree_entries() -> Result<()> {
        let id = ObjectId::null(gix_hash::Kind::Sha1);
        let mut data = b"100644 a.txt\0".to_vec();
        data.extend_from_slice(&[1u8; 20]);
        data.extend_from_slice(b"40000 dir\0");
        data.extend_from_slice(&[2u8; 20]);
        let mut entries = Vec::new();
        for_each_tree_entry(&id, &data, |e| entries.push(e))?;
        assert_eq!(entries.len(), 2);
        assert!(!entries[0].is_tree() && entries[1].is_tree());
        assert!(for_each_tree_entry(&id, &data[..30], |_| {}).is_err());
        Ok(())
    }
}
