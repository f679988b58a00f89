//! Rooms whose agent video goes through the beauty pipeline.
//!
//! With beauty on, the agent's video frames are not written to the customer: they
//! leave the core as [`SfuOutput::Beautify`] for the pipeline, and what the pipeline
//! encodes comes back through [`Sfu::write_processed`]. The customer's keyframe
//! requests go to our encoder ([`SfuOutput::PipelineKeyframe`]), not to the agent.
//! Audio, and everything with beauty off, is forwarded as before.
//!
//! A preview room ([`BeautyOutput::Loopback`]) has the agent alone: what the pipeline
//! encodes goes back to the agent, so the settings dialog shows exactly what a
//! customer would get.

use std::time::Instant;

use str0m::bwe::Bitrate;
use str0m::format::{Codec as RtcCodec, PayloadParams};
use str0m::media::{Frequency, KeyframeRequestKind, MediaKind, Pt};

use super::forward::{Frame, OwnFrame};
use super::{Sfu, SfuOutput};
use crate::pipeline::{InputFrame, OutputFrame, VideoCodec};
use kefu_proto::{ParticipantId, RoomId};

/// The encoder's rate before the first estimate, and what BWE starts from.
pub const START_BITRATE_BPS: u32 = 1_500_000;
/// What BWE probes for and the encoder's ceiling: plenty for 720p30 of a face.
pub const MAX_BITRATE_BPS: u32 = 2_500_000;
/// The encoder's floor: below it VP8/H.264 at 720p is mush; the pipeline keeps it and
/// lets the network drop what it must.
pub const MIN_BITRATE_BPS: u32 = 150_000;
/// Audio (Opus ≈ 40 kbit/s) plus RTP/UDP/SRTP headers come out of the same estimate.
const AUDIO_AND_OVERHEAD_BPS: u64 = 60_000;

/// The video rate for a bandwidth estimate towards the customer: 90 % of what is left
/// after audio and headers (the estimate is a guess; leave room for it to be wrong).
pub fn encoder_bitrate(estimate_bps: u64) -> u32 {
    let video = estimate_bps.saturating_sub(AUDIO_AND_OVERHEAD_BPS) * 9 / 10;
    video.clamp(MIN_BITRATE_BPS.into(), MAX_BITRATE_BPS.into()) as u32
}

/// Who receives the filtered video.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BeautyOutput {
    /// The other participant of the room (the customer).
    Peer,
    /// The agent itself: the settings dialog's preview.
    Loopback,
}

/// The agent whose video a room filters.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct BeautyRoute {
    pub agent: ParticipantId,
    pub output: BeautyOutput,
    /// What the pipeline encodes for the customer, worked out on the first frame
    /// (not on every one); forgotten when somebody joins the room.
    pub choice: Option<OutputChoice>,
    /// The encoder rate last handed to the pipeline.
    pub last_bitrate: Option<u32>,
}

/// The customer's codec for agent frames of codec `input`, and its payload type —
/// the one the agent's own frames would have been forwarded with (same codec, same
/// H.264 profile and packetization mode) when the codecs match.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct OutputChoice {
    input: VideoCodec,
    output: VideoCodec,
    pt: Option<Pt>,
}

impl Sfu {
    /// Sends `agent`'s video in `room` through the pipeline (`true`) or forwards it
    /// untouched (`false`, no decode or encode cost).
    pub fn set_beauty(&mut self, now: Instant, room: RoomId, agent: ParticipantId, on: bool) {
        let output = on.then_some(BeautyOutput::Peer);
        self.route_beauty(now, room, agent, output);
    }

    /// Sends `agent`'s video in `room` through the pipeline to `output`, or (None)
    /// forwards it untouched.
    pub fn route_beauty(
        &mut self,
        now: Instant,
        room: RoomId,
        agent: ParticipantId,
        output: Option<BeautyOutput>,
    ) {
        match output {
            Some(output) => {
                let route = BeautyRoute {
                    agent: agent.clone(),
                    output,
                    choice: None,
                    last_bitrate: None,
                };
                self.beauty.insert(room.clone(), route);
                // A new pipeline starts from what is known of the receiver's bandwidth
                // (BWE reports changes only).
                if let Some(idx) = self.receiver_index(&room)
                    && let Some(estimate) = self.participants[idx].egress_estimate
                {
                    self.bitrate_to_pipeline(idx, estimate);
                }
            }
            None => {
                self.beauty.remove(&room);
            }
        }
        // Either way the receiver's decoder needs a fresh keyframe from the new source.
        if let Some(p) = self
            .participants
            .iter_mut()
            .find(|p| p.room == room && p.id == agent)
        {
            p.request_keyframe(now, KeyframeRequestKind::Pli);
        }
    }

    /// The participant that receives `room`'s filtered video, if connected.
    fn receiver_index(&self, room: &RoomId) -> Option<usize> {
        let route = self.beauty.get(room)?;
        self.participants.iter().position(|p| {
            &p.room == room
                && p.connected
                && match route.output {
                    BeautyOutput::Peer => p.id != route.agent,
                    BeautyOutput::Loopback => p.id == route.agent,
                }
        })
    }

    /// Whether `idx` is who receives its room's filtered video: its keyframe requests
    /// and bandwidth estimates concern our encoder.
    pub(super) fn is_beauty_receiver(&self, idx: usize) -> bool {
        let p = &self.participants[idx];
        self.beauty
            .get(&p.room)
            .is_some_and(|route| match route.output {
                BeautyOutput::Peer => route.agent != p.id,
                BeautyOutput::Loopback => route.agent == p.id,
            })
    }

    /// Forgets `room`'s pipeline route (the call ended).
    pub fn clear_beauty(&mut self, room: &RoomId) {
        self.beauty.remove(room);
    }

    /// When `from` publishes video in a beauty room: the codec the pipeline encodes
    /// its frames in for the other party. `Some` means its packets are not forwarded
    /// as they are; their frames go to the pipeline ([`Self::send_to_pipeline`]).
    pub(super) fn beauty_takes(
        &mut self,
        from: usize,
        kind: MediaKind,
        params: PayloadParams,
    ) -> Option<VideoCodec> {
        if kind != MediaKind::Video || self.beauty.is_empty() {
            return None;
        }
        let room = &self.participants[from].room;
        let route = self.beauty.get(room)?;
        if self.participants[from].id != route.agent {
            return None;
        }
        let codec = match params.spec().codec {
            RtcCodec::Vp8 => VideoCodec::Vp8,
            RtcCodec::H264 => VideoCodec::H264,
            _ => return None,
        };
        match route.choice {
            Some(c) if c.input == codec => Some(c.output),
            _ => {
                let room = room.clone();
                let choice = self.choose_output(&room, codec, params)?;
                if let Some(route) = self.beauty.get_mut(&room) {
                    route.choice = Some(choice);
                }
                Some(choice.output)
            }
        }
    }

    /// Hands one of `from`'s video frames to its room's pipeline, to be encoded in
    /// `output`.
    pub(super) fn send_to_pipeline(&mut self, from: usize, data: &Frame, output: VideoCodec) {
        let codec = match data.codec {
            RtcCodec::Vp8 => VideoCodec::Vp8,
            RtcCodec::H264 => VideoCodec::H264,
            _ => return,
        };
        let frame = InputFrame {
            codec,
            rtp_time: data.time().rebase(Frequency::NINETY_KHZ).numer(),
            keyframe: data.keyframe,
            contiguous: data.contiguous,
            data: data.data.clone(),
        };
        self.stats.frames_to_pipeline += 1;
        self.pipeline_out.push_back(SfuOutput::Beautify {
            room: self.participants[from].room.clone(),
            frame,
            output,
        });
    }

    /// Encode for the customer in the codec it negotiated (the agent's if both), on the
    /// payload type the agent's own frames would have been forwarded with.
    fn choose_output(
        &mut self,
        room: &RoomId,
        input: VideoCodec,
        params: PayloadParams,
    ) -> Option<OutputChoice> {
        let output = self.customer_codec(room, input)?;
        let pt = if output == input {
            self.receiver_index(room).and_then(|i| {
                let to = &mut self.participants[i];
                let mid = to.sending_line(MediaKind::Video)?;
                super::forward::negotiated_pt(&mut to.rtc, mid, params)
            })
        } else {
            None
        };
        Some(OutputChoice { input, output, pt })
    }

    /// Somebody joined `room`: payload types may differ now, choose again.
    pub(super) fn forget_output_choice(&mut self, room: &RoomId) {
        if let Some(route) = self.beauty.get_mut(room) {
            route.choice = None;
        }
    }

    /// The video codec the receiver of `room`'s filtered video can take, preferring
    /// `wanted`.
    fn customer_codec(&mut self, room: &RoomId, wanted: VideoCodec) -> Option<VideoCodec> {
        let idx = self.receiver_index(room)?;
        let to = &mut self.participants[idx];
        let mid = to.sending_line(MediaKind::Video)?;
        let media = to.rtc.media(mid)?;
        let remote = media.remote_pts().to_vec();
        let codecs: Vec<VideoCodec> = to
            .rtc
            .codec_config()
            .params()
            .iter()
            .filter(|p| remote.contains(&p.pt()))
            .filter_map(|p| match p.spec().codec {
                RtcCodec::Vp8 => Some(VideoCodec::Vp8),
                RtcCodec::H264 => Some(VideoCodec::H264),
                _ => None,
            })
            .collect();
        if codecs.contains(&wanted) {
            Some(wanted)
        } else {
            codecs.first().copied()
        }
    }

    /// Writes a frame the pipeline encoded to the customer of `room`.
    pub fn write_processed(
        &mut self,
        now: Instant,
        room: &RoomId,
        codec: VideoCodec,
        frame: OutputFrame,
    ) {
        let Some(route) = self.beauty.get(room) else {
            return;
        };
        if let Some(agent) = self.participants.iter_mut().find(|p| p.id == route.agent)
            && agent.blank_next.is_some()
        {
            // Moderation withholds the agent's picture; a restore shows it again from
            // our encoder's next keyframe.
            if !(agent.unblank_on_keyframe && frame.keyframe) {
                return;
            }
            agent.blank_next = None;
            agent.unblank_on_keyframe = false;
        }
        // The payload type chosen with the first frame (checked against the receiver's
        // negotiated ones then); worked out here only when there was none.
        let known = route
            .choice
            .filter(|c| c.output == codec)
            .and_then(|c| c.pt);
        let Some(idx) = self.receiver_index(room) else {
            return;
        };
        let to = &mut self.participants[idx];
        let Some(mid) = to.sending_line(MediaKind::Video) else {
            return;
        };
        let Some(pt) = known.or_else(|| fallback_pt(to, mid, codec)) else {
            return;
        };
        if known.is_none()
            && let Some(c) = self.beauty.get_mut(room).and_then(|r| r.choice.as_mut())
            && c.output == codec
        {
            c.pt = Some(pt);
        }
        // Our own encoder's bursts go through str0m's pacer, at the estimate the
        // encoder also follows.
        let own = OwnFrame {
            codec,
            pt,
            ticks: frame.rtp_time,
            data: &frame.data,
            paced: Some(true),
        };
        if self.write_own_frame(idx, own, now) {
            self.stats.frames_forwarded += 1;
        } else {
            tracing::debug!("processed frame not written");
        }
        self.drain(now);
    }

    /// The pipeline could not use what the agent sent: ask the agent for a keyframe.
    pub fn request_agent_keyframe(&mut self, now: Instant, room: &RoomId) {
        let Some(route) = self.beauty.get(room) else {
            return;
        };
        let agent = route.agent.clone();
        if let Some(p) = self.participants.iter_mut().find(|p| p.id == agent) {
            p.request_keyframe(now, KeyframeRequestKind::Pli);
        }
        self.drain(now);
    }

    /// A bandwidth estimate for what we send to `idx`: for the customer of a beauty
    /// room it sets the pipeline's encoder rate (the pipeline ignores small moves).
    pub(super) fn bitrate_to_pipeline(&mut self, idx: usize, estimate: Bitrate) {
        self.participants[idx].egress_estimate = Some(estimate);
        if !self.is_beauty_receiver(idx) {
            return;
        }
        let p = &self.participants[idx];
        let Some(route) = self.beauty.get_mut(&p.room) else {
            return;
        };
        let bps = encoder_bitrate(estimate.as_u64());
        // Estimates wobble; a move under 5 % is not worth an encoder reconfiguration.
        if route
            .last_bitrate
            .is_some_and(|last| (f64::from(bps) / f64::from(last) - 1.0).abs() < 0.05)
        {
            return;
        }
        route.last_bitrate = Some(bps);
        self.pipeline_out.push_back(SfuOutput::PipelineBitrate {
            room: p.room.clone(),
            bps,
        });
    }

    /// A keyframe request from `idx`: for the customer of a beauty room it goes to
    /// our encoder. Returns whether it was taken.
    pub(super) fn keyframe_to_pipeline(&mut self, idx: usize) -> bool {
        if !self.is_beauty_receiver(idx) {
            return false;
        }
        self.pipeline_out.push_back(SfuOutput::PipelineKeyframe {
            room: self.participants[idx].room.clone(),
        });
        true
    }
}

/// The customer's first payload type for `codec` on `mid`, packetization mode 1 first
/// for H.264 (frames bigger than a packet need it).
pub(super) fn fallback_pt(
    to: &mut super::participant::Participant,
    mid: str0m::media::Mid,
    codec: VideoCodec,
) -> Option<Pt> {
    let wanted = match codec {
        VideoCodec::Vp8 => RtcCodec::Vp8,
        VideoCodec::H264 => RtcCodec::H264,
    };
    let remote = to.rtc.media(mid)?.remote_pts().to_vec();
    let mut candidates: Vec<(bool, Pt)> = to
        .rtc
        .codec_config()
        .params()
        .iter()
        .filter(|p| p.spec().codec == wanted && remote.contains(&p.pt()))
        .map(|p| (p.spec().format.packetization_mode != Some(1), p.pt()))
        .collect();
    candidates.sort();
    candidates.first().map(|(_, pt)| *pt)
}
