//! Where a new file's content goes when a commit is written without a client: into the pack
//! as a blob, or to Git LFS (the commit then holds a pointer). One rule for every such writer:
//! a path the commit's `.gitattributes` sends to LFS goes there, and so does a file above the
//! writer's size threshold (imports of artifact versions); content that already is a pointer
//! stays as it is. Where the bytes are differs by writer, which is what [`Content`] hides:
//! bytes in hand (`commit_files`) are hashed as they are stored; a file in the bucket (an
//! artifact version's) is copied inside the bucket after one read through SHA-256.

use lfs::{Pointer, Store};

/// Why a file could not be stored in Git LFS.
#[derive(Debug, thiserror::Error)]
pub enum PlacementError {
    /// The store failed.
    #[error(transparent)]
    Store(#[from] lfs::StoreError),
    /// The bytes did not check out as they were stored.
    #[error(transparent)]
    Verify(#[from] lfs::VerifyError),
}

/// A file's content, wherever it is.
#[async_trait::async_trait]
pub trait Content: Send {
    /// Its size in bytes.
    fn size(&self) -> u64;

    /// The content when it is a Git LFS pointer already (committed as it is).
    fn pointer(&self) -> Option<Pointer>;

    /// Store it as an LFS object (its SHA-256 checked) and answer the pointer to it.
    async fn store_in_lfs(&mut self, store: &Store) -> Result<Pointer, PlacementError>;
}

/// What the rule decided for one file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Placed {
    /// A blob of the pack, with the file's own bytes.
    Blob,
    /// In Git LFS: the commit holds this pointer. `by_size` when only the size sent it there
    /// (the commit's `.gitattributes` then needs a line for it).
    Lfs { pointer: Pointer, by_size: bool },
}

/// The rule: where `content` at `path` goes, given the LFS patterns of the commit's
/// `.gitattributes` and the writer's size threshold (`None`: attributes alone decide).
pub async fn place(
    content: &mut dyn Content,
    path: &str,
    patterns: &[String],
    threshold: Option<u64>,
    store: &Store,
) -> Result<Placed, PlacementError> {
    let tracked = lfs::attributes::tracked_by_lfs(patterns, path);
    if !goes_to_lfs(tracked, content.size(), threshold) || content.pointer().is_some() {
        return Ok(Placed::Blob);
    }
    let pointer = content.store_in_lfs(store).await?;
    Ok(Placed::Lfs {
        pointer,
        by_size: !tracked,
    })
}

/// The rule itself: a path `.gitattributes` tracks goes to LFS, and so does content over the
/// threshold.
pub fn goes_to_lfs(tracked: bool, size: u64, threshold: Option<u64>) -> bool {
    tracked || threshold.is_some_and(|t| size > t)
}

/// Bytes in hand (an API commit's content).
pub struct InHand(pub Vec<u8>);

#[async_trait::async_trait]
impl Content for InHand {
    fn size(&self) -> u64 {
        self.0.len() as u64
    }

    fn pointer(&self) -> Option<Pointer> {
        Pointer::parse(&self.0)
    }

    async fn store_in_lfs(&mut self, store: &Store) -> Result<Pointer, PlacementError> {
        let oid = lfs::Oid::of(&self.0);
        let size = self.size();
        if store.stored_size(&oid).await? != Some(size) {
            let bytes = std::mem::take(&mut self.0);
            let body: objectstore::bucket::ByteStream = Box::pin(std::io::Cursor::new(bytes));
            store.receive(&oid, size, body).await?;
        }
        Ok(Pointer { oid, size })
    }
}

/// A file in the bucket (an artifact version's), of a known size.
pub struct InBucket {
    /// Its key.
    pub key: String,
    /// Its size in bytes.
    pub size: u64,
}

#[async_trait::async_trait]
impl Content for InBucket {
    fn size(&self) -> u64 {
        self.size
    }

    /// A version's file is never taken for a pointer: it is the artifact's own content.
    fn pointer(&self) -> Option<Pointer> {
        None
    }

    async fn store_in_lfs(&mut self, store: &Store) -> Result<Pointer, PlacementError> {
        let (oid, size) = store.import(&self.key).await?;
        Ok(Pointer { oid, size })
    }
}
