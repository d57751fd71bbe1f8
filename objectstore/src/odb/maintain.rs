//! Maintenance: repack a repository's packs into one, so lookups stay fast and a full clone
//! can stream the stored pack as it is.
//!
//! Safety against concurrent pushes comes from what is kept, not from locks:
//! - every object reachable from the refs read at the start is kept;
//! - every object of a pack younger than `prune_after` is kept too, reachable or not: a push
//!   uploads its pack before it commits its refs, so a pack being pushed right now is young
//!   and its objects survive into the new pack even if the refs do not name them yet;
//! - the new pack is published (`.pack`, then `.idx`) before anything is deleted, and a
//!   replaced pack is deleted only once all its kept objects are in the new pack, and only
//!   `delete_after` after it was replaced (readers that listed it may still be using it).
//!
//! Unreachable objects of old packs are dropped: git's `gc --prune` in the same spirit.

use std::collections::HashSet;
use std::io::{BufReader, BufWriter, Write};
use std::path::Path;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use bytes::Bytes;
use gix_hash::ObjectId;

use std::sync::Arc;

use super::{generate, ingest, walk, Error, ObjectDb, Pack, Result};
use crate::bucket::PutMode;

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
    pub packs_before: usize,
    pub new_pack: Option<String>,
    pub objects: usize,
    pub dropped_unreachable: usize,
    pub deleted_packs: usize,
}

fn now_secs() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs() as i64)
}

/// The start of every run: list the packs, delete those replaced long enough ago (marked by
/// an earlier run), and return the report so far, the listing and the packs left to work on.
fn begin(
    db: &ObjectDb,
    options: Options,
    runtime: &tokio::runtime::Handle,
) -> Result<(Report, Vec<crate::bucket::ObjectMeta>, Vec<Arc<Pack>>)> {
    let pack_dir = format!("{}objects/pack/", db.prefix());
    let listing = runtime.block_on(db.bucket().list(&pack_dir))?;
    let gone = delete_replaced(db, &listing, &pack_dir, options, runtime)?;
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

/// Repack the repository of `db` (whose pack list must be fresh) given the ref tips `tips`.
/// Runs on a blocking thread; bucket calls go through `runtime`.
pub fn repack(
    db: &ObjectDb,
    tips: &[ObjectId],
    staging: &Path,
    options: Options,
    runtime: &tokio::runtime::Handle,
) -> Result<Report> {
    let (mut report, listing, remaining) = begin(db, options, runtime)?;
    let pack_dir = format!("{}objects/pack/", db.prefix());
    let age_of = |name: &str| -> i64 {
        listing
            .iter()
            .find(|m| m.key == format!("{pack_dir}{name}.idx"))
            .map_or(0, |m| now_secs() - m.last_modified)
    };
    let db = &db.with_packs(remaining);
    if db.packs().len() <= 1 {
        return Ok(report);
    }

    let reader = db.reader();
    let selection = walk::select(&reader, tips, &[], &HashSet::new(), None, &mut |_| {})?;
    let mut keep: HashSet<ObjectId> = selection.objects.iter().copied().collect();
    let mut objects = selection.objects;
    for pack in db.packs() {
        let young = age_of(&pack.name) < options.prune_after.as_secs() as i64;
        let index = &pack.bundle.index;
        for i in 0..index.num_objects() {
            let id = index.oid_at_index(i).to_owned();
            if keep.contains(&id) {
                continue;
            }
            if young {
                keep.insert(id);
                objects.push(id);
            } else {
                report.dropped_unreachable += 1;
            }
        }
    }
    report.objects = objects.len();

    std::fs::create_dir_all(staging)?;
    let dir = tempfile::Builder::new()
        .prefix("repack-")
        .tempdir_in(staging)?;
    let path = dir.path().join("repack.pack");
    {
        let mut out = BufWriter::with_capacity(1 << 20, std::fs::File::create(&path)?);
        generate::write_pack(
            db,
            &objects,
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
    let mut input = BufReader::with_capacity(1 << 20, std::fs::File::open(&path)?);
    let ingested = ingest::index_pack(db, &mut input, staging, ingest::Limits::default())?;
    if ingested.num_objects as usize != objects.len() {
        return Err(Error::InvalidPack(
            "the repacked pack does not hold every kept object".into(),
        ));
    }
    runtime.block_on(ingested.publish(db))?;
    let Some(new_pack) = ingested.pack.clone() else {
        return Err(Error::InvalidPack("the repacked pack is empty".into()));
    };
    let new_name = new_pack.name.clone();
    report.new_pack = Some(new_name.clone());

    // Mark every replaced pack; delete it now or in a later run.
    let replaced: Vec<&Pack> = db
        .packs()
        .iter()
        .map(|p| p.as_ref())
        .filter(|p| p.name != new_name)
        .collect();
    report.deleted_packs += mark_replaced(
        db,
        &new_pack,
        &replaced,
        &|id| keep.contains(id),
        options,
        runtime,
    )?;
    Ok(report)
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

/// Merge the smallest packs of the repository of `db` (whose pack list must be fresh) into one,
/// as [`geometric_split`] says, every object kept: what runs after pushes, cheap because it
/// reads and writes the small packs only. [`repack`] is the full run that leaves one pack.
pub fn roll_up(
    db: &ObjectDb,
    staging: &Path,
    options: Options,
    runtime: &tokio::runtime::Handle,
) -> Result<Report> {
    let (mut report, _, mut packs) = begin(db, options, runtime)?;
    packs.sort_by_key(|p| p.num_objects());
    let counts: Vec<u64> = packs.iter().map(|p| u64::from(p.num_objects())).collect();
    let split = geometric_split(&counts);
    if split < 2 {
        return Ok(report);
    }
    let merged = &packs[..split];
    std::fs::create_dir_all(staging)?;
    let dir = tempfile::Builder::new()
        .prefix("roll-up-")
        .tempdir_in(staging)?;
    let path = dir.path().join("roll-up.pack");
    let stats = {
        let mut out = BufWriter::with_capacity(1 << 20, std::fs::File::create(&path)?);
        let stats = generate::write_all_objects(merged, false, &mut out, &mut |_, _| {})?;
        out.flush()?;
        stats
    };
    let mut input = BufReader::with_capacity(1 << 20, std::fs::File::open(&path)?);
    let ingested = ingest::index_pack(db, &mut input, staging, ingest::Limits::default())?;
    if ingested.num_objects as usize != stats.objects {
        return Err(Error::InvalidPack(
            "the rolled-up pack does not hold every object".into(),
        ));
    }
    runtime.block_on(ingested.publish(db))?;
    let Some(new_pack) = ingested.pack.clone() else {
        return Err(Error::InvalidPack("the rolled-up pack is empty".into()));
    };
    report.objects = stats.objects;
    report.new_pack = Some(new_pack.name.clone());
    let replaced: Vec<&Pack> = merged
        .iter()
        .map(|p| p.as_ref())
        .filter(|p| p.name != new_pack.name)
        .collect();
    report.deleted_packs += mark_replaced(db, &new_pack, &replaced, &|_| true, options, runtime)?;
    Ok(report)
}

/// Mark every pack of `replaced` as replaced by `new_pack`, after checking that it holds each
/// of their objects that `kept` says is kept; delete them at once when there is no grace.
/// Returns how many were deleted.
fn mark_replaced(
    db: &ObjectDb,
    new_pack: &Pack,
    replaced: &[&Pack],
    kept: &dyn Fn(&gix_hash::oid) -> bool,
    options: Options,
    runtime: &tokio::runtime::Handle,
) -> Result<usize> {
    let pack_dir = format!("{}objects/pack/", db.prefix());
    let mut deleted = 0;
    for pack in replaced {
        let index = &pack.bundle.index;
        let contained = (0..index.num_objects())
            .map(|i| index.oid_at_index(i))
            .filter(|id| kept(id))
            .all(|id| new_pack.lookup(id).is_some());
        if !contained {
            return Err(Error::InvalidPack(format!(
                "{} is not contained in the new pack",
                pack.name
            )));
        }
        let marker = format!("{pack_dir}{}.replaced", pack.name);
        runtime.block_on(db.bucket().put(
            &marker,
            Bytes::from(now_secs().to_string()),
            PutMode::Overwrite,
        ))?;
        if options.delete_after.is_zero() {
            delete_pack(db, &pack_dir, &pack.name, runtime)?;
            deleted += 1;
        }
    }
    Ok(deleted)
}

/// Delete the packs whose replacement marker is older than `delete_after`.
fn delete_replaced(
    db: &ObjectDb,
    listing: &[crate::bucket::ObjectMeta],
    pack_dir: &str,
    options: Options,
    runtime: &tokio::runtime::Handle,
) -> Result<HashSet<String>> {
    let mut deleted = HashSet::new();
    for meta in listing {
        let Some(name) = meta
            .key
            .strip_prefix(pack_dir)
            .and_then(|k| k.strip_suffix(".replaced"))
        else {
            continue;
        };
        if now_secs() - meta.last_modified >= options.delete_after.as_secs() as i64 {
            delete_pack(db, pack_dir, name, runtime)?;
            deleted.insert(name.to_owned());
        }
    }
    Ok(deleted)
}

/// Remove a pack: the `.idx` first (the pack becomes invisible), then the data, then the marker.
fn delete_pack(
    db: &ObjectDb,
    pack_dir: &str,
    name: &str,
    runtime: &tokio::runtime::Handle,
) -> Result<()> {
    let bucket = db.bucket();
    for ext in ["idx", "pack", "replaced"] {
        runtime.block_on(bucket.delete(&format!("{pack_dir}{name}.{ext}")))?;
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
