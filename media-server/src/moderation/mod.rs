//! Content moderation: both parties' video sampled and scored for nudity, in process.
//!
//! - [`policy`]: when to sample and what verdicts call for (pure, clock-free).
//! - [`RoomScreen`]: one call's screening; a [`PictureSink`] for whoever decodes the
//!   call's video — the recorder (the usual case: screening costs no decode of its
//!   own), or an [`OwnDecoder`] when nothing else decodes (recording off).
//! - the classifier worker: one thread, a bounded queue; when it is behind, samples are
//!   dropped and counted, and media never waits for it.
//!
//! Actions happen here, at once: the offender's video is withheld from the other
//! party (the SFU sends black frames instead). Signaling hears of every action
//! through a [`ModerationEvent`] (incident, notices, ending the call).

mod metrics;
mod own_decode;
pub mod policy;
mod screen;
mod worker;

use std::collections::HashMap;
use std::fmt::Debug;
use std::sync::atomic::AtomicUsize;
use std::sync::mpsc::{SyncSender, sync_channel};
use std::sync::{Arc, Mutex};
use std::time::{Instant, SystemTime};

use kefu_proto::{I420Picture, ParticipantId, PictureSink, RoomId, Side, TapParty};
use kefu_vision::NudityClassifier;
use tokio::sync::mpsc;

pub use metrics::ModerationMetrics;
pub use own_decode::OwnDecoder;
pub(crate) use own_decode::packed as packed_i420;
pub use policy::{Action, ModerationSettings, SettingsError, StreamPolicy};
pub use screen::RoomScreen;

/// Samples waiting for the classifier at most (≈ 0.15 s of work at 38 ms each);
/// beyond that a sample is dropped (counted) rather than queued.
pub const QUEUE: usize = 4;

/// Withholds or restores a participant's video for the others (the SFU's driver).
pub trait Blanker: Send + Sync + Debug {
    fn set_blanked(&self, participant: ParticipantId, on: bool);
}

impl Blanker for crate::MediaHandle {
    fn set_blanked(&self, participant: ParticipantId, on: bool) {
        crate::MediaHandle::set_blanked(self, participant, on);
    }
}

/// What moderation did to a party's video.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ModerationAction {
    /// The party's picture is withheld from the other party.
    Blurred,
    /// The party turned the camera off and on: the picture is shown again.
    Restored,
    /// Positives went on while withheld: the call must end (reason `moderation`).
    EndCall,
    /// Not an action on anyone: the recorder stopped decoding this call's video (the
    /// recording failed), so the call must be screened on a decoder of its own. The
    /// event's side and participant are the call's first party, meaning nothing.
    DecoderLost,
}

impl ModerationAction {
    pub fn as_str(self) -> &'static str {
        match self {
            ModerationAction::Blurred => "blurred",
            ModerationAction::Restored => "restored",
            ModerationAction::EndCall => "ended",
            ModerationAction::DecoderLost => "decoder_lost",
        }
    }
}

/// The picture that set an action off: as taken, and as a coarse mosaic.
#[derive(Clone)]
pub struct Evidence {
    pub jpeg: Vec<u8>,
    pub mosaic_jpeg: Vec<u8>,
}

impl Debug for Evidence {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Evidence({} bytes)", self.jpeg.len())
    }
}

/// One action, for signaling.
#[derive(Debug, Clone)]
pub struct ModerationEvent {
    pub room: RoomId,
    pub side: Side,
    pub participant: ParticipantId,
    pub action: ModerationAction,
    /// The positive scores that led to it, oldest first (empty for `Restored`).
    pub scores: Vec<f32>,
    pub evidence: Option<Evidence>,
    pub at: SystemTime,
}

/// Counters, for metrics and tests.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ModerationStats {
    /// Rooms screened now, by who decodes their video.
    pub rooms_on_recorder: u64,
    pub rooms_on_own_decode: u64,
    /// Samples the policy asked for.
    pub samples: u64,
    /// Samples dropped because the classifier was behind.
    pub dropped: u64,
    pub classified: u64,
    /// Samples the classifier failed on (counted, never fatal).
    pub errors: u64,
    pub positives: u64,
    pub actions: u64,
}

/// A picture on its way to the classifier.
struct Sample {
    screen: Arc<RoomScreen>,
    picture: I420Picture,
    taken: Instant,
}

/// How a screened room's video gets decoded.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DecodePath {
    Recorder,
    OwnDecode,
}

impl DecodePath {
    pub fn as_str(self) -> &'static str {
        match self {
            DecodePath::Recorder => "recorder",
            DecodePath::OwnDecode => "own_decode",
        }
    }
}

#[derive(Debug)]
struct Shared {
    queue: SyncSender<Sample>,
    /// Samples queued or being classified.
    pending: AtomicUsize,
    events: mpsc::UnboundedSender<ModerationEvent>,
    blanker: Arc<dyn Blanker>,
    counters: ModerationMetrics,
}

impl Debug for Sample {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Sample({:?})", self.picture)
    }
}

/// The rooms screened now, and who decodes each.
type ScreenedRooms = HashMap<RoomId, (Arc<RoomScreen>, DecodePath)>;

/// The process's content moderation. Cheap to clone.
#[derive(Debug, Clone)]
pub struct Moderation {
    shared: Arc<Shared>,
    rooms: Arc<Mutex<ScreenedRooms>>,
}

impl Moderation {
    /// Starts the classifier worker; actions come out of the returned receiver.
    pub fn start(
        classifier: Box<dyn NudityClassifier>,
        blanker: Arc<dyn Blanker>,
        metrics: ModerationMetrics,
    ) -> std::io::Result<(Self, mpsc::UnboundedReceiver<ModerationEvent>)> {
        let (queue, input) = sync_channel(QUEUE);
        let (events, rx) = mpsc::unbounded_channel();
        let shared = Arc::new(Shared {
            queue,
            pending: AtomicUsize::new(0),
            events,
            blanker,
            counters: metrics,
        });
        worker::spawn(input, classifier, Arc::downgrade(&shared))?;
        let rooms = Arc::new(Mutex::new(HashMap::new()));
        Ok((Self { shared, rooms }, rx))
    }

    /// Starts screening `room`'s video with `settings`; `path` says who decodes it
    /// (hand the returned screen to the recorder, or to an [`OwnDecoder`]).
    pub fn screen(
        &self,
        room: RoomId,
        parties: Vec<TapParty>,
        settings: ModerationSettings,
        path: DecodePath,
    ) -> Arc<RoomScreen> {
        let screen = RoomScreen::new(
            room.clone(),
            parties,
            settings,
            Arc::downgrade(&self.shared),
        );
        let old = self.rooms().insert(room, (Arc::clone(&screen), path));
        if let Some((old, old_path)) = old {
            old.stop();
            self.room_gauge(old_path).dec();
        }
        self.room_gauge(path).inc();
        screen
    }

    /// The recorder of `room` stopped decoding: the room is now screened on a decoder
    /// of moderation's own. Returns the screen and the parties to tap for it (`None`:
    /// the room is not screened, or already decodes itself).
    pub fn switch_to_own_decode(&self, room: &RoomId) -> Option<(Arc<RoomScreen>, Vec<TapParty>)> {
        let switched = {
            let mut rooms = self.rooms();
            let (screen, path) = rooms.get_mut(room)?;
            if *path == DecodePath::OwnDecode {
                return None;
            }
            *path = DecodePath::OwnDecode;
            Arc::clone(screen)
        };
        self.room_gauge(DecodePath::Recorder).dec();
        self.room_gauge(DecodePath::OwnDecode).inc();
        let parties = switched.parties().to_vec();
        Some((switched, parties))
    }

    /// Stops screening `room` (the call ended). Unknown rooms are ignored.
    pub fn stop(&self, room: &RoomId) {
        let removed = self.rooms().remove(room);
        if let Some((screen, path)) = removed {
            screen.stop();
            self.room_gauge(path).dec();
        }
    }

    fn room_gauge(&self, path: DecodePath) -> prometheus_client::metrics::gauge::Gauge {
        self.shared
            .counters
            .rooms
            .get_or_create(&metrics::PathLabels {
                path: path.as_str(),
            })
            .clone()
    }

    pub fn stats(&self) -> ModerationStats {
        let c = &self.shared.counters;
        let load = |a: &prometheus_client::metrics::counter::Counter| a.get();
        let actions: u64 = ["blurred", "restored", "ended"]
            .into_iter()
            .map(|action| {
                c.actions
                    .get_or_create(&metrics::ActionLabels { action })
                    .get()
            })
            .sum();
        let rooms = self.rooms();
        let on = |p| rooms.values().filter(|(_, path)| *path == p).count() as u64;
        ModerationStats {
            rooms_on_recorder: on(DecodePath::Recorder),
            rooms_on_own_decode: on(DecodePath::OwnDecode),
            samples: load(&c.samples),
            dropped: load(&c.dropped),
            classified: load(&c.classified),
            errors: load(&c.errors),
            positives: load(&c.positives),
            actions,
        }
    }

    fn rooms(&self) -> std::sync::MutexGuard<'_, ScreenedRooms> {
        // Plain data: still consistent after a panic elsewhere.
        self.rooms.lock().unwrap_or_else(|p| p.into_inner())
    }
}

/// A screen as the decoder sees it.
pub fn as_picture_sink(screen: &Arc<RoomScreen>) -> Arc<dyn PictureSink> {
    Arc::clone(screen) as Arc<dyn PictureSink>
}

#[cfg(test)]
mod tests;
