//! What signaling nodes and media nodes say to each other on a media node's control
//! API (`cluster.internal_bind`). A participant's peer connection is driven over one
//! WebSocket (`/internal/v1/media`): the first message joins or re-attaches, then
//! restarts, candidates and the leave follow, and the media node sends the answers
//! and the SFU's events back. Room operations are plain JSON requests.

use kefu_media_server::moderation::ModerationSettings;
use kefu_media_server::{JoinError, SfuEvent};
use kefu_proto::{ParticipantId, Side, TapParty};
use kefu_recorder::{RecordingJob, RecordingKind};
use serde::{Deserialize, Serialize};

/// Header carrying `cluster.secret` on every internal request.
pub const SECRET_HEADER: &str = "x-kefu-cluster-secret";

/// Signaling node → media node, on a participant's WebSocket.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(tag = "type", rename_all = "snake_case", deny_unknown_fields)]
pub enum ToMedia {
    /// First message: a new peer connection in `room`.
    Join {
        room: String,
        participant: String,
        offer: String,
    },
    /// First message: an ICE restart of a participant this connection did not join
    /// (its signaling moved to another node).
    Attach {
        participant: String,
        offer: String,
    },
    /// An ICE restart on this connection's participant.
    Restart {
        offer: String,
    },
    Candidate {
        candidate: String,
    },
    /// The participant leaves; the connection closes after it.
    Leave,
}

/// Media node → signaling node, on a participant's WebSocket.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(tag = "type", rename_all = "snake_case", deny_unknown_fields)]
pub enum FromMedia {
    Answer {
        sdp: String,
    },
    /// The join, attach or restart was refused.
    Refused {
        reason: Refusal,
        detail: String,
    },
    /// A trickled candidate was refused (the page is told, the session stays).
    CandidateRefused {
        detail: String,
    },
    Connected,
    Disconnected {
        reason: String,
    },
}

#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum Refusal {
    BadOffer,
    RoomFull,
    Unavailable,
    UnknownParticipant,
}

impl From<&JoinError> for Refusal {
    fn from(e: &JoinError) -> Self {
        match e {
            JoinError::BadOffer(_) => Refusal::BadOffer,
            JoinError::RoomFull => Refusal::RoomFull,
            JoinError::Unavailable => Refusal::Unavailable,
            JoinError::UnknownParticipant => Refusal::UnknownParticipant,
        }
    }
}

impl Refusal {
    pub fn into_error(self, detail: String) -> JoinError {
        match self {
            Refusal::BadOffer => JoinError::BadOffer(detail),
            Refusal::RoomFull => JoinError::RoomFull,
            Refusal::Unavailable => JoinError::Unavailable,
            Refusal::UnknownParticipant => JoinError::UnknownParticipant,
        }
    }
}

impl FromMedia {
    pub fn event(event: &SfuEvent) -> Self {
        match event {
            SfuEvent::Connected { .. } => FromMedia::Connected,
            SfuEvent::Disconnected { reason, .. } => FromMedia::Disconnected {
                reason: reason.clone(),
            },
        }
    }
}

/// A party of a tapped room, as sent.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct WireParty {
    pub participant: String,
    pub side: Side,
}

impl From<&TapParty> for WireParty {
    fn from(p: &TapParty) -> Self {
        Self {
            participant: p.participant.as_str().to_owned(),
            side: p.side,
        }
    }
}

impl From<WireParty> for TapParty {
    fn from(p: WireParty) -> Self {
        TapParty {
            participant: ParticipantId::new(p.participant),
            side: p.side,
        }
    }
}

/// `POST /internal/v1/rooms/{room}/taps`
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StartTaps {
    pub parties: Vec<WireParty>,
    pub recording: Option<WireJob>,
    pub screening: Option<ModerationSettings>,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct WireJob {
    pub id: String,
    pub kind: RecordingKind,
    pub key: String,
}

impl From<&RecordingJob> for WireJob {
    fn from(j: &RecordingJob) -> Self {
        Self {
            id: j.id.clone(),
            kind: j.kind,
            key: j.key.clone(),
        }
    }
}

impl From<WireJob> for RecordingJob {
    fn from(j: WireJob) -> Self {
        RecordingJob {
            id: j.id,
            kind: j.kind,
            key: j.key,
        }
    }
}

/// `DELETE /internal/v1/rooms/{room}/taps`
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StopTaps {
    pub recording: Option<String>,
}

/// `POST /internal/v1/rooms/{room}/leave`
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Leave {
    pub participant: String,
}

/// The beauty filter's knobs, as sent.
#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct WireBeauty {
    pub smoothing: f64,
    pub whitening: f64,
    pub ruddiness: f64,
    pub sharpness: f64,
}

impl From<kefu_beauty::BeautyParams> for WireBeauty {
    fn from(p: kefu_beauty::BeautyParams) -> Self {
        Self {
            smoothing: p.smoothing,
            whitening: p.whitening,
            ruddiness: p.ruddiness,
            sharpness: p.sharpness,
        }
    }
}

impl WireBeauty {
    /// The parameters, if valid (they come from another node, but still from the
    /// network).
    pub fn params(self) -> Option<kefu_beauty::BeautyParams> {
        let p = kefu_beauty::BeautyParams {
            smoothing: self.smoothing,
            whitening: self.whitening,
            ruddiness: self.ruddiness,
            sharpness: self.sharpness,
        };
        p.validate().ok().map(|()| p)
    }
}

/// `PUT /internal/v1/rooms/{room}/beauty` (filter) and `…/preview` (the dialog).
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SetBeauty {
    pub agent: String,
    /// `None`: forward the agent's video untouched.
    pub params: Option<WireBeauty>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn messages_round_trip_and_unknown_fields_are_refused() {
        let join = ToMedia::Join {
            room: "r".into(),
            participant: "r/agent/a".into(),
            offer: "v=0".into(),
        };
        let json = serde_json::to_string(&join).expect("json");
        assert_eq!(serde_json::from_str::<ToMedia>(&json).expect("back"), join);
        let extra = r#"{"type":"restart","offer":"v=0","extra":1}"#;
        assert!(serde_json::from_str::<ToMedia>(extra).is_err());
        let refused = FromMedia::Refused {
            reason: Refusal::from(&JoinError::RoomFull),
            detail: String::new(),
        };
        let json = serde_json::to_string(&refused).expect("json");
        assert_eq!(
            serde_json::from_str::<FromMedia>(&json).expect("back"),
            refused
        );
    }

    #[test]
    fn beauty_from_another_node_is_checked() {
        let ok = WireBeauty::from(kefu_beauty::Preset::Natural.params());
        assert!(ok.params().is_some());
        let nan = WireBeauty {
            smoothing: f64::NAN,
            ..ok
        };
        assert!(nan.params().is_none());
        let big = WireBeauty {
            sharpness: 2.0,
            ..ok
        };
        assert!(big.params().is_none());
    }
}
