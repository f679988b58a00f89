//! The core in virtual time, against str0m peers standing in for browsers.

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use str0m::change::{SdpAnswer, SdpPendingOffer};
use str0m::format::Codec;
use str0m::media::{Direction, Frequency, KeyframeRequestKind, MediaKind, MediaTime, Mid};
use str0m::net::{Protocol, Receive};
use str0m::{Candidate, Event, Input, Output, Rtc};

use super::*;

const SFU_ADDR: &str = "127.0.0.1:50000";
const TICK: Duration = Duration::from_millis(5);

/// A str0m peer acting as a browser: publishes Opus + VP8, counts what it receives.
struct TestPeer {
    id: ParticipantId,
    addr: SocketAddr,
    rtc: Rtc,
    audio: Mid,
    video: Mid,
    connected: bool,
    audio_frames_in: u64,
    video_frames_in: u64,
    /// Video frames in that were the SFU's black keyframe (see `BLANK`).
    blank_frames_in: u64,
    /// The fill byte (publisher's frame number mod 251) of every other video frame in.
    video_fills_in: Vec<u8>,
    video_gaps_in: u64,
    keyframe_requests_in: u64,
    /// REMB caps the SFU sent this peer, bit/s.
    remb_in: Vec<u64>,
    video_frames_out: u64,
    frame_no: u64,
    video_codec: Codec,
    /// (SSRC, sequence number) of every video RTP packet received (RTX excluded).
    video_rtp_in: Vec<(u32, u16)>,
    /// The playout delay (minimum, maximum; ms) each of those packets asked for.
    video_playout_in: Vec<Option<(u64, u64)>>,
    /// RTCP NACKs this peer received, and sent.
    nacks_in: u64,
    nacks_out: u64,
}

impl TestPeer {
    /// Builds the peer and its offer.
    fn new(name: &str, addr: &str, now: Instant) -> (Self, String, SdpPendingOffer) {
        Self::with_video_codec(name, addr, now, Codec::Vp8)
    }

    /// A peer whose only video codec is `video_codec`.
    fn with_video_codec(
        name: &str,
        addr: &str,
        now: Instant,
        video_codec: Codec,
    ) -> (Self, String, SdpPendingOffer) {
        let addr: SocketAddr = addr.parse().expect("test address");
        let builder = Rtc::builder()
            .clear_codecs()
            .enable_opus(true, false)
            .enable_raw_packets(true)
            // As Chrome offers it, at another id than the SFU's own (the offer's wins):
            // the SFU may ask for a playout delay.
            .set_extension(12, str0m::rtp::Extension::PlayoutDelay);
        let builder = match video_codec {
            Codec::H264 => builder.enable_h264(true),
            _ => builder.enable_vp8(true),
        };
        let mut rtc = builder.build(now);
        rtc.add_local_candidate(Candidate::host(addr, "udp").expect("host candidate"));
        let mut api = rtc.sdp_api();
        let audio = api.add_media(MediaKind::Audio, Direction::SendRecv, None, None, None);
        let video = api.add_media(MediaKind::Video, Direction::SendRecv, None, None, None);
        let (offer, pending) = api.apply().expect("changes make an offer");
        let peer = Self {
            id: ParticipantId::new(name),
            addr,
            rtc,
            audio,
            video,
            connected: false,
            audio_frames_in: 0,
            video_frames_in: 0,
            blank_frames_in: 0,
            video_fills_in: Vec::new(),
            video_gaps_in: 0,
            keyframe_requests_in: 0,
            remb_in: Vec::new(),
            video_frames_out: 0,
            frame_no: 0,
            video_codec,
            video_rtp_in: Vec::new(),
            video_playout_in: Vec::new(),
            nacks_in: 0,
            nacks_out: 0,
        };
        (peer, offer.to_sdp_string(), pending)
    }

    fn accept_answer(&mut self, pending: SdpPendingOffer, answer: &str) {
        let answer = SdpAnswer::from_sdp_string(answer).expect("the SFU answers valid SDP");
        self.rtc
            .sdp_api()
            .accept_answer(pending, answer)
            .expect("answer accepted");
    }

    fn write(&mut self, mid: Mid, codec: Codec, now: Instant, time: MediaTime, data: Vec<u8>) {
        if !self.connected {
            return;
        }
        let writer = self.rtc.writer(mid).expect("negotiated mid");
        let pt = writer
            .payload_params()
            .find(|p| p.spec().codec == codec)
            .expect("codec negotiated")
            .pt();
        writer.write(pt, now, time, data).expect("write");
    }

    /// One 20 ms Opus frame and, every other call, a VP8 frame of ~3 packets.
    fn publish(&mut self, now: Instant) {
        self.frame_no += 1;
        let n = self.frame_no;
        self.write(
            self.audio,
            Codec::Opus,
            now,
            MediaTime::new(n * 960, Frequency::FORTY_EIGHT_KHZ),
            vec![0xfc; 60],
        );
        if n.is_multiple_of(2) && self.connected {
            let keyframe = (n / 2) % 30 == 1;
            let frame = match self.video_codec {
                Codec::H264 => h264_access_unit(keyframe, n),
                _ => vp8_frame(keyframe, n),
            };
            self.write(
                self.video,
                self.video_codec,
                now,
                MediaTime::new(n * 1800, Frequency::NINETY_KHZ),
                frame,
            );
            self.video_frames_out += 1;
        }
    }

    /// Whether `pt` is one of this peer's video payload types (RTX included).
    fn is_video_pt(&self, pt: str0m::media::Pt) -> bool {
        self.rtc
            .codec_config()
            .params()
            .iter()
            .any(|p| p.spec().codec == self.video_codec && (p.pt() == pt || p.resend() == Some(pt)))
    }

    /// The RTX payload type of this peer's video codec.
    fn video_rtx_pt(&self) -> str0m::media::Pt {
        self.rtc
            .codec_config()
            .params()
            .iter()
            .find(|p| p.spec().codec == self.video_codec)
            .and_then(|p| p.resend())
            .unwrap_or(str0m::media::Pt::new_with_value(0))
    }

    /// Asks the SFU for a keyframe of the video it sends this peer.
    fn send_pli(&mut self) {
        self.rtc
            .writer(self.video)
            .expect("video line")
            .request_keyframe(None, KeyframeRequestKind::Pli)
            .expect("the peer receives video, so it can ask");
    }

    /// Drains str0m; returns datagrams for the SFU.
    fn poll(&mut self) -> Vec<(SocketAddr, Vec<u8>)> {
        let mut out = Vec::new();
        loop {
            match self.rtc.poll_output().expect("peer poll") {
                Output::Timeout(_) => return out,
                Output::Transmit(t) => out.push((t.source, t.contents.to_vec())),
                Output::Event(Event::Connected) => self.connected = true,
                Output::Event(Event::MediaData(d)) => {
                    if d.mid == self.audio {
                        self.audio_frames_in += 1;
                    } else if d.mid == self.video {
                        self.video_frames_in += 1;
                        if d.data.as_ref() == BLANK {
                            self.blank_frames_in += 1;
                        } else if let Some(fill) = d.data.last() {
                            self.video_fills_in.push(*fill);
                        }
                        if !d.contiguous {
                            self.video_gaps_in += 1;
                        }
                    }
                }
                Output::Event(Event::RawPacket(raw)) => match *raw {
                    str0m::rtp::RawPacket::RtpRx(header, _)
                        if header.payload_type != self.video_rtx_pt()
                            && self.is_video_pt(header.payload_type) =>
                    {
                        self.video_rtp_in
                            .push((*header.ssrc, header.sequence_number));
                        let ext = &header.ext_vals;
                        let ms = |t: MediaTime| Duration::from(t).as_millis() as u64;
                        self.video_playout_in.push(
                            ext.play_delay_min
                                .zip(ext.play_delay_max)
                                .map(|(min, max)| (ms(min), ms(max))),
                        );
                    }
                    str0m::rtp::RawPacket::RtcpRx(str0m::rtp::rtcp::Rtcp::Nack(_)) => {
                        self.nacks_in += 1
                    }
                    str0m::rtp::RawPacket::RtcpTx(str0m::rtp::rtcp::Rtcp::Nack(_)) => {
                        self.nacks_out += 1
                    }
                    _ => {}
                },
                Output::Event(Event::KeyframeRequest(_)) => self.keyframe_requests_in += 1,
                Output::Event(Event::EgressBitrateEstimate(str0m::bwe::BweKind::Remb {
                    estimate,
                    ..
                })) => self.remb_in.push(estimate.as_u64()),
                Output::Event(_) => {}
            }
        }
    }

    fn receive(&mut self, now: Instant, from: SocketAddr, bytes: &[u8]) {
        let input = Input::Receive(
            now,
            Receive {
                proto: Protocol::Udp,
                source: from,
                destination: self.addr,
                contents: bytes.try_into().expect("SFU sends valid datagrams"),
            },
        );
        self.rtc.handle_input(input).expect("peer input");
    }
}

/// What the tests hand the SFU as its black VP8 keyframe: a keyframe tag, then a
/// pattern no published frame has.
const BLANK: &[u8] = &[
    0x10, 0x02, 0x00, 0x9d, 0x01, 0x2a, 0xee, 0xee, 0xee, 0xee, 0xee, 0xee,
];

/// A VP8 frame of ~3 packets; the frame tag's bit 0 is clear on keyframes.
fn vp8_frame(keyframe: bool, n: u64) -> Vec<u8> {
    let mut frame = vec![if keyframe { 0x10 } else { 0x11 }, 0x02, 0x00];
    frame.extend_from_slice(&[0x9d, 0x01, 0x2a, 0x80, 0x02, 0xe0, 0x01]);
    frame.resize(3000, (n % 251) as u8);
    frame
}

/// An Annex-B H.264 access unit of ~3 kB: SPS + PPS + IDR on keyframes, else one slice.
fn h264_access_unit(keyframe: bool, n: u64) -> Vec<u8> {
    let mut au = Vec::new();
    if keyframe {
        au.extend_from_slice(&[0, 0, 0, 1, 0x67, 0x42, 0xc0, 0x1f, 0xda, 0x01, 0x40, 0x16]);
        au.extend_from_slice(&[0, 0, 0, 1, 0x68, 0xce, 0x3c, 0x80]);
    }
    au.extend_from_slice(&[0, 0, 0, 1, if keyframe { 0x65 } else { 0x41 }]);
    au.resize(3000, (n % 251) as u8 | 1);
    au
}

/// Decides whether a datagram is lost, by its destination (from the SFU) or its
/// source (to the SFU).
type LossFn = dyn FnMut(&SocketAddr, &[u8]) -> bool;

/// The SFU, its peers and a zero-latency network between them, in virtual time.
struct World {
    now: Instant,
    sfu: Sfu,
    peers: Vec<TestPeer>,
    loss: Box<LossFn>,
    /// The same for datagrams from the peers, by their source.
    uplink_loss: Box<LossFn>,
    lost: u64,
    tapped: Vec<(RoomId, kefu_proto::TapFrame)>,
    beautify: Vec<(
        RoomId,
        crate::pipeline::InputFrame,
        crate::pipeline::VideoCodec,
    )>,
    pipeline_keyframes: Vec<RoomId>,
    pipeline_bitrates: Vec<(RoomId, u32)>,
    /// Hand every frame sent to the pipeline straight back as "encoded".
    echo_pipeline: bool,
}

impl World {
    fn new() -> Self {
        let now = Instant::now();
        Self {
            now,
            sfu: Sfu::new(SFU_ADDR.parse().expect("test address"), now),
            peers: Vec::new(),
            loss: Box::new(|_, _| false),
            uplink_loss: Box::new(|_, _| false),
            lost: 0,
            tapped: Vec::new(),
            beautify: Vec::new(),
            pipeline_keyframes: Vec::new(),
            pipeline_bitrates: Vec::new(),
            echo_pipeline: false,
        }
    }

    fn join(&mut self, room: &str, name: &str, addr: &str) -> usize {
        self.join_with(room, name, addr, Codec::Vp8)
    }

    fn join_with(&mut self, room: &str, name: &str, addr: &str, video: Codec) -> usize {
        let (mut peer, offer, pending) = TestPeer::with_video_codec(name, addr, self.now, video);
        let answer = self
            .sfu
            .join(self.now, RoomId::new(room), peer.id.clone(), &offer)
            .expect("the SFU accepts a str0m offer");
        peer.accept_answer(pending, &answer);
        self.peers.push(peer);
        self.peers.len() - 1
    }

    /// Moves datagrams until nobody has anything to send.
    fn settle(&mut self) {
        for _ in 0..1000 {
            let mut moved = false;
            for peer in &mut self.peers {
                for (from, bytes) in peer.poll() {
                    moved = true;
                    if (self.uplink_loss)(&from, &bytes) {
                        self.lost += 1;
                        continue;
                    }
                    self.sfu.handle_datagram(self.now, from, &bytes);
                }
            }
            loop {
                match self.sfu.poll_output() {
                    SfuOutput::Transmit(t) => {
                        moved = true;
                        if (self.loss)(&t.destination, &t.contents) {
                            self.lost += 1;
                            continue;
                        }
                        if let Some(peer) = self.peers.iter_mut().find(|p| p.addr == t.destination)
                        {
                            peer.receive(self.now, t.source, &t.contents);
                        }
                    }
                    SfuOutput::Event(_) => {}
                    SfuOutput::Tap { room, frame } => self.tapped.push((room, frame)),
                    SfuOutput::Beautify {
                        room,
                        frame,
                        output,
                    } if self.echo_pipeline => {
                        let n = frame.rtp_time / 3000;
                        let encoded = crate::pipeline::OutputFrame {
                            rtp_time: frame.rtp_time,
                            keyframe: frame.keyframe,
                            data: vp8_frame(frame.keyframe, n),
                        };
                        self.sfu.write_processed(self.now, &room, output, encoded);
                    }
                    SfuOutput::Beautify {
                        room,
                        frame,
                        output,
                    } => self.beautify.push((room, frame, output)),
                    SfuOutput::PipelineKeyframe { room } => self.pipeline_keyframes.push(room),
                    SfuOutput::PipelineBitrate { room, bps } => {
                        self.pipeline_bitrates.push((room, bps))
                    }
                    SfuOutput::Timeout(_) => break,
                }
            }
            if !moved {
                return;
            }
        }
        panic!("the network never settled");
    }

    /// From now on a quarter of the SFU's datagrams to peer `idx` are lost.
    fn lose_every_fourth_datagram_to(&mut self, idx: usize) {
        let victim = self.peers[idx].addr;
        let mut n = 0u64;
        self.loss = Box::new(move |dest, _| {
            n += 1;
            *dest == victim && n.is_multiple_of(4)
        });
    }

    /// Runs `duration` of virtual time; peers publish every 20 ms when `publish`.
    fn run(&mut self, duration: Duration, publish: bool) {
        let end = self.now + duration;
        let mut tick = 0u64;
        while self.now < end {
            self.now += TICK;
            tick += 1;
            for peer in &mut self.peers {
                peer.rtc
                    .handle_input(Input::Timeout(self.now))
                    .expect("peer timeout");
                if publish && tick.is_multiple_of(4) {
                    peer.publish(self.now);
                }
            }
            self.sfu.handle_timeout(self.now);
            self.settle();
        }
    }
}

#[test]
fn two_peers_receive_each_others_audio_and_video() {
    let mut w = World::new();
    let a = w.join("room-1", "agent", "127.0.0.1:40001");
    let b = w.join("room-1", "customer", "127.0.0.1:40002");
    w.run(Duration::from_secs(1), false);
    assert!(
        w.peers[a].connected && w.peers[b].connected,
        "ICE + DTLS up"
    );

    w.run(Duration::from_secs(3), true);
    for p in &w.peers {
        assert!(
            p.audio_frames_in > 100,
            "{}: audio frames {}",
            p.id,
            p.audio_frames_in
        );
        assert!(
            p.video_frames_in > 50,
            "{}: video frames {}",
            p.id,
            p.video_frames_in
        );
    }
    let stats = w.sfu.stats();
    assert_eq!(stats.rooms, 1);
    assert_eq!(stats.participants, 2);
    assert!(stats.frames_forwarded > 300, "{stats:?}");
    assert!(
        stats.packets_forwarded > stats.frames_forwarded,
        "video frames span packets"
    );
}

#[test]
fn h264_is_forwarded_when_both_sides_negotiate_it() {
    let mut w = World::new();
    let a = w.join_with("room-1", "agent", "127.0.0.1:40001", Codec::H264);
    let b = w.join_with("room-1", "customer", "127.0.0.1:40002", Codec::H264);
    w.run(Duration::from_secs(1), false);
    // The pacer holds video to the starting estimate (~15 of 25 frames a second).
    w.run(Duration::from_secs(3), true);
    for i in [a, b] {
        let p = &w.peers[i];
        assert!(
            p.video_frames_in > 30,
            "{}: H.264 frames {}",
            p.id,
            p.video_frames_in
        );
    }
    assert_eq!(w.sfu.stats().dropped(DropReason::NotNegotiated), 0);
}

#[test]
fn mismatched_video_codecs_are_counted_not_forwarded() {
    let mut w = World::new();
    w.join_with("room-1", "agent", "127.0.0.1:40001", Codec::H264);
    let b = w.join_with("room-1", "customer", "127.0.0.1:40002", Codec::Vp8);
    w.run(Duration::from_secs(1), false);
    w.run(Duration::from_secs(1), true);
    assert!(w.peers[b].audio_frames_in > 20, "audio still flows");
    assert_eq!(w.peers[b].video_frames_in, 0);
    assert!(w.sfu.stats().dropped(DropReason::NotNegotiated) > 0);
}

#[test]
fn rooms_are_isolated() {
    let mut w = World::new();
    w.join("room-1", "a1", "127.0.0.1:40001");
    w.join("room-1", "b1", "127.0.0.1:40002");
    let lonely = w.join("room-2", "c2", "127.0.0.1:40003");
    w.run(Duration::from_secs(1), false);
    w.run(Duration::from_secs(2), true);
    assert!(w.peers[0].video_frames_in > 0);
    assert_eq!(w.peers[lonely].audio_frames_in, 0, "nothing crosses rooms");
    assert_eq!(w.peers[lonely].video_frames_in, 0, "nothing crosses rooms");
    assert!(w.sfu.stats().dropped(DropReason::NoSubscriber) > 0);
    assert_eq!(w.sfu.stats().rooms, 2);
}

#[test]
fn lost_packets_are_retransmitted_on_nack() {
    let mut w = World::new();
    let a = w.join("room-1", "agent", "127.0.0.1:40001");
    let b = w.join("room-1", "customer", "127.0.0.1:40002");
    // Media from the start: see with_beauty_on_the_agents_video_goes_through_the_pipeline.
    w.run(Duration::from_secs(1), true);
    // Lose every 10th large RTP datagram (video) from the SFU to the customer.
    let victim = w.peers[b].addr;
    let mut n = 0u64;
    w.loss = Box::new(move |dest, bytes| {
        let is_rtp =
            bytes.len() > 300 && bytes[0] >> 6 == 2 && !(72..=79).contains(&(bytes[1] & 0x7f));
        if *dest == victim && is_rtp {
            n += 1;
            return n.is_multiple_of(10);
        }
        false
    });
    w.run(Duration::from_secs(4), true);
    w.loss = Box::new(|_, _| false);
    w.run(Duration::from_millis(500), false);

    assert!(w.lost > 20, "the test dropped packets: {}", w.lost);
    let sent = w.peers[a].video_frames_out;
    let got = w.peers[b].video_frames_in;
    // Without NACK answering, ~half of the 3-packet frames would be lost.
    assert!(got + 3 >= sent, "customer got {got} of {sent} video frames");
    assert_eq!(
        w.peers[b].video_gaps_in, 0,
        "every frame arrived contiguous"
    );
    // Answered from the SFU's own retransmission buffer: the customer asked, the
    // agent (whose path lost nothing) was never asked.
    assert!(w.peers[b].nacks_out > 0, "the customer sent NACKs");
    assert_eq!(
        w.peers[a].nacks_in, 0,
        "the agent was never asked to resend"
    );
}

#[test]
fn keyframe_request_is_relayed_to_the_publisher() {
    let mut w = World::new();
    let a = w.join("room-1", "agent", "127.0.0.1:40001");
    let b = w.join("room-1", "customer", "127.0.0.1:40002");
    w.run(Duration::from_secs(1), false);
    w.run(Duration::from_secs(1), true);
    let before = w.peers[a].keyframe_requests_in;
    w.peers[b].send_pli();
    w.run(Duration::from_millis(500), true);
    assert!(
        w.peers[a].keyframe_requests_in > before,
        "agent saw the PLI"
    );
    assert!(w.sfu.stats().keyframe_requests_relayed > 0);
}

#[test]
fn garbage_and_strangers_are_counted_and_harmless() {
    let mut w = World::new();
    w.join("room-1", "agent", "127.0.0.1:40001");
    let b = w.join("room-1", "customer", "127.0.0.1:40002");
    w.run(Duration::from_secs(1), false);
    let stranger: SocketAddr = "127.0.0.1:49999".parse().expect("addr");
    for len in [0usize, 1, 7, 100, 1500, 9000] {
        let junk: Vec<u8> = (0..len).map(|i| (i * 37 % 256) as u8).collect();
        w.sfu.handle_datagram(w.now, stranger, &junk);
    }
    // Well-formed RTP from nobody we know.
    let mut rtp = vec![0x80, 96, 0, 1, 0, 0, 0, 1, 0xde, 0xad, 0xbe, 0xef];
    rtp.extend_from_slice(&[0u8; 100]);
    w.sfu.handle_datagram(w.now, stranger, &rtp);
    let stats = w.sfu.stats().clone();
    assert!(stats.dropped(DropReason::Malformed) >= 5, "{stats:?}");
    assert!(stats.dropped(DropReason::UnknownSource) >= 1, "{stats:?}");

    let before = w.peers[b].video_frames_in;
    w.run(Duration::from_secs(1), true);
    assert!(w.peers[b].video_frames_in > before + 10, "the call goes on");
}

#[test]
fn malformed_offer_is_an_error_and_the_room_stays_usable() {
    let mut w = World::new();
    let err = w
        .sfu
        .join(
            w.now,
            RoomId::new("r"),
            ParticipantId::new("x"),
            "v=0\r\nnot sdp at all",
        )
        .expect_err("garbage is not an offer");
    assert!(matches!(err, JoinError::BadOffer(_)), "{err:?}");
    assert_eq!(w.sfu.stats().participants, 0);
    w.join("r", "a", "127.0.0.1:40001");
    w.join("r", "b", "127.0.0.1:40002");
    w.run(Duration::from_secs(1), false);
    assert!(w.peers.iter().all(|p| p.connected));
}

/// An offer that makes str0m itself panic (one payload type given to H.264 in the
/// audio section and again in the video section; found by the `sfu_signaling` fuzz
/// target) is refused like any bad offer, and the SFU goes on.
#[test]
fn an_offer_that_breaks_the_webrtc_stack_is_refused_and_the_sfu_goes_on() {
    let mut w = World::new();
    let offer = include_str!("../../../fuzz/seeds/sfu_signaling/pt-locked-twice.sdp");
    let err = w
        .sfu
        .join(w.now, RoomId::new("r"), ParticipantId::new("x"), offer)
        .expect_err("a self-contradicting offer");
    assert!(
        matches!(&err, JoinError::BadOffer(why) if why.contains("payload types")),
        "{err:?}"
    );
    assert_eq!(w.sfu.stats().participants, 0);
    w.join("r", "a", "127.0.0.1:40001");
    w.join("r", "b", "127.0.0.1:40002");
    w.run(Duration::from_secs(1), false);
    assert!(w.peers.iter().all(|p| p.connected));
}

#[test]
fn a_third_participant_is_refused() {
    let mut w = World::new();
    w.join("r", "a", "127.0.0.1:40001");
    w.join("r", "b", "127.0.0.1:40002");
    let (_peer, offer, _pending) = TestPeer::new("c", "127.0.0.1:40003", w.now);
    let err = w
        .sfu
        .join(w.now, RoomId::new("r"), ParticipantId::new("c"), &offer)
        .expect_err("room full");
    assert!(matches!(err, JoinError::RoomFull));
    // The same id rejoining replaces itself instead.
    let (_peer, offer, _pending) = TestPeer::new("b", "127.0.0.1:40004", w.now);
    w.sfu
        .join(w.now, RoomId::new("r"), ParticipantId::new("b"), &offer)
        .expect("a reload replaces the old connection");
    assert_eq!(w.sfu.stats().participants, 2);
}

#[test]
fn leaving_stops_forwarding_and_frees_the_room() {
    let mut w = World::new();
    w.join("r", "a", "127.0.0.1:40001");
    w.join("r", "b", "127.0.0.1:40002");
    w.run(Duration::from_secs(1), false);
    w.run(Duration::from_secs(1), true);
    w.sfu.leave(&ParticipantId::new("b"));
    w.peers.truncate(1);
    assert_eq!(w.sfu.stats().participants, 1);
    let forwarded = w.sfu.stats().frames_forwarded;
    w.run(Duration::from_secs(1), true);
    assert_eq!(
        w.sfu.stats().frames_forwarded,
        forwarded,
        "nobody to forward to"
    );
    assert!(w.sfu.stats().dropped(DropReason::NoSubscriber) > 0);
}

#[test]
fn trickled_candidates_are_validated() {
    let mut w = World::new();
    w.join("r", "a", "127.0.0.1:40001");
    let a = ParticipantId::new("a");
    w.sfu
        .add_remote_candidate(&a, "candidate:1 1 udp 2130706431 127.0.0.1 40009 typ host")
        .expect("a valid host candidate");
    w.sfu
        .add_remote_candidate(
            &a,
            "a=candidate:2 1 udp 2130706431 127.0.0.1 40010 typ host",
        )
        .expect("the a= prefix is accepted");
    let err = w
        .sfu
        .add_remote_candidate(&a, "candidate:garbage")
        .expect_err("bad line");
    assert!(matches!(err, CandidateError::Malformed(_)));
    let err = w
        .sfu
        .add_remote_candidate(
            &ParticipantId::new("nobody"),
            "candidate:1 1 udp 1 127.0.0.1 1 typ host",
        )
        .expect_err("unknown participant");
    assert!(matches!(err, CandidateError::UnknownParticipant));
}

#[test]
fn a_tapped_room_hands_out_labelled_frames_until_untapped() {
    use kefu_proto::{Codec as TapCodec, Side};
    let mut w = World::new();
    let a = w.join("room-1", "agent", "127.0.0.1:40001");
    let b = w.join("room-1", "customer", "127.0.0.1:40002");
    w.join("room-2", "other", "127.0.0.1:40003");
    w.run(Duration::from_secs(1), false);
    let parties = vec![
        TapParty {
            participant: w.peers[a].id.clone(),
            side: Side::Agent,
        },
        TapParty {
            participant: w.peers[b].id.clone(),
            side: Side::Customer,
        },
    ];
    w.sfu.tap(w.now, RoomId::new("room-1"), parties);
    w.run(Duration::from_secs(2), true);

    let tapped = std::mem::take(&mut w.tapped);
    assert!(
        tapped.iter().all(|(room, _)| room.as_str() == "room-1"),
        "only the tapped room"
    );
    for side in [Side::Agent, Side::Customer] {
        let of = |codec| {
            tapped
                .iter()
                .filter(|(_, f)| f.side == side && f.codec == codec)
                .count()
        };
        assert!(
            of(TapCodec::Opus) >= 20,
            "{side:?} audio: {}",
            of(TapCodec::Opus)
        );
        assert!(
            of(TapCodec::Vp8) >= 20,
            "{side:?} video: {}",
            of(TapCodec::Vp8)
        );
    }
    let audio = tapped
        .iter()
        .find(|(_, f)| f.codec == TapCodec::Opus)
        .expect("audio")
        .1
        .clone();
    assert_eq!(audio.clock_rate, 48_000);

    w.sfu.untap(&RoomId::new("room-1"));
    w.run(Duration::from_millis(500), true);
    assert!(w.tapped.is_empty(), "nothing after untap");
}

#[test]
fn with_beauty_on_the_agents_video_goes_through_the_pipeline() {
    use crate::pipeline::{OutputFrame, VideoCodec};
    let mut w = World::new();
    let a = w.join("room-1", "agent", "127.0.0.1:40001");
    let b = w.join("room-1", "customer", "127.0.0.1:40002");
    // Media flows from the start, as in a call (an idle start would lead the
    // bandwidth estimate, and the pacer with it, below what the peers send).
    w.run(Duration::from_secs(1), true);
    let agent = w.peers[a].id.clone();
    w.sfu.set_beauty(w.now, RoomId::new("room-1"), agent, true);
    // What was paced before the switch still arrives.
    w.run(Duration::from_millis(200), true);
    w.beautify.clear();
    let (customer_video, agent_video) = (w.peers[b].video_frames_in, w.peers[a].video_frames_in);
    w.run(Duration::from_secs(1), true);

    // The agent's video left for the pipeline; nothing of it reached the customer.
    assert!(
        w.beautify.len() >= 20,
        "{} frames to the pipeline",
        w.beautify.len()
    );
    assert!(w.beautify.iter().all(|(_, _, out)| *out == VideoCodec::Vp8));
    assert_eq!(
        w.peers[b].video_frames_in, customer_video,
        "no unfiltered agent video"
    );
    assert!(
        w.peers[b].audio_frames_in > 20,
        "audio is forwarded as always"
    );
    assert!(
        w.peers[a].video_frames_in > agent_video + 20,
        "the customer's video still reaches the agent"
    );

    // What the pipeline encodes reaches the customer.
    let inputs = std::mem::take(&mut w.beautify);
    for (n, (room, input, codec)) in inputs.into_iter().enumerate() {
        let frame = OutputFrame {
            rtp_time: input.rtp_time,
            keyframe: n == 0,
            data: vp8_frame(n == 0, n as u64),
        };
        w.sfu.write_processed(w.now, &room, codec, frame);
    }
    // Time moves on so the pacer lets the packets out.
    w.run(Duration::from_millis(500), false);
    assert!(
        w.peers[b].video_frames_in >= 20,
        "customer got {}",
        w.peers[b].video_frames_in
    );

    // The customer's PLI goes to our encoder, not to the agent.
    let before = w.peers[a].keyframe_requests_in;
    w.peers[b].send_pli();
    w.run(Duration::from_millis(300), false);
    assert_eq!(w.pipeline_keyframes, vec![RoomId::new("room-1")]);
    assert_eq!(w.peers[a].keyframe_requests_in, before);

    // Off again: plain forwarding.
    let agent = w.peers[a].id.clone();
    w.sfu.set_beauty(w.now, RoomId::new("room-1"), agent, false);
    w.beautify.clear();
    let seen = w.peers[b].video_frames_in;
    w.run(Duration::from_millis(500), true);
    assert!(w.beautify.is_empty());
    assert!(w.peers[b].video_frames_in > seen);

    // On again, then the call ends: the route is gone whoever is left.
    let agent = w.peers[a].id.clone();
    w.sfu.set_beauty(w.now, RoomId::new("room-1"), agent, true);
    w.sfu.clear_beauty(&RoomId::new("room-1"));
    w.run(Duration::from_millis(300), true);
    assert!(
        w.beautify.is_empty(),
        "nothing diverted after the call ended"
    );
}

#[test]
fn the_pipeline_follows_the_bandwidth_estimate_towards_the_customer() {
    let mut w = World::new();
    let a = w.join("room-1", "agent", "127.0.0.1:40001");
    let b = w.join("room-1", "customer", "127.0.0.1:40002");
    w.run(Duration::from_secs(1), true);
    let agent = w.peers[a].id.clone();
    w.sfu.set_beauty(w.now, RoomId::new("room-1"), agent, true);
    w.echo_pipeline = true;
    w.run(Duration::from_secs(3), true);
    assert!(w.peers[b].video_frames_in > 30, "the customer gets video");
    let (room, first) = w
        .pipeline_bitrates
        .first()
        .cloned()
        .expect("a first estimate");
    assert_eq!(room.as_str(), "room-1");
    assert!(
        (MIN_BITRATE_BPS..=MAX_BITRATE_BPS).contains(&first),
        "{first}"
    );

    // A quarter of what goes to the customer is lost: the estimate, and the encoder's
    // rate with it, go down.
    w.lose_every_fourth_datagram_to(b);
    w.run(Duration::from_secs(6), true);
    let rates: Vec<u32> = w.pipeline_bitrates.iter().map(|(_, bps)| *bps).collect();
    eprintln!("encoder rates: {rates:?}");
    let last = *rates.last().expect("rates");
    assert!(last < first, "rate under loss {last} vs {first} before");
    assert!(
        rates
            .iter()
            .all(|r| (MIN_BITRATE_BPS..=MAX_BITRATE_BPS).contains(r))
    );
}

#[test]
fn encoder_bitrate_leaves_room_for_audio_and_stays_in_bounds() {
    assert_eq!(encoder_bitrate(1_060_000), 900_000);
    assert_eq!(encoder_bitrate(0), MIN_BITRATE_BPS);
    assert_eq!(encoder_bitrate(100_000_000), MAX_BITRATE_BPS);
}

#[test]
fn a_preview_room_sends_the_agent_its_own_filtered_video() {
    let mut w = World::new();
    let a = w.join("preview-1", "agent", "127.0.0.1:40001");
    w.run(Duration::from_secs(1), true);
    assert_eq!(w.peers[a].video_frames_in, 0, "alone: nothing comes back");
    let agent = w.peers[a].id.clone();
    w.sfu.route_beauty(
        w.now,
        RoomId::new("preview-1"),
        agent,
        Some(BeautyOutput::Loopback),
    );
    w.run(Duration::from_secs(1), true);
    assert!(
        w.beautify.len() >= 20,
        "{} to the pipeline",
        w.beautify.len()
    );

    // What the pipeline encodes comes back to the agent.
    w.echo_pipeline = true;
    w.run(Duration::from_secs(1), true);
    assert!(
        w.peers[a].video_frames_in >= 20,
        "agent got {} of its filtered frames",
        w.peers[a].video_frames_in
    );
    // The agent's keyframe request is about our encoder's stream.
    let before = w.peers[a].keyframe_requests_in;
    w.peers[a].send_pli();
    w.run(Duration::from_millis(300), false);
    assert_eq!(w.pipeline_keyframes, vec![RoomId::new("preview-1")]);
    assert_eq!(w.peers[a].keyframe_requests_in, before);
}

#[test]
fn a_subscribers_estimate_caps_what_its_publisher_sends() {
    let mut w = World::new();
    let a = w.join("room-1", "agent", "127.0.0.1:40001");
    let b = w.join("room-1", "customer", "127.0.0.1:40002");
    w.run(Duration::from_secs(3), true);
    assert!(!w.peers[a].remb_in.is_empty(), "the agent got a first cap");
    let first = w.peers[a].remb_in[0];

    // A quarter of what goes to the customer is lost: its estimate falls, and the
    // agent is asked to send less video.
    w.lose_every_fourth_datagram_to(b);
    w.run(Duration::from_secs(6), true);
    let caps = w.peers[a].remb_in.clone();
    let last = *caps.last().expect("caps");
    assert!(last < first, "caps {caps:?}");
    assert!(
        caps.iter()
            .all(|c| (u64::from(MIN_BITRATE_BPS)..=u64::from(MAX_BITRATE_BPS)).contains(c))
    );
    // Every cap counted reached its peer, but for those lost on the way to the customer.
    let received = caps.len() + w.peers[b].remb_in.len();
    let sent = w.sfu.stats().remb_sent as usize;
    assert!(
        received <= sent && sent <= received + w.lost as usize,
        "sent {sent}, received {received}, lost {}",
        w.lost
    );
}

/// A peer's network changes (new address): it restarts ICE on the same peer connection.
fn restart_from(w: &mut World, idx: usize, new_addr: &str) -> Result<String, JoinError> {
    let new_addr: SocketAddr = new_addr.parse().expect("test address");
    let peer = &mut w.peers[idx];
    peer.addr = new_addr;
    peer.rtc
        .add_local_candidate(Candidate::host(new_addr, "udp").expect("host candidate"));
    let mut api = peer.rtc.sdp_api();
    api.ice_restart(true);
    let (offer, pending) = api.apply().expect("an ICE restart makes an offer");
    let answer = w
        .sfu
        .restart(w.now, &peer.id.clone(), &offer.to_sdp_string())?;
    w.peers[idx].accept_answer(pending, &answer);
    Ok(answer)
}

#[test]
fn an_ice_restart_moves_a_participant_to_its_new_address_and_keeps_its_call() {
    let mut w = World::new();
    let a = w.join("r", "agent", "127.0.0.1:40001");
    let b = w.join("r", "customer", "127.0.0.1:40002");
    w.sfu.tap(
        w.now,
        RoomId::new("r"),
        vec![
            TapParty {
                participant: ParticipantId::new("agent"),
                side: kefu_proto::Side::Agent,
            },
            TapParty {
                participant: ParticipantId::new("customer"),
                side: kefu_proto::Side::Customer,
            },
        ],
    );
    w.run(Duration::from_secs(2), true);
    let before = (w.peers[a].video_frames_in, w.peers[b].video_frames_in);
    assert!(
        before.0 > 10 && before.1 > 10,
        "media flows first: {before:?}"
    );

    // Wi-Fi gone: nothing reaches the old address any more; the peer is on 4G.
    restart_from(&mut w, b, "127.0.0.1:40102").expect("the SFU accepts the restart");
    w.tapped.clear();
    w.run(Duration::from_secs(2), true);

    assert!(
        w.peers[b].video_frames_in > before.1 + 20,
        "the moved peer receives again: {} → {}",
        before.1,
        w.peers[b].video_frames_in
    );
    assert!(
        w.peers[a].video_frames_in > before.0 + 20,
        "and is received"
    );
    assert_eq!(w.sfu.stats().ice_restarts, 1);
    assert_eq!(w.sfu.stats().participants, 2, "nobody left or joined");
    let customer_frames = w
        .tapped
        .iter()
        .filter(|(_, f)| f.side == kefu_proto::Side::Customer)
        .count();
    assert!(
        customer_frames > 20,
        "the recording goes on with the moved peer"
    );
}

#[test]
fn a_restart_needs_the_participant_and_its_own_peer_connection() {
    let mut w = World::new();
    w.join("r", "agent", "127.0.0.1:40001");
    w.run(Duration::from_secs(1), true);
    let (_, offer, _) = TestPeer::new("agent", "127.0.0.1:40005", w.now);
    assert!(matches!(
        w.sfu.restart(w.now, &ParticipantId::new("nobody"), &offer),
        Err(JoinError::UnknownParticipant)
    ));
    // Same participant id, another peer connection (its own DTLS certificate).
    assert!(matches!(
        w.sfu.restart(w.now, &ParticipantId::new("agent"), &offer),
        Err(JoinError::BadOffer(why)) if why.contains("peer connection that joined")
    ));
    assert!(matches!(
        w.sfu
            .restart(w.now, &ParticipantId::new("agent"), "not sdp"),
        Err(JoinError::BadOffer(_))
    ));
    assert_eq!(w.sfu.stats().ice_restarts, 0);
    assert_eq!(w.sfu.stats().participants, 1);
}

#[test]
fn a_participant_whose_path_stays_lost_is_dropped_after_the_grace_period() {
    let mut w = World::new();
    w.join("r", "agent", "127.0.0.1:40001");
    w.join("r", "customer", "127.0.0.1:40002");
    w.run(Duration::from_secs(2), true);
    // The customer vanishes without a word: nothing from or to it any more.
    w.peers.truncate(1);
    w.run(ICE_RECOVERY_GRACE / 2, true);
    assert_eq!(w.sfu.stats().participants, 2, "kept while it may come back");
    w.run(ICE_RECOVERY_GRACE + Duration::from_secs(10), true);
    assert_eq!(w.sfu.stats().participants, 1);
    assert_eq!(w.sfu.stats().ice_lost, 1);
}

/// An agent and a customer in room-1, the SFU given the tests' black keyframe:
/// (world, agent, customer).
fn blanking_call() -> (World, usize, usize) {
    let mut w = World::new();
    let a = w.join("room-1", "agent", "127.0.0.1:40001");
    let c = w.join("room-1", "customer", "127.0.0.1:40002");
    w.sfu.set_blank_frames(super::BlankFrames {
        vp8: Some(std::sync::Arc::from(BLANK)),
        h264: None,
    });
    (w, a, c)
}

#[test]
fn a_blanked_publisher_is_replaced_by_black_keyframes_until_restored() {
    let (mut w, a, c) = blanking_call();
    w.run(Duration::from_secs(1), false);
    w.run(Duration::from_secs(2), true);
    let (frames, blanks) = (w.peers[a].video_frames_in, w.peers[a].blank_frames_in);
    assert!(
        frames > 20 && blanks == 0,
        "{frames} frames, {blanks} black"
    );

    let customer = w.peers[c].id.clone();
    w.sfu.set_blanked(w.now, &customer, true);
    let published_before = w.peers[c].frame_no;
    let (fills_before, blanks_before) =
        (w.peers[a].video_fills_in.len(), w.peers[a].blank_frames_in);
    let agent_gets_before = w.peers[c].video_frames_in;
    w.run(Duration::from_secs(2), true);
    let published = (published_before + 1..=w.peers[c].frame_no)
        .map(|n| (n % 251) as u8)
        .collect::<std::collections::HashSet<u8>>();
    // Frames already queued towards the agent may still drain; none published since.
    let leaked = w.peers[a].video_fills_in[fills_before..]
        .iter()
        .filter(|fill| published.contains(fill))
        .count();
    assert_eq!(
        leaked, 0,
        "no customer frame published while blanked reaches the agent"
    );
    // Black twice a second, one at once.
    let blacks = w.peers[a].blank_frames_in - blanks_before;
    assert!((4..=6).contains(&blacks), "{blacks} black frames");
    assert!(
        w.peers[c].video_frames_in - agent_gets_before > 40,
        "the customer still sees the agent"
    );
    assert!(w.sfu.stats().blank_frames_sent >= 4, "{:?}", w.sfu.stats());

    let requests = w.peers[c].keyframe_requests_in;
    w.sfu.set_blanked(w.now, &customer, false);
    let (restored_from, fills) = (w.peers[c].frame_no, w.peers[a].video_fills_in.len());
    // Black until the customer's next keyframe (one every 30 frames here), then its
    // own frames again.
    w.run(Duration::from_secs(3), true);
    let blanks = w.peers[a].blank_frames_in;
    w.run(Duration::from_secs(1), true);
    assert_eq!(w.peers[a].blank_frames_in, blanks, "no more black frames");
    let restored = (restored_from + 1..=w.peers[c].frame_no)
        .map(|n| (n % 251) as u8)
        .collect::<std::collections::HashSet<u8>>();
    let shown = w.peers[a].video_fills_in[fills..]
        .iter()
        .filter(|fill| restored.contains(fill))
        .count();
    assert!(shown > 10, "forwarding resumed: {shown} new frames");
    // ... and from a keyframe on (frame n is a keyframe when (n / 2) % 30 == 1).
    let keyframes = (restored_from + 1..=w.peers[c].frame_no)
        .filter(|n| n % 2 == 0 && (n / 2) % 30 == 1)
        .map(|n| (n % 251) as u8)
        .collect::<std::collections::HashSet<u8>>();
    let first = w.peers[a].video_fills_in[fills..]
        .iter()
        .find(|fill| restored.contains(fill))
        .expect("a restored frame");
    assert!(
        keyframes.contains(first),
        "the first frame shown again is a keyframe"
    );
    assert!(
        w.peers[c].keyframe_requests_in > requests,
        "the customer is asked for a keyframe so the picture returns soon"
    );
}

#[test]
fn a_blanked_publisher_that_rejoins_stays_blanked() {
    let (mut w, a, c) = blanking_call();
    w.run(Duration::from_secs(1), false);
    let customer = w.peers[c].id.clone();
    w.sfu.set_blanked(w.now, &customer, true);
    // The customer's page reloads: same participant id, a new peer connection.
    let again = w.join("room-1", "customer", "127.0.0.1:40012");
    w.peers[c].connected = false;
    w.run(Duration::from_secs(1), false);
    let (published_before, fills) = (w.peers[again].frame_no, w.peers[a].video_fills_in.len());
    let sent_before = w.peers[again].video_frames_out;
    w.run(Duration::from_secs(2), true);
    assert!(w.peers[again].connected, "the rejoined page is connected");
    assert!(
        w.peers[again].video_frames_out > sent_before + 20,
        "and publishes"
    );
    let published = (published_before + 1..=w.peers[again].frame_no)
        .map(|n| (n % 251) as u8)
        .collect::<std::collections::HashSet<u8>>();
    let leaked = w.peers[a].video_fills_in[fills..]
        .iter()
        .filter(|fill| published.contains(fill))
        .count();
    assert_eq!(leaked, 0, "still withheld after the rejoin");
    assert!(w.peers[a].blank_frames_in >= 3);
}

#[test]
fn a_blanked_agent_with_beauty_keeps_feeding_the_pipeline_and_returns_at_its_keyframe() {
    use crate::pipeline::OutputFrame;
    let (mut w, a, b) = blanking_call();
    w.run(Duration::from_secs(1), true);
    let agent = w.peers[a].id.clone();
    w.sfu
        .set_beauty(w.now, RoomId::new("room-1"), agent.clone(), true);
    w.run(Duration::from_millis(200), true);
    w.sfu.set_blanked(w.now, &agent, true);
    w.beautify.clear();
    let blanks = w.peers[b].blank_frames_in;
    w.run(Duration::from_secs(1), true);
    // Moderation keeps seeing the agent: the pipeline still gets every frame.
    assert!(
        w.beautify.len() >= 20,
        "{} frames to the pipeline",
        w.beautify.len()
    );
    // What it encodes meanwhile is withheld.
    let inputs = std::mem::take(&mut w.beautify);
    let fills = w.peers[b].video_fills_in.len();
    for (n, (room, input, codec)) in inputs.iter().enumerate() {
        let frame = OutputFrame {
            rtp_time: input.rtp_time,
            keyframe: n == 0,
            data: vp8_frame(n == 0, 100 + n as u64),
        };
        w.sfu.write_processed(w.now, room, *codec, frame);
    }
    w.run(Duration::from_millis(500), false);
    assert_eq!(
        w.peers[b].video_fills_in.len(),
        fills,
        "no filtered frame while withheld"
    );
    assert!(w.peers[b].blank_frames_in > blanks, "black instead");

    // Restored: our encoder is asked for a keyframe, and only that ends the black.
    w.pipeline_keyframes.clear();
    w.sfu.set_blanked(w.now, &agent, false);
    w.run(Duration::from_millis(50), false);
    assert_eq!(w.pipeline_keyframes, vec![RoomId::new("room-1")]);
    let room = RoomId::new("room-1");
    let codec = inputs[0].2;
    let time = inputs.last().map_or(0, |(_, i, _)| i.rtp_time);
    w.sfu.write_processed(
        w.now,
        &room,
        codec,
        OutputFrame {
            rtp_time: time + 3000,
            keyframe: false,
            data: vp8_frame(false, 201),
        },
    );
    w.sfu.write_processed(
        w.now,
        &room,
        codec,
        OutputFrame {
            rtp_time: time + 6000,
            keyframe: true,
            data: vp8_frame(true, 202),
        },
    );
    w.run(Duration::from_millis(500), false);
    let shown: Vec<u8> = w.peers[b].video_fills_in[fills..].to_vec();
    assert_eq!(shown, [202], "the delta before the keyframe stays withheld");
}

/// Extends 16-bit sequence numbers in arrival order (they may wrap once or more).
fn extend_seqs(seqs: impl IntoIterator<Item = u16>) -> Vec<u64> {
    let mut last: Option<u64> = None;
    seqs.into_iter()
        .map(|seq| {
            let ext = match last {
                None => u64::from(seq),
                Some(prev) => {
                    let base = prev & !0xffff;
                    // The candidate nearest the previous number.
                    [base.wrapping_sub(0x1_0000), base, base + 0x1_0000]
                        .into_iter()
                        .map(|b| b.wrapping_add(u64::from(seq)))
                        .min_by_key(|c| c.abs_diff(prev))
                        .unwrap_or(u64::from(seq))
                }
            };
            last = Some(ext);
            ext
        })
        .collect()
}

fn publisher_video_ssrc(peer: &mut TestPeer) -> u32 {
    let video = peer.video;
    *peer
        .rtc
        .direct_api()
        .stream_tx_by_mid(video, None)
        .expect("the peer sends video")
        .ssrc()
}

#[test]
fn the_subscribers_sequence_stays_continuous_across_a_publishers_restart_and_rejoin() {
    let mut w = World::new();
    let a = w.join("r", "agent", "127.0.0.1:40001");
    let b = w.join("r", "customer", "127.0.0.1:40002");
    w.run(Duration::from_secs(2), true);
    let first_ssrc = publisher_video_ssrc(&mut w.peers[a]);

    // The agent's network changes: an ICE restart, same peer connection and SSRC.
    restart_from(&mut w, a, "127.0.0.1:40101").expect("the SFU accepts the restart");
    w.run(Duration::from_secs(2), true);
    let after_restart = w.peers[b].video_frames_in;

    // The agent reloads the page: a new peer connection with SSRCs and sequence
    // numbers of its own. The old page publishes nothing any more.
    w.peers[a].connected = false;
    let a2 = w.join("r", "agent", "127.0.0.1:40201");
    w.run(Duration::from_secs(3), true);
    assert_ne!(
        publisher_video_ssrc(&mut w.peers[a2]),
        first_ssrc,
        "the rejoined page publishes another stream"
    );
    assert!(
        w.peers[b].video_frames_in > after_restart + 20,
        "the customer sees the rejoined agent: {after_restart} → {}",
        w.peers[b].video_frames_in
    );

    let received = &w.peers[b].video_rtp_in;
    let ssrcs: std::collections::HashSet<u32> = received.iter().map(|(s, _)| *s).collect();
    assert_eq!(ssrcs.len(), 1, "one stream to the customer: {ssrcs:?}");
    let mut seqs = extend_seqs(received.iter().map(|(_, seq)| *seq));
    seqs.sort_unstable();
    seqs.dedup();
    assert!(seqs.len() > 300, "video flowed: {} packets", seqs.len());
    let gaps: Vec<(u64, u64)> = seqs
        .windows(2)
        .filter(|w| w[1] != w[0] + 1)
        .map(|w| (w[0], w[1]))
        .collect();
    assert!(gaps.is_empty(), "sequence gaps at the customer: {gaps:?}");
}

/// From now on, every 10th video datagram from peer `idx` to the SFU is lost.
fn lose_every_tenth_video_packet_from(w: &mut World, idx: usize) {
    let from_peer = w.peers[idx].addr;
    let mut n = 0u64;
    w.uplink_loss = Box::new(move |from, bytes| {
        if *from == from_peer && is_large_rtp(bytes) {
            n += 1;
            return n.is_multiple_of(10);
        }
        false
    });
}

/// Whether a datagram is a video-sized RTP packet (not RTCP).
fn is_large_rtp(bytes: &[u8]) -> bool {
    bytes.len() > 300 && bytes[0] >> 6 == 2 && !(72..=79).contains(&(bytes[1] & 0x7f))
}

#[test]
fn a_publishers_lossy_uplink_makes_its_subscriber_hold_video_until_the_loss_stops() {
    let mut w = World::new();
    let a = w.join("r", "agent", "127.0.0.1:40001");
    let b = w.join("r", "customer", "127.0.0.1:40002");
    w.run(Duration::from_secs(3), true);
    let clean = w.peers[b].video_playout_in.len();
    assert!(clean > 100, "video flowed: {clean} packets");
    assert!(
        w.peers[b].video_playout_in.iter().all(Option::is_none),
        "a clean uplink asks the subscriber for nothing"
    );

    lose_every_tenth_video_packet_from(&mut w, a);
    w.run(Duration::from_secs(4), true);
    assert!(w.lost > 20, "the test dropped packets: {}", w.lost);
    assert_eq!(w.sfu.stats().playout_holds, 1, "one hold started");
    let during = &w.peers[b].video_playout_in[clean..];
    let (min, max) = during
        .last()
        .copied()
        .flatten()
        .expect("the latest packets ask for a playout delay");
    // A NACK round with one retry on a zero-latency network: 33 + 105 + 25 ms (and
    // the measured round trip, a few ms), in 10 ms steps.
    assert!((170..=200).contains(&min), "minimum {min} ms");
    assert_eq!(max, 10_000, "maximum: the browser's own ceiling");
    // The SFU repaired the uplink itself: the customer saw every frame whole.
    assert_eq!(
        w.peers[b].video_gaps_in, 0,
        "every frame arrived contiguous"
    );

    // The loss stops: the hold lasts 10 s after the last lossy second, is then
    // withdrawn (minimum 0) for 5 s, then packets carry nothing again.
    w.uplink_loss = Box::new(|_, _| false);
    w.run(Duration::from_secs(12), true);
    assert_eq!(
        w.peers[b].video_playout_in.last().copied().flatten(),
        Some((0, 10_000)),
        "withdrawn"
    );
    w.run(Duration::from_secs(5), true);
    assert_eq!(w.peers[b].video_playout_in.last().copied().flatten(), None);
    assert_eq!(w.sfu.stats().playout_holds, 1);
}

#[test]
fn a_publisher_that_keeps_changing_ssrcs_is_remembered_by_its_latest_streams_only() {
    let mut w = World::new();
    let a = w.join("r", "agent", "127.0.0.1:40001");
    let b = w.join("r", "customer", "127.0.0.1:40002");
    w.run(Duration::from_secs(1), true);
    let mut latest = 0;
    for k in 0..8u32 {
        latest = 70_000 + 2 * k;
        let video = w.peers[a].video;
        w.peers[a]
            .rtc
            .direct_api()
            .reset_stream_tx(video, None, latest.into(), Some((latest + 1).into()))
            .expect("the peer takes a new SSRC");
        let frames_before = w.peers[b].video_frames_in;
        w.run(Duration::from_millis(600), true);
        assert!(
            w.peers[b].video_frames_in > frames_before + 5,
            "the customer sees the agent's video after change {k}"
        );
    }
    let agent = w
        .sfu
        .participants
        .iter()
        .find(|p| p.id.as_str() == "agent")
        .expect("the agent is in the core");
    let remembered: Vec<u32> = agent.inbound.iter().map(|s| *s.ssrc).collect();
    assert!(
        remembered.len() <= super::forward::MAX_INBOUND_STREAMS,
        "bounded: {remembered:?}"
    );
    assert!(
        remembered.contains(&latest),
        "the latest stream is one: {remembered:?}"
    );
    // Video streams made room for each other; the audio stream, unchanged, stayed.
    let audio = w.peers[a].audio;
    let audio_ssrc = *w.peers[a]
        .rtc
        .direct_api()
        .stream_tx_by_mid(audio, None)
        .expect("the peer sends audio")
        .ssrc();
    // Never forgotten: a forgotten stream is learned again at the end of the list.
    assert_eq!(
        remembered.iter().position(|&s| s == audio_ssrc),
        Some(0),
        "audio kept as the oldest: {remembered:?}"
    );
}

#[test]
fn a_subscriber_held_for_a_lossy_publisher_is_released_when_the_publisher_rejoins() {
    let mut w = World::new();
    let a = w.join("r", "agent", "127.0.0.1:40001");
    let b = w.join("r", "customer", "127.0.0.1:40002");
    w.run(Duration::from_secs(2), true);
    lose_every_tenth_video_packet_from(&mut w, a);
    w.run(Duration::from_secs(3), true);
    let held = w.peers[b].video_playout_in.last().copied().flatten();
    assert!(held.is_some_and(|(min, _)| min > 0), "held: {held:?}");

    // The agent reloads its page: a new publisher with a clean uplink. The customer's
    // browser still has the old minimum, so the SFU releases it.
    w.uplink_loss = Box::new(|_, _| false);
    w.peers[a].connected = false;
    w.join("r", "agent", "127.0.0.1:40201");
    w.run(Duration::from_secs(2), true);
    assert_eq!(
        w.peers[b].video_playout_in.last().copied().flatten(),
        Some((0, 10_000)),
        "released on the rejoined publisher's packets"
    );
    w.run(Duration::from_secs(5), true);
    assert_eq!(w.peers[b].video_playout_in.last().copied().flatten(), None);
}
