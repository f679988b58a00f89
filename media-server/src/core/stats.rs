//! Counters kept by the core; the driver publishes them as metrics.

/// Why a datagram or a media frame was not forwarded.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum DropReason {
    /// Not STUN, DTLS, RTP or RTCP: garbage on the media port.
    Malformed,
    /// Well-formed, but no participant's peer connection claims it.
    UnknownSource,
    /// The room has nobody else to send it to (yet).
    NoSubscriber,
    /// The subscriber negotiated no matching codec, or no media line of that kind.
    NotNegotiated,
    /// The subscriber's peer connection refused the write.
    WriteFailed,
    /// The UDP socket could not take the datagram (buffer full or send error).
    SocketSend,
    /// A packet that arrived after its stream had been switched away from and back
    /// (its sequence number was already given to another source's packets).
    Late,
}

impl DropReason {
    pub const ALL: [DropReason; 7] = [
        DropReason::Malformed,
        DropReason::UnknownSource,
        DropReason::NoSubscriber,
        DropReason::NotNegotiated,
        DropReason::WriteFailed,
        DropReason::SocketSend,
        DropReason::Late,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            DropReason::Malformed => "malformed",
            DropReason::UnknownSource => "unknown_source",
            DropReason::NoSubscriber => "no_subscriber",
            DropReason::NotNegotiated => "not_negotiated",
            DropReason::WriteFailed => "write_failed",
            DropReason::SocketSend => "socket_send",
            DropReason::Late => "late",
        }
    }

    fn index(self) -> usize {
        self as usize
    }
}

/// Monotonic counters plus the current sizes.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SfuStats {
    pub rooms: u64,
    pub participants: u64,
    /// RTP packets from publishers whose media reached a subscriber's peer connection.
    pub packets_forwarded: u64,
    /// Frames written to subscribers (forwarded video counts its last packets).
    pub frames_forwarded: u64,
    /// Keyframe requests relayed from a subscriber to the publisher.
    pub keyframe_requests_relayed: u64,
    /// Agent video frames handed to the beauty pipeline.
    pub frames_to_pipeline: u64,
    /// REMB caps asked of publishers (a subscriber's bandwidth estimate moved).
    pub remb_sent: u64,
    /// ICE restarts accepted (a participant's network changed).
    pub ice_restarts: u64,
    /// Participants whose lost ICE connectivity came back within the grace period.
    pub ice_recoveries: u64,
    /// Participants dropped because their ICE connectivity stayed lost.
    pub ice_lost: u64,
    /// Publishers whose video moderation withheld from the other party (ever).
    pub blanked_publishers: u64,
    /// Black keyframes sent in place of withheld video.
    pub blank_frames_sent: u64,
    /// Times a publisher's lossy uplink made the SFU ask its subscribers to hold its
    /// video longer (playout-delay extension).
    pub playout_holds: u64,
    dropped: [u64; DropReason::ALL.len()],
}

impl SfuStats {
    pub fn dropped(&self, reason: DropReason) -> u64 {
        self.dropped[reason.index()]
    }

    pub fn count_drop(&mut self, reason: DropReason, n: u64) {
        self.dropped[reason.index()] += n;
    }
}
