//! Calls: an agent calls out (behind the verification gate), looks at and cancels its
//! calls, and shows the customer an invite link or QR code.

use axum::Json;
use axum::extract::{Path, State};
use axum::http::{StatusCode, header};
use axum::response::IntoResponse;
use serde::{Deserialize, Serialize};

use crate::accounts::{CallId, UserRole};
use crate::calls::Call;
use crate::calls::machine::{CallEvent, CallKind, CallState, Direction, Party};
use crate::clock::now_ms;
use crate::http::auth::Authenticated;
use crate::http::error::ApiError;
use crate::http::json::ApiJson;
use crate::state::AppState;

/// A call as the API shows it.
#[derive(Debug, Clone, Serialize, Deserialize, utoipa::ToSchema)]
pub struct CallView {
    pub id: String,
    pub direction: Direction,
    pub kind: CallKind,
    /// The state's name (`inviting`, `ringing`, …).
    pub state: String,
    /// The whole state, with who ended it and why.
    pub state_detail: CallState,
    /// Why the call is over (absent while it is live).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub end_reason: Option<crate::calls::EndReason>,
    /// Who ended it: `agent`, `customer` or `system` (absent while it is live).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ended_by: Option<Party>,
    pub agent_id: Option<String>,
    pub customer_id: Option<String>,
    pub created_at: i64,
    pub ring_deadline: Option<i64>,
    pub connected_at: Option<i64>,
    pub ended_at: Option<i64>,
    /// The link to send the customer; only shown to the calling agent.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub invite_url: Option<String>,
}

impl CallView {
    pub(crate) fn of(call: &Call, invite_base: Option<&str>) -> Self {
        Self {
            id: call.id.to_string(),
            direction: call.direction,
            kind: call.kind,
            state: call.state.name().to_owned(),
            state_detail: call.state.clone(),
            end_reason: call.state.end_reason(),
            ended_by: call.state.ended_by(),
            agent_id: call.agent_id.as_ref().map(ToString::to_string),
            customer_id: call.customer_id.as_ref().map(ToString::to_string),
            created_at: call.created_at,
            ring_deadline: call.ring_deadline,
            connected_at: call.connected_at,
            ended_at: call.ended_at,
            invite_url: invite_base
                .zip(call.invite_code.as_deref())
                .map(|(base, code)| format!("{base}/invite/{code}")),
        }
    }
}

#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct StartCallRequest {
    pub kind: CallKind,
}

/// An agent starts a video or voice call to a customer.
#[utoipa::path(post, path = "/api/v1/calls", tag = "calls", security(("bearer" = [])), request_body = StartCallRequest, responses((status = 201, body = CallView), (status = 401, description = "no valid session", body = crate::http::error::ApiErrorDoc), (status = 403, description = "forbidden by role or rule", body = crate::http::error::ApiErrorDoc), (status = 409, description = "conflicts with the current state", body = crate::http::error::ApiErrorDoc), (status = 422, description = "invalid input", body = crate::http::error::ApiErrorDoc)))]
pub async fn start(
    State(state): State<AppState>,
    auth: Authenticated,
    ApiJson(req): ApiJson<StartCallRequest>,
) -> Result<(StatusCode, Json<CallView>), ApiError> {
    auth.require(UserRole::Agent)?;
    let call = state
        .calls
        .start_outgoing(&auth.user, auth.session_started_at, req.kind, now_ms())
        .await?;
    Ok((
        StatusCode::CREATED,
        Json(CallView::of(&call, Some(&state.public_url))),
    ))
}

/// A call the caller may see: its agent, or an admin of its enterprise. Anything else
/// is reported as not found.
async fn visible_call(
    state: &AppState,
    auth: &Authenticated,
    id: String,
) -> Result<Call, ApiError> {
    let call = state
        .store
        .call(&CallId(id))
        .await?
        .ok_or(ApiError::NotFound)?;
    let same_enterprise = call.enterprise_id == auth.user.enterprise_id;
    let allowed = match auth.user.role {
        UserRole::Admin => same_enterprise,
        UserRole::Agent => same_enterprise && call.agent_id.as_ref() == Some(&auth.user.id),
    };
    if allowed {
        Ok(call)
    } else {
        Err(ApiError::NotFound)
    }
}

#[utoipa::path(get, path = "/api/v1/calls/{id}", tag = "calls", security(("bearer" = [])), params(("id" = String, Path)), responses((status = 200, body = CallView), (status = 401, description = "no valid session", body = crate::http::error::ApiErrorDoc), (status = 404, description = "not found, or belongs to another enterprise", body = crate::http::error::ApiErrorDoc)))]
pub async fn get(
    State(state): State<AppState>,
    auth: Authenticated,
    Path(id): Path<String>,
) -> Result<Json<CallView>, ApiError> {
    let call = visible_call(&state, &auth, id).await?;
    let own = call.agent_id.as_ref() == Some(&auth.user.id);
    Ok(Json(CallView::of(
        &call,
        own.then_some(state.public_url.as_str()),
    )))
}

/// The calling agent withdraws a call that has not connected; on a customer's
/// request ringing at it, the agent declines, which passes the request to the next
/// agent (never back to this one) while its wait limit lasts.
#[utoipa::path(post, path = "/api/v1/calls/{id}/cancel", tag = "calls", security(("bearer" = [])), params(("id" = String, Path)), responses((status = 200, body = CallView), (status = 401, description = "no valid session", body = crate::http::error::ApiErrorDoc), (status = 403, description = "forbidden by role or rule", body = crate::http::error::ApiErrorDoc), (status = 404, description = "not found, or belongs to another enterprise", body = crate::http::error::ApiErrorDoc), (status = 409, description = "conflicts with the current state", body = crate::http::error::ApiErrorDoc)))]
pub async fn cancel(
    State(state): State<AppState>,
    auth: Authenticated,
    Path(id): Path<String>,
) -> Result<Json<CallView>, ApiError> {
    auth.require(UserRole::Agent)?;
    let call = visible_call(&state, &auth, id).await?;
    let call = match call.direction {
        Direction::AgentInitiated => {
            let event = CallEvent::Cancel { by: Party::Agent };
            let agent = &auth.user.id;
            state
                .calls
                .apply_as_agent(&call.id, agent, event, now_ms())
                .await?
        }
        // Declining a customer's request passes it to the next agent.
        Direction::CustomerInitiated => {
            state
                .calls
                .decline(&call.id, &auth.user.id, now_ms())
                .await?
        }
    };
    Ok(Json(CallView::of(&call, Some(&state.public_url))))
}

/// What waits for the agent: requests in its groups' queues, calls ringing at it.
#[derive(Debug, Serialize, Deserialize, utoipa::ToSchema)]
pub struct QueueView {
    pub waiting: u32,
    pub ringing: Vec<CallView>,
}

#[utoipa::path(get, path = "/api/v1/me/queue", tag = "calls", security(("bearer" = [])), responses((status = 200, body = QueueView), (status = 401, description = "no valid session", body = crate::http::error::ApiErrorDoc), (status = 403, description = "forbidden by role or rule", body = crate::http::error::ApiErrorDoc)))]
pub async fn my_queue(
    State(state): State<AppState>,
    auth: Authenticated,
) -> Result<Json<QueueView>, ApiError> {
    auth.require(UserRole::Agent)?;
    Ok(Json(queue_view(&state, &auth.user.id).await?))
}

/// The agent's queue: requests waiting in its groups, calls ringing at it.
pub(crate) async fn queue_view(
    state: &AppState,
    agent: &crate::accounts::UserId,
) -> Result<QueueView, ApiError> {
    let mut waiting = 0;
    for group in state.store.groups_of_user(agent).await? {
        waiting += state.store.queue_length(&group).await?;
    }
    let ringing = state.store.ringing_for(agent).await?;
    Ok(QueueView {
        waiting,
        ringing: ringing.iter().map(|c| CallView::of(c, None)).collect(),
    })
}

/// The agent answers a customer's call ringing at it.
#[utoipa::path(post, path = "/api/v1/calls/{id}/accept", tag = "calls", security(("bearer" = [])), params(("id" = String, Path)), responses((status = 200, body = CallView), (status = 401, description = "no valid session", body = crate::http::error::ApiErrorDoc), (status = 403, description = "forbidden by role or rule", body = crate::http::error::ApiErrorDoc), (status = 404, description = "not found, or belongs to another enterprise", body = crate::http::error::ApiErrorDoc), (status = 409, description = "conflicts with the current state", body = crate::http::error::ApiErrorDoc)))]
pub async fn accept(
    State(state): State<AppState>,
    auth: Authenticated,
    Path(id): Path<String>,
) -> Result<Json<CallView>, ApiError> {
    auth.require(UserRole::Agent)?;
    let call = visible_call(&state, &auth, id).await?;
    let event = CallEvent::Accept { by: Party::Agent };
    let call = state
        .calls
        .apply_as_agent(&call.id, &auth.user.id, event, now_ms())
        .await?;
    Ok(Json(CallView::of(&call, None)))
}

/// The agent's room token for its live call.
#[utoipa::path(get, path = "/api/v1/calls/{id}/room-token", tag = "calls", security(("bearer" = [])), params(("id" = String, Path)), responses((status = 200, description = "the room and a room token for the signaling WebSocket"), (status = 401, description = "no valid session", body = crate::http::error::ApiErrorDoc), (status = 403, description = "forbidden by role or rule", body = crate::http::error::ApiErrorDoc), (status = 404, description = "not found, or belongs to another enterprise", body = crate::http::error::ApiErrorDoc), (status = 409, description = "conflicts with the current state", body = crate::http::error::ApiErrorDoc)))]
pub async fn room_token(
    State(state): State<AppState>,
    auth: Authenticated,
    Path(id): Path<String>,
) -> Result<Json<serde_json::Value>, ApiError> {
    auth.require(UserRole::Agent)?;
    let call = visible_call(&state, &auth, id).await?;
    if call.state.is_final() {
        return Err(ApiError::Rule {
            status: StatusCode::CONFLICT,
            code: "call_over",
            message: format!("the call is {}", call.state.name()),
            detail: None,
        });
    }
    let token = state.tokens.issue(
        call.id.as_str(),
        auth.user.id.as_str(),
        crate::rooms::token::Side::Agent,
        crate::rooms::token::unix_now(),
    );
    Ok(Json(
        serde_json::json!({"room": call.id, "room_token": token}),
    ))
}

/// The invite link as a QR code (SVG), for the customer to scan.
#[utoipa::path(get, path = "/api/v1/calls/{id}/invite.svg", tag = "calls", security(("bearer" = [])), params(("id" = String, Path)), responses((status = 200, content_type = "image/svg+xml", description = "QR code of the invite link"), (status = 401, description = "no valid session", body = crate::http::error::ApiErrorDoc), (status = 403, description = "forbidden by role or rule", body = crate::http::error::ApiErrorDoc), (status = 404, description = "not found, or belongs to another enterprise", body = crate::http::error::ApiErrorDoc)))]
pub async fn invite_qr(
    State(state): State<AppState>,
    auth: Authenticated,
    Path(id): Path<String>,
) -> Result<impl IntoResponse, ApiError> {
    auth.require(UserRole::Agent)?;
    let call = visible_call(&state, &auth, id).await?;
    let url = CallView::of(&call, Some(&state.public_url))
        .invite_url
        .ok_or(ApiError::NotFound)?;
    let code = qrcode::QrCode::new(url.as_bytes()).map_err(|e| ApiError::Internal(e.into()))?;
    let svg = code
        .render::<qrcode::render::svg::Color<'_>>()
        .min_dimensions(240, 240)
        .build();
    Ok(([(header::CONTENT_TYPE, "image/svg+xml")], svg))
}
