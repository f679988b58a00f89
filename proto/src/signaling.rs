//! The signaling message format (JSON over WebSocket), documented in
//! docs/signaling.md. Shared by the server, its test clients and the fuzz targets.

use serde::{Deserialize, Serialize};

use crate::call::{EndReason, Party};
use crate::side::Side;

/// What a browser sends.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, Serialize)]
#[serde(tag = "type", rename_all = "snake_case", deny_unknown_fields)]
pub enum ClientMessage {
    /// First message: authenticate and enter the room named in the token.
    Join { token: String },
    /// An SDP offer for this participant's peer connection with the SFU.
    Offer { sdp: String },
    /// An ICE restart: a new offer from the same peer connection (after
    /// `pc.restartIce()`), when the network changed. Also valid from a new WebSocket
    /// after re-joining with the same token. Answered with `answer`, or
    /// `restart_failed` when the SFU no longer has the peer connection.
    Restart { sdp: String },
    /// A trickled ICE candidate (`candidate:` line). `null` marks the end of gathering.
    Candidate {
        candidate: Option<String>,
        #[serde(default)]
        sdp_mid: Option<String>,
        #[serde(default)]
        sdp_m_line_index: Option<u32>,
    },
    /// Hang up and leave the room. (Braces so unknown fields are refused here too.)
    Leave {},
    /// Keep-alive; answered with `pong`.
    Ping {},
}

/// A participant as others see it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PeerInfo {
    pub participant: String,
    pub role: Side,
}

/// What the server sends.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum ServerMessage {
    Joined {
        room: String,
        participant: String,
        role: Side,
        /// Who is already in the room.
        peers: Vec<PeerInfo>,
        /// For `RTCConfiguration.iceServers`: STUN, and TURN with credentials made
        /// for this participant (short-lived).
        ice_servers: Vec<IceServer>,
        /// For `RTCConfiguration.iceTransportPolicy`.
        ice_transport_policy: IceTransportPolicy,
    },
    /// The SFU's answer. It carries the SFU's candidates; the SFU trickles none.
    Answer {
        sdp: String,
    },
    PeerJoined(PeerInfo),
    PeerLeft {
        participant: String,
    },
    /// ICE and DTLS with the SFU are up.
    MediaConnected,
    /// The peer connection with the SFU ended.
    MediaDisconnected {
        reason: String,
    },
    Pong,
    /// Content moderation acted on `party`'s video: withheld from the other party
    /// (both are told, each page says it its own way), or shown again after the
    /// party turned the camera off and on.
    Moderation {
        party: Side,
        state: ModerationState,
    },
    /// The call behind this room is over (whoever ended it, or kefu itself); the
    /// server closes the connection right after. Not sent in standing rooms.
    CallEnded {
        reason: EndReason,
        /// Who ended it: `agent`, `customer` or `system`.
        by: Option<Party>,
    },
    Error {
        code: ErrorCode,
        message: String,
    },
}

/// Whether moderation withholds a party's video.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ModerationState {
    Withheld,
    Restored,
}

/// One entry of `RTCConfiguration.iceServers`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct IceServer {
    pub urls: Vec<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub username: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub credential: Option<String>,
}

/// `RTCConfiguration.iceTransportPolicy`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum IceTransportPolicy {
    All,
    Relay,
}

/// Machine-readable error codes; `message` says the same for people.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ErrorCode {
    /// Not JSON, unknown `type`, or missing fields.
    InvalidMessage,
    /// Larger than `signaling.max_message_bytes`; the connection is closed (1009).
    MessageTooLarge,
    /// Bad signature or not a token; the connection is closed.
    InvalidToken,
    /// The token has expired; the connection is closed.
    TokenExpired,
    /// The room in the token does not exist; the connection is closed.
    UnknownRoom,
    /// The room already has its two participants; the connection is closed.
    RoomFull,
    /// No `join` within the allowed time; the connection is closed.
    JoinTimeout,
    /// The message needs a joined session (send `join` first).
    NotJoined,
    /// `join` sent twice on one connection.
    AlreadyJoined,
    /// The SDP offer is malformed or unusable. The session stays; send a new offer.
    BadSdp,
    /// The ICE candidate is malformed. The session stays.
    BadCandidate,
    /// The SFU no longer has this participant's peer connection (the grace period
    /// after losing the network passed): send a new `offer` from a new one.
    RestartFailed,
    /// The same participant joined from another connection; this one is closed.
    Replaced,
    /// Something failed on our side; details are in the server log.
    Internal,
    /// State the nodes share cannot be reached right now; try again shortly.
    Unavailable,
}

impl ServerMessage {
    pub fn error(code: ErrorCode, message: impl Into<String>) -> Self {
        ServerMessage::Error {
            code,
            message: message.into(),
        }
    }

    pub fn to_json(&self) -> String {
        // Invariant: these types serialize to JSON infallibly (no maps with non-string keys).
        serde_json::to_string(self).unwrap_or_default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn client_messages_parse_from_the_documented_json() {
        let join: ClientMessage =
            serde_json::from_str(r#"{"type":"join","token":"t"}"#).expect("join");
        assert_eq!(join, ClientMessage::Join { token: "t".into() });
        let cand: ClientMessage = serde_json::from_str(
            r#"{"type":"candidate","candidate":"candidate:1 1 udp 1 127.0.0.1 5 typ host","sdp_mid":"0"}"#,
        )
        .expect("candidate");
        assert!(matches!(
            cand,
            ClientMessage::Candidate {
                candidate: Some(_),
                ..
            }
        ));
        let end: ClientMessage = serde_json::from_str(r#"{"type":"candidate","candidate":null}"#)
            .expect("end of candidates");
        assert!(matches!(
            end,
            ClientMessage::Candidate {
                candidate: None,
                ..
            }
        ));
    }

    #[test]
    fn unknown_types_and_fields_are_rejected() {
        assert!(serde_json::from_str::<ClientMessage>(r#"{"type":"dance"}"#).is_err());
        assert!(serde_json::from_str::<ClientMessage>(r#"{"type":"join"}"#).is_err());
        assert!(serde_json::from_str::<ClientMessage>(r#"{"type":"leave","x":1}"#).is_err());
        assert!(serde_json::from_str::<ClientMessage>("not json").is_err());
    }

    #[test]
    fn server_errors_serialize_with_snake_case_codes() {
        let json = ServerMessage::error(ErrorCode::BadSdp, "nope").to_json();
        assert_eq!(
            json,
            r#"{"type":"error","code":"bad_sdp","message":"nope"}"#
        );
        let joined = ServerMessage::PeerJoined(PeerInfo {
            participant: "p".into(),
            role: Side::Customer,
        })
        .to_json();
        assert_eq!(
            joined,
            r#"{"type":"peer_joined","participant":"p","role":"customer"}"#
        );
    }
}
