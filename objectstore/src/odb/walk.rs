//! History walks: what a fetch must send, where a shallow history is cut, and whether a
//! pushed pack connects to what the repository has.

use std::collections::{BinaryHeap, HashMap, HashSet};

use gix_hash::ObjectId;
use gix_object::Kind;

use super::object::{for_each_tree_entry, tag_target, Commit};
use super::{Error, ObjectDb, Reach, Reader, Result};

/// The depth git sends for `--unshallow`: "all of it".
pub const INFINITE_DEPTH: u32 = 0x7fff_ffff;

/// Edge commits whose trees are marked as known to the client. Each costs a walk of its whole
/// tree; past this many, objects the client may already have are sent again instead.
const MAX_EDGE_TREES: usize = 32;

/// The objects a fetch must send.
#[derive(Debug, Default)]
pub struct Selection {
    /// Every object to send, each once.
    pub objects: Vec<ObjectId>,
    /// Objects the client is known to have: bases a thin pack may refer to.
    pub client_has: HashSet<ObjectId>,
    pub commits: usize,
}

/// An object filter of a partial clone (`--filter=<spec>`), as git's `list-objects-filter`
/// applies it: objects the client names in a want are always sent; the filter drops the rest.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Filter {
    /// `blob:none`: no blobs.
    BlobNone,
    /// `blob:limit=<n>[kmg]`: blobs smaller than `n` bytes.
    BlobLimit(u64),
    /// `tree:<depth>`: trees and blobs less than `depth` levels below a commit's root tree
    /// (`tree:0` sends commits and tags only).
    TreeDepth(u64),
    /// `object:type=<type>`: objects of that type only.
    ObjectType(Kind),
}

impl Filter {
    /// Parse a filter spec as git sends it; `Err` names what is not supported.
    pub fn parse(spec: &str) -> std::result::Result<Filter, String> {
        let unsupported = || format!("unsupported filter spec '{spec}'");
        if spec == "blob:none" {
            return Ok(Filter::BlobNone);
        }
        if let Some(limit) = spec.strip_prefix("blob:limit=") {
            return parse_size(limit)
                .map(Filter::BlobLimit)
                .ok_or_else(unsupported);
        }
        if let Some(depth) = spec.strip_prefix("tree:") {
            return depth
                .parse()
                .map(Filter::TreeDepth)
                .map_err(|_| unsupported());
        }
        if let Some(kind) = spec.strip_prefix("object:type=") {
            return Kind::from_bytes(kind.as_bytes())
                .map(Filter::ObjectType)
                .map_err(|_| unsupported());
        }
        Err(unsupported())
    }

    /// Whether commits and tags that no want names go.
    fn keeps_kind(self, kind: Kind) -> bool {
        match self {
            Filter::ObjectType(k) => k == kind,
            _ => true,
        }
    }
}

/// `<n>[kmg]`, as git's `git_parse_ulong` reads it.
fn parse_size(text: &str) -> Option<u64> {
    let (digits, unit) = match text.char_indices().last()? {
        (i, c) if c.is_ascii_alphabetic() => (&text[..i], c.to_ascii_lowercase()),
        _ => (text, ' '),
    };
    let scale: u64 = match unit {
        ' ' => 1,
        'k' => 1 << 10,
        'm' => 1 << 20,
        'g' => 1 << 30,
        _ => return None,
    };
    digits.parse::<u64>().ok()?.checked_mul(scale)
}

const UNINTERESTING: u8 = 1;
const QUEUED: u8 = 2;
const EMITTED: u8 = 4;

#[derive(PartialEq, Eq, PartialOrd, Ord)]
struct Queued {
    time: i64,
    id: ObjectId,
    /// Pushed from the want side; counted until popped, so the walk never stops early.
    interesting: bool,
}

/// Select everything reachable from `wants` that is not reachable from `haves`, treating the
/// commits in `grafts` as having no parents (the client's shallow boundary, old and new).
pub fn select(
    reader: &Reader<'_>,
    wants: &[ObjectId],
    haves: &[ObjectId],
    grafts: &HashSet<ObjectId>,
    filter: Option<Filter>,
    progress: &mut dyn FnMut(usize),
) -> Result<Selection> {
    let mut flags: HashMap<ObjectId, u8> = HashMap::new();
    let mut commits: HashMap<ObjectId, Commit> = HashMap::new();
    let mut queue = BinaryHeap::new();
    let mut interesting_queued = 0usize;
    let mut selection = Selection::default();
    let mut seen: HashSet<ObjectId> = HashSet::new();
    let mut root_trees: Vec<ObjectId> = Vec::new();
    let mut buf = Vec::new();

    let load = |id: &ObjectId, commits: &mut HashMap<ObjectId, Commit>| -> Result<i64> {
        if let Some(c) = commits.get(id) {
            return Ok(c.time);
        }
        let c = reader.commit(id)?;
        let t = c.time;
        commits.insert(*id, c);
        Ok(t)
    };

    for have in haves {
        let (peeled, kind) = match reader.peel(have) {
            Ok(p) => p,
            Err(Error::Missing(_)) => continue,
            Err(e) => return Err(e),
        };
        if kind == Kind::Commit && flags.get(&peeled).copied().unwrap_or(0) & UNINTERESTING == 0 {
            *flags.entry(peeled).or_default() |= UNINTERESTING | QUEUED;
            let time = load(&peeled, &mut commits)?;
            queue.push(Queued {
                time,
                id: peeled,
                interesting: false,
            });
        }
    }
    for want in wants {
        let mut current = *want;
        loop {
            match reader.read(&current, &mut buf)? {
                Kind::Tag => {
                    let keep = current == *want || filter.is_none_or(|f| f.keeps_kind(Kind::Tag));
                    if keep && seen.insert(current) {
                        selection.objects.push(current);
                    }
                    current = tag_target(&current, &buf)?;
                }
                Kind::Commit => {
                    let f = flags.entry(current).or_default();
                    if *f & QUEUED == 0 {
                        *f |= QUEUED;
                        let time = load(&current, &mut commits)?;
                        queue.push(Queued {
                            time,
                            id: current,
                            interesting: true,
                        });
                        interesting_queued += 1;
                    }
                    break;
                }
                Kind::Tree => {
                    root_trees.push(current);
                    break;
                }
                Kind::Blob => {
                    if seen.insert(current) {
                        selection.objects.push(current);
                    }
                    break;
                }
            }
        }
    }

    // Date-ordered painting: interesting from the wants, uninteresting from the haves, until
    // only uninteresting commits are left (plus a little slop for clock skew).
    let mut emitted: Vec<ObjectId> = Vec::new();
    let mut slop = 8usize;
    while let Some(Queued {
        id, interesting, ..
    }) = queue.pop()
    {
        if interesting {
            interesting_queued = interesting_queued.saturating_sub(1);
        }
        let f = flags.get(&id).copied().unwrap_or(0);
        let parents: Vec<ObjectId> = if grafts.contains(&id) {
            Vec::new()
        } else {
            commits
                .get(&id)
                .map(|c| c.parents.clone())
                .unwrap_or_default()
        };
        if f & UNINTERESTING != 0 {
            for p in parents {
                let pf = flags.entry(p).or_default();
                if *pf & UNINTERESTING == 0 {
                    *pf |= UNINTERESTING | QUEUED;
                    match load(&p, &mut commits) {
                        Ok(time) => queue.push(Queued {
                            time,
                            id: p,
                            interesting: false,
                        }),
                        // The client's history may reach beyond what this repository has.
                        Err(Error::Missing(_)) => {}
                        Err(e) => return Err(e),
                    }
                }
            }
        } else if f & EMITTED == 0 {
            *flags.entry(id).or_default() |= EMITTED;
            emitted.push(id);
            if emitted.len().is_multiple_of(1024) {
                progress(emitted.len());
            }
            for p in parents {
                let pf = flags.entry(p).or_default();
                if *pf & (QUEUED | UNINTERESTING) == 0 {
                    *pf |= QUEUED;
                    let time = load(&p, &mut commits)?;
                    queue.push(Queued {
                        time,
                        id: p,
                        interesting: true,
                    });
                    interesting_queued += 1;
                }
            }
        }
        if interesting_queued == 0 {
            if slop == 0 {
                break;
            }
            slop -= 1;
        }
    }

    let selected: Vec<ObjectId> = emitted
        .into_iter()
        .filter(|id| flags.get(id).copied().unwrap_or(0) & UNINTERESTING == 0)
        .collect();

    // Trees of the boundary are known to the client: never send them, and use them as thin bases.
    let mut edges: Vec<ObjectId> = Vec::new();
    let mut edge_set = HashSet::new();
    // The boundary (uninteresting parents of what is sent) first: their trees are the likely
    // delta bases; the client's other haves may be far older and only cost tree walks.
    let mut candidates: Vec<ObjectId> = Vec::new();
    for c in selected.iter().filter(|c| !grafts.contains(*c)) {
        if let Some(commit) = commits.get(c) {
            candidates.extend(commit.parents.iter().copied());
        }
    }
    candidates.extend(haves.iter().copied());
    for id in &candidates {
        if flags.get(id).copied().unwrap_or(0) & UNINTERESTING != 0 && edge_set.insert(*id) {
            edges.push(*id);
        }
    }
    for edge in edges.iter().take(MAX_EDGE_TREES) {
        let Some(commit) = commits.get(edge) else {
            continue;
        };
        selection.client_has.insert(*edge);
        mark_tree(reader, commit.tree, &mut selection.client_has, None)?;
    }
    for id in &edges {
        selection.client_has.insert(*id);
    }

    seen.extend(selection.client_has.iter().copied());
    selection.commits = selected.len();
    let wanted: HashSet<&ObjectId> = wants.iter().collect();
    for id in &selected {
        let keep = filter.is_none_or(|f| f.keeps_kind(Kind::Commit)) || wanted.contains(id);
        if keep && seen.insert(*id) {
            selection.objects.push(*id);
        }
    }
    // Trees a want names are sent themselves whatever the filter says.
    let named_trees: HashSet<ObjectId> = root_trees.iter().copied().collect();
    for id in &selected {
        if let Some(c) = commits.get(id) {
            root_trees.push(c.tree);
        }
    }
    match filter {
        None => {
            for tree in root_trees {
                mark_tree(reader, tree, &mut seen, Some(&mut selection.objects))?;
            }
        }
        Some(f) => mark_trees_filtered(
            reader,
            &root_trees,
            &named_trees,
            f,
            &mut seen,
            &mut selection.objects,
        )?,
    }
    progress(selection.objects.len());
    Ok(selection)
}

/// Add the trees and blobs under `roots` that `filter` keeps, level by level, so each object
/// is judged at the smallest depth it appears at (what `tree:<depth>` is about).
fn mark_trees_filtered(
    reader: &Reader<'_>,
    roots: &[ObjectId],
    named: &HashSet<ObjectId>,
    filter: Filter,
    seen: &mut HashSet<ObjectId>,
    out: &mut Vec<ObjectId>,
) -> Result<()> {
    let mut level: Vec<ObjectId> = Vec::new();
    let mut queued: HashSet<ObjectId> = HashSet::new();
    for root in roots {
        if queued.insert(*root) {
            level.push(*root);
        }
    }
    let mut depth = 0u64;
    let mut buf = Vec::new();
    while !level.is_empty() {
        let mut next = Vec::new();
        for tree in level {
            // Known to the client (an edge of the negotiation), with everything below it.
            if seen.contains(&tree) {
                continue;
            }
            let keep = named.contains(&tree)
                || match filter {
                    Filter::TreeDepth(max) => depth < max,
                    Filter::ObjectType(kind) => kind == Kind::Tree,
                    Filter::BlobNone | Filter::BlobLimit(_) => true,
                };
            if keep {
                seen.insert(tree);
                out.push(tree);
            }
            // Below the depth limit nothing is kept; no need to read further.
            if matches!(filter, Filter::TreeDepth(max) if depth + 1 >= max) {
                continue;
            }
            reader.read_kind(&tree, Kind::Tree, &mut buf)?;
            let mut blobs = Vec::new();
            for_each_tree_entry(&tree, &buf, |entry| {
                if entry.is_gitlink() {
                    return;
                }
                if entry.is_tree() {
                    if queued.insert(entry.id) {
                        next.push(entry.id);
                    }
                } else if !seen.contains(&entry.id) {
                    blobs.push(entry.id);
                }
            })?;
            for blob in blobs {
                let keep = match filter {
                    Filter::BlobNone => false,
                    Filter::BlobLimit(limit) => match reader.header(&blob)? {
                        Some((_, size)) => size < limit,
                        None => return Err(Error::Missing(blob)),
                    },
                    Filter::TreeDepth(max) => depth + 1 < max,
                    Filter::ObjectType(kind) => kind == Kind::Blob,
                };
                if keep && seen.insert(blob) {
                    out.push(blob);
                }
            }
        }
        level = next;
        depth += 1;
    }
    Ok(())
}

/// Add `tree` and everything under it that is not yet in `seen` to `seen` (and to `out`).
fn mark_tree(
    reader: &Reader<'_>,
    tree: ObjectId,
    seen: &mut HashSet<ObjectId>,
    mut out: Option<&mut Vec<ObjectId>>,
) -> Result<()> {
    if !seen.insert(tree) {
        return Ok(());
    }
    if let Some(out) = out.as_deref_mut() {
        out.push(tree);
    }
    let mut stack = vec![tree];
    let mut buf = Vec::new();
    while let Some(id) = stack.pop() {
        reader.read_kind(&id, Kind::Tree, &mut buf)?;
        for_each_tree_entry(&id, &buf, |entry| {
            if entry.is_gitlink() || !seen.insert(entry.id) {
                return;
            }
            if let Some(out) = out.as_deref_mut() {
                out.push(entry.id);
            }
            if entry.is_tree() {
                stack.push(entry.id);
            }
        })?;
    }
    Ok(())
}

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
    pub depth: Option<u32>,
    pub relative: bool,
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
        let index = &pack.bundle.index;
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn filter_specs_parse_as_git_writes_them() {
        assert_eq!(Filter::parse("blob:none"), Ok(Filter::BlobNone));
        assert_eq!(Filter::parse("blob:limit=0"), Ok(Filter::BlobLimit(0)));
        assert_eq!(
            Filter::parse("blob:limit=1024"),
            Ok(Filter::BlobLimit(1024))
        );
        assert_eq!(Filter::parse("blob:limit=2k"), Ok(Filter::BlobLimit(2048)));
        assert_eq!(
            Filter::parse("blob:limit=3M"),
            Ok(Filter::BlobLimit(3 << 20))
        );
        assert_eq!(
            Filter::parse("blob:limit=1g"),
            Ok(Filter::BlobLimit(1 << 30))
        );
        assert_eq!(Filter::parse("tree:0"), Ok(Filter::TreeDepth(0)));
        assert_eq!(Filter::parse("tree:3"), Ok(Filter::TreeDepth(3)));
        assert_eq!(
            Filter::parse("object:type=blob"),
            Ok(Filter::ObjectType(Kind::Blob))
        );
        for bad in [
            "",
            "blob:some",
            "blob:limit=",
            "blob:limit=1x",
            "blob:limit=k",
            "blob:limit=99999999999999999999g",
            "tree:-1",
            "tree:",
            "object:type=file",
            "sparse:oid=main:x",
            "combine:blob:none+tree:0",
        ] {
            let err = Filter::parse(bad).unwrap_err();
            assert!(err.contains("unsupported filter spec"), "{bad}: {err}");
        }
    }
}
