//! The seam between signaling and the media plane. Signaling only talks to a
//! [`MediaRouter`]; today the one implementation is the SFU in this process. A
//! multi-node router (room → media node map and events over Redis) plugs in here.

use std::fmt::Debug;
use std::sync::Arc;

use futures_util::future::BoxFuture;
use kefu_media_server::{
    CandidateError, JoinError, MediaHandle, ParticipantId, RoomId, SfuEvent, TapParty,
};
use kefu_proto::FrameSink;
use tokio::sync::mpsc;

/// What signaling needs from the media plane.
pub trait MediaRouter: Send + Sync + Debug {
    /// Adds a participant from its SDP offer; returns the answer and its media events.
    fn join(
        &self,
        room: RoomId,
        participant: ParticipantId,
        offer: String,
    ) -> BoxFuture<'_, Result<(String, mpsc::Receiver<SfuEvent>), JoinError>>;

    /// An ICE restart from the participant's existing peer connection; returns the
    /// answer and its media events from now on.
    fn restart(
        &self,
        participant: ParticipantId,
        offer: String,
    ) -> BoxFuture<'_, Result<(String, mpsc::Receiver<SfuEvent>), JoinError>>;

    /// Hands a trickled ICE candidate to the participant's peer connection.
    fn add_remote_candidate(
        &self,
        participant: ParticipantId,
        candidate: String,
    ) -> BoxFuture<'_, Result<(), CandidateError>>;

    /// Removes a participant; unknown ids are ignored.
    fn leave(&self, participant: ParticipantId);

    /// Hands the room's published frames to a recorder.
    fn tap(&self, room: RoomId, parties: Vec<TapParty>, sink: Arc<dyn FrameSink>);

    /// Stops tapping the room.
    fn untap(&self, room: RoomId);

    /// Filters the agent's video in `room` (`None`: forward it untouched).
    fn set_beauty(
        &self,
        room: RoomId,
        agent: ParticipantId,
        params: Option<kefu_beauty::BeautyParams>,
    );

    /// The call is over: stop the room's pipeline, if any.
    fn stop_beauty(&self, room: RoomId);

    /// The agent, alone in `room`, gets its own video back filtered with `params`
    /// (the settings dialog's preview). Call again to change them; `stop_beauty` ends it.
    fn preview_beauty(&self, room: RoomId, agent: ParticipantId, params: kefu_beauty::BeautyParams);
}

/// The SFU running in this process.
#[derive(Debug, Clone)]
pub struct LocalMediaRouter(pub MediaHandle);

impl MediaRouter for LocalMediaRouter {
    fn join(
        &self,
        room: RoomId,
        participant: ParticipantId,
        offer: String,
    ) -> BoxFuture<'_, Result<(String, mpsc::Receiver<SfuEvent>), JoinError>> {
        Box::pin(self.0.join(room, participant, offer))
    }

    fn restart(
        &self,
        participant: ParticipantId,
        offer: String,
    ) -> BoxFuture<'_, Result<(String, mpsc::Receiver<SfuEvent>), JoinError>> {
        Box::pin(self.0.restart(participant, offer))
    }

    fn add_remote_candidate(
        &self,
        participant: ParticipantId,
        candidate: String,
    ) -> BoxFuture<'_, Result<(), CandidateError>> {
        Box::pin(self.0.add_remote_candidate(participant, candidate))
    }

    fn leave(&self, participant: ParticipantId) {
        self.0.leave(participant);
    }

    fn tap(&self, room: RoomId, parties: Vec<TapParty>, sink: Arc<dyn FrameSink>) {
        self.0.tap(room, parties, sink);
    }

    fn untap(&self, room: RoomId) {
        self.0.untap(room);
    }

    fn set_beauty(
        &self,
        room: RoomId,
        agent: ParticipantId,
        params: Option<kefu_beauty::BeautyParams>,
    ) {
        self.0.set_beauty(room, agent, params);
    }

    fn stop_beauty(&self, room: RoomId) {
        self.0.stop_beauty(room);
    }

    fn preview_beauty(
        &self,
        room: RoomId,
        agent: ParticipantId,
        params: kefu_beauty::BeautyParams,
    ) {
        self.0.preview_beauty(room, agent, params);
    }
}
