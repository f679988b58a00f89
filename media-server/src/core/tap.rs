//! Copies of published frames for whoever listens to a room (the recorder).

use std::collections::VecDeque;

use kefu_proto::{Codec, RoomId, SenderClock, TapFrame};
use str0m::format::Codec as RtcCodec;

use super::Sfu;
use super::forward::Frame;

/// Tapped frames waiting for the driver, at most; beyond that the recorder is stuck
/// and frames are dropped here rather than growing memory.
const MAX_TAPPED: usize = 4096;

impl Sfu {
    pub(super) fn tap_frame(&mut self, from: usize, data: &Frame) {
        let room = &self.participants[from].room;
        let Some(parties) = self.taps.get(room) else {
            return;
        };
        let id = &self.participants[from].id;
        let Some(side) = parties
            .iter()
            .find(|p| &p.participant == id)
            .map(|p| p.side)
        else {
            return;
        };
        let codec = match data.codec {
            RtcCodec::Opus => Codec::Opus,
            RtcCodec::Vp8 => Codec::Vp8,
            RtcCodec::H264 => Codec::H264,
            _ => return,
        };
        let frame = TapFrame {
            side,
            codec,
            rtp_time: data.rtp_time,
            clock_rate: data.clock_rate,
            arrival: data.arrival,
            sender_clock: data.sender_info.map(|sr| SenderClock {
                ntp_time: sr.ntp_time,
                rtp_time: sr.rtp_time.numer(),
            }),
            contiguous: data.contiguous,
            keyframe: data.keyframe,
            data: data.data.clone(),
        };
        let room = room.clone();
        push_bounded(&mut self.tapped, (room, frame));
    }
}

fn push_bounded(queue: &mut VecDeque<(RoomId, TapFrame)>, item: (RoomId, TapFrame)) {
    if queue.len() >= MAX_TAPPED {
        queue.pop_front();
    }
    queue.push_back(item);
}
