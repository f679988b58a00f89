//! Server-side beauty filters on video frames.
//!
//! - [`params`]: presets and validated parameters (signaling stores them per agent).
//! - [`BeautyFilter`]: the filter itself (OpenCV), on I420 planes in place.

mod filter;
mod frame;
mod guided;
mod params;

pub use filter::{BeautyFilter, FilterError};
pub use frame::{I420, I420Ref};
pub use params::{BeautyParams, ParamError, Preset};

/// Keeps OpenCV to the calling thread (process-wide). Each stream's filter runs on its
/// own pipeline thread, so OpenCV's own thread pool would only oversubscribe the cores.
pub fn set_single_threaded() {
    if let Err(e) = opencv::core::set_num_threads(1) {
        tracing::warn!("OpenCV threads not limited: {e}");
    }
}
