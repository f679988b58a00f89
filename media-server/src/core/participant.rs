//! One participant: its peer connection and what it negotiated.

use std::time::{Duration, Instant};

use str0m::format::PayloadParams;
use str0m::media::{Direction, KeyframeRequestKind, MediaKind, Mid, Pt};
use str0m::rtp::Ssrc;
use str0m::{Input, Rtc};

use super::out_stream::OutStream;
use super::playout::PlayoutHint;
use crate::depacketize::FrameAssembler;
use kefu_proto::{ParticipantId, RoomId};

/// How often we ask a publisher for a keyframe at most, whatever the subscriber asks.
const KEYFRAME_REQUEST_MIN_INTERVAL: Duration = Duration::from_millis(300);

/// One negotiated media line, from the SFU's point of view.
#[derive(Debug, Clone, Copy)]
pub(crate) struct MediaLine {
    pub mid: Mid,
    pub kind: MediaKind,
    pub direction: Direction,
}

/// One stream this participant publishes, as the SFU learned it from its packets.
#[derive(Debug)]
pub(crate) struct Inbound {
    pub ssrc: Ssrc,
    pub kind: MediaKind,
    /// The payload type of the last packet and what it was negotiated as.
    pub params: Option<(Pt, PayloadParams)>,
    /// Frames assembled from the packets, while someone needs frames of this stream
    /// (the recorder's tap, the beauty pipeline); `None` otherwise.
    pub assembler: Option<FrameAssembler>,
}

#[derive(Debug)]
pub(crate) struct Participant {
    pub id: ParticipantId,
    pub room: RoomId,
    pub rtc: Rtc,
    pub lines: Vec<MediaLine>,
    /// Earliest time str0m wants to be woken; `None` once it is dead.
    pub next_timeout: Option<Instant>,
    pub connected: bool,
    /// The latest bandwidth estimate for what the SFU sends this participant.
    pub egress_estimate: Option<str0m::bwe::Bitrate>,
    /// The last REMB cap asked of this participant's video, bit/s.
    pub remb_sent: Option<u32>,
    /// The DTLS fingerprint of the peer connection that joined: an ICE restart must
    /// come from the same one.
    pub fingerprint: Option<String>,
    /// Since when ICE has had no working path (`None`: it has one).
    pub ice_lost_since: Option<Instant>,
    /// Moderation withholds this participant's video from the others: when the next
    /// black frame is due in its place.
    pub blank_next: Option<Instant>,
    /// Restored, but still black until the publisher's next keyframe (its frames
    /// until then reference pictures the others never got).
    pub unblank_on_keyframe: bool,
    /// The publisher's video clock (90 kHz ticks) at its last frame, and when.
    pub last_video: Option<(u64, Instant)>,
    /// The codec of the publisher's last video frame: black frames use it when the
    /// subscriber can take it.
    pub last_video_codec: Option<crate::pipeline::VideoCodec>,
    last_keyframe_request: Option<Instant>,
    /// The streams this participant publishes (one or two: audio, video).
    pub inbound: Vec<Inbound>,
    /// What the SFU sends it: audio, then video ([`out_index`]).
    pub out: [OutStream; 2],
    /// How long its subscribers should hold its video (its uplink's loss).
    pub playout: PlayoutHint,
    /// Its key in the core's timers, and the earliest deadline queued there for it.
    pub key: u64,
    pub queued: Option<Instant>,
}

/// The [`Participant::out`] slot of `kind`.
pub(crate) fn out_index(kind: MediaKind) -> usize {
    usize::from(kind == MediaKind::Video)
}

impl Participant {
    pub fn new(
        id: ParticipantId,
        room: RoomId,
        rtc: Rtc,
        fingerprint: Option<String>,
        now: Instant,
        key: u64,
    ) -> Self {
        Self {
            id,
            room,
            rtc,
            lines: Vec::new(),
            next_timeout: Some(now),
            connected: false,
            egress_estimate: None,
            remb_sent: None,
            fingerprint,
            ice_lost_since: None,
            blank_next: None,
            unblank_on_keyframe: false,
            last_video: None,
            last_video_codec: None,
            last_keyframe_request: None,
            inbound: Vec::new(),
            out: Default::default(),
            playout: PlayoutHint::default(),
            key,
            queued: None,
        }
    }

    /// The media line on which the SFU can send media of `kind` to this participant.
    pub fn sending_line(&self, kind: MediaKind) -> Option<Mid> {
        self.lines
            .iter()
            .find(|l| l.kind == kind && l.direction.is_sending())
            .map(|l| l.mid)
    }

    /// The media line on which this participant publishes media of `kind` to the SFU.
    pub fn receiving_line(&self, kind: MediaKind) -> Option<Mid> {
        self.lines
            .iter()
            .find(|l| l.kind == kind && l.direction.is_receiving())
            .map(|l| l.mid)
    }

    pub fn kind_of(&self, mid: Mid) -> Option<MediaKind> {
        self.lines.iter().find(|l| l.mid == mid).map(|l| l.kind)
    }

    /// Hands an input to str0m; a failure ends this participant only.
    pub fn handle_input(&mut self, input: Input) -> Result<(), String> {
        if !self.rtc.is_alive() {
            return Ok(());
        }
        self.rtc.handle_input(input).map_err(|e| {
            self.rtc.disconnect();
            e.to_string()
        })
    }

    /// Asks this participant for a video keyframe, at most once per interval.
    /// Returns whether a request went out.
    pub fn request_keyframe(&mut self, now: Instant, kind: KeyframeRequestKind) -> bool {
        if let Some(last) = self.last_keyframe_request
            && now.saturating_duration_since(last) < KEYFRAME_REQUEST_MIN_INTERVAL
        {
            return false;
        }
        let Some(mid) = self.receiving_line(MediaKind::Video) else {
            return false;
        };
        if !self.rtc.is_alive() {
            return false;
        }
        // None when no RTP arrived yet (no receive stream); the next request retries.
        let mut api = self.rtc.direct_api();
        let Some(stream) = api.stream_rx_by_mid(mid, None) else {
            return false;
        };
        stream.request_keyframe(kind);
        self.last_keyframe_request = Some(now);
        self.wake(now);
        true
    }

    /// Something changed the peer connection outside its own input (a request queued,
    /// a candidate added): make it due, so the next timeout round polls what it
    /// has to send.
    pub fn wake(&mut self, now: Instant) {
        if self.rtc.is_alive() {
            self.next_timeout = Some(self.next_timeout.map_or(now, |t| t.min(now)));
        }
    }
}
