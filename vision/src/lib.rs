//! kefu's face engine: pure inference on pictures, no knowledge of calls.
//!
//! - [`header`], [`picture`]: untrusted bytes → a picture, limits checked first.
//! - [`detector`] (YuNet) and [`recognizer`] (SFace): OpenCV 4.6 DNN models loaded from
//!   files; [`engine::FaceEngine`] puts them together behind [`engine::FaceVision`].
//! - [`geometry`]: landmarks → head pose; [`quality`]: is a reference photo usable.
//! - [`embedding`]: face templates and their similarity.
//! - [`liveness`]: the active challenge, judged on a timed frame sequence (pure).
//! - [`nudity`]: content moderation's classifier (open_nsfw) behind a trait;
//!   [`marker`]: a test-only classifier behind the same trait; [`frames`]: video
//!   pictures in, evidence JPEGs out.

pub mod detector;
pub mod embedding;
pub mod engine;
pub mod frames;
pub mod geometry;
pub mod header;
pub mod liveness;
pub mod marker;
pub mod nudity;
pub mod picture;
pub mod plane;
pub mod quality;
pub mod recognizer;

use std::path::Path;

pub use embedding::Embedding;
pub use engine::{AnalyzedFrame, EnrollError, FaceEngine, FaceVision};
pub use geometry::{DetectedFace, Landmarks, Point, Pose};
pub use liveness::{
    Challenge, FaceSample, Failure, FailureCategory, FrameFaces, LivenessJudge, Policy, Progress,
    Snapshot, Turn,
};
pub use marker::TestMarkerColourClassifier;
pub use nudity::{NudityClassifier, OpenNsfw};
pub use picture::{DecodeError, DecodeLimits, Picture};

/// The engine itself failed (a model missing or broken, an OpenCV error): not the
/// input's fault.
#[derive(Debug, thiserror::Error)]
pub enum VisionError {
    #[error("model: {0}")]
    Model(String),
    #[error("OpenCV: {0}")]
    OpenCv(#[from] opencv::Error),
}

impl VisionError {
    fn model(path: &Path, e: opencv::Error) -> Self {
        VisionError::Model(format!("{}: {e}", path.display()))
    }
}

/// Keeps OpenCV's own thread pool out: each engine runs on one worker thread.
pub fn set_single_threaded() {
    if let Err(e) = opencv::core::set_num_threads(1) {
        tracing::warn!("OpenCV threads not limited: {e}");
    }
}
