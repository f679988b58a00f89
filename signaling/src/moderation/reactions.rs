//! What signaling does when the media plane's moderation acts: an incident with its
//! evidence (encrypted, under the admin-only `moderation/` prefix), a notice to both
//! parties, and for `EndCall` the end of the call (reason `moderation`).

use kefu_media_server::moderation::{ModerationAction, ModerationEvent};
use kefu_proto::signaling::{ModerationState, ServerMessage};
use kefu_proto::{EndReason, Side};
use tokio::sync::mpsc;
use tracing::{info, warn};

use super::store::Incident;
use crate::accounts::{CallId, EnterpriseId};
use crate::calls::machine::CallEvent;
use crate::state::AppState;

/// Object key of an incident's evidence picture (`kind`: `evidence` or `mosaic`).
pub fn evidence_key(enterprise: &EnterpriseId, incident: &str, kind: &str) -> String {
    format!(
        "moderation/{}/{incident}/{kind}.jpg.enc",
        enterprise.as_str()
    )
}

/// Handles moderation events until the media plane goes away.
pub async fn run(state: AppState, mut events: mpsc::UnboundedReceiver<ModerationEvent>) {
    while let Some(event) = events.recv().await {
        handle(&state, event).await;
    }
}

async fn handle(state: &AppState, event: ModerationEvent) {
    let room = event.room.as_str().to_owned();
    let notice = ServerMessage::Moderation {
        party: event.side,
        state: match event.action {
            ModerationAction::Restored => ModerationState::Restored,
            _ => ModerationState::Withheld,
        },
    };
    state.rooms.notify(&room, notice);
    if event.action == ModerationAction::Restored {
        return;
    }
    let call_id = CallId(room.clone());
    let call = match state.store.call(&call_id).await {
        Ok(Some(call)) => call,
        Ok(None) => return, // a standing (demo) room: nobody to hold to account
        Err(e) => return warn!(call = %room, "moderation: cannot read the call: {e}"),
    };
    let now = crate::clock::now_ms();
    let id = uuid::Uuid::new_v4().to_string();
    let (mut evidence_key_, mut mosaic_key) = (None, None);
    if let Some(evidence) = &event.evidence {
        let objects = &state.recordings.storage.store;
        for (kind, bytes, slot) in [
            ("evidence", &evidence.jpeg, &mut evidence_key_),
            ("mosaic", &evidence.mosaic_jpeg, &mut mosaic_key),
        ] {
            let key = evidence_key(&call.enterprise_id, &id, kind);
            let sealed = state.data_key.encrypt_bytes(bytes);
            match objects.put(&key, sealed, "application/octet-stream").await {
                Ok(()) => *slot = Some(key),
                Err(e) => warn!(incident = %id, "moderation evidence not stored: {e}"),
            }
        }
    }
    let incident = Incident {
        id: id.clone(),
        enterprise_id: call.enterprise_id.clone(),
        call_id: room.clone(),
        agent_id: call.agent_id.clone(),
        agent_name: None,
        party: match event.side {
            Side::Agent => "agent",
            Side::Customer => "customer",
        }
        .into(),
        action: match event.action {
            ModerationAction::EndCall => "ended",
            _ => "blurred",
        }
        .into(),
        scores: event.scores.clone(),
        evidence_key: evidence_key_,
        mosaic_key,
        created_at: now,
        review: "pending".into(),
        review_note: None,
        reviewed_by: None,
        reviewed_at: None,
    };
    if let Err(e) = state.store.insert_incident(&incident).await {
        warn!(incident = %id, "moderation incident not stored: {e}");
    }
    info!(incident = %id, call = %room, action = %incident.action, party = %incident.party, "moderation incident");
    if event.action == ModerationAction::EndCall {
        let ended = state
            .calls
            .apply(
                &call_id,
                CallEvent::Terminate {
                    reason: EndReason::Moderation,
                },
                now,
            )
            .await;
        if let Err(e) = ended {
            warn!(call = %room, "moderation could not end the call: {e}");
        }
    }
}
