//! A repository's object format: which hash names its objects (`sha1` or, as git plans for
//! new repositories, `sha256`).
//!
//! This module is the one place that decides it. The format is read once when a repository
//! is opened ([`of_repository`]) and then travels with what was opened: an
//! [`crate::ObjectDb`] knows its [`ObjectDb::object_hash`](crate::ObjectDb::object_hash), a
//! pack its index's, a parsed object the kind of the id it was read by. Nothing below names a
//! hash kind of its own.

use gix_hash::Kind;

use crate::layout::RepoKeys;

/// The only object format repositories have today.
const SHA1: Kind = Kind::Sha1;

/// The object format of the repository at `keys`. Every repository is SHA-1 for now; a
/// SHA-256 repository will say so in its `config` (`extensions.objectFormat`), read here.
pub fn of_repository(_keys: &RepoKeys) -> Kind {
    SHA1
}

/// A hasher for content ids: the names of refs states in the event log and the filesystem
/// backend's ETags. They are SHA-1 whatever a repository's object format, since ids already
/// recorded in buckets must keep naming the same states.
pub fn content_hasher() -> gix_hash::Hasher {
    gix_hash::hasher(SHA1)
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
