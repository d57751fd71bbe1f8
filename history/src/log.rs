//! Walking history newest first, as `git log <tips> ^<hidden>` does.

use std::collections::{BinaryHeap, HashMap};

use gix_hash::ObjectId;
use objectstore::odb::Reader;

use crate::Result;

/// How far a walk may go.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LogLimits {
    /// Commits returned at most.
    pub max_commits: usize,
    /// Commits visited at most (returned or hidden): what one question may cost.
    pub max_visited: usize,
}

impl Default for LogLimits {
    fn default() -> Self {
        LogLimits {
            max_commits: 1000,
            max_visited: 1_000_000,
        }
    }
}

/// What [`log`] found.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Log {
    /// Commits reachable from the tips and not from the hidden commits, newest first (by
    /// committer time, parents after their children when times tie).
    pub commits: Vec<ObjectId>,
    /// The walk stopped at a limit: there are more.
    pub truncated: bool,
}

const SEEN: u8 = 1;
const HIDDEN: u8 = 2;
const QUEUED: u8 = 4;

/// The commits reachable from `tips` and from none of `hidden`, newest first.
///
/// Like git's revision walk, it stops once every commit still queued is hidden, so it never
/// walks the whole hidden history; a commit dated before its hidden ancestor (clock skew) may
/// then be listed, as git would list it.
pub fn log(
    reader: &Reader<'_>,
    tips: &[ObjectId],
    hidden: &[ObjectId],
    limits: LogLimits,
) -> Result<Log> {
    let mut flags: HashMap<ObjectId, u8> = HashMap::new();
    // Ordered by time, then by insertion (a later insertion is an ancestor: it goes after).
    let mut queue: BinaryHeap<(i64, std::cmp::Reverse<u64>, ObjectId)> = BinaryHeap::new();
    let mut order = 0u64;
    let mut visible_queued = 0usize;
    let mut push = |queue: &mut BinaryHeap<_>, id: ObjectId, time: i64| {
        order += 1;
        queue.push((time, std::cmp::Reverse(order), id));
    };
    for (ids, flag) in [(hidden, SEEN | HIDDEN | QUEUED), (tips, SEEN | QUEUED)] {
        for id in ids {
            // Tags name their commits; anything else (a tree, a missing object) has no history.
            let id = match reader.kind(id)? {
                Some(_) => match reader.peel(id)? {
                    (commit, gix_object::Kind::Commit) => commit,
                    _ => continue,
                },
                None => continue,
            };
            if flags.contains_key(&id) {
                continue;
            }
            let time = reader.commit(&id)?.time;
            flags.insert(id, flag);
            if flag & HIDDEN == 0 {
                visible_queued += 1;
            }
            push(&mut queue, id, time);
        }
    }
    let mut out = Log::default();
    let mut visited = 0usize;
    while visible_queued > 0 {
        let Some((_, _, id)) = queue.pop() else { break };
        let flag = flags.get(&id).copied().unwrap_or(0);
        flags.insert(id, flag & !QUEUED);
        let hidden_now = flag & HIDDEN != 0;
        if !hidden_now {
            visible_queued -= 1;
        }
        visited += 1;
        if visited > limits.max_visited || out.commits.len() >= limits.max_commits {
            out.truncated = true;
            break;
        }
        if !hidden_now {
            out.commits.push(id);
        }
        let commit = reader.commit(&id)?;
        for parent in &commit.parents {
            match flags.get_mut(parent) {
                Some(f) => {
                    // Already queued or walked: a hidden child hides it too.
                    if hidden_now && *f & HIDDEN == 0 {
                        *f |= HIDDEN;
                        if *f & QUEUED != 0 {
                            visible_queued = visible_queued.saturating_sub(1);
                        }
                    }
                }
                None => {
                    let time = reader.commit(parent)?.time;
                    let flag = if hidden_now { SEEN | HIDDEN } else { SEEN };
                    flags.insert(*parent, flag | QUEUED);
                    if !hidden_now {
                        visible_queued += 1;
                    }
                    push(&mut queue, *parent, time);
                }
            }
        }
    }
    // A commit listed before a hidden descendant's walk reached it is not part of the answer.
    out.commits
        .retain(|id| flags.get(id).is_some_and(|f| f & HIDDEN == 0));
    Ok(out)
}

/// One page of `git log <tip> [-- <path>]`: the commits after the first `skip`, newest first,
/// at most `limits.max_commits` of them.
///
/// With a `path`, history is simplified as git simplifies it by default: a commit is listed
/// when what is at `path` differs from every parent (or, for a root commit, when the path
/// exists); a merge whose path equals one parent's is followed down that parent alone, so
/// branches that did not touch the path are not walked.
pub fn log_page(
    reader: &Reader<'_>,
    tip: &ObjectId,
    path: Option<&str>,
    skip: usize,
    limits: LogLimits,
) -> Result<Log> {
    let mut seen: HashMap<ObjectId, ()> = HashMap::new();
    let mut at_path: HashMap<ObjectId, Option<(u32, ObjectId)>> = HashMap::new();
    let mut lookup = path
        .filter(|p| !p.is_empty())
        .map(crate::tree::PathLookup::new);
    let mut entry =
        |id: &ObjectId, tree: &ObjectId, path: &str| -> Result<Option<(u32, ObjectId)>> {
            if let Some(found) = at_path.get(id) {
                return Ok(*found);
            }
            let found = match lookup.as_mut() {
                Some(lookup) => lookup.at(reader, tree)?,
                None => crate::tree::entry_at(reader, tree, path)?,
            };
            at_path.insert(*id, found);
            Ok(found)
        };
    let mut queue: BinaryHeap<(i64, std::cmp::Reverse<u64>, ObjectId)> = BinaryHeap::new();
    let mut order = 0u64;
    queue.push((reader.commit(tip)?.time, std::cmp::Reverse(0), *tip));
    seen.insert(*tip, ());
    let mut out = Log::default();
    let (mut visited, mut listed) = (0usize, 0usize);
    while let Some((_, _, id)) = queue.pop() {
        visited += 1;
        if visited > limits.max_visited {
            out.truncated = true;
            break;
        }
        let commit = reader.commit(&id)?;
        let (show, follow): (bool, &[ObjectId]) = match path {
            None => (true, &commit.parents),
            Some(path) => {
                let mine = entry(&id, &commit.tree, path)?;
                let mut same = None;
                for (n, parent) in commit.parents.iter().enumerate() {
                    let theirs = entry(parent, &reader.commit(parent)?.tree, path)?;
                    if theirs == mine {
                        same = Some(n);
                        break;
                    }
                }
                match same {
                    Some(n) => (false, &commit.parents[n..=n]),
                    None if commit.parents.is_empty() => (mine.is_some(), &commit.parents),
                    None => (true, &commit.parents),
                }
            }
        };
        if show {
            if listed >= skip {
                if out.commits.len() == limits.max_commits {
                    out.truncated = true;
                    break;
                }
                out.commits.push(id);
            }
            listed += 1;
        }
        for parent in follow {
            if seen.insert(*parent, ()).is_none() {
                order += 1;
                let time = reader.commit(parent)?.time;
                queue.push((time, std::cmp::Reverse(order), *parent));
            }
        }
    }
    Ok(out)
}
