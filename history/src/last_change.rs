//! The last commit that changed each entry of a folder: what `git log -1 -- <folder>/<name>`
//! prints for every name, from one walk.
//!
//! Running `git log -1` per entry walks history once per entry; a folder of files untouched
//! since the first commit would walk all of it each time. Here one walk carries, for every
//! commit, the names still looking for their change through it, and applies git's default
//! history simplification to each name on its own: a commit changed a name when what it
//! has there differs from every parent (a root commit, when it has the name); a merge that
//! kept one parent's version passes the name down that parent alone. The folder's tree is
//! compared first: where it is the same as a parent's, every name is the same.

use std::collections::{BinaryHeap, HashMap};

use gix_hash::ObjectId;
use gix_object::bstr::ByteSlice;
use gix_object::TreeRefIter;
use objectstore::odb::Reader;

use crate::{Error, Result};

/// Folder listings kept at most (then forgotten all at once).
const MAX_LISTINGS: usize = 4096;

type Listing = HashMap<Vec<u8>, ObjectId>;

/// Looks up the folder in commits, remembering what it read.
struct Folder<'p> {
    lookup: Option<crate::tree::PathLookup<'p>>,
    by_commit: HashMap<ObjectId, Option<ObjectId>>,
    listings: HashMap<ObjectId, Listing>,
}

impl<'p> Folder<'p> {
    /// The folder's tree in `commit`, if it is a folder there.
    fn tree_in(&mut self, reader: &Reader<'_>, commit: &ObjectId) -> Result<Option<ObjectId>> {
        if let Some(found) = self.by_commit.get(commit) {
            return Ok(*found);
        }
        let root = reader.commit(commit)?.tree;
        let found = match self.lookup.as_mut() {
            None => Some(root),
            Some(lookup) => lookup
                .at(reader, &root)?
                .filter(|(mode, _)| *mode == 0o040000)
                .map(|(_, id)| id),
        };
        self.by_commit.insert(*commit, found);
        Ok(found)
    }

    /// The entries of a folder tree, by name.
    fn listing(&mut self, reader: &Reader<'_>, tree: &ObjectId) -> Result<&Listing> {
        if !self.listings.contains_key(tree) {
            if self.listings.len() >= MAX_LISTINGS {
                self.listings.clear();
            }
            let mut buf = Vec::new();
            reader.read_kind(tree, gix_object::Kind::Tree, &mut buf)?;
            let mut listing = Listing::new();
            for entry in TreeRefIter::from_bytes(&buf, tree.kind()) {
                let entry = entry.map_err(|e| Error::Corrupt {
                    id: *tree,
                    message: e.to_string(),
                })?;
                listing.insert(entry.filename.as_bytes().to_vec(), entry.oid.to_owned());
            }
            self.listings.insert(*tree, listing);
        }
        Ok(&self.listings[tree])
    }

    /// What `name` is in the folder `tree` (none without the folder).
    fn entry(
        &mut self,
        reader: &Reader<'_>,
        tree: Option<ObjectId>,
        name: &[u8],
    ) -> Result<Option<ObjectId>> {
        match tree {
            None => Ok(None),
            Some(tree) => Ok(self.listing(reader, &tree)?.get(name).copied()),
        }
    }
}

/// For each of `names` (entries of the folder `folder`, `""` for the root, at `tip`), the
/// newest commit that changed it as `git log -1 <tip> -- <folder>/<name>` finds it; `None`
/// for a name not found within `max_visited` commits.
pub fn last_changes(
    reader: &Reader<'_>,
    tip: &ObjectId,
    folder: &str,
    names: &[&str],
    max_visited: usize,
) -> Result<Vec<Option<ObjectId>>> {
    let mut folder = Folder {
        lookup: (!folder.is_empty()).then(|| crate::tree::PathLookup::new(folder)),
        by_commit: HashMap::new(),
        listings: HashMap::new(),
    };
    let mut found: Vec<Option<ObjectId>> = vec![None; names.len()];
    let mut left = names.len();
    // The names each queued commit carries.
    let mut pending: HashMap<ObjectId, Vec<usize>> = HashMap::new();
    let mut queue: BinaryHeap<(i64, std::cmp::Reverse<u64>, ObjectId)> = BinaryHeap::new();
    let mut order = 0u64;
    pending.insert(*tip, (0..names.len()).collect());
    queue.push((reader.commit(tip)?.time, std::cmp::Reverse(0), *tip));
    let mut visited = 0usize;
    while left > 0 {
        let Some((_, _, id)) = queue.pop() else { break };
        let Some(carried) = pending.remove(&id) else {
            continue;
        };
        visited += 1;
        if visited > max_visited {
            break;
        }
        let commit = reader.commit(&id)?;
        let mine = folder.tree_in(reader, &id)?;
        let mut theirs = Vec::with_capacity(commit.parents.len());
        for parent in &commit.parents {
            theirs.push(folder.tree_in(reader, parent)?);
        }
        // Per parent, the names passed down to it.
        let mut passed: Vec<Vec<usize>> = vec![Vec::new(); commit.parents.len()];
        for n in carried {
            if found[n].is_some() {
                continue;
            }
            let name = names[n].as_bytes();
            let here = folder.entry(reader, mine, name)?;
            let mut same = None;
            for (p, tree) in theirs.iter().enumerate() {
                let equal = *tree == mine || folder.entry(reader, *tree, name)? == here;
                if equal {
                    same = Some(p);
                    break;
                }
            }
            match same {
                Some(p) => passed[p].push(n),
                None if commit.parents.is_empty() && here.is_none() => {}
                None => {
                    found[n] = Some(id);
                    left -= 1;
                }
            }
        }
        for (parent, names) in commit.parents.iter().zip(passed) {
            if names.is_empty() {
                continue;
            }
            let queued = pending.contains_key(parent);
            pending.entry(*parent).or_default().extend(names);
            if !queued {
                order += 1;
                let time = reader.commit(parent)?.time;
                queue.push((time, std::cmp::Reverse(order), *parent));
            }
        }
    }
    Ok(found)
}
