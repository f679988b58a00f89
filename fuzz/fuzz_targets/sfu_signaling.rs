//! What signaling hands the SFU from a browser: an SDP offer (join or ICE restart) and
//! trickled ICE candidates. Bad input is an error, never a panic; the SFU stays usable.
#![no_main]

use std::net::SocketAddr;
use std::time::Instant;

use kefu_media_server::{ParticipantId, RoomId, Sfu, SfuOutput};
use libfuzzer_sys::fuzz_target;

/// libfuzzer-sys aborts on every panic, even one the code under test catches. The SFU
/// contains the WebRTC stack's own panics on contradictory offers (they become a
/// refused offer), so only a panic that escapes is a finding: keep the default hook
/// (it prints), and let libfuzzer-sys abort on what unwinds out of the target.
fn report_only_escaping_panics() {
    static ONCE: std::sync::Once = std::sync::Once::new();
    ONCE.call_once(|| {
        let _ = std::panic::take_hook();
        std::panic::set_hook(Box::new(|info| eprintln!("{info}")));
    });
}

fuzz_target!(|data: &[u8]| {
    report_only_escaping_panics();
    let text = String::from_utf8_lossy(data);
    let now = Instant::now();
    let addr: SocketAddr = "127.0.0.1:50000".parse().expect("literal address");
    let mut sfu = Sfu::new(addr, now);
    sfu.enable_tcp(addr);
    let who = ParticipantId::new("fuzz");
    if sfu.join(now, RoomId::new("r"), who.clone(), &text).is_ok() {
        // A participant that joined: the same text again as a restart, and each line
        // as a trickled candidate.
        let _ = sfu.restart(now, &who, &text);
        for line in text.lines() {
            let _ = sfu.add_remote_candidate(&who, line);
        }
    } else {
        let _ = sfu.add_remote_candidate(&who, &text);
    }
    sfu.handle_timeout(now);
    while !matches!(sfu.poll_output(), SfuOutput::Timeout(_)) {}
});
