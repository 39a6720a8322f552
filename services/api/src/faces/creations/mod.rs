//! The creations API (seed 000, KPainter's OpenAPI quick start) at `/openapi/v1`: `/me`,
//! `/catalog`, `/creations` (create, list, read) and `/creations/jobs/{job_id}` (poll,
//! cancel). A creation is a job of the shared core — `video.slides` for `slides_video` and
//! `slide_deck`, `image.generate` for `image` — with a `creations` row giving it the integer
//! id KPainter's clients expect; this folder only translates.

pub mod catalog;
mod create;
pub mod error;
mod list;
mod me;
mod read;
mod view;

use axum::{
    Json, Router,
    extract::{Path, State},
    routing::{get, post},
};
use serde_json::Value;
use utoipa::OpenApi;

use crate::{
    AppState,
    auth::Caller,
    error::ApiError,
    jobs::{self, cancel::Cancel},
};
pub use catalog::Offer;
use error::CreationError;
use view::CreationRow;

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/openapi/v1/me", get(me::me))
        .route("/openapi/v1/catalog", get(catalog::get))
        .route(
            "/openapi/v1/creations",
            get(list::list).post(create::create),
        )
        .route("/openapi/v1/creations/{creation_id}", get(read::detail))
        .route("/openapi/v1/creations/jobs/{job_id}", get(read::job))
        .route("/openapi/v1/creations/jobs/{job_id}/cancel", post(cancel))
        .route(
            "/openapi/v1/openapi.json",
            get(crate::openapi::creations_document),
        )
        .route(
            "/openapi/v1/health",
            get(|| async { Json(serde_json::json!({"status": "ok"})) }),
        )
}

/// Cancel a creation's job, queued or running: it ends `cancelled`, its credits come back
/// once, its webhook says so, and a running job's worker stops. Cancelling again answers the
/// same; a job that already ended is a 409 naming its state.
#[utoipa::path(post, path = "/openapi/v1/creations/jobs/{job_id}/cancel", tag = "creations",
    params(("job_id" = String, Path, description = "the creation's job")),
    responses((status = 200, description = "the job, now cancelled, with its billing", body = Object),
              (status = 401, body = error::ErrorBody), (status = 404, body = error::ErrorBody),
              (status = 409, description = "job_not_cancellable, with its status", body = error::ErrorBody)))]
pub async fn cancel(
    State(state): State<AppState>,
    caller: Result<Caller, ApiError>,
    Path(job_id): Path<String>,
) -> Result<Json<Value>, CreationError> {
    let caller = caller?;
    let creation = CreationRow::of_job(&state.pool, &caller.client, &job_id)
        .await?
        .ok_or_else(|| CreationError::not_found("job"))?;
    match jobs::cancel::cancel(&state, &caller.client, &job_id).await? {
        None => Err(CreationError::not_found("job")),
        Some(Cancel::Now(job) | Cancel::Already(job)) => Ok(Json(view::job_view(&creation, &job))),
        Some(Cancel::Finished(job)) => Err(CreationError::not_cancellable(&job.status)),
    }
}

/// This face's operations, merged into the one document (crate::openapi).
#[derive(OpenApi)]
#[openapi(
    paths(
        me::me,
        catalog::get,
        create::create,
        list::list,
        read::detail,
        read::job,
        cancel
    ),
    components(schemas(error::ErrorBody, error::Detail))
)]
pub struct CreationsDoc;
