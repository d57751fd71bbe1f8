//! Pack ingestion, both passes, with small limits: whatever a client sends is refused with an
//! error or indexed into a pack whose `.idx` lists exactly the objects it holds; nothing beyond
//! the limits is ever allocated. Then the stored pack is read back object by object, as fetches
//! read it: the reader's own delta resolution must give every object the id the indexer found.
//! An input starting with `sha256\n` is a pack of a SHA-256 repository (the rest), any other
//! a SHA-1 one.
#![no_main]

use std::sync::OnceLock;
use std::time::Duration;

use libfuzzer_sys::fuzz_target;
use objectstore::budget::MemoryBudget;
use objectstore::odb::index::{receive, Checks, Limits};

fn staging() -> &'static tempfile::TempDir {
    static DIR: OnceLock<tempfile::TempDir> = OnceLock::new();
    DIR.get_or_init(|| tempfile::tempdir().expect("a temporary directory"))
}

fuzz_target!(|data: &[u8]| {
    let limits = Limits {
        max_object_bytes: 1 << 20,
        max_objects: 1000,
        max_delta_depth: 50,
        threads: 1,
        base_cache_bytes: 1 << 20,
        budget_wait: Duration::ZERO,
    };
    let budget = MemoryBudget::new(64 << 20);
    let (format, mut input) = match data.strip_prefix(b"sha256\n") {
        Some(rest) => (gix_hash::Kind::Sha256, rest),
        None => (gix_hash::Kind::Sha1, data),
    };
    let Ok(received) = receive(
        &mut input,
        staging().path(),
        format,
        &limits,
        &budget,
        Checks::STRICT,
    ) else {
        return;
    };
    let Ok((threads, _reservation)) = received.reserve_working_set(&limits, &budget) else {
        return;
    };
    // A thin pack's missing bases: one known blob, so REF deltas against it resolve.
    let mut bases = |id: &gix_hash::oid| {
        let blob = b"base blob\n".to_vec();
        let known = gix_object::compute_hash(format, gix_object_kind_blob(), &blob)
            .expect("hashing");
        Ok((id == known.as_ref()).then_some((gix_object_kind_blob(), blob)))
    };
    if let Ok(indexed) = received.resolve(&mut bases, &limits, Checks::STRICT, threads) {
        // What was indexed opens as a pack (its `.idx` is well formed)...
        let pack = match indexed.open() {
            Ok(Some(pack)) => pack,
            Ok(None) => return,
            Err(e) => panic!("an indexed pack does not open: {e}"),
        };
        // ...and reads back: each object hashes to the id it is stored under.
        let ids: Vec<gix_hash::ObjectId> = (0..pack.num_objects())
            .map(|i| pack.index.oid_at_index(i).to_owned())
            .collect();
        let db = objectstore::odb::ObjectDb::detached(vec![pack]);
        let reader = db.reader();
        let mut buf = Vec::new();
        for id in ids {
            let kind = match reader.read(&id, &mut buf) {
                Ok(kind) => kind,
                Err(e) => panic!("{id} was indexed but does not read back: {e}"),
            };
            assert_eq!(id.kind(), format, "an id of another format");
            let mut hasher = gix_hash::hasher(format);
            hasher.update(&gix_object::encode::loose_header(kind, buf.len() as u64));
            hasher.update(&buf);
            let got = hasher.try_finalize().expect("hashing");
            assert_eq!(got, id, "an object read back as other content");
            match reader.header(&id) {
                Ok(Some((k, size))) => assert_eq!((k, size), (kind, buf.len() as u64)),
                other => panic!("{id}: header {other:?}"),
            }
        }
    }
});

fn gix_object_kind_blob() -> gix_object::Kind {
    gix_object::Kind::Blob
}
