//! Rooms across nodes: who is in which call room, and how to reach their signaling
//! sessions. A participant's WebSocket lives on one node; the lifecycle and the other
//! participant may be on another, so messages go through this seam. Here, the
//! in-process `Rooms` (rooms/mod.rs); across nodes, `cluster::redis::RedisRooms`.

use std::fmt::Debug;

use futures_util::future::BoxFuture;
use kefu_proto::Side;
use kefu_proto::signaling::{ErrorCode, PeerInfo, ServerMessage};
use tokio::sync::mpsc;

use super::ClusterError;

/// A WebSocket session's mailbox.
pub type Outbox = mpsc::Sender<ServerMessage>;

/// Why a join was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum RoomError {
    #[error("no such room")]
    UnknownRoom,
    #[error("the room is full")]
    Full,
    /// Shared state could not be reached (Redis away): try again shortly.
    #[error("rooms are unavailable right now")]
    Unavailable,
}

impl RoomError {
    pub fn code(self) -> ErrorCode {
        match self {
            RoomError::UnknownRoom => ErrorCode::UnknownRoom,
            RoomError::Full => ErrorCode::RoomFull,
            RoomError::Unavailable => ErrorCode::Unavailable,
        }
    }
}

/// Current sizes, for metrics.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct RoomCounts {
    /// Rooms where both participants are present.
    pub calls: u64,
    pub participants: u64,
}

/// What a [`RoomBus`] call yields: it fails only when shared state is unreachable.
pub type Bus<'a, T> = BoxFuture<'a, Result<T, ClusterError>>;

/// The rooms of every node, as signaling uses them.
pub trait RoomBus: Send + Sync + Debug {
    /// Makes a standing room joinable (kept while empty). Idempotent.
    fn create<'a>(&'a self, room: &'a str) -> Bus<'a, ()>;

    /// Opens a call's room for its first member; it closes when the last one leaves.
    /// Idempotent. The caller checks that the call is live.
    fn open<'a>(&'a self, room: &'a str) -> Bus<'a, ()>;

    /// Removes `room` if nobody is in it (a room opened for somebody who never came).
    fn close_if_empty<'a>(&'a self, room: &'a str) -> Bus<'a, ()>;

    /// Whether `room` is open (standing, or a live call's).
    fn exists<'a>(&'a self, room: &'a str) -> Bus<'a, bool>;

    /// Enters `participant` into `room`; returns who else is there. A session already
    /// holding the same participant id is told it was replaced. `session` is unique
    /// on this node.
    fn join<'a>(
        &'a self,
        room: &'a str,
        participant: &'a str,
        role: Side,
        session: u64,
        outbox: Outbox,
    ) -> BoxFuture<'a, Result<Vec<PeerInfo>, RoomError>>;

    /// Removes the session from its room, if it is still the one holding the id.
    fn leave<'a>(&'a self, room: &'a str, participant: &'a str, session: u64) -> Bus<'a, bool>;

    /// Notes that a member's media is up; true when the room is full and everyone's is.
    fn set_media_up<'a>(
        &'a self,
        room: &'a str,
        participant: &'a str,
        session: u64,
    ) -> Bus<'a, bool>;

    /// Closes a call's room: every member is sent `notice` and removed, and the room
    /// goes away. Returns who was there (their sessions close on the notice).
    fn end<'a>(&'a self, room: &'a str, notice: ServerMessage) -> Bus<'a, Vec<(String, Side)>>;

    /// Sends `message` to every member of `room` (a notice both sides must see) and
    /// keeps it, the latest per `about`, for whoever joins the room later (a page
    /// reloaded while moderation withholds a picture must still say why).
    fn notify_lasting<'a>(
        &'a self,
        room: &'a str,
        about: Side,
        message: ServerMessage,
    ) -> Bus<'a, ()>;

    /// The lasting notices of `room`, for a member that just joined.
    fn lasting<'a>(&'a self, room: &'a str) -> Bus<'a, Vec<ServerMessage>>;

    /// Who is in `room` now: (participant, role).
    fn members<'a>(&'a self, room: &'a str) -> Bus<'a, Vec<(String, Side)>>;

    /// This node's rooms and participants now, for metrics.
    fn counts(&self) -> RoomCounts;
}
