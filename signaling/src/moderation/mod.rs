//! Content moderation, signaling's side: each enterprise's settings (handed to the
//! media plane when a call connects), the incidents the media plane's actions leave
//! (with encrypted evidence), and the admin API to review them. The screening itself
//! — sampling, the classifier, withholding a picture — runs in the media server.

pub mod http;
pub mod reactions;
pub mod store;

pub use store::{Incident, IncidentFilter};
