//! Archives of a tree, as `git archive` writes them: tar, tar.gz and zip, streamed.
//!
//! An archive is written in two steps. [`plan`] lists what goes in (every directory, file,
//! symbolic link and submodule under a path, in git's order) with each file's size, so a
//! caller can refuse an archive over its limits before the first byte goes out: a refusal
//! midway would leave the client a truncated file. [`write`] then writes the entries,
//! reading each file as it goes: files stored whole in a pack are inflated a buffer at a
//! time ([`ObjectDb::stream`](objectstore::ObjectDb::stream)), so memory stays flat
//! whatever the archive's size. A caller may substitute a file's content (a Git LFS pointer
//! by the object it names) through [`Substitute`].
//!
//! Like `git archive`: directories are entries of their own; files get mode 0664, executable
//! files and directories 0775 (git's default `tar.umask` of 002); submodules are empty
//! directories; every entry carries the commit's time. The `.gitattributes` attributes
//! `export-ignore` and `export-subst` are not applied.
//!
//! The tar side uses the `tar` crate. The zip side is written here: the `zip` crate's writer
//! seeks back to patch each entry's sizes into its header, which a response body cannot do;
//! a streamed zip puts them in a data descriptor after the data instead (and switches to
//! ZIP64 records past 4 GiB or 65,535 entries).

use std::io::{self, Read, Write};

use gix_hash::ObjectId;
use gix_object::tree::EntryMode;
use objectstore::odb::Reader;

use crate::{Error, Result};

/// The archive formats.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    /// A POSIX tar file.
    Tar,
    /// A tar file compressed with gzip.
    TarGz,
    /// A zip file, deflated.
    Zip,
}

impl Format {
    /// The format a file name's extension names (`.zip`, `.tar.gz`, `.tgz`, `.tar`).
    pub fn from_name(name: &str) -> Option<(&str, Format)> {
        for (ext, format) in [
            (".tar.gz", Format::TarGz),
            (".tgz", Format::TarGz),
            (".tar", Format::Tar),
            (".zip", Format::Zip),
        ] {
            if let Some(stem) = name.strip_suffix(ext) {
                return Some((stem, format));
            }
        }
        None
    }

    /// The media type of the format.
    pub fn content_type(self) -> &'static str {
        match self {
            Format::Tar => "application/x-tar",
            Format::TarGz => "application/gzip",
            Format::Zip => "application/zip",
        }
    }
}

/// What an entry of an archive is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Item {
    /// A directory (a submodule is one too, empty).
    Directory,
    /// A regular file; `executable` for mode 100755.
    File {
        /// The file is executable.
        executable: bool,
    },
    /// A symbolic link; the blob is its target.
    Symlink,
}

/// One entry of a [`Plan`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Planned {
    /// The path in the archive (no leading `/`; no trailing `/` for directories).
    pub path: String,
    /// What it is.
    pub item: Item,
    /// The blob (none for directories).
    pub id: Option<ObjectId>,
    /// The bytes the entry will hold (after substitution).
    pub size: u64,
}

/// What goes into an archive.
#[derive(Debug, Clone, Default)]
pub struct Plan {
    /// The entries, in git's order.
    pub entries: Vec<Planned>,
    /// The bytes of content, summed.
    pub total_bytes: u64,
}

/// How large an archive may be.
#[derive(Debug, Clone, Copy)]
pub struct ArchiveLimits {
    /// Entries at most.
    pub max_entries: usize,
    /// Bytes of content at most.
    pub max_bytes: u64,
}

/// Why [`plan`] refused, or the error it met.
#[derive(Debug, thiserror::Error)]
pub enum PlanError {
    /// The archive would exceed a limit.
    #[error("the archive would hold {what}, over the limit of {limit}")]
    TooLarge {
        /// What was counted ("more than N entries", "N bytes").
        what: String,
        /// The limit.
        limit: u64,
    },
    /// Reading the tree failed.
    #[error(transparent)]
    History(#[from] Error),
}

/// Blobs at most this large are shown to the [`Substitute`] (a Git LFS pointer is at most
/// 1024 bytes).
pub const SUBSTITUTE_MAX: u64 = 1024;

/// Replaces a small file's content: given its bytes, the size and reader of what the archive
/// holds instead, or `None` to keep them. [`plan`] asks with `open == false` (only the size
/// matters), [`write`] with `open == true`.
pub trait Substitute {
    /// The replacement's size, if `data` is to be replaced.
    fn size(&mut self, data: &[u8]) -> Option<u64>;
    /// The replacement's bytes (exactly the size [`Self::size`] gave).
    fn open(&mut self, data: &[u8]) -> io::Result<Option<Box<dyn Read + Send>>>;
}

/// Substitutes nothing.
pub struct Verbatim;

impl Substitute for Verbatim {
    fn size(&mut self, _data: &[u8]) -> Option<u64> {
        None
    }
    fn open(&mut self, _data: &[u8]) -> io::Result<Option<Box<dyn Read + Send>>> {
        Ok(None)
    }
}

/// List what an archive of `path` in `tree` holds (the whole tree for `""`; a file's path
/// gives that file), refusing it once over `limits`.
pub fn plan(
    reader: &Reader<'_>,
    tree: &ObjectId,
    path: &str,
    limits: ArchiveLimits,
    substitute: &mut dyn Substitute,
) -> Result<Plan, PlanError> {
    let Some((mode, id)) = crate::tree::entry_at(reader, tree, path)? else {
        return Err(Error::NoSuchPath(path.to_owned()).into());
    };
    let mut plan = Plan::default();
    let mut walk = Walk {
        reader,
        limits,
        substitute,
        buf: Vec::new(),
    };
    // The folders leading to the path are entries too, as `git archive <rev> <path>` lists them.
    let mut leading = String::new();
    let parts: Vec<&str> = path.split('/').filter(|p| !p.is_empty()).collect();
    for part in parts.iter().take(parts.len().saturating_sub(1)) {
        leading = join(&leading, part);
        walk.add(&mut plan, leading.clone(), Item::Directory, None)?;
    }
    match EntryMode::try_from(mode) {
        Ok(m) if m.is_tree() => {
            if !path.is_empty() {
                walk.add(&mut plan, path.to_owned(), Item::Directory, None)?;
            }
            walk.tree(&mut plan, &id, path)?;
        }
        Ok(m) => walk.leaf(&mut plan, path.to_owned(), m, id)?,
        Err(_) => {}
    }
    Ok(plan)
}

fn join(prefix: &str, name: &str) -> String {
    if prefix.is_empty() {
        name.to_owned()
    } else {
        format!("{prefix}/{name}")
    }
}

struct Walk<'r, 'a, 's> {
    reader: &'r Reader<'a>,
    limits: ArchiveLimits,
    substitute: &'s mut dyn Substitute,
    buf: Vec<u8>,
}

impl Walk<'_, '_, '_> {
    fn add(
        &mut self,
        plan: &mut Plan,
        path: String,
        item: Item,
        blob: Option<(ObjectId, u64)>,
    ) -> Result<(), PlanError> {
        if plan.entries.len() >= self.limits.max_entries {
            return Err(PlanError::TooLarge {
                what: format!("more than {} entries", self.limits.max_entries),
                limit: self.limits.max_entries as u64,
            });
        }
        let size = blob.map_or(0, |(_, size)| size);
        plan.total_bytes = plan.total_bytes.saturating_add(size);
        if plan.total_bytes > self.limits.max_bytes {
            return Err(PlanError::TooLarge {
                what: format!("more than {} bytes", self.limits.max_bytes),
                limit: self.limits.max_bytes,
            });
        }
        plan.entries.push(Planned {
            path,
            item,
            id: blob.map(|(id, _)| id),
            size,
        });
        Ok(())
    }

    fn tree(&mut self, plan: &mut Plan, tree: &ObjectId, prefix: &str) -> Result<(), PlanError> {
        for (mode, name, id) in crate::tree::entries_of(self.reader, tree, &mut self.buf)? {
            let path = join(prefix, &name);
            if mode.is_tree() {
                self.add(plan, path.clone(), Item::Directory, None)?;
                self.tree(plan, &id, &path)?;
            } else {
                self.leaf(plan, path, mode, id)?;
            }
        }
        Ok(())
    }

    fn leaf(
        &mut self,
        plan: &mut Plan,
        path: String,
        mode: EntryMode,
        id: ObjectId,
    ) -> Result<(), PlanError> {
        if mode.is_commit() {
            return self.add(plan, path, Item::Directory, None);
        }
        let size = self
            .reader
            .header(&id)
            .map_err(Error::from)?
            .map_or(0, |(_, size)| size);
        let item = if mode.is_link() {
            Item::Symlink
        } else {
            Item::File {
                executable: mode.is_executable(),
            }
        };
        let mut size = size;
        if item != Item::Symlink && size <= SUBSTITUTE_MAX {
            self.reader.read(&id, &mut self.buf).map_err(Error::from)?;
            if let Some(replaced) = self.substitute.size(&self.buf) {
                size = replaced;
            }
        }
        self.add(plan, path, item, Some((id, size)))
    }
}

/// Write the archive of `plan` to `out`, entries dated `mtime` (seconds since 1970), under
/// `prefix` (like `git archive --prefix`: `""`, or a folder name ending in `/`).
pub fn write(
    reader: &Reader<'_>,
    plan: &Plan,
    format: Format,
    prefix: &str,
    mtime: i64,
    substitute: &mut dyn Substitute,
    out: &mut dyn Write,
) -> io::Result<()> {
    match format {
        Format::Tar => write_tar(reader, plan, prefix, mtime, substitute, out),
        Format::TarGz => {
            let mut gz = flate2::write::GzEncoder::new(out, flate2::Compression::new(6));
            write_tar(reader, plan, prefix, mtime, substitute, &mut gz)?;
            gz.finish()?;
            Ok(())
        }
        Format::Zip => {
            let mut zip = crate::zip::ZipStream::new(out);
            for entry in &plan.entries {
                let name = format!("{prefix}{}", entry.path);
                match entry.item {
                    Item::Directory => zip.directory(&name, mtime)?,
                    Item::Symlink => {
                        let mut content = open(reader, entry, substitute, false)?;
                        zip.file(&name, 0o120777, mtime, &mut content)?;
                    }
                    Item::File { executable } => {
                        let mode = if executable { 0o100775 } else { 0o100664 };
                        let mut content = open(reader, entry, substitute, true)?;
                        zip.file(&name, mode, mtime, &mut content)?;
                    }
                }
            }
            zip.finish()?;
            Ok(())
        }
    }
}

fn write_tar(
    reader: &Reader<'_>,
    plan: &Plan,
    prefix: &str,
    mtime: i64,
    substitute: &mut dyn Substitute,
    out: &mut dyn Write,
) -> io::Result<()> {
    let mut tar = tar::Builder::new(out);
    let mtime = u64::try_from(mtime).unwrap_or(0);
    for entry in &plan.entries {
        let mut header = tar::Header::new_gnu();
        header.set_mtime(mtime);
        header.set_uid(0);
        header.set_gid(0);
        let name = format!("{prefix}{}", entry.path);
        match entry.item {
            Item::Directory => {
                header.set_entry_type(tar::EntryType::Directory);
                header.set_mode(0o775);
                header.set_size(0);
                tar.append_data(&mut header, format!("{name}/"), io::empty())?;
            }
            Item::Symlink => {
                let mut target = Vec::new();
                open(reader, entry, substitute, false)?.read_to_end(&mut target)?;
                header.set_entry_type(tar::EntryType::Symlink);
                header.set_mode(0o777);
                header.set_size(0);
                let target = String::from_utf8_lossy(&target).into_owned();
                tar.append_link(&mut header, &name, target)?;
            }
            Item::File { executable } => {
                header.set_entry_type(tar::EntryType::Regular);
                header.set_mode(if executable { 0o775 } else { 0o664 });
                header.set_size(entry.size);
                let content = open(reader, entry, substitute, true)?;
                tar.append_data(&mut header, &name, Exactly::new(content, entry.size))?;
            }
        }
    }
    tar.into_inner()?.flush()
}

/// The bytes of a planned file: substituted, streamed from its pack, or read whole (a
/// delta).
fn open(
    reader: &Reader<'_>,
    entry: &Planned,
    substitute: &mut dyn Substitute,
    may_substitute: bool,
) -> io::Result<Box<dyn Read + Send>> {
    let Some(id) = entry.id else {
        return Ok(Box::new(io::empty()));
    };
    let to_io = |e: objectstore::odb::Error| io::Error::other(e.to_string());
    let small = reader.header(&id).map_err(to_io)?.map_or(0, |(_, s)| s) <= SUBSTITUTE_MAX;
    if small {
        let mut data = Vec::new();
        reader.read(&id, &mut data).map_err(to_io)?;
        if may_substitute {
            if let Some(replaced) = substitute.open(&data)? {
                return Ok(replaced);
            }
        }
        return Ok(Box::new(io::Cursor::new(data)));
    }
    if let Some(stream) = reader.db().stream(&id).map_err(to_io)? {
        return Ok(Box::new(stream));
    }
    let mut data = Vec::new();
    reader.read(&id, &mut data).map_err(to_io)?;
    Ok(Box::new(io::Cursor::new(data)))
}

/// A reader that yields exactly `size` bytes or fails: a replacement shorter or longer than
/// planned would corrupt a tar stream (whose headers carry sizes).
pub struct Exactly<R> {
    inner: R,
    left: u64,
}

impl<R: Read> Exactly<R> {
    /// `inner`, which must hold `size` bytes.
    pub fn new(inner: R, size: u64) -> Self {
        Exactly { inner, left: size }
    }
}

impl<R: Read> Read for Exactly<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if self.left == 0 {
            return Ok(0);
        }
        let want = (buf.len() as u64).min(self.left) as usize;
        let n = self.inner.read(&mut buf[..want])?;
        if n == 0 {
            return Err(io::Error::new(
                io::ErrorKind::UnexpectedEof,
                "a file's content ended before its size",
            ));
        }
        self.left -= n as u64;
        Ok(n)
    }
}
