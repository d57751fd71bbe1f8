//! Writing new objects into a pack: how files that exist outside git (an artifact's
//! versions) become blobs, trees and a commit.
//!
//! Objects are written whole (no deltas) to a temporary pack, blobs streamed from local files
//! so that memory stays bounded whatever their size; [`PackBuilder::finish`] yields a pack
//! that [`super::index::index_file`] indexes like any pushed pack.

use std::collections::BTreeMap;
use std::fs::File;
use std::io::{BufWriter, Read, Write};
use std::path::{Path, PathBuf};

use gix_hash::ObjectId;
use gix_object::{Kind, WriteTo};

use super::generate::object_header;
use super::{Error, Result};

/// Accumulates objects in a temporary file, then writes the pack.
pub struct PackBuilder {
    dir: tempfile::TempDir,
    body: BufWriter<File>,
    count: u32,
    hash: gix_hash::Kind,
}

impl PackBuilder {
    /// A builder writing a pack of objects named by `hash` into a fresh directory below
    /// `staging`.
    pub fn new(staging: &Path, hash: gix_hash::Kind) -> Result<Self> {
        std::fs::create_dir_all(staging)?;
        let dir = tempfile::Builder::new()
            .prefix("build-")
            .tempdir_in(staging)?;
        let body = BufWriter::new(File::create(dir.path().join("body"))?);
        Ok(PackBuilder {
            dir,
            body,
            count: 0,
            hash,
        })
    }

    /// Add an object held in memory.
    pub fn add(&mut self, kind: Kind, data: &[u8]) -> Result<ObjectId> {
        self.add_from(kind, data.len() as u64, &mut &data[..])
    }

    /// Add an object of `size` bytes read from `input`, hashing and compressing as it streams.
    pub fn add_from(&mut self, kind: Kind, size: u64, input: &mut dyn Read) -> Result<ObjectId> {
        let mut hasher = gix_hash::hasher(self.hash);
        hasher.update(&gix_object::encode::loose_header(kind, size));
        object_header(kind).write_to(size, &mut self.body)?;
        let mut z = flate2::write::ZlibEncoder::new(&mut self.body, flate2::Compression::fast());
        let mut buf = vec![0u8; 256 * 1024];
        let mut seen = 0u64;
        loop {
            let n = input.read(&mut buf)?;
            if n == 0 {
                break;
            }
            seen += n as u64;
            if seen > size {
                break;
            }
            hasher.update(&buf[..n]);
            z.write_all(&buf[..n])?;
        }
        z.finish()?;
        if seen != size {
            return Err(Error::Rejected(format!(
                "an object changed size while it was read ({seen} bytes, expected {size})"
            )));
        }
        self.count += 1;
        hasher
            .try_finalize()
            .map_err(|e| Error::Rejected(format!("{e}")))
    }

    /// Write the pack (header, objects, checksum); the path lives as long as the builder's
    /// directory, which the returned guard keeps.
    pub fn finish(mut self) -> Result<(PathBuf, tempfile::TempDir)> {
        self.body.flush()?;
        drop(self.body);
        let path = self.dir.path().join("import.pack");
        let mut out = BufWriter::new(File::create(&path)?);
        let mut hasher = gix_hash::hasher(self.hash);
        let header = gix_pack::data::header::encode(gix_pack::data::Version::V2, self.count);
        hasher.update(&header);
        out.write_all(&header)?;
        let mut body = File::open(self.dir.path().join("body"))?;
        let mut buf = vec![0u8; 256 * 1024];
        loop {
            let n = body.read(&mut buf)?;
            if n == 0 {
                break;
            }
            hasher.update(&buf[..n]);
            out.write_all(&buf[..n])?;
        }
        let sum = hasher
            .try_finalize()
            .map_err(|e| Error::Rejected(format!("{e}")))?;
        out.write_all(sum.as_slice())?;
        out.flush()?;
        Ok((path, self.dir))
    }
}

/// A directory being assembled into trees.
#[derive(Debug, Default)]
pub struct TreeBuilder {
    entries: BTreeMap<String, Node>,
}

#[derive(Debug)]
enum Node {
    File { id: ObjectId, mode: u32 },
    Dir(TreeBuilder),
}

impl TreeBuilder {
    /// Add a file at a `/`-separated path. Paths git refuses (empty, `.`, `..` or `.git`
    /// components) are refused here too.
    pub fn insert(&mut self, path: &str, id: ObjectId, mode: u32) -> Result<()> {
        let parts: Vec<&str> = path.split('/').collect();
        if parts.iter().any(|p| {
            p.is_empty()
                || *p == "."
                || *p == ".."
                || p.eq_ignore_ascii_case(".git")
                || p.contains('\0')
        }) {
            return Err(Error::Rejected(format!("invalid path {path:?}")));
        }
        let mut dir = self;
        for part in &parts[..parts.len() - 1] {
            let node = dir
                .entries
                .entry((*part).to_owned())
                .or_insert_with(|| Node::Dir(TreeBuilder::default()));
            dir = match node {
                Node::Dir(d) => d,
                Node::File { .. } => {
                    return Err(Error::Rejected(format!("{path:?} is below a file")))
                }
            };
        }
        let name = parts[parts.len() - 1];
        if dir.entries.contains_key(name) {
            return Err(Error::Rejected(format!("{path:?} is given twice")));
        }
        dir.entries.insert(name.to_owned(), Node::File { id, mode });
        Ok(())
    }

    /// Whether nothing was added yet.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// Write this tree and every subtree; the id of the root.
    pub fn write(&self, pack: &mut PackBuilder) -> Result<ObjectId> {
        let mut tree = gix_object::Tree {
            entries: Vec::with_capacity(self.entries.len()),
        };
        for (name, node) in &self.entries {
            let (mode, oid) = match node {
                Node::File { id, mode } => (
                    gix_object::tree::EntryMode::try_from(*mode)
                        .map_err(|_| Error::Rejected(format!("invalid file mode {mode:o}")))?,
                    *id,
                ),
                Node::Dir(sub) => (gix_object::tree::EntryKind::Tree.into(), sub.write(pack)?),
            };
            tree.entries.push(gix_object::tree::Entry {
                mode,
                filename: name.as_str().into(),
                oid,
            });
        }
        // git's order: a directory sorts as if its name ended in '/'.
        tree.entries.sort();
        let mut data = Vec::new();
        tree.write_to(&mut data)?;
        pack.add(Kind::Tree, &data)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn object_ids_match_git() -> Result<()> {
        let dir = tempfile::tempdir()?;
        let mut pack = PackBuilder::new(dir.path(), gix_hash::Kind::Sha1)?;
        // `git hash-object` of "hello\n" and of the empty blob.
        assert_eq!(
            pack.add(Kind::Blob, b"hello\n")?.to_string(),
            "ce013625030ba8dba906f756967f9e9ca394464a"
        );
        let empty = pack.add(Kind::Blob, b"")?;
        assert_eq!(
            empty.to_string(),
            "e69de29bb2d1d6434b8b29ae775ad8c2e48c5391"
        );
        let mut tree = TreeBuilder::default();
        tree.insert("a/b.txt", empty, 0o100644)?;
        tree.insert("a.txt", empty, 0o100644)?;
        assert!(tree.insert("x/../y", empty, 0o100644).is_err());
        assert!(tree.insert(".git/config", empty, 0o100644).is_err());
        let root = tree.write(&mut pack)?;
        // `a.txt` sorts before `a/` as git orders them.
        assert_eq!(root.to_string().len(), 40);
        let (path, _guard) = pack.finish()?;
        assert!(std::fs::metadata(path)?.len() > 12);
        Ok(())
    }
}
