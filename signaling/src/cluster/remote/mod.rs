//! The media plane across nodes: media nodes serve a control API (`server`), and
//! signaling nodes drive it through a [`MediaRouter`](super::media::MediaRouter) of
//! their own (`client`), over the messages in `wire`.

pub mod client;
pub mod server;
pub mod wire;
