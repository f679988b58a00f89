//! Each agent's beauty settings: the last confirmed ones are kept (preset "natural"
//! until then), the settings dialog previews them on the server-processed stream, and
//! a confirmed change reaches the agent's live calls from the next frame on.

pub mod http;
pub mod preview;
pub mod store;
