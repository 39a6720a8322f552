//! `GET /openapi/v1/me`: whose key this is, that it can create, its credits and the limits.

use axum::{Json, extract::State};
use serde_json::{Value, json};

use super::error::CreationError;
use crate::{AppState, auth::Caller, credits, error::ApiError};

/// Who the key belongs to, that it can create, its credits and the limits in force.
#[utoipa::path(get, path = "/openapi/v1/me", tag = "creations",
    responses((status = 200, description = "client_id, api_key {kind, can_create}, credits, limits, usage (as GET /api/v1/limits)", body = Object),
              (status = 401, body = super::error::ErrorBody)))]
pub async fn me(
    State(state): State<AppState>,
    caller: Result<Caller, ApiError>,
) -> Result<Json<Value>, CreationError> {
    let caller = caller?;
    let balance = credits::statement(&state.pool, caller.client.as_str(), 1)
        .await?
        .balance;
    let config = &state.config;
    let limits = config.limits.of(&caller.client);
    let usage = crate::limits::route::view(&state.pool, &caller.client, &limits).await?;
    Ok(Json(json!({
        "client_id": caller.client.as_str(),
        "user_id": caller.client.as_str(),
        "api_key": {"kind": "user", "scope": "user", "status": "active", "can_create": true},
        "permissions": ["creations:read", "creations:write"],
        "credits": {"balance": balance, "unit": "credit"},
        "limits": {
            "max_body_bytes": config.max_body_bytes,
            "prompt_max_chars": atelier_slides::catalog::PROMPT_MAX_CHARS,
            "scene_count_max": atelier_slides::catalog::SCENE_COUNT_MAX,
            "job_ttl_seconds": config.job_ttl.as_secs(),
            "run_timeout_seconds": config.run_timeout.as_secs(),
            "max_attempts": config.max_attempts,
            // Creations a minute, sustained (the create bucket, shared by every face).
            "requests_per_minute": limits.bucket.rate * 60.0,
            "max_queued_jobs": limits.max_queued,
            // Per-client concurrency caps are not enforced yet (issue #16).
            "max_concurrent_jobs": null,
        },
        // Where the client stands: GET /api/v1/limits's answer.
        "usage": usage,
    })))
}
