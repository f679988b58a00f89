//! The HTTP surface: the router (the REST route list is `api.rs`), the extractors
//! (`auth.rs`, `json.rs`), the one API error type, the OpenAPI frame, the signaling
//! WebSocket session (`ws.rs`), the pages' event channel (`events.rs`), the pages and
//! the per-address rate limiter. Handlers live in their feature's folder.

pub mod api;
pub mod auth;
pub mod error;
mod events;
mod forward;
pub mod guard;
pub mod headers;
pub mod json;
pub mod limits;
pub mod openapi;
mod pages;
pub mod ratelimit;
pub(crate) mod ws;

use std::sync::Arc;

use axum::Router;
use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::IntoResponse;
use axum::routing::get;

use crate::state::AppState;

pub fn router(state: AppState) -> Router {
    let (api, doc) = api::router();
    let doc = Arc::new(doc);
    Router::new()
        .route("/healthz", get(healthz))
        .route("/metrics", get(metrics))
        .route(
            "/api/openapi.json",
            get(move || async move { axum::Json((*doc).clone()) }),
        )
        .route("/ws", get(ws::upgrade))
        .route("/ws/events", get(events::upgrade))
        .route(
            "/media/recordings/{token}",
            get(crate::recordings::http::media),
        )
        .merge(api)
        // Anything else under the API is a JSON 404, not a page.
        .route(
            "/api/v1/{*rest}",
            axum::routing::any(|| async { crate::http::error::ApiError::NotFound }),
        )
        .merge(pages::router())
        .layer(axum::middleware::from_fn_with_state(
            state.clone(),
            forward::to_holder,
        ))
        .layer(axum::middleware::from_fn_with_state(
            state.clone(),
            refuse_while_draining,
        ))
        .layer(axum::middleware::from_fn_with_state(
            state.guard.timeout(),
            guard::deadline,
        ))
        .layer(axum::middleware::from_fn_with_state(
            state.clone(),
            guard::guard,
        ))
        .layer(axum::middleware::from_fn_with_state(
            state.clone(),
            headers::secure,
        ))
        .with_state(state)
}

/// A media node's public port: health and metrics, nothing people use.
pub fn ops_router(state: AppState) -> Router {
    Router::new()
        .route("/healthz", get(healthz))
        .route("/metrics", get(metrics))
        .with_state(state)
}

/// Once a shutdown began, every request but health and metrics gets 503 `draining`
/// (a load balancer moves people to another node; a page says to try again).
async fn refuse_while_draining(
    State(state): State<AppState>,
    request: axum::extract::Request,
    next: axum::middleware::Next,
) -> axum::response::Response {
    let path = request.uri().path();
    if state.is_draining() && path != "/healthz" && path != "/metrics" {
        return crate::http::error::ApiError::Draining.into_response();
    }
    next.run(request).await
}

/// 200 while serving; 503 once a shutdown began, so a load balancer stops sending
/// people here while the calls drain.
async fn healthz(State(state): State<AppState>) -> impl IntoResponse {
    let (status, body) = if state.is_draining() {
        (StatusCode::SERVICE_UNAVAILABLE, r#"{"status":"draining"}"#)
    } else {
        (StatusCode::OK, r#"{"status":"ok"}"#)
    };
    (status, [(header::CONTENT_TYPE, "application/json")], body)
}

async fn metrics(State(state): State<AppState>) -> impl IntoResponse {
    (
        [(
            header::CONTENT_TYPE,
            "application/openmetrics-text; version=1.0.0; charset=utf-8",
        )],
        state.metrics.render(),
    )
}
