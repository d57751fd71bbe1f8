//! Three-way merges of commits, as `git merge-tree --write-tree` makes them: merge bases
//! found by walking history (several of them merged into a virtual one first, as git's
//! recursive strategy does), rename-aware tree merging, line-level merging of text files
//! (gix-merge). New blobs and trees go to a writer the caller turns into a pack.

use std::cell::RefCell;
use std::collections::HashMap;

use gix_hash::ObjectId;
use gix_object::Kind;
use objectstore::odb::Reader;

use crate::{Error, Result};

/// What one merge may read and merge, so that a hostile or huge input ends in a clear refusal
/// instead of unbounded time and memory.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MergeLimits {
    /// Bytes of objects read at most (commits walked for merge bases, trees, blobs).
    pub max_read_bytes: u64,
    /// Objects read at most.
    pub max_objects: u64,
    /// Files larger than this are not merged line by line: when both sides changed one, it
    /// is a conflict, as git treats a binary file.
    pub max_text_merge_bytes: u64,
}

impl Default for MergeLimits {
    fn default() -> Self {
        MergeLimits {
            max_read_bytes: 2 << 30,
            max_objects: 5_000_000,
            max_text_merge_bytes: 64 << 20,
        }
    }
}

/// Objects read from the repository, and those the merge writes, kept in memory.
pub struct MergeObjects<'r, 'a> {
    reader: &'r Reader<'a>,
    written: RefCell<HashMap<ObjectId, (Kind, Vec<u8>)>>,
    limits: MergeLimits,
    /// Objects and bytes read so far.
    read: std::cell::Cell<(u64, u64)>,
}

impl<'r, 'a> MergeObjects<'r, 'a> {
    /// Over `reader`, within the default [`MergeLimits`].
    pub fn new(reader: &'r Reader<'a>) -> Self {
        Self::with_limits(reader, MergeLimits::default())
    }

    /// Over `reader`, within `limits`.
    pub fn with_limits(reader: &'r Reader<'a>, limits: MergeLimits) -> Self {
        MergeObjects {
            reader,
            written: RefCell::default(),
            limits,
            read: Default::default(),
        }
    }

    /// Count one object of `size` bytes read; past the limits, the merge stops.
    fn count(&self, size: usize) -> gix_error::Result<()> {
        let (objects, bytes) = self.read.get();
        let now = (objects + 1, bytes + size as u64);
        self.read.set(now);
        if now.0 > self.limits.max_objects || now.1 > self.limits.max_read_bytes {
            return Err(wrap(TOO_LARGE));
        }
        Ok(())
    }

    /// Whether the merge stopped at its limits.
    fn exceeded(&self) -> bool {
        let (objects, bytes) = self.read.get();
        objects > self.limits.max_objects || bytes > self.limits.max_read_bytes
    }

    /// The objects written, to be stored.
    pub fn into_written(self) -> HashMap<ObjectId, (Kind, Vec<u8>)> {
        self.written.into_inner()
    }
}

fn wrap(e: impl std::fmt::Display) -> gix_error::Error {
    gix_error::Error::from(gix_error::Message::new(e.to_string()))
}

impl gix_object::Find for MergeObjects<'_, '_> {
    fn try_find<'b>(
        &self,
        id: &gix_hash::oid,
        buffer: &'b mut Vec<u8>,
    ) -> gix_error::Result<Option<gix_object::Data<'b>>> {
        if let Some((kind, data)) = self.written.borrow().get(id) {
            buffer.clear();
            buffer.extend_from_slice(data);
            return Ok(Some(gix_object::Data::new(buffer, *kind, id.kind())));
        }
        match self.reader.try_read(id, buffer).map_err(wrap)? {
            Some(kind) => {
                self.count(buffer.len())?;
                Ok(Some(gix_object::Data::new(buffer, kind, id.kind())))
            }
            None => Ok(None),
        }
    }
}

impl gix_object::FindHeader for MergeObjects<'_, '_> {
    fn try_header(&self, id: &gix_hash::oid) -> gix_error::Result<Option<gix_object::Header>> {
        if let Some((kind, data)) = self.written.borrow().get(id) {
            return Ok(Some(gix_object::Header {
                kind: *kind,
                size: data.len() as u64,
            }));
        }
        Ok(self
            .reader
            .header(id)
            .map_err(wrap)?
            .map(|(kind, size)| gix_object::Header { kind, size }))
    }
}

impl gix_object::Write for MergeObjects<'_, '_> {
    fn write_buf_with_known_id(
        &self,
        kind: Kind,
        from: &[u8],
        id: ObjectId,
    ) -> gix_error::Result<ObjectId> {
        self.written.borrow_mut().insert(id, (kind, from.to_vec()));
        Ok(id)
    }

    fn write_stream(
        &self,
        kind: Kind,
        _size: u64,
        from: &mut dyn std::io::Read,
    ) -> gix_error::Result<ObjectId> {
        let mut data = Vec::new();
        from.read_to_end(&mut data).map_err(wrap)?;
        let id = gix_object::compute_hash(self.reader.db().object_hash(), kind, &data)?;
        self.write_buf_with_known_id(kind, &data, id)
    }

    fn write_stream_with_known_id(
        &self,
        kind: Kind,
        _size: u64,
        from: &mut dyn std::io::Read,
        id: ObjectId,
    ) -> gix_error::Result<ObjectId> {
        let mut data = Vec::new();
        from.read_to_end(&mut data).map_err(wrap)?;
        self.write_buf_with_known_id(kind, &data, id)
    }
}

/// Why the merge stopped at its limits.
const TOO_LARGE: &str = "the merge reads more than its limits allow";

/// One path the merge could not resolve.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MergeConflict {
    /// The path (ours, when it moved).
    pub path: String,
    /// `content`, `add/add`, `modify/delete` or `rename`.
    pub kind: &'static str,
    /// The object at the path in the merge base, ours and theirs (none: no such file there).
    pub base: Option<ObjectId>,
    /// Ours.
    pub ours: Option<ObjectId>,
    /// Theirs.
    pub theirs: Option<ObjectId>,
}

/// What a merge made.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum MergeOutcome {
    /// The merged tree (its new objects in the writer).
    Clean(ObjectId),
    /// The paths in conflict.
    Conflicts(Vec<MergeConflict>),
}

/// An attribute stack with no attributes, for merges without a worktree.
fn attributes() -> gix_worktree::Stack {
    let state =
        gix_worktree::stack::State::AttributesStack(gix_worktree::stack::state::Attributes::new(
            Default::default(),
            None,
            gix_worktree::stack::state::attributes::Source::IdMapping,
            Default::default(),
        ));
    gix_worktree::Stack::new(
        ".",
        state,
        gix_glob::pattern::Case::Sensitive,
        Vec::new(),
        Vec::new(),
    )
}

/// Merge commit `theirs` into `ours` as `git merge-tree --write-tree ours theirs` does.
pub fn merge_commits(
    objects: &MergeObjects<'_, '_>,
    ours: ObjectId,
    theirs: ObjectId,
) -> Result<MergeOutcome> {
    let filter = || {
        gix_filter::Pipeline::new(
            gix_command::Context::default(),
            ours.kind(),
            Default::default(),
        )
    };
    let large = objects.limits.max_text_merge_bytes;
    let mut diff_cache = gix_diff::blob::Platform::new(
        Default::default(),
        gix_diff::blob::Pipeline::new(
            Default::default(),
            filter(),
            Vec::new(),
            gix_diff::blob::pipeline::Options {
                large_file_threshold_bytes: large,
                ..Default::default()
            },
        ),
        gix_diff::blob::pipeline::Mode::ToGit,
        attributes(),
    );
    let mut blob_merge = gix_merge::blob::Platform::new(
        gix_merge::blob::Pipeline::new(
            Default::default(),
            filter(),
            gix_merge::blob::pipeline::Options {
                large_file_threshold_bytes: large,
            },
        ),
        gix_merge::blob::pipeline::Mode::ToGit,
        attributes(),
        Vec::new(),
        Default::default(),
    );
    let mut graph = gix_revwalk::Graph::new(objects, None);
    let options = gix_merge::commit::Options {
        allow_missing_merge_base: true,
        tree_merge: gix_merge::tree::Options {
            rewrites: Some(Default::default()),
            blob_merge: Default::default(),
            blob_merge_command_ctx: Default::default(),
            fail_on_conflict: None,
            marker_size_multiplier: 0,
            symlink_conflicts: None,
            tree_conflicts: None,
        },
        use_first_merge_base: false,
    };
    let labels = gix_merge::blob::builtin_driver::text::Labels {
        ancestor: Some("base".into()),
        current: Some("ours".into()),
        other: Some("theirs".into()),
    };
    let mut outcome = gix_merge::commit(
        ours,
        theirs,
        labels,
        &mut graph,
        &mut diff_cache,
        &mut blob_merge,
        objects,
        &mut |id| id.to_hex_with_len(7).to_string(),
        options,
    )
    .map_err(|e| match objects.exceeded() {
        true => Error::TooLarge(format!(
            "{TOO_LARGE} ({} objects, {} MiB); merge it with git and push the result",
            objects.limits.max_objects,
            objects.limits.max_read_bytes >> 20
        )),
        false => Error::Diff(format!("merging failed: {e}")),
    })?;
    let how = gix_merge::tree::TreatAsUnresolved::git();
    if outcome.tree_merge.has_unresolved_conflicts(how) {
        let conflicts = outcome
            .tree_merge
            .conflicts
            .iter()
            .filter(|c| c.is_unresolved(how))
            .map(|c| {
                let [base, ours, theirs] = c.entries().map(|e| e.map(|e| e.id));
                MergeConflict {
                    path: c.ours.location().to_string(),
                    kind: describe(c),
                    base,
                    ours,
                    theirs,
                }
            })
            .collect();
        return Ok(MergeOutcome::Conflicts(conflicts));
    }
    let tree = outcome
        .tree_merge
        .tree
        .write(|tree| gix_object::Write::write(objects, tree))
        .map_err(|e| Error::Diff(format!("writing the merged tree failed: {e}")))?;
    Ok(MergeOutcome::Clean(tree))
}

fn describe(conflict: &gix_merge::tree::Conflict) -> &'static str {
    use gix_merge::tree::ResolutionFailure as F;
    match &conflict.resolution {
        Ok(_) => "content",
        Err(F::OursAddedTheirsAddedTypeMismatch { .. } | F::SubmoduleAddAdd) => "add/add",
        Err(F::OursModifiedTheirsDeleted | F::OursDeletedTheirsRenamed) => "modify/delete",
        Err(
            F::OursRenamedTheirsRenamedDifferently { .. }
            | F::OursRenamedTheirsRenamedToSameLocation
            | F::OursModifiedTheirsRenamedTypeMismatch
            | F::OursModifiedTheirsDirectoryThenOursRenamed { .. }
            | F::OursDirectoryTheirsNonDirectoryTheirsRenamed { .. },
        ) => "rename",
        Err(_) => "content",
    }
}
