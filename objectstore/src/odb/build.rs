//! Writing new objects into a pack: how files that exist outside git (an artifact's
//! versions) become blobs, trees and a commit.
//!
//! Objects are written whole (no deltas) to a temporary pack, blobs streamed from local files
//! so that memory stays bounded whatever their size; [`PackBuilder::finish`] yields a pack
//! that [`super::ingest::index_pack`] indexes like any pushed pack.

use std::collections::BTreeMap;
use std::fs::File;
use std::io::{BufWriter, Read, Write};
use std::path::{Path, PathBuf};

use gix_hash::ObjectId;
use gix_object::Kind;
use sha1::Digest;

use super::generate::{entry_header, kind_code};
use super::{Error, Result};

/// Accumulates objects in a temporary file, then writes the pack.
pub struct PackBuilder {
    dir: tempfile::TempDir,
    body: BufWriter<File>,
    count: u32,
}

impl PackBuilder {
    pub fn new(staging: &Path) -> Result<Self> {
        std::fs::create_dir_all(staging)?;
        let dir = tempfile::Builder::new()
            .prefix("build-")
            .tempdir_in(staging)?;
        let body = BufWriter::new(File::create(dir.path().join("body"))?);
        Ok(PackBuilder {
            dir,
            body,
            count: 0,
        })
    }

    /// Add an object held in memory.
    pub fn add(&mut self, kind: Kind, data: &[u8]) -> Result<ObjectId> {
        self.add_from(kind, data.len() as u64, &mut &data[..])
    }

    /// Add an object of `size` bytes read from `input`, hashing and compressing as it streams.
    pub fn add_from(&mut self, kind: Kind, size: u64, input: &mut dyn Read) -> Result<ObjectId> {
        let mut hasher = sha1::Sha1::new();
        hasher.update(format!("{kind} {size}\0").as_bytes());
        let mut head = Vec::with_capacity(16);
        entry_header(&mut head, kind_code(kind), size);
        self.body.write_all(&head)?;
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
            return Err(Error::InvalidPack(format!(
                "an object changed size while it was read ({seen} bytes, expected {size})"
            )));
        }
        self.count += 1;
        let digest: [u8; 20] = hasher.finalize().into();
        Ok(ObjectId::from_bytes_or_panic(&digest))
    }

    /// Write the pack (header, objects, checksum); the path lives as long as the builder's
    /// directory, which the returned guard keeps.
    pub fn finish(mut self) -> Result<(PathBuf, tempfile::TempDir)> {
        self.body.flush()?;
        drop(self.body);
        let path = self.dir.path().join("import.pack");
        let mut out = BufWriter::new(File::create(&path)?);
        let mut hasher = sha1::Sha1::new();
        let mut header = Vec::with_capacity(12);
        header.extend_from_slice(b"PACK");
        header.extend_from_slice(&2u32.to_be_bytes());
        header.extend_from_slice(&self.count.to_be_bytes());
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
        let sum: [u8; 20] = hasher.finalize().into();
        out.write_all(&sum)?;
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

    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// Write this tree and every subtree; the id of the root.
    pub fn write(&self, pack: &mut PackBuilder) -> Result<ObjectId> {
        // git sorts entries by name, comparing a directory as if its name ended in '/'.
        let mut entries: Vec<(Vec<u8>, &str, &Node)> = self
            .entries
            .iter()
            .map(|(name, node)| {
                let mut key = name.as_bytes().to_vec();
                if matches!(node, Node::Dir(_)) {
                    key.push(b'/');
                }
                (key, name.as_str(), node)
            })
            .collect();
        entries.sort_by(|a, b| a.0.cmp(&b.0));
        let mut data = Vec::new();
        for (_, name, node) in entries {
            let (mode, id) = match node {
                Node::File { id, mode } => (*mode, *id),
                Node::Dir(sub) => (0o40000, sub.write(pack)?),
            };
            data.extend_from_slice(format!("{mode:o} {name}\0").as_bytes());
            data.extend_from_slice(id.as_bytes());
        }
        pack.add(Kind::Tree, &data)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn object_ids_match_git() -> Result<()> {
        let dir = tempfile::tempdir()?;
        let mut pack = PackBuilder::new(dir.path())?;
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
