//! The signaling WebSocket: one session per browser tab.
//!
//! A session must `join` with a room token first; then it exchanges SDP and trickled
//! ICE with the SFU and hears about the other participant. Bad input gets an `error`
//! message; only authentication failures and oversized messages close the socket.
//!
//! A connection that drops without `leave` or a close frame (the phone changed
//! networks) keeps its participant in the call for `reconnect_grace_secs`: joining
//! again with the same token and sending `restart` picks the call up where it was.

use std::time::Duration;

use axum::extract::State;
use axum::extract::ws::{CloseFrame, Message, Utf8Bytes, WebSocket, WebSocketUpgrade};
use axum::response::Response;
use futures_util::stream::SplitSink;
use futures_util::{SinkExt, StreamExt};
use kefu_media_server::{CandidateError, JoinError, ParticipantId, RoomId, SfuEvent};
use tokio::sync::mpsc;
use tracing::{Instrument, debug, info, info_span, warn};

use crate::accounts::CallId;
use crate::beauty::preview as beauty_preview;
use crate::calls::machine::{CallEvent, EndReason, Party};
use crate::calls::service::CallError;
use crate::clock::now_ms;
use crate::rooms::token::{Side, TokenError, unix_now};
use crate::rooms::{Outbox, media_participant_id};
use crate::state::AppState;
use kefu_proto::signaling::{ClientMessage, ErrorCode, ServerMessage};

/// Messages from other sessions waiting for this one. They are few and small.
const OUTBOX_CAPACITY: usize = 64;
/// The library's own cap is this many times ours, so we see an oversized message and
/// can answer it before the library refuses to read it at all.
const HARD_LIMIT_FACTOR: usize = 16;

/// How long a closing session waits for the client's close frame.
const CLOSE_LINGER: Duration = Duration::from_secs(1);

/// WebSocket close codes (RFC 6455).
const CLOSE_NORMAL: u16 = 1000;
const CLOSE_GOING_AWAY: u16 = 1001;
const CLOSE_PROTOCOL: u16 = 1002;
const CLOSE_POLICY: u16 = 1008;
const CLOSE_TOO_BIG: u16 = 1009;
/// "Service restart" (RFC 6455 registry): come back, through another node if need be.
const CLOSE_SERVICE_RESTART: u16 = 1012;

pub async fn upgrade(State(state): State<AppState>, ws: WebSocketUpgrade) -> Response {
    let hard_limit = state.signaling.max_message_bytes * HARD_LIMIT_FACTOR;
    ws.max_message_size(hard_limit)
        .max_frame_size(hard_limit)
        .on_upgrade(move |socket| {
            let id = state.next_session_id();
            Session::new(state, id)
                .run(socket)
                .instrument(info_span!("ws", session = id))
        })
}

/// The participant this session speaks for, once joined.
struct Joined {
    room: String,
    participant: String,
    role: Side,
    media_id: ParticipantId,
}

enum Flow {
    Continue,
    Close(u16, &'static str),
}

/// How a session ended, which decides when its participant leaves the call.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Ending {
    /// `leave`, a close frame, or a close of ours: the participant is gone now.
    Closed,
    /// The connection broke (no close frame): keep the place for a while.
    Lost,
    /// kefu is stopping: the drain already ended the calls; nobody hung up.
    Shutdown,
    /// This signaling node is stopping but the call's media lives on a media node:
    /// the participant keeps its place, and its page resumes through another node.
    HandOver,
}

struct Session {
    state: AppState,
    id: u64,
    joined: Option<Joined>,
    outbox: Outbox,
    inbox: mpsc::Receiver<ServerMessage>,
    media_events: Option<mpsc::Receiver<SfuEvent>>,
}

type Sink = SplitSink<WebSocket, Message>;

impl Session {
    fn new(state: AppState, id: u64) -> Self {
        let (outbox, inbox) = mpsc::channel(OUTBOX_CAPACITY);
        Self {
            state,
            id,
            joined: None,
            outbox,
            inbox,
            media_events: None,
        }
    }

    async fn run(mut self, socket: WebSocket) {
        let (mut sink, mut stream) = socket.split();
        let join_deadline =
            tokio::time::sleep(Duration::from_secs(self.state.signaling.join_timeout_secs));
        tokio::pin!(join_deadline);
        let mut shutdown = self.state.shutdown.clone();

        let mut ending = Ending::Closed;
        let close = loop {
            let mut flow = tokio::select! {
                incoming = stream.next() => match incoming {
                    Some(Ok(Message::Close(_))) => break None,
                    // Ended without a close frame: the network went away under it.
                    None => {
                        ending = Ending::Lost;
                        break None;
                    }
                    Some(Ok(Message::Text(text))) => self.on_text(&text).await,
                    Some(Ok(Message::Binary(_))) => {
                        self.reply_error(ErrorCode::InvalidMessage, "binary frames are not part of the protocol");
                        Flow::Continue
                    }
                    Some(Ok(_)) => Flow::Continue, // ping/pong: answered by the library
                    Some(Err(e)) if connection_gone(&e) => {
                        ending = Ending::Lost;
                        break None;
                    }
                    Some(Err(e)) => self.on_read_error(e),
                },
                Some(msg) = self.inbox.recv() => match self.deliver(&mut sink, msg).await {
                    Ok(flow) => flow,
                    Err(_) => {
                        ending = Ending::Lost;
                        break None;
                    }
                },
                Some(event) = next_event(&mut self.media_events) => {
                    self.on_media_event(event).await;
                    Flow::Continue
                }
                _ = &mut join_deadline, if self.joined.is_none() => {
                    self.reply_error(ErrorCode::JoinTimeout, "no join message in time");
                    Flow::Close(CLOSE_POLICY, "join timeout")
                }
                _ = shutdown.changed() => {
                    if self.state.media.outlives_this_process() {
                        ending = Ending::HandOver;
                        Flow::Close(CLOSE_SERVICE_RESTART, "node stopping; reconnect")
                    } else {
                        ending = Ending::Shutdown;
                        Flow::Close(CLOSE_GOING_AWAY, "server shutting down")
                    }
                }
            };
            // Deliver replies queued by the handlers before deciding anything else.
            let mut broken = false;
            while let Ok(msg) = self.inbox.try_recv() {
                match self.deliver(&mut sink, msg).await {
                    Ok(Flow::Continue) => {}
                    Ok(close) => flow = close,
                    Err(_) => {
                        broken = true;
                        break;
                    }
                }
            }
            if broken {
                ending = Ending::Lost;
                break None;
            }
            if let Flow::Close(code, reason) = flow {
                break Some((code, reason));
            }
        };

        if let Some((code, reason)) = close {
            let frame = CloseFrame {
                code,
                reason: Utf8Bytes::from_static(reason),
            };
            let _ = sink.send(Message::Close(Some(frame))).await;
            // Read (and discard) until the client's close or a short timeout: closing a
            // socket with unread input resets it, and the client would lose our error.
            let _ = tokio::time::timeout(CLOSE_LINGER, async {
                while let Some(Ok(msg)) = stream.next().await {
                    if matches!(msg, Message::Close(_)) {
                        break;
                    }
                }
            })
            .await;
        }
        self.leave(ending).await;
    }

    /// Sends one queued message; a `replaced` or `call_ended` notice also ends this
    /// session.
    async fn deliver(&mut self, sink: &mut Sink, msg: ServerMessage) -> Result<Flow, axum::Error> {
        let replaced = matches!(
            msg,
            ServerMessage::Error {
                code: ErrorCode::Replaced,
                ..
            }
        );
        let call_ended = matches!(msg, ServerMessage::CallEnded { .. });
        send(sink, &msg).await?;
        if replaced {
            // Our participant id now belongs to the new connection: forget it, so
            // leaving does not remove the newcomer.
            self.joined = None;
            return Ok(Flow::Close(CLOSE_POLICY, "replaced"));
        }
        if call_ended {
            // The lifecycle already took everyone out of the room and the SFU.
            self.joined = None;
            return Ok(Flow::Close(CLOSE_NORMAL, "call ended"));
        }
        Ok(Flow::Continue)
    }

    async fn on_text(&mut self, text: &str) -> Flow {
        let limit = self.state.signaling.max_message_bytes;
        if text.len() > limit {
            self.reply_error(
                ErrorCode::MessageTooLarge,
                format!("messages are limited to {limit} bytes"),
            );
            return Flow::Close(CLOSE_TOO_BIG, "message too large");
        }
        let msg = match serde_json::from_str::<ClientMessage>(text) {
            Ok(msg) => msg,
            Err(e) => {
                self.reply_error(
                    ErrorCode::InvalidMessage,
                    format!("not a signaling message: {e}"),
                );
                return Flow::Continue;
            }
        };
        match msg {
            ClientMessage::Join { token } => self.on_join(&token).await,
            ClientMessage::Offer { sdp } => self.on_offer(sdp).await,
            ClientMessage::Restart { sdp } => self.on_restart(sdp).await,
            ClientMessage::Candidate { candidate, .. } => self.on_candidate(candidate).await,
            ClientMessage::Leave {} => Flow::Close(CLOSE_NORMAL, "left"),
            ClientMessage::Ping {} => {
                self.reply(ServerMessage::Pong);
                Flow::Continue
            }
        }
    }

    async fn on_join(&mut self, token: &str) -> Flow {
        if self.joined.is_some() {
            self.reply_error(
                ErrorCode::AlreadyJoined,
                "this connection has already joined",
            );
            return Flow::Continue;
        }
        let claims = match self.state.tokens.verify(token, unix_now()) {
            Ok(claims) => claims,
            Err(TokenError::Expired) => {
                self.reply_error(ErrorCode::TokenExpired, "the room token has expired");
                return Flow::Close(CLOSE_POLICY, "token expired");
            }
            Err(TokenError::Invalid) => {
                self.reply_error(ErrorCode::InvalidToken, "the room token is not valid");
                return Flow::Close(CLOSE_POLICY, "invalid token");
            }
        };
        // A call's room exists while the call is live; a finished call's token lets
        // nobody back in.
        let exists = match self.state.rooms.exists(&claims.room).await {
            Ok(exists) => exists,
            Err(e) => {
                warn!("rooms unreachable: {e}");
                self.reply_error(ErrorCode::Unavailable, "cannot join right now");
                return Flow::Close(CLOSE_POLICY, "join failed");
            }
        };
        if !exists {
            match self.state.store.call(&CallId(claims.room.clone())).await {
                Ok(Some(call)) if !call.state.is_final() => {
                    if let Err(e) = self.state.rooms.open(&claims.room).await {
                        warn!("rooms unreachable: {e}");
                        self.reply_error(ErrorCode::Unavailable, "cannot join right now");
                        return Flow::Close(CLOSE_POLICY, "join failed");
                    }
                }
                Ok(_) => {}
                Err(e) => {
                    warn!("cannot read the call behind a room: {e}");
                    self.reply_error(ErrorCode::Internal, "cannot join right now");
                    return Flow::Close(CLOSE_POLICY, "join failed");
                }
            }
        }
        let peers = match self
            .state
            .rooms
            .join(
                &claims.room,
                &claims.sub,
                claims.role,
                self.id,
                self.outbox.clone(),
            )
            .await
        {
            Ok(peers) => peers,
            Err(e) => {
                self.reply_error(e.code(), e.to_string());
                return Flow::Close(CLOSE_POLICY, "join refused");
            }
        };
        info!(room = %claims.room, role = ?claims.role, "joined");
        let ice = &self.state.signaling.ice;
        let media_id = media_participant_id(&claims.room, &claims.sub, claims.role);
        self.reply(ServerMessage::Joined {
            room: claims.room.clone(),
            participant: claims.sub.clone(),
            role: claims.role,
            peers,
            // TURN usernames carry the media id, not a person's name or number.
            ice_servers: ice.servers_for(media_id.as_str(), unix_now()),
            ice_transport_policy: ice.transport_policy(),
        });
        // What the others were told before this page (re)joined, e.g. that
        // moderation withholds a picture.
        match self.state.rooms.lasting(&claims.room).await {
            Ok(notices) => notices.into_iter().for_each(|n| self.reply(n)),
            Err(e) => warn!("lasting notices unreadable: {e}"),
        }
        self.joined = Some(Joined {
            media_id,
            room: claims.room,
            participant: claims.sub,
            role: claims.role,
        });
        Flow::Continue
    }

    async fn on_offer(&mut self, sdp: String) -> Flow {
        let Some(joined) = &self.joined else {
            self.reply_error(ErrorCode::NotJoined, "send join first");
            return Flow::Continue;
        };
        let media = self.state.media.clone();
        let result = media
            .join(RoomId::new(&joined.room), joined.media_id.clone(), sdp)
            .await;
        match result {
            Ok((answer, events)) => {
                self.media_events = Some(events);
                self.reply(ServerMessage::Answer { sdp: answer });
                self.start_preview().await;
            }
            Err(JoinError::BadOffer(why)) => {
                self.reply_error(
                    ErrorCode::BadSdp,
                    format!("the SDP offer was rejected: {why}"),
                );
            }
            Err(JoinError::RoomFull) => self.reply_error(ErrorCode::RoomFull, "the room is full"),
            Err(JoinError::Unavailable | JoinError::UnknownParticipant) => {
                warn!("media server unavailable for an offer");
                self.reply_error(ErrorCode::Internal, "the media server is not available");
            }
        }
        Flow::Continue
    }

    async fn on_restart(&mut self, sdp: String) -> Flow {
        let Some(joined) = &self.joined else {
            self.reply_error(ErrorCode::NotJoined, "send join first");
            return Flow::Continue;
        };
        let media = self.state.media.clone();
        match media.restart(joined.media_id.clone(), sdp).await {
            Ok((answer, events)) => {
                info!(room = %joined.room, "ICE restart");
                self.media_events = Some(events);
                self.reply(ServerMessage::Answer { sdp: answer });
            }
            Err(JoinError::UnknownParticipant) => self.reply_error(
                ErrorCode::RestartFailed,
                "the media session is gone; send a new offer",
            ),
            Err(JoinError::BadOffer(why)) => self.reply_error(
                ErrorCode::BadSdp,
                format!("the ICE restart offer was rejected: {why}"),
            ),
            Err(JoinError::RoomFull | JoinError::Unavailable) => {
                warn!("media server unavailable for an ICE restart");
                self.reply_error(ErrorCode::Internal, "the media server is not available");
            }
        }
        Flow::Continue
    }

    async fn on_candidate(&mut self, candidate: Option<String>) -> Flow {
        let Some(joined) = &self.joined else {
            self.reply_error(ErrorCode::NotJoined, "send join first");
            return Flow::Continue;
        };
        // `null` or an empty string marks the end of gathering: nothing to add.
        let Some(candidate) = candidate.filter(|c| !c.trim().is_empty()) else {
            return Flow::Continue;
        };
        let media = self.state.media.clone();
        match media
            .add_remote_candidate(joined.media_id.clone(), candidate)
            .await
        {
            Ok(()) => {}
            Err(CandidateError::Malformed(why)) => {
                self.reply_error(
                    ErrorCode::BadCandidate,
                    format!("the ICE candidate was rejected: {why}"),
                );
            }
            Err(CandidateError::UnknownParticipant) => {
                self.reply_error(ErrorCode::BadCandidate, "send an offer before candidates");
            }
            Err(CandidateError::Unavailable) => {
                self.reply_error(ErrorCode::Internal, "the media server is not available");
            }
        }
        Flow::Continue
    }

    /// The library could not read a message: over its hard size cap, or a broken frame.
    fn on_read_error(&mut self, e: axum::Error) -> Flow {
        let inner = e.into_inner();
        let too_big = matches!(
            inner.downcast_ref::<tungstenite::Error>(),
            Some(tungstenite::Error::Capacity(_))
        );
        debug!("unreadable WebSocket input: {inner}");
        if too_big {
            let limit = self.state.signaling.max_message_bytes;
            self.reply_error(
                ErrorCode::MessageTooLarge,
                format!("messages are limited to {limit} bytes"),
            );
            Flow::Close(CLOSE_TOO_BIG, "message too large")
        } else {
            self.reply_error(
                ErrorCode::InvalidMessage,
                format!("unreadable WebSocket frame: {inner}"),
            );
            Flow::Close(CLOSE_PROTOCOL, "protocol error")
        }
    }

    async fn on_media_event(&mut self, event: SfuEvent) {
        match event {
            SfuEvent::Connected { .. } => {
                self.reply(ServerMessage::MediaConnected);
                if let Some(joined) = &self.joined
                    && self
                        .state
                        .rooms
                        .set_media_up(&joined.room, &joined.participant, self.id)
                        .await
                        .unwrap_or_else(|e| {
                            // The call stays connecting; it connects or times out.
                            warn!("media state not shared: {e}");
                            false
                        })
                {
                    call_event(&self.state, &joined.room, CallEvent::MediaUp).await;
                }
            }
            SfuEvent::Disconnected { reason, .. } => {
                self.media_events = None;
                self.reply(ServerMessage::MediaDisconnected { reason });
            }
        }
    }

    fn reply(&self, msg: ServerMessage) {
        if self.outbox.try_send(msg).is_err() {
            warn!("session outbox full; message dropped");
        }
    }

    fn reply_error(&self, code: ErrorCode, message: impl Into<String>) {
        self.state.metrics.count_error(code);
        self.reply(ServerMessage::error(code, message));
    }

    /// In the agent's own preview room, the pipeline loops the agent's video back.
    async fn start_preview(&self) {
        let Some(joined) = &self.joined else {
            return;
        };
        if joined.role != Side::Agent || !joined.room.starts_with(beauty_preview::ROOM_PREFIX) {
            return;
        }
        match self
            .state
            .previews
            .went_live(&joined.room, &joined.participant)
            .await
        {
            Ok(Some(params)) => self.state.media.preview_beauty(
                RoomId::new(&joined.room),
                joined.media_id.clone(),
                params,
            ),
            Ok(None) => {}
            // The dialog shows the raw camera until the agent changes a setting.
            Err(e) => warn!("beauty preview not started: {e}"),
        }
    }

    /// Takes the participant out of its room and the SFU, if this session still holds
    /// its place; the call is left as it is.
    async fn leave_quietly(&self, joined: &Joined) {
        if self
            .state
            .rooms
            .leave(&joined.room, &joined.participant, self.id)
            .await
            .unwrap_or(true)
        {
            self.state.media.leave(joined.media_id.clone());
        }
    }

    async fn leave(&mut self, ending: Ending) {
        // A preview room's pipeline stops with its page, whatever the preview store
        // says (an entry that expired or could not be read must not leak a pipeline).
        if let Some(joined) = &self.joined
            && joined.room.starts_with(beauty_preview::ROOM_PREFIX)
        {
            if let Err(e) = self.state.previews.close_room(&joined.room).await {
                warn!("beauty preview not closed (it expires): {e}");
            }
            self.state.media.stop_beauty(RoomId::new(&joined.room));
        }
        let Some(joined) = self.joined.take() else {
            return;
        };
        match ending {
            Ending::Closed => {
                hang_up(&self.state, &joined, self.id, EndReason::HangUp).await;
                info!("left");
                return;
            }
            // Out of the room and the SFU without hanging up: the drain ended the
            // call already, or a preview ends with its page (above).
            Ending::Shutdown => {
                self.leave_quietly(&joined).await;
                return;
            }
            Ending::HandOver if joined.room.starts_with(beauty_preview::ROOM_PREFIX) => {
                self.leave_quietly(&joined).await;
                return;
            }
            Ending::HandOver => {
                // Nothing to undo: the media node keeps the participant for the grace
                // period once this node's control connection is gone, and hangs up
                // if no page attached again (cluster::remote::server).
                info!(room = %joined.room, "node stopping; the page resumes elsewhere");
                return;
            }
            Ending::Lost => {}
        }
        // A new connection joining as this participant replaces this session, and
        // then the delayed hang-up below finds someone else holding the place.
        let grace = Duration::from_secs(self.state.signaling.reconnect_grace_secs);
        info!(room = %joined.room, ?grace, "connection lost; the participant keeps its place");
        let state = self.state.clone();
        let session = self.id;
        tokio::spawn(async move {
            tokio::time::sleep(grace).await;
            if hang_up(&state, &joined, session, EndReason::NetworkLost).await {
                info!(room = %joined.room, "did not come back; left");
            }
        });
    }
}

/// Takes the participant out of its room and the SFU, and hangs the call up, if
/// `session` still holds its place. Returns whether it did.
async fn hang_up(state: &AppState, joined: &Joined, session: u64, reason: EndReason) -> bool {
    match state
        .rooms
        .leave(&joined.room, &joined.participant, session)
        .await
    {
        Ok(true) => {}
        Ok(false) => return false,
        // Unknown whether another session took the place over: the call ends (the
        // database, not the room, is what a hang-up changes).
        Err(e) => warn!(room = %joined.room, "room not updated on leaving: {e}"),
    }
    state.media.leave(joined.media_id.clone());
    let by = match joined.role {
        Side::Agent => Party::Agent,
        Side::Customer => Party::Customer,
    };
    let id = CallId(joined.room.clone());
    match state.calls.leave(&id, by, reason, now_ms()).await {
        Ok(_) => {}
        Err(CallError::NotFound | CallError::Invalid(_) | CallError::Raced) => {
            debug!(room = %joined.room, "no call to end")
        }
        Err(e) => warn!(call = %id, "call not ended: {e}"),
    }
    true
}

/// Moves the call behind a room, when the room is a call. A standing room (no call),
/// or a call already past this step, is fine.
async fn call_event(state: &AppState, room: &str, event: CallEvent) {
    let id = CallId(room.to_owned());
    match state.calls.apply(&id, event, now_ms()).await {
        Ok(_) => {}
        Err(CallError::NotFound | CallError::Invalid(_) | CallError::Raced) => {
            debug!(room, "no call to move")
        }
        Err(e) => warn!(call = %id, "call not moved: {e}"),
    }
}

/// Whether a read error means the connection itself is gone (reset, broken pipe,
/// closed without a handshake) rather than a bad frame on a working one.
fn connection_gone(e: &axum::Error) -> bool {
    use tungstenite::error::ProtocolError;
    let inner = std::error::Error::source(e).and_then(|s| s.downcast_ref::<tungstenite::Error>());
    matches!(
        inner,
        Some(
            tungstenite::Error::Io(_)
                | tungstenite::Error::ConnectionClosed
                | tungstenite::Error::AlreadyClosed
                | tungstenite::Error::Protocol(ProtocolError::ResetWithoutClosingHandshake)
        )
    )
}

/// The next media event; pends forever when there is no (or no longer a) stream.
async fn next_event(events: &mut Option<mpsc::Receiver<SfuEvent>>) -> Option<SfuEvent> {
    if let Some(rx) = events
        && let Some(event) = rx.recv().await
    {
        return Some(event);
    }
    std::future::pending().await
}

async fn send(sink: &mut Sink, msg: &ServerMessage) -> Result<(), axum::Error> {
    sink.send(Message::Text(msg.to_json().into())).await
}
