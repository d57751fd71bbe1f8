//! `git-receive-pack` over Smart HTTP: push.
//!
//! A push runs in four steps, CPU work on blocking threads and I/O in async code:
//! 1. **receive** (blocking): the commands are read and checked line by line against the
//!    limits, then the pack is streamed to a staging file ([`index::receive`], pass 1: every
//!    declared size checked before anything is inflated). A client that stalls here holds no
//!    slot and no memory beyond its entry table.
//! 2. **admit** (async): a slot is taken (waiting a bounded time), and the repository's packs
//!    are listed afresh.
//! 3. **resolve** (blocking): deltas are resolved within the memory reserved for them
//!    ([`index::Received::resolve`]: fsck rules on every object; a thin pack's bases read from
//!    the repository).
//! 4. **land**: the landing every writer shares ([`crate::landing::land`]) verifies the
//!    special blobs and connectivity, checks LFS pointers, uploads the pack, records the event
//!    and replaces the refs by one compare-and-swap.
//!
//! A failure at any step leaves the refs untouched; at worst an unreferenced pack remains, for
//! maintenance to collect. A failure of the storage is told to git as one ("could not be
//! stored; try again"), never as a bad pack.

use std::io::{BufReader, Read};
use std::sync::Arc;
use std::time::Instant;

use bytes::Bytes;
use gix_hash::ObjectId;
use http::Request;
use hyper::body::Incoming;
use objectstore::odb::index::{self, Indexed};
use objectstore::odb::ObjectDb;
use protocol::pktline::PktReader;
use protocol::receive_pack::{write_report, CommandResult, PushRequest};
use protocol::sideband::{write_band, Mode, PROGRESS};
use refs::RefUpdate;

use crate::app::App;
use crate::auth::Grants;
use crate::body::{self, full, ResponseBody};
use crate::landing::{index_checks, Landed, Landing, Refused, Rejection};
use crate::repo::Repo;
use crate::request::is_gzip;
use crate::response::{git_response, HttpError};

/// What the client is told.
struct Reply {
    unpack_error: Option<String>,
    results: Vec<Result<(), Rejection>>,
    messages: Vec<String>,
}

impl Reply {
    /// What a landing (or a refusal before it) tells git.
    fn from_landed(landed: Landed, mut messages: Vec<String>) -> Self {
        if let Some(why) = &landed.refused {
            messages.push(format!("error: {why}\n"));
        }
        Reply {
            unpack_error: landed.refused.map(|why| why.to_string()),
            results: landed.results,
            messages,
        }
    }

    fn refuse_all(req: &PushRequest, why: Refused) -> Self {
        Reply::from_landed(Landed::refused(req.commands.len(), why), Vec::new())
    }

    fn encode(self, req: &PushRequest) -> Vec<u8> {
        let sideband = req.sideband();
        let quiet = req.capabilities.has("quiet");
        let mut out = Vec::new();
        if sideband != Mode::None {
            for msg in &self.messages {
                // `quiet` silences progress, not what the user must know.
                if !quiet || msg.starts_with("error") || msg.starts_with("warning") {
                    write_band(&mut out, sideband, PROGRESS, msg.as_bytes());
                }
            }
        }
        let results: Vec<CommandResult> = req
            .commands
            .iter()
            .zip(self.results)
            .map(|(c, r)| CommandResult {
                name: c.name.clone(),
                error: r.err().map(|e| e.to_string()),
            })
            .collect();
        write_report(&mut out, sideband, self.unpack_error.as_deref(), &results);
        out
    }
}

/// Step 2's objects: a pack list holding every object the refs and the commands name.
/// Packs are published before the refs that need them, so such a list holds everything the
/// push can build on.
async fn objects_for(
    app: &App,
    repo: &Repo,
    snapshot: &refs::Snapshot,
    request: &PushRequest,
) -> Result<ObjectDb, Refused> {
    let olds = request
        .commands
        .iter()
        .map(|c| c.old)
        .filter(|o| !o.is_null());
    let needed: Vec<ObjectId> = snapshot
        .refs
        .values()
        .map(|v| v.target)
        .chain(olds)
        .collect();
    repo.objects_having(&app.cache, snapshot.object_hash, &needed)
        .await
        .map_err(|e| {
            tracing::error!(repo = %repo.id, error = %e, "opening packs failed");
            Refused::Storage("the repository cannot be read; try again".into())
        })
}

/// What step 4 lands: the pack and the commands of `request`, by `pusher`.
fn landing(
    request: &PushRequest,
    pack: Option<Indexed>,
    pusher: Option<&Grants>,
    seen: refs::Snapshot,
    policy: Option<crate::policy::PushPolicy>,
) -> Landing {
    Landing {
        pack,
        updates: request
            .commands
            .iter()
            .map(|c| RefUpdate {
                name: c.name.clone(),
                old: c.old,
                new: c.new,
                peeled: None,
            })
            .collect(),
        atomic: request.capabilities.has("atomic"),
        origin: events::log::EventMeta {
            pusher: pusher.and_then(|g| g.subject.clone()),
            push_options: request.push_options.clone(),
            source: events::log::Source::Push,
            pull_request: None,
            upstream: None,
        },
        seen: Some(seen),
        policy,
    }
}

/// A pack refused while received or resolved: the client's fault, or the storage's (logged
/// as such).
fn refusal(repo: &Repo, e: &objectstore::odb::Error) -> Refused {
    match e.is_storage() {
        true => tracing::error!(repo = %repo.id, error = %e, "push failed: storage"),
        false => tracing::warn!(repo = %repo.id, error = %e, "push refused"),
    }
    Refused::from_odb(e)
}

fn response(out: Vec<u8>) -> http::Response<ResponseBody> {
    git_response(
        "application/x-git-receive-pack-result",
        full(Bytes::from(out)),
    )
}

/// Serve a push by `pusher`.
///
/// `snapshot` is the refs as the request found them: the pack list is trusted when it holds
/// every object they name, and the refs commit tries them first (one round trip each saved
/// when nothing moved meanwhile; a re-read when something did).
/// `to_create`: the repository does not exist yet and this push may create it (in the
/// client's object format, once its commands and pack were read: a push that fails before
/// leaves nothing behind).
pub async fn handle(
    app: Arc<App>,
    repo: Repo,
    snapshot: refs::Snapshot,
    pusher: Option<Grants>,
    to_create: bool,
    req: Request<Incoming>,
) -> http::Response<ResponseBody> {
    let started = Instant::now();
    // The push policy is read while the pack arrives: the landing needs no read of its own.
    let policy = {
        let repo = repo.clone();
        tokio::spawn(async move { repo.push_policy().await })
    };
    let gzip = is_gzip(&req);
    // Past the repository's hard limit the body is cut as it streams (with room for the
    // commands; the landing's check of the indexed pack is the exact one).
    let quota = crate::quota::effective(snapshot.quota, app.config.default_quota);
    let room = crate::quota::room(quota, snapshot.usage).map(|r| r.saturating_add(COMMANDS_ROOM));
    let body_limit = room.map_or(app.config.limits.max_push_bytes, |r| {
        r.min(app.config.limits.max_push_bytes)
    });
    let quota_binds = body_limit < app.config.limits.max_push_bytes;
    let request_body = body::reader(req.into_body(), body_limit, app.config.timeouts.body_idle);

    // 1. Receive: commands, then the pack to a staging file (on a blocking thread, where the
    // gzip decoder may read).
    let received = {
        let app = app.clone();
        let hash = (!to_create).then_some(snapshot.object_hash);
        tokio::task::spawn_blocking(move || {
            let input = body::decoded(request_body, gzip, app.config.limits.max_push_bytes);
            receive(&app, input, hash)
        })
        .await
    };
    let (request, pack, hash) = match received {
        Ok(Received::Nothing) => return response(Vec::new()),
        Ok(Received::BadRequest(message)) => {
            tracing::warn!(repo = %repo.id, error = %message, "push refused");
            let mut out = Vec::new();
            protocol::pktline::write_line(&mut out, &format!("ERR {message}"));
            return response(out);
        }
        Ok(Received::Refused(request, reason)) => {
            tracing::warn!(repo = %repo.id, error = %reason, "push refused");
            let why = match quota_binds && reason.contains("request body is larger than") {
                true => match crate::quota::check(quota, snapshot.usage, body_limit) {
                    crate::quota::Verdict::Refuse(why) => {
                        Refused::Quota(format!("repository {why}"))
                    }
                    _ => Refused::Objects(reason),
                },
                false => Refused::Objects(reason),
            };
            return response(Reply::refuse_all(&request, why).encode(&request));
        }
        Ok(Received::Pushed(request, pack, hash)) => (request, pack.map(|p| *p), hash),
        Err(e) => {
            return HttpError::Internal(format!("the push failed unexpectedly: {e}"))
                .into_response()
        }
    };
    let (request, pack, snapshot) = match to_create {
        false => (request, pack, snapshot),
        true => match create_for_push(&repo, hash).await {
            Ok(created) => (request, pack, created),
            Err(e) => return e.into_response(),
        },
    };
    let received_at = started.elapsed();

    // 2. Admit: a slot, and the packs as they are now.
    let Some(_slot) = app.slots.take(app.config.timeouts.queue).await else {
        crate::metrics::inc(crate::metrics::REJECTED_BUSY);
        let why = Refused::Storage("the server is busy; try again in a few seconds".into());
        return response(Reply::refuse_all(&request, why).encode(&request));
    };
    // Packs are published before the refs that need them: a pack list holding every object
    // the refs and the commands name holds everything the push can build on.
    let db = match objects_for(&app, &repo, &snapshot, &request).await {
        Ok(db) => db,
        Err(why) => return response(Reply::refuse_all(&request, why).encode(&request)),
    };

    // 3. Resolve the pack's deltas (fsck rules on every object), within the memory reserved.
    let resolved = {
        let (app, db) = (app.clone(), db.clone());
        tokio::task::spawn_blocking(move || resolve(&app, &db, pack)).await
    };
    let (indexed, messages) = match resolved {
        Ok(Ok(r)) => r,
        Ok(Err(e)) => {
            let why = refusal(&repo, &e);
            return response(Reply::refuse_all(&request, why).encode(&request));
        }
        Err(e) => {
            return HttpError::Internal(format!("the push failed unexpectedly: {e}"))
                .into_response()
        }
    };
    let resolved_at = started.elapsed();

    // 4. Land: verify, publish, record, commit.
    let objects = indexed.as_ref().map_or(0, |i| i.num_objects);
    let policy = policy.await.ok().and_then(Result::ok);
    let landing = landing(&request, indexed, pusher.as_ref(), snapshot, policy);
    let landed = crate::landing::land(&app, &repo, db, landing).await;
    let applied = landed.results.iter().filter(|r| r.is_ok()).count();
    let outcome = match applied {
        0 => "refused",
        _ => "applied",
    };
    crate::metrics::observe_labelled(crate::metrics::PUSH_SECONDS, "outcome", outcome, started);
    if !app.config.timeouts.reply_delay.is_zero() {
        tokio::time::sleep(app.config.timeouts.reply_delay).await;
    }
    tracing::info!(
        repo = %repo.id,
        applied,
        refused = landed.results.len() - applied,
        objects,
        received_ms = received_at.as_millis() as u64,
        resolved_ms = (resolved_at - received_at).as_millis() as u64,
        total_ms = started.elapsed().as_millis() as u64,
        "push"
    );
    let mut messages = messages;
    messages.extend(landed.warnings.iter().map(|w| format!("warning: {w}\n")));
    response(Reply::from_landed(landed, messages).encode(&request))
}

/// What a push may send beside its pack when the hard limit cuts its body: the commands.
const COMMANDS_ROOM: u64 = 1 << 20;

/// The outcome of step 1.
enum Received {
    /// The client sent a flush only.
    Nothing,
    /// The commands could not be read: answered with an `ERR` line.
    BadRequest(String),
    /// The pack could not be received (what the client sent, or how): every command fails
    /// with this reason.
    Refused(PushRequest, String),
    /// The commands, the pack on disk, and the object format both are in.
    Pushed(PushRequest, Option<Box<index::Received>>, gix_hash::Kind),
}

/// The object format of a push: the one the client names (`object-format`, SHA-1 when it
/// names none, as in git), which must be the repository's (`hash`; `None` for a repository
/// the push creates), and every id of its commands must have. A mismatch is refused in
/// git's `receive-pack`'s words.
fn object_format(
    request: &PushRequest,
    hash: Option<gix_hash::Kind>,
) -> Result<gix_hash::Kind, String> {
    let named = request
        .capabilities
        .value("object-format")
        .unwrap_or("sha1");
    let unsupported = || {
        let shown: String = named.chars().take(40).collect();
        format!("error: unsupported object format '{shown}'")
    };
    let client = objectstore::format::by_name(named).ok_or_else(unsupported)?;
    if hash.is_some_and(|h| h != client) {
        return Err(unsupported());
    }
    let ids = request.commands.iter().flat_map(|c| [&c.old, &c.new]);
    protocol::check_object_format(client, ids.chain(&request.shallows))
        .map_err(|e| e.to_string())?;
    Ok(client)
}

/// Create a repository for a push, as `enable_git` would with no files to import, in the
/// push's object format; a repository created meanwhile by someone else is fine (if its
/// format differs, the landing refuses the push's ids). Its refs, as they are then.
async fn create_for_push(
    repo: &Repo,
    object_hash: gix_hash::Kind,
) -> Result<refs::Snapshot, HttpError> {
    let fail = |e: &dyn std::fmt::Display| {
        tracing::error!(repo = %repo.id, error = %e, "creating a repository on push failed");
        HttpError::Storage(format!("cannot create the repository: {e}"))
    };
    match repo.refs.init("main", object_hash).await {
        Ok(()) => {
            tracing::info!(repo = %repo.id, %object_hash, "repository created by a push");
            // Only the creator writes the settings (the defaults: private).
            repo.write_settings(&crate::repo::Settings::default())
                .await
                .map_err(|e| fail(&e))?;
        }
        Err(refs::Error::AlreadyExists) => {}
        Err(e) => return Err(fail(&e)),
    }
    repo.snapshot().await.map_err(|e| fail(&e))
}

/// Step 1: read the commands and stream the pack to disk. `hash` is the repository's object
/// format (`None`: a repository this push creates, in the client's).
fn receive(app: &App, input: Box<dyn Read + Send>, hash: Option<gix_hash::Kind>) -> Received {
    let mut reader = PktReader::new(input);
    let request = match PushRequest::read(&mut reader, &app.config.limits.commands) {
        Ok(Some(r)) => r,
        Ok(None) => return Received::Nothing,
        Err(e) => return Received::BadRequest(e.to_string()),
    };
    let hash = match object_format(&request, hash) {
        Ok(hash) => hash,
        Err(message) => return Received::BadRequest(message),
    };
    // Counted once its commands are read: `git push` sends an empty probe request first.
    crate::metrics::inc(crate::metrics::PUSHES);
    if !request.expects_pack() {
        return Received::Pushed(request, None, hash);
    }
    let mut input = BufReader::with_capacity(256 << 10, reader.into_inner());
    match index::receive(
        &mut input,
        &app.config.staging,
        hash,
        &app.pack_limits(),
        &app.budget,
        index_checks(app),
    ) {
        Ok(pack) => Received::Pushed(request, Some(Box::new(pack)), hash),
        Err(e) => {
            // Read what is left so the client sees this answer and not a connection reset:
            // git sends the whole pack before it reads a word. Bounded by what a push may
            // send at all (and by the body's idle timeout), not more than the client could
            // have sent had the pack been good.
            let left = app.config.limits.max_push_bytes;
            let _ = std::io::copy(&mut input.take(left), &mut std::io::sink());
            Received::Refused(request, e.to_string())
        }
    }
}

/// Step 3: resolve the pack's deltas, completing a thin pack from the repository's objects,
/// within the memory reserved for it. The progress messages git shows.
fn resolve(
    app: &App,
    existing: &ObjectDb,
    pack: Option<index::Received>,
) -> Result<(Option<Indexed>, Vec<String>), objectstore::odb::Error> {
    let Some(pack) = pack else {
        return Ok((None, Vec::new()));
    };
    let limits = app.pack_limits();
    let (threads, _working_set) = pack
        .reserve_working_set(&limits, &app.budget)
        .map_err(index::Refused::Busy)?;
    let reader = existing.reader();
    let mut bases = |id: &gix_hash::oid| {
        let mut buf = Vec::new();
        Ok(reader.try_read(id, &mut buf)?.map(|kind| (kind, buf)))
    };
    let indexed = pack.resolve(&mut bases, &limits, index_checks(app), threads)?;
    let messages = vec![format!("Received {} objects\n", indexed.num_objects)];
    Ok((Some(indexed), messages))
}
