//! What several kefu crates must agree on, and nothing else: identifiers, the side of
//! a call a party is on, codecs, the frames the SFU hands to whoever listens (and the
//! [`FrameSink`] they listen through), the signaling messages, why a call ended, and
//! [`Pii`] for personal data in logs. No IO, no heavy dependencies: the media plane,
//! the recorder, signaling and the fuzz targets all build on it.

pub mod call;
pub mod ids;
pub mod media;
pub mod pii;
pub mod process;
pub mod side;
pub mod signaling;

pub use call::{EndReason, FailureKind, Party};
pub use ids::{ParticipantId, RoomId};
pub use media::{
    Codec, FrameSink, I420Picture, PictureSink, PictureSource, SenderClock, TapFrame, TapParty,
    VideoCodec,
};
pub use pii::Pii;
pub use side::Side;
