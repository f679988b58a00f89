//! Errors the media plane reports to its controller.

use thiserror::Error;

/// Why a participant could not join.
#[derive(Debug, Error)]
pub enum JoinError {
    /// The offer is not valid SDP, or str0m refused it (no usable m-line, bad fingerprint...).
    #[error("the SDP offer was rejected: {0}")]
    BadOffer(String),
    /// The room already holds its two participants.
    #[error("the room is full")]
    RoomFull,
    /// The media server is shutting down or its task has ended.
    #[error("the media server is not running")]
    Unavailable,
    /// An ICE restart for a participant the media server no longer has.
    #[error("no such participant")]
    UnknownParticipant,
}

/// Why a trickled ICE candidate was not added.
#[derive(Debug, Error)]
pub enum CandidateError {
    /// The candidate line does not parse.
    #[error("the ICE candidate does not parse: {0}")]
    Malformed(String),
    /// No participant with this id is in the media server.
    #[error("no such participant")]
    UnknownParticipant,
    /// The media server is shutting down or its task has ended.
    #[error("the media server is not running")]
    Unavailable,
}

/// Starting the media server failed.
#[derive(Debug, Error)]
pub enum MediaError {
    /// The UDP socket could not be bound.
    #[error("cannot bind the media UDP socket on {addr}: {source}")]
    Bind {
        addr: std::net::SocketAddr,
        source: std::io::Error,
    },
    /// The ICE-TCP listener could not be bound.
    #[error("cannot bind the media TCP listener (ICE-TCP) on {addr}: {source}")]
    BindTcp {
        addr: std::net::SocketAddr,
        source: std::io::Error,
    },
    /// The address to advertise to peers is not usable.
    #[error("invalid media address: {0}")]
    Address(String),
    /// The driver's thread or runtime could not be started.
    #[error("cannot start the media driver thread: {0}")]
    Runtime(std::io::Error),
}
