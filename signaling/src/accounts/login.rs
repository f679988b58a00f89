//! Login and logout (the extractor that checks a session is `http/auth.rs`).

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use serde::{Deserialize, Serialize};

use crate::accounts::password::verify_password;
use crate::accounts::session::{new_token, token_hash};
use crate::accounts::store::SessionRow;
use crate::accounts::view::UserView;
use crate::http::auth::Authenticated;
use crate::http::error::ApiError;
use crate::http::guard::ClientIp;
use crate::http::json::ApiJson;
use crate::state::AppState;

#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct LoginRequest {
    pub login: String,
    pub password: String,
}

#[derive(Debug, Serialize, Deserialize, utoipa::ToSchema)]
pub struct LoginResponse {
    pub token: String,
    /// Unix milliseconds.
    pub expires_at: i64,
    pub user: UserView,
}

/// A real hash to verify against when the login is unknown, so both paths cost the
/// same and timing does not reveal which logins exist.
static DUMMY_HASH: std::sync::LazyLock<String> = std::sync::LazyLock::new(|| {
    crate::accounts::password::hash_password(&crate::accounts::password::generate_password())
        .unwrap_or_default()
});

#[utoipa::path(post, path = "/api/v1/auth/login", tag = "auth", request_body = LoginRequest, responses((status = 200, body = LoginResponse), (status = 400, description = "bad request", body = crate::http::error::ApiErrorDoc), (status = 401, description = "no valid session", body = crate::http::error::ApiErrorDoc), (status = 413, description = "body too large", body = crate::http::error::ApiErrorDoc), (status = 422, description = "invalid input", body = crate::http::error::ApiErrorDoc), (status = 429, description = "too many attempts", body = crate::http::error::ApiErrorDoc)))]
pub async fn login(
    State(state): State<AppState>,
    peer: ClientIp,
    ApiJson(req): ApiJson<LoginRequest>,
) -> Result<Json<LoginResponse>, ApiError> {
    if req.login.is_empty() || req.login.len() > 64 {
        return Err(ApiError::field("login", "1–64 characters"));
    }
    if req.password.is_empty() || req.password.len() > 256 {
        return Err(ApiError::field("password", "1–256 characters"));
    }
    let limiter = &state.login_limiter;
    if !limiter.allow(&format!("login:{}", req.login)).await?
        || !limiter.allow(&format!("ip:{peer}")).await?
    {
        return Err(ApiError::TooManyRequests);
    }
    let found = state.store.user_by_login(&req.login).await?;
    let hash = found
        .as_ref()
        .map(|(_, h)| h.clone())
        .unwrap_or_else(|| DUMMY_HASH.clone());
    let password = req.password;
    // Argon2 is deliberately slow: keep it off the async workers.
    let valid = tokio::task::spawn_blocking(move || verify_password(&password, &hash))
        .await
        .map_err(|e| ApiError::Internal(e.into()))?;
    let Some((user, _)) = found.filter(|_| valid) else {
        return Err(ApiError::Unauthorized);
    };

    let token = new_token();
    let now_ms = crate::clock::now_ms();
    let session = SessionRow {
        token_hash: token_hash(&token),
        user_id: user.id.clone(),
        created_at: now_ms,
        expires_at: now_ms + state.session_ttl_secs as i64 * 1000,
    };
    state.store.create_session(&session).await?;
    Ok(Json(LoginResponse {
        token,
        expires_at: session.expires_at,
        user: UserView::of(&user, &state.data_key),
    }))
}

#[utoipa::path(post, path = "/api/v1/auth/logout", tag = "auth", security(("bearer" = [])), responses((status = 204, description = "session revoked"), (status = 401, description = "no valid session", body = crate::http::error::ApiErrorDoc)))]
pub async fn logout(
    State(state): State<AppState>,
    auth: Authenticated,
) -> Result<StatusCode, ApiError> {
    state
        .store
        .revoke_session(&auth.token_hash, crate::clock::now_ms())
        .await?;
    Ok(StatusCode::NO_CONTENT)
}
