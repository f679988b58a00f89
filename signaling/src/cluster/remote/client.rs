//! The media plane on other nodes, as a signaling node drives it: a [`MediaRouter`]
//! that places each room on a media node (`RedisPlacement`) and calls that node's
//! control API (server.rs). A participant's peer connection is driven over one
//! WebSocket to its media node; losing it reads as the media going away.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use futures_util::future::BoxFuture;
use futures_util::{SinkExt, StreamExt};
use kefu_beauty::BeautyParams;
use kefu_media_server::moderation::ModerationSettings;
use kefu_media_server::{CandidateError, JoinError, ParticipantId, RoomId, SfuEvent};
use kefu_proto::TapParty;
use kefu_recorder::{RecorderError, RecordingJob};
use secrecy::{ExposeSecret, SecretString};
use serde::Serialize;
use tokio::sync::{mpsc, oneshot};
use tokio_tungstenite::tungstenite::{self, Message};
use tracing::{debug, warn};

use super::wire::{
    FromMedia, Leave, SECRET_HEADER, SetBeauty, StartTaps, StopTaps, ToMedia, WireBeauty, WireJob,
    WireParty,
};
use crate::beauty::preview::ROOM_PREFIX;
use crate::cluster::media::MediaRouter;
use crate::cluster::nodes::NodeInfo;
use crate::cluster::redis::RedisPlacement;

/// A media node that does not answer a join in this long is treated as unavailable.
const ANSWER_TIMEOUT: Duration = Duration::from_secs(10);
/// A room's placement is released this long after its call ended.
const RELEASE_DELAY: Duration = Duration::from_secs(3);
/// Room operations (taps, beauty) give up after this long.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(5);

type Answered = oneshot::Sender<Result<String, JoinError>>;

/// A participant's driver task, by the number telling it from its successors.
type Drivers = Arc<Mutex<HashMap<ParticipantId, (u64, mpsc::Sender<Command>)>>>;

/// What a participant's driver task is asked to do.
enum Command {
    /// Send `message`; the next answer or refusal goes to `answered`, and events from
    /// then on to `events`.
    Offer {
        message: ToMedia,
        answered: Answered,
        events: mpsc::Sender<SfuEvent>,
    },
    Candidate(String),
    Leave,
}

#[derive(Debug, Clone)]
pub struct RemoteMediaRouter {
    placement: RedisPlacement,
    secret: Arc<SecretString>,
    http: reqwest::Client,
    /// Participants driven from this node, by id.
    drivers: Drivers,
    next_driver: Arc<std::sync::atomic::AtomicU64>,
    /// Each placed room's queue of operations, in order.
    room_queues: Arc<Mutex<HashMap<RoomId, mpsc::UnboundedSender<RoomOp>>>>,
}

impl RemoteMediaRouter {
    pub fn new(placement: RedisPlacement, secret: SecretString) -> Self {
        Self {
            placement,
            secret: Arc::new(secret),
            http: reqwest::Client::builder()
                .timeout(REQUEST_TIMEOUT)
                .build()
                .unwrap_or_default(),
            drivers: Arc::default(),
            next_driver: Arc::default(),
            room_queues: Arc::default(),
        }
    }

    fn drivers(
        &self,
    ) -> std::sync::MutexGuard<'_, HashMap<ParticipantId, (u64, mpsc::Sender<Command>)>> {
        self.drivers.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// The driver of `participant` on this node, if any.
    fn driver(&self, participant: &ParticipantId) -> Option<mpsc::Sender<Command>> {
        self.drivers().get(participant).map(|(_, tx)| tx.clone())
    }

    /// Opens a control connection to `node` for `participant` and sends `first`.
    async fn connect(
        &self,
        node: &NodeInfo,
        participant: ParticipantId,
        first: ToMedia,
    ) -> Result<(String, mpsc::Receiver<SfuEvent>), JoinError> {
        let url = format!(
            "{}/internal/v1/media",
            node.internal_url
                .trim_end_matches('/')
                .replacen("http", "ws", 1)
        );
        let mut request = tungstenite::client::IntoClientRequest::into_client_request(url.as_str())
            .map_err(|e| {
                warn!(node = %node.id, "bad internal URL: {e}");
                JoinError::Unavailable
            })?;
        let secret = tungstenite::http::HeaderValue::from_str(self.secret.expose_secret())
            .map_err(|_| JoinError::Unavailable)?;
        request.headers_mut().insert(SECRET_HEADER, secret);
        let (socket, _) =
            tokio::time::timeout(ANSWER_TIMEOUT, tokio_tungstenite::connect_async(request))
                .await
                .map_err(|_| JoinError::Unavailable)?
                .map_err(|e| {
                    warn!(node = %node.id, "media node unreachable: {e}");
                    JoinError::Unavailable
                })?;
        let (tx, rx) = mpsc::channel(32);
        let id = self
            .next_driver
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        // The task holds no sender of its own: once nobody can command it (a refused
        // join dropped its sender, or a newer driver replaced it), it closes.
        tokio::spawn(drive(
            socket,
            participant.clone(),
            rx,
            self.drivers.clone(),
            id,
        ));
        let (sdp, events_rx) = offer(&tx, first).await?;
        // A driver this node had for the participant (a reloaded page) goes quietly:
        // the media node keeps the participant for the new connection.
        self.drivers().insert(participant, (id, tx));
        Ok((sdp, events_rx))
    }

    /// Runs a room operation on the node holding `room`, in the background (the
    /// seam's room operations do not wait), after the room's earlier ones: a call
    /// that ends as it connects must not see its stop overtake its start.
    fn on_room<T: Serialize>(&self, room: RoomId, op: &'static str, body: T, release: bool) {
        let body = match serde_json::to_value(&body) {
            Ok(body) => body,
            Err(e) => {
                warn!(%room, op, "room operation not encoded: {e}");
                return;
            }
        };
        let op = RoomOp { op, body, release };
        let mut queues = self.room_queues.lock().unwrap_or_else(|p| p.into_inner());
        let queued = match queues.get(&room) {
            Some(queue) => queue.send(op).map_err(|e| e.0),
            None => Err(op),
        };
        if let Err(op) = queued {
            let (tx, rx) = mpsc::unbounded_channel();
            // Invariant: the receiver is alive, just made.
            let _ = tx.send(op);
            queues.insert(room.clone(), tx);
            tokio::spawn(run_room_ops(self.clone(), room, rx));
        }
    }
}

/// One room operation, as queued.
#[derive(Debug)]
struct RoomOp {
    op: &'static str,
    body: serde_json::Value,
    /// The room is over after this one: its placement is released.
    release: bool,
}

/// How often a room operation is tried before it is given up (logged).
const ROOM_OP_TRIES: u32 = 3;

/// Sends a room's operations one after the other until the room is released.
async fn run_room_ops(
    router: RemoteMediaRouter,
    room: RoomId,
    mut ops: mpsc::UnboundedReceiver<RoomOp>,
) {
    while let Some(RoomOp { op, body, release }) = ops.recv().await {
        let mut tries = 0;
        loop {
            tries += 1;
            match router.send_room_op(&room, op, &body).await {
                Ok(()) => break,
                Err(e) if tries < ROOM_OP_TRIES => {
                    debug!(%room, op, "room operation failed, trying again: {e}");
                    tokio::time::sleep(Duration::from_millis(300)).await;
                }
                Err(e) => {
                    warn!(%room, op, "room operation failed: {e}");
                    break;
                }
            }
        }
        if release {
            // Operations for the room queued at the same moment (the participants'
            // leaves) still find its node meanwhile.
            tokio::time::sleep(RELEASE_DELAY).await;
            if let Err(e) = router.placement.release(room.as_str()).await {
                warn!(%room, "placement not released (it expires): {e}");
            }
            router
                .room_queues
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .remove(&room);
            return;
        }
    }
}

impl RemoteMediaRouter {
    /// One room operation to the node holding the room; nothing when it is not placed.
    async fn send_room_op(
        &self,
        room: &RoomId,
        op: &str,
        body: &serde_json::Value,
    ) -> Result<(), String> {
        let node = match self.placement.node_of(room.as_str()).await {
            Ok(Some(node)) => node,
            Ok(None) => {
                debug!(%room, op, "room not placed: nothing to do");
                return Ok(());
            }
            Err(e) => return Err(e.to_string()),
        };
        let url = format!(
            "{}/internal/v1/rooms/{}/{op}",
            node.internal_url.trim_end_matches('/'),
            room.as_str()
        );
        self.http
            .post(url)
            .header(SECRET_HEADER, self.secret.expose_secret())
            .json(body)
            .send()
            .await
            .and_then(|r| r.error_for_status())
            .map(drop)
            .map_err(|e| format!("{} ({}): {e}", node.id, op))
    }
}

/// Sends an offer (join, attach or restart) through a participant's driver and waits
/// for its answer; the SFU's events come on the returned channel from then on.
async fn offer(
    driver: &mpsc::Sender<Command>,
    message: ToMedia,
) -> Result<(String, mpsc::Receiver<SfuEvent>), JoinError> {
    let (events, events_rx) = mpsc::channel(16);
    let (answered, answer) = oneshot::channel();
    driver
        .send(Command::Offer {
            message,
            answered,
            events,
        })
        .await
        .map_err(|_| JoinError::Unavailable)?;
    let sdp = tokio::time::timeout(ANSWER_TIMEOUT, answer)
        .await
        .map_err(|_| JoinError::Unavailable)?
        .map_err(|_| JoinError::Unavailable)??;
    Ok((sdp, events_rx))
}

/// Drives one participant's control connection until it closes.
async fn drive(
    socket: tokio_tungstenite::WebSocketStream<
        tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>,
    >,
    participant: ParticipantId,
    mut commands: mpsc::Receiver<Command>,
    drivers: Drivers,
    me: u64,
) {
    let (mut sink, mut stream) = socket.split();
    // The offer waiting for its answer, with where its events go once it is answered
    // (a refused restart leaves the events where they were).
    let mut pending: Option<(Answered, mpsc::Sender<SfuEvent>)> = None;
    let mut events: Option<mpsc::Sender<SfuEvent>> = None;
    let mut reason = "the media node closed the connection";
    loop {
        tokio::select! {
            command = commands.recv() => {
                let message = match command {
                    Some(Command::Offer { message, answered, events: to }) => {
                        pending = Some((answered, to));
                        message
                    }
                    Some(Command::Candidate(candidate)) => ToMedia::Candidate { candidate },
                    Some(Command::Leave) => ToMedia::Leave,
                    // Replaced by a newer driver: close without leaving.
                    None => break,
                };
                let leaving = message == ToMedia::Leave;
                // Plain strings: serializing cannot fail.
                let text = serde_json::to_string(&message).unwrap_or_default();
                if sink.send(Message::Text(text.into())).await.is_err() {
                    reason = "the media node is unreachable";
                    break;
                }
                if leaving {
                    let _ = sink.close().await;
                    return;
                }
            }
            incoming = stream.next() => {
                let Some(Ok(Message::Text(text))) = incoming else {
                    match incoming {
                        Some(Ok(Message::Close(_))) | None | Some(Err(_)) => break,
                        _ => continue,
                    }
                };
                match serde_json::from_str::<FromMedia>(&text) {
                    Ok(FromMedia::Answer { sdp }) => {
                        if let Some((answered, to)) = pending.take() {
                            events = Some(to);
                            let _ = answered.send(Ok(sdp));
                        }
                    }
                    Ok(FromMedia::Refused { reason, detail }) => {
                        if let Some((answered, _)) = pending.take() {
                            let _ = answered.send(Err(reason.into_error(detail)));
                        }
                    }
                    Ok(FromMedia::CandidateRefused { detail }) => {
                        debug!(%participant, "candidate refused by the media node: {detail}");
                    }
                    Ok(FromMedia::Connected) => {
                        if let Some(events) = &events {
                            let _ = events.send(SfuEvent::Connected { participant: participant.clone() }).await;
                        }
                    }
                    Ok(FromMedia::Disconnected { reason }) => {
                        if let Some(events) = &events {
                            let _ = events.send(SfuEvent::Disconnected { participant: participant.clone(), reason }).await;
                        }
                    }
                    Err(e) => warn!(%participant, "unreadable message from the media node: {e}"),
                }
            }
        }
    }
    if let Some((answered, _)) = pending.take() {
        let _ = answered.send(Err(JoinError::Unavailable));
    }
    if let Some(events) = &events {
        let _ = events
            .send(SfuEvent::Disconnected {
                participant: participant.clone(),
                reason: reason.into(),
            })
            .await;
    }
    let mut drivers = drivers.lock().unwrap_or_else(|p| p.into_inner());
    if drivers.get(&participant).is_some_and(|(id, _)| *id == me) {
        drivers.remove(&participant);
    }
}

/// The call room of a media participant id (`<room>/<role>/<name>`).
fn room_of(participant: &ParticipantId) -> &str {
    participant.as_str().split('/').next().unwrap_or_default()
}

impl MediaRouter for RemoteMediaRouter {
    fn outlives_this_process(&self) -> bool {
        true
    }

    fn detach_all(&self) {
        // A driver nobody can command closes its connection without `leave`: the
        // media node keeps the participant for the grace period.
        self.drivers().clear();
    }

    fn join(
        &self,
        room: RoomId,
        participant: ParticipantId,
        offer: String,
    ) -> BoxFuture<'_, Result<(String, mpsc::Receiver<SfuEvent>), JoinError>> {
        Box::pin(async move {
            let node = self.placement.node_for(room.as_str()).await.map_err(|e| {
                warn!(%room, "no media node for the room: {e}");
                JoinError::Unavailable
            })?;
            let first = ToMedia::Join {
                room: room.as_str().to_owned(),
                participant: participant.as_str().to_owned(),
                offer,
            };
            self.connect(&node, participant, first).await
        })
    }

    fn restart(
        &self,
        participant: ParticipantId,
        offer: String,
    ) -> BoxFuture<'_, Result<(String, mpsc::Receiver<SfuEvent>), JoinError>> {
        Box::pin(async move {
            if let Some(driver) = self.driver(&participant) {
                return self::offer(&driver, ToMedia::Restart { offer }).await;
            }
            // Its signaling moved here from another node: attach to the media node
            // holding its room.
            let node = match self.placement.node_of(room_of(&participant)).await {
                Ok(Some(node)) => node,
                Ok(None) => return Err(JoinError::UnknownParticipant),
                Err(e) => {
                    warn!(%participant, "media node of the room unknown: {e}");
                    return Err(JoinError::Unavailable);
                }
            };
            let first = ToMedia::Attach {
                participant: participant.as_str().to_owned(),
                offer,
            };
            self.connect(&node, participant, first).await
        })
    }

    fn add_remote_candidate(
        &self,
        participant: ParticipantId,
        candidate: String,
    ) -> BoxFuture<'_, Result<(), CandidateError>> {
        Box::pin(async move {
            let Some(driver) = self.driver(&participant) else {
                return Err(CandidateError::UnknownParticipant);
            };
            // A malformed candidate is refused by the media node and logged there;
            // the page's other candidates carry on.
            driver
                .send(Command::Candidate(candidate))
                .await
                .map_err(|_| CandidateError::Unavailable)
        })
    }

    fn leave(&self, participant: ParticipantId) {
        let driver = self.drivers().remove(&participant);
        match driver {
            // Sent even behind a full queue; the connection closes after it.
            Some((_, driver)) => {
                tokio::spawn(async move {
                    let _ = driver.send(Command::Leave).await;
                });
            }
            // Its page is driven from another signaling node: the media node is told
            // directly (the other node's connection then closes by itself).
            None => {
                let room = RoomId::new(room_of(&participant));
                let body = Leave {
                    participant: participant.as_str().to_owned(),
                };
                self.on_room(room, "leave", body, false);
            }
        }
    }

    fn start_taps(
        &self,
        room: RoomId,
        parties: Vec<TapParty>,
        job: Option<RecordingJob>,
        screening: Option<ModerationSettings>,
    ) -> Result<(), RecorderError> {
        // The media node marks the recording failed itself if it cannot start it.
        let body = StartTaps {
            parties: parties.iter().map(WireParty::from).collect(),
            recording: job.as_ref().map(WireJob::from),
            screening,
        };
        self.on_room(room, "taps", body, false);
        Ok(())
    }

    fn stop_taps(&self, room: RoomId, id: Option<&str>) {
        let body = StopTaps {
            recording: id.map(str::to_owned),
        };
        // The call is over: its placement goes after the media node is told.
        self.on_room(room, "taps/stop", body, true);
    }

    fn screen_without_recorder(&self, room: RoomId) {
        self.on_room(room, "screen-alone", (), false);
    }

    fn set_beauty(&self, room: RoomId, agent: ParticipantId, params: Option<BeautyParams>) {
        let body = SetBeauty {
            agent: agent.as_str().to_owned(),
            params: params.map(WireBeauty::from),
        };
        self.on_room(room, "beauty", body, false);
    }

    fn stop_beauty(&self, room: RoomId) {
        // A preview room ends with its pipeline; a call room with its taps.
        let release = room.as_str().starts_with(ROOM_PREFIX);
        self.on_room(room, "beauty/stop", (), release);
    }

    fn preview_beauty(&self, room: RoomId, agent: ParticipantId, params: BeautyParams) {
        let body = SetBeauty {
            agent: agent.as_str().to_owned(),
            params: Some(WireBeauty::from(params)),
        };
        self.on_room(room, "preview", body, false);
    }
}
