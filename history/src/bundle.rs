//! Git bundles (`gitformat-bundle`): a repository's refs and the objects they need in one file,
//! for `git clone <file>`, `git fetch <file>` and `git bundle verify`.
//!
//! A v2 bundle is a text header and a pack:
//!
//! ```text
//! # v2 git bundle
//! -<commit> <comment>        one line per prerequisite: a commit the receiver must already have
//! <object> <refname>         one line per ref the bundle carries
//!                            an empty line, then the pack
//! ```
//!
//! A SHA-256 repository's bundles are v3, whose header names the format before the lines
//! above (`# v3 git bundle`, then `@object-format=sha256`): git reads a v2 bundle as SHA-1.
//!
//! A bundle without prerequisites is complete: `git clone` can clone from it. An incremental
//! bundle (`git bundle create x since..main`) leaves out what its prerequisites reach, so it
//! applies only on top of a repository that has them; `git bundle verify` says which are
//! missing. This module chooses what goes in ([`plan_bundle`]) and writes the header
//! ([`write_bundle_header`]); the pack itself is written by the same code that answers a fetch
//! whose `have`s are the prerequisites.

use std::io::Write;

use gix_hash::ObjectId;
use objectstore::odb::{walk, Reader};

use crate::{Error, Result};

/// The first line of every bundle of a SHA-1 repository this module writes.
pub const BUNDLE_SIGNATURE: &str = "# v2 git bundle\n";

/// The first lines of every bundle of a SHA-256 repository: v3, which names its format.
pub const BUNDLE_SIGNATURE_SHA256: &str = "# v3 git bundle\n@object-format=sha256\n";

/// How many refs and prerequisites one bundle request may name.
pub const MAX_BUNDLE_NAMES: usize = 1000;

/// Commits walked at most to decide whether a bundle would be empty.
const MAX_EMPTY_CHECK_WALK: usize = 2_000_000;

/// What a bundle holds: refs (full names, `HEAD` first when present) and the commits its
/// receiver must have.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct BundlePlan {
    /// The refs the bundle carries, with the objects they name (tags unpeeled).
    pub refs: Vec<(String, ObjectId)>,
    /// The commits left out, with everything they reach.
    pub prerequisites: Vec<ObjectId>,
}

impl BundlePlan {
    /// The objects the pack must hold with everything they reach (minus the prerequisites').
    pub fn wants(&self) -> Vec<ObjectId> {
        let mut wants: Vec<ObjectId> = self.refs.iter().map(|(_, id)| *id).collect();
        wants.sort();
        wants.dedup();
        wants
    }
}

/// Choose a bundle's refs: `names` (each as `git rev-parse` reads a ref name: full, or short
/// under `refs/`, `refs/tags/`, `refs/heads/`, or `HEAD`), or by default every branch and tag
/// and `HEAD`. `HEAD` is added whenever the branch it points at is in, so that `git clone`
/// of the bundle checks that branch out. Fails with [`Error::UnknownRevision`] for a name that
/// is not a ref.
pub fn bundle_refs(
    snapshot: &refs::Snapshot,
    names: Option<&[String]>,
) -> Result<Vec<(String, ObjectId)>> {
    let mut chosen: Vec<(String, ObjectId)> = Vec::new();
    match names {
        None => chosen.extend(
            snapshot
                .refs
                .iter()
                .filter(|(n, _)| n.starts_with("refs/heads/") || n.starts_with("refs/tags/"))
                .map(|(n, v)| (n.clone(), v.target)),
        ),
        Some(names) => {
            for name in names {
                if name == "HEAD" {
                    continue;
                }
                let found = [
                    name.clone(),
                    format!("refs/{name}"),
                    format!("refs/tags/{name}"),
                    format!("refs/heads/{name}"),
                ]
                .into_iter()
                .find_map(|full| snapshot.get(&full).map(|id| (full, id)))
                .ok_or_else(|| Error::UnknownRevision(name.clone()))?;
                if !chosen.iter().any(|(n, _)| *n == found.0) {
                    chosen.push(found);
                }
            }
        }
    }
    let head_asked = names.is_none_or(|n| n.iter().any(|n| n == "HEAD"));
    let head = snapshot
        .head
        .as_deref()
        .and_then(|h| snapshot.get(h).map(|id| (h, id)));
    match head {
        Some((branch, id)) if head_asked || chosen.iter().any(|(n, _)| n == branch) => {
            chosen.insert(0, ("HEAD".to_owned(), id));
        }
        None if names.is_some_and(|n| n.iter().any(|n| n == "HEAD")) => {
            return Err(Error::UnknownRevision("HEAD".into()));
        }
        _ => {}
    }
    Ok(chosen)
}

/// Whether every ref of `plan` is already reached by its prerequisites: such a bundle would
/// carry no objects (git refuses to create it).
pub fn bundle_is_empty(reader: &Reader<'_>, plan: &BundlePlan) -> Result<bool> {
    if plan.prerequisites.is_empty() || plan.refs.is_empty() {
        return Ok(plan.refs.is_empty());
    }
    let mut tips = Vec::with_capacity(plan.refs.len());
    for (_, id) in &plan.refs {
        tips.push(reader.peel(id)?.0);
    }
    Ok(
        walk::all_reachable(reader, &plan.prerequisites, &tips, MAX_EMPTY_CHECK_WALK)?
            && plan.refs.iter().all(|(_, id)| tips.contains(id)),
    )
}

/// Write the header of `plan`, each prerequisite commented with its subject line as git does.
pub fn write_bundle_header(
    reader: &Reader<'_>,
    plan: &BundlePlan,
    out: &mut impl Write,
) -> Result<()> {
    let mut header = Vec::new();
    let signature = match reader.db().object_hash() {
        gix_hash::Kind::Sha1 => BUNDLE_SIGNATURE,
        _ => BUNDLE_SIGNATURE_SHA256,
    };
    header.extend_from_slice(signature.as_bytes());
    for id in &plan.prerequisites {
        let subject = crate::commit_info(reader, id)?
            .message
            .lines()
            .next()
            .unwrap_or("")
            .to_owned();
        header.extend_from_slice(format!("-{id} {subject}\n").as_bytes());
    }
    for (name, id) in &plan.refs {
        header.extend_from_slice(format!("{id} {name}\n").as_bytes());
    }
    header.push(b'\n');
    out.write_all(&header)
        .map_err(|e| Error::Objects(objectstore::odb::Error::from(e)))
}
