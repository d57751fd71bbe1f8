//! What the file routes and the Hub API read from a request before touching a repository:
//! `/hf` paths, percent-encoded path segments, `Range` headers, ndjson commit payloads and
//! `git archive --remote` requests. None may panic; a parsed repository id is always valid,
//! a decoded segment never holds a NUL, and a range always lies inside the file.
#![no_main]

use artifact_git::files::range::{part, Part};
use artifact_git::storage::valid_name;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let text = String::from_utf8_lossy(data);
    if let Some(route) = artifact_git::hub::HubRoute::parse(&text) {
        let text = format!("{route:?}");
        assert!(!text.is_empty());
    }
    if let Ok(segment) = artifact_git::files::decode_segment(&text) {
        assert!(!segment.contains('\0'));
    }
    let size = u64::from(data.first().copied().unwrap_or(0)) * 1000;
    if let Part::Range { start, len } = part(Some(&text), size) {
        assert!(len > 0 && start.checked_add(len).is_some_and(|end| end <= size), "{text:?}");
    }
    let _ = artifact_git::hub::check_commit_payload(data);
    let mut reader = protocol::pktline::PktReader::new(data);
    if let Ok(Ok(request)) = protocol::upload_archive::ArchiveRequest::read(&mut reader) {
        assert!(!request.tree_ish.is_empty());
    }
    for segment in text.split('/') {
        let _ = valid_name(segment);
    }
});
