//! What an upstream answers and what an inbound webhook sends, before anything is fetched:
//! ref advertisements (v0 and v2 `ls-refs`), a fetch's side-band answer, and webhook
//! signatures. None may panic; what parses holds only valid ref names, at most the limit,
//! and only ids of the object format (SHA-1 or SHA-256) the remote speaks.
#![no_main]

use std::io::Read;

use events::upstream::{
    parse_fetch_advertisement, parse_ls_refs, verify_webhook, PackReader, MAX_REFS,
};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    // Both object formats: every id that parses has the format asked in.
    for format in [gix_hash::Kind::Sha1, gix_hash::Kind::Sha256] {
        if let Ok(advertised) = parse_ls_refs(data, format) {
            assert!(advertised.refs.len() <= MAX_REFS);
            assert!(advertised
                .refs
                .keys()
                .all(|n| refs::validate_ref_name(n).is_ok()));
            assert!(advertised.refs.values().all(|id| id.kind() == format));
        }
    }
    if let Ok(Some(advertised)) = parse_fetch_advertisement(data) {
        assert!(advertised.refs.len() <= MAX_REFS);
        let format = advertised.object_hash;
        assert!(advertised.refs.values().all(|id| id.kind() == format));
    }
    let _ = events::upstream::v2_object_format(data);
    let mut pack = Vec::new();
    let mut reader = PackReader::new(data).take(1 << 20);
    if reader.read_to_end(&mut pack).is_ok() {
        assert!(pack.len() <= data.len());
    }
    // Headers from the first bytes, the body after them.
    let split = usize::from(data.first().copied().unwrap_or(0)).min(data.len());
    let (head, body) = data.split_at(split);
    let mut headers = http::HeaderMap::new();
    for line in head.split(|b| *b == b'\n') {
        let text = String::from_utf8_lossy(line);
        if let Some((k, v)) = text.split_once(':') {
            if let (Ok(k), Ok(v)) = (
                http::header::HeaderName::from_bytes(k.trim().as_bytes()),
                http::HeaderValue::from_str(v.trim()),
            ) {
                headers.append(k, v);
            }
        }
    }
    if let Ok(verified) = verify_webhook(&headers, body, "fuzz secret", 1_800_000_000) {
        // Only a signature made with the secret, or GitLab's token itself, gets here.
        assert!(
            headers.contains_key("x-gitlab-token")
                || verified.delivery.is_some()
                || !verified.event.is_empty()
        );
    }
});
