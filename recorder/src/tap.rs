//! What the media server hands the recorder: one depacketized frame of one party.
//!
//! Plain types on purpose, so the SFU can tap without knowing about ffmpeg and the
//! recorder can be driven by tests without an SFU.

use std::sync::Arc;
use std::time::{Instant, SystemTime};

/// Who sent a frame.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Party {
    Agent,
    Customer,
}

impl Party {
    pub const ALL: [Party; 2] = [Party::Agent, Party::Customer];

    pub fn index(self) -> usize {
        match self {
            Party::Agent => 0,
            Party::Customer => 1,
        }
    }
}

/// Codecs the SFU forwards.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Codec {
    Opus,
    Vp8,
    H264,
}

impl Codec {
    pub fn is_video(self) -> bool {
        !matches!(self, Codec::Opus)
    }
}

/// The sender's clock from its latest RTCP sender report: `ntp_time` is when the
/// sender's RTP clock read `rtp_time`. It ties a party's audio and video together.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SenderClock {
    pub ntp_time: SystemTime,
    pub rtp_time: u64,
}

/// One depacketized frame (a whole video frame or one Opus packet).
#[derive(Debug, Clone)]
pub struct TapFrame {
    pub party: Party,
    pub codec: Codec,
    /// RTP timestamp (extended over wrap-arounds) in `clock_rate` units.
    pub rtp_time: u64,
    pub clock_rate: u32,
    /// When the first packet of the frame reached the SFU.
    pub arrival: Instant,
    pub sender_clock: Option<SenderClock>,
    /// Whether nothing was lost since the previous frame of this stream.
    pub contiguous: bool,
    pub keyframe: bool,
    pub data: Arc<[u8]>,
}

/// Where the SFU writes taps: bounded, never awaited (a full queue drops the frame).
pub type TapSender = tokio::sync::mpsc::Sender<TapFrame>;
