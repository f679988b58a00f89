//! The call vocabulary that crosses crate and wire boundaries: who did something, and
//! why a call is over.

use serde::{Deserialize, Serialize};

/// Who did something to a call.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum Party {
    Agent,
    Customer,
    /// kefu itself (timeouts, moderation, shutdown).
    System,
}

/// Why a call is over. Stored inside the final state and shown as is (snake_case).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum EndReason {
    /// A party hung up (the state says who).
    HangUp,
    /// A party's connection broke and did not come back within the grace period.
    NetworkLost,
    /// Nobody answered in time.
    RingTimeout,
    /// The caller withdrew before it connected.
    Cancelled,
    /// The callee declined.
    Rejected,
    /// Content moderation ended it.
    Moderation,
    /// The node holding the call's media went away.
    NodeLost,
    /// kefu was stopped (SIGTERM/SIGINT) while the call was live.
    SystemShutdown,
    /// kefu died while the call was live and found it at its next start.
    SystemRestart,
    /// It broke; the state says how.
    Failed,
}

impl EndReason {
    pub fn as_str(self) -> &'static str {
        match self {
            EndReason::HangUp => "hang_up",
            EndReason::NetworkLost => "network_lost",
            EndReason::RingTimeout => "ring_timeout",
            EndReason::Cancelled => "cancelled",
            EndReason::Rejected => "rejected",
            EndReason::Moderation => "moderation",
            EndReason::NodeLost => "node_lost",
            EndReason::SystemShutdown => "system_shutdown",
            EndReason::SystemRestart => "system_restart",
            EndReason::Failed => "failed",
        }
    }
}

/// How a call broke.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum FailureKind {
    /// Accepted, but the media never came up.
    MediaNeverConnected,
    /// The media path was lost for good.
    MediaLost,
    /// A fault of kefu's own.
    Internal,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn end_reasons_serialize_as_their_names() {
        for r in [
            EndReason::HangUp,
            EndReason::NetworkLost,
            EndReason::RingTimeout,
            EndReason::Cancelled,
            EndReason::Rejected,
            EndReason::Moderation,
            EndReason::NodeLost,
            EndReason::SystemShutdown,
            EndReason::SystemRestart,
            EndReason::Failed,
        ] {
            let json = serde_json::to_string(&r).expect("json");
            assert_eq!(json, format!("\"{}\"", r.as_str()));
            assert_eq!(serde_json::from_str::<EndReason>(&json).expect("back"), r);
        }
    }
}
