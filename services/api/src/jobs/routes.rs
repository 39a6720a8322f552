//! `POST /api/v1/jobs`, `GET /api/v1/jobs/{id}` and `GET /api/v1/jobs`.

use atelier_kit::nats::CAPABILITIES;
use axum::{
    Json,
    body::Bytes,
    extract::{Extension, Path, Query, State},
    http::{HeaderMap, StatusCode},
};
use chrono::{DateTime, Utc};
use serde::Deserialize;
use utoipa::IntoParams;

use super::{
    request::{self, CreateJobRequest},
    store::{self, Before, Created, ListFilter, NewJob},
    view::{Job, JobEnvelope, JobList},
};
use crate::{AppState, auth::Caller, error::ApiError, http::RequestId};

pub const STATUSES: [&str; 6] = [
    "queued",
    "running",
    "succeeded",
    "failed",
    "expired",
    "cancelled",
];
const MAX_IDEMPOTENCY_KEY: usize = 255;

/// Query parameters arrive as text and are parsed here, so a bad one gets the same JSON
/// error as any other bad input.
pub fn check_limit(limit: Option<&str>) -> Result<i64, ApiError> {
    match limit.map(|raw| raw.trim().parse::<i64>()) {
        None => Ok(50),
        Some(Ok(n)) if (1..=200).contains(&n) => Ok(n),
        Some(_) => Err(ApiError::BadRequest(
            "limit: must be an integer between 1 and 200".into(),
        )),
    }
}

/// `before` as given: an id that `is_id` accepts (a job's, an asset's), or an ISO time.
pub fn check_before(
    before: Option<&str>,
    is_id: impl Fn(&str) -> bool,
) -> Result<Option<Before>, ApiError> {
    before
        .map(|raw| {
            if is_id(raw) {
                return Ok(Before::Row(raw.to_owned()));
            }
            DateTime::parse_from_rfc3339(raw)
                .map(|t| Before::Time(t.with_timezone(&Utc)))
                .map_err(|_| {
                    ApiError::BadRequest(format!(
                        "before: {raw:?} is neither a nextBefore cursor nor an ISO 8601 time \
                         such as 2026-01-31T12:00:00Z"
                    ))
                })
        })
        .transpose()
}

/// Parses the body in two steps: JSON first (for the idempotency hash), then the typed
/// request, whose errors carry the path of the offending field.
fn parse_body(body: &[u8]) -> Result<(serde_json::Value, CreateJobRequest), ApiError> {
    let value: serde_json::Value = serde_json::from_slice(body)
        .map_err(|err| ApiError::BadRequest(format!("request body is not valid JSON: {err}")))?;
    let request = serde_path_to_error::deserialize(&value).map_err(|err| {
        let path = err.path().to_string();
        let inner = err.into_inner();
        if path == "." {
            ApiError::BadRequest(inner.to_string())
        } else {
            ApiError::BadRequest(format!("{path}: {inner}"))
        }
    })?;
    Ok((value, request))
}

/// The request's `Idempotency-Key`, if it sent one; every face reads it the same way.
pub fn idempotency_key(headers: &HeaderMap) -> Result<Option<String>, ApiError> {
    let Some(value) = headers.get("idempotency-key") else {
        return Ok(None);
    };
    let key = value
        .to_str()
        .ok()
        .map(str::trim)
        .filter(|k| !k.is_empty() && k.len() <= MAX_IDEMPOTENCY_KEY)
        .ok_or_else(|| {
            ApiError::BadRequest(format!(
                "Idempotency-Key: must be 1-{MAX_IDEMPOTENCY_KEY} visible ASCII characters"
            ))
        })?;
    Ok(Some(key.to_owned()))
}

/// Create a job. It is queued at once; poll it or wait for its webhook.
#[utoipa::path(post, path = "/api/v1/jobs", tag = "jobs", request_body = CreateJobRequest,
    params(("Idempotency-Key" = Option<String>, Header,
            description = "Same key and body returns the existing job; another body is a 409")),
    responses((status = 201, description = "created", body = JobEnvelope),
              (status = 200, description = "reused through Idempotency-Key", body = JobEnvelope),
              (status = 400, body = crate::error::ErrorBody),
              (status = 401, body = crate::error::ErrorBody),
              (status = 409, body = crate::error::ErrorBody)))]
pub async fn create(
    State(state): State<AppState>,
    caller: Caller,
    Extension(request_id): Extension<RequestId>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<(StatusCode, HeaderMap, Json<JobEnvelope>), ApiError> {
    let idempotency_key = idempotency_key(&headers)?;
    let (value, request) = parse_body(&body)?;
    let policy = atelier_netguard::NetPolicy {
        allow_private_networks: state.config.allow_private_networks,
    };
    let request = request::validate(request, &policy).map_err(|e| ApiError::BadRequest(e.0))?;
    if let Some(model) = &request.model {
        let models = crate::config::models_for(&state.config.routes, &request.capability);
        if !models.contains(model) {
            return Err(ApiError::BadRequest(if models.is_empty() {
                format!(
                    "model: {} has no models to choose from; leave model out",
                    request.capability
                )
            } else {
                format!("model: {model:?} is not one of {}", models.join(", "))
            }));
        }
    }
    check_assets_exist(&state, &caller, &request).await?;
    let hash = store::request_hash(&value);
    let new = NewJob::native(caller.client, &request, hash, idempotency_key, request_id.0)?;
    let created = store::create_detached(state, new).await?;
    let quota = created.quota_headers();
    Ok(match created {
        Created::New(row, _) => (
            StatusCode::CREATED,
            quota,
            Json(JobEnvelope {
                job: row.into(),
                reused: false,
            }),
        ),
        Created::Reused(row) => (
            StatusCode::OK,
            quota,
            Json(JobEnvelope {
                job: row.into(),
                reused: true,
            }),
        ),
    })
}

pub async fn check_assets_exist(
    state: &AppState,
    caller: &Caller,
    request: &CreateJobRequest,
) -> Result<(), ApiError> {
    for (i, id) in request.input_asset_ids.iter().enumerate() {
        let found: Option<String> = sqlx::query_scalar(
            "SELECT id FROM assets WHERE id = $1 AND client_id = $2 AND deleted_at IS NULL",
        )
        .bind(id)
        .bind(caller.client.as_str())
        .fetch_optional(&state.pool)
        .await?;
        if found.is_none() {
            return Err(ApiError::BadRequest(format!(
                "inputAssetIds[{i}]: asset {id} not found"
            )));
        }
    }
    Ok(())
}

/// The answer to a cancel that lost to another terminal state.
#[derive(serde::Serialize, utoipa::ToSchema)]
pub struct CancelConflict {
    pub error: String,
    /// The terminal state the job reached first.
    pub status: String,
    pub job: Job,
}

/// Cancel a job. Queued: cancelled at once. Running: the worker stops within about a second
/// (its engine and child processes end, uploaded outputs are deleted). Credits come back in
/// full, once; `billing` says so. Cancelling again answers the same; a job that already
/// succeeded or failed is a 409 with its state, nothing refunded.
#[utoipa::path(post, path = "/api/v1/jobs/{id}/cancel", tag = "jobs",
    params(("id" = String, Path, description = "the job")),
    responses((status = 200, description = "the job, cancelled", body = JobEnvelope),
              (status = 401, body = crate::error::ErrorBody),
              (status = 404, body = crate::error::ErrorBody),
              (status = 409, description = "it ended otherwise first", body = CancelConflict)))]
pub async fn cancel(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
) -> Result<axum::response::Response, ApiError> {
    use super::cancel::Cancel;
    use axum::response::IntoResponse;
    match super::cancel::cancel(&state, &caller.client, &id).await? {
        None => Err(ApiError::NotFound("Job not found.")),
        Some(Cancel::Now(row)) => Ok(Json(JobEnvelope {
            job: row.into(),
            reused: false,
        })
        .into_response()),
        Some(Cancel::Already(row)) => Ok(Json(JobEnvelope {
            job: row.into(),
            reused: true,
        })
        .into_response()),
        Some(Cancel::Finished(row)) => Ok((
            StatusCode::CONFLICT,
            Json(CancelConflict {
                error: format!("the job already {}", row.status),
                status: row.status.clone(),
                job: row.into(),
            }),
        )
            .into_response()),
    }
}

/// One job.
#[utoipa::path(get, path = "/api/v1/jobs/{id}", tag = "jobs",
    responses((status = 200, body = Job), (status = 401, body = crate::error::ErrorBody),
              (status = 404, body = crate::error::ErrorBody)))]
pub async fn get(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
) -> Result<Json<Job>, ApiError> {
    let row = store::get(&state.pool, &caller.client, &id)
        .await?
        .ok_or(ApiError::NotFound("Job not found."))?;
    Ok(Json(row.into()))
}

#[derive(Deserialize, IntoParams)]
pub struct JobQuery {
    /// `queued`, `running`, `succeeded`, `failed`, `expired` or `cancelled`.
    status: Option<String>,
    capability: Option<String>,
    /// 1–200, default 50.
    limit: Option<String>,
    /// ISO time: only jobs created before it (for paging).
    before: Option<String>,
}

/// This client's jobs, newest first.
#[utoipa::path(get, path = "/api/v1/jobs", params(JobQuery), tag = "jobs",
    responses((status = 200, body = JobList), (status = 400, body = crate::error::ErrorBody),
              (status = 401, body = crate::error::ErrorBody)))]
pub async fn list(
    State(state): State<AppState>,
    caller: Caller,
    Query(query): Query<JobQuery>,
) -> Result<Json<JobList>, ApiError> {
    let limit = check_limit(query.limit.as_deref())?;
    if let Some(status) = &query.status
        && !STATUSES.contains(&status.as_str())
    {
        return Err(ApiError::BadRequest(format!(
            "status: {status:?} is not one of {}",
            STATUSES.join(", ")
        )));
    }
    if let Some(capability) = &query.capability
        && !CAPABILITIES.contains(&capability.as_str())
    {
        return Err(ApiError::BadRequest(format!(
            "capability: {capability:?} is not one of {}",
            CAPABILITIES.join(", ")
        )));
    }
    let before = check_before(query.before.as_deref(), |raw| {
        atelier_kit::ids::JobId::parse(raw).is_some()
    })?;
    let filter = ListFilter {
        status: query.status,
        capability: query.capability,
        before,
        limit,
    };
    let rows = store::list(&state.pool, &caller.client, &filter).await?;
    let next_before = (rows.len() as i64 == limit)
        .then(|| rows.last().map(|r| r.id.clone()))
        .flatten();
    Ok(Json(JobList {
        jobs: rows.into_iter().map(Job::from).collect(),
        next_before,
    }))
}
