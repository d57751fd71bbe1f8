//! `git-receive-pack` over Smart HTTP: push.
//!
//! The pack is streamed to a local staging directory and indexed there, connectivity of every
//! new tip is checked, then the pack is uploaded (`.pack` before `.idx`) and the refs are
//! committed with one compare-and-swap. A failure at any step leaves the refs untouched; at
//! worst an unreferenced pack remains, for maintenance to collect.

use std::io::{BufReader, Read};
use std::path::Path;

use objectstore::odb::ingest::{self, Ingested};
use objectstore::ObjectDb;
use protocol::pktline::PktReader;
use protocol::receive_pack::{write_report, CommandResult, PushRequest};
use protocol::sideband::{write_band, Mode, PROGRESS};
use refs::{validate_ref_name, RefTransaction, RefUpdate};
use tokio::runtime::Handle;

use crate::repo::Repo;

/// Everything a push needs besides the request.
pub struct PushContext<'a> {
    pub repo: &'a Repo,
    pub db: ObjectDb,
    pub staging: &'a Path,
    pub limits: ingest::Limits,
    pub runtime: Handle,
}

/// Serve a push; returns the response body. Runs on a blocking thread.
pub fn serve(ctx: PushContext<'_>, body: Box<dyn Read + Send>) -> Vec<u8> {
    let mut reader = PktReader::new(body);
    let req = match PushRequest::read(&mut reader) {
        Ok(Some(req)) => req,
        Ok(None) => return Vec::new(),
        Err(e) => {
            let mut out = Vec::new();
            protocol::pktline::write_line(&mut out, &format!("ERR {e}"));
            return out;
        }
    };
    let sideband = req.sideband();
    let quiet = req.capabilities.has("quiet");
    let mut out = Vec::new();
    let (unpack_error, results) = apply(&ctx, &req, reader.into_inner(), &mut |msg| {
        if !quiet && sideband != Mode::None {
            write_band(&mut out, sideband, PROGRESS, msg.as_bytes());
        }
    });
    if let Some(e) = &unpack_error {
        tracing::warn!(repo = %ctx.repo.id, error = %e, "push refused");
    }
    write_report(&mut out, sideband, unpack_error.as_deref(), &results);
    out
}

fn refuse_all(req: &PushRequest, reason: &str) -> Vec<CommandResult> {
    req.commands
        .iter()
        .map(|c| CommandResult {
            name: c.name.clone(),
            error: Some(reason.to_owned()),
        })
        .collect()
}

/// Receive the pack and update the refs: (unpack error, per-command results).
fn apply(
    ctx: &PushContext<'_>,
    req: &PushRequest,
    pack: Box<dyn Read + Send>,
    progress: &mut dyn FnMut(&str),
) -> (Option<String>, Vec<CommandResult>) {
    let started = std::time::Instant::now();
    let ingested: Option<Ingested> = if req.expects_pack() {
        let mut input = BufReader::with_capacity(256 * 1024, pack);
        match ingest::index_pack(&ctx.db, &mut input, ctx.staging, ctx.limits) {
            Ok(i) => Some(i),
            Err(e) => {
                // Drain what is left so the client reads our answer instead of a reset.
                let _ = std::io::copy(&mut input.take(64 << 20), &mut std::io::sink());
                return (Some(e.to_string()), refuse_all(req, "unpacker error"));
            }
        }
    } else {
        None
    };
    if let Some(i) = &ingested {
        progress(&format!("Received {} objects\n", i.num_objects));
    }
    let indexed = started.elapsed();

    let mut errors: Vec<Option<String>> = vec![None; req.commands.len()];
    let all = match &ingested {
        Some(i) => {
            let mut packs = ctx.db.packs().to_vec();
            packs.extend(i.pack.clone());
            ctx.db.with_packs(packs)
        }
        None => ctx.db.clone(),
    };
    let reader = all.reader();
    let mut connectivity = ingested.as_ref().map(|i| i.connectivity(&ctx.db));
    let mut updates = Vec::with_capacity(req.commands.len());
    for (i, c) in req.commands.iter().enumerate() {
        if let Err(e) = validate_ref_name(&c.name) {
            errors[i] = Some(e.to_string());
            continue;
        }
        let mut peeled = None;
        if !c.is_delete() {
            let connected = match &mut connectivity {
                Some(check) => check.check(c.new),
                None if ctx.db.contains(&c.new) => Ok(()),
                None => Err(objectstore::odb::Error::Missing(c.new)),
            };
            if let Err(e) = connected {
                tracing::warn!(repo = %ctx.repo.id, r#ref = %c.name, error = %e, "push not connected");
                errors[i] = Some("missing necessary objects".into());
                continue;
            }
            match reader.peel(&c.new) {
                Ok((target, _)) if target != c.new => peeled = Some(target),
                Ok(_) => {}
                Err(e) => {
                    errors[i] = Some(format!("cannot read {}: {e}", c.new));
                    continue;
                }
            }
        }
        updates.push((
            i,
            RefUpdate {
                name: c.name.clone(),
                old: c.old,
                new: c.new,
                peeled,
            },
        ));
    }
    let atomic = req.capabilities.has("atomic");
    if atomic && errors.iter().any(Option::is_some) {
        return (None, results(req, errors, "atomic push failed"));
    }
    let checked = started.elapsed();
    if let Some(pack) = &ingested {
        let needed = updates.iter().any(|(_, u)| !u.new.is_null());
        if needed {
            if let Err(e) = ctx.runtime.block_on(pack.publish(&ctx.db)) {
                tracing::error!(repo = %ctx.repo.id, error = %e, "storing the pack failed");
                return (
                    Some(format!("storing the pack failed: {e}")),
                    refuse_all(req, "unpacker error"),
                );
            }
        }
    }
    let tx = RefTransaction {
        updates: updates.iter().map(|(_, u)| u.clone()).collect(),
        atomic,
    };
    match ctx.runtime.block_on(ctx.repo.refs.commit(&tx)) {
        Ok(outcome) => {
            for ((i, _), result) in updates.iter().zip(outcome) {
                errors[*i] = result;
            }
        }
        Err(e) => {
            tracing::error!(repo = %ctx.repo.id, error = %e, "ref update failed");
            return (None, refuse_all(req, &format!("ref update failed: {e}")));
        }
    }
    repoint_unborn_head(ctx, req, &errors);
    let applied = errors.iter().filter(|e| e.is_none()).count();
    tracing::info!(
        repo = %ctx.repo.id,
        applied,
        refused = errors.len() - applied,
        objects = ingested.as_ref().map_or(0, |i| i.num_objects),
        indexed_ms = indexed.as_millis() as u64,
        checked_ms = (checked - indexed).as_millis() as u64,
        total_ms = started.elapsed().as_millis() as u64,
        "push"
    );
    (None, results(req, errors, ""))
}

fn results(req: &PushRequest, errors: Vec<Option<String>>, fallback: &str) -> Vec<CommandResult> {
    req.commands
        .iter()
        .zip(errors)
        .map(|(c, e)| CommandResult {
            name: c.name.clone(),
            error: match e {
                Some(e) => Some(e),
                None if !fallback.is_empty() => Some(fallback.to_owned()),
                None => None,
            },
        })
        .collect()
}

/// When `HEAD` names a branch that does not exist and this push created branches, point it at
/// one of them (`main`, `master`, else the first pushed), as git hosting does on a first push.
fn repoint_unborn_head(ctx: &PushContext<'_>, req: &PushRequest, errors: &[Option<String>]) {
    let created: Vec<&str> = req
        .commands
        .iter()
        .zip(errors)
        .filter(|(c, e)| e.is_none() && !c.is_delete() && c.name.starts_with("refs/heads/"))
        .map(|(c, _)| c.name.as_str())
        .collect();
    if created.is_empty() {
        return;
    }
    let Ok(snapshot) = ctx.runtime.block_on(ctx.repo.refs.snapshot()) else {
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
    match ctx
        .runtime
        .block_on(ctx.repo.refs.repoint_unborn_head(&head, target))
    {
        Ok(true) => {
            tracing::info!(repo = %ctx.repo.id, head = target, "HEAD now names the first pushed branch")
        }
        Ok(false) => {}
        Err(e) => tracing::warn!(repo = %ctx.repo.id, error = %e, "could not re-point HEAD"),
    }
}
