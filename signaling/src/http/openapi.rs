//! The OpenAPI document of `/api/v1`: this frame, plus the paths of the route list
//! (`super::router`), served at `/api/openapi.json`.

use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::{Modify, OpenApi};

/// The document's frame: title and security schemes. The paths and their schemas
/// are added from the route list in [`super::router`].
#[derive(OpenApi)]
#[openapi(
    info(title = "kefu", description = "Video customer service: accounts, calls, verification records, beauty settings, recordings."),
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
