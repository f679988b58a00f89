//! The audit log: who did what to which protected object (a recording played or
//! downloaded, a retry), when. Admins read it; nobody edits it.

pub mod http;
pub mod store;

use crate::accounts::{EnterpriseId, UserId, UserRole};
use crate::http::auth::Authenticated;
use crate::store::{Store, StoreError};

/// Who did what to which recording, when.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct AuditEntry {
    pub id: String,
    #[serde(skip)]
    pub enterprise_id: EnterpriseId,
    pub actor_id: UserId,
    pub actor_role: String,
    pub action: String,
    pub target_id: String,
    pub at: i64,
}

/// Notes that the signed-in user did `action` to `target` (e.g. a recording played).
pub async fn record(
    store: &Store,
    auth: &Authenticated,
    action: &str,
    target: &str,
) -> Result<(), StoreError> {
    let role = match auth.user.role {
        UserRole::Admin => "admin",
        UserRole::Agent => "agent",
    };
    store
        .insert_audit(&AuditEntry {
            id: uuid::Uuid::new_v4().to_string(),
            enterprise_id: auth.user.enterprise_id.clone(),
            actor_id: auth.user.id.clone(),
            actor_role: role.into(),
            action: action.into(),
            target_id: target.into(),
            at: crate::clock::now_ms(),
        })
        .await?;
    Ok(())
}

/// Notes that kefu itself (`system`: a scheduled job) or an operator at the command
/// line (`operator`) did `action` to `target` in `enterprise`.
pub async fn record_unattended(
    store: &Store,
    enterprise: &EnterpriseId,
    actor: &str,
    action: &str,
    target: &str,
    at: i64,
) -> Result<(), StoreError> {
    store
        .insert_audit(&AuditEntry {
            id: uuid::Uuid::new_v4().to_string(),
            enterprise_id: enterprise.clone(),
            actor_id: UserId(actor.into()),
            actor_role: actor.into(),
            action: action.into(),
            target_id: target.into(),
            at,
        })
        .await
}
