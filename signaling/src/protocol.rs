//! The signaling message format lives in the shared crate (the test clients and the
//! fuzz targets use it too); see docs/signaling.md.

pub use kefu_proto::signaling::*;
