//! `GET`/`PUT /api/v1/enterprise/retention-settings`: the enterprise's admins only.

use axum::Json;
use axum::extract::State;

use crate::accounts::UserRole;
use crate::http::auth::Authenticated;
use crate::http::error::ApiError;
use crate::http::json::ApiJson;
use crate::retention::RetentionSettings;
use crate::state::AppState;

#[utoipa::path(get, path = "/api/v1/enterprise/retention-settings", tag = "retention", security(("bearer" = [])), responses((status = 200, body = RetentionSettings), (status = 401, description = "no valid session", body = crate::http::error::ApiErrorDoc), (status = 403, description = "forbidden by role or rule", body = crate::http::error::ApiErrorDoc)))]
pub async fn get_settings(
    State(state): State<AppState>,
    auth: Authenticated,
) -> Result<Json<RetentionSettings>, ApiError> {
    auth.require(UserRole::Admin)?;
    Ok(Json(
        state
            .store
            .retention_settings(&auth.user.enterprise_id)
            .await?,
    ))
}

/// Replaces the enterprise's retention (every field; `null` keeps that kind until
/// deleted by hand). Shortening it deletes at the next daily sweep; audited.
#[utoipa::path(put, path = "/api/v1/enterprise/retention-settings", tag = "retention", security(("bearer" = [])), request_body = RetentionSettings, responses((status = 200, body = RetentionSettings), (status = 401, description = "no valid session", body = crate::http::error::ApiErrorDoc), (status = 403, description = "forbidden by role or rule", body = crate::http::error::ApiErrorDoc), (status = 422, description = "invalid input", body = crate::http::error::ApiErrorDoc)))]
pub async fn put_settings(
    State(state): State<AppState>,
    auth: Authenticated,
    ApiJson(req): ApiJson<RetentionSettings>,
) -> Result<Json<RetentionSettings>, ApiError> {
    auth.require(UserRole::Admin)?;
    if let Some((field, message)) = req.invalid_field() {
        return Err(ApiError::field(field, message));
    }
    let now = crate::clock::now_ms();
    state
        .store
        .set_retention_settings(&auth.user.enterprise_id, &req, &auth.user.id, now)
        .await?;
    crate::audit::record(
        &state.store,
        &auth,
        "retention_settings_changed",
        auth.user.enterprise_id.as_str(),
    )
    .await?;
    Ok(Json(req))
}
