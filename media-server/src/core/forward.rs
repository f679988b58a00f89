//! Forwarding at the RTP level: a publisher's packet goes out to the other party
//! as a packet (str0m's RTP mode), renumbered per subscriber ([`OutStream`]), with
//! the header extensions chosen here. Nothing is depacketized unless someone needs
//! frames of that stream: the recorder's tap, or the beauty pipeline.
//!
//! str0m keeps each sent video packet in a bounded retransmission buffer (its send
//! buffer, 1000 packets) and answers the subscriber's NACKs from it; keyframe
//! requests and bandwidth estimates are routed in `mod.rs` as before.

use std::sync::Arc;
use std::time::{Duration, Instant};

use str0m::format::{Codec as RtcCodec, PayloadParams};
use str0m::media::{Frequency, KeyframeRequestKind, MediaKind, MediaTime, Mid, Pt};
use str0m::rtp::rtcp::SenderInfo;
use str0m::rtp::{ExtensionValues, RtpPacket, RtpWrite};

use super::Sfu;
use super::out_stream::Source;
use super::participant::{Inbound, out_index};
use super::stats::DropReason;
use crate::depacketize::{AssembledFrame, FrameAssembler, FrameCodec, RtpIn};
use crate::pipeline::VideoCodec;

/// Streams remembered per publisher: audio and video, and room for a change of SSRC.
pub(super) const MAX_INBOUND_STREAMS: usize = 4;

/// A whole frame of a published stream, for the consumers that need one.
#[derive(Debug)]
pub(super) struct Frame {
    pub codec: RtcCodec,
    pub clock_rate: u32,
    /// Extended RTP time in `clock_rate` ticks.
    pub rtp_time: u64,
    pub arrival: Instant,
    pub sender_info: Option<SenderInfo>,
    pub contiguous: bool,
    pub keyframe: bool,
    pub data: Arc<[u8]>,
}

impl Frame {
    pub fn time(&self) -> MediaTime {
        MediaTime::new(
            self.rtp_time,
            Frequency::new(self.clock_rate).unwrap_or(Frequency::NINETY_KHZ),
        )
    }
}

/// A frame kefu made (the beauty pipeline's output, a black frame), to be packetized.
#[derive(Debug, Clone, Copy)]
pub(super) struct OwnFrame<'a> {
    pub codec: VideoCodec,
    /// The subscriber's payload type for `codec`.
    pub pt: Pt,
    /// RTP time, 90 kHz.
    pub ticks: u64,
    pub data: &'a [u8],
    /// Through str0m's pacer (`Some(true)`: our own encoder's bursts), at once
    /// (`Some(false)`), or as the line goes now (`None`).
    pub paced: Option<bool>,
}

/// What the core knows of a received packet's stream.
#[derive(Debug, Clone, Copy)]
struct StreamInfo {
    kind: MediaKind,
    params: PayloadParams,
}

impl Sfu {
    /// Forwards one RTP packet `from` published to the others of its room, and hands
    /// its frames to whoever needs frames of it.
    pub(super) fn forward(&mut self, now: Instant, from: usize, packet: RtpPacket) {
        let Some(info) = self.stream_info(from, &packet) else {
            self.stats.count_drop(DropReason::NotNegotiated, 1);
            return;
        };
        let video = info.kind == MediaKind::Video;
        if video {
            self.note_video(from, &packet, info.params, now);
        }
        let beauty_output = self.beauty_takes(from, info.kind, info.params);
        let tapped = self.is_tapped(from);
        if tapped || beauty_output.is_some() {
            self.assemble(now, from, &packet, info, tapped, beauty_output);
        }
        // Filtered video is withheld at the pipeline's output instead: the pipeline
        // keeps decoding, so moderation keeps seeing the agent (and its encoder
        // makes the keyframe a restore waits for).
        if beauty_output.is_some() {
            return;
        }
        if video && self.withholds(from, info.params, &packet.payload) {
            return;
        }
        // Asked of every subscriber of this video while the publisher's uplink is lossy.
        let hold = if video {
            self.participants[from].playout.hold(now)
        } else {
            None
        };
        let room = self.room_of[from];
        let mut delivered = false;
        for k in 0..self.room_members[room].len() {
            let to = self.room_members[room][k];
            if to == from || !self.participants[to].connected {
                continue;
            }
            match self.write_forwarded(now, to, &packet, info, hold) {
                Ok(()) => {
                    delivered = true;
                    self.stats.packets_forwarded += 1;
                    if packet.header.marker || !video {
                        self.stats.frames_forwarded += 1;
                    }
                }
                Err(reason) => self.stats.count_drop(reason, 1),
            }
        }
        if !delivered && !self.has_connected_peer(from) {
            self.stats.count_drop(DropReason::NoSubscriber, 1);
        }
    }

    /// The kind and codec of `packet`'s stream, learned once per SSRC and payload type.
    fn stream_info(&mut self, from: usize, packet: &RtpPacket) -> Option<StreamInfo> {
        let p = &mut self.participants[from];
        let ssrc = packet.header.ssrc;
        let pt = packet.header.payload_type;
        let at = match p.inbound.iter().position(|s| s.ssrc == ssrc) {
            Some(at) => at,
            None => {
                let mid = p.rtc.direct_api().stream_rx(&ssrc)?.mid();
                let kind = p.kind_of(mid)?;
                // A peer that keeps changing SSRCs must not grow this (each stream may
                // hold an assembler): the oldest of the same kind is forgotten (the
                // stream the new one replaces), else the oldest.
                if p.inbound.len() >= MAX_INBOUND_STREAMS {
                    let oldest = p.inbound.iter().position(|s| s.kind == kind).unwrap_or(0);
                    p.inbound.remove(oldest);
                }
                p.inbound.push(Inbound {
                    ssrc,
                    kind,
                    params: None,
                    assembler: None,
                });
                p.inbound.len() - 1
            }
        };
        let stream = &mut p.inbound[at];
        let params = match stream.params {
            Some((known, params)) if known == pt => params,
            _ => {
                let params = *p.rtc.codec_config().find(|c| c.pt() == pt)?;
                let stream = &mut p.inbound[at];
                stream.params = Some((pt, params));
                params
            }
        };
        let kind = p.inbound[at].kind;
        Some(StreamInfo { kind, params })
    }

    /// Whether `from`'s room is recorded (its frames go to the tap).
    fn is_tapped(&self, from: usize) -> bool {
        if self.taps.is_empty() {
            return false;
        }
        let p = &self.participants[from];
        self.taps
            .get(&p.room)
            .is_some_and(|parties| parties.iter().any(|t| t.participant == p.id))
    }

    /// Depacketizes `packet` into its stream's frames and hands out the whole ones.
    fn assemble(
        &mut self,
        now: Instant,
        from: usize,
        packet: &RtpPacket,
        info: StreamInfo,
        tapped: bool,
        beauty_output: Option<VideoCodec>,
    ) {
        let Some(codec) = frame_codec(info.params.spec().codec) else {
            return;
        };
        let p = &mut self.participants[from];
        let Some(stream) = p.inbound.iter_mut().find(|s| s.ssrc == packet.header.ssrc) else {
            return;
        };
        let assembler = match &mut stream.assembler {
            Some(a) if a.codec() == codec => a,
            slot => slot.insert(FrameAssembler::new(codec)),
        };
        let mut frames: Vec<AssembledFrame> = Vec::new();
        assembler.push(
            RtpIn {
                seq: *packet.seq_no,
                rtp_time: packet.time.numer(),
                marker: packet.header.marker,
                payload: &packet.payload,
                arrival: packet.timestamp,
            },
            &mut frames,
        );
        let clock_rate = info.params.spec().clock_rate.get();
        for assembled in frames {
            let frame = Frame {
                codec: info.params.spec().codec,
                clock_rate,
                rtp_time: assembled.rtp_time,
                arrival: assembled.arrival,
                sender_info: packet.last_sender_info,
                contiguous: assembled.contiguous,
                keyframe: assembled.keyframe,
                data: assembled.data,
            };
            if info.kind == MediaKind::Video && !frame.contiguous {
                // Loss the NACKs could not repair: the publisher must send a keyframe.
                self.participants[from].request_keyframe(now, KeyframeRequestKind::Fir);
            }
            if tapped {
                self.tap_frame(from, &frame);
            }
            if let Some(output) = beauty_output {
                self.send_to_pipeline(from, &frame, output);
            }
        }
    }

    /// Writes `packet` to subscriber `to`, renumbered for it; video carries the
    /// minimum playout delay its publisher's uplink asks for (`hold`), or its release.
    fn write_forwarded(
        &mut self,
        now: Instant,
        to: usize,
        packet: &RtpPacket,
        info: StreamInfo,
        hold: Option<Duration>,
    ) -> Result<(), DropReason> {
        let p = &mut self.participants[to];
        let mid = p.sending_line(info.kind).ok_or(DropReason::NotNegotiated)?;
        let slot = out_index(info.kind);
        let ssrc = packet.header.ssrc;
        let in_pt = packet.header.payload_type;
        let pt = match p.out[slot].pt_cache {
            Some((s, known, out)) if s == ssrc && known == in_pt => out,
            _ => {
                let out = negotiated_pt(&mut p.rtc, mid, info.params);
                p.out[slot].pt_cache = Some((ssrc, in_pt, out));
                out
            }
        };
        let pt = pt.ok_or(DropReason::NotNegotiated)?;
        let clock_rate = info.params.spec().clock_rate.get();
        let (seq, ts) = p.out[slot]
            .map(
                Source::Forwarded(ssrc),
                *packet.seq_no,
                packet.header.timestamp,
                clock_rate,
                packet.timestamp,
            )
            .ok_or(DropReason::Late)?;
        let playout = if info.kind == MediaKind::Video {
            p.out[slot].playout.next(hold, now)
        } else {
            None
        };
        let unpaced_known = p.out[slot].unpaced == Some(true);
        p.out[slot].unpaced = Some(true);
        let mut api = p.rtc.direct_api();
        let stream = api
            .stream_tx_by_mid(mid, None)
            .ok_or(DropReason::NotNegotiated)?;
        if !unpaced_known {
            // Forwarded media goes out as it came: the publisher already paced it, and
            // holding it back costs delay and a wake-up per packet. TWCC, the
            // estimate and probing go on.
            stream.set_unpaced(true);
        }
        let write = RtpWrite::new(pt, seq.into(), ts, packet.timestamp, packet.payload.clone())
            .marker(packet.header.marker)
            .ext_vals(forwarded_extensions(&packet.header.ext_vals, playout))
            .nackable(info.kind == MediaKind::Video);
        stream.write_rtp(write);
        Ok(())
    }

    /// Writes a frame kefu made to `to`'s video line. Returns whether it was written.
    pub(super) fn write_own_frame(&mut self, to: usize, frame: OwnFrame<'_>, now: Instant) -> bool {
        let OwnFrame {
            codec,
            pt,
            ticks,
            data,
            paced,
        } = frame;
        let p = &mut self.participants[to];
        let Some(mid) = p.sending_line(MediaKind::Video) else {
            return false;
        };
        if !p.rtc.is_alive() {
            return false;
        }
        let slot = out_index(MediaKind::Video);
        let packets = p.out[slot].packetize_own(codec, data);
        let mut numbered = Vec::with_capacity(packets.len());
        for own in packets {
            if let Some((seq, ts)) =
                p.out[slot].map(Source::Own, own.seq, ticks as u32, 90_000, now)
            {
                numbered.push((seq, ts, own));
            }
        }
        // A release still due after a hold reaches the subscriber on these frames too.
        let playout = playout_extensions(p.out[slot].playout.next(None, now));
        let change_pacing = paced.filter(|&paced| p.out[slot].unpaced != Some(!paced));
        if let Some(paced) = change_pacing {
            p.out[slot].unpaced = Some(!paced);
        }
        let mut api = p.rtc.direct_api();
        let Some(stream) = api.stream_tx_by_mid(mid, None) else {
            return false;
        };
        if let Some(paced) = change_pacing {
            stream.set_unpaced(!paced);
        }
        let written = !numbered.is_empty();
        for (seq, ts, own) in numbered {
            let write = RtpWrite::new(pt, seq.into(), ts, now, own.payload)
                .marker(own.marker)
                .ext_vals(playout.clone())
                .nackable(true);
            stream.write_rtp(write);
        }
        written
    }
}

/// The header extensions a forwarded packet keeps: what describes the media itself.
/// The transport ones (transport-wide sequence number, send time, MID/RID) are the
/// subscriber's connection's, and str0m writes them itself. The playout delay is the
/// SFU's own (see `playout.rs`), never the publisher's.
fn forwarded_extensions(
    from: &ExtensionValues,
    playout: Option<(Duration, Duration)>,
) -> ExtensionValues {
    ExtensionValues {
        audio_level: from.audio_level,
        voice_activity: from.voice_activity,
        video_orientation: from.video_orientation,
        video_content_type: from.video_content_type,
        ..playout_extensions(playout)
    }
}

/// The playout-delay extension for a (minimum, maximum) pair; nothing else set.
fn playout_extensions(playout: Option<(Duration, Duration)>) -> ExtensionValues {
    // The extension counts in 10 ms steps in 12 bits; round up, never ask for less,
    // and cap at its largest value (str0m masks what is larger, which would wrap).
    let hundredths = |d: Duration| {
        let steps = u64::try_from(d.as_millis().div_ceil(10)).unwrap_or(u64::MAX);
        MediaTime::from_hundredths(steps.min(0xfff))
    };
    ExtensionValues {
        play_delay_min: playout.map(|(min, _)| hundredths(min)),
        play_delay_max: playout.map(|(_, max)| hundredths(max)),
        ..ExtensionValues::default()
    }
}

/// The assembler codec for a negotiated codec; `None` for what kefu does not take.
fn frame_codec(codec: RtcCodec) -> Option<FrameCodec> {
    match codec {
        RtcCodec::Opus => Some(FrameCodec::Opus),
        RtcCodec::Vp8 => Some(FrameCodec::Vp8),
        RtcCodec::H264 => Some(FrameCodec::H264),
        _ => None,
    }
}

/// The subscriber's payload type for `params` on `mid`, if that line negotiated it.
///
/// The codec config holds the whole session's codecs; one the subscriber did not
/// accept on this line would be "written" and silently lost.
pub(super) fn negotiated_pt(rtc: &mut str0m::Rtc, mid: Mid, params: PayloadParams) -> Option<Pt> {
    let pt = rtc.codec_config().match_params(params)?.pt();
    rtc.media(mid)?.remote_pts().contains(&pt).then_some(pt)
}

/// Whether an RTP payload of `codec` starts a key frame: a VP8 partition start whose
/// frame tag says key frame, or H.264 carrying an IDR slice or a sequence parameter
/// set (alone, in a STAP-A, or as the start of an FU-A).
pub(super) fn starts_keyframe(codec: RtcCodec, payload: &[u8]) -> bool {
    match codec {
        RtcCodec::Vp8 => vp8_starts_keyframe(payload),
        RtcCodec::H264 => h264_has_keyframe(payload),
        _ => false,
    }
}

/// RFC 7741 payload descriptor, then the VP8 frame tag's inverse key-frame bit.
fn vp8_starts_keyframe(payload: &[u8]) -> bool {
    let Some(&first) = payload.first() else {
        return false;
    };
    let start_of_partition = first & 0x10 != 0;
    let partition_id = first & 0x0f;
    if !start_of_partition || partition_id != 0 {
        return false;
    }
    let mut at = 1;
    if first & 0x80 != 0 {
        let Some(&ext) = payload.get(1) else {
            return false;
        };
        at = 2;
        if ext & 0x80 != 0 {
            // Picture ID: one or two bytes.
            let Some(&pid) = payload.get(at) else {
                return false;
            };
            at += if pid & 0x80 != 0 { 2 } else { 1 };
        }
        if ext & 0x40 != 0 {
            at += 1; // TL0PICIDX
        }
        if ext & 0x30 != 0 {
            at += 1; // TID / KEYIDX
        }
    }
    payload.get(at).is_some_and(|tag| tag & 0x01 == 0)
}

fn h264_has_keyframe(payload: &[u8]) -> bool {
    let Some(&header) = payload.first() else {
        return false;
    };
    let is_key = |nal_type: u8| nal_type == 5 || nal_type == 7;
    match header & 0x1f {
        // STAP-A: 16-bit sizes, each followed by a NAL unit.
        24 => {
            let mut at = 1;
            while let (Some(&hi), Some(&lo)) = (payload.get(at), payload.get(at + 1)) {
                let size = usize::from(u16::from_be_bytes([hi, lo]));
                if payload.get(at + 2).is_some_and(|nal| is_key(nal & 0x1f)) {
                    return true;
                }
                at += 2 + size;
            }
            false
        }
        // FU-A: the start fragment names the NAL unit's type.
        28 => payload
            .get(1)
            .is_some_and(|fu| fu & 0x80 != 0 && is_key(fu & 0x1f)),
        nal_type => is_key(nal_type),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn vp8_key_frames_are_told_from_their_first_packet() {
        // S bit, partition 0, no extensions, then a frame tag with the key bit clear.
        assert!(vp8_starts_keyframe(&[0x10, 0x00, 0x00, 0x00]));
        assert!(
            !vp8_starts_keyframe(&[0x10, 0x01, 0x00, 0x00]),
            "a delta frame"
        );
        assert!(!vp8_starts_keyframe(&[0x00, 0x00]), "not a partition start");
        // X bit with a two-byte picture ID.
        assert!(vp8_starts_keyframe(&[0x90, 0x80, 0x81, 0x23, 0x00]));
        assert!(!vp8_starts_keyframe(&[0x90, 0x80, 0x81]), "cut short");
        assert!(!vp8_starts_keyframe(&[]));
    }

    #[test]
    fn h264_key_frames_are_found_alone_aggregated_and_fragmented() {
        assert!(h264_has_keyframe(&[0x65, 0x88]), "IDR slice");
        assert!(!h264_has_keyframe(&[0x41, 0x9a]), "non-IDR slice");
        // STAP-A with SPS.
        assert!(h264_has_keyframe(&[
            0x78, 0x00, 0x02, 0x67, 0x42, 0x00, 0x01, 0x68
        ]));
        // STAP-A whose sizes run past the end.
        assert!(!h264_has_keyframe(&[0x78, 0xff, 0xff, 0x41]));
        // FU-A start of an IDR, and a middle fragment of one.
        assert!(h264_has_keyframe(&[0x7c, 0x85, 0x00]));
        assert!(!h264_has_keyframe(&[0x7c, 0x05, 0x00]));
        assert!(!h264_has_keyframe(&[]));
    }

    #[test]
    fn the_playout_delay_is_rounded_up_to_10_ms_and_capped_at_the_extensions_range() {
        let ms = Duration::from_millis;
        let ext = playout_extensions(Some((ms(263), Duration::from_secs(3600))));
        assert_eq!(ext.play_delay_min, Some(MediaTime::from_hundredths(27)));
        assert_eq!(ext.play_delay_max, Some(MediaTime::from_hundredths(0xfff)));
        assert_eq!(playout_extensions(None).play_delay_min, None);
    }
}
