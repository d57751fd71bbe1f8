//! `GET {git_url}/bundle?ref=<name>&since=<commit>`: a git bundle of the repository, streamed.
//!
//! The `bundle` RPC method answers with this URL; it is fetched with the same token as a clone
//! (read access). The refs are read when the bundle is fetched (as `git bundle create` reads
//! them when it runs); `since` names commits by full id, fixed when the URL was made, and
//! makes an incremental bundle that lists them as prerequisites. The header is written first,
//! then the pack by the same code that answers a fetch, so nothing is built in memory; a
//! failure midway cuts the connection, so a partial download never looks like a whole bundle.

use std::sync::Arc;

use gix_hash::ObjectId;
use http::{header, Request};
use hyper::body::Incoming;
use refs::Snapshot;

use crate::app::App;
use crate::body::{self, ResponseBody};
use crate::fetch::{write_bundle_pack, Output, Source};
use crate::repo::Repo;
use crate::response::{git_response, HttpError};
use history::{BundlePlan, MAX_BUNDLE_NAMES};

/// Commits walked at most to find that every prerequisite is reachable from the refs.
const MAX_REACH_WALK: usize = 2_000_000;

/// What a bundle URL asks for.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct BundleQuery {
    /// Ref names (`None`: every branch and tag, and `HEAD`).
    pub refs: Option<Vec<String>>,
    /// Prerequisite commits.
    pub since: Vec<ObjectId>,
}

impl BundleQuery {
    /// Parse the query string; a reason when it is not one this endpoint answers.
    pub fn parse(query: &str) -> Result<Self, String> {
        let mut out = BundleQuery::default();
        for (key, value) in form_urlencoded::parse(query.as_bytes()) {
            match &*key {
                "ref" => {
                    let refs = out.refs.get_or_insert_with(Vec::new);
                    if refs.len() >= MAX_BUNDLE_NAMES {
                        return Err(format!("at most {MAX_BUNDLE_NAMES} refs per bundle"));
                    }
                    if value.is_empty() || value.len() > 1024 {
                        return Err("invalid ref name".into());
                    }
                    refs.push(value.into_owned());
                }
                "since" => {
                    if out.since.len() >= MAX_BUNDLE_NAMES {
                        return Err(format!("at most {MAX_BUNDLE_NAMES} since commits"));
                    }
                    let id = (value.len() == 40 || value.len() == 64)
                        .then(|| ObjectId::from_hex(value.as_bytes()).ok())
                        .flatten()
                        .ok_or_else(|| format!("since: {value:?} is not a full commit id"))?;
                    if !out.since.contains(&id) {
                        out.since.push(id);
                    }
                }
                other => return Err(format!("unknown parameter {other:?}")),
            }
        }
        Ok(out)
    }

    /// The query string for these refs and prerequisites.
    pub fn to_query(&self) -> String {
        let mut q = form_urlencoded::Serializer::new(String::new());
        for name in self.refs.iter().flatten() {
            q.append_pair("ref", name);
        }
        for id in &self.since {
            q.append_pair("since", &id.to_string());
        }
        q.finish()
    }
}

/// Serve a bundle download.
pub async fn handle(
    app: Arc<App>,
    repo: Repo,
    snapshot: Snapshot,
    req: Request<Incoming>,
) -> http::Response<ResponseBody> {
    let query = match BundleQuery::parse(req.uri().query().unwrap_or("")) {
        Ok(q) => q,
        Err(reason) => return HttpError::BadRequest(reason).into_response(),
    };
    if let Err(e) = protocol::check_object_format(snapshot.object_hash, &query.since) {
        return HttpError::BadRequest(format!("since: {e}")).into_response();
    }
    let plan = match history::bundle_refs(&snapshot, query.refs.as_deref()) {
        Ok(refs) => BundlePlan {
            refs,
            prerequisites: query.since,
        },
        Err(e) => return HttpError::NotFound(e.to_string()).into_response(),
    };
    if plan.refs.is_empty() {
        let why = "the repository has no refs to bundle".to_owned();
        return HttpError::NotFound(why).into_response();
    }
    let Some(slot) = app.slots.try_take() else {
        return HttpError::Busy.into_response();
    };
    let db = match repo
        .objects_having(&app.cache, snapshot.object_hash, &plan.wants())
        .await
    {
        Ok(db) => db,
        Err(e) => return crate::upload_pack::storage_error(&repo, e),
    };
    // The header: checked (every prerequisite a commit of this repository) before the status
    // line goes out, so that a stale URL is a clear 4xx rather than a cut download.
    // A prerequisite must be reachable from the refs, as a fetch's wants must: the header
    // carries each one's subject line, which must not reveal a commit a force push left behind.
    let roots: Vec<ObjectId> = snapshot
        .refs
        .values()
        .flat_map(|v| std::iter::once(v.target).chain(v.peeled))
        .collect();
    let header = {
        let (db, plan) = (db.clone(), plan.clone());
        tokio::task::spawn_blocking(move || {
            let reader = db.reader();
            let not_ours =
                |id: &ObjectId| format!("since: {id} is not a commit of this repository");
            for id in &plan.prerequisites {
                if reader.kind(id)? != Some(gix_object::Kind::Commit) {
                    return Ok(Err(not_ours(id)));
                }
            }
            if !objectstore::odb::walk::all_reachable(
                &reader,
                &roots,
                &plan.prerequisites,
                MAX_REACH_WALK,
            )? {
                return Ok(Err("since: a commit no ref reaches".to_owned()));
            }
            let mut header = Vec::new();
            history::write_bundle_header(&reader, &plan, &mut header)?;
            Ok::<_, history::Error>(Ok(header))
        })
        .await
    };
    let header = match header {
        Ok(Ok(Ok(h))) => h,
        Ok(Ok(Err(reason))) => return HttpError::NotFound(reason).into_response(),
        Ok(Err(e)) => {
            return HttpError::Storage(format!("{}: the bundle header failed: {e}", repo.id))
                .into_response()
        }
        Err(e) => return HttpError::Internal(format!("the bundle failed: {e}")).into_response(),
    };
    let (writer, response_body) = body::channel();
    let id = repo.id.clone();
    tokio::task::spawn_blocking(move || {
        let out = Output::new(writer);
        let _memory = match app
            .budget
            .reserve(app.config.limits.fetch_memory, app.config.timeouts.queue)
        {
            Ok(r) => r,
            Err(e) => {
                crate::metrics::inc(crate::metrics::REJECTED_BUSY);
                out.into_writer().abort(&e.to_string());
                return;
            }
        };
        let wants = plan.wants();
        let source = Source {
            snapshot,
            db,
            pack_uris: Vec::new(),
            answers: None,
        };
        let result = out
            .write_raw(&header)
            .map_err(crate::fetch::Error::from)
            .and_then(|()| write_bundle_pack(&source, wants, plan.prerequisites, &out));
        match result {
            Ok(()) => tracing::info!(repo = %id, refs = plan.refs.len(), "bundle sent"),
            Err(e) => {
                tracing::warn!(repo = %id, error = %e, "bundle failed");
                out.into_writer().abort(&e.to_string());
            }
        }
    });
    let mut resp = git_response("application/x-git-bundle", slot.hold(response_body));
    if let Ok(v) = header::HeaderValue::from_str(&format!(
        "attachment; filename=\"{}.bundle\"",
        repo.id.alias
    )) {
        resp.headers_mut().insert(header::CONTENT_DISPOSITION, v);
    }
    resp
}

/// `GET {clone URL}/bundles/{file}` and `…/packs/{file}`: a bundle file maintenance keeps
/// (`bundle-uri`) or a stored pack (`packfile-uris`), for clients of the filesystem backend
/// (on S3 they get them from the bucket), whole or one byte range of it. Both are written
/// once and never change.
pub async fn serve_stored(
    repo: &Repo,
    key: &str,
    content_type: &str,
    req: &Request<Incoming>,
) -> Result<http::Response<ResponseBody>, HttpError> {
    use crate::files::range::{part, Part};
    let bucket = &repo.storage().bucket;
    let key = key.to_owned();
    let gone = || HttpError::NotFound("no such file (maintenance replaced it)".into());
    let meta = match bucket.head(&key).await {
        Ok(meta) => meta,
        Err(e) if e.is_not_found() => return Err(gone()),
        Err(e) => return Err(HttpError::Storage(e.to_string())),
    };
    let range = req
        .headers()
        .get(header::RANGE)
        .and_then(|v| v.to_str().ok());
    let (status, start, len) = match part(range, meta.size) {
        Part::Whole => (http::StatusCode::OK, 0, meta.size),
        Part::Range { start, len } => (http::StatusCode::PARTIAL_CONTENT, start, len),
        Part::Unsatisfiable => return Err(HttpError::RangeNotSatisfiable(meta.size)),
    };
    let body = if req.method() == http::Method::HEAD {
        body::full(Vec::new())
    } else {
        let stream = match bucket.local_path(&key) {
            Some(path) => {
                use tokio::io::{AsyncReadExt, AsyncSeekExt};
                let mut f = tokio::fs::File::open(&path).await.map_err(|_| gone())?;
                f.seek(std::io::SeekFrom::Start(start))
                    .await
                    .map_err(|e| HttpError::Storage(e.to_string()))?;
                Box::pin(f.take(len)) as objectstore::bucket::ByteStream
            }
            None if start == 0 && len == meta.size => bucket
                .get_stream(&key)
                .await
                .map_err(|e| HttpError::Storage(e.to_string()))?,
            None => {
                let bytes = bucket
                    .get_range(&key, start..start + len)
                    .await
                    .map_err(|e| HttpError::Storage(e.to_string()))?;
                Box::pin(std::io::Cursor::new(bytes.to_vec())) as objectstore::bucket::ByteStream
            }
        };
        body::stream(stream)
    };
    let mut resp = http::Response::new(body);
    *resp.status_mut() = status;
    let h = resp.headers_mut();
    let mut set = |name: header::HeaderName, value: String| {
        if let Ok(v) = header::HeaderValue::from_str(&value) {
            h.insert(name, v);
        }
    };
    set(header::CONTENT_TYPE, content_type.into());
    set(header::CONTENT_LENGTH, len.to_string());
    set(header::ACCEPT_RANGES, "bytes".into());
    if status == http::StatusCode::PARTIAL_CONTENT {
        set(
            header::CONTENT_RANGE,
            format!("bytes {start}-{}/{}", start + len - 1, meta.size),
        );
    }
    // A file name is written once and never changes.
    set(
        header::CACHE_CONTROL,
        "private, max-age=86400, immutable".into(),
    );
    Ok(resp)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn query_round_trips_and_refuses_what_it_cannot_answer() {
        let id = ObjectId::from_hex(b"0123456789abcdef0123456789abcdef01234567").unwrap();
        let q = BundleQuery {
            refs: Some(vec!["refs/heads/a&b=c".into(), "v1.0".into()]),
            since: vec![id],
        };
        assert_eq!(BundleQuery::parse(&q.to_query()).unwrap(), q);
        assert_eq!(BundleQuery::parse("").unwrap(), BundleQuery::default());
        assert!(BundleQuery::parse("since=0123").is_err());
        assert!(BundleQuery::parse("since=zz23456789abcdef0123456789abcdef01234567").is_err());
        assert!(BundleQuery::parse("token=secret").is_err());
        assert!(BundleQuery::parse("ref=").is_err());
        let many = "ref=a&".repeat(MAX_BUNDLE_NAMES + 1);
        assert!(BundleQuery::parse(&many).is_err());
    }
}
