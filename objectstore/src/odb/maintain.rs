//! Maintenance: merge a repository's packs so lookups stay fast and full clones can stream
//! stored packs as they are.
//!
//! Safety against concurrent pushes comes from what is kept, not from locks:
//! - every object reachable from the refs read at the start is kept;
//! - every object of a pack younger than `prune_after` is kept too, reachable or not: a push
//!   uploads its pack before it commits its refs, so a pack being pushed right now is young
//!   and its objects survive into the new packs even if the refs do not name them yet;
//! - new packs are published (`.pack`, `.tips`, then `.idx`) before anything is deleted, and a
//!   replaced pack is deleted only once all its kept objects are in the new packs, and only
//!   `delete_after` after it was replaced (readers that listed it may still be using it).
//!
//! A full [`repack`] writes the reachable objects into one pack recorded as holding exactly what
//! the refs it started from reach (a full clone streams it as it is while those are the refs),
//! and young unreachable objects into a second pack, recorded as within the tips of the packs
//! they came from. Unreachable objects of old packs are dropped: git's `gc --prune` in the
//! same spirit. A [`roll_up`] merges the smallest packs only, dropping nothing.
//!
//! Each run is async: listing, uploads and deletes are bucket calls; choosing objects, writing
//! and indexing the new packs run on blocking threads.

use std::collections::HashSet;
use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use bytes::Bytes;
use gix_hash::ObjectId;

use super::index::{self, Checks, Indexed, Limits};
use super::{generate, walk, Error, ObjectDb, Pack, Reach, Result};
use crate::bucket::{ObjectMeta, PutMode};
use crate::budget::MemoryBudget;
use crate::layout::PackFile;

/// How maintenance treats unreachable objects and replaced packs.
#[derive(Debug, Clone, Copy)]
pub struct Options {
    /// Objects in packs younger than this are kept even when unreachable.
    pub prune_after: Duration,
    /// Replaced packs are deleted once they have been replaced for this long.
    pub delete_after: Duration,
}

impl Default for Options {
    fn default() -> Self {
        Options {
            prune_after: Duration::from_secs(3600),
            delete_after: Duration::from_secs(600),
        }
    }
}

/// What a run did.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Report {
    /// Visible packs when the run started.
    pub packs_before: usize,
    /// The pack written, if any.
    pub new_pack: Option<String>,
    /// The pack of young objects the refs did not reach when the run started, if any.
    pub unreachable_pack: Option<String>,
    /// Objects in the new packs.
    pub objects: usize,
    /// Unreachable objects of old packs left out.
    pub dropped_unreachable: usize,
    /// Replaced packs deleted by this run.
    pub deleted_packs: usize,
}

/// Where a run works and what it may use.
#[derive(Debug, Clone)]
pub struct Workspace {
    /// Local directory for the packs being written.
    pub staging: PathBuf,
    /// The memory budget indexing draws on.
    pub budget: Arc<MemoryBudget>,
}

fn now_secs() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs() as i64)
}

/// Run `f` on a blocking thread.
async fn blocking<T: Send + 'static>(f: impl FnOnce() -> Result<T> + Send + 'static) -> Result<T> {
    tokio::task::spawn_blocking(f)
        .await
        .map_err(|e| Error::Rejected(format!("a maintenance task failed: {e}")))?
}

/// The start of every run: list the packs, delete those replaced long enough ago (marked by
/// an earlier run), and return the report so far, the listing and the packs left to work on.
async fn begin(
    db: &ObjectDb,
    options: Options,
) -> Result<(Report, Vec<ObjectMeta>, Vec<Arc<Pack>>)> {
    let listing = db.bucket().list(&db.keys().pack_dir()).await?;
    let mut gone = HashSet::new();
    for meta in &listing {
        let Some((name, PackFile::Replaced)) = db.keys().parse_pack_file(&meta.key) else {
            continue;
        };
        if now_secs() - meta.last_modified >= options.delete_after.as_secs() as i64 {
            delete_pack(db, name).await?;
            gone.insert(name.to_owned());
        }
    }
    let report = Report {
        packs_before: db.packs().len(),
        deleted_packs: gone.len(),
        ..Report::default()
    };
    let remaining = db
        .packs()
        .iter()
        .filter(|p| !gone.contains(&p.name))
        .cloned()
        .collect();
    Ok((report, listing, remaining))
}

/// Index a pack file this process wrote, every object already checked.
fn index_own_pack(db: &ObjectDb, path: &Path, workspace: &Workspace) -> Result<Indexed> {
    let limits = Limits::trusted(u64::from(u32::MAX));
    let reader = db.reader();
    let mut bases = |id: &gix_hash::oid| {
        let mut buf = Vec::new();
        Ok(reader.try_read(id, &mut buf)?.map(|kind| (kind, buf)))
    };
    index::index_file(
        path,
        &workspace.staging,
        db.object_hash(),
        &limits,
        &workspace.budget,
        Checks::NONE,
        &mut bases,
    )
}

/// Repack the repository of `db` (whose pack list must be fresh) given the ref tips `tips`:
/// reachable objects into one pack, young unreachable ones into another.
pub async fn repack(
    db: &ObjectDb,
    tips: &[ObjectId],
    workspace: &Workspace,
    options: Options,
) -> Result<Report> {
    let (mut report, listing, remaining) = begin(db, options).await?;
    let mut tip_set: Vec<ObjectId> = tips.to_vec();
    tip_set.sort();
    tip_set.dedup();
    let already_done = match remaining.as_slice() {
        [] => true,
        [only] => matches!(&only.reach, Reach::Exactly(t) if {
            let mut t = t.clone();
            t.sort();
            t.dedup();
            t == tip_set
        }),
        _ => false,
    };
    if already_done {
        return Ok(report);
    }
    let young: HashSet<String> = remaining
        .iter()
        .filter(|p| {
            let idx = db.keys().pack_file(&p.name, PackFile::Idx);
            let age = listing
                .iter()
                .find(|m| m.key == idx)
                .map_or(0, |m| now_secs() - m.last_modified);
            age < options.prune_after.as_secs() as i64
        })
        .map(|p| p.name.clone())
        .collect();
    let db = db.with_packs(remaining);
    let (written, plan) = {
        let db = db.clone();
        let tips = tip_set.clone();
        let workspace = workspace.clone();
        blocking(move || write_repack(&db, &tips, &young, &workspace)).await?
    };
    report.objects = plan.reachable + plan.unreachable;
    report.dropped_unreachable = plan.dropped;
    let mut new_packs: Vec<(Indexed, Reach)> = Vec::new();
    for (indexed, reach) in written {
        if indexed.name.is_some() {
            new_packs.push((indexed, reach));
        }
    }
    for (indexed, reach) in &new_packs {
        indexed
            .publish(db.bucket().as_ref(), db.keys(), reach)
            .await?;
        match reach {
            Reach::Exactly(_) => report.new_pack = indexed.name.clone(),
            _ => report.unreachable_pack = indexed.name.clone(),
        }
    }
    let opened: Vec<Arc<Pack>> = new_packs
        .iter()
        .map(|(i, _)| i.open())
        .collect::<Result<Vec<_>>>()?
        .into_iter()
        .flatten()
        .collect();
    let new_names: HashSet<String> = opened.iter().map(|p| p.name.clone()).collect();
    let replaced: Vec<Arc<Pack>> = db
        .packs()
        .iter()
        .filter(|p| !new_names.contains(&p.name))
        .cloned()
        .collect();
    let kept = plan.kept;
    report.deleted_packs += mark_replaced(
        &db,
        &opened,
        &replaced,
        Arc::new(move |id| kept.contains(id)),
        options,
    )
    .await?;
    db.cache().forget_list(db.keys());
    Ok(report)
}

/// What a repack chose.
struct Plan {
    reachable: usize,
    unreachable: usize,
    dropped: usize,
    kept: HashSet<ObjectId>,
}

/// The CPU part of a repack: choose, write and index the new packs.
fn write_repack(
    db: &ObjectDb,
    tips: &[ObjectId],
    young: &HashSet<String>,
    workspace: &Workspace,
) -> Result<(Vec<(Indexed, Reach)>, Plan)> {
    let reader = db.reader();
    let selection = walk::select(&reader, tips, &[], &HashSet::new(), None, &mut |_| {})?;
    let mut kept: HashSet<ObjectId> = selection.objects.iter().copied().collect();
    let reachable = selection.objects;
    let mut unreachable = Vec::new();
    let mut dropped = 0;
    // The young objects kept apart are within what their packs' tips reach: a push committing
    // while this run works has its tips become reachable, and its objects with them.
    let mut young_tips: Option<Vec<ObjectId>> = Some(Vec::new());
    for pack in db.packs() {
        let is_young = young.contains(&pack.name);
        let index = &pack.index;
        let mut contributed = false;
        for i in 0..index.num_objects() {
            let id = index.oid_at_index(i).to_owned();
            if kept.contains(&id) {
                continue;
            }
            if is_young {
                kept.insert(id);
                unreachable.push(id);
                contributed = true;
            } else {
                dropped += 1;
            }
        }
        if contributed {
            match (pack.reach.tips(), young_tips.as_mut()) {
                (Some(t), Some(all)) => all.extend_from_slice(t),
                _ => young_tips = None,
            }
        }
    }
    let young_reach = match young_tips {
        Some(mut t) => {
            t.sort();
            t.dedup();
            Reach::Within(t)
        }
        None => Reach::Unknown,
    };
    std::fs::create_dir_all(&workspace.staging)?;
    let dir = tempfile::Builder::new()
        .prefix("repack-")
        .tempdir_in(&workspace.staging)?;
    let mut written = Vec::new();
    for (objects, reach, file) in [
        (&reachable, Reach::Exactly(tips.to_vec()), "reachable.pack"),
        (&unreachable, young_reach, "young.pack"),
    ] {
        if objects.is_empty() {
            continue;
        }
        let path = dir.path().join(file);
        {
            let mut out = BufWriter::with_capacity(1 << 20, std::fs::File::create(&path)?);
            generate::write_pack(
                db,
                objects,
                &HashSet::new(),
                generate::Options {
                    ofs_delta: true,
                    thin: false,
                },
                &mut out,
                &mut |_, _| {},
            )?;
            out.flush()?;
        }
        let indexed = index_own_pack(db, &path, workspace)?;
        if indexed.num_objects != objects.len() {
            return Err(Error::Rejected(
                "a repacked pack does not hold every kept object".into(),
            ));
        }
        written.push((indexed, reach));
    }
    let plan = Plan {
        reachable: reachable.len(),
        unreachable: unreachable.len(),
        dropped,
        kept,
    };
    Ok((written, plan))
}

/// How many of the smallest packs a geometric roll-up merges, given every pack's object count
/// in ascending order: all of them up to the last pack holding fewer than twice the objects of
/// all smaller packs together. What remains is a progression in which each pack is at least
/// twice everything smaller, so a repository keeps a logarithmic number of packs and an object
/// is rewritten a logarithmic number of times, however many pushes come. 0: nothing to do.
pub fn geometric_split(ascending: &[u64]) -> usize {
    let mut smaller = 0u64;
    let mut split = 0;
    for (i, count) in ascending.iter().enumerate() {
        if i > 0 && *count < smaller.saturating_mul(2) {
            split = i + 1;
        }
        smaller = smaller.saturating_add(*count);
    }
    split
}

/// The most tips a merged pack's `.tips` record lists; beyond it the record says nothing.
const MAX_MERGED_TIPS: usize = 10_000;

/// The record of a pack merged from `packs`: within every tip of theirs, when each has tips.
fn merged_reach(packs: &[Arc<Pack>]) -> Reach {
    let mut tips = Vec::new();
    for pack in packs {
        match pack.reach.tips() {
            Some(t) => tips.extend_from_slice(t),
            None => return Reach::Unknown,
        }
    }
    tips.sort();
    tips.dedup();
    if tips.len() > MAX_MERGED_TIPS {
        return Reach::Unknown;
    }
    Reach::Within(tips)
}

/// Merge the smallest packs of the repository of `db` (whose pack list must be fresh) into one,
/// as [`geometric_split`] says, every object kept: what runs after pushes, cheap because it
/// reads and writes the small packs only. [`repack`] is the full run that leaves one pack of
/// reachable objects.
pub async fn roll_up(db: &ObjectDb, workspace: &Workspace, options: Options) -> Result<Report> {
    let (mut report, _, mut packs) = begin(db, options).await?;
    packs.sort_by_key(|p| p.num_objects());
    let counts: Vec<u64> = packs.iter().map(|p| u64::from(p.num_objects())).collect();
    let split = geometric_split(&counts);
    if split < 2 {
        return Ok(report);
    }
    let merged: Vec<Arc<Pack>> = packs[..split].to_vec();
    let reach = merged_reach(&merged);
    let (indexed, objects) = {
        let db = db.clone();
        let merged = merged.clone();
        let workspace = workspace.clone();
        blocking(move || {
            std::fs::create_dir_all(&workspace.staging)?;
            let dir = tempfile::Builder::new()
                .prefix("roll-up-")
                .tempdir_in(&workspace.staging)?;
            let path = dir.path().join("roll-up.pack");
            let stats = {
                let mut out = BufWriter::with_capacity(1 << 20, std::fs::File::create(&path)?);
                let stats = generate::write_all_objects(
                    &merged,
                    db.object_hash(),
                    false,
                    &mut out,
                    &mut |_, _| {},
                )?;
                out.flush()?;
                stats
            };
            let indexed = index_own_pack(&db, &path, &workspace)?;
            if indexed.num_objects != stats.objects {
                return Err(Error::Rejected(
                    "the rolled-up pack does not hold every object".into(),
                ));
            }
            Ok((indexed, stats.objects))
        })
        .await?
    };
    indexed
        .publish(db.bucket().as_ref(), db.keys(), &reach)
        .await?;
    let Some(new_pack) = indexed.open()? else {
        return Err(Error::Rejected("the rolled-up pack is empty".into()));
    };
    report.objects = objects;
    report.new_pack = Some(new_pack.name.clone());
    let replaced: Vec<Arc<Pack>> = merged
        .into_iter()
        .filter(|p| p.name != new_pack.name)
        .collect();
    report.deleted_packs +=
        mark_replaced(db, &[new_pack], &replaced, Arc::new(|_| true), options).await?;
    db.cache().forget_list(db.keys());
    Ok(report)
}

/// Mark every pack of `replaced` as replaced, after checking that the new packs hold each of
/// its objects that `kept` says is kept; delete them at once when there is no grace period.
/// Returns how many were deleted.
async fn mark_replaced(
    db: &ObjectDb,
    new_packs: &[Arc<Pack>],
    replaced: &[Arc<Pack>],
    kept: Arc<dyn Fn(&gix_hash::oid) -> bool + Send + Sync>,
    options: Options,
) -> Result<usize> {
    {
        let new_packs = new_packs.to_vec();
        let replaced = replaced.to_vec();
        blocking(move || {
            for pack in &replaced {
                let index = &pack.index;
                let contained = (0..index.num_objects())
                    .map(|i| index.oid_at_index(i))
                    .filter(|id| kept(id))
                    .all(|id| new_packs.iter().any(|p| p.lookup(id).is_some()));
                if !contained {
                    return Err(Error::Rejected(format!(
                        "{} is not contained in the new packs",
                        pack.name
                    )));
                }
            }
            Ok(())
        })
        .await?;
    }
    let mut deleted = 0;
    for pack in replaced {
        db.bucket()
            .put(
                &db.keys().pack_file(&pack.name, PackFile::Replaced),
                Bytes::from(now_secs().to_string()),
                PutMode::Overwrite,
            )
            .await?;
        if options.delete_after.is_zero() {
            delete_pack(db, &pack.name).await?;
            deleted += 1;
        }
    }
    Ok(deleted)
}

/// Remove a pack: the `.idx` first (the pack becomes invisible), then the data, its tips and
/// the marker.
async fn delete_pack(db: &ObjectDb, name: &str) -> Result<()> {
    for file in [
        PackFile::Idx,
        PackFile::Pack,
        PackFile::Tips,
        PackFile::Replaced,
    ] {
        db.bucket().delete(&db.keys().pack_file(name, file)).await?;
    }
    tracing::info!(pack = name, "deleted a replaced pack");
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::geometric_split;

    #[test]
    fn geometric_split_merges_the_small_packs_only() {
        // Already a progression: nothing to do.
        assert_eq!(geometric_split(&[]), 0);
        assert_eq!(geometric_split(&[500]), 0);
        assert_eq!(geometric_split(&[5, 300]), 0);
        assert_eq!(geometric_split(&[1, 2, 6, 20, 100]), 0);
        // Many pushes of a few objects on top of a big pack: the pushes merge, the big one stays.
        let mut counts = vec![3u64; 32];
        counts.push(300);
        assert_eq!(geometric_split(&counts), 32);
        // Nothing big enough to stay: everything merges.
        assert_eq!(geometric_split(&[3, 3, 3, 4]), 4);
        // A pack in the middle that is too small pulls in everything below it.
        assert_eq!(geometric_split(&[2, 3, 4, 100, 150, 1000]), 5);
    }
}
