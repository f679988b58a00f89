//! What signaling does when the media plane's moderation acts: an incident with its
//! evidence (encrypted, under the admin-only `moderation/` prefix), a notice to both
//! parties, and for `EndCall` the end of the call (reason `moderation`).

use kefu_media_server::moderation::{ModerationAction, ModerationEvent};
use kefu_proto::signaling::{ModerationState, ServerMessage};
use kefu_proto::{EndReason, Side};
use std::time::Duration;

use tokio::sync::mpsc;
use tracing::{info, warn};

use super::store::Incident;
use crate::accounts::{CallId, EnterpriseId};
use crate::calls::machine::CallEvent;
use crate::calls::service::CallError;
use crate::state::AppState;

/// Object key of an incident's evidence picture (`kind`: `evidence` or `mosaic`).
pub fn evidence_key(enterprise: &EnterpriseId, incident: &str, kind: &str) -> String {
    format!(
        "moderation/{}/{incident}/{kind}.jpg.enc",
        enterprise.as_str()
    )
}

/// How long storing one evidence picture may take before the incident is kept
/// without it.
const EVIDENCE_TIMEOUT: Duration = Duration::from_secs(10);
/// Tries to end a call moderation decided to end (a database hiccup must not let it
/// go on), a second apart, then two.
const END_ATTEMPTS: u32 = 3;

/// Handles moderation events until the media plane goes away, each in a task of its
/// own: a slow object store must not hold back another call's action.
pub async fn run(state: AppState, mut events: mpsc::UnboundedReceiver<ModerationEvent>) {
    while let Some(event) = events.recv().await {
        if event.action == ModerationAction::DecoderLost {
            state.media.screen_without_recorder(event.room.clone());
            continue;
        }
        // The notice here, in order: a withholding and its lift must not cross.
        let notice = ServerMessage::Moderation {
            party: event.side,
            state: match event.action {
                ModerationAction::Restored => ModerationState::Restored,
                _ => ModerationState::Withheld,
            },
        };
        if let Err(e) = state
            .rooms
            .notify_lasting(event.room.as_str(), event.side, notice)
            .await
        {
            warn!(room = %event.room, "moderation notice not sent: {e}");
        }
        if event.action != ModerationAction::Restored {
            tokio::spawn(handle(state.clone(), event));
        }
    }
}

/// Ends the call (retried: the picture stays withheld meanwhile, but a call moderation
/// decided to end must end), then keeps the incident.
async fn handle(state: AppState, event: ModerationEvent) {
    let room = event.room.as_str().to_owned();
    let call_id = CallId(room.clone());
    let now = crate::clock::now_ms();
    // The end first: it needs nothing else, and nothing else may keep it from happening.
    if event.action == ModerationAction::EndCall {
        let terminate = CallEvent::Terminate {
            reason: EndReason::Moderation,
        };
        for attempt in 1..=END_ATTEMPTS {
            match state.calls.apply(&call_id, terminate.clone(), now).await {
                // Gone or already over: nothing to end.
                Ok(_) | Err(CallError::NotFound) | Err(CallError::Invalid(_)) => break,
                Err(e) => {
                    warn!(call = %room, attempt, "moderation could not end the call: {e}");
                    tokio::time::sleep(Duration::from_secs(attempt.into())).await;
                }
            }
        }
    }
    let call = match state.store.call(&call_id).await {
        Ok(Some(call)) => call,
        Ok(None) => return, // a standing (demo) room: nobody to hold to account
        Err(e) => {
            return warn!(call = %room, "moderation incident not stored (call unreadable): {e}");
        }
    };
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
            let put = objects.put(&key, sealed, "application/octet-stream");
            match tokio::time::timeout(EVIDENCE_TIMEOUT, put).await {
                Ok(Ok(())) => *slot = Some(key),
                Ok(Err(e)) => warn!(incident = %id, "moderation evidence not stored: {e}"),
                Err(_) => {
                    warn!(incident = %id, "moderation evidence not stored: the object store took too long")
                }
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
        // Scores are probabilities; anything else would not survive JSON.
        scores: event
            .scores
            .iter()
            .copied()
            .filter(|s| s.is_finite())
            .collect(),
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
        return;
    }
    info!(incident = %id, call = %room, action = %incident.action, party = %incident.party, "moderation incident");
}
