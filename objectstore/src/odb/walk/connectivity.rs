//! Whether objects connect: a pushed pack to what the repository has, and a pack's recorded
//! tips to the refs.

use std::collections::HashSet;

use gix_hash::ObjectId;
use gix_object::Kind;

use crate::odb::object::{for_each_tree_entry, tag_target, Commit};
use crate::odb::{Error, ObjectDb, Reach, Reader, Result};

/// Whether every object of `tips` is reachable from `roots` (ref targets). A tip that is not a
/// commit must be a root or lie on a root's chain of tags; a commit tip must be found by a walk
/// of the roots' history. Gives up, answering `false`, after `max_commits` commits.
pub fn all_reachable(
    reader: &Reader<'_>,
    roots: &[ObjectId],
    tips: &[ObjectId],
    max_commits: usize,
) -> Result<bool> {
    let mut remaining: HashSet<ObjectId> = tips.iter().copied().collect();
    let mut stack = Vec::new();
    let mut buf = Vec::new();
    for root in roots {
        let mut current = *root;
        for _ in 0..64 {
            remaining.remove(&current);
            match reader.kind(&current)? {
                Some(Kind::Tag) => {
                    reader.read_kind(&current, Kind::Tag, &mut buf)?;
                    current = tag_target(&current, &buf)?;
                }
                Some(Kind::Commit) => {
                    stack.push(current);
                    break;
                }
                _ => break,
            }
        }
    }
    if remaining.is_empty() {
        return Ok(true);
    }
    for tip in &remaining {
        if reader.kind(tip)? != Some(Kind::Commit) {
            return Ok(false);
        }
    }
    let mut seen = HashSet::new();
    while let Some(id) = stack.pop() {
        if !seen.insert(id) {
            continue;
        }
        remaining.remove(&id);
        if remaining.is_empty() {
            return Ok(true);
        }
        if seen.len() >= max_commits {
            return Ok(false);
        }
        stack.extend(reader.commit(&id)?.parents);
    }
    Ok(false)
}

/// Checks that everything reachable from pushed tips is in the incoming pack or already
/// stored. Objects found connected by one check are not walked again by the next, so a push
/// of many refs over one history walks it once.
pub struct Connectivity {
    incoming: ObjectDb,
    existing: ObjectDb,
    verified: HashSet<ObjectId>,
}

impl Connectivity {
    /// `incoming` holds the received pack only; `existing` is what the repository had.
    pub fn new(incoming: ObjectDb, existing: ObjectDb) -> Self {
        Connectivity {
            incoming,
            existing,
            verified: HashSet::new(),
        }
    }

    fn exists(&self, id: &ObjectId) -> bool {
        self.incoming.contains(id) || self.existing.contains(id)
    }

    /// Walk from `tip` through the incoming objects; a stored object ends the walk (stored
    /// objects were checked when they came). Blobs are only looked up, never decoded.
    pub fn check(&mut self, tip: ObjectId) -> Result<()> {
        let reader = self.incoming.reader();
        let mut seen = HashSet::new();
        let mut stack: Vec<ObjectId> = vec![tip];
        let mut buf = Vec::new();
        while let Some(id) = stack.pop() {
            if self.verified.contains(&id) || !seen.insert(id) {
                continue;
            }
            let Some(kind) = reader.try_read(&id, &mut buf)? else {
                if self.existing.contains(&id) {
                    continue;
                }
                return Err(Error::Missing(id));
            };
            match kind {
                Kind::Commit => {
                    let c = Commit::parse(&id, &buf)?;
                    // Each commit's trees before its parents: newest first, the order of
                    // delta chains in packs, so each tree is one delta from a cached one.
                    stack.extend(c.parents);
                    stack.push(c.tree);
                }
                Kind::Tree => {
                    let mut missing = None;
                    for_each_tree_entry(&id, &buf, |e| {
                        if e.is_gitlink() || missing.is_some() {
                        } else if e.is_tree() {
                            stack.push(e.id);
                        } else if !self.verified.contains(&e.id) && !seen.contains(&e.id) {
                            if self.exists(&e.id) {
                                seen.insert(e.id);
                            } else {
                                missing = Some(e.id);
                            }
                        }
                    })?;
                    if let Some(m) = missing {
                        return Err(Error::Missing(m));
                    }
                }
                Kind::Tag => stack.push(tag_target(&id, &buf)?),
                Kind::Blob => {}
            }
        }
        self.verified.extend(seen);
        Ok(())
    }

    /// What the incoming pack's `.tips` record may say once every tip in `tips` was checked:
    /// those tips, when each object of the pack was reached from them or is also stored
    /// already (a duplicate, reachable as its stored copy is); otherwise nothing.
    pub fn reach(&self, tips: Vec<ObjectId>) -> Reach {
        let Some(pack) = self.incoming.packs().first() else {
            return Reach::Within(tips);
        };
        let index = &pack.index;
        let all_reached = (0..index.num_objects()).all(|i| {
            let id = index.oid_at_index(i);
            self.verified.contains(id) || self.existing.contains(id)
        });
        if all_reached {
            Reach::Within(tips)
        } else {
            Reach::Unknown
        }
    }
}
