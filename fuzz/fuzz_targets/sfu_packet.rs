//! Every packet the network hands the SFU, over UDP or as an ICE-TCP frame, from one of
//! its participants' addresses or a stranger's. Two participants joined with real
//! (str0m) offers stay across inputs, so state builds up as it would in a call.
#![no_main]

use std::cell::RefCell;
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use kefu_media_server::{ParticipantId, RoomId, Sfu, SfuOutput};
use libfuzzer_sys::fuzz_target;
use str0m::media::{Direction, MediaKind};
use str0m::{Candidate, Rtc};

const SFU: &str = "127.0.0.1:50000";
const PEERS: [&str; 2] = ["127.0.0.1:40001", "127.0.0.1:40002"];
const STRANGER: &str = "127.0.0.1:40999";

struct World {
    sfu: Sfu,
    start: Instant,
    tick: u64,
}

/// A browser-like offer: audio and video, sendrecv, one host candidate at `addr`.
fn offer(addr: SocketAddr, now: Instant) -> String {
    let mut rtc = Rtc::builder().build(now);
    rtc.add_local_candidate(Candidate::host(addr, "udp").expect("host candidate"));
    let mut api = rtc.sdp_api();
    api.add_media(MediaKind::Audio, Direction::SendRecv, None, None, None);
    api.add_media(MediaKind::Video, Direction::SendRecv, None, None, None);
    let (offer, _) = api.apply().expect("an offer");
    offer.to_sdp_string()
}

thread_local! {
    static WORLD: RefCell<World> = RefCell::new({
        let start = Instant::now();
        let addr: SocketAddr = SFU.parse().expect("literal address");
        let mut sfu = Sfu::new(addr, start);
        sfu.enable_tcp(addr);
        for (i, peer) in PEERS.iter().enumerate() {
            let sdp = offer(peer.parse().expect("literal address"), start);
            sfu.join(start, RoomId::new("r"), ParticipantId::new(format!("p{i}")), &sdp)
                .expect("the SFU accepts a str0m offer");
        }
        World { sfu, start, tick: 0 }
    });
}

fuzz_target!(|data: &[u8]| {
    let Some((&selector, packet)) = data.split_first() else {
        return;
    };
    let source: SocketAddr = match selector % 3 {
        0 => PEERS[0],
        1 => PEERS[1],
        _ => STRANGER,
    }
    .parse()
    .expect("literal address");
    WORLD.with(|world| {
        let mut w = world.borrow_mut();
        // Time moves 10 ms per input, so timers fire too.
        w.tick += 1;
        let now = w.start + Duration::from_millis(10 * w.tick);
        if selector & 0x80 == 0 {
            w.sfu.handle_datagram(now, source, packet);
        } else {
            w.sfu.handle_tcp_frame(now, source, packet);
        }
        w.sfu.handle_timeout(now);
        while !matches!(w.sfu.poll_output(), SfuOutput::Timeout(_)) {}
    });
});
