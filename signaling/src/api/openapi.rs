//! The OpenAPI document of `/api/v1`, generated from the handlers' annotations and
//! served at `/api/openapi.json`.

use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::{Modify, OpenApi};

use super::{auth, beauty, calls, invites, recordings, service, users, verifications};

#[derive(OpenApi)]
#[openapi(
    info(title = "kefu", description = "Video customer service: accounts, calls, verification records, beauty settings, recordings."),
    paths(
        auth::login, auth::logout,
        users::me, users::set_presence, users::list_agents, users::set_video_service,
        calls::gate, calls::my_queue, calls::start, calls::get, calls::cancel, calls::accept,
        calls::room_token, calls::invite_qr,
        invites::show, invites::accept,
        service::page, service::create, service::status, service::cancel,
        beauty::get, beauty::put, beauty::reset, beauty::open_preview, beauty::try_preview, beauty::close_preview,
        verifications::list, verifications::csv,
        recordings::list, recordings::get, recordings::play, recordings::download,
        recordings::retry, recordings::audit_log,
    ),
    modifiers(&Security)
)]
#[derive(Debug)]
pub struct ApiDoc;

/// Declares the two bearer kinds: agent/admin sessions and customers' room tokens.
struct Security;

impl Modify for Security {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "bearer",
            SecurityScheme::Http(HttpBuilder::new().scheme(HttpAuthScheme::Bearer).build()),
        );
        components.add_security_scheme(
            "room_token",
            SecurityScheme::Http(
                HttpBuilder::new()
                    .scheme(HttpAuthScheme::Bearer)
                    .bearer_format("JWT")
                    .build(),
            ),
        );
    }
}
