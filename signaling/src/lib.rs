//! kefu's signaling: accounts, calls and their lifecycle, routing, the verification
//! gate, recordings, beauty settings and the audit log, each in its own folder with
//! its model, rules, queries and HTTP handlers; `http/` holds the router, the
//! extractors, the API error and the WebSocket sessions; `rooms/` who is in which call
//! room and their tokens; `cluster/` the seams a multi-node deployment fills in;
//! `store/` the database pool and migrations. The composition root (building and
//! running a node) is the `kefu` package's `src/startup.rs`.

pub mod accounts;
pub mod audit;
pub mod beauty;
pub mod calls;
pub mod clock;
pub mod cluster;
pub mod config;
pub mod http;
pub mod metrics;
pub mod moderation;
pub mod recordings;
pub mod retention;
pub mod rooms;
pub mod state;
pub mod store;
pub mod telemetry;
pub mod verification;

pub use config::KefuConfig;
pub use kefu_media_server::MediaConfig;
