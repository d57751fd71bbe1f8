//! Receiving a pack: index it (completing a thin pack from the repository's objects), check
//! that it connects, and publish it to the bucket.

use std::io::BufRead;
use std::path::{Path, PathBuf};
use std::sync::atomic::AtomicBool;
use std::sync::Arc;

use super::{walk, Error, ObjectDb, Pack, Result};
use crate::bucket::{self, PutMode};

/// Limits on what a client may send.
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    /// The largest single object (or delta result) accepted, in bytes.
    pub max_object_bytes: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_object_bytes: 4 << 30,
        }
    }
}

/// A received pack, indexed in a local staging directory and not yet visible to anyone.
#[derive(Debug)]
pub struct Ingested {
    /// `None` for an empty pack (git sends one when the server has every object already).
    pub pack: Option<Arc<Pack>>,
    pub num_objects: u32,
    paths: Option<(PathBuf, PathBuf)>,
    _dir: tempfile::TempDir,
}

/// Read a pack from `input` and index it under `staging`. Bases missing from a thin pack are
/// taken from `db` and appended, so the stored pack is self-contained.
pub fn index_pack(
    db: &ObjectDb,
    input: &mut dyn BufRead,
    staging: &Path,
    limits: Limits,
) -> Result<Ingested> {
    std::fs::create_dir_all(staging)?;
    let dir = tempfile::Builder::new()
        .prefix("incoming-")
        .tempdir_in(staging)?;
    let interrupt = AtomicBool::new(false);
    let options = gix_pack::bundle::write::Options {
        thread_limit: Some(2),
        iteration_mode: gix_pack::data::input::Mode::Verify,
        index_version: gix_pack::index::Version::V2,
        alloc_limit_bytes: Some(limits.max_object_bytes),
        compression: gix_zlib::Compression::BEST_SPEED,
    };
    let reader = db.reader();
    let outcome = gix_pack::Bundle::write_to_directory(
        input,
        Some(dir.path()),
        &mut gix_utils::progress::Discard,
        &interrupt,
        Some(&reader),
        gix_hash::Kind::Sha1,
        options,
    )
    .map_err(|e| Error::InvalidPack(format!("{e:#}")))?;
    if let Some(keep) = &outcome.keep_path {
        let _ = std::fs::remove_file(keep);
    }
    let (pack, paths) = match (outcome.data_path.clone(), outcome.index_path.clone()) {
        (Some(pack_path), Some(idx_path)) if outcome.index.num_objects > 0 => {
            let name = format!("pack-{}", outcome.index.data_hash);
            let pack = Arc::new(Pack::open(&name, &idx_path, &pack_path)?);
            (Some(pack), Some((pack_path, idx_path)))
        }
        _ if outcome.index.num_objects == 0 => (None, None),
        _ => return Err(Error::InvalidPack("the pack was not written".into())),
    };
    Ok(Ingested {
        num_objects: outcome.index.num_objects,
        pack,
        paths,
        _dir: dir,
    })
}

impl Ingested {
    /// A connectivity check of this pack against `db`: every object reachable from a
    /// pushed tip must be in this pack or in `db`.
    pub fn connectivity(&self, db: &ObjectDb) -> walk::Connectivity {
        let incoming = db.with_packs(self.pack.iter().cloned().collect());
        walk::Connectivity::new(incoming, db.clone())
    }

    /// Upload the `.pack`, then the `.idx` that makes it visible. Packs are content-addressed,
    /// so finding one already there means the same bytes are there.
    pub async fn publish(&self, db: &ObjectDb) -> Result<()> {
        let (Some(pack), Some((pack_path, idx_path))) = (&self.pack, &self.paths) else {
            return Ok(());
        };
        let stem = format!("{}objects/pack/{}", db.prefix(), pack.name);
        for (ext, path) in [("pack", pack_path), ("idx", idx_path)] {
            match db
                .bucket()
                .put_file(&format!("{stem}.{ext}"), path, PutMode::Create)
                .await
            {
                Ok(_) | Err(bucket::Error::PreconditionFailed(_)) => {}
                Err(e) => return Err(e.into()),
            }
        }
        Ok(())
    }
}
