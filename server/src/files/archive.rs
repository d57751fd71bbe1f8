//! `GET …/archive/{rev}.zip|.tar.gz|.tgz|.tar[?path=<folder>&prefix=<dir/>]`: the tree (or a
//! folder of it) at a revision as an archive, Git LFS files with their real contents.
//!
//! The archive is planned first ([`history::archive::plan`]): every entry and its size,
//! the LFS objects it needs checked in the store, so an archive over the limits or missing
//! an object is refused with a status before the first byte (a failure midway would leave a
//! truncated file that looks whole; if one happens anyway, the connection is cut). It is
//! then written on a blocking thread into the response as it goes, holding a slot as a clone
//! does.

use std::io::{self, Read, Write};
use std::sync::Arc;

use futures_util::stream::{self, StreamExt, TryStreamExt};
use http::{header, HeaderValue, Response};

use super::AtRevision;
use crate::app::App;
use crate::body::{self, ResponseBody};
use crate::response::HttpError;
use history::archive::{self as hist, Format, Substitute};

/// LFS objects checked at once.
const CHECKS_AT_ONCE: usize = 16;

/// What an archive URL asks for beyond the revision.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ArchiveQuery {
    /// The folder (or file) archived; the whole tree when empty.
    pub path: String,
    /// Put before every path in the archive (ends in `/`, or is empty).
    pub prefix: String,
}

impl ArchiveQuery {
    /// Parse `path` and `prefix`.
    pub fn parse(query: &str) -> Result<Self, HttpError> {
        let mut q = ArchiveQuery::default();
        let bad = |e: history::Error| HttpError::BadRequest(e.to_string());
        for (key, value) in form_urlencoded::parse(query.as_bytes()) {
            match &*key {
                "path" => q.path = history::normalize_path(&value).map_err(bad)?,
                "prefix" => {
                    let p = history::normalize_path(&value).map_err(bad)?;
                    q.prefix = if p.is_empty() { p } else { format!("{p}/") };
                }
                _ => {}
            }
        }
        Ok(q)
    }
}

/// Records the LFS pointers a plan meets (their objects' sizes go into the plan).
#[derive(Default)]
struct Pointers(Vec<lfs::Pointer>);

impl Substitute for Pointers {
    fn size(&mut self, data: &[u8]) -> Option<u64> {
        let pointer = lfs::Pointer::parse(data)?;
        let size = pointer.size;
        self.0.push(pointer);
        Some(size)
    }
    fn open(&mut self, _data: &[u8]) -> io::Result<Option<Box<dyn Read + Send>>> {
        Ok(None)
    }
}

/// Replaces LFS pointers by their objects, read from the bucket.
struct Smudge {
    store: lfs::Store,
    runtime: tokio::runtime::Handle,
}

impl Substitute for Smudge {
    fn size(&mut self, data: &[u8]) -> Option<u64> {
        lfs::Pointer::parse(data).map(|p| p.size)
    }
    fn open(&mut self, data: &[u8]) -> io::Result<Option<Box<dyn Read + Send>>> {
        let Some(pointer) = lfs::Pointer::parse(data) else {
            return Ok(None);
        };
        let store = self.store.clone();
        let open = async move {
            store
                .read_range(&pointer.oid, 0, pointer.size)
                .await
                .map_err(|e| io::Error::other(e.to_string()))
        };
        let reader = crate::bridge::blocking_reader(&self.runtime, open);
        Ok(Some(Box::new(reader)))
    }
}

/// An archive planned and checked, ready to be written.
pub struct Prepared {
    at: AtRevision,
    plan: hist::Plan,
    store: lfs::Store,
}

/// Plan the archive of `path` in `tree` (the revision's tree or one of its subtrees) and
/// check that every LFS object it needs is stored: every refusal happens here.
pub async fn prepare(
    app: &App,
    at: AtRevision,
    tree: gix_hash::ObjectId,
    path: &str,
) -> Result<Prepared, HttpError> {
    let limits = hist::ArchiveLimits {
        max_entries: app.config.limits.max_archive_entries,
        max_bytes: app.config.limits.max_archive_bytes,
    };
    let (plan, pointers) = {
        let (db, path) = (at.db.clone(), path.to_owned());
        tokio::task::spawn_blocking(move || {
            let mut pointers = Pointers::default();
            let plan = hist::plan(&db.reader(), &tree, &path, limits, &mut pointers);
            plan.map(|p| (p, pointers.0))
        })
        .await
        .map_err(|e| HttpError::Internal(format!("task failed: {e}")))?
        .map_err(|e| match e {
            e @ hist::PlanError::TooLarge { .. } => HttpError::TooLarge(e.to_string()),
            hist::PlanError::History(e) => super::history_error(e),
        })?
    };
    let store = lfs::Store::new(
        app.storage.bucket.clone(),
        at.repo.keys.clone(),
        app.config.lfs,
    );
    check_stored(&store, pointers).await?;
    Ok(Prepared { at, plan, store })
}

impl Prepared {
    /// Write the archive into `out` on a blocking thread, holding a slot as a clone does;
    /// `finish` gets `out` back with the outcome (to end the body its own way).
    pub async fn write<W, F>(
        self,
        app: &App,
        format: Format,
        prefix: String,
        mut out: W,
        finish: F,
    ) -> Result<(), HttpError>
    where
        W: Write + Send + 'static,
        F: FnOnce(W, io::Result<()>) + Send + 'static,
    {
        let Some(slot) = app.slots.take(app.config.timeouts.queue).await else {
            return Err(HttpError::Busy);
        };
        let runtime = tokio::runtime::Handle::current();
        tokio::task::spawn_blocking(move || {
            let _slot = slot;
            let Prepared { at, plan, store } = self;
            let mut smudge = Smudge { store, runtime };
            let reader = at.db.reader();
            let written = hist::write(
                &reader,
                &plan,
                format,
                &prefix,
                at.time,
                &mut smudge,
                &mut out,
            );
            match &written {
                Ok(()) => tracing::info!(
                    repo = %at.repo.id,
                    entries = plan.entries.len(),
                    bytes = plan.total_bytes,
                    "archive sent"
                ),
                Err(e) => tracing::warn!(repo = %at.repo.id, error = %e, "archive failed"),
            }
            finish(out, written);
        });
        Ok(())
    }
}

/// Answer an archive request.
pub async fn serve(
    app: Arc<App>,
    at: AtRevision,
    format: Format,
    q: ArchiveQuery,
    head: bool,
) -> Result<Response<ResponseBody>, HttpError> {
    let tree = at.tree;
    let name = download_name(&at, &q, format);
    let commit = at.commit;
    let prepared = prepare(&app, at, tree, &q.path).await?;
    let mut resp = Response::new(body::full(Vec::new()));
    let h = resp.headers_mut();
    h.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static(format.content_type()),
    );
    if let Ok(v) = HeaderValue::from_str(&format!("attachment; filename=\"{name}\"")) {
        h.insert(header::CONTENT_DISPOSITION, v);
    }
    if let Ok(v) = HeaderValue::from_str(&commit.to_string()) {
        h.insert("x-repo-commit", v);
    }
    if head {
        return Ok(resp);
    }
    let (writer, response_body) = body::channel();
    prepared
        .write(&app, format, q.prefix, writer, |writer, written| {
            if let Err(e) = written {
                writer.abort(&e.to_string());
            }
        })
        .await?;
    *resp.body_mut() = response_body;
    Ok(resp)
}

/// Every LFS object the archive needs is stored, with the size its pointer says.
async fn check_stored(
    store: &lfs::Store,
    mut pointers: Vec<lfs::Pointer>,
) -> Result<(), HttpError> {
    pointers.sort_by(|a, b| a.oid.as_str().cmp(b.oid.as_str()));
    pointers.dedup_by(|a, b| a.oid == b.oid);
    stream::iter(pointers)
        .map(|p| async move {
            match store.stored_size(&p.oid).await {
                Ok(Some(size)) if size == p.size => Ok(()),
                Ok(_) => Err(HttpError::NotFound(format!(
                    "the Git LFS object {} ({} bytes) is not stored; the archive cannot hold it",
                    p.oid, p.size
                ))),
                Err(e) => Err(HttpError::Storage(e.to_string())),
            }
        })
        .buffer_unordered(CHECKS_AT_ONCE)
        .try_collect::<Vec<()>>()
        .await?;
    Ok(())
}

/// `{alias}-{rev}[-{folder}].{ext}`, with only characters safe in a header's quoted string.
fn download_name(at: &AtRevision, q: &ArchiveQuery, format: Format) -> String {
    let ext = match format {
        Format::Tar => "tar",
        Format::TarGz => "tar.gz",
        Format::Zip => "zip",
    };
    let mut stem = format!("{}-{}", at.repo.id.alias, at.rev);
    if !q.path.is_empty() {
        stem = format!("{stem}-{}", q.path);
    }
    let safe: String = stem
        .chars()
        .map(|c| match c {
            'a'..='z' | 'A'..='Z' | '0'..='9' | '.' | '_' | '-' => c,
            _ => '-',
        })
        .collect();
    format!("{safe}.{ext}")
}
