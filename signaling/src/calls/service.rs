//! Call rules and persistence: checks rules, applies the pure state machine, persists
//! every transition. Time comes in as an argument. Reactions to a transition live in
//! `lifecycle.rs`, which is the only caller of [`apply`].

use super::machine::{CallEvent, CallKind, CallState, Direction, InvalidTransition, initial_state};
use super::model::Call;
use crate::accounts::{CallId, CustomerId, User, UserId, UserRole};
use crate::store::{Store, StoreError};
use crate::verification::gate::{VerificationDue, check_gate};
use crate::verification::gate_facts;

/// Why a call action was refused.
#[derive(Debug, thiserror::Error)]
pub enum CallError {
    #[error("the video service is not enabled for this agent")]
    VideoServiceDisabled,
    #[error("a face verification is required before calling out")]
    VerificationRequired(VerificationDue),
    #[error("the agent is at capacity ({0} concurrent calls)")]
    AtCapacity(u32),
    #[error("no such call")]
    NotFound,
    /// The group's queue is full: the customer is told, nothing is dropped silently.
    #[error("all agents are busy; please try again later")]
    AllAgentsBusy,
    #[error(transparent)]
    Invalid(#[from] InvalidTransition),
    /// Someone else changed the call at the same moment; retry with fresh state.
    #[error("the call changed meanwhile; retry")]
    Raced,
    /// The task applying the transition died (a panic); the cause is logged.
    #[error("the call could not be moved: {0}")]
    Task(String),
    #[error(transparent)]
    Store(StoreError),
    /// The state nodes share could not be reached; nothing changed.
    #[error(transparent)]
    Cluster(#[from] crate::cluster::ClusterError),
}

impl From<StoreError> for CallError {
    fn from(e: StoreError) -> Self {
        match e {
            StoreError::Conflict("call state changed") => CallError::Raced,
            other => CallError::Store(other),
        }
    }
}

/// Length of an invite code: 24 URL-safe characters, ~143 bits.
const INVITE_CODE_LEN: usize = 24;

fn invite_code() -> String {
    const ALPHABET: &[u8] = b"abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789";
    (0..INVITE_CODE_LEN)
        .map(|_| ALPHABET[rand::random_range(0..ALPHABET.len())] as char)
        .collect()
}

/// An agent calls a customer out: service enabled, gate passed, a free slot.
pub async fn start_outgoing(
    store: &Store,
    agent: &User,
    session_started_at: i64,
    kind: CallKind,
    now_ms: i64,
) -> Result<Call, CallError> {
    if agent.role != UserRole::Agent || !agent.video_enabled {
        return Err(CallError::VideoServiceDisabled);
    }
    check_gate(gate_facts(store, agent, session_started_at).await?)
        .map_err(CallError::VerificationRequired)?;
    let live = store.live_calls_of(&agent.id).await?;
    if live >= agent.capacity {
        return Err(CallError::AtCapacity(agent.capacity));
    }
    let enterprise = store
        .enterprise(&agent.enterprise_id)
        .await?
        .ok_or(CallError::NotFound)?;
    let call = Call {
        id: CallId::generate(),
        enterprise_id: agent.enterprise_id.clone(),
        direction: Direction::AgentInitiated,
        kind,
        state: initial_state(Direction::AgentInitiated),
        agent_id: Some(agent.id.clone()),
        customer_id: None,
        group_id: None,
        invite_code: Some(invite_code()),
        created_at: now_ms,
        state_since: now_ms,
        ring_deadline: Some(now_ms + i64::from(enterprise.ring_timeout_secs) * 1000),
        connected_at: None,
        ended_at: None,
    };
    store.create_call(&call, "agent_call").await?;
    Ok(call)
}

/// How long an accepted call may take to get both parties' media up before it fails
/// (`media_never_connected`): consent, permissions and ICE, with room to spare.
pub const CONNECT_TIMEOUT_MS: i64 = 120_000;

/// Conditions and extra changes of one transition, checked on the row as stored.
#[derive(Debug, Default, Clone)]
pub struct Transition {
    /// The call must be this agent's (an agent acting on a call it was shown).
    pub by_agent: Option<UserId>,
    /// The customer the call gets with this transition (an invite opened).
    pub customer: Option<CustomerId>,
}

/// Applies `event` to a stored call and persists the transition. Only the
/// `CallDriver` (lifecycle.rs) calls this: it runs the reactions.
pub async fn apply(
    store: &Store,
    id: &CallId,
    event: &CallEvent,
    now_ms: i64,
) -> Result<Call, CallError> {
    apply_with(store, id, event, now_ms, Transition::default()).await
}

/// [`apply`], refused (as not found) when the stored call is not `t.by_agent`'s, and
/// setting `t.customer` in the same write.
pub async fn apply_with(
    store: &Store,
    id: &CallId,
    event: &CallEvent,
    now_ms: i64,
    t: Transition,
) -> Result<Call, CallError> {
    let call = store.call(id).await?.ok_or(CallError::NotFound)?;
    if t.by_agent.is_some() && call.agent_id != t.by_agent {
        return Err(CallError::NotFound);
    }
    let next = call.state.next(call.direction, event)?;
    let mut updated = call.clone();
    updated.state = next;
    updated.state_since = now_ms;
    if let Some(customer) = t.customer {
        updated.customer_id = Some(customer);
    }
    match &updated.state {
        CallState::Connected => updated.connected_at = Some(now_ms),
        s if s.is_final() => updated.ended_at = Some(now_ms),
        _ => {}
    }
    if !matches!(
        updated.state,
        CallState::Requested | CallState::Inviting | CallState::Ringing
    ) {
        updated.ring_deadline = None;
    }
    if updated.state == CallState::Connecting {
        updated.ring_deadline = Some(now_ms + CONNECT_TIMEOUT_MS);
    }
    if updated.state == CallState::Requested {
        // Back in the queue (re-offered): no agent, and the request's own wait limit.
        updated.agent_id = None;
        let enterprise = store
            .enterprise(&call.enterprise_id)
            .await?
            .ok_or(CallError::NotFound)?;
        updated.ring_deadline = Some(wait_deadline(&call, &enterprise));
    }
    store
        .save_transition(&call, &updated, event.name(), now_ms)
        .await?;
    // The agent it occupied is free again (a re-offered request leaves it too).
    let released = updated.state.is_final() || updated.state == CallState::Requested;
    if released
        && call.state.occupies_agent()
        && let Some(agent) = &call.agent_id
    {
        store.set_idle_since(agent, now_ms).await?;
    }
    Ok(updated)
}

/// When a customer's request times out whatever happens meanwhile: its creation plus
/// the enterprise's `request_wait_secs`.
pub fn wait_deadline(call: &Call, enterprise: &crate::accounts::Enterprise) -> i64 {
    call.created_at + i64::from(enterprise.request_wait_secs) * 1000
}

/// A customer asks for a call from the service page: a request in the group's queue.
pub async fn request_call(
    store: &Store,
    group: &crate::accounts::Group,
    display_name: &str,
    kind: CallKind,
    now_ms: i64,
) -> Result<(Call, crate::accounts::CustomerId), CallError> {
    let enterprise = store
        .enterprise(&group.enterprise_id)
        .await?
        .ok_or(CallError::NotFound)?;
    if store.queue_length(&group.id).await? >= enterprise.queue_capacity {
        return Err(CallError::AllAgentsBusy);
    }
    let customer = store
        .create_customer(&group.enterprise_id, display_name, now_ms)
        .await?;
    let call = Call {
        id: CallId::generate(),
        enterprise_id: group.enterprise_id.clone(),
        direction: Direction::CustomerInitiated,
        kind,
        state: initial_state(Direction::CustomerInitiated),
        agent_id: None,
        customer_id: Some(customer.clone()),
        group_id: Some(group.id.clone()),
        invite_code: None,
        created_at: now_ms,
        state_since: now_ms,
        // The request's overall wait limit (queue and rings); ringing an agent also
        // has its own, shorter one.
        ring_deadline: Some(now_ms + i64::from(enterprise.request_wait_secs) * 1000),
        connected_at: None,
        ended_at: None,
    };
    store.create_call(&call, "customer_request").await?;
    Ok((call, customer))
}

/// Requests a dispatch looks at per group and pass, oldest first.
const DISPATCH_BATCH: u32 = 200;

/// Assigns a group's waiting requests, oldest first, to available agents: each request
/// to the least busy agent that has not already declined it or let it ring out. A
/// request nobody eligible is free for waits, and the ones behind it still get their
/// chance. Returns the calls now ringing. Callers serialise dispatches.
pub async fn dispatch(
    store: &Store,
    group: &crate::accounts::GroupId,
    now_ms: i64,
) -> Result<Vec<Call>, CallError> {
    let mut assigned = Vec::new();
    let requests = store.waiting_requests(group, DISPATCH_BATCH).await?;
    if requests.is_empty() {
        return Ok(assigned);
    }
    let mut loads = Vec::new();
    for agent in store.group_members(group).await? {
        loads.push(super::routing::AgentLoad {
            available: agent.video_enabled
                && agent.status == crate::accounts::AgentStatus::Online
                && agent.accepting,
            capacity: agent.capacity,
            live_calls: store.live_calls_of(&agent.id).await?,
            idle_since: agent.idle_since,
            id: agent.id,
        });
    }
    for call in requests {
        let passed_over = store.passed_over(&call.id).await?;
        let candidates: Vec<_> = loads
            .iter()
            .filter(|a| !passed_over.contains(&a.id))
            .cloned()
            .collect();
        let Some(agent) = super::routing::pick_agent(&candidates).cloned() else {
            continue;
        };
        let enterprise = store
            .enterprise(&call.enterprise_id)
            .await?
            .ok_or(CallError::NotFound)?;
        let mut updated = call.clone();
        updated.state = call.state.next(call.direction, &CallEvent::Assigned)?;
        updated.state_since = now_ms;
        updated.agent_id = Some(agent.clone());
        let ring = now_ms + i64::from(enterprise.ring_timeout_secs) * 1000;
        updated.ring_deadline = Some(ring.min(wait_deadline(&call, &enterprise)));
        match store
            .save_transition(&call, &updated, "assigned", now_ms)
            .await
        {
            Ok(()) => {}
            // Cancelled (or timed out) at this moment: the others still get their turn.
            Err(StoreError::Conflict(_)) => continue,
            Err(e) => return Err(e.into()),
        }
        if let Some(load) = loads.iter_mut().find(|a| a.id == agent) {
            load.live_calls += 1;
        }
        assigned.push(updated);
    }
    Ok(assigned)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::accounts::store::NewUser;
    use crate::accounts::{Enterprise, UserRole};
    use crate::calls::machine::Party;
    use crate::store::test_support::fresh_stores;
    use crate::verification::{CheckOutcome, record_verification};

    const LOGIN: i64 = 1_764_000_000_000;

    async fn agent(store: &Store, video: bool) -> User {
        let e = Enterprise::new("Acme", "400", LOGIN);
        store.create_enterprise(&e).await.expect("enterprise");
        let new = NewUser {
            enterprise_id: e.id,
            login: "alice".into(),
            role: UserRole::Agent,
            real_name: "李丽".into(),
            id_number_enc: None,
            password_hash: "x".into(),
            capacity: 5,
        };
        let user = store.create_user(&new, LOGIN).await.expect("user");
        store
            .set_video_enabled(&user.id, video)
            .await
            .expect("grant");
        store.user(&user.id).await.expect("get").expect("exists")
    }

    #[tokio::test]
    async fn the_gate_refuses_then_allows_three_calls_then_refuses_the_fourth() {
        for (store, _dir) in fresh_stores().await {
            let alice = agent(&store, true).await;
            let mut now = LOGIN + 1000;
            let err = start_outgoing(&store, &alice, LOGIN, CallKind::Video, now)
                .await
                .expect_err("gate");
            assert!(matches!(
                err,
                CallError::VerificationRequired(VerificationDue::FirstCallSinceLogin)
            ));

            now += 1000;
            record_verification(&store, &alice, CheckOutcome { passed: false }, now)
                .await
                .expect("failed check");
            let err = start_outgoing(&store, &alice, LOGIN, CallKind::Video, now + 1)
                .await
                .expect_err("gate");
            assert!(
                matches!(err, CallError::VerificationRequired(_)),
                "a failed check opens nothing"
            );

            now += 1000;
            record_verification(&store, &alice, CheckOutcome { passed: true }, now)
                .await
                .expect("check");
            for _ in 0..3 {
                now += 1000;
                let call = start_outgoing(&store, &alice, LOGIN, CallKind::Video, now)
                    .await
                    .expect("allowed");
                apply(
                    &store,
                    &call.id,
                    &CallEvent::Cancel { by: Party::Agent },
                    now + 1,
                )
                .await
                .expect("cancel");
            }
            now += 1000;
            let err = start_outgoing(&store, &alice, LOGIN, CallKind::Video, now)
                .await
                .expect_err("4th");
            assert!(matches!(
                err,
                CallError::VerificationRequired(VerificationDue::PeriodUsed { period: 3 })
            ));
        }
    }

    #[tokio::test]
    async fn without_the_video_service_there_is_no_call() {
        for (store, _dir) in fresh_stores().await {
            let alice = agent(&store, false).await;
            record_verification(&store, &alice, CheckOutcome { passed: true }, LOGIN + 1)
                .await
                .expect("check");
            let err = start_outgoing(&store, &alice, LOGIN, CallKind::Voice, LOGIN + 2)
                .await
                .expect_err("disabled");
            assert!(matches!(err, CallError::VideoServiceDisabled));
        }
    }

    #[tokio::test]
    async fn a_call_runs_to_its_end_and_every_step_is_logged() {
        for (store, _dir) in fresh_stores().await {
            let alice = agent(&store, true).await;
            record_verification(&store, &alice, CheckOutcome { passed: true }, LOGIN + 1)
                .await
                .expect("check");
            let call = start_outgoing(&store, &alice, LOGIN, CallKind::Video, LOGIN + 2)
                .await
                .expect("call");
            assert_eq!(call.ring_deadline, Some(LOGIN + 2 + 60_000));
            let steps = [
                CallEvent::CustomerOpened,
                CallEvent::Accept {
                    by: Party::Customer,
                },
                CallEvent::MediaUp,
                CallEvent::HangUp {
                    by: Party::Customer,
                    reason: crate::calls::EndReason::HangUp,
                },
            ];
            let mut t = LOGIN + 10;
            let mut last = call.clone();
            for step in &steps {
                t += 10;
                last = apply(&store, &call.id, step, t).await.expect("step");
            }
            assert!(matches!(
                last.state,
                CallState::Ended {
                    by: Party::Customer,
                    ..
                }
            ));
            assert_eq!(
                (last.connected_at, last.ended_at),
                (Some(LOGIN + 40), Some(LOGIN + 50))
            );
            let names: Vec<_> = store
                .call_events(&call.id)
                .await
                .expect("log")
                .into_iter()
                .map(|e| e.to_state)
                .collect();
            assert_eq!(
                names,
                ["inviting", "ringing", "connecting", "connected", "ended"]
            );
            let err = apply(&store, &call.id, &CallEvent::MediaUp, t + 1)
                .await
                .expect_err("final");
            assert!(matches!(err, CallError::Invalid(_)));
        }
    }

    #[tokio::test]
    async fn requests_wait_oldest_first_and_go_to_the_least_busy_agent_when_one_is_free() {
        for (store, _dir) in fresh_stores().await {
            let alice = agent(&store, true).await;
            let group = store
                .create_group(&alice.enterprise_id, "售后", LOGIN)
                .await
                .expect("group");
            store
                .add_to_group(&group.id, &alice.id)
                .await
                .expect("member");
            let (first, _) = request_call(&store, &group, "甲", CallKind::Video, LOGIN + 1)
                .await
                .expect("request");
            let (second, _) = request_call(&store, &group, "乙", CallKind::Voice, LOGIN + 2)
                .await
                .expect("request");
            assert_eq!(store.queue_position(&second).await.expect("pos"), 2);

            // Nobody accepting: the requests wait.
            assert!(
                dispatch(&store, &group.id, LOGIN + 3)
                    .await
                    .expect("dispatch")
                    .is_empty()
            );
            store
                .set_presence(
                    &alice.id,
                    crate::accounts::AgentStatus::Online,
                    true,
                    LOGIN + 4,
                )
                .await
                .expect("online");
            let rung = dispatch(&store, &group.id, LOGIN + 5)
                .await
                .expect("dispatch");
            // Capacity 5: both go to alice, oldest first.
            assert_eq!(
                rung.iter().map(|c| c.id.clone()).collect::<Vec<_>>(),
                [first.id.clone(), second.id.clone()]
            );
            assert!(
                rung.iter().all(
                    |c| c.state == CallState::Ringing && c.agent_id.as_ref() == Some(&alice.id)
                )
            );
            assert_eq!(rung[0].ring_deadline, Some(LOGIN + 5 + 60_000));
            assert_eq!(
                store.ringing_for(&alice.id).await.expect("ringing").len(),
                2
            );
        }
    }

    #[tokio::test]
    async fn a_full_queue_says_all_agents_are_busy() {
        for (store, _dir) in fresh_stores().await {
            let alice = agent(&store, true).await;
            let group = store
                .create_group(&alice.enterprise_id, "g", LOGIN)
                .await
                .expect("group");
            let e = store
                .enterprise(&alice.enterprise_id)
                .await
                .expect("get")
                .expect("e");
            for i in 0..e.queue_capacity.min(3) {
                request_call(&store, &group, "x", CallKind::Voice, LOGIN + i64::from(i))
                    .await
                    .expect("queued");
            }
            // Shrink the queue to what is in it, then one more is refused.
            sqlx::query("UPDATE enterprises SET queue_capacity = 3")
                .execute(store.pool())
                .await
                .expect("shrink");
            let err = request_call(&store, &group, "y", CallKind::Voice, LOGIN + 9)
                .await
                .expect_err("full");
            assert!(matches!(err, CallError::AllAgentsBusy));
        }
    }

    #[tokio::test]
    async fn capacity_bounds_live_calls() {
        for (store, _dir) in fresh_stores().await {
            let alice = agent(&store, true).await;
            store.enterprise(&alice.enterprise_id).await.expect("e");
            record_verification(&store, &alice, CheckOutcome { passed: true }, LOGIN + 1)
                .await
                .expect("check");
            // Capacity 5 but the gate allows 3 per verification: re-verify between calls.
            for i in 0..5 {
                record_verification(
                    &store,
                    &alice,
                    CheckOutcome { passed: true },
                    LOGIN + 10 + i * 10,
                )
                .await
                .expect("check");
                start_outgoing(&store, &alice, LOGIN, CallKind::Video, LOGIN + 15 + i * 10)
                    .await
                    .expect("call");
            }
            record_verification(&store, &alice, CheckOutcome { passed: true }, LOGIN + 100)
                .await
                .expect("check");
            let err = start_outgoing(&store, &alice, LOGIN, CallKind::Video, LOGIN + 101)
                .await
                .expect_err("full");
            assert!(matches!(err, CallError::AtCapacity(5)));
        }
    }
}
