//! Ref names (git's check-ref-format rules) and the stored refs object, which a reader must
//! take from the bucket as untrusted bytes.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(name) = std::str::from_utf8(data) {
        if refs::validate_ref_name(name).is_ok() {
            assert!(!name.is_empty() && !name.contains("..") && !name.ends_with(".lock"));
        }
    }
    if let Ok(parsed) = refs::parse_packed_refs(data) {
        // What was read writes back to something that reads the same.
        let written = refs::write_packed_refs(&parsed);
        let again = refs::parse_packed_refs(&written).expect("written refs parse");
        assert_eq!(again.refs, parsed.refs);
        assert_eq!(again.seq, parsed.seq);
        assert_eq!(again.unwatched, parsed.unwatched);
    }
});
