//! Call recorder: capture both parties, transcode live, upload to S3-compatible storage.
//!
//! - frames come from the media server as `kefu_proto::TapFrame`s, through [`TapSink`].
//! - [`clock`] and [`transcode`]: the timeline and the live transcoder (ffmpeg-next),
//!   synchronous and clock-free, run by a worker thread per recording.
//! - [`fmp4`]: how much of a spool file is complete (the spool is the journal);
//!   [`spool`]: the file written behind a pipe, so a full disk only delays it.
//! - [`store`], [`embedded`], [`upload`]: S3 through aws-sdk-s3 only, an S3 server
//!   embedded for the single-process default, multipart uploads as the spool fills.
//! - [`service`]: the [`Recorder`] that signaling drives (start, finish, recover).

pub mod clock;
pub mod embedded;
pub mod fmp4;
pub mod naming;
pub mod service;
pub mod spool;
pub mod store;
pub mod transcode;
pub mod upload;
pub mod worker;

pub use kefu_proto::{Codec, SenderClock, Side, TapFrame};
pub use naming::RecordingKind;
pub use service::{
    FailureKind, Recorder, RecorderConfig, RecorderError, RecorderMetrics, RecordingEvent,
    RecordingJob, TapSink,
};
pub use store::{ObjectStore, StorageConfig};
pub use transcode::Settings as VideoSettings;
