//! What a call's media gets when the call connects or ends: the recorder's tap and
//! the agent's beauty filter. Also applies an agent's new beauty settings to the calls
//! it is in, from the next frame on.

use kefu_beauty::BeautyParams;
use kefu_media_server::{ParticipantId, RoomId, TapParty};
use tracing::warn;

use crate::accounts::UserId;
use crate::calls::Call;
use crate::calls::machine::{CallKind, CallState};
use crate::clock::now_ms;
use crate::routes::ws::media_participant_id;
use crate::state::AppState;
use crate::token::Role;

/// Connected: record (both parties tapped) and filter the agent's video. Ended: close
/// the recording and stop the filter.
pub async fn follow(state: &AppState, room: &str, call: &Call) {
    let now = now_ms();
    if call.state == CallState::Connected {
        start_recording(state, room, call, now).await;
        if call.kind == CallKind::Video
            && let Some(agent) = &call.agent_id
        {
            let params = agent_params(state, agent).await;
            if let Some(agent_media) = agent_media_id(state, room) {
                state
                    .media
                    .set_beauty(RoomId::new(room), agent_media, filtering(params));
            }
        }
    } else if call.state.is_final() {
        state.media.untap(RoomId::new(room));
        // Whoever is left in the room: the pipeline stops with the call.
        state.media.stop_beauty(RoomId::new(room));
        if let Err(e) = state
            .recordings
            .finish_for(&state.store, &call.id, now)
            .await
        {
            warn!(call = %call.id, "recording not closed: {e}");
        }
    }
}

/// The agent confirmed new settings: the calls it is in use them from the next frame.
pub async fn apply_beauty(state: &AppState, agent: &UserId, params: BeautyParams) {
    let calls = match state.store.connected_calls_of(agent).await {
        Ok(c) => c,
        Err(e) => {
            warn!("cannot find the agent's live calls: {e}");
            return;
        }
    };
    for call in calls {
        let room = call.0.as_str();
        if let Some(agent_media) = agent_media_id(state, room) {
            state
                .media
                .set_beauty(RoomId::new(room), agent_media, filtering(params));
        }
    }
}

/// All-zero settings (preset "none") mean pure forwarding: no decode, no encode.
fn filtering(params: BeautyParams) -> Option<BeautyParams> {
    params
        .fields()
        .iter()
        .any(|(_, v)| *v > 0.0)
        .then_some(params)
}

async fn agent_params(state: &AppState, agent: &UserId) -> BeautyParams {
    match state.store.beauty_settings(agent).await {
        Ok(Some((_, params))) => params,
        Ok(None) => kefu_beauty::Preset::default().params(),
        Err(e) => {
            warn!("cannot read beauty settings, using the default: {e}");
            kefu_beauty::Preset::default().params()
        }
    }
}

fn agent_media_id(state: &AppState, room: &str) -> Option<ParticipantId> {
    state
        .rooms
        .members(room)
        .into_iter()
        .find(|(_, role)| *role == Role::Agent)
        .map(|(participant, role)| media_participant_id(room, &participant, role))
}

async fn start_recording(state: &AppState, room: &str, call: &Call, now: i64) {
    match state.recordings.start_for(&state.store, call, now).await {
        Ok(Some(sink)) => {
            let parties = state
                .rooms
                .members(room)
                .into_iter()
                .map(|(participant, role)| TapParty {
                    participant: media_participant_id(room, &participant, role),
                    party: match role {
                        Role::Agent => kefu_recorder::Party::Agent,
                        Role::Customer => kefu_recorder::Party::Customer,
                    },
                })
                .collect();
            state.media.tap(RoomId::new(room), parties, sink);
        }
        Ok(None) => {}
        Err(e) => warn!(call = %call.id, "recording not started: {e}"),
    }
}
