//! The REST API under `/api/v1`: one list of every route, each handler in its
//! feature's folder.

use axum::Router;
use axum::extract::DefaultBodyLimit;
use utoipa::OpenApi;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::openapi;
use crate::accounts::{login, removal, users};
use crate::beauty::http as beauty;
use crate::calls::{http as calls, invites, requests as service};
use crate::moderation::http as moderation;
use crate::recordings::http as recordings;
use crate::retention::http as retention;
use crate::state::AppState;
use crate::verification::http as verifications;
use crate::verification::{attempt_http as verify, enroll_http as enroll};

/// Request bodies of the API are small JSON documents.
const MAX_BODY_BYTES: usize = 64 * 1024;

/// Every route of `/api/v1`, declared once: the router and the OpenAPI document
/// served at `/api/openapi.json` come from this one list, so they cannot disagree.
/// Paths are the full ones written in each handler's `#[utoipa::path]`.
pub fn router() -> (Router<AppState>, utoipa::openapi::OpenApi) {
    let (router, doc) = OpenApiRouter::with_openapi(openapi::ApiDoc::openapi())
        .routes(routes!(login::login))
        .routes(routes!(login::logout))
        .routes(routes!(users::me))
        .routes(routes!(users::set_presence))
        .routes(routes!(users::list_agents))
        .routes(routes!(users::set_video_service))
        .routes(routes!(removal::remove_agent))
        .routes(routes!(verifications::gate))
        .routes(routes!(calls::my_queue))
        .routes(routes!(calls::start))
        .routes(routes!(calls::get))
        .routes(routes!(calls::cancel))
        .routes(routes!(calls::accept))
        .routes(routes!(calls::room_token))
        .routes(routes!(calls::invite_qr))
        .routes(routes!(beauty::get, beauty::put))
        .routes(routes!(beauty::reset))
        .routes(routes!(
            beauty::open_preview,
            beauty::try_preview,
            beauty::close_preview
        ))
        .routes(routes!(service::page))
        .routes(routes!(service::create))
        .routes(routes!(service::status))
        .routes(routes!(service::cancel))
        .routes(routes!(invites::show))
        .routes(routes!(invites::accept))
        .routes(routes!(verifications::list))
        .routes(routes!(verifications::csv))
        .routes(routes!(recordings::list))
        .routes(routes!(recordings::get))
        .routes(routes!(recordings::play))
        .routes(routes!(recordings::download))
        .routes(routes!(recordings::retry))
        .routes(routes!(crate::audit::http::audit_log))
        .routes(routes!(verify::start))
        .routes(routes!(verify::status))
        .routes(routes!(verify::phone_link))
        .routes(routes!(verify::phone_claim))
        .routes(routes!(enroll::get))
        .routes(routes!(enroll::clear_lock))
        .routes(routes!(enroll::get_settings, enroll::put_settings))
        .routes(routes!(moderation::get_settings, moderation::put_settings))
        .routes(routes!(retention::get_settings, retention::put_settings))
        .routes(routes!(moderation::list))
        .routes(routes!(moderation::mosaic))
        .routes(routes!(moderation::reveal))
        .routes(routes!(moderation::review))
        .merge(
            // Bodies larger than the API's JSON limit, each with its own.
            OpenApiRouter::new()
                .routes(routes!(verify::frame))
                .routes(routes!(verify::phone_frame))
                .layer(DefaultBodyLimit::max(verify::MAX_FRAME_BYTES)),
        )
        .merge(
            OpenApiRouter::new()
                .routes(routes!(enroll::put))
                .layer(DefaultBodyLimit::max(enroll::MAX_ENROLL_BODY_BYTES)),
        )
        .split_for_parts();
    (router.layer(DefaultBodyLimit::max(MAX_BODY_BYTES)), doc)
}
