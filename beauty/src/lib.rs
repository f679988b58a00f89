//! Server-side beauty filters on video frames.
//!
//! - [`params`]: presets and validated parameters (signaling stores them per agent).
//! - [`BeautyFilter`]: the filter itself (OpenCV), on I420 planes in place.

mod filter;
mod frame;
mod params;

pub use filter::{BeautyFilter, FilterError};
pub use frame::I420;
pub use params::{BeautyParams, ParamError, Preset};
