//! receive-pack requests: the command list (with capabilities, shallow lines and push
//! options) that comes before a push's pack, checked against the limits line by line.
#![no_main]

use libfuzzer_sys::fuzz_target;
use protocol::pktline::PktReader;
use protocol::receive_pack::{Limits, PushRequest};

fuzz_target!(|data: &[u8]| {
    // Small limits, so the fuzzer reaches them.
    let limits = Limits {
        max_commands: 8,
        max_ref_name: 64,
        max_command_bytes: 256,
        max_shallow: 4,
        max_push_options: 4,
    };
    let mut reader = PktReader::new(data);
    if let Ok(Some(request)) = PushRequest::read(&mut reader, &limits) {
        assert!(request.commands.len() <= limits.max_commands);
        assert!(request.shallows.len() <= limits.max_shallow);
        assert!(request.push_options.len() <= limits.max_push_options);
        for command in &request.commands {
            assert!(command.name.len() <= limits.max_ref_name);
        }
        let _ = request.expects_pack();
        let _ = request.sideband();
    }
});
