//! What the SFU sends one subscriber on one media line: RTP packets from whichever
//! source feeds it now (a publisher's stream, or frames kefu made itself: the beauty
//! pipeline's output, black frames), renumbered so the subscriber sees one continuous
//! stream whatever the source did (a new SSRC after a rejoin, a switch to the
//! pipeline and back, frames withheld).
//!
//! Pure state: the core calls [`OutStream::map`] per packet and writes the result
//! with str0m's `StreamTx::write_rtp`.

use std::time::Instant;

use str0m::media::Pt;
use str0m::rtp::Ssrc;
use str0m::unversioned::{H264Packetizer, Packetizer, Vp8Packetizer};

use super::playout::PlayoutAsked;
use crate::pipeline::VideoCodec;

/// Payload bytes per packet of a frame kefu packetizes itself: room for the SRTP tag,
/// the RTP header and its extensions under a 1200-byte datagram.
pub(crate) const OWN_PACKET_PAYLOAD: usize = 1100;

/// Where the packets of an [`OutStream`] come from right now.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Source {
    /// A publisher's stream, as it arrives (sequence numbers and timestamps its own).
    Forwarded(Ssrc),
    /// Frames kefu packetizes itself (sequence numbers from [`OutStream::own_seq`]).
    Own,
}

/// The renumbering of one subscriber's media line.
#[derive(Debug, Default)]
pub(crate) struct OutStream {
    source: Option<Source>,
    /// The current source's first packet: its sequence number, and the one it was
    /// sent with.
    first_in_seq: u64,
    first_out_seq: u64,
    /// The lowest sequence number the current source may use: below it, numbers were
    /// already given to another source's packets.
    min_out_seq: u64,
    /// `out = in + offset` (wrapping) for the current source's timestamps.
    ts_offset: u32,
    /// The highest sequence number sent, its timestamp and when.
    last_out: Option<(u64, u32, Instant)>,
    /// The publisher's payload type last mapped, and the subscriber's for it.
    pub pt_cache: Option<(Ssrc, Pt, Option<Pt>)>,
    /// Whether str0m was told this stream's pacing yet, and how.
    pub unpaced: Option<bool>,
    /// The playout delay this line was last asked for (video; see `playout.rs`).
    pub playout: PlayoutAsked,
    own: Option<OwnPacketizer>,
}

impl OutStream {
    /// The sequence number and RTP timestamp to send a packet of `source` with, or
    /// `None` for a packet from before the current source took over.
    ///
    /// On a switch the new source continues right after the last packet sent: the
    /// next sequence number, and a timestamp advanced by the wall-clock time since
    /// (at least one tick), so the subscriber's jitter buffer sees neither a gap nor
    /// a jump.
    pub fn map(
        &mut self,
        source: Source,
        in_seq: u64,
        in_ts: u32,
        clock_rate: u32,
        now: Instant,
    ) -> Option<(u64, u32)> {
        if self.source != Some(source) {
            let (next_seq, next_ts, min_seq) = match self.last_out {
                // The first source keeps its numbering (a fresh receiver's rollover
                // counter is 0, so only the low 16 bits are kept); packets reordered
                // before its first one may still go.
                None => (in_seq & 0xffff, in_ts, 0),
                Some((seq, ts, at)) => {
                    let ticks = elapsed_ticks(at, now, clock_rate).max(1);
                    (seq + 1, ts.wrapping_add(ticks), seq + 1)
                }
            };
            self.first_in_seq = in_seq;
            self.first_out_seq = next_seq;
            self.min_out_seq = min_seq;
            self.ts_offset = next_ts.wrapping_sub(in_ts);
            self.source = Some(source);
        }
        let out_seq = match in_seq.checked_sub(self.first_in_seq) {
            Some(ahead) => self.first_out_seq + ahead,
            None => self
                .first_out_seq
                .checked_sub(self.first_in_seq - in_seq)
                .filter(|&seq| seq >= self.min_out_seq)?,
        };
        let out_ts = in_ts.wrapping_add(self.ts_offset);
        if self.last_out.is_none_or(|(seq, _, _)| out_seq > seq) {
            self.last_out = Some((out_seq, out_ts, now));
        }
        Some((out_seq, out_ts))
    }

    /// Splits a frame kefu made into RTP payloads (with the marker on the last), in
    /// `codec`, numbered as [`Source::Own`] packets. Empty when the frame cannot be
    /// packetized.
    pub fn packetize_own(&mut self, codec: VideoCodec, frame: &[u8]) -> Vec<OwnPacket> {
        let own = match &mut self.own {
            Some(own) if own.codec == codec => own,
            _ => self.own.insert(OwnPacketizer::new(codec)),
        };
        let Ok(payloads) = own.packetizer.packetize(OWN_PACKET_PAYLOAD, frame) else {
            return Vec::new();
        };
        let count = payloads.len();
        let mut packets = Vec::with_capacity(count);
        let mut previous: Option<&[u8]> = None;
        for (i, payload) in payloads.iter().enumerate() {
            let marker = own.packetizer.is_marker(payload, previous, i + 1 == count);
            own.next_seq += 1;
            packets.push(OwnPacket {
                seq: own.next_seq,
                marker,
                payload: payload.clone(),
            });
            previous = Some(payload);
        }
        packets
    }
}

/// One RTP payload of a frame kefu packetized.
#[derive(Debug)]
pub(crate) struct OwnPacket {
    pub seq: u64,
    pub marker: bool,
    pub payload: Vec<u8>,
}

#[derive(Debug)]
struct OwnPacketizer {
    codec: VideoCodec,
    packetizer: Box<dyn Packetizer + Send>,
    /// Own sequence numbers (only their continuity matters: [`OutStream::map`]
    /// renumbers them).
    next_seq: u64,
}

impl OwnPacketizer {
    fn new(codec: VideoCodec) -> Self {
        let packetizer: Box<dyn Packetizer + Send> = match codec {
            VideoCodec::Vp8 => Box::<Vp8Packetizer>::default(),
            VideoCodec::H264 => Box::<H264Packetizer>::default(),
        };
        Self {
            codec,
            packetizer,
            next_seq: 0,
        }
    }
}

/// `clock_rate` ticks in the time from `from` to `to`, truncated to 32 bits (RTP
/// timestamps wrap).
fn elapsed_ticks(from: Instant, to: Instant, clock_rate: u32) -> u32 {
    let micros = to.saturating_duration_since(from).as_micros();
    (micros * u128::from(clock_rate) / 1_000_000) as u32
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    fn source(ssrc: u32) -> Source {
        Source::Forwarded(Ssrc::from(ssrc))
    }

    #[test]
    fn the_first_source_keeps_its_numbers() {
        let mut out = OutStream::default();
        let t0 = Instant::now();
        assert_eq!(
            out.map(source(1111), 500, 9000, 90_000, t0),
            Some((500, 9000))
        );
        assert_eq!(
            out.map(source(1111), 501, 9000, 90_000, t0),
            Some((501, 9000))
        );
        // Reordered within the source: its own number.
        assert_eq!(
            out.map(source(1111), 499, 6000, 90_000, t0),
            Some((499, 6000))
        );
    }

    #[test]
    fn a_new_source_continues_the_sequence_and_the_clock() {
        let mut out = OutStream::default();
        let t0 = Instant::now();
        out.map(source(1111), 100, 1000, 90_000, t0);
        out.map(source(1111), 101, 4000, 90_000, t0);
        let t1 = t0 + Duration::from_millis(100);
        // 100 ms later another SSRC, with numbers of its own.
        assert_eq!(
            out.map(source(2222), 60_000, 7, 90_000, t1),
            Some((102, 4000 + 9000))
        );
        assert_eq!(
            out.map(source(2222), 60_001, 3007, 90_000, t1),
            Some((103, 7000 + 9000))
        );
        // source(1111) late packet of the new source from before the switch.
        assert_eq!(out.map(source(2222), 59_999, 0, 90_000, t1), None);
    }

    #[test]
    fn own_frames_fit_between_forwarded_ones() {
        let mut out = OutStream::default();
        let t0 = Instant::now();
        out.map(source(1111), 10, 0, 90_000, t0);
        let packets = out.packetize_own(VideoCodec::Vp8, &vec![0x10; 3000]);
        assert!(packets.len() >= 3, "3000 bytes take several packets");
        assert!(packets.last().is_some_and(|p| p.marker));
        assert!(packets[..packets.len() - 1].iter().all(|p| !p.marker));
        let t1 = t0 + Duration::from_millis(40);
        let seqs: Vec<u64> = packets
            .iter()
            .filter_map(|p| out.map(Source::Own, p.seq, 0, 90_000, t1))
            .map(|(seq, _)| seq)
            .collect();
        assert_eq!(seqs, (11..11 + packets.len() as u64).collect::<Vec<_>>());
        // Back to the publisher: right after the own packets.
        let next = 11 + packets.len() as u64;
        assert_eq!(
            out.map(source(1111), 20, 9000, 90_000, t1).map(|(s, _)| s),
            Some(next)
        );
    }

    #[test]
    fn timestamps_wrap_without_panicking() {
        let mut out = OutStream::default();
        let t0 = Instant::now();
        out.map(source(1111), 1, u32::MAX - 10, 90_000, t0);
        let (_, ts) = out
            .map(source(2222), 5, 0, 90_000, t0 + Duration::from_secs(1))
            .expect("the new source is taken");
        assert_eq!(ts, (u32::MAX - 10).wrapping_add(90_000));
    }
}
