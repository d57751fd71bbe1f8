//! The answer to a fetch: the protocol's acknowledgements and sections, and the pack, for
//! protocol v0/v1 and v2, written into a streaming response (or a bundle file). No HTTP and
//! no server state here: [`crate::upload_pack`] reads and parses the request, takes a slot and
//! memory, and calls [`serve_v0`] / [`serve_v2`] on a blocking thread; maintenance writes
//! bundles with [`write_bundle_pack`].

use std::cell::RefCell;
use std::collections::HashSet;
use std::io::{BufWriter, Write};
use std::sync::Arc;

use gix_hash::ObjectId;
use objectstore::odb::{generate, walk, Pack, Reach, Reader};
use objectstore::ObjectDb;
use protocol::advertisement::write_ls_refs;
use protocol::negotiate::{v0_acknowledge, v2_acknowledge, Next};
use protocol::pktline::{write_delim, write_flush, write_line};
use protocol::sideband::{write_band, Mode, DATA, ERROR, PROGRESS};
use protocol::upload_pack::{Command, FetchRequest};
use refs::Snapshot;

use crate::answer_cache::{AnswerCache, Question, Recording};
use crate::body::ChannelWriter;
use crate::repo::{refs_view, History};

/// What a request handler can fail with; every variant reaches the client as an `ERR` line
/// or, once a pack is being streamed, on side-band 3.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error(transparent)]
    Protocol(#[from] protocol::Error),
    #[error(transparent)]
    Objects(#[from] objectstore::odb::Error),
    #[error("{0}")]
    Refused(String),
    #[error("connection closed: {0}")]
    Io(#[from] std::io::Error),
}

/// The response being written, and whether the pack's side-band has started.
pub struct Output {
    writer: RefCell<ChannelWriter>,
    sideband: Option<Mode>,
    progress: bool,
}

impl Output {
    pub fn new(writer: ChannelWriter) -> Self {
        Output {
            writer: RefCell::new(writer),
            sideband: None,
            progress: false,
        }
    }

    fn raw(&self, data: &[u8]) -> std::io::Result<()> {
        self.writer.borrow_mut().write_all(data)
    }

    /// Bytes written as they are, outside any side-band (a bundle's header).
    pub(crate) fn write_raw(&self, data: &[u8]) -> std::io::Result<()> {
        self.raw(data)
    }

    /// The writer back, to end the body.
    pub(crate) fn into_writer(self) -> ChannelWriter {
        self.writer.into_inner()
    }

    fn progress(&self, message: &str) {
        if let (Some(mode), true) = (self.sideband, self.progress) {
            let mut buf = Vec::new();
            write_band(&mut buf, mode, PROGRESS, message.as_bytes());
            let _ = self.raw(&buf);
        }
    }

    /// Report `error` the way the client can show it at this point of the response.
    pub fn fail(&self, error: &str) {
        let mut buf = Vec::new();
        match self.sideband {
            Some(Mode::None) => {}
            Some(mode) => {
                write_band(&mut buf, mode, ERROR, format!("{error}\n").as_bytes());
                write_flush(&mut buf);
            }
            None => write_line(&mut buf, &format!("ERR {error}")),
        }
        let _ = self.raw(&buf);
        let _ = self.writer.borrow_mut().flush();
    }
}

/// Pack data on side-band 1 (or raw without side-band).
struct PackData<'a>(&'a Output);

impl Write for PackData<'_> {
    fn write(&mut self, data: &[u8]) -> std::io::Result<usize> {
        let mode = self.0.sideband.unwrap_or(Mode::None);
        let mut buf = Vec::with_capacity(data.len() + 16);
        write_band(&mut buf, mode, DATA, data);
        self.0.raw(&buf)?;
        Ok(data.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        self.0.writer.borrow_mut().flush()
    }
}

/// The objects and refs a request is served from.
pub struct Source {
    pub snapshot: Snapshot,
    pub db: ObjectDb,
    /// Where a client may download each stored pack itself (`packfile-uris`): pack name and
    /// URL, worked out before the answer when the client asked for them.
    pub pack_uris: Vec<(String, String)>,
    /// Generated answers kept for identical requests (`None`: neither read nor kept).
    pub answers: Option<Arc<AnswerCache>>,
}

impl Source {
    /// Every want must name an object of this repository, and a commit must be reachable
    /// from a ref (allow-tip-sha1-in-want, allow-reachable-sha1-in-want): a commit that a
    /// force push left behind is not served, even before maintenance drops it.
    fn check_wants(&self, wants: &[ObjectId]) -> Result<(), Error> {
        if let Some(missing) = wants.iter().find(|w| !self.db.contains(w)) {
            return Err(Error::Refused(format!(
                "upload-pack: not our ref {missing}"
            )));
        }
        let tips: HashSet<ObjectId> = self
            .snapshot
            .refs
            .values()
            .flat_map(|v| std::iter::once(v.target).chain(v.peeled))
            .collect();
        let reader = self.db.reader();
        let mut pending: HashSet<ObjectId> = HashSet::new();
        for want in wants.iter().filter(|w| !tips.contains(*w)) {
            if reader.kind(want)? == Some(gix_object::Kind::Commit) {
                pending.insert(*want);
            }
        }
        if pending.is_empty() {
            return Ok(());
        }
        // Walk the history of every ref until each wanted commit is found.
        let mut seen = HashSet::new();
        let mut stack: Vec<ObjectId> = Vec::new();
        for tip in &tips {
            if let Ok((id, gix_object::Kind::Commit)) = reader.peel(tip) {
                stack.push(id);
            }
        }
        while let Some(id) = stack.pop() {
            if !seen.insert(id) {
                continue;
            }
            pending.remove(&id);
            if pending.is_empty() {
                return Ok(());
            }
            stack.extend(reader.commit(&id)?.parents);
        }
        let first = pending
            .into_iter()
            .next()
            .unwrap_or_else(|| reader.db().null_id());
        Err(Error::Refused(format!("upload-pack: not our ref {first}")))
    }
}

/// Serve a stateless v0/v1 request.
pub(crate) fn serve_v0(source: &Source, req: &FetchRequest, out: &mut Output) -> Result<(), Error> {
    let req = req.clone();
    if req.wants.is_empty() {
        return Ok(());
    }
    source.check_wants(&req.wants)?;
    let filter = filter_of(&req)?;
    let reader = source.db.reader();
    let mut buf = Vec::new();
    let shallow = shallow_update(source, &reader, &req)?;
    if req.deepens() {
        write_shallow_lines(&mut buf, &shallow);
        write_flush(&mut buf);
    }
    if !req.seen_haves && !req.done {
        // A stateless client sends its wants alone first, to read the shallow list; git
        // answers that request with the shallow list and nothing else.
        out.raw(&buf)?;
        return Ok(());
    }
    let next = v0_acknowledge(&req, &History(&reader), &mut buf)?;
    out.raw(&buf)?;
    if next == Next::EndRound {
        return Ok(());
    }
    out.sideband = Some(req.options.sideband);
    out.progress = !req.options.no_progress;
    send_pack(source, &reader, &req, &shallow, filter, out)?;
    if req.options.sideband != Mode::None {
        let mut end = Vec::new();
        write_flush(&mut end);
        out.raw(&end)?;
    }
    Ok(())
}

/// Serve one v2 command.
pub(crate) fn serve_v2(source: &Source, command: &Command, out: &mut Output) -> Result<(), Error> {
    let mut buf = Vec::new();
    match command.name.as_str() {
        "ls-refs" => {
            let args = command.ls_refs_args()?;
            write_ls_refs(&mut buf, &refs_view(&source.snapshot), &args);
            out.raw(&buf)?;
        }
        "object-info" => {
            let (size, ids) = command.object_info_args()?;
            let reader = source.db.reader();
            if size {
                write_line(&mut buf, "size");
            }
            for id in ids {
                match reader.header(&id)? {
                    Some((_, bytes)) if size => write_line(&mut buf, &format!("{id} {bytes}")),
                    _ => write_line(&mut buf, &format!("{id}")),
                }
            }
            write_flush(&mut buf);
            out.raw(&buf)?;
        }
        "fetch" => {
            let (req, wanted_refs) = fetch_request_v2(&source.snapshot, command)?;
            if req.wants.is_empty() {
                return Ok(());
            }
            source.check_wants(&req.wants)?;
            let filter = filter_of(&req)?;
            let reader = source.db.reader();
            if v2_acknowledge(&req, &History(&reader), &mut buf)? == Next::EndRound {
                out.raw(&buf)?;
                return Ok(());
            }
            let shallow = shallow_update(source, &reader, &req)?;
            if req.deepens() || !req.shallows.is_empty() {
                write_line(&mut buf, "shallow-info");
                write_shallow_lines(&mut buf, &shallow);
                write_delim(&mut buf);
            }
            if !wanted_refs.is_empty() {
                write_line(&mut buf, "wanted-refs");
                for (id, name) in &wanted_refs {
                    write_line(&mut buf, &format!("{id} {name}"));
                }
                write_delim(&mut buf);
            }
            if let Some(offloaded) = offloaded_packs(source, &reader, &req)? {
                write_line(&mut buf, "packfile-uris");
                for (checksum, uri) in &offloaded {
                    write_line(&mut buf, &format!("{checksum} {uri}"));
                }
                write_delim(&mut buf);
                write_line(&mut buf, "packfile");
                out.raw(&buf)?;
                out.sideband = Some(Mode::Large);
                out.progress = !req.options.no_progress;
                out.progress(&format!(
                    "Sending {} stored packs by URI\n",
                    offloaded.len()
                ));
                let mut data = BufWriter::with_capacity(Mode::Large.max_payload(), PackData(out));
                data.write_all(&empty_pack(source.db.object_hash()))?;
                data.flush()?;
                drop(data);
                let mut end = Vec::new();
                write_flush(&mut end);
                out.raw(&end)?;
                return Ok(());
            }
            write_line(&mut buf, "packfile");
            out.raw(&buf)?;
            out.sideband = Some(Mode::Large);
            out.progress = !req.options.no_progress;
            send_pack(source, &reader, &req, &shallow, filter, out)?;
            let mut end = Vec::new();
            write_flush(&mut end);
            out.raw(&end)?;
        }
        other => return Err(Error::Refused(format!("unknown command {other:?}"))),
    }
    Ok(())
}

/// A v2 `fetch`, with `want-ref`s resolved against the refs (and added to the wants).
pub(crate) fn fetch_request_v2(
    snapshot: &Snapshot,
    command: &Command,
) -> Result<(FetchRequest, Vec<(ObjectId, String)>), Error> {
    let mut req = FetchRequest::parse_v2(command)?;
    let mut wanted_refs = Vec::new();
    for name in &req.want_refs {
        let id = snapshot
            .get(name)
            .ok_or_else(|| Error::Refused(format!("unknown ref {name}")))?;
        wanted_refs.push((id, name.clone()));
        req.wants.push(id);
    }
    Ok((req, wanted_refs))
}

/// The request's object filter; an unsupported spec is refused before anything is sent.
fn filter_of(req: &FetchRequest) -> Result<Option<walk::Filter>, Error> {
    req.filter
        .as_deref()
        .map(walk::Filter::parse)
        .transpose()
        .map_err(Error::Refused)
}

fn shallow_update(
    source: &Source,
    reader: &Reader<'_>,
    req: &FetchRequest,
) -> Result<walk::ShallowUpdate, Error> {
    if !req.deepens() && req.shallows.is_empty() {
        return Ok(walk::ShallowUpdate::default());
    }
    let mut not = Vec::new();
    for name in &req.deepen_not {
        let id = resolve_ref(&source.snapshot, name).ok_or_else(|| {
            Error::Refused(format!("git upload-pack: ambiguous deepen-not: {name}"))
        })?;
        not.push(id);
    }
    let deepen = walk::Deepen {
        depth: req.depth,
        relative: req.deepen_relative,
        since: req.deepen_since,
        not,
    };
    Ok(walk::shallow_update(
        reader,
        &req.wants,
        &req.shallows,
        &deepen,
    )?)
}

/// Resolve a ref name as git's `expand_ref` does for `deepen-not`.
fn resolve_ref(snapshot: &Snapshot, name: &str) -> Option<ObjectId> {
    [
        name.to_owned(),
        format!("refs/{name}"),
        format!("refs/tags/{name}"),
        format!("refs/heads/{name}"),
    ]
    .iter()
    .find_map(|n| snapshot.get(n))
}

fn write_shallow_lines(buf: &mut Vec<u8>, update: &walk::ShallowUpdate) {
    for id in &update.shallow {
        write_line(buf, &format!("shallow {id}"));
    }
    for id in &update.unshallow {
        write_line(buf, &format!("unshallow {id}"));
    }
}

/// Compute and stream the pack.
fn send_pack(
    source: &Source,
    reader: &Reader<'_>,
    req: &FetchRequest,
    shallow: &walk::ShallowUpdate,
    filter: Option<walk::Filter>,
    out: &Output,
) -> Result<(), Error> {
    let db = &source.db;
    let mut data = BufWriter::with_capacity(Mode::Large.max_payload(), PackData(out));
    let everything = full_clone(source, req);
    // A partial clone without blobs of everything: every stored commit, tree and tag, found
    // from pack entry headers instead of a walk of every tree (unless a want is a blob).
    let everything_but_blobs = filter == Some(walk::Filter::BlobNone)
        && full_clone_but_filter(source, req)
        && req
            .wants
            .iter()
            .all(|w| !matches!(reader.kind(w), Ok(Some(gix_object::Kind::Blob)) | Err(_)));
    let stored = if everything || everything_but_blobs {
        stored_packs_reached_by_refs(source, reader)?
    } else {
        None
    };
    if let (Some([pack]), true) = (stored.as_deref(), everything) {
        out.progress(&format!(
            "Sending the stored pack: {} objects\n",
            pack.num_objects()
        ));
        tracing::info!(pack = %pack.name, objects = pack.num_objects(), "clone served verbatim");
        crate::metrics::inc(crate::metrics::CLONES_VERBATIM);
        generate::write_verbatim(pack, &mut data)?;
        data.flush()?;
        return Ok(());
    }
    crate::metrics::inc(crate::metrics::PACKS_GENERATED);
    if let Some(packs) = stored {
        // Everything is wanted: every stored object goes, each once, without a history walk.
        let total: u32 = packs.iter().map(|p| p.num_objects()).sum();
        out.progress(&format!("Counting objects: {total}, done.\n"));
        let skip_blobs = !everything;
        let stats = generate::write_all_objects(
            &packs,
            db.object_hash(),
            skip_blobs,
            &mut data,
            &mut |n, total| {
                if let Some(pct) = (n * 100).checked_div(total) {
                    out.progress(&format!("Writing objects: {pct}% ({n}/{total})\r"));
                }
            },
        )?;
        data.flush()?;
        drop(data);
        out.progress(&format!(
            "Total {} (delta {}), reused {} (delta {})\n",
            stats.objects, stats.deltas, stats.reused, stats.reused_deltas
        ));
        return Ok(());
    }
    let mut wants = req.wants.clone();
    wants.extend(shallow.extra_wants.iter().copied());
    let haves: Vec<ObjectId> = req
        .haves
        .iter()
        .copied()
        .filter(|h| db.contains(h))
        .collect();
    let kept = source
        .answers
        .as_ref()
        .filter(|a| a.enabled())
        .map(|answers| {
            let grafts: Vec<ObjectId> = shallow.grafts.iter().copied().collect();
            let shape = format!(
                "filter={filter:?} ofs-delta={} thin-pack={} include-tag={}",
                req.options.ofs_delta, req.options.thin_pack, req.options.include_tag
            );
            let key = AnswerCache::key(&Question {
                repository: db.keys().prefix(),
                refs: &source.snapshot.content_id,
                wants: &wants,
                haves: &haves,
                shallow: &grafts,
                shape: &shape,
            });
            (answers, key)
        });
    if let Some(answer) = kept.as_ref().and_then(|(answers, key)| answers.get(key)) {
        out.progress(&format!(
            "Sending the pack of an identical request: {} bytes\n",
            answer.len()
        ));
        crate::metrics::inc(crate::metrics::ANSWERS_REUSED);
        data.write_all(&answer)?;
        data.flush()?;
        return Ok(());
    }
    let mut selection = walk::select(reader, &wants, &haves, &shallow.grafts, filter, &mut |n| {
        out.progress(&format!("Counting objects: {n}\r"));
    })?;
    if req.options.include_tag {
        include_tags(&source.snapshot, reader, &mut selection)?;
    }
    out.progress(&format!(
        "Counting objects: {}, done.\n",
        selection.objects.len()
    ));
    let options = generate::Options {
        ofs_delta: req.options.ofs_delta,
        thin: req.options.thin_pack,
    };
    // The answer goes to the client as it is written, and to the cache when it may be kept.
    let mut recording = match &kept {
        Some((answers, _)) => answers.record(data),
        None => Recording::pass_through(data),
    };
    let stats = generate::write_pack(
        db,
        &selection.objects,
        &selection.client_has,
        options,
        &mut recording,
        &mut |n, total| {
            if let Some(pct) = (n * 100).checked_div(total) {
                out.progress(&format!("Writing objects: {pct}% ({n}/{total})\r"));
            }
        },
    )?;
    let (mut data, copy) = recording.finish();
    data.flush()?;
    drop(data);
    if let (Some((answers, key)), Some((pack, reservation))) = (kept, copy) {
        answers.keep(key, pack, reservation);
    }
    out.progress(&format!(
        "Total {} (delta {}), reused {} (delta {}), pack-reused 0\n",
        stats.objects, stats.deltas, stats.reused, stats.reused_deltas
    ));
    tracing::debug!(objects = stats.objects, bytes = stats.bytes, "pack sent");
    Ok(())
}

/// The pack of a bundle: `wants` with everything they reach, minus what the `haves` reach
/// (thin, as git's bundles are, when there are haves), raw and without progress. A bundle of
/// every branch and tag is a clone of everything and takes its shortcuts (the stored pack
/// sent verbatim).
pub(crate) fn write_bundle_pack(
    source: &Source,
    wants: Vec<ObjectId>,
    haves: Vec<ObjectId>,
    out: &Output,
) -> Result<(), Error> {
    let thin_pack = !haves.is_empty();
    let req = FetchRequest {
        wants,
        haves,
        done: true,
        options: protocol::upload_pack::FetchOptions {
            ofs_delta: true,
            thin_pack,
            no_progress: true,
            ..Default::default()
        },
        ..Default::default()
    };
    let reader = source.db.reader();
    send_pack(
        source,
        &reader,
        &req,
        &walk::ShallowUpdate::default(),
        None,
        out,
    )
}

/// The stored packs to send whole for a clone of everything, when their `.tips` records prove
/// that together they hold exactly what the refs reach (so nothing a deleted or rewritten
/// branch left behind goes out):
/// - a pack maintenance wrote holds exactly what its tips reach: alone, it is the answer when
///   every ref names an object in it and each of its tips is still reachable from the refs;
/// - otherwise every pack must record tips its objects are within, each still reachable.
///
/// `None`: walk the history instead.
fn stored_packs_reached_by_refs(
    source: &Source,
    reader: &Reader<'_>,
) -> Result<Option<Vec<Arc<Pack>>>, Error> {
    let packs = source.db.packs();
    let roots: Vec<ObjectId> = source.snapshot.refs.values().map(|v| v.target).collect();
    for pack in packs {
        if let Reach::Exactly(tips) = &pack.reach {
            if roots.iter().all(|r| pack.lookup(r).is_some())
                && walk::all_reachable(reader, &roots, tips, MAX_REACH_WALK)?
            {
                return Ok(Some(vec![pack.clone()]));
            }
        }
    }
    let mut tips = Vec::new();
    for pack in packs {
        match pack.reach.tips() {
            Some(t) => tips.extend_from_slice(t),
            None => return Ok(None),
        }
    }
    tips.sort();
    tips.dedup();
    if walk::all_reachable(reader, &roots, &tips, MAX_REACH_WALK)? {
        Ok(Some(packs.to_vec()))
    } else {
        Ok(None)
    }
}

/// The stored packs a clone of everything may download itself (`packfile-uris`), with their
/// checksums: only for a full clone whose answer is exactly the stored packs (their `.tips`
/// prove they hold only what the refs reach, so nothing a deleted branch left ships), when
/// every one of them has a URL of a scheme the client named, and when they are large enough
/// for a second request to pay. The in-band pack is then empty. `None`: answer in-band.
fn offloaded_packs(
    source: &Source,
    reader: &Reader<'_>,
    req: &FetchRequest,
) -> Result<Option<Vec<(ObjectId, String)>>, Error> {
    if req.packfile_uri_protocols.is_empty()
        || source.pack_uris.is_empty()
        || !full_clone(source, req)
    {
        return Ok(None);
    }
    let Some(packs) = stored_packs_reached_by_refs(source, reader)? else {
        return Ok(None);
    };
    let total: u64 = packs.iter().map(|p| p.file_size()).sum();
    if total < MIN_OFFLOADED_BYTES || packs.len() > MAX_URIS {
        return Ok(None);
    }
    let mut out = Vec::with_capacity(packs.len());
    for pack in &packs {
        let uri = source
            .pack_uris
            .iter()
            .find(|(name, _)| *name == pack.name)
            .map(|(_, uri)| uri);
        let scheme_ok = |uri: &str| {
            uri.split_once("://")
                .is_some_and(|(scheme, _)| req.packfile_uri_protocols.iter().any(|p| p == scheme))
        };
        match uri {
            Some(uri) if scheme_ok(uri) => out.push((pack.checksum(), uri.clone())),
            _ => return Ok(None),
        }
    }
    Ok(Some(out))
}

/// Commits walked at most to find that every pack's tips are still reachable.
const MAX_REACH_WALK: usize = 2_000_000;

/// A clone of everything: no haves, no shallow history, no filter, ofs-delta understood, and
/// every branch wanted.
fn full_clone(source: &Source, req: &FetchRequest) -> bool {
    req.filter.is_none() && full_clone_but_filter(source, req)
}

/// [`full_clone`], whatever the filter.
fn full_clone_but_filter(source: &Source, req: &FetchRequest) -> bool {
    if !req.haves.is_empty() || !req.shallows.is_empty() || req.deepens() || !req.options.ofs_delta
    {
        return false;
    }
    let wants: HashSet<&ObjectId> = req.wants.iter().collect();
    source
        .snapshot
        .refs
        .iter()
        .filter(|(name, _)| name.starts_with("refs/heads/"))
        .all(|(_, v)| wants.contains(&v.target))
}

/// include-tag: annotated tags whose target is being sent go along, with every tag between
/// them and the target (a tag may point at a tag).
fn include_tags(
    snapshot: &Snapshot,
    reader: &Reader<'_>,
    selection: &mut walk::Selection,
) -> Result<(), Error> {
    let mut sending: HashSet<ObjectId> = selection.objects.iter().copied().collect();
    let mut buf = Vec::new();
    for value in snapshot.refs.values() {
        let Some(peeled) = value.peeled else { continue };
        if !sending.contains(&peeled)
            || sending.contains(&value.target)
            || selection.client_has.contains(&value.target)
        {
            continue;
        }
        let mut tag = value.target;
        while tag != peeled && !sending.contains(&tag) && !selection.client_has.contains(&tag) {
            sending.insert(tag);
            selection.objects.push(tag);
            match reader.read(&tag, &mut buf)? {
                gix_object::Kind::Tag => tag = objectstore::odb::object::tag_target(&tag, &buf)?,
                _ => break,
            }
        }
    }
    Ok(())
}

/// Packs smaller than this together are sent in-band (`packfile-uris`): a second request
/// would cost more.
pub const MIN_OFFLOADED_BYTES: u64 = 1 << 20;

/// At most this many pack URLs in one answer.
pub const MAX_URIS: usize = 16;

/// A pack with no objects (what goes in-band when every object is sent by URL).
pub fn empty_pack(hash: gix_hash::Kind) -> Vec<u8> {
    let mut pack = b"PACK\0\0\0\x02\0\0\0\0".to_vec();
    let mut hasher = gix_hash::hasher(hash);
    hasher.update(&pack);
    match hasher.try_finalize() {
        Ok(id) => pack.extend_from_slice(id.as_bytes()),
        // A collision cannot come from these twelve fixed bytes.
        Err(_) => pack.extend_from_slice(&vec![0; hash.len_in_bytes()]),
    }
    pack
}

#[cfg(test)]
mod tests {
    #[test]
    fn the_empty_pack_is_gits() {
        let pack = super::empty_pack(gix_hash::Kind::Sha1);
        assert_eq!(pack.len(), 32);
        let hex: String = pack[12..].iter().map(|b| format!("{b:02x}")).collect();
        assert_eq!(hex, "029d08823bd8a8eab510ad6ac75c823cfd3ed31e");
    }
}
