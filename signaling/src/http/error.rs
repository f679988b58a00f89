//! One error type for the REST API; 5xx details are logged, never sent.

use std::collections::BTreeMap;

use axum::Json;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde::Serialize;
use tracing::{error, warn};

use crate::store::StoreError;

#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    /// No valid session (missing, expired, revoked or forged token).
    #[error("authentication required")]
    Unauthorized,
    /// Authenticated, but this role or account may not do this.
    #[error("{0}")]
    Forbidden(&'static str),
    /// Unknown id, or one that belongs to another enterprise (never revealed).
    #[error("not found")]
    NotFound,
    /// Input failed validation; field → message.
    #[error("invalid input")]
    Validation(BTreeMap<&'static str, String>),
    /// The body is not the JSON this endpoint takes.
    #[error("{0}")]
    BadRequest(String),
    /// The body is over the endpoint's size limit.
    #[error("the request body is too large")]
    PayloadTooLarge,
    /// The write conflicts with existing data (e.g. a login already taken).
    #[error("{0}")]
    Conflict(String),
    /// Too many attempts; retry later.
    #[error("too many attempts, retry later")]
    TooManyRequests,
    /// This client sent more requests than it may; retry later.
    #[error("too many requests from this address, retry later")]
    RateLimited,
    /// The request took longer than the server allows.
    #[error("the request took too long; try again")]
    Timeout,
    /// A business rule refused the action (`code` tells which).
    #[error("{message}")]
    Rule {
        status: StatusCode,
        code: &'static str,
        message: String,
        detail: Option<serde_json::Value>,
    },
    /// kefu is shutting down and takes no new requests.
    #[error("the service is restarting; try again in a moment")]
    Draining,
    /// The state nodes share (Redis) cannot be reached; nothing was changed.
    #[error("the service is temporarily unavailable; try again in a moment")]
    ClusterUnavailable(#[source] crate::cluster::ClusterError),
    /// Our fault; the cause is logged.
    #[error("internal error")]
    Internal(#[from] anyhow::Error),
}

impl ApiError {
    pub fn field(field: &'static str, message: impl Into<String>) -> Self {
        ApiError::Validation(BTreeMap::from([(field, message.into())]))
    }

    fn status(&self) -> StatusCode {
        match self {
            ApiError::Unauthorized => StatusCode::UNAUTHORIZED,
            ApiError::Forbidden(_) => StatusCode::FORBIDDEN,
            ApiError::NotFound => StatusCode::NOT_FOUND,
            ApiError::Validation(_) => StatusCode::UNPROCESSABLE_ENTITY,
            ApiError::BadRequest(_) => StatusCode::BAD_REQUEST,
            ApiError::PayloadTooLarge => StatusCode::PAYLOAD_TOO_LARGE,
            ApiError::Conflict(_) => StatusCode::CONFLICT,
            ApiError::TooManyRequests | ApiError::RateLimited => StatusCode::TOO_MANY_REQUESTS,
            ApiError::Timeout => StatusCode::GATEWAY_TIMEOUT,
            ApiError::Rule { status, .. } => *status,
            ApiError::Draining | ApiError::ClusterUnavailable(_) => StatusCode::SERVICE_UNAVAILABLE,
            ApiError::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    fn code(&self) -> &'static str {
        match self {
            ApiError::Unauthorized => "unauthorized",
            ApiError::Forbidden(_) => "forbidden",
            ApiError::NotFound => "not_found",
            ApiError::Validation(_) => "validation",
            ApiError::BadRequest(_) => "bad_request",
            ApiError::PayloadTooLarge => "payload_too_large",
            ApiError::Conflict(_) => "conflict",
            ApiError::TooManyRequests => "too_many_requests",
            ApiError::RateLimited => "rate_limited",
            ApiError::Timeout => "timeout",
            ApiError::Rule { code, .. } => code,
            ApiError::Draining => "draining",
            ApiError::ClusterUnavailable(_) => "cluster_unavailable",
            ApiError::Internal(_) => "internal",
        }
    }
}

impl From<crate::calls::service::CallError> for ApiError {
    fn from(e: crate::calls::service::CallError) -> Self {
        use crate::calls::service::CallError as C;
        let rule = |status, code, detail| ApiError::Rule {
            status,
            code,
            message: e.to_string(),
            detail,
        };
        match &e {
            C::VideoServiceDisabled => rule(StatusCode::FORBIDDEN, "video_service_disabled", None),
            C::VerificationRequired(due) => rule(
                StatusCode::FORBIDDEN,
                "verification_required",
                serde_json::to_value(due).ok(),
            ),
            C::AtCapacity(_) => rule(StatusCode::CONFLICT, "at_capacity", None),
            C::Invalid(_) => rule(StatusCode::CONFLICT, "invalid_transition", None),
            C::Raced => rule(StatusCode::CONFLICT, "raced", None),
            C::AllAgentsBusy => rule(StatusCode::SERVICE_UNAVAILABLE, "all_agents_busy", None),
            C::NotFound => ApiError::NotFound,
            C::Cluster(cause) => ApiError::ClusterUnavailable(cause.clone()),
            C::Store(_) | C::Task(_) => ApiError::Internal(anyhow::anyhow!("{e}")),
        }
    }
}

impl From<crate::cluster::ClusterError> for ApiError {
    fn from(e: crate::cluster::ClusterError) -> Self {
        ApiError::ClusterUnavailable(e)
    }
}

impl From<StoreError> for ApiError {
    fn from(e: StoreError) -> Self {
        match e {
            StoreError::Conflict(what) => ApiError::Conflict(format!("{what} already exists")),
            other => ApiError::Internal(other.into()),
        }
    }
}

/// The body of every error response (documented shape of [`ErrorBody`]).
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct ApiErrorDoc {
    /// Machine-readable code: `unauthorized`, `forbidden`, `not_found`, `validation`,
    /// `verification_required`, `all_agents_busy`, …
    pub error: String,
    pub message: String,
    /// Field → problem, for `validation`.
    pub fields: Option<std::collections::BTreeMap<String, String>>,
    /// Extra facts, e.g. why a verification is due.
    pub detail: Option<serde_json::Value>,
}

#[derive(Serialize)]
struct ErrorBody<'a> {
    error: &'a str,
    message: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    fields: Option<&'a BTreeMap<&'static str, String>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    detail: Option<&'a serde_json::Value>,
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        match &self {
            ApiError::Internal(cause) => error!(error = ?cause, "request failed"),
            ApiError::ClusterUnavailable(cause) => warn!("request refused: {cause}"),
            _ => {}
        }
        let fields = match &self {
            ApiError::Validation(fields) => Some(fields),
            _ => None,
        };
        let detail = match &self {
            ApiError::Rule { detail, .. } => detail.as_ref(),
            _ => None,
        };
        let body = ErrorBody {
            error: self.code(),
            message: self.to_string(),
            fields,
            detail,
        };
        let mut response = (self.status(), Json(&body)).into_response();
        if matches!(self, ApiError::Unauthorized) {
            response.headers_mut().insert(
                axum::http::header::WWW_AUTHENTICATE,
                axum::http::HeaderValue::from_static("Bearer"),
            );
        }
        response
    }
}
