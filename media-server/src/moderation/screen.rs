//! One call's screening: the policy of each party's stream, fed by whoever decodes the
//! video (through [`PictureSink`]) and by the classifier's verdicts, acting on both.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::TrySendError;
use std::sync::{Arc, Mutex, Weak};
use std::time::{Instant, SystemTime};

use kefu_proto::{I420Picture, ParticipantId, PictureSink, RoomId, Side, TapParty};
use kefu_vision::Picture;
use tracing::{info, warn};

use super::policy::{Action, ModerationSettings, StreamPolicy};
use super::{Evidence, ModerationAction, ModerationEvent, QUEUE, Sample, Shared};

/// Mosaic cells across the reviewer's first look at the evidence.
const MOSAIC_CELLS: i32 = 12;

#[derive(Debug)]
pub struct RoomScreen {
    room: RoomId,
    parties: Vec<TapParty>,
    policies: Mutex<[StreamPolicy; 2]>,
    stopped: AtomicBool,
    /// The beauty pipeline hands over the agent's pictures (recording off, beauty on).
    agent_by_pipeline: AtomicBool,
    /// The recorder said it stopped decoding (reported once).
    source_lost: AtomicBool,
    me: Weak<RoomScreen>,
    shared: Weak<Shared>,
}

impl RoomScreen {
    pub(super) fn new(
        room: RoomId,
        parties: Vec<TapParty>,
        settings: ModerationSettings,
        shared: Weak<Shared>,
    ) -> Arc<Self> {
        Arc::new_cyclic(|me| Self {
            room,
            parties,
            policies: Mutex::new([StreamPolicy::new(settings), StreamPolicy::new(settings)]),
            stopped: AtomicBool::new(false),
            agent_by_pipeline: AtomicBool::new(false),
            source_lost: AtomicBool::new(false),
            me: me.clone(),
            shared,
        })
    }

    pub fn room(&self) -> &RoomId {
        &self.room
    }

    pub fn parties(&self) -> &[TapParty] {
        &self.parties
    }

    /// Whether `side`'s picture is withheld from the other party now.
    pub fn is_blurred(&self, side: Side) -> bool {
        self.policies()[side.index()].is_blurred()
    }

    /// The beauty pipeline takes over (`true`) or gives back the agent's pictures.
    pub fn set_agent_by_pipeline(&self, on: bool) {
        self.agent_by_pipeline.store(on, Ordering::Release);
    }

    pub(super) fn stop(&self) {
        self.stopped.store(true, Ordering::Release);
    }

    fn is_stopped(&self) -> bool {
        self.stopped.load(Ordering::Acquire)
    }

    fn policies(&self) -> std::sync::MutexGuard<'_, [StreamPolicy; 2]> {
        // Plain data: still consistent after a panic elsewhere.
        self.policies.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn participant(&self, side: Side) -> Option<ParticipantId> {
        self.parties
            .iter()
            .find(|p| p.side == side)
            .map(|p| p.participant.clone())
    }

    /// The classifier's score for `side`'s last sample (`picture`, taken at `taken`).
    pub(super) fn verdict(&self, side: Side, score: f32, picture: &Picture, taken: Instant) {
        if self.is_stopped() {
            return;
        }
        let Some(shared) = self.shared.upgrade() else {
            return;
        };
        shared
            .counters
            .verdict_latency
            .observe(taken.elapsed().as_secs_f64());
        let (action, scores) = {
            let mut policies = self.policies();
            let p = &mut policies[side.index()];
            let action = p.verdict(score, Instant::now(), taken);
            // The media action under the lock: a blur and a lift of one stream reach
            // the SFU in the order the policy decided them (the send never blocks).
            match action {
                Action::Blur | Action::EndCall => self.blank(&shared, side, true),
                Action::Lift => self.blank(&shared, side, false),
                Action::Nothing => {}
            }
            (action, p.streak_scores().to_vec())
        };
        if score.is_finite() && scores.last() == Some(&score) {
            shared.counters.positives.inc();
        }
        let action = match action {
            Action::Nothing => return,
            Action::Lift => {
                info!(room = %self.room, ?side, "camera cycled, clean again: the picture is shown");
                return self.emit(&shared, side, ModerationAction::Restored, Vec::new(), None);
            }
            Action::Blur => ModerationAction::Blurred,
            Action::EndCall => ModerationAction::EndCall,
        };
        let evidence = match evidence_of(picture) {
            Ok(e) => Some(e),
            Err(e) => {
                warn!(room = %self.room, "evidence picture not encoded: {e}");
                None
            }
        };
        info!(
            room = %self.room, ?side, action = action.as_str(), ?scores,
            after_ms = taken.elapsed().as_millis() as u64, "moderation action"
        );
        self.emit(&shared, side, action, scores, evidence);
    }

    /// The sample of `side` taken at `taken` could not be classified: sampling goes on.
    pub(super) fn sample_failed(&self, side: Side, taken: Instant) {
        self.policies()[side.index()].sample_dropped(Some(taken));
    }

    fn blank(&self, shared: &Shared, side: Side, on: bool) {
        if let Some(participant) = self.participant(side) {
            shared.blanker.set_blanked(participant, on);
        }
    }

    fn emit(
        &self,
        shared: &Shared,
        side: Side,
        action: ModerationAction,
        scores: Vec<f32>,
        evidence: Option<Evidence>,
    ) {
        let Some(participant) = self.participant(side) else {
            return;
        };
        if action != ModerationAction::DecoderLost {
            shared
                .counters
                .actions
                .get_or_create(&super::metrics::ActionLabels {
                    action: action.as_str(),
                })
                .inc();
        }
        let event = ModerationEvent {
            room: self.room.clone(),
            side,
            participant,
            action,
            scores,
            evidence,
            at: SystemTime::now(),
        };
        let _ = shared.events.send(event); // nobody listening: a test or a shutdown
    }
}

impl PictureSink for RoomScreen {
    fn decoded(&self, side: Side) -> bool {
        if self.is_stopped() {
            return false;
        }
        let Some(shared) = self.shared.upgrade() else {
            return false;
        };
        let on = self.policies()[side.index()].picture(Instant::now());
        if on.behind {
            shared.counters.samples.inc();
            shared.counters.dropped.inc();
        }
        if !on.sample {
            return false;
        }
        shared.counters.samples.inc();
        // Full already: drop before the picture is even copied.
        if shared.pending.load(Ordering::Acquire) >= QUEUE {
            shared.counters.dropped.inc();
            self.policies()[side.index()].sample_dropped(None);
            return false;
        }
        true
    }

    fn source_lost(&self) {
        if self.is_stopped() || self.source_lost.swap(true, Ordering::AcqRel) {
            return;
        }
        let Some(shared) = self.shared.upgrade() else {
            return;
        };
        let Some(first) = self.parties.first() else {
            return;
        };
        warn!(room = %self.room, "the recorder stopped decoding; moderation needs a decoder of its own");
        self.emit(
            &shared,
            first.side,
            ModerationAction::DecoderLost,
            Vec::new(),
            None,
        );
    }

    fn skipped(&self, side: Side) {
        if let Some(shared) = self.shared.upgrade() {
            shared.counters.errors.inc();
        }
        self.policies()[side.index()].sample_dropped(None);
    }

    fn decoded_elsewhere(&self, side: Side) -> bool {
        side == Side::Agent && self.agent_by_pipeline.load(Ordering::Acquire)
    }

    fn offer(&self, picture: I420Picture) {
        let side = picture.side;
        let (Some(me), Some(shared)) = (self.me.upgrade(), self.shared.upgrade()) else {
            return;
        };
        shared
            .counters
            .pictures
            .get_or_create(&super::metrics::SourceLabels {
                source: picture.source.as_str(),
            })
            .inc();
        if !picture.is_well_formed() {
            shared.counters.errors.inc();
            self.policies()[side.index()].sample_dropped(None);
            return;
        }
        // The policy's own stamp of this sample: its verdict is matched by it.
        let Some(taken) = self.policies()[side.index()].in_flight_since() else {
            return; // given up meanwhile
        };
        shared.pending.fetch_add(1, Ordering::AcqRel);
        let sample = Sample {
            screen: me,
            picture,
            taken,
        };
        if let Err(TrySendError::Full(_) | TrySendError::Disconnected(_)) =
            shared.queue.try_send(sample)
        {
            shared.pending.fetch_sub(1, Ordering::AcqRel);
            shared.counters.dropped.inc();
            self.policies()[side.index()].sample_dropped(Some(taken));
        }
    }
}

fn evidence_of(picture: &Picture) -> Result<Evidence, kefu_vision::VisionError> {
    Ok(Evidence {
        jpeg: picture.to_jpeg(85)?,
        mosaic_jpeg: picture.mosaic(MOSAIC_CELLS)?.to_jpeg(70)?,
    })
}
