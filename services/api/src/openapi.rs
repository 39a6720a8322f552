//! The OpenAPI 3 document, generated from the handlers' and types' annotations.

use axum::Json;
use utoipa::{
    Modify, OpenApi,
    openapi::security::{ApiKey, ApiKeyValue, HttpAuthScheme, HttpBuilder, SecurityScheme},
};

use crate::{assets, capabilities, error::ErrorBody, jobs};

#[derive(OpenApi)]
#[openapi(
    info(title = "Atelier native API", description = "Asynchronous AI-generation jobs"),
    paths(
        jobs::routes::create,
        jobs::routes::get,
        jobs::routes::cancel,
        jobs::routes::list,
        capabilities::list,
        assets::list,
        assets::create::create,
        assets::get,
        assets::download,
        assets::delete,
        crate::http::credits_statement,
        crate::webhooks::log,
        crate::webhooks::redeliver,
        crate::webhooks::read_secret,
        crate::webhooks::rotate_secret,
    ),
    components(schemas(ErrorBody)),
    modifiers(&Security),
    security(("bearer" = []), ("zhinianApiKey" = [])),
)]
pub struct ApiDoc;

struct Security;

impl Modify for Security {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "bearer",
            SecurityScheme::Http(HttpBuilder::new().scheme(HttpAuthScheme::Bearer).build()),
        );
        components.add_security_scheme(
            "zhinianApiKey",
            SecurityScheme::ApiKey(ApiKey::Header(ApiKeyValue::new("X-Zhinian-Api-Key"))),
        );
    }
}

/// Served without authentication, so integrators can read it before they have a key.
pub async fn document() -> Json<utoipa::openapi::OpenApi> {
    Json(ApiDoc::openapi())
}
