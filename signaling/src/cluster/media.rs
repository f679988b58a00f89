//! The seam between signaling and the media plane. Signaling only talks to a
//! [`MediaRouter`]; today the one implementation is the SFU in this process. A
//! multi-node router (room → media node map and events over Redis) plugs in here.

use std::fmt::Debug;
use std::sync::Arc;

use futures_util::future::BoxFuture;
use kefu_media_server::moderation::{
    DecodePath, Moderation, ModerationSettings, OwnDecoder, as_picture_sink,
};
use kefu_media_server::{
    CandidateError, JoinError, MediaHandle, ParticipantId, RoomId, SfuEvent, TapParty,
};
use kefu_proto::FrameSink;
use kefu_recorder::{Recorder, RecorderError, RecordingJob};
use std::time::Instant;
use tokio::sync::mpsc;
use tracing::warn;

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

    /// Starts recording the room's published frames (`parties` says whose is whose)
    /// into `job`, and screening its video with `screening`, on whichever node holds
    /// the room. Screening uses the recorder's decoded pictures when there is a
    /// recording, a decoder of its own otherwise. An error concerns the recording
    /// (screening then runs on its own decoder).
    fn start_taps(
        &self,
        room: RoomId,
        parties: Vec<TapParty>,
        job: Option<RecordingJob>,
        screening: Option<ModerationSettings>,
    ) -> Result<(), RecorderError>;

    /// Stops recording and screening the room; the recording `id` is finished and
    /// uploaded. Unknown rooms or ids are ignored.
    fn stop_taps(&self, room: RoomId, id: Option<&str>);

    /// The room's recorder stopped decoding (its recording failed): screen the room
    /// on a decoder of moderation's own from now on.
    fn screen_without_recorder(&self, room: RoomId);

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

    /// Whether the calls' media lives in another process, so that they go on when this
    /// one stops (a signaling node hands its pages over instead of ending their calls).
    fn outlives_this_process(&self) -> bool {
        false
    }

    /// Lets go of every participant driven from here without taking anyone out of
    /// the media (this node stops; the pages go on through other nodes).
    fn detach_all(&self) {}
}

/// The SFU, the recorder and moderation running in this process.
#[derive(Debug, Clone)]
pub struct LocalMediaRouter {
    pub sfu: MediaHandle,
    pub recorder: Arc<Recorder>,
    pub moderation: Moderation,
}

impl LocalMediaRouter {
    /// Screening on a decoder of its own: nothing else decodes this room.
    fn screen_alone(&self, room: RoomId, parties: Vec<TapParty>, settings: ModerationSettings) {
        let screen = self.moderation.screen(
            room.clone(),
            parties.clone(),
            settings,
            DecodePath::OwnDecode,
        );
        match OwnDecoder::spawn(&room, as_picture_sink(&screen)) {
            Ok(decoder) => {
                self.sfu.set_screen(room.clone(), Some(screen));
                self.sfu.tap(room, parties, decoder);
            }
            Err(e) => {
                warn!(%room, "no decoder thread for moderation: {e}; the call is not screened");
                self.moderation.stop(&room);
            }
        }
    }
}

impl MediaRouter for LocalMediaRouter {
    fn join(
        &self,
        room: RoomId,
        participant: ParticipantId,
        offer: String,
    ) -> BoxFuture<'_, Result<(String, mpsc::Receiver<SfuEvent>), JoinError>> {
        Box::pin(self.sfu.join(room, participant, offer))
    }

    fn restart(
        &self,
        participant: ParticipantId,
        offer: String,
    ) -> BoxFuture<'_, Result<(String, mpsc::Receiver<SfuEvent>), JoinError>> {
        Box::pin(self.sfu.restart(participant, offer))
    }

    fn add_remote_candidate(
        &self,
        participant: ParticipantId,
        candidate: String,
    ) -> BoxFuture<'_, Result<(), CandidateError>> {
        Box::pin(self.sfu.add_remote_candidate(participant, candidate))
    }

    fn leave(&self, participant: ParticipantId) {
        self.sfu.leave(participant);
    }

    fn start_taps(
        &self,
        room: RoomId,
        parties: Vec<TapParty>,
        job: Option<RecordingJob>,
        screening: Option<ModerationSettings>,
    ) -> Result<(), RecorderError> {
        let Some(job) = job else {
            if let Some(settings) = screening {
                self.screen_alone(room, parties, settings);
            }
            return Ok(());
        };
        let screen = screening.map(|settings| {
            self.moderation.screen(
                room.clone(),
                parties.clone(),
                settings,
                DecodePath::Recorder,
            )
        });
        match self
            .recorder
            .start(job, Instant::now(), screen.as_ref().map(as_picture_sink))
        {
            Ok(sink) => {
                let sink: Arc<dyn FrameSink> = Arc::new(sink);
                self.sfu.tap(room, parties, sink);
                Ok(())
            }
            Err(e) => {
                if let Some(settings) = screening {
                    self.screen_alone(room, parties, settings);
                }
                Err(e)
            }
        }
    }

    fn screen_without_recorder(&self, room: RoomId) {
        let Some((screen, parties)) = self.moderation.switch_to_own_decode(&room) else {
            return;
        };
        match OwnDecoder::spawn(&room, as_picture_sink(&screen)) {
            Ok(decoder) => {
                self.sfu.set_screen(room.clone(), Some(screen));
                // Replaces the failed recorder's tap.
                self.sfu.tap(room, parties, decoder);
            }
            Err(e) => {
                warn!(%room, "no decoder thread for moderation: {e}; the call is not screened")
            }
        }
    }

    fn stop_taps(&self, room: RoomId, id: Option<&str>) {
        self.moderation.stop(&room);
        self.sfu.set_screen(room.clone(), None);
        self.sfu.untap(room);
        if let Some(id) = id {
            self.recorder.finish(id, Instant::now());
        }
    }

    fn set_beauty(
        &self,
        room: RoomId,
        agent: ParticipantId,
        params: Option<kefu_beauty::BeautyParams>,
    ) {
        self.sfu.set_beauty(room, agent, params);
    }

    fn stop_beauty(&self, room: RoomId) {
        self.sfu.stop_beauty(room);
    }

    fn preview_beauty(
        &self,
        room: RoomId,
        agent: ParticipantId,
        params: kefu_beauty::BeautyParams,
    ) {
        self.sfu.preview_beauty(room, agent, params);
    }
}
