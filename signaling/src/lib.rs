//! kefu's signaling: configuration, room tokens, the WebSocket protocol between
//! browsers and the SFU, the pages, health and metrics.

pub mod accounts;
pub mod api;
pub mod beauty_preview;
pub mod bootstrap;
pub mod calls;
pub mod clock;
pub mod config;
pub mod media_router;
pub mod metrics;
pub mod protocol;
pub mod ratelimit;
pub mod recordings;
pub mod rooms;
mod routes;
pub mod startup;
pub mod state;
pub mod store;
pub mod telemetry;
pub mod token;
pub mod turn;

pub use config::KefuConfig;
pub use kefu_media_server::MediaConfig;
pub use startup::App;
