//! Face verification around outgoing calls: the gate (when a check is due), the
//! records the operations dashboard lists, their queries and HTTP handlers.

pub mod gate;
pub mod http;
pub mod store;

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

/// Records a face check. This is the face engine's internal interface: there is no
/// HTTP route to it until the engine lands, and no debug bypass.
pub async fn record_verification(
    store: &Store,
    agent: &User,
    outcome: CheckOutcome,
    now_ms: i64,
) -> Result<VerificationRecord, StoreError> {
    let record = VerificationRecord {
        id: VerificationId::generate(),
        enterprise_id: agent.enterprise_id.clone(),
        agent_id: agent.id.clone(),
        agent_name: agent.real_name.clone(),
        id_number_enc: agent.id_number_enc.clone(),
        passed: outcome.passed,
        checked_at: now_ms,
        passed_at: outcome.passed.then_some(now_ms),
    };
    store.insert_verification(&record).await?;
    Ok(record)
}
