//! What readers may see: the commits the refs reach. A commit whose branch was deleted or
//! force-pushed away is still in the packs until maintenance drops it, but for a reader it is
//! gone, as it is for `git fetch`: every revision a caller names (a full or abbreviated id, a
//! ref, `rev~N`, a cursor) resolves only within [`Reachable`].

use std::collections::HashSet;

use gix_hash::ObjectId;
use objectstore::odb::{Ambiguous, Reader};

use crate::Result;

/// The commits the refs reach, and the objects the refs name (annotated tags).
#[derive(Debug, Clone, Default)]
pub struct Reachable {
    /// Every commit reachable from a ref, sorted.
    commits: Vec<ObjectId>,
    /// Every object a ref names (its value, and what an annotated tag peels to), sorted.
    named: Vec<ObjectId>,
}

impl Reachable {
    /// Walk every commit `refs` reach. Objects missing from the packs are skipped (a
    /// repository is never partial, but a walk never fails a read for it).
    pub fn of(reader: &Reader<'_>, refs: &refs::Snapshot) -> Result<Self> {
        let mut named: Vec<ObjectId> = refs
            .refs
            .values()
            .flat_map(|v| std::iter::once(v.target).chain(v.peeled))
            .collect();
        named.sort();
        named.dedup();
        let mut stack: Vec<ObjectId> = Vec::new();
        for id in &named {
            match reader.peel(id) {
                Ok((commit, gix_object::Kind::Commit)) => stack.push(commit),
                Ok(_) | Err(objectstore::odb::Error::Missing(_)) => {}
                Err(e) => return Err(e.into()),
            }
        }
        let mut seen: HashSet<ObjectId> = HashSet::new();
        while let Some(id) = stack.pop() {
            if !seen.insert(id) {
                continue;
            }
            match reader.commit(&id) {
                Ok(commit) => {
                    stack.extend(commit.parents.into_iter().filter(|p| !seen.contains(p)))
                }
                Err(objectstore::odb::Error::Missing(_)) => {}
                Err(e) => return Err(e.into()),
            }
        }
        let mut commits: Vec<ObjectId> = seen.into_iter().collect();
        commits.sort();
        Ok(Reachable { commits, named })
    }

    /// Whether `id` is a commit the refs reach, or an object a ref names.
    pub fn contains(&self, id: &ObjectId) -> bool {
        self.commits.binary_search(id).is_ok() || self.named.binary_search(id).is_ok()
    }

    /// Whether `id` is a commit the refs reach.
    pub fn has_commit(&self, id: &ObjectId) -> bool {
        self.commits.binary_search(id).is_ok()
    }

    /// The one visible object whose id starts with `prefix`.
    pub fn by_prefix(
        &self,
        prefix: &gix_hash::Prefix,
    ) -> std::result::Result<Option<ObjectId>, Ambiguous> {
        let mut found: Option<ObjectId> = None;
        for list in [&self.commits, &self.named] {
            let start = list.partition_point(|id| prefix.cmp_oid(id).is_gt());
            for id in list[start..]
                .iter()
                .take_while(|id| prefix.cmp_oid(id).is_eq())
            {
                match found {
                    Some(other) if other != *id => return Err(Ambiguous),
                    _ => found = Some(*id),
                }
            }
        }
        Ok(found)
    }

    /// How many commits the refs reach.
    pub fn len(&self) -> usize {
        self.commits.len()
    }

    /// Whether the refs reach no commit.
    pub fn is_empty(&self) -> bool {
        self.commits.is_empty()
    }
}

/// Whether `ancestor` is `descendant` or one of its ancestors (a fast-forward from one to the
/// other), walking parents from `descendant`; `None` when more than `max_visited` commits
/// would have to be walked to tell.
pub fn is_ancestor(
    reader: &Reader<'_>,
    ancestor: &ObjectId,
    descendant: &ObjectId,
    max_visited: usize,
) -> Result<Option<bool>> {
    if ancestor == descendant {
        return Ok(Some(true));
    }
    let mut seen = std::collections::HashSet::new();
    let mut queue = std::collections::VecDeque::from([*descendant]);
    seen.insert(*descendant);
    while let Some(id) = queue.pop_front() {
        if seen.len() > max_visited {
            return Ok(None);
        }
        for parent in reader.commit(&id)?.parents {
            if parent == *ancestor {
                return Ok(Some(true));
            }
            if seen.insert(parent) {
                queue.push_back(parent);
            }
        }
    }
    Ok(Some(false))
}
