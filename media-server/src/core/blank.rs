//! Publishers whose picture content moderation took away from the other party.
//!
//! A blanked publisher's video is still tapped (recorded, screened) but not forwarded
//! nor filtered for the others: they get a black keyframe instead, a few times a
//! second, continuing the publisher's RTP clock, so their decoder shows black rather
//! than freezing on the last (offending) picture. Lifting the blank asks the publisher
//! (or our encoder) for a keyframe and shows the picture again from that keyframe on.

use std::sync::Arc;
use std::time::{Duration, Instant};

use str0m::format::{Codec as RtcCodec, PayloadParams};
use str0m::media::{Frequency, KeyframeRequestKind, MediaKind};
use str0m::rtp::RtpPacket;
use tracing::info;

use super::{Sfu, SfuOutput};
use crate::pipeline::VideoCodec;
use kefu_proto::{ParticipantId, RoomId};

/// How often a black keyframe is sent in place of a blanked picture.
pub const BLANK_INTERVAL: Duration = Duration::from_millis(500);

/// One black keyframe per codec, encoded once by the driver (the core encodes
/// nothing). A codec without one cannot be blanked, and its video is just withheld.
#[derive(Debug, Clone, Default)]
pub struct BlankFrames {
    pub vp8: Option<Arc<[u8]>>,
    pub h264: Option<Arc<[u8]>>,
}

impl BlankFrames {
    fn for_codec(&self, codec: VideoCodec) -> Option<Arc<[u8]>> {
        match codec {
            VideoCodec::Vp8 => self.vp8.clone(),
            VideoCodec::H264 => self.h264.clone(),
        }
    }
}

impl Sfu {
    /// The black keyframes to send in place of blanked video.
    pub fn set_blank_frames(&mut self, frames: BlankFrames) {
        self.blank_frames = frames;
    }

    /// Withholds (`true`) or restores (`false`) `publisher`'s video for the other
    /// participants of its room. Restoring takes effect at the publisher's next
    /// keyframe (asked for at once), so nobody decodes frames against a picture they
    /// never got. Kept across the publisher's rejoin; unknown ids are ignored.
    pub fn set_blanked(&mut self, now: Instant, publisher: &ParticipantId, on: bool) {
        if !on {
            // Also for a publisher away this moment (between leave and rejoin).
            self.blanked.remove(publisher);
        }
        let Some(idx) = self.participants.iter().position(|p| &p.id == publisher) else {
            return;
        };
        let p = &mut self.participants[idx];
        if on {
            self.blanked.insert(p.id.clone(), p.room.clone());
            p.unblank_on_keyframe = false;
            if p.blank_next.is_none() {
                info!(participant = %p.id, "video withheld from the other party (moderation)");
                p.blank_next = Some(now);
                self.stats.blanked_publishers += 1;
            }
        } else {
            if p.blank_next.is_none() || p.unblank_on_keyframe {
                return;
            }
            info!(participant = %p.id, "video shown to the other party again at its next keyframe");
            p.unblank_on_keyframe = true;
            p.request_keyframe(now, KeyframeRequestKind::Pli);
            let room = p.room.clone();
            if self
                .beauty
                .get(&room)
                .is_some_and(|route| &route.agent == publisher)
            {
                self.pipeline_out
                    .push_back(SfuOutput::PipelineKeyframe { room });
            }
        }
        self.send_due_blanks(now);
        self.drain(now);
    }

    /// A participant (re)joined: withheld again if it was.
    pub(super) fn restore_blank(&mut self, idx: usize, now: Instant) {
        if self.blanked.contains_key(&self.participants[idx].id) {
            self.participants[idx].blank_next = Some(now);
        }
    }

    /// Forgets the withheld publishers of `room` (its call ended).
    pub(super) fn forget_blanks(&mut self, room: &RoomId) {
        self.blanked.retain(|_, r| r != room);
    }

    /// Whether `idx`'s video packet (`payload`, of codec `params`) is withheld from
    /// the others; the first packet of a keyframe after a restore ends the
    /// withholding (and it and what follows are forwarded).
    pub(super) fn withholds(&mut self, idx: usize, params: PayloadParams, payload: &[u8]) -> bool {
        let p = &mut self.participants[idx];
        if p.blank_next.is_none() {
            return false;
        }
        if p.unblank_on_keyframe && super::forward::starts_keyframe(params.spec().codec, payload) {
            p.blank_next = None;
            p.unblank_on_keyframe = false;
            return false;
        }
        true
    }

    /// Remembers where a publisher's video clock stands (so black frames continue
    /// it) and its codec.
    pub(super) fn note_video(
        &mut self,
        idx: usize,
        packet: &RtpPacket,
        params: PayloadParams,
        now: Instant,
    ) {
        let ticks = packet.time.rebase(Frequency::NINETY_KHZ).numer();
        let p = &mut self.participants[idx];
        p.last_video = Some((ticks, now));
        p.last_video_codec = match params.spec().codec {
            RtcCodec::Vp8 => Some(VideoCodec::Vp8),
            RtcCodec::H264 => Some(VideoCodec::H264),
            _ => p.last_video_codec,
        };
    }

    /// Sends the black frames that are due.
    pub(super) fn send_due_blanks(&mut self, now: Instant) {
        let due: Vec<usize> = (0..self.participants.len())
            .filter(|&i| self.participants[i].blank_next.is_some_and(|t| t <= now))
            .collect();
        for from in due {
            let p = &mut self.participants[from];
            let (last_ticks, last_at) = p.last_video.unwrap_or((0, now));
            let elapsed = now.saturating_duration_since(last_at);
            // Modular: a publisher's clock can sit near u64::MAX (str0m extends a
            // timestamp that stepped back past zero downwards), and only the low 32
            // bits go on the wire (found by the sfu_rtp fuzz target).
            let ticks = last_ticks.wrapping_add((elapsed.as_micros() as u64) * 9 / 100);
            p.last_video = Some((ticks, now));
            p.blank_next = Some(now + BLANK_INTERVAL);
            let (room, prefer) = (p.room.clone(), p.last_video_codec);
            if p.unblank_on_keyframe {
                // Still waiting for the keyframe that ends it: ask again (rate-limited),
                // of the publisher or of our encoder.
                let publisher = p.id.clone();
                p.request_keyframe(now, KeyframeRequestKind::Pli);
                if self
                    .beauty
                    .get(&room)
                    .is_some_and(|route| route.agent == publisher)
                {
                    self.pipeline_out
                        .push_back(SfuOutput::PipelineKeyframe { room: room.clone() });
                }
            }
            for to in 0..self.participants.len() {
                let peer = &self.participants[to];
                if to == from || peer.room != room || !peer.connected {
                    continue;
                }
                self.write_blank(to, prefer, ticks, now);
            }
        }
    }

    fn write_blank(&mut self, to: usize, prefer: Option<VideoCodec>, ticks: u64, now: Instant) {
        let p = &mut self.participants[to];
        let Some(mid) = p.sending_line(MediaKind::Video) else {
            return;
        };
        // The publisher's codec first: the subscriber's decoder is set up for it.
        let order = match prefer {
            Some(VideoCodec::H264) => [VideoCodec::H264, VideoCodec::Vp8],
            _ => [VideoCodec::Vp8, VideoCodec::H264],
        };
        let choice = order.into_iter().find_map(|codec| {
            let frame = self.blank_frames.for_codec(codec)?;
            let pt = super::beauty::fallback_pt(p, mid, codec)?;
            Some((codec, pt, frame))
        });
        let Some((codec, pt, frame)) = choice else {
            return;
        };
        let own = super::forward::OwnFrame {
            codec,
            pt,
            ticks,
            data: &frame,
            paced: None,
        };
        if self.write_own_frame(to, own, now) {
            self.stats.blank_frames_sent += 1;
        } else {
            tracing::debug!("black frame not written");
        }
    }
}
