//! Catalogue shapes.

use kefu_recorder::{FailureKind, RecordingKind};

use crate::accounts::{CallId, CustomerId, EnterpriseId, UserId};

/// What users see of a recording's progress.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RecordingState {
    Recording,
    Processing,
    Ready,
    Failed,
}

impl RecordingState {
    pub fn as_str(self) -> &'static str {
        match self {
            RecordingState::Recording => "recording",
            RecordingState::Processing => "processing",
            RecordingState::Ready => "ready",
            RecordingState::Failed => "failed",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "recording" => Some(RecordingState::Recording),
            "processing" => Some(RecordingState::Processing),
            "ready" => Some(RecordingState::Ready),
            "failed" => Some(RecordingState::Failed),
            _ => None,
        }
    }
}

/// One recording as catalogued.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Recording {
    pub id: String,
    pub enterprise_id: EnterpriseId,
    pub call_id: CallId,
    pub agent_id: Option<UserId>,
    pub customer_id: Option<CustomerId>,
    pub kind: RecordingKind,
    pub state: RecordingState,
    pub failure_kind: Option<FailureKind>,
    pub failure_reason: Option<String>,
    pub object_key: String,
    pub display_name: String,
    pub started_at: i64,
    pub ended_at: Option<i64>,
    pub duration_ms: Option<i64>,
    pub size_bytes: Option<i64>,
}

/// Filters of the recordings list.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RecordingFilter {
    pub agent_id: Option<UserId>,
    pub customer_id: Option<CustomerId>,
    pub call_id: Option<CallId>,
    /// Inclusive lower bound on `started_at` (Unix ms).
    pub from: Option<i64>,
    /// Exclusive upper bound on `started_at` (Unix ms).
    pub to: Option<i64>,
    pub kind: Option<RecordingKind>,
    pub state: Option<RecordingState>,
}
