//! Removing an agent: `DELETE /api/v1/agents/{id}` (their enterprise's admins) and
//! `kefu admin remove-user`. The account stops working at once and the agent's face
//! reference goes with it, templates and kept photos alike (store: `remove_user`).

use axum::extract::{Path, State};
use axum::http::StatusCode;
use kefu_recorder::ObjectStore;
use tracing::warn;

use crate::accounts::{UserId, UserRole};
use crate::http::auth::Authenticated;
use crate::http::error::ApiError;
use crate::state::AppState;
use crate::store::{Store, StoreError};

/// Removes a live user and deletes their reference photos from the object store.
/// Returns whether there was such a user. A photo the store will not delete now is
/// logged (by key, which names no person) and stays an orphan object: the database no
/// longer points at it, and it is encrypted under the data key.
pub async fn remove_user(
    store: &Store,
    objects: &ObjectStore,
    user: &UserId,
    now_ms: i64,
) -> Result<bool, StoreError> {
    let Some(photos) = store.remove_user(user, now_ms).await? else {
        return Ok(false);
    };
    for key in photos {
        if let Err(e) = objects.delete(&key).await {
            warn!(%key, "a removed agent's reference photo could not be deleted: {e}");
        }
    }
    Ok(true)
}

/// Removes an agent of the admin's enterprise: sign-in, routing, groups, beauty
/// settings and the face reference go; calls, recordings and records stay under the
/// enterprise's retention. Audited.
#[utoipa::path(delete, path = "/api/v1/agents/{id}", tag = "accounts", security(("bearer" = [])), params(("id" = String, Path, description = "agent id")), responses((status = 204, description = "removed"), (status = 401, description = "no valid session", body = crate::http::error::ApiErrorDoc), (status = 403, description = "forbidden by role or rule", body = crate::http::error::ApiErrorDoc), (status = 404, description = "not found, or belongs to another enterprise", body = crate::http::error::ApiErrorDoc)))]
pub async fn remove_agent(
    State(state): State<AppState>,
    auth: Authenticated,
    Path(agent_id): Path<String>,
) -> Result<StatusCode, ApiError> {
    auth.require(UserRole::Admin)?;
    let agent = state
        .store
        .user(&UserId(agent_id))
        .await?
        // Another enterprise's agent is reported exactly like an unknown one.
        .filter(|u| u.enterprise_id == auth.user.enterprise_id && u.role == UserRole::Agent)
        .ok_or(ApiError::NotFound)?;
    let removed = remove_user(
        &state.store,
        &state.recordings.storage.store,
        &agent.id,
        crate::clock::now_ms(),
    )
    .await?;
    if !removed {
        return Err(ApiError::NotFound);
    }
    // Nobody waits on them: requests ringing at them move on, their calls end.
    if let Err(e) = state
        .calls
        .release_agent(&agent.id, crate::clock::now_ms())
        .await
    {
        warn!(agent = %agent.id.as_str(), "the removed agent's calls were not all released: {e}");
    }
    crate::audit::record(&state.store, &auth, "agent_removed", agent.id.as_str()).await?;
    Ok(StatusCode::NO_CONTENT)
}
