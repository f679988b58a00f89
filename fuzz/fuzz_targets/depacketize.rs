//! kefu's own frame assembly (`FrameAssembler`), which turns a tapped or beautified
//! stream's RTP packets back into frames. The SFU's datagram targets never reach it
//! (fuzzed bytes do not decrypt as SRTP), so this drives it directly: a run of packets
//! of one codec, reordered, duplicated, lost, with fuzzed markers and payloads (some
//! starting like VP8 / H.264 key frames), and the odd `reset()`.
//!
//! Input: byte 0 picks the codec; then per packet 2 bytes of signed sequence step,
//! 1 byte of flags, 1 byte of payload length, the payload. RTP times are given out so
//! that they never decrease along the sequence numbers (as a sender's do), so frames
//! must come out with non-decreasing times until the numbering restarts.
#![no_main]

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use kefu_media_server::depacketize::{AssembledFrame, FrameAssembler, FrameCodec, RtpIn};
use libfuzzer_sys::fuzz_target;

/// The assembler's bound on held packets (`MAX_PACKETS` in depacketize.rs).
const MAX_BUFFERED: usize = 512;
/// A packet this far behind the newest may restart the assembler (`RESTART_DISTANCE`).
const RESTART_DISTANCE: u64 = 4096;
/// Where sequence numbers start: far enough from 0 that steps back stay positive.
const FIRST_SEQ: u64 = 1 << 20;

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

/// RTP times by sequence number, handed out so they never decrease along the numbers.
#[derive(Default)]
struct Clock {
    times: BTreeMap<u64, u64>,
}

impl Clock {
    /// The time of `seq`: its earlier one, or its predecessor's (plus a frame when
    /// `advance`), never past its successor's.
    fn time_of(&mut self, seq: u64, advance: bool) -> u64 {
        if let Some(&t) = self.times.get(&seq) {
            return t;
        }
        let before = self.times.range(..seq).next_back().map(|(_, &t)| t);
        let after = self.times.range(seq + 1..).next().map(|(_, &t)| t);
        let step = if advance { 3000 } else { 0 };
        let t = match (before, after) {
            (Some(b), Some(a)) => (b + step).min(a),
            (Some(b), None) => b + step,
            (None, Some(a)) => a.saturating_sub(step),
            (None, None) => 1 << 32,
        };
        self.times.insert(seq, t);
        t
    }
}

fuzz_target!(|data: &[u8]| {
    let Some((&selector, mut rest)) = data.split_first() else {
        return;
    };
    let codec = match selector % 3 {
        0 => FrameCodec::Opus,
        1 => FrameCodec::Vp8,
        _ => FrameCodec::H264,
    };
    let mut assembler = FrameAssembler::new(codec);
    let start = Instant::now();
    let mut clock = Clock::default();
    let mut seq = FIRST_SEQ;
    let mut newest = seq;
    let mut last_time: Option<u64> = None;
    let mut pushed_with_payload = 0u64;
    let mut packets_out = 0u64;
    let mut frames: Vec<AssembledFrame> = Vec::new();
    let mut payload = Vec::new();
    let mut n = 0u64;

    while let [lo, hi, flags, len, tail @ ..] = rest {
        let len = usize::from(*len).min(tail.len());
        let (body, next) = tail.split_at(len);
        rest = next;
        n += 1;

        let step = i64::from(i16::from_le_bytes([*lo, *hi]));
        seq = seq.saturating_add_signed(step);
        let marker = flags & 0x01 != 0;
        let advance = flags & 0x02 != 0;
        if flags & 0x1c == 0x1c {
            assembler.reset();
            last_time = None;
        }
        payload.clear();
        if !body.is_empty() {
            payload.extend_from_slice(PREFIXES[usize::from(flags >> 5)]);
        }
        payload.extend_from_slice(body);

        if seq.saturating_add(RESTART_DISTANCE) <= newest {
            // The assembler may take this as a restart: frames may begin anew from here.
            last_time = None;
        }
        newest = newest.max(seq);
        if !payload.is_empty() {
            pushed_with_payload += 1;
        }
        let arrival = start + Duration::from_millis(n);
        frames.clear();
        assembler.push(
            RtpIn {
                seq,
                rtp_time: clock.time_of(seq, advance),
                marker,
                payload: &payload,
                arrival,
            },
            &mut frames,
        );

        assert!(
            assembler.buffered() <= MAX_BUFFERED,
            "{} packets held",
            assembler.buffered()
        );
        if codec == FrameCodec::Opus {
            assert_eq!(assembler.buffered(), 0, "Opus never waits");
        }
        for frame in &frames {
            assert!(frame.packets >= 1, "a frame of no packets");
            assert!(!frame.data.is_empty(), "an empty frame");
            assert!(frame.arrival <= arrival, "a frame from the future");
            if codec == FrameCodec::Opus {
                assert_eq!(frame.packets, 1);
                assert!(!frame.keyframe);
            }
            if let Some(last) = last_time {
                assert!(
                    frame.rtp_time >= last,
                    "frame at {} after one at {last}",
                    frame.rtp_time
                );
            }
            last_time = Some(frame.rtp_time);
            packets_out += frame.packets;
        }
        assert!(
            packets_out <= pushed_with_payload,
            "{packets_out} packets framed of {pushed_with_payload} pushed"
        );
    }
});
