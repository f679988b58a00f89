//! The sans-IO SFU core.
//!
//! Feed it datagrams ([`Sfu::handle_datagram`]), timeouts ([`Sfu::handle_timeout`]) and
//! commands ([`Sfu::join`], [`Sfu::add_remote_candidate`], [`Sfu::leave`]); then drain
//! [`Sfu::poll_output`] until it returns [`SfuOutput::Timeout`]. Time is always passed
//! in, so tests run it in virtual time.
//!
//! A room holds at most two participants (agent and customer). Each participant offers
//! its own audio/video lines as `sendrecv`; the SFU answers `sendrecv` and writes the
//! other participant's media into the same lines, so nobody ever renegotiates.

mod beauty;
mod blank;
mod forward;
mod out_stream;
mod participant;
mod playout;
mod stats;
mod tap;
mod timers;

use std::collections::{HashMap, VecDeque};
use std::net::SocketAddr;
use std::time::Instant;

use str0m::bwe::{Bitrate, BweKind};
use str0m::change::SdpOffer;
use str0m::media::{KeyframeRequestKind, MediaKind};
use str0m::net::{DatagramRecv, Protocol, Receive, TcpType, Transmit};
use str0m::rtp::{Extension, RtpPacket};
use str0m::{Candidate, Event, IceConnectionState, Input, Output, Rtc};
use tracing::{debug, info, warn};

use crate::error::{CandidateError, JoinError};
pub use beauty::{
    BeautyOutput, MAX_BITRATE_BPS, MIN_BITRATE_BPS, START_BITRATE_BPS, encoder_bitrate,
};
pub use blank::{BLANK_INTERVAL, BlankFrames};
pub use kefu_proto::TapParty;
use kefu_proto::{ParticipantId, RoomId};
use participant::{MediaLine, Participant};
pub use stats::{DropReason, SfuStats};

/// Participants a room forwards between: one agent, one customer.
pub const MAX_PARTICIPANTS_PER_ROOM: usize = 2;

/// How long a participant whose ICE lost every path is kept, waiting for it to come
/// back or for an ICE restart (a phone moving from Wi-Fi to 4G), before it is dropped.
pub const ICE_RECOVERY_GRACE: std::time::Duration = std::time::Duration::from_secs(20);

/// How long the core sleeps when it has no participant at all.
const IDLE_WAKEUP: std::time::Duration = std::time::Duration::from_secs(1);
/// Timeouts already due that one poll of a participant runs itself.
const MAX_IMMEDIATE_ROUNDS: u32 = 4;
/// Source addresses remembered for the datagram → participant lookup.
const MAX_REMEMBERED_SOURCES: usize = 4096;
/// How often str0m reports a connection's loss and round trip (see `playout.rs`).
const STATS_INTERVAL: std::time::Duration = std::time::Duration::from_secs(1);
/// The id offered for the playout-delay extension (Chrome's own; an offer's id wins).
const PLAYOUT_DELAY_EXT_ID: u8 = 5;

/// What the core tells its controller.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SfuEvent {
    /// ICE and DTLS are up: media can flow. Sent again when ICE comes back after
    /// losing every path (by itself or through an ICE restart).
    Connected { participant: ParticipantId },
    /// The peer connection ended (ICE timeout, DTLS failure, error). The participant
    /// is gone from the core.
    Disconnected {
        participant: ParticipantId,
        reason: String,
    },
}

/// What a refused offer says when str0m gave up on it with a panic.
const OFFER_BROKE_THE_STACK: &str =
    "the offer could not be applied (its payload types contradict each other)";

/// `accept_offer`, with str0m's own panics on self-contradicting offers (e.g. one
/// payload type given to codecs in two media sections: "Pt locked multiple times",
/// found by the `sfu_signaling` fuzz target) turned into a refusal of that offer. The
/// offer comes from the network: it must never take the SFU down.
fn accept_offer(rtc: &mut Rtc, offer: SdpOffer) -> Result<str0m::change::SdpAnswer, JoinError> {
    let applied = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        rtc.sdp_api().accept_offer(offer)
    }));
    match applied {
        Ok(answer) => answer.map_err(|e| JoinError::BadOffer(e.to_string())),
        Err(_) => {
            warn!("an SDP offer made the WebRTC stack panic; refused");
            Err(JoinError::BadOffer(OFFER_BROKE_THE_STACK.into()))
        }
    }
}

/// One output of the core.
#[derive(Debug)]
pub enum SfuOutput {
    /// Send these bytes from the SFU's socket.
    Transmit(Transmit),
    Event(SfuEvent),
    /// An agent video frame for the beauty pipeline; encode the result as `output`
    /// and hand it back with [`Sfu::write_processed`].
    Beautify {
        room: RoomId,
        frame: crate::pipeline::InputFrame,
        output: crate::pipeline::VideoCodec,
    },
    /// The customer asked for a keyframe: the pipeline's encoder makes one.
    PipelineKeyframe {
        room: RoomId,
    },
    /// The bandwidth towards the customer changed: the pipeline encodes at `bps`.
    PipelineBitrate {
        room: RoomId,
        bps: u32,
    },
    /// A frame published in a tapped room, for its recorder.
    Tap {
        room: RoomId,
        frame: kefu_proto::TapFrame,
    },
    /// Nothing more until this time (or the next input).
    Timeout(Instant),
}

/// A packet one participant published, waiting to be written to the others.
struct Pending {
    from: usize,
    packet: RtpPacket,
}

/// The SFU: every participant of every room on one socket address.
pub struct Sfu {
    /// The address peers send to: the host candidate we advertise and the socket's address.
    local_addr: SocketAddr,
    /// The advertised ICE-TCP address (passive host candidate), when TCP is on.
    tcp_addr: Option<SocketAddr>,
    participants: Vec<Participant>,
    /// Which participant a source address last belonged to (an index into
    /// `participants`, checked with `Rtc::accepts` before use); cleared whenever the
    /// list changes. Saves asking every peer connection about every datagram.
    sources: HashMap<SocketAddr, usize>,
    /// Participants (indices) of each room, and each participant's room among them;
    /// rebuilt with `sources`. A datagram polls its room's members only.
    room_members: Vec<Vec<usize>>,
    room_of: Vec<usize>,
    transmits: VecDeque<Transmit>,
    events: VecDeque<SfuEvent>,
    /// Rooms being recorded: who is who among their participants.
    taps: HashMap<RoomId, Vec<TapParty>>,
    beauty: HashMap<RoomId, beauty::BeautyRoute>,
    pipeline_out: VecDeque<SfuOutput>,
    tapped: VecDeque<(RoomId, kefu_proto::TapFrame)>,
    blank_frames: BlankFrames,
    /// Publishers whose video is withheld (kept when they rejoin), and their rooms.
    blanked: HashMap<ParticipantId, RoomId>,
    stats: SfuStats,
    timers: timers::Timers,
    /// The latest time handed in; the core has no clock of its own.
    last_now: Instant,
}

impl std::fmt::Debug for Sfu {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Sfu")
            .field("local_addr", &self.local_addr)
            .field("participants", &self.participants.len())
            .finish()
    }
}

impl Sfu {
    pub fn new(local_addr: SocketAddr, now: Instant) -> Self {
        crate::init_crypto();
        Self {
            local_addr,
            tcp_addr: None,
            participants: Vec::new(),
            sources: HashMap::new(),
            room_members: Vec::new(),
            room_of: Vec::new(),
            transmits: VecDeque::new(),
            events: VecDeque::new(),
            taps: HashMap::new(),
            beauty: HashMap::new(),
            pipeline_out: VecDeque::new(),
            tapped: VecDeque::new(),
            blank_frames: BlankFrames::default(),
            blanked: HashMap::new(),
            stats: SfuStats::default(),
            timers: timers::Timers::default(),
            last_now: now,
        }
    }

    pub fn local_addr(&self) -> SocketAddr {
        self.local_addr
    }

    /// Also offers a passive ICE-TCP candidate at `addr` to participants joining from
    /// now on (for networks that block UDP). Frames arrive through
    /// [`Self::handle_tcp_frame`]; transmits for them carry `Protocol::Tcp`.
    pub fn enable_tcp(&mut self, addr: SocketAddr) {
        self.tcp_addr = Some(addr);
    }

    pub fn stats(&self) -> &SfuStats {
        &self.stats
    }

    /// Adds a participant from its SDP offer and returns the SDP answer.
    ///
    /// A participant id already present is replaced (a page reload reconnects).
    pub fn join(
        &mut self,
        now: Instant,
        room: RoomId,
        participant: ParticipantId,
        offer_sdp: &str,
    ) -> Result<String, JoinError> {
        let offer =
            SdpOffer::from_sdp_string(offer_sdp).map_err(|e| JoinError::BadOffer(e.to_string()))?;
        self.remove(&participant);
        let occupants = self.participants.iter().filter(|p| p.room == room).count();
        if occupants >= MAX_PARTICIPANTS_PER_ROOM {
            return Err(JoinError::RoomFull);
        }

        let mut rtc = Rtc::builder()
            // ICE-lite, as SFUs with a public address do: the browser checks our one
            // candidate and we only answer. A full agent would also probe the
            // browser's candidates from our socket and could settle on a path around
            // whatever sits in front of us (a port-forwarding NAT, the test relay).
            .set_ice_lite(true)
            // Packets in, packets out: forwarding never depacketizes (see forward.rs).
            .set_rtp_mode(true)
            .clear_codecs()
            .enable_opus(true, false)
            .enable_vp8(true)
            .enable_h264(true)
            // Send-side bandwidth estimation (TWCC) towards every participant: what
            // the beauty pipeline's encoder follows.
            .enable_bwe(Some(Bitrate::bps(beauty::START_BITRATE_BPS.into())))
            // How long subscribers hold a lossy publisher's video (playout.rs).
            .set_extension(PLAYOUT_DELAY_EXT_ID, Extension::PlayoutDelay)
            .set_stats_interval(Some(STATS_INTERVAL))
            .build(now);
        // Probe up to what a 720p call wants, no further; no padding floor of our own.
        rtc.bwe()
            .set_bitrate(Bitrate::ZERO, Bitrate::bps(beauty::MAX_BITRATE_BPS.into()));
        let candidate = Candidate::host(self.local_addr, "udp")
            .map_err(|e| JoinError::BadOffer(format!("local candidate: {e}")))?;
        rtc.add_local_candidate(candidate);
        if let Some(tcp) = self.tcp_addr {
            let candidate = Candidate::builder()
                .tcp()
                .host(tcp)
                .tcptype(TcpType::Passive)
                .build()
                .map_err(|e| JoinError::BadOffer(format!("local TCP candidate: {e}")))?;
            rtc.add_local_candidate(candidate);
        }
        let answer = accept_offer(&mut rtc, offer)?;

        info!(%room, %participant, "participant joined the SFU");
        self.forget_output_choice(&room);
        let fingerprint = dtls_fingerprint(offer_sdp).map(str::to_owned);
        let key = self.timers.new_key();
        self.participants.push(Participant::new(
            participant,
            room,
            rtc,
            fingerprint,
            now,
            key,
        ));
        self.restore_blank(self.participants.len() - 1, now);
        self.refresh_sizes();
        // Collect MediaAdded events and the first transmits/timeouts right away.
        self.drain(now);
        Ok(answer.to_sdp_string())
    }

    /// A new offer from a participant's existing peer connection: an ICE restart after
    /// its network changed (new ICE credentials, same DTLS). The participant keeps its
    /// room, media lines, recording tap and pipeline; only the path is found anew.
    pub fn restart(
        &mut self,
        now: Instant,
        participant: &ParticipantId,
        offer_sdp: &str,
    ) -> Result<String, JoinError> {
        let offer =
            SdpOffer::from_sdp_string(offer_sdp).map_err(|e| JoinError::BadOffer(e.to_string()))?;
        let p = self
            .participants
            .iter_mut()
            .find(|p| &p.id == participant)
            .ok_or(JoinError::UnknownParticipant)?;
        if p.fingerprint.as_deref() != dtls_fingerprint(offer_sdp) {
            return Err(JoinError::BadOffer(
                "an ICE restart must come from the peer connection that joined (another \
                 DTLS fingerprint); send a new offer instead"
                    .into(),
            ));
        }
        let answer = match accept_offer(&mut p.rtc, offer) {
            Ok(answer) => answer,
            Err(e) => {
                // A refused restart leaves the peer connection as it was, unless the
                // stack gave up halfway: then it cannot be trusted and goes.
                if matches!(&e, JoinError::BadOffer(why) if why == OFFER_BROKE_THE_STACK) {
                    let participant = participant.clone();
                    self.remove(&participant);
                }
                return Err(e);
            }
        };
        info!(%participant, "ICE restart");
        self.stats.ice_restarts += 1;
        self.drain(now);
        Ok(answer.to_sdp_string())
    }

    /// Adds a trickled ICE candidate of a participant.
    pub fn add_remote_candidate(
        &mut self,
        participant: &ParticipantId,
        candidate: &str,
    ) -> Result<(), CandidateError> {
        let line = candidate.trim();
        let line = line.strip_prefix("a=").unwrap_or(line);
        let parsed = Candidate::from_sdp_string(line)
            .map_err(|e| CandidateError::Malformed(e.to_string()))?;
        let p = self
            .participants
            .iter_mut()
            .find(|p| &p.id == participant)
            .ok_or(CandidateError::UnknownParticipant)?;
        p.rtc.add_remote_candidate(parsed);
        p.wake(self.last_now);
        self.timers.schedule(p);
        Ok(())
    }

    /// Removes a participant (hang-up or closed signaling). Unknown ids are ignored.
    pub fn leave(&mut self, participant: &ParticipantId) {
        if self.remove(participant) {
            info!(%participant, "participant left the SFU");
        }
    }

    /// Starts handing `room`'s published frames out as [`SfuOutput::Tap`], labelled
    /// with who sent them, and asks every publisher for a keyframe so the recording
    /// starts with a picture.
    pub fn tap(&mut self, now: Instant, room: RoomId, parties: Vec<TapParty>) {
        for p in self.participants.iter_mut().filter(|p| p.room == room) {
            p.request_keyframe(now, KeyframeRequestKind::Pli);
            self.timers.schedule(p);
        }
        info!(%room, "room tapped for recording");
        self.taps.insert(room, parties);
    }

    /// Stops tapping `room`.
    pub fn untap(&mut self, room: &RoomId) {
        self.taps.remove(room);
        self.forget_blanks(room);
    }

    /// Handles one datagram received on the SFU's UDP socket.
    pub fn handle_datagram(&mut self, now: Instant, source: SocketAddr, contents: &[u8]) {
        self.handle_receive(now, Protocol::Udp, source, self.local_addr, contents);
    }

    /// Handles one frame (RFC 4571, length prefix removed) from an ICE-TCP connection.
    pub fn handle_tcp_frame(&mut self, now: Instant, source: SocketAddr, contents: &[u8]) {
        let Some(destination) = self.tcp_addr else {
            self.stats.count_drop(DropReason::UnknownSource, 1);
            return;
        };
        self.handle_receive(now, Protocol::Tcp, source, destination, contents);
    }

    fn handle_receive(
        &mut self,
        now: Instant,
        proto: Protocol,
        source: SocketAddr,
        destination: SocketAddr,
        contents: &[u8],
    ) {
        let Ok(contents) = DatagramRecv::try_from(contents) else {
            self.stats.count_drop(DropReason::Malformed, 1);
            return;
        };
        let input = Input::Receive(
            now,
            Receive {
                proto,
                source,
                destination,
                contents,
            },
        );
        let Some(idx) = self.participant_accepting(source, &input) else {
            self.stats.count_drop(DropReason::UnknownSource, 1);
            return;
        };
        let p = &mut self.participants[idx];
        if let Err(reason) = p.handle_input(input) {
            warn!(participant = %p.id, %reason, "peer connection failed on input");
        }
        self.drain_room(now, self.room_of[idx]);
    }

    /// The participant whose peer connection takes `input` from `source`.
    fn participant_accepting(&mut self, source: SocketAddr, input: &Input) -> Option<usize> {
        if let Some(&idx) = self.sources.get(&source)
            && self
                .participants
                .get(idx)
                .is_some_and(|p| p.rtc.accepts(input))
        {
            return Some(idx);
        }
        let idx = self
            .participants
            .iter()
            .position(|p| p.rtc.accepts(input))?;
        // Only accepted sources are remembered; a bound keeps ICE churn from growing it.
        if self.sources.len() >= MAX_REMEMBERED_SOURCES {
            self.sources.clear();
        }
        self.sources.insert(source, idx);
        Some(idx)
    }

    /// Advances the clock of every participant whose timeout is due.
    pub fn handle_timeout(&mut self, now: Instant) {
        let due = self.timers.pop_due(now, &mut self.participants);
        let mut due_rooms: Vec<usize> = Vec::new();
        let mut blanks_due = false;
        for &idx in &due {
            let p = &mut self.participants[idx];
            blanks_due |= p.blank_next.is_some_and(|t| t <= now);
            if p.ice_lost_since
                .is_some_and(|since| now >= since + ICE_RECOVERY_GRACE)
            {
                warn!(participant = %p.id, "ICE stayed without a path; dropping the participant");
                self.stats.ice_lost += 1;
                p.rtc.disconnect();
            } else if p.next_timeout.is_some_and(|t| t <= now)
                && let Err(reason) = p.handle_input(Input::Timeout(now))
            {
                warn!(participant = %p.id, %reason, "peer connection failed on timeout");
            }
            let room = self.room_of[idx];
            if !due_rooms.contains(&room) {
                due_rooms.push(room);
            }
        }
        self.last_now = self.last_now.max(now);
        if blanks_due {
            self.send_due_blanks(now);
            self.drain(now);
            return;
        }
        // Polling a room schedules its members again, the due ones included (a
        // participant popped only because its deadline moved is re-queued here).
        for room in due_rooms {
            self.drain_room(now, room);
        }
    }

    /// Next output; call until it returns [`SfuOutput::Timeout`].
    pub fn poll_output(&mut self) -> SfuOutput {
        if let Some(t) = self.transmits.pop_front() {
            return SfuOutput::Transmit(t);
        }
        if let Some(e) = self.events.pop_front() {
            return SfuOutput::Event(e);
        }
        if let Some(out) = self.pipeline_out.pop_front() {
            return out;
        }
        if let Some((room, frame)) = self.tapped.pop_front() {
            return SfuOutput::Tap { room, frame };
        }
        // With nobody to serve, a far wake-up keeps the driver idle.
        let next = self.timers.next().unwrap_or(self.last_now + IDLE_WAKEUP);
        SfuOutput::Timeout(next)
    }

    /// Counts a datagram the driver could not send.
    pub fn count_send_failure(&mut self) {
        self.stats.count_drop(DropReason::SocketSend, 1);
    }

    /// Polls every participant until quiet, forwarding media between them.
    fn drain(&mut self, now: Instant) {
        self.drain_matching(now, None);
    }

    /// Polls the participants of `room` until quiet. Whatever one participant's input
    /// causes (forwarded media, keyframe requests, REMB caps) stays inside its room,
    /// and a peer connection that got no input has nothing new to say, so the other
    /// rooms need no poll: the cost of a datagram does not grow with the calls.
    fn drain_room(&mut self, now: Instant, room: usize) {
        self.drain_matching(now, Some(room));
    }

    /// `room`: an index into `room_members`; `None`: everybody. Polling and forwarding
    /// leave the participant list as it is (the dead are reaped after).
    fn drain_matching(&mut self, now: Instant, room: Option<usize>) {
        self.last_now = self.last_now.max(now);
        loop {
            let mut pending = Vec::new();
            let count = room.map_or(self.participants.len(), |r| self.room_members[r].len());
            for k in 0..count {
                let idx = room.map_or(k, |r| self.room_members[r][k]);
                self.poll_participant(idx, now, &mut pending);
            }
            if pending.is_empty() {
                break;
            }
            for item in pending {
                self.forward(now, item.from, item.packet);
            }
        }
        // Their deadlines, once nothing more happens: what a poll left, or "now" for
        // a request queued on a peer after its poll (a keyframe request, a REMB).
        let count = room.map_or(self.participants.len(), |r| self.room_members[r].len());
        for k in 0..count {
            let idx = room.map_or(k, |r| self.room_members[r][k]);
            self.timers.schedule(&mut self.participants[idx]);
        }
        // Only the polled can have died; looking at everyone would cost O(participants)
        // per datagram.
        let polled_died = room.is_none_or(|r| {
            self.room_members[r]
                .iter()
                .any(|&i| !self.participants[i].rtc.is_alive())
        });
        if polled_died {
            self.reap_dead();
        }
    }

    /// Polls one participant until str0m waits for time.
    fn poll_participant(&mut self, idx: usize, now: Instant, pending: &mut Vec<Pending>) {
        let mut immediate_rounds = 0;
        loop {
            let p = &mut self.participants[idx];
            if !p.rtc.is_alive() {
                p.next_timeout = None;
                return;
            }
            let output = match p.rtc.poll_output() {
                Ok(o) => o,
                Err(e) => {
                    warn!(participant = %p.id, error = %e, "peer connection failed");
                    p.rtc.disconnect();
                    p.next_timeout = None;
                    return;
                }
            };
            match output {
                // Media just written is packetized and paced out on str0m's next
                // timeout, which is due at once: run it here rather than going back
                // to the driver for a wake-up per forwarded frame. Bounded, in case
                // str0m keeps asking for "now" without anything to do.
                Output::Timeout(t) if t <= now && immediate_rounds < MAX_IMMEDIATE_ROUNDS => {
                    immediate_rounds += 1;
                    if let Err(reason) = p.handle_input(Input::Timeout(now)) {
                        warn!(participant = %p.id, %reason, "peer connection failed on timeout");
                    }
                }
                Output::Timeout(t) => {
                    p.next_timeout = Some(t);
                    return;
                }
                Output::Transmit(t) => self.transmits.push_back(t),
                Output::Event(event) => self.handle_event(idx, now, event, pending),
            }
        }
    }

    fn handle_event(&mut self, idx: usize, now: Instant, event: Event, pending: &mut Vec<Pending>) {
        let p = &mut self.participants[idx];
        match event {
            // A renegotiation (ICE restart) announces the lines again.
            Event::MediaAdded(m) if p.kind_of(m.mid).is_some() => {}
            Event::MediaAdded(m) => {
                debug!(participant = %p.id, mid = %m.mid, kind = ?m.kind, dir = ?m.direction, "media line");
                p.lines.push(MediaLine {
                    mid: m.mid,
                    kind: m.kind,
                    direction: m.direction,
                });
            }
            Event::Connected => {
                p.connected = true;
                let participant = p.id.clone();
                info!(%participant, "peer connection up");
                self.events.push_back(SfuEvent::Connected { participant });
                // A newcomer needs a keyframe from whoever already publishes.
                self.request_keyframe_from_others(idx, now, KeyframeRequestKind::Pli);
            }
            // No path left: wait for it to come back, or for an ICE restart, within
            // the grace period (see `handle_timeout`).
            Event::IceConnectionStateChange(IceConnectionState::Disconnected)
                if p.ice_lost_since.is_none() =>
            {
                info!(participant = %p.id, "ICE lost its path; waiting for it to recover");
                p.ice_lost_since = Some(now);
            }
            Event::IceConnectionStateChange(
                IceConnectionState::Connected | IceConnectionState::Completed,
            ) if p.ice_lost_since.is_some() => {
                p.ice_lost_since = None;
                if p.connected {
                    let participant = p.id.clone();
                    info!(%participant, "ICE found a path again");
                    self.stats.ice_recoveries += 1;
                    self.events.push_back(SfuEvent::Connected { participant });
                    // Both directions lost frames during the gap: fresh keyframes.
                    self.participants[idx].request_keyframe(now, KeyframeRequestKind::Pli);
                    self.request_keyframe_from_others(idx, now, KeyframeRequestKind::Pli);
                }
            }
            Event::RtpPacket(packet) => pending.push(Pending { from: idx, packet }),
            // A subscriber asks for a keyframe of what we send it: our own encoder
            // makes it when its video is filtered...
            Event::KeyframeRequest(_) if self.keyframe_to_pipeline(idx) => {}
            // ...otherwise relay it to the publisher.
            Event::KeyframeRequest(req) => {
                self.request_keyframe_from_others(idx, now, req.kind);
            }
            // Our own TWCC estimate, or the browser's REMB.
            Event::EgressBitrateEstimate(
                BweKind::Twcc { estimate, .. } | BweKind::Remb { estimate, .. },
            ) => {
                self.bitrate_to_pipeline(idx, estimate);
                self.cap_publishers(idx, estimate);
            }
            Event::MediaEgressStats(stats) => {
                if let Some(rtt) = stats.rtt {
                    self.participants[idx].playout.observe_rtt(rtt);
                }
            }
            Event::PeerStats(stats) => {
                let p = &mut self.participants[idx];
                if p.playout.observe_loss(now, stats.ingress_loss_fraction) {
                    debug!(participant = %p.id, "lossy uplink: subscribers hold its video longer");
                    self.stats.playout_holds += 1;
                }
            }
            _ => {}
        }
    }

    /// What the SFU can send `idx` is `estimate`; video forwarded to it as published
    /// cannot adapt here (one layer, no transcoding), so ask its publishers (REMB) to
    /// send no more video than that. Video that goes through the beauty pipeline is
    /// adapted by our encoder instead.
    fn cap_publishers(&mut self, idx: usize, estimate: Bitrate) {
        if self.is_beauty_receiver(idx) {
            return;
        }
        let bps = encoder_bitrate(estimate.as_u64());
        let room = self.participants[idx].room.clone();
        for (i, p) in self.participants.iter_mut().enumerate() {
            if i == idx || p.room != room || !p.connected {
                continue;
            }
            // A move under 5 % is not worth a REMB.
            if p.remb_sent
                .is_some_and(|last| (f64::from(bps) / f64::from(last) - 1.0).abs() < 0.05)
            {
                continue;
            }
            let Some(mid) = p.receiving_line(MediaKind::Video) else {
                continue;
            };
            if let Some(rx) = p.rtc.direct_api().stream_rx_by_mid(mid, None) {
                rx.request_remb(Bitrate::bps(bps.into()));
                p.remb_sent = Some(bps);
                self.stats.remb_sent += 1;
            }
        }
    }

    fn request_keyframe_from_others(
        &mut self,
        idx: usize,
        now: Instant,
        kind: KeyframeRequestKind,
    ) {
        let room = self.participants[idx].room.clone();
        for (i, other) in self.participants.iter_mut().enumerate() {
            if i != idx && other.room == room && other.request_keyframe(now, kind) {
                self.stats.keyframe_requests_relayed += 1;
            }
        }
    }

    fn has_connected_peer(&self, idx: usize) -> bool {
        let room = &self.participants[idx].room;
        self.participants
            .iter()
            .enumerate()
            .any(|(i, p)| i != idx && &p.room == room && p.connected)
    }

    fn remove(&mut self, participant: &ParticipantId) -> bool {
        let before = self.participants.len();
        self.participants.retain(|p| &p.id != participant);
        let removed = self.participants.len() != before;
        if removed {
            self.refresh_sizes();
        }
        removed
    }

    fn reap_dead(&mut self) {
        let mut gone = Vec::new();
        self.participants.retain(|p| {
            let alive = p.rtc.is_alive();
            if !alive {
                gone.push(p.id.clone());
            }
            alive
        });
        if gone.is_empty() {
            return;
        }
        for participant in gone {
            info!(%participant, "peer connection ended");
            self.events.push_back(SfuEvent::Disconnected {
                participant,
                reason: "peer connection closed (ICE or DTLS)".into(),
            });
        }
        self.refresh_sizes();
    }

    /// After any change to the participant list (indices move): the lookups and the
    /// sizes anew.
    fn refresh_sizes(&mut self) {
        self.sources.clear();
        self.room_members.clear();
        self.room_of.clear();
        let mut slots: HashMap<&RoomId, usize> = HashMap::new();
        for (idx, p) in self.participants.iter().enumerate() {
            let next = slots.len();
            let slot = *slots.entry(&p.room).or_insert(next);
            if slot == self.room_members.len() {
                self.room_members.push(Vec::new());
            }
            self.room_members[slot].push(idx);
            self.room_of.push(slot);
        }
        self.timers.reindex(&self.participants);
        self.stats.rooms = self.room_members.len() as u64;
        self.stats.participants = self.participants.len() as u64;
    }
}

/// The `a=fingerprint:` value of an SDP (session or first media level).
fn dtls_fingerprint(sdp: &str) -> Option<&str> {
    sdp.lines()
        .find_map(|l| l.trim().strip_prefix("a=fingerprint:"))
        .map(str::trim)
}

#[cfg(test)]
mod tests;
