//! upload-pack requests as clients send them: a v0/v1 want/have list, and a v2 command with
//! its arguments (fetch, ls-refs, object-info).
#![no_main]

use libfuzzer_sys::fuzz_target;
use protocol::upload_pack::{Command, FetchRequest};

fuzz_target!(|data: &[u8]| {
    let _ = FetchRequest::parse_v0(data);
    if let Ok(Some(command)) = Command::read(data) {
        let _ = FetchRequest::parse_v2(&command);
        let _ = command.ls_refs_args();
        let _ = command.object_info_args();
    }
});
