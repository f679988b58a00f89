//! The beauty dialog's preview. While the dialog is open the agent's camera goes to
//! the SFU in a room of its own and comes back through the beauty pipeline with the
//! settings being tried, so the dialog shows what a customer would get, not the raw
//! camera. Settings tried here are not saved: confirm saves (PUT /me/beauty).
//!
//! One preview per agent: opening another closes the first.

use std::collections::HashMap;
use std::sync::Mutex;

use futures_util::future::BoxFuture;
use kefu_beauty::BeautyParams;

use crate::cluster::ClusterError;

/// Preview rooms are named `preview-<uuid>`; call rooms are call ids (UUIDs).
pub const ROOM_PREFIX: &str = "preview-";

/// Open previews, one per agent. The agent's page and its preview room may sit on
/// different nodes, so this is a seam: here, [`BeautyPreviews`] in process; across
/// nodes, `cluster::redis::RedisPreviews`. Every call fails only when the shared
/// state cannot be reached.
pub trait PreviewStore: Send + Sync + std::fmt::Debug {
    /// Opens a preview for `agent` with `params`; returns its room and the room of the
    /// preview it replaces, if any.
    fn open<'a>(
        &'a self,
        agent: &'a str,
        params: BeautyParams,
    ) -> Answer<'a, (String, Option<String>)>;

    /// The agent's media joined `room`: the parameters to start its pipeline with,
    /// when `room` is that agent's open preview.
    fn went_live<'a>(&'a self, room: &'a str, agent: &'a str) -> Answer<'a, Option<BeautyParams>>;

    /// New settings to try.
    fn set_params<'a>(&'a self, agent: &'a str, params: BeautyParams) -> Answer<'a, Tried>;

    /// Closes `agent`'s preview; returns its room.
    fn close<'a>(&'a self, agent: &'a str) -> Answer<'a, Option<String>>;

    /// Closes the preview held in `room` (its page left); returns whether there was one.
    fn close_room<'a>(&'a self, room: &'a str) -> Answer<'a, bool>;
}

/// What a [`PreviewStore`] call yields.
pub type Answer<'a, T> = BoxFuture<'a, Result<T, ClusterError>>;

/// The previews of this process.
#[derive(Debug, Default)]
pub struct BeautyPreviews {
    /// By agent id.
    open: Mutex<HashMap<String, Preview>>,
}

#[derive(Debug, Clone)]
struct Preview {
    room: String,
    params: BeautyParams,
    /// The agent's media reached the SFU and the pipeline runs.
    live: bool,
}

/// What [`BeautyPreviews::set_params`] found.
#[derive(Debug, Clone, PartialEq)]
pub enum Tried {
    /// No preview is open for this agent.
    NoPreview,
    /// Kept for when the agent's media arrives.
    Pending,
    /// Apply to the running pipeline of this room.
    Live { room: String },
}

impl BeautyPreviews {
    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, Preview>> {
        // Plain data behind the lock: still usable after a panic elsewhere.
        self.open.lock().unwrap_or_else(|p| p.into_inner())
    }
}

impl BeautyPreviews {
    pub fn open(&self, agent: &str, params: BeautyParams) -> (String, Option<String>) {
        let room = format!("{ROOM_PREFIX}{}", uuid::Uuid::new_v4());
        let preview = Preview {
            room: room.clone(),
            params,
            live: false,
        };
        let old = self.lock().insert(agent.to_owned(), preview);
        (room, old.map(|p| p.room))
    }

    pub fn went_live(&self, room: &str, agent: &str) -> Option<BeautyParams> {
        let mut open = self.lock();
        let p = open.get_mut(agent).filter(|p| p.room == room)?;
        p.live = true;
        Some(p.params)
    }

    pub fn set_params(&self, agent: &str, params: BeautyParams) -> Tried {
        let mut open = self.lock();
        let Some(p) = open.get_mut(agent) else {
            return Tried::NoPreview;
        };
        p.params = params;
        if p.live {
            Tried::Live {
                room: p.room.clone(),
            }
        } else {
            Tried::Pending
        }
    }

    pub fn close(&self, agent: &str) -> Option<String> {
        self.lock().remove(agent).map(|p| p.room)
    }

    pub fn close_room(&self, room: &str) -> bool {
        let mut open = self.lock();
        let before = open.len();
        open.retain(|_, p| p.room != room);
        open.len() != before
    }
}

impl PreviewStore for BeautyPreviews {
    fn open<'a>(
        &'a self,
        agent: &'a str,
        params: BeautyParams,
    ) -> Answer<'a, (String, Option<String>)> {
        let opened = BeautyPreviews::open(self, agent, params);
        Box::pin(async move { Ok(opened) })
    }

    fn went_live<'a>(&'a self, room: &'a str, agent: &'a str) -> Answer<'a, Option<BeautyParams>> {
        let params = BeautyPreviews::went_live(self, room, agent);
        Box::pin(async move { Ok(params) })
    }

    fn set_params<'a>(&'a self, agent: &'a str, params: BeautyParams) -> Answer<'a, Tried> {
        let tried = BeautyPreviews::set_params(self, agent, params);
        Box::pin(async move { Ok(tried) })
    }

    fn close<'a>(&'a self, agent: &'a str) -> Answer<'a, Option<String>> {
        let room = BeautyPreviews::close(self, agent);
        Box::pin(async move { Ok(room) })
    }

    fn close_room<'a>(&'a self, room: &'a str) -> Answer<'a, bool> {
        let closed = BeautyPreviews::close_room(self, room);
        Box::pin(async move { Ok(closed) })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use kefu_beauty::Preset;

    #[test]
    fn one_preview_per_agent_and_settings_wait_for_the_media() {
        let previews = BeautyPreviews::default();
        let natural = Preset::Natural.params();
        let smooth = Preset::Smooth.params();
        assert_eq!(previews.set_params("a1", smooth), Tried::NoPreview);

        let (first, replaced) = previews.open("a1", natural);
        assert!(first.starts_with(ROOM_PREFIX));
        assert_eq!(replaced, None);
        let (second, replaced) = previews.open("a1", natural);
        assert_eq!(replaced.as_deref(), Some(first.as_str()));
        assert_eq!(
            previews.went_live(&first, "a1"),
            None,
            "the old room is closed"
        );
        assert_eq!(
            previews.went_live(&second, "a2"),
            None,
            "not another agent's"
        );

        assert_eq!(previews.set_params("a1", smooth), Tried::Pending);
        assert_eq!(previews.went_live(&second, "a1"), Some(smooth));
        assert_eq!(
            previews.set_params("a1", natural),
            Tried::Live {
                room: second.clone()
            }
        );
        assert!(previews.close_room(&second));
        assert!(!previews.close_room(&second));
        assert_eq!(previews.close("a1"), None);
    }
}
