//! A media node's control API (`cluster.internal_bind`): what signaling nodes call to
//! drive this node's SFU, recorder and moderation. Every request carries
//! `cluster.secret`; nothing here is reachable by browsers (keep the port private).
//!
//! A participant's WebSocket that drops without `leave` (its signaling node died) does
//! not end the participant at once: its page reconnects to another signaling node,
//! which attaches again with an ICE restart. If nobody attaches within
//! `signaling.reconnect_grace_secs`, the participant leaves and the call is hung up
//! here, as a single node does for a page that does not come back.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::Router;
use axum::extract::ws::{Message, WebSocket, WebSocketUpgrade};
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use futures_util::{SinkExt, StreamExt};
use kefu_media_server::{ParticipantId, RoomId, SfuEvent};
use kefu_proto::{EndReason, Party, Side};
use secrecy::{ExposeSecret, SecretString};
use tokio::sync::mpsc;
use tracing::{info, warn};

use super::wire::{
    FromMedia, Leave, Refusal, SECRET_HEADER, SetBeauty, StartTaps, StopTaps, ToMedia, WireJob,
};
use crate::accounts::CallId;
use crate::calls::machine::CallEvent;
use crate::state::AppState;

/// Messages on a participant's WebSocket are SDP and candidates.
const MAX_MESSAGE_BYTES: usize = 256 * 1024;

#[derive(Clone)]
struct Control {
    state: AppState,
    secret: Arc<SecretString>,
    /// Participants by id → the number of their current attachment, so a grace timer
    /// of an old connection knows a newer one took over.
    attachments: Arc<Mutex<HashMap<String, u64>>>,
    next: Arc<std::sync::atomic::AtomicU64>,
}

impl std::fmt::Debug for Control {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Control").finish_non_exhaustive()
    }
}

/// The control API's routes.
pub fn router(state: AppState, secret: SecretString) -> Router {
    let control = Control {
        state,
        secret: Arc::new(secret),
        attachments: Arc::default(),
        next: Arc::default(),
    };
    Router::new()
        .route("/internal/v1/media", get(participant))
        .route("/internal/v1/rooms/{room}/taps", post(start_taps))
        .route("/internal/v1/rooms/{room}/taps/stop", post(stop_taps))
        .route("/internal/v1/rooms/{room}/screen-alone", post(screen_alone))
        .route("/internal/v1/rooms/{room}/beauty", post(set_beauty))
        .route("/internal/v1/rooms/{room}/beauty/stop", post(stop_beauty))
        .route("/internal/v1/rooms/{room}/preview", post(preview))
        .route("/internal/v1/rooms/{room}/leave", post(leave))
        .layer(axum::middleware::from_fn_with_state(
            control.clone(),
            require_secret,
        ))
        .with_state(control)
}

/// Compares in constant time: the secret is not guessable byte by byte.
fn same(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

async fn require_secret(
    State(control): State<Control>,
    request: axum::extract::Request,
    next: axum::middleware::Next,
) -> Response {
    let given = request
        .headers()
        .get(SECRET_HEADER)
        .map(|v| v.as_bytes())
        .unwrap_or_default();
    if !same(given, control.secret.expose_secret().as_bytes()) {
        return StatusCode::UNAUTHORIZED.into_response();
    }
    next.run(request).await
}

fn room(path: &str) -> RoomId {
    RoomId::new(path)
}

async fn start_taps(
    State(control): State<Control>,
    Path(room_id): Path<String>,
    axum::Json(req): axum::Json<StartTaps>,
) -> StatusCode {
    let state = &control.state;
    let id = req.recording.as_ref().map(|j| j.id.clone());
    let started = state.media.start_taps(
        room(&room_id),
        req.parties.into_iter().map(Into::into).collect(),
        req.recording.map(WireJob::into),
        req.screening,
    );
    if let (Err(e), Some(id)) = (started, id) {
        let now = crate::clock::now_ms();
        if let Err(e) = state
            .recordings
            .start_failed(&state.store, &id, &e, now)
            .await
        {
            warn!(recording = %id, "cannot mark the recording failed: {e}");
        }
    }
    StatusCode::NO_CONTENT
}

async fn stop_taps(
    State(control): State<Control>,
    Path(room_id): Path<String>,
    axum::Json(req): axum::Json<StopTaps>,
) -> StatusCode {
    control
        .state
        .media
        .stop_taps(room(&room_id), req.recording.as_deref());
    StatusCode::NO_CONTENT
}

async fn screen_alone(State(control): State<Control>, Path(room_id): Path<String>) -> StatusCode {
    control.state.media.screen_without_recorder(room(&room_id));
    StatusCode::NO_CONTENT
}

async fn set_beauty(
    State(control): State<Control>,
    Path(room_id): Path<String>,
    axum::Json(req): axum::Json<SetBeauty>,
) -> StatusCode {
    let params = match req.params {
        Some(p) => match p.params() {
            Some(p) => Some(p),
            None => return StatusCode::UNPROCESSABLE_ENTITY,
        },
        None => None,
    };
    control
        .state
        .media
        .set_beauty(room(&room_id), ParticipantId::new(req.agent), params);
    StatusCode::NO_CONTENT
}

async fn stop_beauty(State(control): State<Control>, Path(room_id): Path<String>) -> StatusCode {
    control.state.media.stop_beauty(room(&room_id));
    StatusCode::NO_CONTENT
}

async fn preview(
    State(control): State<Control>,
    Path(room_id): Path<String>,
    axum::Json(req): axum::Json<SetBeauty>,
) -> StatusCode {
    let Some(params) = req.params.and_then(|p| p.params()) else {
        return StatusCode::UNPROCESSABLE_ENTITY;
    };
    control
        .state
        .media
        .preview_beauty(room(&room_id), ParticipantId::new(req.agent), params);
    StatusCode::NO_CONTENT
}

/// A participant leaves though no connection of this node's caller drives it (the
/// call ended on another signaling node than the one holding its page).
async fn leave(
    State(control): State<Control>,
    Path(_room): Path<String>,
    axum::Json(req): axum::Json<Leave>,
) -> StatusCode {
    control
        .attachments
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .remove(&req.participant);
    control
        .state
        .media
        .leave(ParticipantId::new(req.participant));
    StatusCode::NO_CONTENT
}

async fn participant(
    State(control): State<Control>,
    _headers: HeaderMap,
    ws: WebSocketUpgrade,
) -> Response {
    ws.max_message_size(MAX_MESSAGE_BYTES)
        .on_upgrade(move |socket| drive(control, socket))
}

fn encode(msg: &FromMedia) -> Message {
    // Plain enums of strings: serializing cannot fail.
    Message::Text(
        serde_json::to_string(msg)
            .unwrap_or_else(|_| String::from(r#"{"type":"disconnected","reason":"encoding"}"#))
            .into(),
    )
}

/// One participant's peer connection, driven by one signaling node.
async fn drive(control: Control, socket: WebSocket) {
    let (mut sink, mut stream) = socket.split();
    let media = control.state.media.clone();
    let mut participant: Option<(RoomOf, ParticipantId)> = None;
    let mut events: Option<mpsc::Receiver<SfuEvent>> = None;
    let attachment = control
        .next
        .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let mut left = false;
    loop {
        tokio::select! {
            incoming = stream.next() => {
                let Some(Ok(message)) = incoming else { break };
                let text = match message {
                    Message::Text(t) => t,
                    Message::Close(_) => break,
                    _ => continue,
                };
                let request = match serde_json::from_str::<ToMedia>(&text) {
                    Ok(r) => r,
                    Err(e) => {
                        warn!("bad control message: {e}");
                        break;
                    }
                };
                let reply = match request {
                    ToMedia::Join { room, participant: id, offer } if participant.is_none() => {
                        let pid = ParticipantId::new(&id);
                        participant = Some((RoomOf(room.clone()), pid.clone()));
                        control.attach(&id, attachment);
                        match media.join(RoomId::new(&room), pid, offer).await {
                            Ok((answer, rx)) => { events = Some(rx); FromMedia::Answer { sdp: answer } }
                            Err(e) => FromMedia::Refused { reason: Refusal::from(&e), detail: e.to_string() },
                        }
                    }
                    ToMedia::Attach { participant: id, offer } if participant.is_none() => {
                        let pid = ParticipantId::new(&id);
                        participant = Some((RoomOf::from_participant(&id), pid.clone()));
                        control.attach(&id, attachment);
                        match media.restart(pid, offer).await {
                            Ok((answer, rx)) => { events = Some(rx); FromMedia::Answer { sdp: answer } }
                            Err(e) => FromMedia::Refused { reason: Refusal::from(&e), detail: e.to_string() },
                        }
                    }
                    ToMedia::Restart { offer } => match &participant {
                        Some((_, pid)) => match media.restart(pid.clone(), offer).await {
                            Ok((answer, rx)) => { events = Some(rx); FromMedia::Answer { sdp: answer } }
                            Err(e) => FromMedia::Refused { reason: Refusal::from(&e), detail: e.to_string() },
                        },
                        None => FromMedia::Refused { reason: Refusal::UnknownParticipant, detail: "join first".into() },
                    },
                    ToMedia::Candidate { candidate } => match &participant {
                        Some((_, pid)) => match media.add_remote_candidate(pid.clone(), candidate).await {
                            Ok(()) => continue,
                            Err(e) => FromMedia::CandidateRefused { detail: e.to_string() },
                        },
                        None => FromMedia::CandidateRefused { detail: "join first".into() },
                    },
                    ToMedia::Leave => {
                        if let Some((_, pid)) = &participant {
                            media.leave(pid.clone());
                        }
                        left = true;
                        break;
                    }
                    ToMedia::Join { .. } | ToMedia::Attach { .. } => {
                        warn!("a second join on one control connection");
                        break;
                    }
                };
                if sink.send(encode(&reply)).await.is_err() {
                    break;
                }
            }
            event = next_event(&mut events) => {
                let Some(event) = event else {
                    // The SFU let the participant go (its call ended): this
                    // connection has nothing left to drive.
                    let gone = FromMedia::Disconnected { reason: "left the media server".into() };
                    let _ = sink.send(encode(&gone)).await;
                    left = true;
                    break;
                };
                if sink.send(encode(&FromMedia::event(&event))).await.is_err() {
                    break;
                }
            }
        }
    }
    match (left, participant) {
        (false, Some((room, pid))) => control.orphaned(room, pid, attachment),
        // Gone for good: forget its attachment (if no newer connection took it).
        (true, Some((_, pid))) => {
            let mut attachments = control
                .attachments
                .lock()
                .unwrap_or_else(|p| p.into_inner());
            if attachments.get(pid.as_str()) == Some(&attachment) {
                attachments.remove(pid.as_str());
            }
        }
        _ => {}
    }
}

/// The next SFU event; `None` once the SFU dropped the participant's channel.
async fn next_event(events: &mut Option<mpsc::Receiver<SfuEvent>>) -> Option<SfuEvent> {
    match events {
        Some(rx) => rx.recv().await,
        None => std::future::pending().await,
    }
}

/// The call room a participant id belongs to (`<room>/<role>/<name>`, see
/// `rooms::media_participant_id`).
#[derive(Debug, Clone)]
struct RoomOf(String);

impl RoomOf {
    fn from_participant(id: &str) -> Self {
        Self(id.split('/').next().unwrap_or(id).to_owned())
    }

    /// The side, from the participant id (room ids hold no `/`; names may).
    fn side(id: &str) -> Option<Side> {
        match id.split('/').nth(1) {
            Some("agent") => Some(Side::Agent),
            Some("customer") => Some(Side::Customer),
            _ => None,
        }
    }
}

impl Control {
    fn attach(&self, participant: &str, attachment: u64) {
        self.attachments
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .insert(participant.to_owned(), attachment);
    }

    /// The connection driving `pid` dropped without a leave: unless another
    /// connection attaches within the grace period, the participant leaves and its
    /// call is hung up.
    fn orphaned(&self, room: RoomOf, pid: ParticipantId, attachment: u64) {
        let control = self.clone();
        let grace = Duration::from_secs(self.state.signaling.reconnect_grace_secs);
        info!(room = %room.0, ?grace, "control connection lost; the participant keeps its place");
        tokio::spawn(async move {
            tokio::time::sleep(grace).await;
            {
                let mut attachments = control
                    .attachments
                    .lock()
                    .unwrap_or_else(|p| p.into_inner());
                if attachments.get(pid.as_str()) != Some(&attachment) {
                    return;
                }
                attachments.remove(pid.as_str());
            }
            control.state.media.leave(pid.clone());
            // A beauty preview's pipeline ends with its page (its signaling node
            // may have stopped before it could say so).
            if room.0.starts_with(crate::beauty::preview::ROOM_PREFIX) {
                control.state.media.stop_beauty(RoomId::new(&room.0));
                return;
            }
            let by = match RoomOf::side(pid.as_str()) {
                Some(Side::Agent) => Party::Agent,
                _ => Party::Customer,
            };
            let event = CallEvent::HangUp {
                by,
                reason: EndReason::NetworkLost,
            };
            match control
                .state
                .calls
                .apply(&CallId(room.0.clone()), event, crate::clock::now_ms())
                .await
            {
                Ok(_) => info!(room = %room.0, "nobody drove the participant again: hung up"),
                Err(e) => tracing::debug!(room = %room.0, "no call to hang up: {e}"),
            }
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn participant_ids_name_their_room_and_side() {
        let id = "0b6f-room/customer/visitor/1";
        assert_eq!(RoomOf::from_participant(id).0, "0b6f-room");
        assert_eq!(RoomOf::side(id), Some(Side::Customer));
        assert_eq!(RoomOf::side("r/agent/a"), Some(Side::Agent));
        assert_eq!(RoomOf::side("garbage"), None);
        assert!(same(b"secret", b"secret"));
        assert!(!same(b"secret", b"secreT"));
        assert!(!same(b"secret", b"secret!"));
    }
}
