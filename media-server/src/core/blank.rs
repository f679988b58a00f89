//! Publishers whose picture content moderation took away from the other party.
//!
//! A blanked publisher's video is still tapped (recorded, screened) but not forwarded
//! nor filtered for the others: they get a black keyframe instead, a few times a
//! second, continuing the publisher's RTP clock, so their decoder shows black rather
//! than freezing on the last (offending) picture. Lifting the blank asks the publisher
//! (or our encoder) for a keyframe, so the real picture returns at once.

use std::sync::Arc;
use std::time::{Duration, Instant};

use str0m::media::{Frequency, KeyframeRequestKind, MediaKind, MediaTime};
use tracing::info;

use super::{Sfu, SfuOutput};
use crate::pipeline::VideoCodec;
use kefu_proto::ParticipantId;

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
    /// participants of its room. Unknown ids are ignored.
    pub fn set_blanked(&mut self, now: Instant, publisher: &ParticipantId, on: bool) {
        let Some(idx) = self.participants.iter().position(|p| &p.id == publisher) else {
            return;
        };
        let p = &mut self.participants[idx];
        match (on, p.blank_next.is_some()) {
            (true, false) => {
                info!(participant = %p.id, "video withheld from the other party (moderation)");
                p.blank_next = Some(now);
                self.stats.blanked_publishers += 1;
            }
            (false, true) => {
                info!(participant = %p.id, "video shown to the other party again");
                p.blank_next = None;
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
            _ => return,
        }
        self.send_due_blanks(now);
        self.drain(now);
    }

    /// Whether `idx`'s video is withheld from the others.
    pub(super) fn is_blanked(&self, idx: usize) -> bool {
        self.participants[idx].blank_next.is_some()
    }

    /// Remembers where a publisher's video clock stands, so black frames continue it.
    pub(super) fn note_video_time(&mut self, idx: usize, time: MediaTime, now: Instant) {
        let ticks = time.rebase(Frequency::NINETY_KHZ).numer();
        self.participants[idx].last_video = Some((ticks, now));
    }

    /// The earliest black frame due, for the driver's next wake-up.
    pub(super) fn next_blank(&self) -> Option<Instant> {
        self.participants.iter().filter_map(|p| p.blank_next).min()
    }

    /// Sends the black frames that are due.
    pub(super) fn send_due_blanks(&mut self, now: Instant) {
        let due: Vec<usize> = (0..self.participants.len())
            .filter(|&i| self.participants[i].blank_next.is_some_and(|t| t <= now))
            .collect();
        for from in due {
            let (last_ticks, last_at) = self.participants[from].last_video.unwrap_or((0, now));
            let elapsed = now.saturating_duration_since(last_at);
            let ticks = last_ticks + (elapsed.as_micros() as u64) * 9 / 100;
            self.participants[from].last_video = Some((ticks, now));
            self.participants[from].blank_next = Some(now + BLANK_INTERVAL);
            let room = self.participants[from].room.clone();
            for to in 0..self.participants.len() {
                if to == from
                    || self.participants[to].room != room
                    || !self.participants[to].connected
                {
                    continue;
                }
                self.write_blank(to, ticks, now);
            }
        }
    }

    fn write_blank(&mut self, to: usize, ticks: u64, now: Instant) {
        let p = &mut self.participants[to];
        let Some(mid) = p.sending_line(MediaKind::Video) else {
            return;
        };
        let choice = [VideoCodec::Vp8, VideoCodec::H264]
            .into_iter()
            .find_map(|codec| {
                let frame = self.blank_frames.for_codec(codec)?;
                let pt = super::beauty::fallback_pt(p, mid, codec)?;
                Some((pt, frame))
            });
        let Some((pt, frame)) = choice else {
            return;
        };
        let Some(writer) = p.rtc.writer(mid) else {
            return;
        };
        let time = MediaTime::new(ticks, Frequency::NINETY_KHZ);
        match writer.write(pt, now, time, frame) {
            Ok(()) => self.stats.blank_frames_sent += 1,
            Err(e) => tracing::debug!("black frame refused: {e}"),
        }
    }
}
