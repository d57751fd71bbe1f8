//! A bucket in a local directory: the embedded default.
//!
//! Each key is a file under the root, so a repository's prefix is a bare git repository that
//! stock git opens in place. Writes go to a temporary file that is fsynced and renamed over
//! the target (readers never see a partial object, a crash leaves the old one). Conditional
//! writes hold an exclusive `flock` on a per-key lock file while they compare and rename, which
//! serialises writers in different processes as well as in different threads.

use std::fs::{self, File, OpenOptions};
use std::io::{self, Read, Seek, SeekFrom, Write};
use std::ops::Range;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::UNIX_EPOCH;

use async_trait::async_trait;
use bytes::Bytes;

use super::{
    content_etag, validate_key, Accept, Bucket, ByteStream, ETag, Error, GetResult, ObjectMeta,
    PutMode, Result,
};

/// The directory under the root that holds lock and temporary files; never a key.
use crate::layout::LOCAL_INTERNAL_DIR as INTERNAL_DIR;

#[derive(Debug, Clone)]
/// A bucket in a local directory: keys are paths below the root, writes go to a temporary file renamed into place, conditional writes hold a per-key lock file.
pub struct FsBucket {
    root: PathBuf,
}

static TMP_COUNTER: AtomicU64 = AtomicU64::new(0);

impl FsBucket {
    /// Open (creating if needed) a bucket rooted at `root`.
    pub fn new(root: impl Into<PathBuf>) -> Result<Self> {
        let root = root.into();
        for dir in ["locks", "tmp"] {
            let path = root.join(INTERNAL_DIR).join(dir);
            fs::create_dir_all(&path).map_err(|e| Error::io(&path.display().to_string(), e))?;
        }
        Ok(FsBucket { root })
    }

    /// The directory the keys live in.
    pub fn root(&self) -> &Path {
        &self.root
    }

    fn path(&self, key: &str) -> Result<PathBuf> {
        validate_key(key)?;
        if key == INTERNAL_DIR || key.starts_with(&format!("{INTERNAL_DIR}/")) {
            return Err(Error::InvalidKey(key.to_owned()));
        }
        Ok(self.root.join(key))
    }

    fn temp_path(&self) -> PathBuf {
        let n = TMP_COUNTER.fetch_add(1, Ordering::Relaxed);
        self.root
            .join(INTERNAL_DIR)
            .join("tmp")
            .join(format!("{}-{n}", std::process::id()))
    }

    fn lock_path(&self, key: &str) -> PathBuf {
        let name = content_etag(key.as_bytes()).0;
        self.root.join(INTERNAL_DIR).join("locks").join(name)
    }

    /// The blocking body of every write: stage the content in a temporary file, then under the
    /// key's lock check the precondition and rename it into place.
    fn write_blocking(
        &self,
        key: &str,
        mode: PutMode,
        stage: impl FnOnce(&Path) -> io::Result<()>,
    ) -> Result<ETag> {
        let tmp = self.temp_path();
        if let Err(e) = stage(&tmp) {
            let _ = fs::remove_file(&tmp);
            return Err(Error::io(key, e));
        }
        self.commit_blocking(key, mode, &tmp)
    }

    /// Under the key's lock, check the precondition and rename the staged file `tmp` into
    /// place (removing it whatever happens).
    fn commit_blocking(&self, key: &str, mode: PutMode, tmp: &Path) -> Result<ETag> {
        let io_err = |e| Error::io(key, e);
        let result = (|| {
            let target = self.path(key)?;
            let etag = file_etag(tmp).map_err(io_err)?;
            let lock = OpenOptions::new()
                .create(true)
                .truncate(false)
                .write(true)
                .open(self.lock_path(key))
                .map_err(io_err)?;
            lock.lock().map_err(io_err)?;
            let current = match file_etag(&target) {
                Ok(tag) => Some(tag),
                Err(e) if e.kind() == io::ErrorKind::NotFound => None,
                Err(e) => return Err(io_err(e)),
            };
            let allowed = match (&mode, &current) {
                (PutMode::Overwrite, _) => true,
                (PutMode::Create, cur) => cur.is_none(),
                (PutMode::Update(want), Some(cur)) => want == cur,
                (PutMode::Update(_), None) => false,
            };
            if !allowed {
                return Err(Error::PreconditionFailed(key.to_owned()));
            }
            if let Some(parent) = target.parent() {
                fs::create_dir_all(parent).map_err(io_err)?;
            }
            fs::rename(tmp, &target).map_err(io_err)?;
            if let Some(parent) = target.parent() {
                // The rename is durable only once the directory entry is.
                File::open(parent)
                    .and_then(|d| d.sync_all())
                    .map_err(io_err)?;
            }
            drop(lock);
            Ok(etag)
        })();
        if result.is_err() {
            let _ = fs::remove_file(tmp);
        }
        result
    }

    fn list_blocking(&self, prefix: &str) -> Result<Vec<ObjectMeta>> {
        // Start the walk at the deepest directory the prefix names.
        let dir_part = match prefix.rfind('/') {
            Some(i) => &prefix[..i],
            None => "",
        };
        let start = if dir_part.is_empty() {
            self.root.clone()
        } else {
            self.path(dir_part)?
        };
        let mut out = Vec::new();
        let mut stack = vec![start];
        while let Some(dir) = stack.pop() {
            let entries = match fs::read_dir(&dir) {
                Ok(e) => e,
                Err(e)
                    if e.kind() == io::ErrorKind::NotFound
                        || e.kind() == io::ErrorKind::NotADirectory =>
                {
                    continue
                }
                Err(e) => return Err(Error::io(prefix, e)),
            };
            for entry in entries {
                let entry = entry.map_err(|e| Error::io(prefix, e))?;
                let path = entry.path();
                let Ok(rel) = path.strip_prefix(&self.root) else {
                    continue;
                };
                let key: String = rel
                    .components()
                    .map(|c| c.as_os_str().to_string_lossy().into_owned())
                    .collect::<Vec<_>>()
                    .join("/");
                if key == INTERNAL_DIR {
                    continue;
                }
                // A file deleted between the directory read and this stat is simply not
                // listed, as an S3 listing taken a moment later would not list it.
                let meta = match entry.metadata() {
                    Ok(meta) => meta,
                    Err(e) if e.kind() == io::ErrorKind::NotFound => continue,
                    Err(e) => return Err(Error::io(&key, e)),
                };
                if meta.is_dir() {
                    if prefix.starts_with(&format!("{key}/"))
                        || key.starts_with(prefix)
                        || prefix.is_empty()
                    {
                        stack.push(path);
                    }
                } else if key.starts_with(prefix) {
                    let last_modified = meta
                        .modified()
                        .ok()
                        .and_then(|t| t.duration_since(UNIX_EPOCH).ok())
                        .map_or(0, |d| d.as_secs() as i64);
                    out.push(ObjectMeta {
                        key,
                        size: meta.len(),
                        last_modified,
                    });
                }
            }
        }
        out.sort_by(|a, b| a.key.cmp(&b.key));
        Ok(out)
    }
}

fn file_etag(path: &Path) -> io::Result<ETag> {
    let mut file = File::open(path)?;
    let mut hasher = crate::format::content_hasher();
    let mut buf = vec![0u8; 64 * 1024];
    loop {
        let n = file.read(&mut buf)?;
        if n == 0 {
            break;
        }
        hasher.update(&buf[..n]);
    }
    Ok(ETag(crate::format::finish_hex(hasher)))
}

fn not_found_or_io(key: &str, e: io::Error) -> Error {
    if e.kind() == io::ErrorKind::NotFound {
        Error::NotFound(key.to_owned())
    } else {
        Error::io(key, e)
    }
}

async fn blocking<T: Send + 'static>(f: impl FnOnce() -> Result<T> + Send + 'static) -> Result<T> {
    tokio::task::spawn_blocking(f)
        .await
        .map_err(|e| Error::Backend {
            key: String::new(),
            message: format!("storage task failed: {e}"),
        })?
}

#[async_trait]
impl Bucket for FsBucket {
    async fn get(&self, key: &str) -> Result<GetResult> {
        let path = self.path(key)?;
        let key = key.to_owned();
        blocking(move || {
            let data = fs::read(&path).map_err(|e| not_found_or_io(&key, e))?;
            Ok(GetResult {
                etag: content_etag(&data),
                data: Bytes::from(data),
            })
        })
        .await
    }

    async fn get_range(&self, key: &str, range: Range<u64>) -> Result<Bytes> {
        let path = self.path(key)?;
        let key = key.to_owned();
        blocking(move || {
            let mut file = File::open(&path).map_err(|e| not_found_or_io(&key, e))?;
            let len = file.metadata().map_err(|e| Error::io(&key, e))?.len();
            let end = range.end.min(len);
            let start = range.start.min(end);
            file.seek(SeekFrom::Start(start))
                .map_err(|e| Error::io(&key, e))?;
            let mut buf = vec![0u8; (end - start) as usize];
            file.read_exact(&mut buf).map_err(|e| Error::io(&key, e))?;
            Ok(Bytes::from(buf))
        })
        .await
    }

    async fn get_to_file(&self, key: &str, path: &Path) -> Result<u64> {
        let src = self.path(key)?;
        let dst = path.to_owned();
        let key = key.to_owned();
        blocking(move || fs::copy(&src, &dst).map_err(|e| not_found_or_io(&key, e))).await
    }

    async fn put(&self, key: &str, data: Bytes, mode: PutMode) -> Result<ETag> {
        let this = self.clone();
        let key = key.to_owned();
        blocking(move || {
            this.write_blocking(&key, mode, |tmp| {
                let mut f = File::create(tmp)?;
                f.write_all(&data)?;
                f.sync_all()
            })
        })
        .await
    }

    async fn put_file(&self, key: &str, path: &Path, mode: PutMode) -> Result<ETag> {
        let this = self.clone();
        let key = key.to_owned();
        let src = path.to_owned();
        blocking(move || {
            this.write_blocking(&key, mode, |tmp| {
                // A hard link avoids copying a large pack when the source is on the same disk.
                if fs::hard_link(&src, tmp).is_err() {
                    fs::copy(&src, tmp)?;
                }
                File::open(tmp)?.sync_all()
            })
        })
        .await
    }

    async fn list(&self, prefix: &str) -> Result<Vec<ObjectMeta>> {
        let this = self.clone();
        let prefix = prefix.to_owned();
        blocking(move || this.list_blocking(&prefix)).await
    }

    async fn list_folders(&self, prefix: &str) -> Result<Vec<String>> {
        let dir = match prefix.trim_end_matches('/') {
            "" => self.root.clone(),
            d => self.path(d)?,
        };
        let prefix = prefix.to_owned();
        blocking(move || {
            let entries = match fs::read_dir(&dir) {
                Ok(e) => e,
                Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(Vec::new()),
                Err(e) => return Err(Error::io(&prefix, e)),
            };
            let mut out = Vec::new();
            for entry in entries {
                let entry = entry.map_err(|e| Error::io(&prefix, e))?;
                let is_dir = entry.file_type().is_ok_and(|t| t.is_dir());
                match (is_dir, entry.file_name().into_string()) {
                    // A directory left empty by deletions may still be listed: callers check
                    // what they find in a folder, as they must on any backend.
                    (true, Ok(name)) if name != INTERNAL_DIR => out.push(name),
                    _ => {}
                }
            }
            out.sort();
            Ok(out)
        })
        .await
    }

    async fn delete(&self, key: &str) -> Result<()> {
        let path = self.path(key)?;
        let key = key.to_owned();
        blocking(move || match fs::remove_file(&path) {
            Ok(()) => Ok(()),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(()),
            Err(e) => Err(Error::io(&key, e)),
        })
        .await
    }

    async fn head(&self, key: &str) -> Result<ObjectMeta> {
        let path = self.path(key)?;
        let key = key.to_owned();
        blocking(move || {
            let meta = fs::metadata(&path).map_err(|e| not_found_or_io(&key, e))?;
            if meta.is_dir() {
                return Err(Error::NotFound(key));
            }
            let last_modified = meta
                .modified()
                .ok()
                .and_then(|t| t.duration_since(UNIX_EPOCH).ok())
                .map_or(0, |d| d.as_secs() as i64);
            Ok(ObjectMeta {
                key,
                size: meta.len(),
                last_modified,
            })
        })
        .await
    }

    async fn get_stream(&self, key: &str) -> Result<ByteStream> {
        let path = self.path(key)?;
        let file = tokio::fs::File::open(&path)
            .await
            .map_err(|e| not_found_or_io(key, e))?;
        Ok(Box::pin(tokio::io::BufReader::with_capacity(
            256 << 10,
            file,
        )))
    }

    async fn put_stream(
        &self,
        key: &str,
        mut data: ByteStream,
        mode: PutMode,
        accept: &Accept,
    ) -> Result<Option<ETag>> {
        self.path(key)?;
        let tmp = self.temp_path();
        let staged = async {
            let mut file = tokio::fs::File::create(&tmp).await?;
            tokio::io::copy(&mut data, &mut file).await?;
            file.sync_all().await
        }
        .await;
        if let Err(e) = staged {
            let _ = tokio::fs::remove_file(&tmp).await;
            return Err(Error::io(key, e));
        }
        if !accept() {
            let _ = tokio::fs::remove_file(&tmp).await;
            return Ok(None);
        }
        let this = self.clone();
        let key = key.to_owned();
        blocking(move || this.commit_blocking(&key, mode, &tmp))
            .await
            .map(Some)
    }

    async fn copy(&self, from: &str, to: &str, mode: PutMode) -> Result<ETag> {
        let src = self.path(from)?;
        let this = self.clone();
        let (from, to) = (from.to_owned(), to.to_owned());
        blocking(move || {
            if !src.is_file() {
                return Err(Error::NotFound(from));
            }
            // A copy, not a link: the two keys must never change together.
            this.write_blocking(&to, mode, |tmp| {
                fs::copy(&src, tmp)?;
                File::open(tmp)?.sync_all()
            })
        })
        .await
    }

    fn local_path(&self, key: &str) -> Option<PathBuf> {
        self.path(key).ok()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;

    #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
    async fn meets_the_contract() -> Result<()> {
        let dir = tempfile::tempdir().map_err(|e| Error::io("tmp", e))?;
        super::super::contract::check(Arc::new(FsBucket::new(dir.path())?)).await
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn internal_files_are_not_keys() -> Result<()> {
        let dir = tempfile::tempdir().map_err(|e| Error::io("tmp", e))?;
        let bucket = FsBucket::new(dir.path())?;
        bucket
            .put("a", Bytes::from_static(b"x"), PutMode::Overwrite)
            .await?;
        let keys: Vec<String> = bucket.list("").await?.into_iter().map(|m| m.key).collect();
        assert_eq!(keys, vec!["a".to_string()]);
        assert!(matches!(
            bucket.get(".artifact-git/locks/x").await,
            Err(Error::InvalidKey(_))
        ));
        Ok(())
    }
}
