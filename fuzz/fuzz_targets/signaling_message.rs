//! Whatever a browser sends on the signaling WebSocket: parsed as a client message
//! (JSON) or refused, never a panic; what parses serializes back to the same message.
#![no_main]

use kefu_proto::signaling::ClientMessage;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(msg) = serde_json::from_slice::<ClientMessage>(data) else {
        return;
    };
    let json = serde_json::to_string(&msg).expect("a parsed message serializes");
    let again: ClientMessage = serde_json::from_str(&json).expect("and parses back");
    assert_eq!(msg, again);
});
