//! The signed-in user, agents' presence, and the admin's agent list and video grants.

use axum::Json;
use axum::extract::{Path, State};
use serde::Deserialize;

use crate::accounts::view::UserView;
use crate::accounts::{AgentStatus, UserId, UserRole};
use crate::http::auth::Authenticated;
use crate::http::error::ApiError;
use crate::http::json::ApiJson;
use crate::state::AppState;

#[utoipa::path(get, path = "/api/v1/me", tag = "accounts", security(("bearer" = [])), responses((status = 200, body = UserView), (status = 401, description = "no valid session", body = crate::http::error::ApiErrorDoc)))]
pub async fn me(State(state): State<AppState>, auth: Authenticated) -> Json<UserView> {
    Json(UserView::of(&auth.user, &state.data_key))
}

#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PresenceRequest {
    pub status: AgentStatus,
    pub accepting: bool,
}

/// An agent goes online/away/offline and turns accepting on or off.
#[utoipa::path(put, path = "/api/v1/me/presence", tag = "accounts", security(("bearer" = [])), request_body = PresenceRequest, responses((status = 200, body = UserView), (status = 401, description = "no valid session", body = crate::http::error::ApiErrorDoc), (status = 403, description = "forbidden by role or rule", body = crate::http::error::ApiErrorDoc), (status = 422, description = "invalid input", body = crate::http::error::ApiErrorDoc)))]
pub async fn set_presence(
    State(state): State<AppState>,
    auth: Authenticated,
    ApiJson(req): ApiJson<PresenceRequest>,
) -> Result<Json<UserView>, ApiError> {
    auth.require(UserRole::Agent)?;
    if req.accepting && req.status != AgentStatus::Online {
        return Err(ApiError::field(
            "accepting",
            "only an online agent can accept calls",
        ));
    }
    state
        .store
        .set_presence(
            &auth.user.id,
            req.status,
            req.accepting,
            crate::clock::now_ms(),
        )
        .await?;
    let user = state
        .store
        .user(&auth.user.id)
        .await?
        .ok_or(ApiError::NotFound)?;
    // Turning accepting on takes the oldest waiting requests at once.
    if user.accepting {
        for group in state.store.groups_of_user(&user.id).await? {
            state.calls.dispatch(&group, crate::clock::now_ms()).await;
        }
    }
    Ok(Json(UserView::of(&user, &state.data_key)))
}

/// The admin's enterprise's agents.
#[utoipa::path(get, path = "/api/v1/agents", tag = "accounts", security(("bearer" = [])), responses((status = 200, body = Vec<UserView>), (status = 401, description = "no valid session", body = crate::http::error::ApiErrorDoc), (status = 403, description = "forbidden by role or rule", body = crate::http::error::ApiErrorDoc)))]
pub async fn list_agents(
    State(state): State<AppState>,
    auth: Authenticated,
) -> Result<Json<Vec<UserView>>, ApiError> {
    auth.require(UserRole::Admin)?;
    let users = state.store.users_of(&auth.user.enterprise_id).await?;
    Ok(Json(
        users
            .iter()
            .filter(|u| u.role == UserRole::Agent)
            .map(|u| UserView::of(u, &state.data_key))
            .collect(),
    ))
}

#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct VideoServiceRequest {
    pub enabled: bool,
}

/// Grants or revokes the video service of one agent of the admin's enterprise.
#[utoipa::path(put, path = "/api/v1/agents/{id}/video-service", tag = "accounts", security(("bearer" = [])), params(("id" = String, Path, description = "agent id")), request_body = VideoServiceRequest, responses((status = 200, body = UserView), (status = 401, description = "no valid session", body = crate::http::error::ApiErrorDoc), (status = 403, description = "forbidden by role or rule", body = crate::http::error::ApiErrorDoc), (status = 404, description = "not found, or belongs to another enterprise", body = crate::http::error::ApiErrorDoc), (status = 422, description = "invalid input", body = crate::http::error::ApiErrorDoc)))]
pub async fn set_video_service(
    State(state): State<AppState>,
    auth: Authenticated,
    Path(agent_id): Path<String>,
    ApiJson(req): ApiJson<VideoServiceRequest>,
) -> Result<Json<UserView>, ApiError> {
    auth.require(UserRole::Admin)?;
    let agent_id = UserId(agent_id);
    let agent = state
        .store
        .user(&agent_id)
        .await?
        // Another enterprise's agent is reported exactly like an unknown one.
        .filter(|u| u.enterprise_id == auth.user.enterprise_id && u.role == UserRole::Agent)
        .ok_or(ApiError::NotFound)?;
    state
        .store
        .set_video_enabled(&agent.id, req.enabled)
        .await?;
    let agent = state
        .store
        .user(&agent.id)
        .await?
        .ok_or(ApiError::NotFound)?;
    Ok(Json(UserView::of(&agent, &state.data_key)))
}
