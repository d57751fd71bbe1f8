//! git's `packed-refs` format, peeled tags included, with the sequence number of the change
//! that wrote it.
//!
//! The header names the traits a reader may rely on; git ignores traits it does not know, so
//! `artifact-git-seq=<n>` in it leaves the file a valid `packed-refs` for stock git while
//! numbering every change of a repository's refs: the event log hangs off that number.
//! `artifact-git-unwatched` says that no endpoint (webhook, mirror, version sync) watches the
//! repository, so a change needs no event record: it is in the file that every change
//! replaces by compare-and-swap, so a push and the first endpoint's creation cannot miss
//! each other (see [`crate::RefStore::watch`]). `artifact-git-deleted` says the repository was
//! deleted (its refs are kept aside until it is restored or purged): written by
//! compare-and-swap too, so a push that read the refs before cannot land after.
//! `artifact-git-pack-bytes=<n>` and `artifact-git-lfs-bytes=<n>` are the repository's usage:
//! every change carries them forward (a push adds its pack in the same compare-and-swap that
//! moves its refs), so whoever reads the refs knows the usage without another read.
//! `artifact-git-object-format=sha256` names the repository's object format (absent: SHA-1,
//! see `objectstore::format`): every request reads the refs, so it learns the format free,
//! and every id in the file must have that format's length.

use std::collections::BTreeMap;

use gix_hash::ObjectId;

use crate::{Error, Result};

const HEADER: &str = "# pack-refs with: peeled fully-peeled sorted ";
const SEQ_TRAIT: &str = "artifact-git-seq=";
const UNWATCHED_TRAIT: &str = "artifact-git-unwatched";
const DELETED_TRAIT: &str = "artifact-git-deleted";
const PACK_BYTES_TRAIT: &str = "artifact-git-pack-bytes=";
const LFS_BYTES_TRAIT: &str = "artifact-git-lfs-bytes=";
const SOFT_LIMIT_TRAIT: &str = "artifact-git-soft-limit=";
const HARD_LIMIT_TRAIT: &str = "artifact-git-hard-limit=";
const OBJECT_FORMAT_TRAIT: &str = "artifact-git-object-format=";

/// A parsed `packed-refs` file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PackedRefs {
    /// Every ref by name.
    pub refs: BTreeMap<String, RefValue>,
    /// How many changes led to this file (0 for a file written by anything else).
    pub seq: u64,
    /// No endpoint watches the repository: its changes need no event record. Absent in files
    /// written before there was such a mark, and by anything else: those are watched.
    pub unwatched: bool,
    /// The repository was deleted: it holds no refs and reads as not found.
    pub deleted: bool,
    /// The bytes the repository stores.
    pub usage: Usage,
    /// Its limits, when set for it.
    pub quota: Quota,
    /// The hash that names its objects.
    pub object_hash: gix_hash::Kind,
}

impl Default for PackedRefs {
    fn default() -> Self {
        PackedRefs {
            refs: BTreeMap::new(),
            seq: 0,
            unwatched: false,
            deleted: false,
            usage: Usage::default(),
            quota: Quota::default(),
            object_hash: objectstore::format::DEFAULT,
        }
    }
}

/// A repository's limits on what it stores (packs and LFS objects), in bytes.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Quota {
    /// Past it, writes are warned.
    pub soft: Option<u64>,
    /// Past it, writes are refused.
    pub hard: Option<u64>,
}

/// What a repository stores, in bytes.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Usage {
    /// Pack and index files.
    pub pack_bytes: u64,
    /// LFS objects.
    pub lfs_bytes: u64,
}

impl Usage {
    /// Both.
    pub fn total(&self) -> u64 {
        self.pack_bytes.saturating_add(self.lfs_bytes)
    }
}

/// A ref's value: its target and, for annotated tags, what the tag peels to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RefValue {
    /// The object the ref names.
    pub target: ObjectId,
    /// For an annotated tag, the non-tag object it finally points at (git's `^` line).
    pub peeled: Option<ObjectId>,
}

/// Parse a `packed-refs` file. Anything that is not a header, a ref line or a peel line makes
/// the whole file an error.
pub fn parse_packed_refs(data: &[u8]) -> Result<PackedRefs> {
    let text =
        std::str::from_utf8(data).map_err(|_| Error::Corrupt("packed-refs is not UTF-8".into()))?;
    let mut refs = BTreeMap::new();
    let mut seq = 0;
    let mut unwatched = false;
    let mut deleted = false;
    let mut usage = Usage::default();
    let mut quota = Quota::default();
    let mut object_hash = objectstore::format::DEFAULT;
    let mut last: Option<String> = None;
    for (n, line) in text.lines().enumerate() {
        let bad = || Error::Corrupt(format!("packed-refs line {} is malformed", n + 1));
        if line.starts_with('#') && n == 0 {
            if let Some(traits) = line.strip_prefix("# pack-refs with:") {
                for t in traits.split_ascii_whitespace() {
                    if let Some(v) = t.strip_prefix(SEQ_TRAIT) {
                        seq = v.parse().map_err(|_| bad())?;
                    } else if t == UNWATCHED_TRAIT {
                        unwatched = true;
                    } else if t == DELETED_TRAIT {
                        deleted = true;
                    } else if let Some(v) = t.strip_prefix(PACK_BYTES_TRAIT) {
                        usage.pack_bytes = v.parse().map_err(|_| bad())?;
                    } else if let Some(v) = t.strip_prefix(LFS_BYTES_TRAIT) {
                        usage.lfs_bytes = v.parse().map_err(|_| bad())?;
                    } else if let Some(v) = t.strip_prefix(SOFT_LIMIT_TRAIT) {
                        quota.soft = Some(v.parse().map_err(|_| bad())?);
                    } else if let Some(v) = t.strip_prefix(HARD_LIMIT_TRAIT) {
                        quota.hard = Some(v.parse().map_err(|_| bad())?);
                    } else if let Some(v) = t.strip_prefix(OBJECT_FORMAT_TRAIT) {
                        object_hash = objectstore::format::by_name(v).ok_or_else(bad)?;
                    }
                }
            }
            continue;
        }
        if let Some(hex) = line.strip_prefix('^') {
            if hex.len() != object_hash.len_in_hex() {
                return Err(bad());
            }
            let peeled = ObjectId::from_hex(hex.as_bytes()).map_err(|_| bad())?;
            let name = last.as_ref().ok_or_else(bad)?;
            if let Some(v) = refs.get_mut(name) {
                let v: &mut RefValue = v;
                v.peeled = Some(peeled);
            }
            continue;
        }
        let (hex, name) = line.split_once(' ').ok_or_else(bad)?;
        // The object comes from the bucket: a name git would refuse (control characters,
        // `..`, a stray `\r`) makes the file corrupt rather than a ref nobody can name.
        if hex.len() != object_hash.len_in_hex() || crate::validate_ref_name(name).is_err() {
            return Err(bad());
        }
        let target = ObjectId::from_hex(hex.as_bytes()).map_err(|_| bad())?;
        refs.insert(
            name.to_owned(),
            RefValue {
                target,
                peeled: None,
            },
        );
        last = Some(name.to_owned());
    }
    Ok(PackedRefs {
        refs,
        seq,
        unwatched,
        deleted,
        usage,
        quota,
        object_hash,
    })
}

/// The refs object of a deleted repository whose refs object was `original`: no refs, the
/// same number and watch mark, and the deleted mark.
pub fn deleted_marker(original: &[u8]) -> Result<Vec<u8>> {
    let before = match original.is_empty() {
        true => PackedRefs::default(),
        false => parse_packed_refs(original)?,
    };
    Ok(write_packed_refs(&PackedRefs {
        refs: BTreeMap::new(),
        seq: before.seq,
        unwatched: before.unwatched,
        deleted: true,
        usage: before.usage,
        quota: before.quota,
        object_hash: before.object_hash,
    }))
}

/// Serialise refs in git's sorted, fully-peeled form, with their change number and mark.
pub fn write_packed_refs(packed: &PackedRefs) -> Vec<u8> {
    let refs = &packed.refs;
    let mut out = String::with_capacity(HEADER.len() + 64 + refs.len() * 64);
    out.push_str(HEADER);
    out.push_str(&format!("{SEQ_TRAIT}{} ", packed.seq));
    if packed.unwatched {
        out.push_str(UNWATCHED_TRAIT);
        out.push(' ');
    }
    if packed.deleted {
        out.push_str(DELETED_TRAIT);
        out.push(' ');
    }
    if packed.usage.pack_bytes > 0 {
        out.push_str(&format!("{PACK_BYTES_TRAIT}{} ", packed.usage.pack_bytes));
    }
    if packed.usage.lfs_bytes > 0 {
        out.push_str(&format!("{LFS_BYTES_TRAIT}{} ", packed.usage.lfs_bytes));
    }
    if let Some(soft) = packed.quota.soft {
        out.push_str(&format!("{SOFT_LIMIT_TRAIT}{soft} "));
    }
    if let Some(hard) = packed.quota.hard {
        out.push_str(&format!("{HARD_LIMIT_TRAIT}{hard} "));
    }
    if packed.object_hash != objectstore::format::DEFAULT {
        out.push_str(&format!("{OBJECT_FORMAT_TRAIT}{} ", packed.object_hash));
    }
    out.push('\n');
    for (name, value) in refs {
        out.push_str(&format!("{} {}\n", value.target, name));
        if let Some(peeled) = value.peeled {
            out.push_str(&format!("^{peeled}\n"));
        }
    }
    out.into_bytes()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_deleted_mark_keeps_the_number_and_drops_the_refs() -> Result<()> {
        let id = ObjectId::from_hex(b"1111111111111111111111111111111111111111")
            .map_err(|_| Error::Corrupt("id".into()))?;
        let mut refs = BTreeMap::new();
        refs.insert(
            "refs/heads/main".to_owned(),
            RefValue {
                target: id,
                peeled: None,
            },
        );
        let original = write_packed_refs(&PackedRefs {
            refs,
            seq: 7,
            unwatched: true,
            deleted: false,
            usage: Usage::default(),
            quota: Quota::default(),
            object_hash: gix_hash::Kind::Sha1,
        });
        let marked = parse_packed_refs(&deleted_marker(&original)?)?;
        assert_eq!(
            (marked.seq, marked.unwatched, marked.deleted),
            (7, true, true)
        );
        assert!(marked.refs.is_empty());
        assert!(!parse_packed_refs(&original)?.deleted);
        Ok(())
    }

    #[test]
    fn names_git_would_refuse_make_the_file_corrupt() {
        let id = "a".repeat(40);
        for name in [
            "refs/heads/a\rb",
            "refs/heads/a b",
            "refs/heads/a..b",
            "refs/heads/\0",
            "",
        ] {
            let file = format!("{HEADER}\n{id} {name}\n");
            assert!(
                matches!(parse_packed_refs(file.as_bytes()), Err(Error::Corrupt(_))),
                "{name:?}"
            );
        }
        let file = format!("{HEADER}\n{id} refs/heads/ok\r\n");
        assert_eq!(
            parse_packed_refs(file.as_bytes())
                .map(|p| p.refs.len())
                .ok(),
            Some(1)
        );
    }

    #[test]
    fn round_trip_with_peeled_tag() -> Result<()> {
        let a = ObjectId::from_bytes_or_panic(&[1; 20]);
        let b = ObjectId::from_bytes_or_panic(&[2; 20]);
        let mut refs = BTreeMap::new();
        refs.insert(
            "refs/heads/main".to_string(),
            RefValue {
                target: a,
                peeled: None,
            },
        );
        refs.insert(
            "refs/tags/v1".to_string(),
            RefValue {
                target: b,
                peeled: Some(a),
            },
        );
        let packed = PackedRefs {
            refs: refs.clone(),
            seq: 42,
            unwatched: false,
            deleted: false,
            usage: Usage {
                pack_bytes: 1234,
                lfs_bytes: 0,
            },
            quota: Quota::default(),
            object_hash: gix_hash::Kind::Sha1,
        };
        let data = write_packed_refs(&packed);
        assert!(String::from_utf8_lossy(&data)
            .starts_with("# pack-refs with: peeled fully-peeled sorted artifact-git-seq=42 artifact-git-pack-bytes=1234 \n"));
        assert_eq!(parse_packed_refs(&data)?, packed);
        let unwatched = PackedRefs {
            unwatched: true,
            ..packed
        };
        let data = write_packed_refs(&unwatched);
        assert!(String::from_utf8_lossy(&data).starts_with(
            "# pack-refs with: peeled fully-peeled sorted artifact-git-seq=42 artifact-git-unwatched artifact-git-pack-bytes=1234 \n"
        ));
        assert_eq!(parse_packed_refs(&data)?, unwatched);
        // A file git wrote has no number, and is watched: only our mark says otherwise.
        let git = b"# pack-refs with: peeled fully-peeled sorted \n0101010101010101010101010101010101010101 refs/heads/main\n";
        assert_eq!(parse_packed_refs(git)?.seq, 0);
        assert!(!parse_packed_refs(git)?.unwatched);
        Ok(())
    }

    #[test]
    fn malformed_is_an_error() {
        assert!(parse_packed_refs(b"xyz refs/heads/main\n").is_err());
        assert!(parse_packed_refs(b"^1111111111111111111111111111111111111111\n").is_err());
        assert!(parse_packed_refs(&[0xff, 0xfe]).is_err());
    }

    #[test]
    fn a_sha256_repository_says_so_and_takes_only_its_ids() -> Result<()> {
        let id = ObjectId::from_hex("ab".repeat(32).as_bytes())
            .map_err(|_| Error::Corrupt("id".into()))?;
        let mut refs = BTreeMap::new();
        refs.insert(
            "refs/tags/v1".to_owned(),
            RefValue {
                target: id,
                peeled: Some(id),
            },
        );
        let packed = PackedRefs {
            refs,
            object_hash: gix_hash::Kind::Sha256,
            ..PackedRefs::default()
        };
        let data = write_packed_refs(&packed);
        assert!(String::from_utf8_lossy(&data).contains(" artifact-git-object-format=sha256 "));
        assert_eq!(parse_packed_refs(&data)?, packed);
        // A SHA-1 id in a SHA-256 file, and the reverse, make it corrupt.
        let sha1_line = format!("{} refs/heads/a\n", "a".repeat(40));
        let mixed = [data.clone(), sha1_line.clone().into_bytes()].concat();
        assert!(matches!(parse_packed_refs(&mixed), Err(Error::Corrupt(_))));
        let sha256_line = format!("{HEADER}\n{} refs/heads/a\n", "a".repeat(64));
        assert!(matches!(
            parse_packed_refs(sha256_line.as_bytes()),
            Err(Error::Corrupt(_))
        ));
        let unknown = format!("{HEADER}artifact-git-object-format=md5 \n");
        assert!(parse_packed_refs(unknown.as_bytes()).is_err());
        let deleted = parse_packed_refs(&deleted_marker(&data)?)?;
        assert_eq!(deleted.object_hash, gix_hash::Kind::Sha256);
        Ok(())
    }
}
