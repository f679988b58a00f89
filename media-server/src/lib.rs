//! kefu's SFU.
//!
//! - [`core`] is sans-IO: it owns one [`str0m::Rtc`] per participant, routes datagrams
//!   to them and forwards media between the two participants of a room. Time is an
//!   input; it never touches a socket or a clock.
//! - [`driver`] is the thin tokio loop around it: one UDP socket for every participant,
//!   a command channel from signaling, events back.

pub mod config;
pub mod core;
pub mod depacketize;
pub mod driver;
pub mod error;
pub mod metrics;
pub mod moderation;
pub mod pipeline;
mod tcp;
pub mod udp;

pub use config::{MediaConfig, Vp8Encoding, Vp8Version};
pub use core::{
    BeautyOutput, BlankFrames, DropReason, Sfu, SfuEvent, SfuOutput, SfuStats, TapParty,
};
pub use driver::{MediaHandle, MediaServer};
pub use error::{CandidateError, JoinError, MediaError};
pub use kefu_proto::{ParticipantId, RoomId};
pub use metrics::SfuMetrics;

/// Installs str0m's crypto provider (aws-lc-rs) as the process default.
///
/// Idempotent; called by the driver and by tests before building any `Rtc`.
pub fn init_crypto() {
    static INIT: std::sync::Once = std::sync::Once::new();
    INIT.call_once(|| str0m::crypto::from_feature_flags().install_process_default());
}
