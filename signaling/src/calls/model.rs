//! Stored shapes of calls and verification records.

use serde::Serialize;

use super::machine::{CallKind, CallState, Direction};
use crate::accounts::{CallId, CustomerId, EnterpriseId, GroupId, UserId, VerificationId};

/// A call as stored.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Call {
    pub id: CallId,
    pub enterprise_id: EnterpriseId,
    pub direction: Direction,
    pub kind: CallKind,
    pub state: CallState,
    pub agent_id: Option<UserId>,
    pub customer_id: Option<CustomerId>,
    pub group_id: Option<GroupId>,
    /// Secret code of the agent's invite link.
    #[serde(skip)]
    pub invite_code: Option<String>,
    pub created_at: i64,
    pub state_since: i64,
    pub ring_deadline: Option<i64>,
    pub connected_at: Option<i64>,
    pub ended_at: Option<i64>,
}

/// One persisted transition.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct CallEventRow {
    pub seq: i64,
    pub at: i64,
    pub from_state: String,
    pub to_state: String,
    pub event: String,
    /// The target state with who and why, as JSON.
    pub detail: String,
}

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
