//! `GET /api/v1/audit`: an enterprise's audit log, for its admins.

use axum::Json;
use axum::extract::State;
use serde::{Deserialize, Serialize};

use crate::accounts::UserRole;
use crate::http::auth::Authenticated;
use crate::http::error::ApiError;
use crate::state::AppState;

/// Entries one request returns at most.
const MAX_ROWS: u32 = 1000;

/// One entry of the audit log.
#[derive(Debug, Clone, Serialize, Deserialize, utoipa::ToSchema)]
pub struct AuditView {
    pub at: i64,
    pub actor_id: String,
    pub actor_role: String,
    pub action: String,
    pub target_id: String,
}

#[utoipa::path(get, path = "/api/v1/audit", tag = "audit",
    responses((status = 200, body = [AuditView]), (status = 401), (status = 403)))]
pub async fn audit_log(
    State(state): State<AppState>,
    auth: Authenticated,
) -> Result<Json<Vec<AuditView>>, ApiError> {
    auth.require(UserRole::Admin)?;
    let rows = state
        .store
        .audit_entries(&auth.user.enterprise_id, MAX_ROWS)
        .await?;
    Ok(Json(
        rows.into_iter()
            .map(|e| AuditView {
                at: e.at,
                actor_id: e.actor_id.0,
                actor_role: e.actor_role,
                action: e.action,
                target_id: e.target_id,
            })
            .collect(),
    ))
}
