//! pkt-line framing: any bytes give packets or a clean error, never a panic, and a packet
//! written back reads the same.
#![no_main]

use libfuzzer_sys::fuzz_target;
use protocol::pktline::{self, Packet, PktReader};

fuzz_target!(|data: &[u8]| {
    let mut reader = PktReader::new(data);
    let mut packets = 0usize;
    while let Ok(Some(packet)) = reader.read() {
        packets += 1;
        // An empty data packet (`0004`) is read, but never written: git says not to send one.
        if let Packet::Data(payload @ [_, ..]) = packet {
            let payload = payload.to_vec();
            let mut out = Vec::new();
            pktline::write_data(&mut out, &payload);
            let mut again = PktReader::new(&out[..]);
            match again.read() {
                Ok(Some(Packet::Data(read))) => assert_eq!(read, &payload[..]),
                other => panic!("a written packet read back as {other:?}"),
            }
        }
        assert!(packets <= data.len() / 4, "more packets than headers");
    }
});
