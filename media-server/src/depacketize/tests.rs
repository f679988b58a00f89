use std::time::{Duration, Instant};

use str0m::unversioned::{H264Packetizer, Packetizer, Vp8Packetizer};

use super::*;

const MTU: usize = 1100;

/// xorshift64: deterministic, dependency-free.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }

    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }

    /// Bytes with no zeros, so they never form an Annex B start code.
    fn bytes(&mut self, len: usize) -> Vec<u8> {
        (0..len).map(|_| (self.below(255) + 1) as u8).collect()
    }

    fn shuffle<T>(&mut self, items: &mut [T]) {
        for i in (1..items.len()).rev() {
            items.swap(i, self.below(i as u64 + 1) as usize);
        }
    }
}

#[derive(Debug, Clone)]
struct Pkt {
    seq: u64,
    rtp_time: u64,
    marker: bool,
    payload: Vec<u8>,
}

impl Pkt {
    fn rtp_in(&self, arrival: Instant) -> RtpIn<'_> {
        RtpIn {
            seq: self.seq,
            rtp_time: self.rtp_time,
            marker: self.marker,
            payload: &self.payload,
            arrival,
        }
    }
}

/// Packetizes frames as str0m's frame-mode sender does: consecutive sequence numbers,
/// 30 fps in a 90 kHz clock, marker as the packetizer says.
struct Sender {
    packetizer: Box<dyn Packetizer>,
    seq: u64,
    rtp_time: u64,
}

impl Sender {
    fn new(packetizer: Box<dyn Packetizer>, seq: u64) -> Self {
        Sender {
            packetizer,
            seq,
            rtp_time: 90_000,
        }
    }

    fn vp8() -> Self {
        Self::new(Box::new(Vp8Packetizer::default()), 1000)
    }

    fn h264() -> Self {
        Self::new(Box::new(H264Packetizer::default()), 1000)
    }

    fn frame(&mut self, data: &[u8]) -> Vec<Pkt> {
        let chunks = self.packetizer.packetize(MTU, data).expect("packetize");
        let count = chunks.len();
        let mut packets: Vec<Pkt> = Vec::with_capacity(count);
        for (i, payload) in chunks.into_iter().enumerate() {
            let previous = packets.last().map(|p| p.payload.as_slice());
            let marker = self
                .packetizer
                .is_marker(&payload, previous, i + 1 == count);
            packets.push(Pkt {
                seq: self.seq,
                rtp_time: self.rtp_time,
                marker,
                payload,
            });
            self.seq += 1;
        }
        self.rtp_time += 3000;
        packets
    }

    /// A packet that belongs to no frame, taking the next sequence number.
    fn padding(&mut self) -> Pkt {
        self.seq += 1;
        Pkt {
            seq: self.seq - 1,
            rtp_time: self.rtp_time - 3000,
            marker: false,
            payload: Vec::new(),
        }
    }
}

fn vp8_key(rng: &mut Rng, len: usize) -> Vec<u8> {
    // Frame tag (key, shown), start code, 640x480.
    let mut f = vec![0x10, 0x02, 0x00, 0x9d, 0x01, 0x2a, 0x80, 0x02, 0xe0, 0x01];
    f.extend(rng.bytes(len));
    f
}

fn vp8_delta(rng: &mut Rng, len: usize) -> Vec<u8> {
    let mut f = vec![0x11, 0x02, 0x00];
    f.extend(rng.bytes(len));
    f
}

/// Makes one frame's bytes of about the given size.
type MakeFrame = fn(&mut Rng, usize) -> Vec<u8>;

const START: [u8; 4] = [0, 0, 0, 1];

fn nal(header: u8, body: &[u8]) -> Vec<u8> {
    let mut n = START.to_vec();
    n.push(header);
    n.extend_from_slice(body);
    n
}

fn h264_key(rng: &mut Rng, len: usize) -> Vec<u8> {
    let mut f = nal(0x67, &[0x42, 0xc0, 0x1f, 0x8c, 0x8d, 0x40]);
    f.extend(nal(0x68, &[0xce, 0x3c, 0x80]));
    f.extend(nal(0x65, &rng.bytes(len)));
    f
}

fn h264_delta(rng: &mut Rng, len: usize) -> Vec<u8> {
    nal(0x41, &rng.bytes(len))
}

fn push_all<'a>(
    asm: &mut FrameAssembler,
    packets: impl IntoIterator<Item = &'a Pkt>,
) -> Vec<AssembledFrame> {
    let now = Instant::now();
    let mut out = Vec::new();
    for p in packets {
        asm.push(p.rtp_in(now), &mut out);
    }
    out
}

fn contiguity(frames: &[AssembledFrame]) -> Vec<bool> {
    frames.iter().map(|f| f.contiguous).collect()
}

fn times(frames: &[AssembledFrame]) -> Vec<u64> {
    frames.iter().map(|f| f.rtp_time).collect()
}

#[test]
fn vp8_frames_in_order_round_trip_byte_exact() {
    let mut rng = Rng(1);
    let mut tx = Sender::vp8();
    let sent = [
        vp8_key(&mut rng, 5000),
        vp8_delta(&mut rng, 1500),
        vp8_delta(&mut rng, 300),
    ];
    let mut asm = FrameAssembler::new(FrameCodec::Vp8);
    assert_eq!(asm.codec(), FrameCodec::Vp8);
    let start = Instant::now();
    let mut out = Vec::new();
    for (i, data) in sent.iter().enumerate() {
        let packets = tx.frame(data);
        assert!(i == 2 || packets.len() > 1, "frame should span packets");
        for (k, p) in packets.iter().enumerate() {
            let before = out.len();
            asm.push(p.rtp_in(start + Duration::from_millis(k as u64)), &mut out);
            // A frame comes out exactly when its last packet arrives.
            assert_eq!(out.len() - before, usize::from(p.marker));
        }
        let frame = out.last().expect("frame");
        assert_eq!(&*frame.data, data.as_slice());
        assert_eq!(frame.packets, packets.len() as u64);
        assert_eq!(frame.rtp_time, packets[0].rtp_time);
        assert_eq!(
            frame.arrival,
            start + Duration::from_millis(packets.len() as u64 - 1)
        );
    }
    assert_eq!(
        out.iter().map(|f| f.keyframe).collect::<Vec<_>>(),
        [true, false, false]
    );
    assert_eq!(contiguity(&out), [true; 3]);
    assert_eq!(asm.buffered(), 0);
}

#[test]
fn h264_frames_in_order_round_trip_byte_exact() {
    let mut rng = Rng(2);
    let mut tx = Sender::h264();
    let sent = [
        h264_key(&mut rng, 4000),
        h264_delta(&mut rng, 2000),
        h264_delta(&mut rng, 300),
    ];
    let packets: Vec<Vec<Pkt>> = sent.iter().map(|f| tx.frame(f)).collect();
    assert!(packets[0].len() > 2 && packets[1].len() > 1);
    let mut asm = FrameAssembler::new(FrameCodec::H264);
    let out = push_all(&mut asm, packets.iter().flatten());
    assert_eq!(out.len(), 3);
    for (frame, data) in out.iter().zip(&sent) {
        assert_eq!(&*frame.data, data.as_slice());
    }
    assert_eq!(
        out.iter().map(|f| f.keyframe).collect::<Vec<_>>(),
        [true, false, false]
    );
    assert_eq!(contiguity(&out), [true; 3]);
    assert_eq!(asm.buffered(), 0);
}

#[test]
fn h264_sps_before_a_non_idr_slice_counts_as_keyframe() {
    let mut rng = Rng(3);
    let mut tx = Sender::h264();
    let mut refresh = nal(0x67, &[0x42, 0xc0, 0x1f]);
    refresh.extend(nal(0x68, &[0xce, 0x3c, 0x80]));
    refresh.extend(h264_delta(&mut rng, 2000));
    let mut asm = FrameAssembler::new(FrameCodec::H264);
    let out = push_all(&mut asm, &tx.frame(&refresh));
    assert_eq!(out.len(), 1);
    assert!(out[0].keyframe);
    assert_eq!(&*out[0].data, refresh.as_slice());
}

#[test]
fn shuffled_packets_across_two_frames_come_out_in_order() {
    for seed in 1..=20 {
        let mut rng = Rng(seed);
        let mut tx = Sender::vp8();
        let sent = [
            vp8_key(&mut rng, 2000),
            vp8_key(&mut rng, 4000),
            vp8_delta(&mut rng, 2500),
        ];
        let f0 = tx.frame(&sent[0]);
        let mut rest: Vec<Pkt> = [tx.frame(&sent[1]), tx.frame(&sent[2])].concat();
        rng.shuffle(&mut rest);
        let mut asm = FrameAssembler::new(FrameCodec::Vp8);
        let out = push_all(&mut asm, f0.iter().chain(&rest));
        assert_eq!(out.len(), 3, "seed {seed}");
        for (frame, data) in out.iter().zip(&sent) {
            assert_eq!(&*frame.data, data.as_slice(), "seed {seed}");
        }
        assert_eq!(contiguity(&out), [true; 3], "seed {seed}");
        assert_eq!(asm.buffered(), 0);
    }
}

/// A key frame, then a delta frame missing its middle packet, then `deltas` small frames.
fn stream_with_loss(deltas: usize) -> (Vec<Pkt>, Pkt, Vec<Vec<Pkt>>) {
    let mut rng = Rng(4);
    let mut tx = Sender::vp8();
    let mut head = tx.frame(&vp8_key(&mut rng, 3000));
    let mut broken = tx.frame(&vp8_delta(&mut rng, 2500));
    assert_eq!(broken.len(), 3);
    let lost = broken.remove(1);
    head.extend(broken);
    let later = (0..deltas)
        .map(|_| tx.frame(&vp8_delta(&mut rng, 1500)))
        .collect();
    (head, lost, later)
}

#[test]
fn lost_packet_skips_its_frame_once_enough_newer_packets_wait() {
    let (head, _lost, later) = stream_with_loss(40);
    let mut asm = FrameAssembler::new(FrameCodec::Vp8);
    let mut out = push_all(&mut asm, &head);
    // 30 two-packet frames: still inside the window an RTX repair may take.
    out.extend(push_all(&mut asm, later[..30].iter().flatten()));
    assert_eq!(out.len(), 1, "only the key frame before the hole");
    out.extend(push_all(&mut asm, later[30..].iter().flatten()));

    let expected: Vec<u64> = std::iter::once(head[0].rtp_time)
        .chain(later.iter().map(|f| f[0].rtp_time))
        .collect();
    assert_eq!(times(&out), expected);
    let mut flags = vec![true; expected.len()];
    flags[1] = false;
    assert_eq!(contiguity(&out), flags);
    assert_eq!(asm.buffered(), 0);
}

#[test]
fn late_repair_within_the_window_recovers_the_frame() {
    let (head, lost, later) = stream_with_loss(20);
    let mut asm = FrameAssembler::new(FrameCodec::Vp8);
    let mut out = push_all(&mut asm, &head);
    out.extend(push_all(&mut asm, later[..10].iter().flatten()));
    assert_eq!(out.len(), 1);
    out.extend(push_all(&mut asm, [&lost]));
    assert_eq!(out.len(), 12, "the repaired frame and the 10 behind it");
    out.extend(push_all(&mut asm, later[10..].iter().flatten()));
    assert_eq!(out.len(), 22);
    assert_eq!(contiguity(&out), [true; 22]);
    assert_eq!(out[1].packets, 3);
}

#[test]
fn newer_keyframe_ends_the_wait_at_once() {
    let (head, lost, _) = stream_with_loss(0);
    let mut rng = Rng(5);
    let mut tx = Sender::vp8();
    tx.seq = lost.seq + 2;
    tx.rtp_time = lost.rtp_time + 3000;
    let key = tx.frame(&vp8_key(&mut rng, 3000));
    let mut asm = FrameAssembler::new(FrameCodec::Vp8);
    let out = push_all(&mut asm, head.iter().chain(&key));
    assert_eq!(times(&out), [head[0].rtp_time, key[0].rtp_time]);
    assert_eq!(contiguity(&out), [true, false]);
    assert!(out[1].keyframe);
    // The repair is now too late and changes nothing.
    assert!(push_all(&mut asm, [&lost]).is_empty());
    assert_eq!(asm.buffered(), 0);
}

#[test]
fn duplicates_are_ignored() {
    let mut rng = Rng(6);
    let mut tx = Sender::h264();
    let packets: Vec<Pkt> = [h264_key(&mut rng, 3000), h264_delta(&mut rng, 2000)]
        .iter()
        .flat_map(|f| tx.frame(f))
        .collect();
    let twice: Vec<&Pkt> = packets.iter().flat_map(|p| [p, p]).collect();
    let mut asm = FrameAssembler::new(FrameCodec::H264);
    let out = push_all(&mut asm, twice);
    let mut fresh = FrameAssembler::new(FrameCodec::H264);
    let once = push_all(&mut fresh, &packets);
    assert_eq!(out.len(), 2);
    for (a, b) in out.iter().zip(&once) {
        assert_eq!(a.data, b.data);
        assert_eq!(a.packets, b.packets);
    }
    assert!(
        push_all(&mut asm, &packets).is_empty(),
        "replayed frames stay out"
    );
    assert_eq!(asm.buffered(), 0);
}

#[test]
fn undecodable_frame_is_skipped_and_next_is_not_contiguous() {
    let mut rng = Rng(7);
    for codec in [FrameCodec::Vp8, FrameCodec::H264] {
        let (mut tx, good): (Sender, MakeFrame) = match codec {
            FrameCodec::Vp8 => (Sender::vp8(), vp8_key),
            _ => (Sender::h264(), h264_key),
        };
        let first = tx.frame(&good(&mut rng, 2000));
        // A frame that starts and ends right but does not parse: a VP8 descriptor with
        // no payload, an H.264 NAL type (31) no depacketizer handles.
        let garbage = Pkt {
            seq: tx.seq,
            rtp_time: tx.rtp_time,
            marker: true,
            payload: if codec == FrameCodec::Vp8 {
                vec![0x10]
            } else {
                vec![0x1f, 0]
            },
        };
        tx.seq += 1;
        tx.rtp_time += 3000;
        let last = tx.frame(&good(&mut rng, 2000));
        let mut asm = FrameAssembler::new(codec);
        let out = push_all(&mut asm, first.iter().chain([&garbage]).chain(&last));
        assert_eq!(
            times(&out),
            [first[0].rtp_time, last[0].rtp_time],
            "{codec:?}"
        );
        assert_eq!(contiguity(&out), [true, false], "{codec:?}");
    }
}

#[test]
fn padding_between_frames_keeps_contiguity() {
    let mut rng = Rng(8);
    let mut tx = Sender::vp8();
    let a = tx.frame(&vp8_key(&mut rng, 2000));
    let pad = [tx.padding(), tx.padding()];
    let b = tx.frame(&vp8_delta(&mut rng, 2000));
    let mut asm = FrameAssembler::new(FrameCodec::Vp8);
    let out = push_all(&mut asm, a.iter().chain(&pad).chain(&b));
    assert_eq!(contiguity(&out), [true, true]);
    assert_eq!(asm.buffered(), 0);
}

#[test]
fn missing_marker_frame_ends_at_the_next_timestamp() {
    let mut rng = Rng(9);
    let mut tx = Sender::vp8();
    let mut a = tx.frame(&vp8_key(&mut rng, 2000));
    let data = a
        .iter()
        .skip(1)
        .fold(a[0].payload[1..].to_vec(), |mut d, p| {
            d.extend_from_slice(&p.payload[1..]);
            d
        });
    a.last_mut().expect("packet").marker = false;
    let b = tx.frame(&vp8_delta(&mut rng, 500));
    let mut asm = FrameAssembler::new(FrameCodec::Vp8);
    assert!(push_all(&mut asm, &a).is_empty());
    let out = push_all(&mut asm, &b);
    assert_eq!(out.len(), 2);
    assert_eq!(&*out[0].data, data.as_slice());
}

#[test]
fn opus_every_packet_is_a_frame_and_gaps_are_flagged() {
    let opus = |seq: u64| Pkt {
        seq,
        rtp_time: seq * 960,
        marker: false,
        payload: vec![0x78, seq as u8, 0xaa],
    };
    let mut asm = FrameAssembler::new(FrameCodec::Opus);
    let packets = [1, 2, 2, 3, 5, 4, 6, 7].map(opus);
    let out = push_all(&mut asm, &packets);
    assert_eq!(times(&out), [1, 2, 3, 5, 6, 7].map(|s| s * 960));
    assert_eq!(contiguity(&out), [true, true, true, false, true, true]);
    assert!(out.iter().all(|f| !f.keyframe && f.packets == 1));
    assert_eq!(&*out[3].data, [0x78, 5, 0xaa].as_slice());
    assert_eq!(asm.buffered(), 0);
}

#[test]
fn reset_makes_next_frame_not_contiguous() {
    let mut rng = Rng(10);
    let mut tx = Sender::vp8();
    let a = tx.frame(&vp8_key(&mut rng, 2000));
    let b = tx.frame(&vp8_delta(&mut rng, 2000));
    let c = tx.frame(&vp8_delta(&mut rng, 2000));
    let mut asm = FrameAssembler::new(FrameCodec::Vp8);
    push_all(&mut asm, a.iter().chain(&b[..1]));
    assert_eq!(asm.buffered(), 1);
    asm.reset();
    assert_eq!(asm.buffered(), 0);
    let out = push_all(&mut asm, &c);
    assert_eq!(contiguity(&out), [false]);

    let mut audio = FrameAssembler::new(FrameCodec::Opus);
    let pkt = |seq| Pkt {
        seq,
        rtp_time: seq * 960,
        marker: false,
        payload: vec![1],
    };
    let out = push_all(&mut audio, &[pkt(1), pkt(2)]);
    audio.reset();
    let after = push_all(&mut audio, &[pkt(3), pkt(4)]);
    assert_eq!(contiguity(&out), [true, true]);
    assert_eq!(contiguity(&after), [false, true]);
}

#[test]
fn renumbered_source_without_reset_starts_over() {
    let mut rng = Rng(11);
    let mut old = Sender::vp8();
    old.seq = 100_000;
    let mut new = Sender::vp8();
    new.seq = 10;
    let a = old.frame(&vp8_key(&mut rng, 2000));
    let b = new.frame(&vp8_key(&mut rng, 2000));
    let c = new.frame(&vp8_delta(&mut rng, 2000));
    let mut asm = FrameAssembler::new(FrameCodec::Vp8);
    let out = push_all(&mut asm, a.iter().chain(&b).chain(&c));
    assert_eq!(contiguity(&out), [true, false, true]);
}

#[test]
fn frames_that_never_complete_stay_within_bounds() {
    let mut asm = FrameAssembler::new(FrameCodec::Vp8);
    let now = Instant::now();
    let mut out = Vec::new();
    // Continuation packets only (no start bit, no marker): nothing ever completes.
    let small = [0x00; 1000];
    let large = vec![0x00; 60_000];
    for seq in 0..5000 {
        let payload: &[u8] = if seq % 2 == 0 { &small } else { &large };
        let rtp_time = seq / 4 * 3000;
        let packet = RtpIn {
            seq,
            rtp_time,
            marker: false,
            payload,
            arrival: now,
        };
        asm.push(packet, &mut out);
        assert!(asm.buffered() <= MAX_PACKETS);
        assert!(asm.bytes <= MAX_BYTES);
    }
    assert!(out.is_empty());
}

#[test]
fn garbage_never_panics_and_stays_bounded() {
    let now = Instant::now();
    for codec in [FrameCodec::Opus, FrameCodec::Vp8, FrameCodec::H264] {
        let mut rng = Rng(0x5eed + codec as u64);
        let mut asm = FrameAssembler::new(codec);
        let mut out = Vec::new();
        let mut base: u64 = 1 << 20;
        for _ in 0..30_000 {
            base = match rng.below(1000) {
                0 => base.saturating_sub(rng.below(1 << 16)),
                1 => base.saturating_add(rng.below(1 << 16)),
                2 => u64::MAX - rng.below(8),
                3 | 4 => 1 << 20,
                _ => base.saturating_add(rng.below(3)),
            };
            let seq = base.saturating_sub(rng.below(40));
            let len = rng.below(1400) as usize;
            let mut payload = rng.bytes(len);
            if rng.below(10) == 0 {
                payload.clear();
            }
            // Bias some first bytes toward real headers so frames do complete.
            if let Some(b) = payload.first_mut() {
                *b = match rng.below(4) {
                    0 => 0x10,
                    1 => 0x7c,
                    _ => *b,
                };
            }
            let packet = RtpIn {
                seq,
                rtp_time: (seq / 3).wrapping_mul(3000) + rng.below(2),
                marker: rng.below(3) == 0,
                payload: &payload,
                arrival: now,
            };
            asm.push(packet, &mut out);
            assert!(asm.buffered() <= MAX_PACKETS);
            assert!(asm.bytes <= MAX_BYTES);
            if rng.below(5000) == 0 {
                asm.reset();
            }
        }
        assert!(out.len() > 100, "{codec:?}: only {} frames", out.len());
        assert!(out.iter().all(|f| !f.data.is_empty()));
    }
}
