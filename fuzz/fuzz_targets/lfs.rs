//! Git LFS inputs: pointer files (from pushed blobs), object ids, `.gitattributes`, and the
//! JSON bodies of the batch, verify and locks APIs.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Some(pointer) = lfs::Pointer::parse(data) {
        let encoded = pointer.encode();
        let again = lfs::Pointer::parse(encoded.as_bytes()).expect("an encoded pointer parses");
        assert_eq!(again, pointer);
    }
    if let Ok(text) = std::str::from_utf8(data) {
        let _ = lfs::Oid::parse(text);
        let patterns = lfs::attributes::lfs_patterns(data);
        for path in ["a.bin", "dir/model.bin", "x", text] {
            let _ = lfs::attributes::tracked_by_lfs(&patterns, path);
        }
        let exact = lfs::attributes::exact_pattern(text);
        let _ = lfs::attributes::lfs_patterns(format!("{exact} filter=lfs\n").as_bytes());
    }
    let _ = serde_json::from_slice::<lfs::api::BatchRequest>(data);
    let _ = serde_json::from_slice::<lfs::api::VerifyRequest>(data);
    let _ = serde_json::from_slice::<lfs::api::CreateLockRequest>(data);
    let _ = serde_json::from_slice::<lfs::api::VerifyLocksRequest>(data);
    let _ = serde_json::from_slice::<lfs::api::UnlockRequest>(data);
});
