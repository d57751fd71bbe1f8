//! What a fetch must send: everything reachable from the wants and not from the haves.
//!
//! In four phases, as git's `rev-list --objects` does it: [`Walk::seed`] queues the wants and
//! haves, [`Walk::paint`] walks commits newest first, painting what the haves reach as
//! uninteresting, [`Walk::mark_boundary`] marks the trees of the boundary as known to the
//! client (never sent, usable as thin-pack bases), and [`Walk::collect`] gathers the commits,
//! trees and blobs to send, through the partial-clone filter if there is one.

use std::collections::{BinaryHeap, HashMap, HashSet};

use gix_hash::ObjectId;
use gix_object::Kind;

use super::{Filter, Selection};
use crate::odb::object::{for_each_tree_entry, tag_target, Commit};
use crate::odb::{Error, Reader, Result};

/// Edge commits whose trees are marked as known to the client. Each costs a walk of its whole
/// tree; past this many, objects the client may already have are sent again instead.
const MAX_EDGE_TREES: usize = 32;

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

/// The state of one selection.
struct Walk<'r, 'db> {
    reader: &'r Reader<'db>,
    flags: HashMap<ObjectId, u8>,
    commits: HashMap<ObjectId, Commit>,
    queue: BinaryHeap<Queued>,
    interesting_queued: usize,
    selection: Selection,
    seen: HashSet<ObjectId>,
    /// Trees to send with everything below them: wanted trees, then the selected commits'.
    root_trees: Vec<ObjectId>,
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
    let mut walk = Walk {
        reader,
        flags: HashMap::new(),
        commits: HashMap::new(),
        queue: BinaryHeap::new(),
        interesting_queued: 0,
        selection: Selection::default(),
        seen: HashSet::new(),
        root_trees: Vec::new(),
    };
    walk.seed(wants, haves, filter)?;
    let selected = walk.paint(grafts, progress)?;
    walk.mark_boundary(&selected, haves, grafts)?;
    walk.collect(&selected, wants, filter)?;
    progress(walk.selection.objects.len());
    Ok(walk.selection)
}

impl Walk<'_, '_> {
    fn flag(&self, id: &ObjectId) -> u8 {
        self.flags.get(id).copied().unwrap_or(0)
    }

    /// Parse a commit (once) and queue it.
    fn enqueue(&mut self, id: ObjectId, interesting: bool) -> Result<()> {
        let time = match self.commits.get(&id) {
            Some(c) => c.time,
            None => {
                let c = self.reader.commit(&id)?;
                let t = c.time;
                self.commits.insert(id, c);
                t
            }
        };
        self.queue.push(Queued {
            time,
            id,
            interesting,
        });
        if interesting {
            self.interesting_queued += 1;
        }
        Ok(())
    }

    /// Phase 1: queue the haves' commits as uninteresting and the wants' as interesting;
    /// wanted tags, trees and blobs are taken as they are.
    fn seed(
        &mut self,
        wants: &[ObjectId],
        haves: &[ObjectId],
        filter: Option<Filter>,
    ) -> Result<()> {
        for have in haves {
            let (peeled, kind) = match self.reader.peel(have) {
                Ok(p) => p,
                Err(Error::Missing(_)) => continue,
                Err(e) => return Err(e),
            };
            if kind == Kind::Commit && self.flag(&peeled) & UNINTERESTING == 0 {
                *self.flags.entry(peeled).or_default() |= UNINTERESTING | QUEUED;
                self.enqueue(peeled, false)?;
            }
        }
        let mut buf = Vec::new();
        for want in wants {
            let mut current = *want;
            loop {
                match self.reader.read(&current, &mut buf)? {
                    Kind::Tag => {
                        let keep =
                            current == *want || filter.is_none_or(|f| f.keeps_kind(Kind::Tag));
                        if keep && self.seen.insert(current) {
                            self.selection.objects.push(current);
                        }
                        current = tag_target(&current, &buf)?;
                    }
                    Kind::Commit => {
                        let f = self.flags.entry(current).or_default();
                        if *f & QUEUED == 0 {
                            *f |= QUEUED;
                            self.enqueue(current, true)?;
                        }
                        break;
                    }
                    Kind::Tree => {
                        self.root_trees.push(current);
                        break;
                    }
                    Kind::Blob => {
                        if self.seen.insert(current) {
                            self.selection.objects.push(current);
                        }
                        break;
                    }
                }
            }
        }
        Ok(())
    }

    /// Phase 2: date-ordered painting, interesting from the wants and uninteresting from the
    /// haves, until only uninteresting commits are left (plus a little slop for clock skew).
    /// Returns the commits to send, newest first.
    fn paint(
        &mut self,
        grafts: &HashSet<ObjectId>,
        progress: &mut dyn FnMut(usize),
    ) -> Result<Vec<ObjectId>> {
        let mut emitted: Vec<ObjectId> = Vec::new();
        let mut slop = 8usize;
        while let Some(Queued {
            id, interesting, ..
        }) = self.queue.pop()
        {
            if interesting {
                self.interesting_queued = self.interesting_queued.saturating_sub(1);
            }
            let f = self.flag(&id);
            let parents: Vec<ObjectId> = if grafts.contains(&id) {
                Vec::new()
            } else {
                self.commits
                    .get(&id)
                    .map(|c| c.parents.clone())
                    .unwrap_or_default()
            };
            if f & UNINTERESTING != 0 {
                for p in parents {
                    let pf = self.flags.entry(p).or_default();
                    if *pf & UNINTERESTING == 0 {
                        *pf |= UNINTERESTING | QUEUED;
                        match self.enqueue(p, false) {
                            Ok(()) => {}
                            // The client's history may reach beyond what this repository has.
                            Err(Error::Missing(_)) => {}
                            Err(e) => return Err(e),
                        }
                    }
                }
            } else if f & EMITTED == 0 {
                *self.flags.entry(id).or_default() |= EMITTED;
                emitted.push(id);
                if emitted.len().is_multiple_of(1024) {
                    progress(emitted.len());
                }
                for p in parents {
                    let pf = self.flags.entry(p).or_default();
                    if *pf & (QUEUED | UNINTERESTING) == 0 {
                        *pf |= QUEUED;
                        self.enqueue(p, true)?;
                    }
                }
            }
            if self.interesting_queued == 0 {
                if slop == 0 {
                    break;
                }
                slop -= 1;
            }
        }
        Ok(emitted
            .into_iter()
            .filter(|id| self.flag(id) & UNINTERESTING == 0)
            .collect())
    }

    /// Phase 3: the trees of the boundary are known to the client: never sent, and usable as
    /// thin-pack bases. The boundary (uninteresting parents of what is sent) comes first: its
    /// trees are the likely delta bases; the client's other haves may be far older and only
    /// cost tree walks.
    fn mark_boundary(
        &mut self,
        selected: &[ObjectId],
        haves: &[ObjectId],
        grafts: &HashSet<ObjectId>,
    ) -> Result<()> {
        let mut edges: Vec<ObjectId> = Vec::new();
        let mut edge_set = HashSet::new();
        let mut candidates: Vec<ObjectId> = Vec::new();
        for c in selected.iter().filter(|c| !grafts.contains(*c)) {
            if let Some(commit) = self.commits.get(c) {
                candidates.extend(commit.parents.iter().copied());
            }
        }
        candidates.extend(haves.iter().copied());
        for id in &candidates {
            if self.flag(id) & UNINTERESTING != 0 && edge_set.insert(*id) {
                edges.push(*id);
            }
        }
        for edge in edges.iter().take(MAX_EDGE_TREES) {
            let Some(tree) = self.commits.get(edge).map(|c| c.tree) else {
                continue;
            };
            self.selection.client_has.insert(*edge);
            mark_tree(self.reader, tree, &mut self.selection.client_has, None)?;
        }
        for id in &edges {
            self.selection.client_has.insert(*id);
        }
        Ok(())
    }

    /// Phase 4: the selected commits and what their trees hold, except what the client has;
    /// through the filter of a partial clone. Trees a want names are sent whatever the filter
    /// says.
    fn collect(
        &mut self,
        selected: &[ObjectId],
        wants: &[ObjectId],
        filter: Option<Filter>,
    ) -> Result<()> {
        self.seen.extend(self.selection.client_has.iter().copied());
        self.selection.commits = selected.len();
        let wanted: HashSet<&ObjectId> = wants.iter().collect();
        for id in selected {
            let keep = filter.is_none_or(|f| f.keeps_kind(Kind::Commit)) || wanted.contains(id);
            if keep && self.seen.insert(*id) {
                self.selection.objects.push(*id);
            }
        }
        let named_trees: HashSet<ObjectId> = self.root_trees.iter().copied().collect();
        for id in selected {
            if let Some(c) = self.commits.get(id) {
                self.root_trees.push(c.tree);
            }
        }
        let roots = std::mem::take(&mut self.root_trees);
        match filter {
            None => {
                for tree in roots {
                    mark_tree(
                        self.reader,
                        tree,
                        &mut self.seen,
                        Some(&mut self.selection.objects),
                    )?;
                }
            }
            Some(f) => mark_trees_filtered(
                self.reader,
                &roots,
                &named_trees,
                f,
                &mut self.seen,
                &mut self.selection.objects,
            )?,
        }
        Ok(())
    }
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
pub(super) fn mark_tree(
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
