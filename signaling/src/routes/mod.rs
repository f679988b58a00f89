//! HTTP routes.

mod pages;
pub(crate) mod ws;

use axum::Router;
use axum::extract::State;
use axum::http::header;
use axum::response::IntoResponse;
use axum::routing::get;

use crate::state::AppState;

pub fn router(state: AppState) -> Router {
    Router::new()
        .route("/healthz", get(healthz))
        .route("/metrics", get(metrics))
        .route("/api/openapi.json", get(openapi))
        .route("/ws", get(ws::upgrade))
        .route(
            "/media/recordings/{token}",
            get(crate::api::recordings::media),
        )
        .nest("/api/v1", crate::api::router())
        .merge(pages::router())
        .with_state(state)
}

async fn healthz() -> impl IntoResponse {
    (
        [(header::CONTENT_TYPE, "application/json")],
        r#"{"status":"ok"}"#,
    )
}

async fn openapi() -> impl IntoResponse {
    use utoipa::OpenApi;
    axum::Json(crate::api::openapi::ApiDoc::openapi())
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
