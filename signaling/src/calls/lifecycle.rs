//! The one way a call moves: [`CallDriver::apply`]. Every transition, whoever asks
//! for it (a WebSocket session, a REST handler, the sweeper, a shutdown), goes
//! through here: persisted first, then its reactions run (recording, beauty, the
//! room), then a [`CallChanged`] event is published for whoever listens (the pages'
//! event channel, later the cluster bus).

use std::sync::Arc;

use kefu_beauty::BeautyParams;
use kefu_media_server::{RoomId, TapParty};
use tokio::sync::broadcast;
use tracing::{info, warn};

use super::machine::{CallEvent, CallKind, CallState, EndReason};
use super::model::Call;
use super::service::{self, CallError, Transition};
use crate::accounts::{CallId, GroupId, UserId};
use crate::cluster::bus::RoomBus;
use crate::cluster::lease::Lease;
use crate::cluster::media::MediaRouter;
use crate::recordings::Recordings;
use crate::rooms::media_participant_id;
use crate::rooms::token::Side;
use crate::store::Store;
use kefu_proto::signaling::ServerMessage;

/// Events a slow listener may fall behind by before it is told it lagged (and
/// re-reads what it shows).
const EVENT_BACKLOG: usize = 256;

/// A call moved. Listeners filter by enterprise, agent or call.
#[derive(Debug, Clone)]
pub struct CallChanged {
    pub call: Call,
    /// The event's name as stored in the call log (`"assigned"`, `"hang_up"`, …).
    pub event: &'static str,
    pub at: i64,
    /// Another node made the change (it came through the cluster's relay): not to be
    /// relayed again.
    pub relayed: bool,
}

/// Applies call transitions and their reactions. Cheap to clone.
#[derive(Debug, Clone)]
pub struct CallDriver {
    inner: Arc<Inner>,
}

#[derive(Debug)]
struct Inner {
    store: Store,
    media: Arc<dyn MediaRouter>,
    rooms: Arc<dyn RoomBus>,
    recordings: Recordings,
    events: broadcast::Sender<CallChanged>,
    /// Serialises queue dispatch (the lease `dispatch`), so two dispatches never give
    /// one agent more than its capacity.
    lease: Arc<dyn Lease>,
}

impl CallDriver {
    pub fn new(
        store: Store,
        media: Arc<dyn MediaRouter>,
        rooms: Arc<dyn RoomBus>,
        recordings: Recordings,
        lease: Arc<dyn Lease>,
    ) -> Self {
        let (events, _) = broadcast::channel(EVENT_BACKLOG);
        Self {
            inner: Arc::new(Inner {
                store,
                media,
                rooms,
                recordings,
                events,
                lease,
            }),
        }
    }

    /// Every call change from now on.
    pub fn subscribe(&self) -> broadcast::Receiver<CallChanged> {
        self.inner.events.subscribe()
    }

    /// Applies `event` to the call: persists the transition, runs its reactions and
    /// publishes it. A refused event changes nothing and runs nothing.
    pub async fn apply(&self, id: &CallId, event: CallEvent, now: i64) -> Result<Call, CallError> {
        self.apply_with(id, event, now, Transition::default(), true)
            .await
    }

    /// [`apply`](Self::apply) for an agent acting on a call it was shown: refused (not
    /// found) when the call is no longer that agent's.
    pub async fn apply_as_agent(
        &self,
        id: &CallId,
        agent: &UserId,
        event: CallEvent,
        now: i64,
    ) -> Result<Call, CallError> {
        let t = Transition {
            by_agent: Some(agent.clone()),
            ..Transition::default()
        };
        self.apply_with(id, event, now, t, true).await
    }

    /// The transition and everything after it run as one task: a caller that goes away
    /// (a client disconnecting from its request, a drain timing out) cannot leave a
    /// persisted transition without its reactions and event.
    async fn apply_with(
        &self,
        id: &CallId,
        event: CallEvent,
        now: i64,
        t: Transition,
        dispatch: bool,
    ) -> Result<Call, CallError> {
        let me = self.clone();
        let id = id.clone();
        tokio::spawn(async move {
            let call = service::apply_with(&me.inner.store, &id, &event, now, t).await?;
            info!(call = %id, state = call.state.name(), event = event.name(), "call moved");
            me.react(&call, now).await;
            me.publish(&call, event.name(), now);
            if dispatch && call.state.is_final() && call.agent_id.is_some() {
                // A slot opened: a waiting customer may get this agent now.
                me.dispatch_all(now).await;
            }
            Ok(call)
        })
        .await
        .map_err(|e| CallError::Task(e.to_string()))?
    }

    /// A participant left the call's room for good (hung up, or its connection never
    /// came back): a hang-up once media is being set up, a cancel by the caller before.
    pub async fn leave(
        &self,
        id: &CallId,
        by: super::Party,
        reason: EndReason,
        now: i64,
    ) -> Result<Call, CallError> {
        let call = self.stored(id).await?;
        let caller = super::machine::caller(call.direction);
        let before_media = matches!(
            call.state,
            CallState::Requested | CallState::Inviting | CallState::Ringing
        );
        let event = if before_media && by == caller {
            CallEvent::Cancel { by }
        } else {
            CallEvent::HangUp { by, reason }
        };
        self.apply(id, event, now).await
    }

    /// An agent calls a customer out (gate, capacity), under the same lease as
    /// dispatch, so the two never give one agent more than its capacity.
    pub async fn start_outgoing(
        &self,
        agent: &crate::accounts::User,
        session_started_at: i64,
        kind: super::CallKind,
        now: i64,
    ) -> Result<Call, CallError> {
        let _lease = self.inner.lease.acquire("dispatch").await?;
        let call = service::start_outgoing(&self.inner.store, agent, session_started_at, kind, now)
            .await?;
        self.publish(&call, "agent_call", call.created_at);
        Ok(call)
    }

    /// Tells listeners about a call that changed outside a transition (created,
    /// customer attached).
    pub fn publish(&self, call: &Call, event: &'static str, at: i64) {
        // No listener is fine: nobody is looking.
        let _ = self.inner.events.send(CallChanged {
            call: call.clone(),
            event,
            at,
            relayed: false,
        });
    }

    /// Tells this node's listeners about a change another node made.
    pub fn publish_relayed(&self, call: &Call, event: &'static str, at: i64) {
        let _ = self.inner.events.send(CallChanged {
            call: call.clone(),
            event,
            at,
            relayed: true,
        });
    }

    /// Ends every live call with `reason` (shutdown, or a restart finding what the
    /// last process left). Returns how many it ended.
    pub async fn end_all_live(&self, reason: EndReason, now: i64) -> Result<usize, CallError> {
        let mut ended = 0;
        for id in self.inner.store.live_calls().await? {
            // No dispatch: the queue is being ended too, nobody should ring now.
            let event = CallEvent::Terminate { reason };
            match self
                .apply_with(&id, event, now, Transition::default(), false)
                .await
            {
                Ok(_) => ended += 1,
                // Ended by someone else at the same moment.
                Err(CallError::Raced | CallError::Invalid(_)) => {}
                // One broken call must not keep the others (or the start) hostage.
                Err(e) => warn!(call = %id, "cannot end the call: {e}"),
            }
        }
        Ok(ended)
    }

    /// The agent is leaving kefu (removed): a customer's request ringing at them goes
    /// to the next agent, their invitations are withdrawn, their calls in progress end
    /// as if they hung up. Returns how many calls moved.
    pub async fn release_agent(&self, agent: &UserId, now: i64) -> Result<usize, CallError> {
        use kefu_proto::Party;
        let mut moved = 0;
        for (id, state) in self.inner.store.open_calls_of(agent).await? {
            let result = match state.as_str() {
                "ringing" => self.decline(&id, agent, now).await,
                "connected" => {
                    let event = CallEvent::HangUp {
                        by: Party::Agent,
                        reason: EndReason::HangUp,
                    };
                    self.apply(&id, event, now).await
                }
                _ => {
                    self.apply(&id, CallEvent::Cancel { by: Party::Agent }, now)
                        .await
                }
            };
            match result {
                Ok(_) => moved += 1,
                // Moved on by someone else at the same moment.
                Err(CallError::Raced | CallError::Invalid(_)) => {}
                Err(e) => warn!(call = %id, "cannot release the removed agent's call: {e}"),
            }
        }
        Ok(moved)
    }

    /// Handles every call whose deadline passed: a customer's request that rang out
    /// at an agent goes back to its queue while its wait limit lasts; a call whose
    /// media never came up fails; everything else times out. Returns how many moved.
    pub async fn expire_overdue(&self, now: i64) -> Result<usize, CallError> {
        let mut moved = 0;
        for id in self.inner.store.calls_past_deadline(now, 500).await? {
            match self.expire(&id, now).await {
                Ok(()) => moved += 1,
                // Answered or cancelled at the same moment: nothing to expire.
                Err(CallError::Raced | CallError::Invalid(_) | CallError::NotFound) => {}
                // One broken call must not block the ones behind it.
                Err(e) => warn!(call = %id, "cannot expire the call: {e}"),
            }
        }
        Ok(moved)
    }

    async fn expire(&self, id: &CallId, now: i64) -> Result<(), CallError> {
        let call = self.stored(id).await?;
        if call.state == CallState::Connecting {
            let kind = super::FailureKind::MediaNeverConnected;
            self.apply(id, CallEvent::Fail { kind }, now).await?;
            return Ok(());
        }
        match call.agent_id.clone() {
            Some(agent) if self.may_reoffer(&call, now).await? => {
                self.reoffer(&call, &agent, now).await?;
            }
            _ => {
                self.apply(id, CallEvent::RingTimeout, now).await?;
            }
        }
        Ok(())
    }

    /// The agent declines a customer's request ringing at it: the request goes back
    /// to the front of its queue for the next agent (never this one again), or times
    /// out when its wait limit is reached.
    pub async fn decline(&self, id: &CallId, agent: &UserId, now: i64) -> Result<Call, CallError> {
        let call = self.stored(id).await?;
        if call.agent_id.as_ref() != Some(agent) {
            return Err(CallError::NotFound);
        }
        if self.may_reoffer(&call, now).await? {
            self.reoffer(&call, agent, now).await
        } else {
            self.apply_as_agent(id, agent, CallEvent::RingTimeout, now)
                .await
        }
    }

    /// Whether a ringing customer request still has wait time left for another agent.
    async fn may_reoffer(&self, call: &Call, now: i64) -> Result<bool, CallError> {
        if call.direction != super::Direction::CustomerInitiated || call.state != CallState::Ringing
        {
            return Ok(false);
        }
        let enterprise = self
            .inner
            .store
            .enterprise(&call.enterprise_id)
            .await?
            .ok_or(CallError::NotFound)?;
        Ok(now < service::wait_deadline(call, &enterprise))
    }

    async fn reoffer(&self, call: &Call, agent: &UserId, now: i64) -> Result<Call, CallError> {
        // Only if it still rings at this agent; then never offered to it again.
        let requeued = self
            .apply_as_agent(&call.id, agent, CallEvent::Reoffer, now)
            .await?;
        self.inner.store.pass_over(&call.id, agent, now).await?;
        if let Some(group) = &requeued.group_id {
            self.dispatch(group, now).await;
        }
        Ok(requeued)
    }

    /// Assigns a group's waiting requests to free agents and publishes each ring.
    /// Failures are logged: the sweeper retries every second.
    pub async fn dispatch(&self, group: &GroupId, now: i64) {
        let _lease = match self.inner.lease.acquire("dispatch").await {
            Ok(lease) => lease,
            Err(e) => {
                warn!("dispatch postponed: {e}");
                return;
            }
        };
        match service::dispatch(&self.inner.store, group, now).await {
            Ok(rung) => rung.iter().for_each(|c| self.publish(c, "assigned", now)),
            Err(e) => warn!("dispatch failed: {e}"),
        }
    }

    /// Dispatches every group with waiting requests.
    pub async fn dispatch_all(&self, now: i64) {
        let groups = match self.inner.store.groups_with_requests().await {
            Ok(groups) => groups,
            Err(e) => {
                warn!("dispatch failed: {e}");
                return;
            }
        };
        for group in groups {
            self.dispatch(&group, now).await;
        }
    }

    /// A customer opened an agent's invite and consented: the call is accepted and
    /// media may start. Returns the call and the new customer's id.
    pub async fn accept_invite(
        &self,
        code: &str,
        display_name: &str,
        now: i64,
    ) -> Result<(Call, crate::accounts::CustomerId), CallError> {
        let store = &self.inner.store;
        let call = store
            .call_by_invite(code)
            .await?
            .ok_or(CallError::NotFound)?;
        if call.ring_deadline.is_some_and(|d| d <= now) && !call.state.is_final() {
            self.apply(&call.id, CallEvent::RingTimeout, now).await?;
            return Err(CallError::Invalid(super::InvalidTransition {
                state: "timed_out",
                event: "customer_opened",
            }));
        }
        // Refused before anything is written when the invite was opened already.
        call.state
            .next(call.direction, &CallEvent::CustomerOpened)?;
        let customer = store
            .create_customer(&call.enterprise_id, display_name, now)
            .await?;
        let t = Transition {
            customer: Some(customer.clone()),
            ..Transition::default()
        };
        self.apply_with(&call.id, CallEvent::CustomerOpened, now, t, true)
            .await?;
        let by = super::machine::Party::Customer;
        let call = self.apply(&call.id, CallEvent::Accept { by }, now).await?;
        Ok((call, customer))
    }

    /// The agent confirmed new beauty settings: its connected calls use them from the
    /// next frame on.
    pub async fn apply_beauty(&self, agent: &UserId, params: BeautyParams) {
        let calls = match self.inner.store.connected_calls_of(agent).await {
            Ok(c) => c,
            Err(e) => {
                warn!("cannot find the agent's live calls: {e}");
                return;
            }
        };
        for call in calls {
            self.filter_agent(call.as_str(), params).await;
        }
    }

    /// Who is in `room`; nobody when that cannot be read (logged).
    async fn members(&self, room: &str) -> Vec<(String, Side)> {
        self.inner.rooms.members(room).await.unwrap_or_else(|e| {
            warn!(%room, "room members unreadable: {e}");
            Vec::new()
        })
    }

    /// The call as stored now.
    async fn stored(&self, id: &CallId) -> Result<Call, CallError> {
        self.inner.store.call(id).await?.ok_or(CallError::NotFound)
    }

    /// What a transition sets off: recording and beauty when media is up; everything
    /// released, and the room told, when the call is over.
    async fn react(&self, call: &Call, now: i64) {
        let room = call.id.as_str();
        if call.state == CallState::Connected {
            self.start_taps(room, call, now).await;
            if call.kind == CallKind::Video
                && let Some(agent) = &call.agent_id
            {
                let params = self.agent_params(agent).await;
                self.filter_agent(room, params).await;
            }
        } else if call.state.is_final() {
            let media = &self.inner.media;
            media.stop_beauty(RoomId::new(room));
            let notice = ServerMessage::CallEnded {
                reason: call.state.end_reason().unwrap_or(EndReason::HangUp),
                by: call.state.ended_by(),
            };
            let gone = self
                .inner
                .rooms
                .end(room, notice)
                .await
                .unwrap_or_else(|e| {
                    // The pages learn it from their event channel and the media going.
                    warn!(call = %call.id, "room not told the call ended: {e}");
                    Vec::new()
                });
            for (participant, role) in gone {
                media.leave(media_participant_id(room, &participant, role));
            }
            let finished = self
                .inner
                .recordings
                .finish_for(&self.inner.store, &call.id, now)
                .await;
            let id = finished.unwrap_or_else(|e| {
                warn!(call = %call.id, "recording not closed: {e}");
                None
            });
            media.stop_taps(RoomId::new(room), id.as_deref());
        }
    }

    /// Filters the agent's video in `room`; all-zero settings (preset "none") mean
    /// pure forwarding: no decode, no encode.
    async fn filter_agent(&self, room: &str, params: BeautyParams) {
        let filtering = params
            .fields()
            .iter()
            .any(|(_, v)| *v > 0.0)
            .then_some(params);
        if let Some(agent) = self.agent_media_id(room).await {
            self.inner
                .media
                .set_beauty(RoomId::new(room), agent, filtering);
        }
    }

    async fn agent_params(&self, agent: &UserId) -> BeautyParams {
        match self.inner.store.beauty_settings(agent).await {
            Ok(Some((_, params))) => params,
            Ok(None) => kefu_beauty::Preset::default().params(),
            Err(e) => {
                warn!("cannot read beauty settings, using the default: {e}");
                kefu_beauty::Preset::default().params()
            }
        }
    }

    async fn agent_media_id(&self, room: &str) -> Option<kefu_media_server::ParticipantId> {
        self.members(room)
            .await
            .into_iter()
            .find(|(_, role)| *role == Side::Agent)
            .map(|(participant, role)| media_participant_id(room, &participant, role))
    }

    /// Recording and screening of a call that just connected: one tap of the room,
    /// so its video is decoded once, by the recorder when there is a recording.
    async fn start_taps(&self, room: &str, call: &Call, now: i64) {
        let job = match self
            .inner
            .recordings
            .create_for(&self.inner.store, call, now)
            .await
        {
            Ok(job) => job,
            Err(e) => {
                warn!(call = %call.id, "recording not started: {e}");
                None
            }
        };
        let screening = if call.kind == CallKind::Video {
            match self
                .inner
                .store
                .moderation_settings(&call.enterprise_id)
                .await
            {
                Ok(s) if s.enabled => Some(s),
                Ok(_) => None,
                // Unreadable settings screen with the defaults rather than not at all.
                Err(e) => {
                    warn!(call = %call.id, "moderation settings unreadable, using the defaults: {e}");
                    Some(kefu_media_server::moderation::ModerationSettings::default())
                }
            }
        } else {
            None
        };
        if job.is_none() && screening.is_none() {
            return;
        }
        let parties = self
            .members(room)
            .await
            .into_iter()
            .map(|(participant, side)| TapParty {
                participant: media_participant_id(room, &participant, side),
                side,
            })
            .collect();
        let id = job.as_ref().map(|j| j.id.clone());
        let started = self
            .inner
            .media
            .start_taps(RoomId::new(room), parties, job, screening);
        // The call may have ended while this was being set up (its end's reactions
        // run in a task of their own and found nothing to stop): stop it here.
        if let Ok(Some(now_stored)) = self.inner.store.call(&call.id).await
            && now_stored.state.is_final()
        {
            self.inner.media.stop_taps(RoomId::new(room), id.as_deref());
        }
        if let (Err(e), Some(id)) = (started, id) {
            let failed = self
                .inner
                .recordings
                .start_failed(&self.inner.store, &id, &e, now);
            if let Err(e) = failed.await {
                warn!(recording = %id, "cannot mark the recording failed: {e}");
            }
        }
    }
}
