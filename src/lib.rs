//! kefu, the node: the composition root of the crates (signaling, media-server,
//! recorder, beauty) and how a process runs and stops. The `kefu` binary is a thin CLI
//! over it; the integration tests start it in-process.

pub mod startup;

pub use startup::App;
