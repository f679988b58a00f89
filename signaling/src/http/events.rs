//! The pages' event channel (`/ws/events`): what the lifecycle publishes, filtered
//! for one agent or one customer, instead of polling. Documented in docs/signaling.md.
//!
//! The client's first message subscribes: `{"type":"subscribe","session":"<bearer>"}`
//! (an agent's workbench) or `{"type":"subscribe","room_token":"<jwt>"}` (a
//! customer's request). The server answers with a snapshot, then sends a fresh one
//! whenever a call that concerns the subscriber changes:
//! - an agent gets `queue` (waiting count and calls ringing at it) and `call` (one of
//!   its own calls, as `GET /api/v1/calls/{id}` shows it);
//! - a customer gets `request` (its request's state and queue position);
//! - an agent also gets `verification` when one of its face-verification attempts
//!   ends (so the workbench learns a result taken on the agent's phone).

use std::time::Duration;

use axum::extract::State;
use axum::extract::ws::{CloseFrame, Message, Utf8Bytes, WebSocket, WebSocketUpgrade};
use axum::response::Response;
use serde::{Deserialize, Serialize};
use tokio::sync::broadcast::error::RecvError;
use tracing::{Instrument, debug, info_span, warn};

use crate::accounts::session::token_hash;
use crate::accounts::{CallId, GroupId, UserId, UserRole};
use crate::calls::http::{CallView, QueueView};
use crate::calls::lifecycle::CallChanged;
use crate::calls::requests::RequestView;
use crate::rooms::token::{Side, unix_now};
use crate::state::AppState;

/// Subscribe messages are short; anything longer is refused.
const MAX_MESSAGE_BYTES: usize = 4096;
const CLOSE_GOING_AWAY: u16 = 1001;
const CLOSE_POLICY: u16 = 1008;

#[derive(Debug, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case", deny_unknown_fields)]
enum ClientEvent {
    /// Exactly one of the two.
    Subscribe {
        #[serde(default)]
        session: Option<String>,
        #[serde(default)]
        room_token: Option<String>,
    },
}

/// What the server sends on the event channel.
#[derive(Debug, Serialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum EventMessage {
    Subscribed,
    Queue(QueueView),
    Call { call: CallView },
    Request(RequestView),
    Verification(crate::verification::attempts::AttemptResult),
    Error { code: &'static str, message: String },
}

/// Who listens, and what concerns them.
enum Subscriber {
    Agent {
        id: UserId,
        groups: Vec<GroupId>,
        /// The session it subscribed with: checked again before each push.
        session_hash: String,
    },
    Customer {
        call: CallId,
        group: Option<GroupId>,
        /// The room token's expiry (Unix seconds).
        expires: u64,
    },
}

pub async fn upgrade(State(state): State<AppState>, ws: WebSocketUpgrade) -> Response {
    ws.max_message_size(MAX_MESSAGE_BYTES)
        .on_upgrade(move |socket| {
            let id = state.next_session_id();
            run(state, socket).instrument(info_span!("events", session = id))
        })
}

async fn run(state: AppState, mut socket: WebSocket) {
    let timeout = Duration::from_secs(state.signaling.join_timeout_secs);
    let first = tokio::time::timeout(timeout, socket.recv()).await;
    let text = match first {
        Ok(Some(Ok(Message::Text(text)))) => text,
        Ok(Some(Ok(Message::Close(_)) | Err(_)) | None) => return,
        Ok(Some(Ok(_))) => {
            refuse(socket, "invalid_message", "send a subscribe message first").await;
            return;
        }
        Err(_) => {
            refuse(socket, "subscribe_timeout", "no subscribe message in time").await;
            return;
        }
    };
    // Subscribe before the snapshot, so nothing between the two is missed.
    let mut changes = state.calls.subscribe();
    let mut verifications = state.attempts.subscribe();
    let mut subscriber = match subscribe(&state, &text).await {
        Ok(s) => s,
        Err((code, message)) => {
            refuse(socket, code, message).await;
            return;
        }
    };
    let mut shutdown = state.shutdown.clone();
    if send(&mut socket, &EventMessage::Subscribed).await.is_err()
        || snapshot(&state, &subscriber, &mut socket).await.is_err()
    {
        return;
    }
    loop {
        tokio::select! {
            change = changes.recv() => match change {
                Ok(change) => {
                    if !concerns(&subscriber, &change) {
                        continue;
                    }
                    // A logout, a password reset or an expired token ends the channel.
                    if !still_valid(&state, &subscriber).await {
                        refuse(socket, "unauthorized", "the session has ended").await;
                        return;
                    }
                    if push(&state, &subscriber, &change, &mut socket).await.is_err() {
                        return;
                    }
                }
                Err(RecvError::Lagged(n)) => {
                    debug!(missed = n, "event channel lagged; sending a fresh snapshot");
                    refresh_groups(&state, &mut subscriber).await;
                    if snapshot(&state, &subscriber, &mut socket).await.is_err() {
                        return;
                    }
                }
                Err(RecvError::Closed) => return,
            },
            result = verifications.recv() => match result {
                Ok(result) => {
                    let mine = matches!(&subscriber, Subscriber::Agent { id, .. } if *id == result.agent_id);
                    if !mine {
                        continue;
                    }
                    if !still_valid(&state, &subscriber).await {
                        refuse(socket, "unauthorized", "the session has ended").await;
                        return;
                    }
                    if send(&mut socket, &EventMessage::Verification(result)).await.is_err() {
                        return;
                    }
                }
                Err(RecvError::Lagged(_)) => {}
                Err(RecvError::Closed) => return,
            },
            incoming = socket.recv() => match incoming {
                // Nothing more is expected from the client; pings are answered by the library.
                Some(Ok(Message::Close(_)) | Err(_)) | None => return,
                Some(Ok(_)) => {}
            },
            _ = shutdown.changed() => {
                close(socket, CLOSE_GOING_AWAY, "server shutting down").await;
                return;
            }
        }
    }
}

/// Checks the subscribe message's credentials.
async fn subscribe(state: &AppState, text: &str) -> Result<Subscriber, (&'static str, String)> {
    let msg: ClientEvent = serde_json::from_str(text)
        .map_err(|e| ("invalid_message", format!("not a subscribe message: {e}")))?;
    let ClientEvent::Subscribe {
        session,
        room_token,
    } = msg;
    match (session, room_token) {
        (Some(session), None) => {
            let session_hash = token_hash(&session);
            let (user, _) = state
                .store
                .session_user(&session_hash, crate::clock::now_ms())
                .await
                .map_err(|e| {
                    warn!("cannot read a session: {e}");
                    ("internal", "cannot subscribe right now".to_owned())
                })?
                .ok_or(("unauthorized", "the session is not valid".to_owned()))?;
            if user.role != UserRole::Agent {
                return Err(("forbidden", "agents only".to_owned()));
            }
            let mut subscriber = Subscriber::Agent {
                id: user.id,
                groups: Vec::new(),
                session_hash,
            };
            refresh_groups(state, &mut subscriber).await;
            Ok(subscriber)
        }
        (None, Some(token)) => {
            let claims = state
                .tokens
                .verify(&token, unix_now())
                .map_err(|_| ("unauthorized", "the room token is not valid".to_owned()))?;
            if claims.role != Side::Customer {
                return Err(("forbidden", "customers only".to_owned()));
            }
            let call = CallId(claims.room);
            let group = match state.store.call(&call).await {
                Ok(Some(c)) => c.group_id,
                Ok(None) => return Err(("not_found", "no such request".to_owned())),
                Err(e) => {
                    warn!("cannot read a call: {e}");
                    return Err(("internal", "cannot subscribe right now".to_owned()));
                }
            };
            Ok(Subscriber::Customer {
                call,
                group,
                expires: claims.exp,
            })
        }
        _ => Err((
            "invalid_message",
            "give either a session or a room token".to_owned(),
        )),
    }
}

/// Whether the subscriber's credentials still hold.
async fn still_valid(state: &AppState, subscriber: &Subscriber) -> bool {
    match subscriber {
        Subscriber::Agent { session_hash, .. } => state
            .store
            .session_user(session_hash, crate::clock::now_ms())
            .await
            .is_ok_and(|s| s.is_some()),
        Subscriber::Customer { expires, .. } => unix_now() < *expires,
    }
}

async fn refresh_groups(state: &AppState, subscriber: &mut Subscriber) {
    if let Subscriber::Agent { id, groups, .. } = subscriber {
        match state.store.groups_of_user(id).await {
            Ok(g) => *groups = g,
            Err(e) => warn!("cannot read the agent's groups: {e}"),
        }
    }
}

/// Whether a change may alter what the subscriber sees.
fn concerns(subscriber: &Subscriber, change: &CallChanged) -> bool {
    let call = &change.call;
    match subscriber {
        Subscriber::Agent { id, groups, .. } => {
            call.agent_id.as_ref() == Some(id)
                || call.group_id.as_ref().is_some_and(|g| groups.contains(g))
        }
        // Its own request, or the queue it waits in moved.
        Subscriber::Customer {
            call: mine, group, ..
        } => &call.id == mine || (group.is_some() && call.group_id == *group),
    }
}

/// Sends what changed: the call itself (an agent's own) and the fresh queue or request.
async fn push(
    state: &AppState,
    subscriber: &Subscriber,
    change: &CallChanged,
    socket: &mut WebSocket,
) -> Result<(), axum::Error> {
    if let Subscriber::Agent { id, .. } = subscriber
        && change.call.agent_id.as_ref() == Some(id)
    {
        let view = CallView::of(&change.call, Some(&state.public_url));
        send(socket, &EventMessage::Call { call: view }).await?;
    }
    snapshot(state, subscriber, socket).await
}

async fn snapshot(
    state: &AppState,
    subscriber: &Subscriber,
    socket: &mut WebSocket,
) -> Result<(), axum::Error> {
    let msg = match subscriber {
        Subscriber::Agent { id, .. } => crate::calls::http::queue_view(state, id)
            .await
            .map(EventMessage::Queue),
        Subscriber::Customer { call, .. } => crate::calls::requests::view_of(state, call, None)
            .await
            .map(EventMessage::Request),
    };
    match msg {
        Ok(msg) => send(socket, &msg).await,
        // The store is unwell; the next change tries again.
        Err(e) => {
            warn!("cannot build an event snapshot: {e}");
            Ok(())
        }
    }
}

async fn send(socket: &mut WebSocket, msg: &EventMessage) -> Result<(), axum::Error> {
    // Invariant: these views are plain data and always serialize.
    let json = serde_json::to_string(msg).unwrap_or_default();
    socket.send(Message::Text(json.into())).await
}

async fn refuse(mut socket: WebSocket, code: &'static str, message: impl Into<String>) {
    let msg = EventMessage::Error {
        code,
        message: message.into(),
    };
    let _ = send(&mut socket, &msg).await;
    close(socket, CLOSE_POLICY, "refused").await;
}

async fn close(mut socket: WebSocket, code: u16, reason: &'static str) {
    let frame = CloseFrame {
        code,
        reason: Utf8Bytes::from_static(reason),
    };
    let _ = socket.send(Message::Close(Some(frame))).await;
}
