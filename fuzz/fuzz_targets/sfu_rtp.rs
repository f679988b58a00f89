//! The SFU's RTP-level paths: forwarding with per-subscriber renumbering, frame
//! assembly for the recorder's tap and the beauty pipeline, black frames while
//! moderation withholds a publisher. Fuzzed datagrams never decrypt as SRTP, so here a
//! str0m peer in RTP mode publishes through a real (virtual-time) connection and the
//! input decides its packets (line, payload type, sequence jumps back and forth,
//! timestamps, marker, header extensions, payloads opening like VP8 / H.264 key
//! frames), interleaved with the controls around them: tap on/off, withholding on/off,
//! the beauty route and frames handed back from the pipeline, keyframe requests, the
//! passing of time and now and then a rejoin with a fresh peer connection (new SSRCs).
//! A str0m peer in frame mode subscribes: whatever the SFU sends it must take.
//!
//! The world (SFU, peers, connections) stays across inputs, as in `sfu_packet`.
#![no_main]

use std::cell::RefCell;
use std::collections::VecDeque;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use kefu_media_server::pipeline::{OutputFrame, VideoCodec};
use kefu_media_server::{
    BeautyOutput, BlankFrames, ParticipantId, RoomId, Sfu, SfuEvent, SfuOutput, TapParty,
};
use kefu_proto::Side;
use libfuzzer_sys::fuzz_target;
use str0m::change::{SdpAnswer, SdpPendingOffer};
use str0m::media::{Direction, KeyframeRequestKind, MediaKind, Mid, Pt};
use str0m::net::{Protocol, Receive};
use str0m::rtp::{ExtensionValues, RtpWrite, VideoOrientation};
use str0m::{Candidate, Event, Input, Output, Rtc, RtcError};

const SFU: &str = "127.0.0.1:50000";
/// The publisher's address alternates between rejoins.
const PUBLISHER: [&str; 2] = ["127.0.0.1:40001", "127.0.0.1:40003"];
const SUBSCRIBER: &str = "127.0.0.1:40002";
const ROOM: &str = "r";
const AGENT: &str = "agent";
const CUSTOMER: &str = "customer";
/// Rounds of datagram exchange per step before giving up on quiet.
const SHUTTLE_ROUNDS: usize = 64;
/// Ten-millisecond steps a handshake may take.
const HANDSHAKE_STEPS: usize = 500;
/// Inputs between two voluntary rejoins (a handshake is costly).
const REJOIN_EVERY: u64 = 200;
/// Operations one input runs at most.
const MAX_OPS: usize = 64;
/// Frames for the pipeline kept to be handed back.
const MAX_BEAUTIFY: usize = 16;

/// What the SFU gets as its black VP8 key frame.
const BLANK_VP8: &[u8] = &[
    0x10, 0x02, 0x00, 0x9d, 0x01, 0x2a, 0x10, 0x00, 0x10, 0x00, 0x00, 0x47, 0x08,
];

/// Payload openings that make packets look like frame starts, middles and ends.
const PREFIXES: [&[u8]; 8] = [
    &[],
    // VP8: descriptor with S bit, partition 0; key frame tag and start code.
    &[
        0x10, 0x10, 0x02, 0x00, 0x9d, 0x01, 0x2a, 0x80, 0x02, 0xe0, 0x01,
    ],
    // VP8: start of a delta frame.
    &[0x10, 0x11, 0x02, 0x00],
    // VP8: a continuation (no S bit).
    &[0x00],
    // H.264: single IDR slice.
    &[0x65, 0x88],
    // H.264: STAP-A with SPS and PPS.
    &[
        0x78, 0x00, 0x04, 0x67, 0x42, 0xc0, 0x1f, 0x00, 0x02, 0x68, 0xce,
    ],
    // H.264: FU-A start of an IDR.
    &[0x7c, 0x85],
    // H.264: FU-A end of an IDR.
    &[0x7c, 0x45],
];

/// A str0m peer standing in for a browser.
struct Peer {
    addr: SocketAddr,
    rtc: Rtc,
    /// Audio and video lines.
    mids: [Mid; 2],
    /// Per line: the payload types the SFU accepted, their RTX ones, and one it did not.
    pts: [Vec<Pt>; 2],
    /// Per line: the next extended sequence number and RTP timestamp written.
    seq: [u64; 2],
    ts: [u32; 2],
    connected: bool,
}

impl Peer {
    /// Joins `id` to the SFU's room with a fresh peer connection (RTP mode: the
    /// input writes its packets) and applies the answer.
    fn join(sfu: &mut Sfu, now: Instant, id: &str, addr: &str, rtp_mode: bool) -> Peer {
        let addr: SocketAddr = addr.parse().expect("literal address");
        let mut rtc = Rtc::builder().set_rtp_mode(rtp_mode).build(now);
        rtc.add_local_candidate(Candidate::host(addr, "udp").expect("host candidate"));
        let mut api = rtc.sdp_api();
        let audio = api.add_media(MediaKind::Audio, Direction::SendRecv, None, None, None);
        let video = api.add_media(MediaKind::Video, Direction::SendRecv, None, None, None);
        let (offer, pending): (_, SdpPendingOffer) = api.apply().expect("an offer");
        let answer = sfu
            .join(
                now,
                RoomId::new(ROOM),
                ParticipantId::new(id),
                &offer.to_sdp_string(),
            )
            .expect("the SFU accepts a str0m offer");
        let answer = SdpAnswer::from_sdp_string(&answer).expect("the SFU answers valid SDP");
        rtc.sdp_api()
            .accept_answer(pending, answer)
            .expect("the answer fits the offer");
        let mids = [audio, video];
        let pts = mids.map(|mid| {
            let accepted = rtc
                .media(mid)
                .expect("negotiated line")
                .remote_pts()
                .to_vec();
            let params = rtc.codec_config().params();
            let rtx = params
                .iter()
                .filter(|p| accepted.contains(&p.pt()))
                .filter_map(|p| p.resend());
            let refused = params
                .iter()
                .map(|p| p.pt())
                .find(|pt| !accepted.contains(pt));
            let mut pts = accepted.clone();
            pts.extend(rtx);
            pts.extend(refused);
            pts
        });
        Peer {
            addr,
            rtc,
            mids,
            pts,
            seq: [1000, 1000],
            ts: [0, 0],
            connected: false,
        }
    }

    /// Drains str0m; returns the datagrams it sends.
    fn poll(&mut self) -> Vec<(SocketAddr, Vec<u8>)> {
        let mut out = Vec::new();
        loop {
            match self.rtc.poll_output() {
                Ok(Output::Timeout(_)) => return out,
                Ok(Output::Transmit(t)) => out.push((t.source, t.contents.to_vec())),
                Ok(Output::Event(Event::Connected)) => self.connected = true,
                Ok(Output::Event(_)) => {}
                // A frame that does not depacketize (the subscriber's frame mode): the
                // SFU forwards the publisher's payloads as they are, and a browser
                // drops such a frame too. str0m goes on with the next output.
                Err(RtcError::Packet(..)) => {}
                Err(e) => panic!("a peer failed on what the SFU sent: {e}"),
            }
        }
    }

    /// Takes a datagram the SFU sent.
    fn receive(&mut self, now: Instant, from: SocketAddr, bytes: &[u8]) {
        let input = Input::Receive(
            now,
            Receive {
                proto: Protocol::Udp,
                source: from,
                destination: self.addr,
                contents: bytes.try_into().expect("the SFU sends valid datagrams"),
            },
        );
        self.rtc
            .handle_input(input)
            .expect("a peer takes what the SFU sends");
    }
}

/// A frame handed to the pipeline, waiting to come back "encoded".
struct ToPipeline {
    room: RoomId,
    rtp_time: u64,
    keyframe: bool,
    output: VideoCodec,
}

struct World {
    sfu: Sfu,
    now: Instant,
    publisher: Peer,
    subscriber: Peer,
    /// Whether the SFU has said each (publisher, subscriber) is connected.
    up: [bool; 2],
    /// Each was dropped by the SFU and must join again.
    lost: [bool; 2],
    tapped: bool,
    beautify: VecDeque<ToPipeline>,
    inputs: u64,
    last_rejoin: u64,
    rejoins: usize,
}

impl World {
    fn new() -> Self {
        let now = Instant::now();
        let mut sfu = Sfu::new(SFU.parse().expect("literal address"), now);
        sfu.set_blank_frames(BlankFrames {
            vp8: Some(Arc::from(BLANK_VP8)),
            h264: None,
        });
        let publisher = Peer::join(&mut sfu, now, AGENT, PUBLISHER[0], true);
        let subscriber = Peer::join(&mut sfu, now, CUSTOMER, SUBSCRIBER, false);
        let mut w = World {
            sfu,
            now,
            publisher,
            subscriber,
            up: [false; 2],
            lost: [false; 2],
            tapped: false,
            beautify: VecDeque::new(),
            inputs: 0,
            last_rejoin: 0,
            rejoins: 0,
        };
        w.handshake();
        w
    }

    fn room() -> RoomId {
        RoomId::new(ROOM)
    }

    /// Steps time until both peers and the SFU say the connections are up.
    fn handshake(&mut self) {
        for _ in 0..HANDSHAKE_STEPS {
            if self.up == [true; 2] && self.publisher.connected && self.subscriber.connected {
                return;
            }
            self.step(Duration::from_millis(10));
        }
        panic!("the peers did not connect to the SFU in virtual time");
    }

    /// A fresh peer connection for the publisher (`0`) or the subscriber (`1`).
    fn rejoin(&mut self, who: usize) {
        self.rejoins += 1;
        self.last_rejoin = self.inputs;
        self.up[who] = false;
        self.lost[who] = false;
        if who == 0 {
            let addr = PUBLISHER[self.rejoins % 2];
            self.publisher = Peer::join(&mut self.sfu, self.now, AGENT, addr, true);
        } else {
            self.subscriber = Peer::join(&mut self.sfu, self.now, CUSTOMER, SUBSCRIBER, false);
        }
        self.handshake();
    }

    /// Moves time on by `dt`: the SFU's timers fire, then the network settles (and the
    /// peers' timers with it).
    fn step(&mut self, dt: Duration) {
        self.now += dt;
        self.sfu.handle_timeout(self.now);
        self.shuttle();
    }

    /// Moves datagrams both ways (and drains the SFU) until nobody has anything to send.
    fn shuttle(&mut self) {
        let now = self.now;
        for _ in 0..SHUTTLE_ROUNDS {
            let mut moved = false;
            for peer in [&mut self.publisher, &mut self.subscriber] {
                // What was just written goes out on the peer's next timeout.
                peer.rtc
                    .handle_input(Input::Timeout(now))
                    .expect("a peer takes the time");
                for (from, bytes) in peer.poll() {
                    self.sfu.handle_datagram(now, from, &bytes);
                    moved = true;
                }
            }
            loop {
                match self.sfu.poll_output() {
                    SfuOutput::Transmit(t) => {
                        moved = true;
                        // A former publisher's address reaches nobody.
                        for peer in [&mut self.publisher, &mut self.subscriber] {
                            if peer.addr == t.destination {
                                peer.receive(now, t.source, &t.contents);
                            }
                        }
                    }
                    SfuOutput::Event(SfuEvent::Connected { participant }) => {
                        self.up[usize::from(participant.as_str() != AGENT)] = true;
                    }
                    SfuOutput::Event(SfuEvent::Disconnected { participant, .. }) => {
                        let who = usize::from(participant.as_str() != AGENT);
                        self.up[who] = false;
                        self.lost[who] = true;
                    }
                    SfuOutput::Beautify {
                        room,
                        frame,
                        output,
                    } => {
                        if self.beautify.len() >= MAX_BEAUTIFY {
                            self.beautify.pop_front();
                        }
                        self.beautify.push_back(ToPipeline {
                            room,
                            rtp_time: frame.rtp_time,
                            keyframe: frame.keyframe,
                            output,
                        });
                    }
                    SfuOutput::Tap { .. }
                    | SfuOutput::PipelineKeyframe { .. }
                    | SfuOutput::PipelineBitrate { .. } => {}
                    SfuOutput::Timeout(_) => break,
                }
            }
            if !moved {
                return;
            }
        }
    }

    /// The publisher writes one RTP packet on its audio (`line` 0) or video (1) line.
    #[allow(clippy::too_many_arguments)]
    fn publish(
        &mut self,
        line: usize,
        pt: u8,
        seq_step: i16,
        ts_step: u8,
        marker: bool,
        ext: u8,
        payload: Vec<u8>,
    ) {
        let p = &mut self.publisher;
        let pts = &p.pts[line];
        let Some(&pt) = pts.get(usize::from(pt) % pts.len().max(1)) else {
            return;
        };
        p.seq[line] = p.seq[line].saturating_add_signed(seq_step.into());
        p.ts[line] = match ts_step {
            // A jump back, as a restarted encoder's clock.
            0xff => p.ts[line].wrapping_sub(1 << 20),
            step => p.ts[line].wrapping_add(u32::from(step) * if line == 1 { 300 } else { 120 }),
        };
        let ext_vals = match ext % 4 {
            0 => ExtensionValues::default(),
            1 => ExtensionValues {
                audio_level: Some(-i8::try_from(ext >> 2).unwrap_or(0)),
                voice_activity: Some(ext & 0x80 != 0),
                ..ExtensionValues::default()
            },
            2 => ExtensionValues {
                video_orientation: Some(VideoOrientation::from(ext >> 2)),
                ..ExtensionValues::default()
            },
            _ => ExtensionValues {
                video_content_type: Some(ext >> 2),
                ..ExtensionValues::default()
            },
        };
        let now = self.now;
        let write = RtpWrite::new(pt, p.seq[line].into(), p.ts[line], now, payload)
            .marker(marker)
            .ext_vals(ext_vals)
            .nackable(line == 1);
        p.rtc
            .direct_api()
            .stream_tx_by_mid(p.mids[line], None)
            .expect("the publisher sends on its lines")
            .write_rtp(write);
    }

    fn toggle_tap(&mut self, both: bool) {
        if self.tapped {
            self.sfu.untap(&Self::room());
        } else {
            let mut parties = vec![TapParty {
                participant: ParticipantId::new(AGENT),
                side: Side::Agent,
            }];
            if both {
                parties.push(TapParty {
                    participant: ParticipantId::new(CUSTOMER),
                    side: Side::Customer,
                });
            }
            self.sfu.tap(self.now, Self::room(), parties);
        }
        self.tapped = !self.tapped;
    }

    /// Hands a pipeline frame back "encoded": a frame of the asked codec around `body`,
    /// or `body` alone.
    fn write_processed(&mut self, flags: u8, body: &[u8]) {
        let Some(job) = self.beautify.pop_front() else {
            return;
        };
        let keyframe = if flags & 0x01 != 0 {
            !job.keyframe
        } else {
            job.keyframe
        };
        let mut data = Vec::new();
        if flags & 0x02 == 0 {
            match job.output {
                VideoCodec::Vp8 => data.extend_from_slice(&[
                    if keyframe { 0x10 } else { 0x11 },
                    0x02,
                    0x00,
                    0x9d,
                    0x01,
                    0x2a,
                    0x80,
                    0x02,
                    0xe0,
                    0x01,
                ]),
                VideoCodec::H264 => {
                    if keyframe {
                        data.extend_from_slice(&[0, 0, 0, 1, 0x67, 0x42, 0xc0, 0x1f, 0xda]);
                        data.extend_from_slice(&[0, 0, 0, 1, 0x68, 0xce, 0x3c, 0x80]);
                    }
                    data.extend_from_slice(&[0, 0, 0, 1, if keyframe { 0x65 } else { 0x41 }]);
                }
            }
        }
        data.extend_from_slice(body);
        let rtp_time = job.rtp_time.wrapping_add(u64::from(flags >> 2) * 1500);
        let frame = OutputFrame {
            rtp_time,
            keyframe,
            data,
        };
        self.sfu
            .write_processed(self.now, &job.room, job.output, frame);
    }

    /// The subscriber asks the SFU for a key frame of what it receives.
    fn subscriber_keyframe_request(&mut self, fir: bool) {
        let kind = if fir {
            KeyframeRequestKind::Fir
        } else {
            KeyframeRequestKind::Pli
        };
        let video = self.subscriber.mids[1];
        if let Some(mut writer) = self.subscriber.rtc.writer(video) {
            // Refused until the SFU has sent this line something: fine.
            let _ = writer.request_keyframe(None, kind);
        }
    }
}

thread_local! {
    static WORLD: RefCell<World> = RefCell::new(World::new());
}

/// Takes `n` bytes (fewer at the end).
fn take<'a>(data: &mut &'a [u8], n: usize) -> &'a [u8] {
    let (head, tail) = data.split_at(n.min(data.len()));
    *data = tail;
    head
}

fn byte(data: &mut &[u8]) -> u8 {
    take(data, 1).first().copied().unwrap_or(0)
}

fuzz_target!(|data: &[u8]| {
    WORLD.with(|world| {
        let mut w = world.borrow_mut();
        w.inputs += 1;
        // Somebody the SFU dropped (or whose connection died) comes back.
        for who in 0..2 {
            let peer = if who == 0 {
                &w.publisher
            } else {
                &w.subscriber
            };
            if w.lost[who] || !peer.rtc.is_alive() {
                w.rejoin(who);
            }
        }
        w.step(Duration::from_millis(10));

        let mut data = data;
        for _ in 0..MAX_OPS {
            let Some((&op, rest)) = data.split_first() else {
                break;
            };
            data = rest;
            match op % 8 {
                // An RTP packet: [pt] [seq step: 2] [ts step] [len] [payload].
                0..=3 => {
                    let line = usize::from(op & 0x08 != 0);
                    let marker = op & 0x10 != 0;
                    let pt = byte(&mut data);
                    let seq_step = i16::from_le_bytes([byte(&mut data), byte(&mut data)]);
                    let ts_step = byte(&mut data);
                    let len = usize::from(byte(&mut data));
                    let body = take(&mut data, len);
                    let mut payload = Vec::with_capacity(16 + body.len());
                    payload.extend_from_slice(PREFIXES[usize::from(op >> 5)]);
                    payload.extend_from_slice(body);
                    w.publish(line, pt, seq_step, ts_step, marker, op % 4, payload);
                }
                4 => w.toggle_tap(op & 0x08 != 0),
                5 => {
                    let id = ParticipantId::new(if op & 0x10 == 0 { AGENT } else { CUSTOMER });
                    let now = w.now;
                    w.sfu.set_blanked(now, &id, op & 0x08 != 0);
                }
                6 => {
                    let output = match (op >> 3) % 4 {
                        0 => None,
                        1 | 3 => Some(BeautyOutput::Peer),
                        _ => Some(BeautyOutput::Loopback),
                    };
                    let now = w.now;
                    w.sfu
                        .route_beauty(now, World::room(), ParticipantId::new(AGENT), output);
                }
                _ => match op >> 3 {
                    0..=7 => w.step(Duration::from_millis(20 * u64::from(op >> 3) + 5)),
                    8..=15 => {
                        let len = usize::from(byte(&mut data));
                        let body = take(&mut data, len);
                        w.write_processed(op >> 3, body);
                    }
                    16..=19 => w.subscriber_keyframe_request(op & 0x08 != 0),
                    20..=21 => {
                        let now = w.now;
                        w.sfu.request_agent_keyframe(now, &World::room());
                    }
                    22..=23 if w.inputs - w.last_rejoin >= REJOIN_EVERY => w.rejoin(0),
                    24 if w.inputs - w.last_rejoin >= REJOIN_EVERY => w.rejoin(1),
                    _ => {}
                },
            }
            w.shuttle();
        }

        let now = w.now;
        w.sfu.handle_timeout(now);
        w.shuttle();
    });
});
