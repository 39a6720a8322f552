//! The OpenAPI 3.1 document of every face — native, tasks (seed 001), creations (seed 000) and
//! the service routes — served at `GET /api/v1/openapi.json`. One document, because partners
//! and the fuzz gate should find every route in one place; `/openapi/v1/openapi.json` serves
//! the creations face's part of the same document for seed 000's clients.
//!
//! The native and creations operations are annotated next to their handlers (utoipa); the
//! rest is JSON built here from the api's configuration, since the models, task models and
//! creation types a server accepts are configuration: `faces` adds what every operation of a
//! face shares (its error body on every status the edge can answer, path parameters),
//! `tasks` and `service` the routes that have no annotations.

mod creations;
mod faces;
mod native;
mod service;
mod tasks;

use axum::{Json, extract::State};
use serde_json::Value;
use utoipa::{
    Modify, OpenApi,
    openapi::security::{ApiKey, ApiKeyValue, HttpAuthScheme, HttpBuilder, SecurityScheme},
};

use crate::{AppState, assets, capabilities, config::ApiConfig, error::ErrorBody, jobs};

#[derive(OpenApi)]
#[openapi(
    info(title = "Atelier API", description = "Asynchronous AI-generation jobs. Three faces over \
        one core: the native API (/api/v1: jobs, assets, credits, webhooks; errors are \
        {\"error\"}), the tasks API (/api/v1/tasks, seed 001; every answer is the \
        {\"code\", \"msg\", \"data\"} envelope) and the creations API (/openapi/v1, seed 000; \
        errors are {\"detail\": {\"code\", \"message\"}}). Any of the three key headers works \
        on every face."),
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
        crate::limits::route::limits,
        crate::webhooks::log,
        crate::events::routes::list,
        crate::events::routes::stream,
        crate::webhooks::redeliver,
        crate::webhooks::read_secret,
        crate::webhooks::rotate_secret,
    ),
    components(schemas(ErrorBody)),
    modifiers(&Security),
    security(("bearer" = []), ("zhinianApiKey" = []), ("kgpApiKey" = [])),
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
        components.add_security_scheme(
            "kgpApiKey",
            SecurityScheme::ApiKey(ApiKey::Header(ApiKeyValue::new("X-KGP-Api-Key"))),
        );
    }
}

/// The whole document for a server with this configuration and creations offer.
pub fn build(config: &ApiConfig, offer: &crate::faces::creations::Offer) -> Value {
    compose(
        |capability| crate::config::models_for(&config.routes, capability),
        &config.task_models,
        offer,
    )
}

/// [`build`] from its parts: the models each capability can be routed to, the tasks face's
/// `model=capability` table, and what the creations face offers.
fn compose(
    models: impl Fn(&str) -> Vec<String>,
    task_models: &[(String, String)],
    offer: &crate::faces::creations::Offer,
) -> Value {
    let mut doc = ApiDoc::openapi();
    doc.merge(crate::faces::creations::CreationsDoc::openapi());
    let mut doc = serde_json::to_value(doc).expect("the document serialises");
    doc["components"]["schemas"]["CreateJobRequest"] =
        jobs::request::schema::create_job_request(models);
    native::describe(&mut doc);
    creations::describe(&mut doc, offer);
    tasks::describe(&mut doc, task_models);
    service::describe(&mut doc);
    faces::complete(&mut doc);
    doc
}

/// Served without authentication, so integrators can read it before they have a key.
pub async fn document(State(state): State<AppState>) -> Json<Value> {
    Json(build(&state.config, &state.offer))
}

/// The creations face's part of the document (seed 000's clients read it at its own prefix).
pub async fn creations_document(State(state): State<AppState>) -> Json<Value> {
    let mut doc = build(&state.config, &state.offer);
    if let Some(paths) = doc["paths"].as_object_mut() {
        paths.retain(|path, _| path.starts_with("/openapi/v1/"));
    }
    doc["info"]["title"] = "Atelier creations API".into();
    Json(doc)
}

#[cfg(test)]
mod tests;
