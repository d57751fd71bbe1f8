//! `POST …/git-upload-archive`: `git archive --remote=<url>`, which git (2.44 and newer, over
//! protocol v2) sends over Smart HTTP. The same archive as `…/archive/{rev}.{ext}`, framed as
//! git's `upload-archive` frames it ([`protocol::upload_archive`]); a refusal is a `NACK`
//! git prints as `fatal: git archive: <reason>`.

use std::sync::Arc;

use http::{Request, Response};
use hyper::body::Incoming;
use protocol::pktline::PktReader;
use protocol::sideband::{BandWriter, Mode};
use protocol::upload_archive::{write_ack, write_nack, ArchiveRequest};

use crate::app::App;
use crate::body::{self, ResponseBody};
use crate::repo::Repo;
use crate::response::{git_response, HttpError};
use history::archive::Format;

/// The largest request: a command line.
const MAX_REQUEST: u64 = 256 << 10;
const CONTENT_TYPE: &str = "application/x-git-upload-archive-result";

/// Answer a remote archive request.
pub async fn handle(
    app: Arc<App>,
    repo: Repo,
    snapshot: refs::Snapshot,
    req: Request<Incoming>,
) -> Result<Response<ResponseBody>, HttpError> {
    let data = body::read_all(
        req.into_body(),
        MAX_REQUEST,
        app.config.timeouts.request_body,
    )
    .await?;
    let request = match ArchiveRequest::read(&mut PktReader::new(&data[..])) {
        Ok(Ok(r)) => r,
        Ok(Err(unsupported)) => return Ok(nack(&unsupported.to_string())),
        Err(e) => return Err(HttpError::BadRequest(e.to_string())),
    };
    match start(&app, repo, snapshot, request).await {
        Ok(resp) => Ok(resp),
        Err(e @ (HttpError::Storage(_) | HttpError::Internal(_) | HttpError::Busy)) => Err(e),
        Err(refused) => Ok(nack(&refused.to_string())),
    }
}

fn nack(reason: &str) -> Response<ResponseBody> {
    let mut out = Vec::new();
    write_nack(&mut out, reason);
    git_response(CONTENT_TYPE, body::full(out))
}

async fn start(
    app: &Arc<App>,
    repo: Repo,
    snapshot: refs::Snapshot,
    request: ArchiveRequest,
) -> Result<Response<ResponseBody>, HttpError> {
    let format = match request.format.as_deref().unwrap_or("tar") {
        "tar" => Format::Tar,
        "tgz" | "tar.gz" => Format::TarGz,
        "zip" => Format::Zip,
        other => {
            return Err(HttpError::BadRequest(format!(
                "unknown archive format {other:?}"
            )))
        }
    };
    if request.paths.len() > 1 {
        return Err(HttpError::BadRequest("archive one path at most".into()));
    }
    let bad = |e: history::Error| HttpError::BadRequest(e.to_string());
    let path =
        history::normalize_path(request.paths.first().map_or("", String::as_str)).map_err(bad)?;
    let (rev, inner) = match request.tree_ish.split_once(':') {
        Some((rev, inner)) => (rev.to_owned(), history::normalize_path(inner).map_err(bad)?),
        None => (request.tree_ish.clone(), String::new()),
    };
    let prefix = request.prefix.unwrap_or_default();
    if prefix.contains('\0') {
        return Err(HttpError::BadRequest("the prefix holds a NUL byte".into()));
    }
    let at = super::open_at(app, repo, snapshot, rev).await?;
    // `<rev>:<path>` archives that folder as the root.
    let tree = match inner.is_empty() {
        true => at.tree,
        false => {
            let (db, root, name) = (at.db.clone(), at.tree, inner.clone());
            let found =
                tokio::task::spawn_blocking(move || history::entry_at(&db.reader(), &root, &name))
                    .await
                    .map_err(|e| HttpError::Internal(format!("task failed: {e}")))?
                    .map_err(super::history_error)?;
            match found {
                Some((0o040000, id)) => id,
                _ => {
                    return Err(HttpError::NotFound(format!(
                        "not a tree: {}",
                        request.tree_ish
                    )))
                }
            }
        }
    };
    let prepared = super::archive::prepare(app, at, tree, &path).await?;
    let (mut writer, response_body) = body::channel();
    let mut ack = Vec::new();
    write_ack(&mut ack);
    std::io::Write::write_all(&mut writer, &ack).map_err(|e| HttpError::Internal(e.to_string()))?;
    let bands = BandWriter::new(writer, Mode::Large);
    prepared
        .write(app, format, prefix, bands, |bands, written| {
            let _ = match written {
                Ok(()) => bands.finish(),
                Err(e) => bands.fail(&format!("the archive failed: {e}")),
            };
        })
        .await?;
    Ok(git_response(CONTENT_TYPE, response_body))
}
