//! Face verification around outgoing calls: the gate (when a check is due), the
//! records the operations dashboard lists, their queries and HTTP handlers.

pub mod attempt_http;
pub mod attempts;
pub mod enroll_http;
pub mod gate;
pub mod http;
pub mod locks;
pub mod references;
pub mod store;
pub mod worker;

use serde::Serialize;

use crate::accounts::{EnterpriseId, User, UserId, VerificationId};
use crate::store::{Store, StoreError};
use gate::GateFacts;

/// One face check, as the operations dashboard lists it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VerificationRecord {
    pub id: VerificationId,
    pub enterprise_id: EnterpriseId,
    pub agent_id: UserId,
    pub agent_name: String,
    /// Encrypted; shown masked only.
    pub id_number_enc: Option<String>,
    pub passed: bool,
    pub checked_at: i64,
    pub passed_at: Option<i64>,
    /// For a failure: `no_face`, `different_person`, `liveness_not_shown`, `timed_out`.
    pub failure_reason: Option<String>,
    /// The engine's finer reason (`planar_motion`, `mirrored`, …).
    pub failure_detail: Option<String>,
    /// `workbench` or `phone`.
    pub channel: String,
}

/// Filters of the verification list.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct VerificationFilter {
    pub agent_id: Option<UserId>,
    /// Inclusive lower bound on `checked_at` (Unix ms).
    pub from: Option<i64>,
    /// Exclusive upper bound on `checked_at` (Unix ms).
    pub to: Option<i64>,
    pub passed: Option<bool>,
}

/// The facts the gate decides on, read from the store.
pub async fn gate_facts(
    store: &Store,
    agent: &User,
    session_started_at: i64,
) -> Result<GateFacts, StoreError> {
    let enterprise = store
        .enterprise(&agent.enterprise_id)
        .await?
        .ok_or(StoreError::Corrupt(
            "the agent's enterprise is missing".into(),
        ))?;
    let last_passed_at = store.last_passed_verification(&agent.id).await?;
    let outgoing_since_pass = match last_passed_at {
        Some(t) => store.outgoing_calls_since(&agent.id, t).await?,
        None => 0,
    };
    Ok(GateFacts {
        session_started_at,
        last_passed_at,
        outgoing_since_pass,
        period: enterprise.verification_period,
    })
}

/// The outcome of one face check, as the face engine reports it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct CheckOutcome {
    pub passed: bool,
}

/// Records a face check without a reason (tests of the gate use this directly; the
/// engine records through [`record_check`]). No HTTP route reaches it.
pub async fn record_verification(
    store: &Store,
    agent: &User,
    outcome: CheckOutcome,
    now_ms: i64,
) -> Result<VerificationRecord, StoreError> {
    let failure = (!outcome.passed).then_some(kefu_vision::Failure::TooLate);
    record_check(store, agent, failure, "workbench", now_ms).await
}

/// Records one attempt of the face engine: passed (`failure` = `None`) or why not.
pub async fn record_check(
    store: &Store,
    agent: &User,
    failure: Option<kefu_vision::Failure>,
    channel: &str,
    now_ms: i64,
) -> Result<VerificationRecord, StoreError> {
    let passed = failure.is_none();
    let record = VerificationRecord {
        id: VerificationId::generate(),
        enterprise_id: agent.enterprise_id.clone(),
        agent_id: agent.id.clone(),
        agent_name: agent.real_name.clone(),
        id_number_enc: agent.id_number_enc.clone(),
        passed,
        checked_at: now_ms,
        passed_at: passed.then_some(now_ms),
        failure_reason: failure.map(|f| f.category().as_str().to_owned()),
        failure_detail: failure.map(|f| f.as_str().to_owned()),
        channel: channel.to_owned(),
    };
    store.insert_verification(&record).await?;
    Ok(record)
}
