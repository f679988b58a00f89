//! The REST API under `/api/v1`.

pub mod auth;
pub mod beauty;
pub mod calls;
pub mod error;
pub mod invites;
pub mod json;
pub mod openapi;
pub mod recordings;
pub mod service;
pub mod users;
pub mod verifications;
pub mod views;

use axum::Router;
use axum::extract::DefaultBodyLimit;
use axum::routing::{get, post, put};

use crate::state::AppState;

/// Request bodies of the API are small JSON documents.
const MAX_BODY_BYTES: usize = 64 * 1024;

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/auth/login", post(auth::login))
        .route("/auth/logout", post(auth::logout))
        .route("/me", get(users::me))
        .route("/me/presence", put(users::set_presence))
        .route("/agents", get(users::list_agents))
        .route("/agents/{id}/video-service", put(users::set_video_service))
        .route("/me/verification-gate", get(calls::gate))
        .route("/calls", post(calls::start))
        .route("/calls/{id}", get(calls::get))
        .route("/calls/{id}/cancel", post(calls::cancel))
        .route("/calls/{id}/invite.svg", get(calls::invite_qr))
        .route("/calls/{id}/room-token", get(calls::room_token))
        .route("/me/queue", get(calls::my_queue))
        .route("/me/beauty", get(beauty::get).put(beauty::put))
        .route("/me/beauty/reset", post(beauty::reset))
        .route(
            "/me/beauty/preview",
            post(beauty::open_preview)
                .put(beauty::try_preview)
                .delete(beauty::close_preview),
        )
        .route("/calls/{id}/accept", post(calls::accept))
        .route("/service/{main_account}", get(service::page))
        .route("/service/{main_account}/requests", post(service::create))
        .route("/service/requests/{id}", get(service::status))
        .route("/service/requests/{id}/cancel", post(service::cancel))
        .route("/invites/{code}", get(invites::show))
        .route("/invites/{code}/accept", post(invites::accept))
        .route("/verifications", get(verifications::list))
        .route("/recordings", get(recordings::list))
        .route("/recordings/{id}", get(recordings::get))
        .route("/recordings/{id}/play", post(recordings::play))
        .route("/recordings/{id}/download", post(recordings::download))
        .route("/recordings/{id}/retry", post(recordings::retry))
        .route("/audit", get(recordings::audit_log))
        .route("/verifications.csv", get(verifications::csv))
        .fallback(|| async { error::ApiError::NotFound })
        .layer(DefaultBodyLimit::max(MAX_BODY_BYTES))
}
