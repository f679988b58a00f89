//! The extractor every signed-in endpoint takes: a live session's bearer token.

use axum::extract::FromRequestParts;
use axum::http::request::Parts;

use crate::accounts::session::token_hash;
use crate::accounts::{User, UserRole};
use crate::http::error::ApiError;
use crate::state::AppState;

/// A request made with a live session.
#[derive(Debug, Clone)]
pub struct Authenticated {
    pub user: User,
    pub token_hash: String,
    /// When this login session began (the verification gate counts from it).
    pub session_started_at: i64,
}

impl Authenticated {
    /// Refuses anyone but `role` with 403.
    pub fn require(&self, role: UserRole) -> Result<(), ApiError> {
        if self.user.role == role {
            Ok(())
        } else {
            Err(ApiError::Forbidden(match role {
                UserRole::Admin => "admins only",
                UserRole::Agent => "agents only",
            }))
        }
    }
}

impl FromRequestParts<AppState> for Authenticated {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, ApiError> {
        let header = parts
            .headers
            .get(axum::http::header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .ok_or(ApiError::Unauthorized)?;
        let token = header
            .strip_prefix("Bearer ")
            .filter(|t| !t.is_empty() && t.len() <= 128)
            .ok_or(ApiError::Unauthorized)?;
        let token_hash = token_hash(token);
        let (user, session_started_at) = state
            .store
            .session_user(&token_hash, crate::clock::now_ms())
            .await?
            .ok_or(ApiError::Unauthorized)?;
        Ok(Authenticated {
            user,
            token_hash,
            session_started_at,
        })
    }
}

/// `Option<Authenticated>`: no `Authorization` header is `None`; a header that does not
/// hold a valid session is still refused.
impl axum::extract::OptionalFromRequestParts<AppState> for Authenticated {
    type Rejection = ApiError;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &AppState,
    ) -> Result<Option<Self>, ApiError> {
        if !parts
            .headers
            .contains_key(axum::http::header::AUTHORIZATION)
        {
            return Ok(None);
        }
        <Authenticated as FromRequestParts<AppState>>::from_request_parts(parts, state)
            .await
            .map(Some)
    }
}
