//! The bucket layout: every key artifact-git reads or writes, formatted in this one module.
//!
//! An artifact `{workspace}/{alias}` owns the prefix `{root}{workspace}/artifacts/{alias}/`
//! ([`ArtifactKeys`]). Beside the artifact service's own files (numbered versions `v{N}/` and
//! their manifests `v{N}.json`), its git repository lives under `git/` ([`RepoKeys`]), laid out
//! as a bare git repository that stock git opens as is: `HEAD`, `config`, `packed-refs` and
//! `objects/pack/pack-<hash>.{pack,idx}`, never loose objects. Every key below says who writes
//! it, when, and under which precondition; nothing outside this module formats a key.

/// The directory under a filesystem bucket's root that is never a key: lock files, temporary
/// files, the embedded default's generated secret and the staging area of received packs.
pub const LOCAL_INTERNAL_DIR: &str = ".artifact-git";

/// Files of the embedded default (a filesystem bucket) that live beside the keys, under
/// [`LOCAL_INTERNAL_DIR`]: local disk, never in a bucket.
pub mod local {
    use std::path::{Path, PathBuf};

    /// The HS256 secret the embedded default generates on first start (mode 0600).
    pub fn jwt_secret(root: &Path) -> PathBuf {
        root.join(super::LOCAL_INTERNAL_DIR).join("jwt-secret")
    }

    /// Where received packs are indexed before upload: beside the bucket, so publishing is a
    /// rename on the same disk.
    pub fn staging(root: &Path) -> PathBuf {
        root.join(super::LOCAL_INTERNAL_DIR).join("staging")
    }
}

/// The extension of each file that belongs to a pack (`pack-<hash>.<ext>`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum PackFile {
    /// The pack data. Written once (`Create`), by a push, maintenance or an import, before any
    /// other file of the pack; immutable and content-addressed (the hash is its checksum).
    Pack,
    /// The index. Written once (`Create`) after the `.pack` (and its `.tips`): a pack is
    /// visible to readers only once its `.idx` exists. Deleted first when the pack goes.
    Idx,
    /// Written (`Overwrite`) by maintenance once another pack holds every kept object of this
    /// one; readers skip the pack from then on, and a later run deletes it.
    Replaced,
    /// The ref tips this pack's objects are all reachable from, one hex id per line (empty:
    /// every object was unreachable when the pack was written). Written once (`Create`) before
    /// the `.idx`; absent when nothing is known. Full clones stream packs as they are only
    /// when every tip is still reachable from the refs.
    Tips,
}

impl PackFile {
    const ALL: [PackFile; 4] = [
        PackFile::Pack,
        PackFile::Idx,
        PackFile::Replaced,
        PackFile::Tips,
    ];

    fn extension(self) -> &'static str {
        match self {
            PackFile::Pack => "pack",
            PackFile::Idx => "idx",
            PackFile::Replaced => "replaced",
            PackFile::Tips => "tips",
        }
    }
}

/// The keys of one artifact: its version folders and its git repository.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct ArtifactKeys {
    /// `{root}{workspace}/artifacts/{alias}/`.
    base: String,
}

impl ArtifactKeys {
    /// The artifact `workspace/alias` under the storage root `root` (empty or ending in `/`).
    /// Names must already be valid single path components (the server checks them).
    pub fn new(root: &str, workspace: &str, alias: &str) -> Self {
        ArtifactKeys {
            base: format!("{root}{workspace}/artifacts/{alias}/"),
        }
    }

    /// The prefix every key of the artifact starts with.
    pub fn base(&self) -> &str {
        &self.base
    }

    /// The artifact's git repository.
    pub fn repo(&self) -> RepoKeys {
        RepoKeys {
            prefix: format!("{}git/", self.base),
        }
    }

    /// A file of version `N`: `v{N}/{path}`. Written by the artifact service (or by a publish
    /// of a pushed commit), never modified afterwards.
    pub fn version_file(&self, version: u64, path: &str) -> String {
        format!("{}v{version}/{path}", self.base)
    }

    /// The folder of version `N`, for listings.
    pub fn version_dir(&self, version: u64) -> String {
        format!("{}v{version}/", self.base)
    }

    /// The manifest of version `N`: `v{N}.json`, written after every file of the version.
    pub fn version_manifest(&self, version: u64) -> String {
        format!("{}v{version}.json", self.base)
    }

    /// The prefix of every version folder and manifest (`v`), for listings that must not
    /// walk the git repository beside them.
    pub fn versions_prefix(&self) -> String {
        format!("{}v", self.base)
    }

    /// The version number of a manifest key (`v{N}.json`), from a listing.
    pub fn parse_version_manifest(&self, key: &str) -> Option<u64> {
        let digits = key
            .strip_prefix(&self.base)?
            .strip_prefix('v')?
            .strip_suffix(".json")?;
        if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
            return None;
        }
        digits.parse().ok()
    }

    /// The version number and path of a key inside a version folder, from a listing of
    /// [`ArtifactKeys::base`].
    pub fn parse_version_file<'k>(&self, key: &'k str) -> Option<(u64, &'k str)> {
        let rest = key.strip_prefix(&self.base)?;
        let (dir, path) = rest.split_once('/')?;
        let digits = dir.strip_prefix('v')?;
        if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
            return None;
        }
        Some((digits.parse().ok()?, path))
    }
}

/// Keys of the whole storage, outside every artifact: they start with a component that
/// begins with a dot, which no workspace name can.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct StorageKeys {
    root: String,
}

impl StorageKeys {
    /// The storage whose keys start with `root` (empty or ending in `/`).
    pub fn new(root: &str) -> Self {
        StorageKeys {
            root: root.to_owned(),
        }
    }

    /// A marker that repository `workspace/alias` has a push event `seq` to deliver:
    /// `.events/pending/{workspace}/{alias}/{seq:020}`, empty. Written (`Overwrite`) with the
    /// event record, before the refs compare-and-swap; deleted by deliverers once every
    /// endpoint of the repository is past it. Replicas find work by listing these.
    pub fn pending_event(&self, workspace: &str, alias: &str, seq: u64) -> String {
        format!("{}.events/pending/{workspace}/{alias}/{seq:020}", self.root)
    }

    /// A marker that an endpoint of `workspace/alias` changed (added, told to sync) at refs
    /// `seq`: `.events/pending/{workspace}/{alias}/{seq:020}-{nonce}`, empty, written after
    /// the endpoint configuration. Its own key (not [`StorageKeys::pending_event`]'s) because a
    /// deliverer that listed the push marker of the same `seq` before the change may delete
    /// that key when it finishes, and would so swallow the wake-up.
    pub fn endpoint_changed(&self, workspace: &str, alias: &str, seq: u64, nonce: &str) -> String {
        format!(
            "{}.events/pending/{workspace}/{alias}/{seq:020}-{nonce}",
            self.root
        )
    }

    /// `.events/replicas/{replica}`: when the replica last said it was alive (milliseconds
    /// since the epoch, decimal), rewritten (`Overwrite`) every poll interval by its event
    /// dispatcher; read by the others to take over the leases of a replica that stopped.
    pub fn replica_heartbeat(&self, replica: &str) -> String {
        format!("{}.events/replicas/{replica}", self.root)
    }

    /// The folder of every pending marker, for listings.
    pub fn pending_events_dir(&self) -> String {
        format!("{}.events/pending/", self.root)
    }

    /// Workspace, alias and `seq` of a key from a listing of the pending markers.
    pub fn parse_pending_event<'k>(&self, key: &'k str) -> Option<(&'k str, &'k str, u64)> {
        let rest = key
            .strip_prefix(&self.root)?
            .strip_prefix(".events/pending/")?;
        let mut parts = rest.split('/');
        let (workspace, alias, seq) = (parts.next()?, parts.next()?, parts.next()?);
        if parts.next().is_some() || workspace.is_empty() || alias.is_empty() {
            return None;
        }
        let seq = seq.split_once('-').map_or(seq, |(seq, _nonce)| seq);
        Some((workspace, alias, seq.parse().ok()?))
    }

    /// That repository `workspace/alias` follows upstream `id`:
    /// `.events/upstreams/{workspace}/{alias}/{id}`, empty. Written (`Overwrite`) after the
    /// upstream is added to the repository's endpoints, deleted when it is removed; every
    /// replica's upstream scheduler lists these to find timed syncs that are due.
    pub fn upstream(&self, workspace: &str, alias: &str, id: &str) -> String {
        format!("{}.events/upstreams/{workspace}/{alias}/{id}", self.root)
    }

    /// The folder of every [`StorageKeys::upstream`] key, for listings.
    pub fn upstreams_dir(&self) -> String {
        format!("{}.events/upstreams/", self.root)
    }

    /// Workspace, alias and upstream id of a key from a listing of the upstreams.
    pub fn parse_upstream<'k>(&self, key: &'k str) -> Option<(&'k str, &'k str, &'k str)> {
        let rest = key
            .strip_prefix(&self.root)?
            .strip_prefix(".events/upstreams/")?;
        let mut parts = rest.split('/');
        let (workspace, alias, id) = (parts.next()?, parts.next()?, parts.next()?);
        match parts.next().is_none() && ![workspace, alias, id].contains(&"") {
            true => Some((workspace, alias, id)),
            false => None,
        }
    }

    /// That repository `workspace/alias` was deleted and waits to be purged:
    /// `.events/deleted/{workspace}/{alias}`, empty. Written (`Overwrite`) after the
    /// repository's tombstone and refs mark, deleted by a restore and last by the purge; every
    /// replica's purger lists these.
    pub fn deleted(&self, workspace: &str, alias: &str) -> String {
        format!("{}.events/deleted/{workspace}/{alias}", self.root)
    }

    /// The folder of every [`StorageKeys::deleted`] key, for listings.
    pub fn deleted_dir(&self) -> String {
        format!("{}.events/deleted/", self.root)
    }

    /// Workspace and alias of a key from a listing of the deleted repositories.
    pub fn parse_deleted<'k>(&self, key: &'k str) -> Option<(&'k str, &'k str)> {
        let rest = key
            .strip_prefix(&self.root)?
            .strip_prefix(".events/deleted/")?;
        let (workspace, alias) = rest.split_once('/')?;
        match alias.contains('/') || workspace.is_empty() || alias.is_empty() {
            true => None,
            false => Some((workspace, alias)),
        }
    }

    /// `.web-signin/{code}.json`: a sign-in link of the web view, handed out by the
    /// `create_signin_link` method (`{token, next, expires}`). Written create-only, read and
    /// deleted by the first visit of `/-/signin/{code}`; expired ones are ignored (and
    /// removed when visited). `code` is 32 random bytes in hex: unguessable.
    pub fn signin_link(&self, code: &str) -> String {
        format!("{}.web-signin/{code}.json", self.root)
    }

    /// `.quota/{workspace}.json`: a workspace's limits on what its repositories store
    /// together (`{soft_limit_bytes, hard_limit_bytes}`). Written (`Overwrite`) by
    /// `set_quota {workspace}`; read by writers, cached for half a minute.
    pub fn workspace_quota(&self, workspace: &str) -> String {
        format!("{}.quota/{workspace}.json", self.root)
    }

    /// The folder of a workspace's artifacts (`{workspace}/artifacts/`): its folders are the
    /// aliases.
    pub fn artifacts_dir(&self, workspace: &str) -> String {
        format!("{}{workspace}/artifacts/", self.root)
    }

    /// The pending markers and upstream entries of `workspace/alias`: what a purge removes
    /// outside the repository's own prefix.
    pub fn repository_entries(&self, workspace: &str, alias: &str) -> [String; 2] {
        [
            format!("{}.events/pending/{workspace}/{alias}/", self.root),
            format!("{}.events/upstreams/{workspace}/{alias}/", self.root),
        ]
    }

    /// The keys of artifact `workspace/alias`.
    pub fn artifact(&self, workspace: &str, alias: &str) -> ArtifactKeys {
        ArtifactKeys::new(&self.root, workspace, alias)
    }
}

/// The keys of one git repository, all under one prefix ending in `/`.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct RepoKeys {
    prefix: String,
}

impl RepoKeys {
    /// A repository at an arbitrary prefix (ending in `/`), for tests and tools.
    pub fn at(prefix: &str) -> Self {
        RepoKeys {
            prefix: prefix.to_owned(),
        }
    }

    /// The prefix every key of the repository starts with.
    pub fn prefix(&self) -> &str {
        &self.prefix
    }

    /// `HEAD`: `ref: refs/heads/<branch>`. Written `Create` last by `init`, so its existence
    /// means the repository exists; re-pointed by `Update` when the first push creates another
    /// branch than the one it names.
    pub fn head(&self) -> String {
        format!("{}HEAD", self.prefix)
    }

    /// `packed-refs`: every ref in git's format, the commit point of every ref change. Written
    /// `Create` by `init`, then only by `Update` against the tag that was read (compare-and-swap):
    /// by every ref change, and once by the first endpoint's creation, which takes away the
    /// header's `artifact-git-unwatched` mark that `init` writes.
    pub fn packed_refs(&self) -> String {
        format!("{}packed-refs", self.prefix)
    }

    /// The files `init` writes (`Overwrite`) before `HEAD` so stock git recognises the prefix
    /// as a bare repository: `config`, `description`, and placeholders for `refs/` and
    /// `objects/` (git ignores names starting with a dot there).
    pub fn init_files(&self, object_hash: gix_hash::Kind) -> [(String, &'static [u8]); 4] {
        [
            (
                format!("{}config", self.prefix),
                crate::format::bare_config(object_hash),
            ),
            (format!("{}refs/heads/.keep", self.prefix), b""),
            (format!("{}objects/info/.keep", self.prefix), b""),
            (
                format!("{}description", self.prefix),
                b"artifact-git repository\n",
            ),
        ]
    }

    /// `artifact-git.json`: the repository's settings (public or not, ...). Written by
    /// `enable_git`, `init` and settings changes (`Overwrite`); stock git ignores it.
    pub fn settings(&self) -> String {
        format!("{}artifact-git.json", self.prefix)
    }

    /// `artifact-git-deleted.json`: the tombstone of a deleted repository (when, by whom,
    /// when it is purged, and its refs object as it was, to restore exactly). Written
    /// (`Overwrite`) by `delete_repository` before the refs carry the deleted mark; deleted by
    /// a restore once the refs are back, and last by the purge.
    pub fn tombstone(&self) -> String {
        format!("{}artifact-git-deleted.json", self.prefix)
    }

    /// `artifact-git-policy.json`: the repository's push policy. Written by `set_push_policy`
    /// (`Overwrite`); read by every landing, revalidated by tag.
    pub fn push_policy(&self) -> String {
        format!("{}artifact-git-policy.json", self.prefix)
    }

    /// `pulls/{n}.json`: pull request `n` (created `Create`, changed `Update` by tag).
    pub fn pull_request(&self, number: u64) -> String {
        format!("{}pulls/{number:010}.json", self.prefix)
    }

    /// The folder of every pull request, for listings.
    pub fn pull_requests_dir(&self) -> String {
        format!("{}pulls/", self.prefix)
    }

    /// The number of a pull request's key.
    pub fn parse_pull_request(&self, key: &str) -> Option<u64> {
        key.strip_prefix(&self.pull_requests_dir())?
            .strip_suffix(".json")?
            .parse()
            .ok()
    }

    /// `bundles/list.json`: the bundles maintenance keeps for `bundle-uri` (their files,
    /// creation tokens, refs and prerequisites). Written (`Overwrite`) by maintenance after
    /// the files it names; read by every `bundle-uri` command. Git ignores the folder.
    pub fn bundle_list(&self) -> String {
        format!("{}bundles/list.json", self.prefix)
    }

    /// A bundle file (`bundles/{token}-{kind}.bundle`), written once (`Create`) before the
    /// list names it; deleted by maintenance once no list names it.
    pub fn bundle_file(&self, file: &str) -> String {
        format!("{}bundles/{file}", self.prefix)
    }

    /// The folder of the bundles, for listings.
    pub fn bundles_dir(&self) -> String {
        format!("{}bundles/", self.prefix)
    }

    /// The folder of every pack file, for listings.
    pub fn pack_dir(&self) -> String {
        format!("{}objects/pack/", self.prefix)
    }

    /// A file of the pack `name` (`pack-<hash>`).
    pub fn pack_file(&self, name: &str, file: PackFile) -> String {
        format!("{}objects/pack/{name}.{}", self.prefix, file.extension())
    }

    /// A Git LFS object, at the path `git lfs` uses in a local repository
    /// (`lfs/objects/<oid[0:2]>/<oid[2:4]>/<oid>`), so an exported prefix is a bare repository
    /// whose LFS objects stock tools find. Written once (`Create`) and only after its SHA-256
    /// and size were checked: by a verified upload, or by an import. `oid` is 64 lowercase hex
    /// digits (the caller checked).
    pub fn lfs_object(&self, oid: &str) -> String {
        format!(
            "{}lfs/objects/{}/{}/{oid}",
            self.prefix,
            &oid[..2.min(oid.len())],
            &oid[2.min(oid.len())..4.min(oid.len())]
        )
    }

    /// The folder of every stored (verified) LFS object, for listings.
    pub fn lfs_objects_dir(&self) -> String {
        format!("{}lfs/objects/", self.prefix)
    }

    /// Where a client uploads an LFS object with a presigned URL before it is verified
    /// (`lfs/incoming/<oid>-<nonce>`): whatever is here is untrusted. Written by the client
    /// (`Overwrite`, through the URL); deleted once verified, or by maintenance a day later.
    pub fn lfs_incoming(&self, oid: &str, nonce: &str) -> String {
        format!("{}lfs/incoming/{oid}-{nonce}", self.prefix)
    }

    /// The folder of uploads awaiting verification, for listings.
    pub fn lfs_incoming_dir(&self) -> String {
        format!("{}lfs/incoming/", self.prefix)
    }

    /// An LFS lock: one object per locked path, named by the SHA-256 of the path. Written
    /// `Create` (so of two replicas locking one path exactly one wins), deleted on unlock.
    pub fn lfs_lock(&self, id: &str) -> String {
        format!("{}lfs/locks/{id}.json", self.prefix)
    }

    /// The folder of locks, for listings.
    pub fn lfs_locks_dir(&self) -> String {
        format!("{}lfs/locks/", self.prefix)
    }

    /// The commit `commit_version` made of artifact version `N`: `versions/imported/v{N}`
    /// (the commit id). Written (`Create`) after the branch moved; a second call for the same
    /// version answers this commit instead of making another.
    pub fn imported_version(&self, version: u64) -> String {
        format!("{}versions/imported/v{version}", self.prefix)
    }

    /// A record of the push event log: `events/log/{seq:020}-{prev}-{id}.json`, where `seq`
    /// is the change's number, `prev` and `id` the content ids of the refs before and after
    /// it (all zeros for none). Written once (`Create`) by the push (or import) that makes the
    /// change, *before* its refs compare-and-swap; valid only on the chain that runs back
    /// from the refs' current content id, so the record of a push that then lost the race
    /// (or crashed) is never delivered. Deleted by deliverers once every endpoint has it.
    /// Not written while the refs are marked unwatched (no endpoint yet: see
    /// `refs::RefStore::watch`).
    pub fn event(&self, seq: u64, prev: &str, id: &str) -> String {
        format!("{}events/log/{seq:020}-{prev}-{id}.json", self.prefix)
    }

    /// `events/forgotten`: the highest `seq` through which records of the event log were
    /// deleted as delivered everywhere, in decimal. Written (compare-and-swap, only upwards)
    /// before the records are deleted, so a reader that misses records at or below it knows
    /// they were deleted on purpose (an endpoint added while they were being deleted never
    /// needed them) and not merely left out of a lagging listing.
    pub fn event_log_forgotten(&self) -> String {
        format!("{}events/forgotten", self.prefix)
    }

    /// The folder of the event log, for listings (sorted by `seq`).
    pub fn event_log_dir(&self) -> String {
        format!("{}events/log/", self.prefix)
    }

    /// `seq`, `prev` and `id` of a key from a listing of [`RepoKeys::event_log_dir`].
    pub fn parse_event<'k>(&self, key: &'k str) -> Option<(u64, &'k str, &'k str)> {
        let rest = key
            .strip_prefix(&self.prefix)?
            .strip_prefix("events/log/")?
            .strip_suffix(".json")?;
        let mut parts = rest.splitn(3, '-');
        let seq = parts.next()?;
        let (prev, id) = (parts.next()?, parts.next()?);
        if seq.len() != 20 || !seq.bytes().all(|b| b.is_ascii_digit()) {
            return None;
        }
        Some((seq.parse().ok()?, prev, id))
    }

    /// `events/endpoints.json`: the repository's webhooks and push mirrors, secrets included
    /// (never returned by the API). Written by the API (`Create`, then `Update` against the
    /// tag read), and by deliverers disabling a webhook that answered `410 Gone`.
    pub fn event_endpoints(&self) -> String {
        format!("{}events/endpoints.json", self.prefix)
    }

    /// `events/state/{endpoint}.json`: how far one endpoint got (the last event it was sent),
    /// its retry schedule, status, and the lease of the replica delivering to it. Written
    /// `Create` when the endpoint is added, then only by `Update` (compare-and-swap), so two
    /// replicas never deliver to one endpoint at once. For an upstream (`upstream-…`): its
    /// sync status per ref, the lease of the replica syncing it and the time a sync was last
    /// asked for (a webhook writes that by compare-and-swap too).
    pub fn endpoint_state(&self, endpoint: &str) -> String {
        format!("{}events/state/{endpoint}.json", self.prefix)
    }

    /// The folder of one webhook's delivery log, for listings (sorted by time).
    pub fn deliveries_dir(&self, endpoint: &str) -> String {
        format!("{}events/deliveries/{endpoint}/", self.prefix)
    }

    /// One delivery attempt: `events/deliveries/{endpoint}/{time:020}-{delivery}.json`.
    /// Written once (`Overwrite`) by the deliverer after the attempt; the oldest beyond a
    /// hundred are deleted.
    pub fn delivery(&self, endpoint: &str, time_ms: u64, delivery: &str) -> String {
        format!(
            "{}events/deliveries/{endpoint}/{time_ms:020}-{delivery}.json",
            self.prefix
        )
    }

    /// The pack name and file kind of a key from a listing of [`RepoKeys::pack_dir`]; `None`
    /// for anything else found there.
    pub fn parse_pack_file<'k>(&self, key: &'k str) -> Option<(&'k str, PackFile)> {
        let rest = key
            .strip_prefix(&self.prefix)?
            .strip_prefix("objects/pack/")?;
        let (name, ext) = rest.rsplit_once('.')?;
        if !name.starts_with("pack-") || name.contains('/') {
            return None;
        }
        let file = PackFile::ALL.into_iter().find(|f| f.extension() == ext)?;
        Some((name, file))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_of_the_event_log() {
        let repo = ArtifactKeys::new("root/", "ws", "data").repo();
        let key = repo.event(7, "aa", "bb");
        assert_eq!(
            key,
            "root/ws/artifacts/data/git/events/log/00000000000000000007-aa-bb.json"
        );
        assert_eq!(repo.parse_event(&key), Some((7, "aa", "bb")));
        assert_eq!(
            repo.parse_event("root/ws/artifacts/data/git/events/log/7-aa-bb.json"),
            None
        );
        let storage = StorageKeys::new("root/");
        let marker = storage.pending_event("ws", "data", 7);
        assert_eq!(marker, "root/.events/pending/ws/data/00000000000000000007");
        assert_eq!(
            storage.parse_pending_event(&marker),
            Some(("ws", "data", 7))
        );
        assert_eq!(
            storage.parse_pending_event(&storage.endpoint_changed("ws", "data", 7, "x1")),
            Some(("ws", "data", 7))
        );
        assert_eq!(
            storage.parse_pending_event("root/.events/pending/ws/data"),
            None
        );
        assert_eq!(storage.artifact("ws", "data").repo(), repo);
    }

    #[test]
    fn keys_of_an_artifact_and_its_repository() {
        let artifact = ArtifactKeys::new("root/", "ws", "data");
        assert_eq!(artifact.base(), "root/ws/artifacts/data/");
        assert_eq!(
            artifact.version_file(3, "a/b.txt"),
            "root/ws/artifacts/data/v3/a/b.txt"
        );
        assert_eq!(
            artifact.version_manifest(3),
            "root/ws/artifacts/data/v3.json"
        );
        assert_eq!(
            artifact.parse_version_file("root/ws/artifacts/data/v12/x/y"),
            Some((12, "x/y"))
        );
        assert_eq!(
            artifact.parse_version_file("root/ws/artifacts/data/v1.json"),
            None
        );
        assert_eq!(
            artifact.parse_version_file("root/ws/artifacts/data/vx/y"),
            None
        );
        assert_eq!(
            artifact.parse_version_file("root/ws/artifacts/data/git/HEAD"),
            None
        );
        let manifest = |k: &str| artifact.parse_version_manifest(k);
        assert_eq!(manifest("root/ws/artifacts/data/v12.json"), Some(12));
        assert_eq!(manifest("root/ws/artifacts/data/v.json"), None);
        assert_eq!(manifest("root/ws/artifacts/data/v1/x.json"), None);
        assert!(artifact
            .version_manifest(7)
            .starts_with(&artifact.versions_prefix()));
        let repo = artifact.repo();
        assert_eq!(
            repo.imported_version(4),
            "root/ws/artifacts/data/git/versions/imported/v4"
        );
        assert_eq!(repo.head(), "root/ws/artifacts/data/git/HEAD");
        assert_eq!(repo.packed_refs(), "root/ws/artifacts/data/git/packed-refs");
        let idx = repo.pack_file("pack-abc", PackFile::Idx);
        assert_eq!(idx, "root/ws/artifacts/data/git/objects/pack/pack-abc.idx");
        assert_eq!(
            repo.parse_pack_file(&idx),
            Some(("pack-abc", PackFile::Idx))
        );
        assert_eq!(
            repo.parse_pack_file(&repo.pack_file("pack-abc", PackFile::Tips)),
            Some(("pack-abc", PackFile::Tips))
        );
        assert_eq!(
            repo.parse_pack_file(&format!("{}x.idx", repo.pack_dir())),
            None
        );
        assert_eq!(
            repo.parse_pack_file(&format!("{}pack-a.bitmap", repo.pack_dir())),
            None
        );
    }
}
