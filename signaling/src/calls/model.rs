//! Stored shapes of calls and their transition log.

use serde::Serialize;

use super::machine::{CallKind, CallState, Direction};
use crate::accounts::{CallId, CustomerId, EnterpriseId, GroupId, UserId};

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
