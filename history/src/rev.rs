//! Revisions as `git rev-parse` reads their common forms: `HEAD`, a branch or tag name (short
//! or full), a full or abbreviated object id, each followed by `~N`, `^N` or `^{}` steps.
//! Ids resolve only to what the refs reach ([`Reachable`]): a commit no ref reaches any more
//! is unknown to readers, as it is to `git fetch`.

use gix_hash::ObjectId;
use objectstore::odb::Reader;

use crate::{Error, Reachable, Result};

/// The longest revision accepted.
const MAX_REV: usize = 512;

/// The commit `rev` names in a repository whose refs are `refs`, among what they reach
/// (`visible`, computed from the same refs).
pub fn resolve_commit(
    reader: &Reader<'_>,
    refs: &refs::Snapshot,
    visible: &Reachable,
    rev: &str,
) -> Result<ObjectId> {
    let bad = || Error::UnknownRevision(rev.to_owned());
    if rev.is_empty()
        || rev.len() > MAX_REV
        || rev.contains(['\0', ' ', '\n', ':'])
        || rev.contains("..")
    {
        return Err(bad());
    }
    let split = rev.find(['~', '^']).unwrap_or(rev.len());
    let (base, mut steps) = rev.split_at(split);
    let mut id = base_object(refs, visible, base)?.ok_or_else(bad)?;
    let mut current = peel_commit(reader, &id).ok_or_else(bad)??;
    while !steps.is_empty() {
        if let Some(rest) = steps
            .strip_prefix("^{}")
            .or_else(|| steps.strip_prefix("^{commit}"))
        {
            steps = rest;
            continue;
        }
        let op = steps.as_bytes()[0];
        let digits_end = steps[1..]
            .find(|c: char| !c.is_ascii_digit())
            .map_or(steps.len(), |i| i + 1);
        let count: usize = if digits_end == 1 {
            1
        } else {
            steps[1..digits_end].parse().map_err(|_| bad())?
        };
        steps = &steps[digits_end..];
        match op {
            b'~' => {
                for _ in 0..count {
                    current = *reader.commit(&current)?.parents.first().ok_or_else(bad)?;
                }
            }
            b'^' => {
                if count > 0 {
                    current = *reader
                        .commit(&current)?
                        .parents
                        .get(count - 1)
                        .ok_or_else(bad)?;
                }
            }
            _ => return Err(bad()),
        }
    }
    id = current;
    Ok(id)
}

/// The commit an object peels to; `None` when it is not a commit (a tree, a blob).
fn peel_commit(reader: &Reader<'_>, id: &ObjectId) -> Option<Result<ObjectId>> {
    match reader.peel(id) {
        Ok((commit, gix_object::Kind::Commit)) => Some(Ok(commit)),
        Ok(_) => None,
        Err(e) => Some(Err(e.into())),
    }
}

fn base_object(refs: &refs::Snapshot, visible: &Reachable, base: &str) -> Result<Option<ObjectId>> {
    if base == "HEAD" || base == "@" {
        return Ok(refs.head.as_deref().and_then(|h| refs.get(h)));
    }
    // git's order: the name as given, then under refs/, refs/tags/, refs/heads/.
    for candidate in [
        base.to_owned(),
        format!("refs/{base}"),
        format!("refs/tags/{base}"),
        format!("refs/heads/{base}"),
    ] {
        if let Some(id) = refs.get(&candidate) {
            return Ok(Some(id));
        }
    }
    // A full id of the repository's format (`refs.object_hash`), else an abbreviation.
    let full = refs.object_hash.len_in_hex();
    if base.len() == full {
        if let Ok(id) = ObjectId::from_hex(base.as_bytes()) {
            return Ok(visible.contains(&id).then_some(id));
        }
    }
    if (4..full).contains(&base.len()) && base.bytes().all(|b| b.is_ascii_hexdigit()) {
        let prefix = gix_hash::Prefix::from_hex(&base.to_ascii_lowercase())
            .map_err(|_| Error::UnknownRevision(base.to_owned()))?;
        return match visible.by_prefix(&prefix) {
            Ok(found) => Ok(found),
            Err(objectstore::odb::Ambiguous) => Err(Error::AmbiguousRevision(base.to_owned())),
        };
    }
    Ok(None)
}
