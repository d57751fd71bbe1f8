//! `git-receive-pack` over Smart HTTP: push.
//!
//! A push runs in four steps, CPU work on blocking threads and I/O in async code:
//! 1. **receive** (blocking): the commands are read and checked line by line against the
//!    limits, then the pack is streamed to a staging file ([`index::receive`], pass 1: every
//!    declared size checked before anything is inflated). A client that stalls here holds no
//!    slot and no memory beyond its entry table.
//! 2. **admit** (async): a slot is taken (waiting a bounded time), and the repository's packs
//!    are listed afresh.
//! 3. **check** (blocking): deltas are resolved within the memory reserved for them
//!    ([`index::Received::resolve`]: fsck rules on every object), every new tip is checked to
//!    connect to what the repository has, branches must name commits, and `.gitmodules` and
//!    `.gitattributes` blobs are checked.
//! 4. **commit** (async): the pack is uploaded (`.pack`, `.tips`, then `.idx`), the refs are
//!    replaced by one compare-and-swap, and an unborn `HEAD` is pointed at the first branch.
//!
//! A failure at any step leaves the refs untouched; at worst an unreferenced pack remains, for
//! maintenance to collect.

use std::io::{BufReader, Read};
use std::sync::Arc;
use std::time::Instant;

use bytes::Bytes;
use gix_hash::ObjectId;
use http::Request;
use hyper::body::Incoming;
use objectstore::fsck;
use objectstore::odb::index::{self, Checks, Indexed};
use objectstore::odb::{walk, ObjectDb, Reach};
use protocol::pktline::PktReader;
use protocol::receive_pack::{write_report, CommandResult, PushRequest};
use protocol::sideband::{write_band, Mode, PROGRESS};
use refs::{RefTransaction, RefUpdate, Refusal};

use crate::app::App;
use crate::auth::Grants;
use crate::body::{self, full, ResponseBody};
use crate::http::{git_response, is_gzip, plain};
use crate::repo::Repo;

/// Why one ref update of a push is refused. `Display` is what git shows after
/// `[remote rejected]`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
enum Rejection {
    /// The ref transaction refused it.
    #[error(transparent)]
    Ref(#[from] Refusal),
    /// The new value, or something it reaches, is in neither the pack nor the repository.
    #[error("missing necessary objects")]
    MissingObjects,
    /// Only tags may name something other than a commit.
    #[error("trying to write non-commit object {id} to {what} '{name}'")]
    NonCommit {
        /// The object.
        id: ObjectId,
        /// `branch` or `ref`.
        what: &'static str,
        /// The ref.
        name: String,
    },
    /// The pack was refused; every update is.
    #[error("unpacker error")]
    Unpacker,
    /// Storing failed.
    #[error("the push could not be stored; try again")]
    Storage,
    /// The refs write failed after it may have taken effect.
    #[error("storage failed while committing; the outcome is unknown: fetch to see whether this ref moved")]
    Unknown,
}

/// What the client is told.
struct Reply {
    unpack_error: Option<String>,
    results: Vec<Result<(), Rejection>>,
    messages: Vec<String>,
}

impl Reply {
    fn refuse_all(req: &PushRequest, unpack_error: String, rejection: Rejection) -> Self {
        Reply {
            messages: vec![format!("error: {unpack_error}\n")],
            unpack_error: Some(unpack_error),
            results: req
                .commands
                .iter()
                .map(|_| Err(rejection.clone()))
                .collect(),
        }
    }

    fn encode(self, req: &PushRequest) -> Vec<u8> {
        let sideband = req.sideband();
        let quiet = req.capabilities.has("quiet");
        let mut out = Vec::new();
        if sideband != Mode::None {
            for msg in &self.messages {
                if !quiet || msg.starts_with("error") {
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
pub async fn handle(
    app: Arc<App>,
    repo: Repo,
    snapshot: refs::Snapshot,
    pusher: Option<Grants>,
    req: Request<Incoming>,
) -> http::Response<ResponseBody> {
    let started = Instant::now();
    let gzip = is_gzip(&req);
    let request_body = body::reader(
        req.into_body(),
        app.limits.max_push_bytes,
        app.timeouts.body_idle,
    );

    // 1. Receive: commands, then the pack to a staging file (on a blocking thread, where the
    // gzip decoder may read).
    let received = {
        let app = app.clone();
        tokio::task::spawn_blocking(move || {
            let input = body::decoded(request_body, gzip, app.limits.max_push_bytes);
            receive(&app, input)
        })
        .await
    };
    let (request, pack) = match received {
        Ok(Received::Nothing) => return response(Vec::new()),
        Ok(Received::BadRequest(message)) => {
            tracing::warn!(repo = %repo.id, error = %message, "push refused");
            let mut out = Vec::new();
            protocol::pktline::write_line(&mut out, &format!("ERR {message}"));
            return response(out);
        }
        Ok(Received::Refused(request, reason)) => {
            tracing::warn!(repo = %repo.id, error = %reason, "push refused");
            return response(
                Reply::refuse_all(&request, reason, Rejection::Unpacker).encode(&request),
            );
        }
        Ok(Received::Pushed(request, pack)) => (request, pack),
        Err(e) => {
            tracing::error!(error = %e, "push task failed");
            return plain(
                http::StatusCode::INTERNAL_SERVER_ERROR,
                "the push failed unexpectedly",
            );
        }
    };
    let received_at = started.elapsed();

    // 2. Admit: a slot, and the packs as they are now.
    let Some(_slot) = app.slots.take(app.timeouts.queue).await else {
        crate::metrics::inc(&crate::metrics::REJECTED_BUSY);
        let reason = "the server is busy; try again in a few seconds".to_owned();
        return response(Reply::refuse_all(&request, reason, Rejection::Unpacker).encode(&request));
    };
    // Packs are published before the refs that need them: a pack list holding every object
    // the refs and the commands name holds everything the push can build on.
    let needed: Vec<ObjectId> = snapshot
        .refs
        .values()
        .map(|v| v.target)
        .chain(
            request
                .commands
                .iter()
                .map(|c| c.old)
                .filter(|o| !o.is_null()),
        )
        .collect();
    let db = match repo.objects_having(&app.cache, &needed).await {
        Ok(db) => db,
        Err(e) => {
            tracing::error!(repo = %repo.id, error = %e, "opening packs failed");
            let reason = "the repository cannot be read; try again".to_owned();
            return response(
                Reply::refuse_all(&request, reason, Rejection::Storage).encode(&request),
            );
        }
    };

    // 3. Check: resolve, connect, verify.
    let checked = {
        let app = app.clone();
        let request = request.clone();
        let db = db.clone();
        tokio::task::spawn_blocking(move || check(&app, &db, &request, pack)).await
    };
    let mut checked = match checked {
        Ok(Ok(c)) => c,
        Ok(Err(reason)) => {
            tracing::warn!(repo = %repo.id, error = %reason, "push refused");
            return response(
                Reply::refuse_all(&request, reason, Rejection::Unpacker).encode(&request),
            );
        }
        Err(e) => {
            tracing::error!(error = %e, "push task failed");
            return plain(
                http::StatusCode::INTERNAL_SERVER_ERROR,
                "the push failed unexpectedly",
            );
        }
    };
    let checked_at = started.elapsed();

    // LFS pointers must name objects the store has (uploaded by `git lfs` before the push).
    if let Some(indexed) = &checked.indexed {
        match missing_lfs_objects(&app, &repo, &indexed.kept_blobs).await {
            Ok(missing) if missing.is_empty() => {}
            Ok(missing) => {
                crate::metrics::inc(&crate::metrics::LFS_POINTERS_MISSING);
                let shown: Vec<&str> = missing.iter().take(10).map(String::as_str).collect();
                let more = missing.len().saturating_sub(shown.len());
                let reason = format!(
                    "the push has Git LFS pointers to objects the server does not have: {}{} (upload them with git lfs push --all)",
                    shown.join(", "),
                    if more > 0 { format!(" and {more} more") } else { String::new() }
                );
                tracing::warn!(repo = %repo.id, missing = missing.len(), "push refused: LFS objects missing");
                return response(
                    Reply::refuse_all(&request, reason, Rejection::Unpacker).encode(&request),
                );
            }
            Err(e) => {
                tracing::error!(repo = %repo.id, error = %e, "checking LFS objects failed");
                let reason = "the LFS objects could not be checked; try again".to_owned();
                return response(
                    Reply::refuse_all(&request, reason, Rejection::Storage).encode(&request),
                );
            }
        }
    }

    // 4. Commit: publish the pack, then the refs.
    let atomic = request.capabilities.has("atomic");
    if atomic && checked.results.iter().any(Result::is_err) {
        for r in checked.results.iter_mut().filter(|r| r.is_ok()) {
            *r = Err(Rejection::Ref(Refusal::AtomicPushFailed));
        }
        checked.updates.clear();
    }
    if let Some(indexed) = &checked.indexed {
        if !checked.updates.is_empty() {
            if let Err(e) = indexed
                .publish(db.bucket().as_ref(), db.keys(), &checked.reach)
                .await
            {
                tracing::error!(repo = %repo.id, error = %e, "storing the pack failed");
                let reason = "storing the pack failed; try again".to_owned();
                return response(
                    Reply::refuse_all(&request, reason, Rejection::Storage).encode(&request),
                );
            }
            if let Some(name) = &indexed.name {
                app.cache
                    .add_published(db.bucket().as_ref(), &repo.keys, name, indexed.paths());
            }
        }
    }
    let tx = RefTransaction {
        updates: checked.updates.iter().map(|(_, u)| u.clone()).collect(),
        atomic,
    };
    if !tx.updates.is_empty() {
        // The event is recorded before the refs move: once git prints `ok`, it exists.
        let journal = events::log::Recorder::new(
            app.storage.bucket.clone(),
            &app.storage.keys(),
            &repo.id.workspace,
            &repo.id.alias,
            events::log::EventMeta {
                pusher: pusher.as_ref().and_then(|g| g.subject.clone()),
                push_options: request.push_options.clone(),
                source: events::log::Source::Push,
            },
        );
        match repo
            .refs
            .commit_from(&tx, Some(&journal), Some(snapshot.clone()))
            .await
        {
            Ok(outcome) => {
                for ((i, _), result) in checked.updates.iter().zip(outcome) {
                    checked.results[*i] = result.map_err(Rejection::Ref);
                }
            }
            Err(e) => {
                tracing::error!(repo = %repo.id, error = %e, "ref update failed");
                let unknown = matches!(e, refs::Error::Unknown(_));
                for (i, _) in &checked.updates {
                    checked.results[*i] = Err(if unknown {
                        Rejection::Unknown
                    } else {
                        Rejection::Storage
                    });
                }
            }
        }
        // A recorded event (a watched repository) is delivered now rather than at the next
        // poll.
        if journal.recorded() {
            app.events.wake();
        }
    }
    repoint_unborn_head(&repo, &snapshot, &request, &checked.results).await;
    let applied = checked.results.iter().filter(|r| r.is_ok()).count();
    tracing::info!(
        repo = %repo.id,
        applied,
        refused = checked.results.len() - applied,
        objects = checked.indexed.as_ref().map_or(0, |i| i.num_objects),
        received_ms = received_at.as_millis() as u64,
        checked_ms = (checked_at - received_at).as_millis() as u64,
        total_ms = started.elapsed().as_millis() as u64,
        "push"
    );
    app.maintenance.after_push(&app, repo, db.packs().len() + 1);
    let reply = Reply {
        unpack_error: None,
        results: checked.results,
        messages: checked.messages,
    };
    response(reply.encode(&request))
}

fn is_lfs_pointer(data: &[u8]) -> bool {
    lfs::Pointer::parse(data).is_some()
}

/// What pushed objects are checked for: git's fsck rules, and LFS pointers kept for a check
/// that the store has their objects.
fn checks(app: &App) -> Checks<'static> {
    Checks {
        fsck: true,
        keep_blob: app.lfs_check_pointers.then_some(&is_lfs_pointer),
    }
}

/// The LFS objects that pointers among `blobs` name and the store does not have (at most 10).
async fn missing_lfs_objects(
    app: &App,
    repo: &Repo,
    blobs: &[(ObjectId, Vec<u8>)],
) -> Result<Vec<String>, lfs::StoreError> {
    use futures_util::StreamExt;
    let store = lfs::Store::new(app.storage.bucket.clone(), repo.keys.clone(), app.lfs);
    let mut pointers: Vec<lfs::Pointer> = blobs
        .iter()
        .filter_map(|(_, data)| lfs::Pointer::parse(data))
        .collect();
    pointers.sort_by(|a, b| a.oid.cmp(&b.oid));
    pointers.dedup();
    let found: Vec<Result<Option<String>, lfs::StoreError>> = futures_util::stream::iter(pointers)
        .map(|p| {
            let store = &store;
            async move {
                let stored = store.stored_size(&p.oid).await?;
                Ok((stored != Some(p.size)).then(|| p.oid.to_string()))
            }
        })
        .buffered(16)
        .collect()
        .await;
    let mut missing = Vec::new();
    for f in found {
        if let Some(oid) = f? {
            missing.push(oid);
        }
    }
    Ok(missing)
}

/// The outcome of step 1.
enum Received {
    /// The client sent a flush only.
    Nothing,
    /// The commands could not be read: answered with an `ERR` line.
    BadRequest(String),
    /// The pack was refused: every command fails with this reason.
    Refused(PushRequest, String),
    Pushed(PushRequest, Option<index::Received>),
}

/// Step 1: read the commands and stream the pack to disk.
fn receive(app: &App, input: Box<dyn Read + Send>) -> Received {
    let mut reader = PktReader::new(input);
    let request = match PushRequest::read(&mut reader, &app.limits.commands) {
        Ok(Some(r)) => r,
        Ok(None) => return Received::Nothing,
        Err(e) => return Received::BadRequest(e.to_string()),
    };
    // Counted once its commands are read: `git push` sends an empty probe request first.
    crate::metrics::inc(&crate::metrics::PUSHES);
    if !request.expects_pack() {
        return Received::Pushed(request, None);
    }
    let mut input = BufReader::with_capacity(256 << 10, reader.into_inner());
    match index::receive(
        &mut input,
        &app.staging,
        &app.pack_limits(),
        &app.budget,
        checks(app),
    ) {
        Ok(pack) => Received::Pushed(request, Some(pack)),
        Err(e) => {
            // Read what is left (within reason) so the client sees this answer and not a
            // connection reset.
            let _ = std::io::copy(&mut input.take(64 << 20), &mut std::io::sink());
            Received::Refused(request, e.to_string())
        }
    }
}

/// What step 3 found.
struct Checked {
    indexed: Option<Indexed>,
    /// The updates to apply, by command position.
    updates: Vec<(usize, RefUpdate)>,
    results: Vec<Result<(), Rejection>>,
    reach: Reach,
    messages: Vec<String>,
}

/// Step 3: resolve the pack and check every command. `Err` refuses the whole push.
fn check(
    app: &App,
    db: &ObjectDb,
    req: &PushRequest,
    pack: Option<index::Received>,
) -> Result<Checked, String> {
    let existing = db.clone();
    let mut messages = Vec::new();
    let (indexed, _working_set) = match pack {
        None => (None, None),
        Some(pack) => {
            let limits = app.pack_limits();
            let (threads, working_set) = pack
                .reserve_working_set(&limits, &app.budget)
                .map_err(|e| e.to_string())?;
            let reader = existing.reader();
            let mut bases = |id: &gix_hash::oid| {
                let mut buf = Vec::new();
                Ok(reader.try_read(id, &mut buf)?.map(|kind| (kind, buf)))
            };
            let indexed = pack
                .resolve(&mut bases, &limits, checks(app), threads)
                .map_err(|e| e.to_string())?;
            messages.push(format!("Received {} objects\n", indexed.num_objects));
            (Some(indexed), Some(working_set))
        }
    };
    let incoming = match &indexed {
        Some(i) => i.open().map_err(|e| e.to_string())?,
        None => None,
    };
    let all = match &incoming {
        Some(p) => {
            let mut packs = existing.packs().to_vec();
            packs.push(p.clone());
            existing.with_packs(packs)
        }
        None => existing.clone(),
    };
    let reader = all.reader();
    // .gitmodules and .gitattributes named by the pushed trees.
    if let Some(indexed) = &indexed {
        let mut buf = Vec::new();
        for (which, id) in &indexed.specials {
            let kind = match reader.try_read(id, &mut buf) {
                Ok(Some(kind)) => kind,
                Ok(None) => continue,
                Err(e) => return Err(e.to_string()),
            };
            fsck::check_special_blob(*which, kind, &buf)
                .map_err(|finding| fsck::ObjectError { id: *id, finding }.to_string())?;
        }
    }
    let mut connectivity = incoming
        .as_ref()
        .map(|p| walk::Connectivity::new(existing.with_packs(vec![p.clone()]), existing.clone()));
    let mut results: Vec<Result<(), Rejection>> = Vec::with_capacity(req.commands.len());
    let mut updates = Vec::new();
    let mut tips = Vec::new();
    for (i, c) in req.commands.iter().enumerate() {
        let verdict = (|| {
            refs::validate_ref_name(&c.name)
                .map_err(|e| Rejection::Ref(Refusal::InvalidName(e)))?;
            if c.is_delete() {
                return Ok(None);
            }
            let connected = match &mut connectivity {
                Some(check) => check.check(c.new),
                None if existing.contains(&c.new) => Ok(()),
                None => Err(objectstore::odb::Error::Missing(c.new)),
            };
            if let Err(e) = connected {
                tracing::warn!(r#ref = %c.name, error = %e, "push not connected");
                return Err(Rejection::MissingObjects);
            }
            let kind = reader.kind(&c.new).map_err(|_| Rejection::MissingObjects)?;
            if !c.name.starts_with("refs/tags/") && kind != Some(gix_object::Kind::Commit) {
                return Err(Rejection::NonCommit {
                    id: c.new,
                    what: if c.name.starts_with("refs/heads/") {
                        "branch"
                    } else {
                        "ref"
                    },
                    name: c.name.clone(),
                });
            }
            let peeled = match reader.peel(&c.new) {
                Ok((target, _)) if target != c.new => Some(target),
                Ok(_) => None,
                Err(_) => return Err(Rejection::MissingObjects),
            };
            Ok(Some(peeled))
        })();
        match verdict {
            Ok(peeled) => {
                if !c.is_delete() {
                    tips.push(c.new);
                }
                updates.push((
                    i,
                    RefUpdate {
                        name: c.name.clone(),
                        old: c.old,
                        new: c.new,
                        peeled: peeled.flatten(),
                    },
                ));
                results.push(Ok(()));
            }
            Err(rejection) => results.push(Err(rejection)),
        }
    }
    let reach = match &connectivity {
        Some(check) => check.reach(tips),
        None => Reach::Unknown,
    };
    Ok(Checked {
        indexed,
        updates,
        results,
        reach,
        messages,
    })
}

/// When `HEAD` names a branch that does not exist and this push created branches, point it at
/// one of them (`main`, `master`, else the first pushed), as git hosting does on a first push.
async fn repoint_unborn_head(
    repo: &Repo,
    before: &refs::Snapshot,
    req: &PushRequest,
    results: &[Result<(), Rejection>],
) {
    // A `HEAD` whose branch existed when the push arrived is not unborn: no read needed.
    if before
        .head
        .as_ref()
        .is_some_and(|h| before.get(h).is_some())
    {
        return;
    }
    let created: Vec<&str> = req
        .commands
        .iter()
        .zip(results)
        .filter(|(c, r)| r.is_ok() && !c.is_delete() && c.name.starts_with("refs/heads/"))
        .map(|(c, _)| c.name.as_str())
        .collect();
    if created.is_empty() {
        return;
    }
    let Ok(snapshot) = repo.refs.snapshot().await else {
        return;
    };
    let Some(head) = snapshot.head.clone() else {
        return;
    };
    if snapshot.get(&head).is_some() {
        return;
    }
    let target = ["refs/heads/main", "refs/heads/master"]
        .into_iter()
        .find(|b| created.contains(b))
        .unwrap_or(created[0]);
    match repo.refs.repoint_unborn_head(&head, target).await {
        Ok(true) => {
            tracing::info!(repo = %repo.id, head = target, "HEAD now names the first pushed branch")
        }
        Ok(false) => {}
        Err(e) => tracing::warn!(repo = %repo.id, error = %e, "could not re-point HEAD"),
    }
}
