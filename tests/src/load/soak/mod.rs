//! The load-and-soak benchmark's parts (tests/src/bin/kefu-soak-bench.rs). One `kefu serve` process (role all: signaling, SFU, beauty,
//! recorder and moderation, on the embedded SQLite and object store) so that all of
//! kefu's CPU and memory is one pid; calls made through the product and joined by the
//! load generator's webrtc-rs peers sending real VP8 (load/vp8_loop.rs); windows
//! measured from the frames' trailers (load/media.rs); kefu's memory and per-thread
//! CPU read from /proc; after the hold, every call hung up and its recording fetched
//! and probed.

pub mod calls;
pub mod find_max;
pub mod hold;
pub mod join;
pub mod metrics;
pub mod ramp;
pub mod recordings;
pub mod report;
pub mod server;
pub mod threads;
pub mod traffic;
