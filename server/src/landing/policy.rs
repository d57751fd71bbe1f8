//! The push policy's step of the landing: the facts each update's decision needs (does it
//! fast-forward, which files does it add, change or delete), gathered only as far as the
//! policy asks, then [`crate::policy::check`]. CPU work: run on a blocking thread.

use gix_hash::ObjectId;
use objectstore::odb::ObjectDb;
use refs::RefUpdate;

use crate::policy::{check, PushPolicy, UpdateFacts, Violation};

/// Commits walked at most to tell whether an update is a fast-forward.
const MAX_ANCESTRY_WALK: usize = 1_000_000;
/// Files compared at most per update.
const MAX_CHANGED_FILES: usize = 1_000_000;

/// Who is writing and how, as the policy sees it.
pub struct Writer<'a> {
    /// The token's subject.
    pub subject: Option<&'a str>,
    /// The write is a pull request's merge.
    pub via_pull_request: bool,
    /// The commit `HEAD` names: what a new ref's files are compared with.
    pub head: Option<ObjectId>,
}

/// The decision for each update still applying (`applying[i]`), in order: `Some` refuses it.
pub fn enforce(
    policy: &PushPolicy,
    db: &ObjectDb,
    updates: &[RefUpdate],
    applying: &[bool],
    writer: &Writer<'_>,
) -> Vec<Option<Violation>> {
    updates
        .iter()
        .zip(applying)
        .map(|(update, applies)| match applies {
            false => None,
            true => match facts(policy, db, update, writer) {
                Ok(facts) => check(policy, &facts, writer.subject).err(),
                Err(e) => Some(Violation::Undecided(format!("cannot read the update: {e}"))),
            },
        })
        .collect()
}

fn facts(
    policy: &PushPolicy,
    db: &ObjectDb,
    update: &RefUpdate,
    writer: &Writer<'_>,
) -> Result<UpdateFacts, history::Error> {
    let reader = db.reader();
    let (exists, remains) = (!update.old.is_null(), !update.new.is_null());
    let mut facts = UpdateFacts {
        name: update.name.clone(),
        exists,
        remains,
        via_pull_request: writer.via_pull_request,
        ..UpdateFacts::default()
    };
    let commit_of = |id: &ObjectId| -> Result<Option<ObjectId>, history::Error> {
        Ok(match reader.peel(id)? {
            (c, gix_object::Kind::Commit) => Some(c),
            _ => None,
        })
    };
    let new = match remains {
        true => commit_of(&update.new)?,
        false => None,
    };
    let old = match exists {
        true => commit_of(&update.old)?,
        false => None,
    };
    let guarded = policy.rules_for(&update.name).any(|r| {
        r.no_force
            && !writer
                .subject
                .is_some_and(|s| r.bypass.iter().any(|b| b == s))
    });
    if guarded && exists && remains {
        facts.fast_forward = match (old, new) {
            (Some(old), Some(new)) => history::is_ancestor(&reader, &old, &new, MAX_ANCESTRY_WALK)?,
            // A tag moved to something else, or a non-commit: compared by identity.
            _ => Some(update.old == update.new),
        };
    }
    if let (true, Some(new)) = (policy.needs_changes(&update.name), new) {
        let base = match exists {
            true => old,
            false => writer.head,
        };
        let base_tree = base.map(|c| reader.commit(&c)).transpose()?.map(|c| c.tree);
        let new_tree = reader.commit(&new)?.tree;
        let (changes, _) =
            history::diff_trees(&reader, base_tree.as_ref(), &new_tree, MAX_CHANGED_FILES)?;
        let mut buf = Vec::new();
        for change in changes {
            let Some(blob) = change.new else {
                facts.deleted += 1;
                continue;
            };
            if change.new_mode == 0o160000 {
                continue;
            }
            let size = reader.header(&blob)?.map_or(0, |(_, s)| s);
            let pointer = size <= lfs::MAX_POINTER_SIZE as u64 && {
                reader.read(&blob, &mut buf)?;
                lfs::Pointer::parse(&buf).is_some()
            };
            facts.changed.push((change.path, size, pointer));
        }
    }
    Ok(facts)
}
