//! The customer's side of customer-initiated calls (the enterprise's service page):
//! ask for a call, watch the queue, cancel. The customer holds a room token bound to
//! the one call; there is no customer account.

use axum::Json;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::http::request::Parts;
use serde::{Deserialize, Serialize};

use crate::accounts::CallId;
use crate::calls::machine::{CallEvent, CallKind, Party};
use crate::calls::service;
use crate::clock::now_ms;
use crate::http::error::ApiError;
use crate::http::guard::ClientIp;
use crate::http::json::ApiJson;
use crate::rooms::token::{Side, unix_now};
use crate::state::AppState;

#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ServiceRequest {
    pub display_name: String,
    pub consent: bool,
    pub kind: CallKind,
    /// Reception group name; default: the enterprise's first group.
    #[serde(default)]
    pub group: Option<String>,
}

/// A waiting request as its customer sees it.
#[derive(Debug, Serialize, Deserialize, utoipa::ToSchema)]
pub struct RequestView {
    pub call_id: String,
    pub kind: CallKind,
    pub state: String,
    /// Place in the queue (1 = next); 0 once an agent has it.
    pub position: u32,
    /// Bearer for this request's endpoints and the room token for the call.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub room_token: Option<String>,
}

/// What the service page shows before the customer asks.
#[derive(Debug, Serialize, Deserialize, utoipa::ToSchema)]
pub struct ServicePage {
    pub enterprise_name: String,
    pub groups: Vec<String>,
}

#[utoipa::path(get, path = "/api/v1/service/{main_account}", tag = "customers", params(("main_account" = String, Path)), responses((status = 200, body = ServicePage), (status = 404, description = "not found, or belongs to another enterprise", body = crate::http::error::ApiErrorDoc)))]
pub async fn page(
    State(state): State<AppState>,
    Path(main_account): Path<String>,
) -> Result<Json<ServicePage>, ApiError> {
    let enterprise = state
        .store
        .enterprise_by_main_account(&main_account)
        .await?
        .ok_or(ApiError::NotFound)?;
    let groups = state.store.groups_of(&enterprise.id).await?;
    Ok(Json(ServicePage {
        enterprise_name: enterprise.name,
        groups: groups.into_iter().map(|g| g.name).collect(),
    }))
}

#[utoipa::path(post, path = "/api/v1/service/{main_account}/requests", tag = "customers", params(("main_account" = String, Path)), request_body = ServiceRequest, responses((status = 201, body = RequestView), (status = 404, description = "not found, or belongs to another enterprise", body = crate::http::error::ApiErrorDoc), (status = 422, description = "invalid input", body = crate::http::error::ApiErrorDoc), (status = 429, description = "too many attempts", body = crate::http::error::ApiErrorDoc), (status = 503, description = "all agents busy", body = crate::http::error::ApiErrorDoc)))]
pub async fn create(
    State(state): State<AppState>,
    peer: ClientIp,
    Path(main_account): Path<String>,
    ApiJson(req): ApiJson<ServiceRequest>,
) -> Result<(StatusCode, Json<RequestView>), ApiError> {
    crate::calls::invites::limit(&state, peer, "service").await?;
    let name = crate::calls::invites::consented_name(req.consent, &req.display_name)?;
    let enterprise = state
        .store
        .enterprise_by_main_account(&main_account)
        .await?
        .ok_or(ApiError::NotFound)?;
    let groups = state.store.groups_of(&enterprise.id).await?;
    let group = match &req.group {
        Some(name) => groups.into_iter().find(|g| &g.name == name),
        None => groups.into_iter().next(),
    }
    .ok_or_else(|| ApiError::field("group", "no such reception group"))?;

    let now = now_ms();
    let (call, _customer) =
        service::request_call(&state.store, &group, name, req.kind, now).await?;
    // The request may be assigned at once if an agent is free.
    state.calls.publish(&call, "customer_request", now);
    state.calls.dispatch(&group.id, now).await;
    let token = state.tokens.issue(
        call.id.as_str(),
        &format!("customer-{}", call.id),
        Side::Customer,
        unix_now(),
    );
    let view = view_of(&state, &call.id, Some(token)).await?;
    Ok((StatusCode::CREATED, Json(view)))
}

/// The customer behind a request: the call their room token is bound to.
#[derive(Debug)]
pub struct RequestOwner(String);

impl RequestOwner {
    /// The call at `path_id`, if it is this customer's; otherwise not found.
    fn call(&self, path_id: String) -> Result<CallId, ApiError> {
        if self.0 == path_id {
            Ok(CallId(path_id))
        } else {
            Err(ApiError::NotFound)
        }
    }
}

impl axum::extract::FromRequestParts<AppState> for RequestOwner {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, ApiError> {
        let token = parts
            .headers
            .get(axum::http::header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.strip_prefix("Bearer "))
            .ok_or(ApiError::Unauthorized)?;
        let claims = state
            .tokens
            .verify(token, unix_now())
            .map_err(|_| ApiError::Unauthorized)?;
        match claims.role {
            Side::Customer => Ok(RequestOwner(claims.room)),
            Side::Agent => Err(ApiError::Forbidden("customers only")),
        }
    }
}

#[utoipa::path(get, path = "/api/v1/service/requests/{id}", tag = "customers", security(("room_token" = [])), params(("id" = String, Path)), responses((status = 200, body = RequestView), (status = 401, description = "no valid session", body = crate::http::error::ApiErrorDoc), (status = 404, description = "not found, or belongs to another enterprise", body = crate::http::error::ApiErrorDoc)))]
pub async fn status(
    State(state): State<AppState>,
    owner: RequestOwner,
    Path(id): Path<String>,
) -> Result<Json<RequestView>, ApiError> {
    // A valid token for another call sees nothing of this one.
    let id = owner.call(id)?;
    Ok(Json(view_of(&state, &id, None).await?))
}

#[utoipa::path(post, path = "/api/v1/service/requests/{id}/cancel", tag = "customers", security(("room_token" = [])), params(("id" = String, Path)), responses((status = 200, body = RequestView), (status = 401, description = "no valid session", body = crate::http::error::ApiErrorDoc), (status = 404, description = "not found, or belongs to another enterprise", body = crate::http::error::ApiErrorDoc), (status = 409, description = "conflicts with the current state", body = crate::http::error::ApiErrorDoc)))]
pub async fn cancel(
    State(state): State<AppState>,
    owner: RequestOwner,
    Path(id): Path<String>,
) -> Result<Json<RequestView>, ApiError> {
    let id = owner.call(id)?;
    let event = CallEvent::Cancel {
        by: Party::Customer,
    };
    state.calls.apply(&id, event, now_ms()).await?;
    Ok(Json(view_of(&state, &id, None).await?))
}

pub(crate) async fn view_of(
    state: &AppState,
    id: &CallId,
    token: Option<String>,
) -> Result<RequestView, ApiError> {
    let call = state.store.call(id).await?.ok_or(ApiError::NotFound)?;
    let position = if call.state.name() == "requested" {
        state.store.queue_position(&call).await?
    } else {
        0
    };
    Ok(RequestView {
        call_id: call.id.to_string(),
        kind: call.kind,
        state: call.state.name().to_owned(),
        position,
        room_token: token,
    })
}
