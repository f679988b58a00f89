//! Server-side beauty filters on video frames.
//!
//! Today this crate holds the settings model only (presets and validated parameters),
//! which signaling stores per agent. The filters themselves (OpenCV) land with the
//! beauty issue (#5); nothing here pretends to filter.

mod params;

pub use params::{BeautyParams, ParamError, Preset};
