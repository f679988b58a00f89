//! The customer's side of an agent's invite: look at it, consent, get into the call.
//! Public (the invite code is the secret), rate-limited per client address.

use axum::Json;
use axum::extract::{Path, State};
use serde::{Deserialize, Serialize};

use crate::calls::machine::CallKind;
use crate::clock::now_ms;
use crate::http::error::ApiError;
use crate::http::guard::ClientIp;
use crate::http::json::ApiJson;
use crate::rooms::token::Side;
use crate::state::AppState;

/// What the invite page shows before consent.
#[derive(Debug, Serialize, Deserialize, utoipa::ToSchema)]
pub struct InviteView {
    pub kind: CallKind,
    pub enterprise_name: String,
    pub main_account: String,
}

#[utoipa::path(get, path = "/api/v1/invites/{code}", tag = "customers", params(("code" = String, Path)), responses((status = 200, body = InviteView), (status = 404, description = "not found, or belongs to another enterprise", body = crate::http::error::ApiErrorDoc), (status = 429, description = "too many attempts", body = crate::http::error::ApiErrorDoc)))]
pub async fn show(
    State(state): State<AppState>,
    peer: ClientIp,
    Path(code): Path<String>,
) -> Result<Json<InviteView>, ApiError> {
    limit(&state, peer, "invite").await?;
    let call = state
        .store
        .call_by_invite(&code)
        .await?
        .filter(|c| !c.state.is_final())
        .ok_or(ApiError::NotFound)?;
    let enterprise = state
        .store
        .enterprise(&call.enterprise_id)
        .await?
        .ok_or(ApiError::NotFound)?;
    Ok(Json(InviteView {
        kind: call.kind,
        enterprise_name: enterprise.name,
        main_account: enterprise.main_account,
    }))
}

#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct AcceptRequest {
    pub display_name: String,
    /// The customer ticked the consent box (stands in for WeChat authorization).
    pub consent: bool,
}

/// A room token for the customer, bound to this one call.
#[derive(Debug, Serialize, Deserialize, utoipa::ToSchema)]
pub struct JoinTicket {
    pub call_id: String,
    pub kind: CallKind,
    pub room_token: String,
}

#[utoipa::path(post, path = "/api/v1/invites/{code}/accept", tag = "customers", params(("code" = String, Path)), request_body = AcceptRequest, responses((status = 200, body = JoinTicket), (status = 404, description = "not found, or belongs to another enterprise", body = crate::http::error::ApiErrorDoc), (status = 409, description = "conflicts with the current state", body = crate::http::error::ApiErrorDoc), (status = 422, description = "invalid input", body = crate::http::error::ApiErrorDoc), (status = 429, description = "too many attempts", body = crate::http::error::ApiErrorDoc)))]
pub async fn accept(
    State(state): State<AppState>,
    peer: ClientIp,
    Path(code): Path<String>,
    ApiJson(req): ApiJson<AcceptRequest>,
) -> Result<Json<JoinTicket>, ApiError> {
    limit(&state, peer, "invite").await?;
    let name = consented_name(req.consent, &req.display_name)?;
    let (call, customer) = state.calls.accept_invite(&code, name, now_ms()).await?;
    let room_token = state.tokens.issue(
        call.id.as_str(),
        customer.as_str(),
        Side::Customer,
        crate::rooms::token::unix_now(),
    );
    Ok(Json(JoinTicket {
        call_id: call.id.to_string(),
        kind: call.kind,
        room_token,
    }))
}

/// The customer's display name, once they consented (shared by invites and the
/// service page).
pub(super) fn consented_name(consent: bool, display_name: &str) -> Result<&str, ApiError> {
    if !consent {
        return Err(ApiError::field(
            "consent",
            "the customer must consent to the video service",
        ));
    }
    let name = display_name.trim();
    if name.is_empty() || name.chars().count() > 32 {
        return Err(ApiError::field("display_name", "1–32 characters"));
    }
    Ok(name)
}

/// Public customer endpoints are rate-limited per client address and `scope`.
pub(super) async fn limit(state: &AppState, peer: ClientIp, scope: &str) -> Result<(), ApiError> {
    if state
        .login_limiter
        .allow(&format!("{scope}:{peer}"))
        .await?
    {
        Ok(())
    } else {
        Err(ApiError::TooManyRequests)
    }
}
