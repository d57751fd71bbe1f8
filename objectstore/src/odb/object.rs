//! Just enough parsing of commits, trees and tags for walks: the fields that link objects.

use gix_hash::{oid, ObjectId};

use super::{Error, Result};

/// The links and date of a commit.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Commit {
    pub tree: ObjectId,
    pub parents: Vec<ObjectId>,
    /// Committer time, seconds since the epoch (what `--shallow-since` compares).
    pub time: i64,
}

fn corrupt(id: &oid, message: &str) -> Error {
    Error::Corrupt {
        id: id.to_owned(),
        message: message.to_owned(),
    }
}

fn hex_id(id: &oid, hex: &[u8]) -> Result<ObjectId> {
    ObjectId::from_hex(hex).map_err(|_| corrupt(id, "invalid object id in header"))
}

impl Commit {
    pub fn parse(id: &oid, data: &[u8]) -> Result<Self> {
        let mut tree = None;
        let mut parents = Vec::new();
        let mut time = 0;
        for line in data.split(|b| *b == b'\n') {
            if line.is_empty() {
                break;
            }
            if let Some(hex) = line.strip_prefix(b"tree ") {
                tree = Some(hex_id(id, hex)?);
            } else if let Some(hex) = line.strip_prefix(b"parent ") {
                parents.push(hex_id(id, hex)?);
            } else if let Some(sig) = line.strip_prefix(b"committer ") {
                time = signature_time(sig).unwrap_or(0);
            }
        }
        Ok(Commit {
            tree: tree.ok_or_else(|| corrupt(id, "commit without tree"))?,
            parents,
            time,
        })
    }
}

/// The timestamp of `Name <email> 1700000000 +0100`.
fn signature_time(sig: &[u8]) -> Option<i64> {
    let end = sig.iter().rposition(|b| *b == b'>')?;
    let rest = std::str::from_utf8(&sig[end + 1..]).ok()?;
    rest.split_ascii_whitespace().next()?.parse().ok()
}

/// One entry of a tree.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TreeEntry {
    pub id: ObjectId,
    pub mode: u32,
}

impl TreeEntry {
    pub fn is_tree(&self) -> bool {
        self.mode & 0o170000 == 0o040000
    }
    /// Submodule commits are links to other repositories, never objects of this one.
    pub fn is_gitlink(&self) -> bool {
        self.mode & 0o170000 == 0o160000
    }
}

/// Call `f` for every entry of the tree `data`.
pub fn for_each_tree_entry(id: &oid, mut data: &[u8], mut f: impl FnMut(TreeEntry)) -> Result<()> {
    while !data.is_empty() {
        let space = data
            .iter()
            .position(|b| *b == b' ')
            .ok_or_else(|| corrupt(id, "tree entry without mode"))?;
        let mode = std::str::from_utf8(&data[..space])
            .ok()
            .and_then(|s| u32::from_str_radix(s, 8).ok())
            .ok_or_else(|| corrupt(id, "invalid tree entry mode"))?;
        let nul = data[space..]
            .iter()
            .position(|b| *b == 0)
            .ok_or_else(|| corrupt(id, "tree entry without name end"))?
            + space;
        let hash_end = nul + 21;
        if data.len() < hash_end {
            return Err(corrupt(id, "truncated tree entry"));
        }
        let entry_id = ObjectId::try_from(&data[nul + 1..hash_end])
            .map_err(|_| corrupt(id, "invalid tree entry id"))?;
        f(TreeEntry { id: entry_id, mode });
        data = &data[hash_end..];
    }
    Ok(())
}

/// The object an annotated tag points at.
pub fn tag_target(id: &oid, data: &[u8]) -> Result<ObjectId> {
    let first = data.split(|b| *b == b'\n').next().unwrap_or_default();
    let hex = first
        .strip_prefix(b"object ")
        .ok_or_else(|| corrupt(id, "tag without object line"))?;
    hex_id(id, hex)
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
