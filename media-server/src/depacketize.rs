//! Whole frames from RTP packets, for the consumers that still need frames (recorder tap,
//! beauty pipeline, moderation) now that the SFU forwards packets in str0m's RTP mode.
//!
//! Pure, IO-free and clock-free: packets go in, frames come out in RTP order, as str0m's
//! frame mode would have produced them. Waiting for repairs (RTX) is bounded by packet
//! counts rather than time, and memory by packet and byte totals.

use std::collections::VecDeque;
use std::collections::vec_deque;
use std::sync::Arc;
use std::time::Instant;

use str0m::format::{CodecExtra, detect_h264_nalu, detect_vp8_keyframe};
use str0m::unversioned::{Depacketizer, H264Depacketizer, Vp8Depacketizer};

/// Most packets held at once (about half a second of 8 Mbit/s video).
const MAX_PACKETS: usize = 512;
/// Most payload bytes held at once; large payloads hit this before `MAX_PACKETS`.
const MAX_BYTES: usize = 2 << 20;
/// Newer packets that may queue behind a stuck frame before it is given up on: about
/// 250 ms at 2 Mbit/s, time enough for an RTX repair to arrive.
const MAX_WAIT_PACKETS: usize = 64;
/// A packet this far behind the last emitted one means the sender renumbered (a restart
/// the caller did not report), not a late repair.
const RESTART_DISTANCE: u64 = 4096;

const H264_IDR: u8 = 5;
const H264_SPS: u8 = 7;

/// The codecs whose frames kefu assembles.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FrameCodec {
    Opus,
    Vp8,
    H264,
}

/// One received RTP packet, as str0m's RTP mode reports it.
#[derive(Debug, Clone, Copy)]
pub struct RtpIn<'a> {
    /// Extended sequence number (str0m's `SeqNo` as `u64`).
    pub seq: u64,
    /// Extended RTP timestamp in the codec's clock (`RtpPacket.time.numer()`).
    pub rtp_time: u64,
    pub marker: bool,
    /// RTP payload, without the header.
    pub payload: &'a [u8],
    pub arrival: Instant,
}

/// One depacketized frame, as str0m's frame mode gave it (`MediaData`).
#[derive(Debug, Clone)]
pub struct AssembledFrame {
    pub rtp_time: u64,
    /// Arrival of the frame's last-arriving packet.
    pub arrival: Instant,
    /// VP8 key frame, or H.264 IDR or SPS present; always false for Opus.
    pub keyframe: bool,
    /// False when something before this frame was lost or skipped since the previous
    /// emitted frame, or when this is the first frame after `reset()`.
    pub contiguous: bool,
    /// VP8 frame, H.264 Annex B access unit, or Opus packet.
    pub data: Arc<[u8]>,
    /// RTP packets that made this frame.
    pub packets: u64,
}

/// Turns one stream's RTP packets into frames, waiting (boundedly) for late packets.
///
/// An incomplete frame blocks the ones after it until it completes or is given up on: when
/// a later complete frame is a key frame, or more than `MAX_WAIT_PACKETS` packets wait
/// behind it. Over `MAX_PACKETS` or `MAX_BYTES` the oldest frame is dropped.
#[derive(Debug)]
pub struct FrameAssembler {
    codec: FrameCodec,
    /// Held video packets, sorted by sequence number, no duplicates.
    queue: VecDeque<Entry>,
    /// Payload bytes in `queue`.
    bytes: usize,
    /// The sequence number after the last emitted or skipped packet.
    next_seq: Option<u64>,
    /// Something was lost or skipped since the last emitted frame.
    gap: bool,
}

#[derive(Debug)]
struct Entry {
    seq: u64,
    rtp_time: u64,
    head: bool,
    tail: bool,
    /// This packet alone shows a key frame (VP8 P bit, H.264 IDR or SPS).
    key: bool,
    arrival: Instant,
    payload: Box<[u8]>,
}

impl Entry {
    /// Padding fills sequence numbers but belongs to no frame.
    fn is_padding(&self) -> bool {
        self.payload.is_empty()
    }
}

/// The run of packets that forms the frame starting at some queue index.
#[derive(Debug, Clone, Copy)]
struct Span {
    /// Queue index just past the frame.
    end: usize,
    /// Head to tail with no sequence gap.
    complete: bool,
    key: bool,
}

impl FrameAssembler {
    pub fn new(codec: FrameCodec) -> Self {
        FrameAssembler {
            codec,
            queue: VecDeque::new(),
            bytes: 0,
            next_seq: None,
            gap: false,
        }
    }

    pub fn codec(&self) -> FrameCodec {
        self.codec
    }

    /// Adds one packet; pushes every frame that became complete (in RTP order) to `out`.
    pub fn push(&mut self, packet: RtpIn<'_>, out: &mut Vec<AssembledFrame>) {
        if let Some(next) = self.next_seq {
            if packet.seq.saturating_add(RESTART_DISTANCE) < next {
                self.reset();
            } else if packet.seq < next {
                // Already emitted or given up on: a duplicate or a repair that came too late.
                return;
            }
        }
        match self.codec {
            FrameCodec::Opus => self.push_audio(packet, out),
            FrameCodec::Vp8 | FrameCodec::H264 => {
                self.insert(packet);
                self.enforce_bounds();
                self.drain(out);
            }
        }
    }

    /// Forgets everything buffered (the source changed, e.g. a new SSRC); the next frame is
    /// not contiguous.
    pub fn reset(&mut self) {
        self.queue.clear();
        self.bytes = 0;
        self.next_seq = None;
        self.gap = true;
    }

    /// Packets held right now (for tests/metrics).
    pub fn buffered(&self) -> usize {
        self.queue.len()
    }

    /// Every Opus packet is a frame; a late one is useless to a decoder, so nothing waits.
    fn push_audio(&mut self, packet: RtpIn<'_>, out: &mut Vec<AssembledFrame>) {
        if self.next_seq.is_some_and(|next| packet.seq != next) {
            self.gap = true;
        }
        self.next_seq = Some(packet.seq.saturating_add(1));
        if packet.payload.is_empty() {
            return;
        }
        out.push(AssembledFrame {
            rtp_time: packet.rtp_time,
            arrival: packet.arrival,
            keyframe: false,
            contiguous: !std::mem::take(&mut self.gap),
            data: Arc::from(packet.payload),
            packets: 1,
        });
    }

    fn insert(&mut self, packet: RtpIn<'_>) {
        let Err(at) = self.queue.binary_search_by_key(&packet.seq, |e| e.seq) else {
            return; // duplicate
        };
        let (head, tail, key) = classify(self.codec, packet.marker, packet.payload);
        self.bytes += packet.payload.len();
        self.queue.insert(
            at,
            Entry {
                seq: packet.seq,
                rtp_time: packet.rtp_time,
                head,
                tail,
                key,
                arrival: packet.arrival,
                payload: packet.payload.into(),
            },
        );
    }

    /// Drops the oldest frames while over the memory bounds.
    fn enforce_bounds(&mut self) {
        while !self.queue.is_empty() && (self.queue.len() > MAX_PACKETS || self.bytes > MAX_BYTES) {
            let end = self.span(0).end;
            self.remove_front(end);
            self.gap = true;
        }
    }

    /// Emits frames from the front of the queue until one must be waited for.
    fn drain(&mut self, out: &mut Vec<AssembledFrame>) {
        while let Some(front) = self.queue.front() {
            let follows = self.next_seq.is_none_or(|next| front.seq == next);
            if follows && front.is_padding() {
                self.remove_front(1);
                continue;
            }
            let span = self.span(0);
            if follows && span.complete {
                self.emit(span, out);
            } else if let Some(start) = self.give_up_point(span.end) {
                self.skip_to(start);
            } else {
                return;
            }
        }
    }

    /// The frame starting at queue index `start`: packets sharing its RTP time, up to its
    /// tail. A new RTP time right after the last packet also ends it (a lost marker).
    fn span(&self, start: usize) -> Span {
        let mut span = Span {
            end: start,
            complete: false,
            key: false,
        };
        let mut prev: Option<&Entry> = None;
        for e in self.queue.range(start..) {
            match prev {
                None => span.complete = e.head,
                Some(p) => {
                    let in_line = is_next(p.seq, e.seq);
                    if p.tail || p.is_padding() || e.is_padding() || e.rtp_time != p.rtp_time {
                        span.complete &= p.tail || (in_line && !e.is_padding());
                        return span;
                    }
                    span.complete &= in_line;
                }
            }
            span.key |= e.key;
            span.end += 1;
            prev = Some(e);
        }
        span.complete &= prev.is_some_and(|p| p.tail);
        span
    }

    /// Where to resume when the front frame cannot be emitted yet: the first complete frame,
    /// once waiting is pointless (it is a key frame, or nothing was emitted yet to follow)
    /// or has lasted too long (`MAX_WAIT_PACKETS` newer packets queued behind the front).
    fn give_up_point(&self, front_end: usize) -> Option<usize> {
        let mut start = 0;
        while start < self.queue.len() {
            let span = self.span(start);
            if span.complete {
                let waited = self.queue.len().saturating_sub(front_end);
                let give_up = self.next_seq.is_none() || span.key || waited > MAX_WAIT_PACKETS;
                return give_up.then_some(start);
            }
            start = span.end;
        }
        None
    }

    /// Gives up on everything before queue index `start`.
    fn skip_to(&mut self, start: usize) {
        // Dropping fragments before the very first frame loses nothing that was promised.
        self.gap |= self.next_seq.is_some();
        self.remove_front(start);
        if let Some(front) = self.queue.front() {
            self.next_seq = Some(front.seq);
        }
    }

    fn emit(&mut self, span: Span, out: &mut Vec<AssembledFrame>) {
        let Some(first) = self.queue.front() else {
            return;
        };
        let packets = self.queue.range(..span.end);
        let arrival = packets.clone().fold(first.arrival, |a, e| a.max(e.arrival));
        let assembled = depacketize(self.codec, packets).map(|(data, key)| AssembledFrame {
            rtp_time: first.rtp_time,
            arrival,
            keyframe: key || span.key,
            contiguous: !self.gap,
            data: data.into(),
            packets: span.end as u64,
        });
        self.remove_front(span.end);
        match assembled {
            Some(frame) => {
                self.gap = false;
                out.push(frame);
            }
            // An undecodable frame is a lost frame.
            None => self.gap = true,
        }
    }

    /// Removes the first `count` packets; the numbering continues after them.
    fn remove_front(&mut self, count: usize) {
        for e in self.queue.drain(..count.min(self.queue.len())) {
            self.bytes -= e.payload.len();
            self.next_seq = Some(e.seq.saturating_add(1));
        }
    }
}

fn is_next(prev: u64, seq: u64) -> bool {
    prev.checked_add(1) == Some(seq)
}

/// Whether a packet starts a frame, ends one, and shows a key frame on its own.
fn classify(codec: FrameCodec, marker: bool, payload: &[u8]) -> (bool, bool, bool) {
    match codec {
        FrameCodec::Opus => (true, true, false),
        FrameCodec::Vp8 => {
            let d = Vp8Depacketizer::default();
            let key = detect_vp8_keyframe(payload);
            (
                d.is_partition_head(payload),
                d.is_partition_tail(marker, payload),
                key,
            )
        }
        FrameCodec::H264 => {
            let d = H264Depacketizer::default();
            // Some encoders refresh with SPS + a non-IDR intra slice; decoders can start there.
            let key = detect_h264_nalu(payload, H264_IDR) || detect_h264_nalu(payload, H264_SPS);
            (
                d.is_partition_head(payload),
                d.is_partition_tail(marker, payload),
                key,
            )
        }
    }
}

/// The frame's bytes and whether the depacketizer saw a key frame; `None` when the payloads
/// do not parse or carry nothing.
fn depacketize(codec: FrameCodec, packets: vec_deque::Iter<'_, Entry>) -> Option<(Vec<u8>, bool)> {
    // A fresh depacketizer per frame: H.264's holds a partial FU-A that must not leak
    // from a broken frame into the next.
    let (data, key) = match codec {
        FrameCodec::Opus => (
            packets.flat_map(|e| e.payload.iter().copied()).collect(),
            false,
        ),
        FrameCodec::Vp8 => run(Vp8Depacketizer::default(), packets)?,
        FrameCodec::H264 => run(H264Depacketizer::default(), packets)?,
    };
    (!data.is_empty()).then_some((data, key))
}

fn run(
    mut depack: impl Depacketizer,
    packets: vec_deque::Iter<'_, Entry>,
) -> Option<(Vec<u8>, bool)> {
    let size: usize = packets.clone().map(|e| e.payload.len()).sum();
    let mut data = Vec::with_capacity(depack.out_size_hint(size).unwrap_or(size));
    let mut extra = CodecExtra::None;
    for e in packets {
        depack.depacketize(&e.payload, &mut data, &mut extra).ok()?;
    }
    let key = match extra {
        CodecExtra::Vp8(e) => e.is_keyframe,
        CodecExtra::H264(e) => e.is_keyframe,
        _ => false,
    };
    Some((data, key))
}

#[cfg(test)]
mod tests;
