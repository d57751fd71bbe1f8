//! Pack ingestion, both passes, with small limits: whatever a client sends is refused with an
//! error or indexed into a pack whose `.idx` lists exactly the objects it holds; nothing beyond
//! the limits is ever allocated.
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
    let mut input = data;
    let Ok(received) = receive(
        &mut input,
        staging().path(),
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
        let known = gix_hash::ObjectId::from_hex(b"f0e58b3a3d5aae5236e10340b9c96d45833f0b58")
            .expect("a valid id");
        Ok((id == known.as_ref()).then_some((gix_object_kind_blob(), blob)))
    };
    if let Ok(indexed) = received.resolve(&mut bases, &limits, Checks::STRICT, threads) {
        // What was indexed opens as a pack (its `.idx` is well formed).
        if let Err(e) = indexed.open() {
            panic!("an indexed pack does not open: {e}");
        }
    }
});

fn gix_object_kind_blob() -> gix_object::Kind {
    gix_object::Kind::Blob
}
