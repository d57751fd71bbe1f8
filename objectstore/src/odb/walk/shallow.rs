//! Where a shallow history is cut: `deepen`, `deepen-since`, `deepen-not`, `--unshallow`.

use std::collections::{HashMap, HashSet};

use gix_hash::ObjectId;
use gix_object::Kind;

use super::INFINITE_DEPTH;
use crate::odb::{Error, Reader, Result};

/// How a fetch changes the client's shallow boundary.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct ShallowUpdate {
    /// New shallow commits to announce (`shallow <id>`).
    pub shallow: Vec<ObjectId>,
    /// Client shallow commits whose history is now sent (`unshallow <id>`).
    pub unshallow: Vec<ObjectId>,
    /// Commits the walk must treat as parentless.
    pub grafts: HashSet<ObjectId>,
    /// Parents of unshallowed commits: wanted in addition to the client's wants.
    pub extra_wants: Vec<ObjectId>,
}

/// What the client asked for with `deepen`, `deepen-since` and `deepen-not`.
#[derive(Debug, Default, Clone)]
pub struct Deepen {
    /// `deepen <n>`: commits at most this far from the wants.
    pub depth: Option<u32>,
    /// `deepen-relative`: the depth counts from the client's current shallow boundary.
    pub relative: bool,
    /// `deepen-since`: only commits newer than this (seconds since the epoch).
    pub since: Option<i64>,
    /// Resolved `deepen-not` refs.
    pub not: Vec<ObjectId>,
}

/// Compute the new shallow boundary, the way git's upload-pack does.
pub fn shallow_update(
    reader: &Reader<'_>,
    wants: &[ObjectId],
    client_shallows: &[ObjectId],
    deepen: &Deepen,
) -> Result<ShallowUpdate> {
    let client: HashSet<ObjectId> = client_shallows
        .iter()
        .copied()
        .filter(|id| reader.db().contains(id))
        .collect();
    let mut heads = Vec::new();
    for want in wants {
        let (peeled, kind) = reader.peel(want)?;
        if kind == Kind::Commit {
            heads.push(peeled);
        }
    }
    let (shallow, not_shallow): (Vec<ObjectId>, HashSet<ObjectId>) = match deepen.depth {
        Some(depth) if depth >= INFINITE_DEPTH => (Vec::new(), client.clone()),
        Some(depth) if deepen.relative => {
            let starts: Vec<ObjectId> = client_shallows
                .iter()
                .copied()
                .filter(|c| client.contains(c))
                .collect();
            by_depth(reader, &starts, depth.saturating_add(1))?
        }
        Some(depth) => by_depth(reader, &heads, depth)?,
        None if deepen.since.is_some() || !deepen.not.is_empty() => {
            by_rev_list(reader, &heads, deepen.since, &deepen.not)?
        }
        None => (Vec::new(), HashSet::new()),
    };
    let mut update = ShallowUpdate {
        grafts: client.clone(),
        ..ShallowUpdate::default()
    };
    for id in shallow {
        if !client.contains(&id) && !not_shallow.contains(&id) {
            update.shallow.push(id);
        }
        update.grafts.insert(id);
    }
    for id in client_shallows {
        if not_shallow.contains(id) && !update.unshallow.contains(id) {
            update.unshallow.push(*id);
            update.extra_wants.extend(reader.commit(id)?.parents);
        }
    }
    Ok(update)
}

/// Breadth-first from `heads` (depth 1): commits at `depth` are the boundary.
fn by_depth(
    reader: &Reader<'_>,
    heads: &[ObjectId],
    depth: u32,
) -> Result<(Vec<ObjectId>, HashSet<ObjectId>)> {
    let mut shallow = Vec::new();
    let mut not_shallow = HashSet::new();
    let mut visited = HashSet::new();
    let mut level: Vec<ObjectId> = heads.to_vec();
    let mut d = 1u32;
    while !level.is_empty() {
        let mut next = Vec::new();
        for id in level {
            if !visited.insert(id) {
                continue;
            }
            if d >= depth {
                shallow.push(id);
                continue;
            }
            not_shallow.insert(id);
            next.extend(reader.commit(&id)?.parents);
        }
        level = next;
        d = d.saturating_add(1);
    }
    Ok((shallow, not_shallow))
}

/// `rev-list --max-age=<since> --not <not...> <heads>`: the boundary is every selected commit
/// with a parent that is not selected.
fn by_rev_list(
    reader: &Reader<'_>,
    heads: &[ObjectId],
    since: Option<i64>,
    not: &[ObjectId],
) -> Result<(Vec<ObjectId>, HashSet<ObjectId>)> {
    let mut excluded = HashSet::new();
    let mut stack: Vec<ObjectId> = Vec::new();
    for id in not {
        let (peeled, kind) = reader.peel(id)?;
        if kind == Kind::Commit {
            stack.push(peeled);
        }
    }
    while let Some(id) = stack.pop() {
        if excluded.insert(id) {
            stack.extend(reader.commit(&id)?.parents);
        }
    }
    let mut selected: HashMap<ObjectId, Vec<ObjectId>> = HashMap::new();
    let mut stack: Vec<ObjectId> = heads.to_vec();
    while let Some(id) = stack.pop() {
        if excluded.contains(&id) || selected.contains_key(&id) {
            continue;
        }
        let commit = reader.commit(&id)?;
        if since.is_some_and(|s| commit.time < s) {
            continue;
        }
        stack.extend(commit.parents.iter().copied());
        selected.insert(id, commit.parents);
    }
    if selected.is_empty() {
        return Err(Error::Rejected(
            "no commits selected for shallow requests".into(),
        ));
    }
    let mut shallow = Vec::new();
    let mut not_shallow = HashSet::new();
    for (id, parents) in &selected {
        if parents.iter().any(|p| !selected.contains_key(p)) {
            shallow.push(*id);
        } else {
            not_shallow.insert(*id);
        }
    }
    shallow.sort();
    Ok((shallow, not_shallow))
}
