//! A repository's object format: which hash names its objects (`sha1`, or `sha256`, which
//! git plans as the default of new repositories).
//!
//! This module is the one place that decides it. A repository's format is chosen when it is
//! created and recorded twice: in its `config` (`extensions.objectFormat`, so that stock git
//! opens the bucket's copy) and in its refs object (a header trait, see the `refs` crate), which
//! every request reads anyway, so knowing the format costs no read. It then travels with
//! what was opened: a refs snapshot knows its `object_hash`, an [`crate::ObjectDb`] its
//! [`ObjectDb::object_hash`](crate::ObjectDb::object_hash), a pack its index's. A repository
//! that says nothing (one created before SHA-256 existed here) is SHA-1, as in git.

use gix_hash::Kind;

/// The format of a repository that names none.
pub const DEFAULT: Kind = Kind::Sha1;

/// The formats a repository may have, by their git names.
pub const ALL: [Kind; 2] = [Kind::Sha1, Kind::Sha256];

/// The format git calls `name` (`sha1`, `sha256`), as in `--object-format` and
/// `extensions.objectFormat`.
pub fn by_name(name: &str) -> Option<Kind> {
    ALL.into_iter().find(|k| k.to_string() == name)
}

/// The format whose ids are written with `hex_len` digits.
pub fn by_hex_len(hex_len: usize) -> Option<Kind> {
    ALL.into_iter().find(|k| k.len_in_hex() == hex_len)
}

/// The format of a pack named `pack-<checksum>` (its checksum is a hash of the format).
pub fn of_pack_name(name: &str) -> Option<Kind> {
    let hex = name.strip_prefix("pack-")?;
    hex.bytes()
        .all(|b| b.is_ascii_hexdigit())
        .then(|| by_hex_len(hex.len()))
        .flatten()
}

/// The bare repository's `config`: version 1 with the extension for SHA-256 (git refuses to
/// open a SHA-256 repository that does not say so), version 0 for SHA-1 as `git init` writes.
pub fn bare_config(kind: Kind) -> &'static [u8] {
    match kind {
        Kind::Sha256 => {
            b"[core]\n\trepositoryformatversion = 1\n\tfilemode = true\n\tbare = true\n[extensions]\n\tobjectFormat = sha256\n"
        }
        _ => b"[core]\n\trepositoryformatversion = 0\n\tfilemode = true\n\tbare = true\n",
    }
}

/// A hasher for content ids: the names of refs states in the event log and the filesystem
/// backend's ETags. They are SHA-1 whatever a repository's object format, since ids already
/// recorded in buckets must keep naming the same states.
pub fn content_hasher() -> gix_hash::Hasher {
    gix_hash::hasher(Kind::Sha1)
}

/// The hex content id of `data` (see [`content_hasher`]).
pub fn content_id(data: &[u8]) -> String {
    let mut hasher = content_hasher();
    hasher.update(data);
    finish_hex(hasher)
}

/// The hex digest of `hasher`: SHA-1 of content cannot be a collision attack that matters
/// here (a content id names bytes this server wrote), so a detected one still yields its
/// digest.
pub fn finish_hex(hasher: gix_hash::Hasher) -> String {
    match hasher.try_finalize() {
        Ok(id) => id.to_string(),
        Err(e) => format!("collision-{}", e),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_and_lengths() {
        assert_eq!(by_name("sha256"), Some(Kind::Sha256));
        assert_eq!(by_name("sha1"), Some(Kind::Sha1));
        assert_eq!(by_name("SHA256"), None);
        assert_eq!(by_hex_len(64), Some(Kind::Sha256));
        assert_eq!(by_hex_len(41), None);
        assert_eq!(
            of_pack_name(&format!("pack-{}", "a".repeat(64))),
            Some(Kind::Sha256)
        );
        assert_eq!(
            of_pack_name(&format!("pack-{}", "a".repeat(40))),
            Some(Kind::Sha1)
        );
        assert_eq!(of_pack_name(&format!("pack-{}", "g".repeat(40))), None);
    }
}
