//! The seams a multi-node deployment fills in: small traits for what must be shared
//! across kefu nodes, each with the in-process implementation a single node uses and
//! a Redis one (`redis/`, chosen by `cluster.backend`). The beauty dialog's previews
//! have their seam beside them: `beauty::preview::PreviewStore`. Keys and channels:
//! docs/cluster.md.

pub mod bus;
pub mod config;
pub mod forward;
pub mod heartbeat;
pub mod lease;
pub mod limiter;
pub mod links;
pub mod media;
pub mod node_loss;
pub mod nodes;
pub mod redis;
pub mod remote;
mod shared;

pub use shared::Shared;

/// Shared state could not be reached: the request is refused, nothing half-done.
#[derive(Debug, Clone, thiserror::Error)]
pub enum ClusterError {
    /// Redis did not answer in time or refused the command; the text is for logs.
    #[error("cluster state unavailable: {0}")]
    Unavailable(String),
    /// A stored value does not decode (another version wrote it, or corruption).
    #[error("cluster state is invalid: {0}")]
    Corrupt(String),
}
