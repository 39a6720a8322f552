//! `GET /api/v1/limits`: a client's limits and where it stands against them.

use std::collections::BTreeMap;

use atelier_kit::ids::ClientId;
use axum::{Json, extract::State};
use serde::Serialize;
use sqlx::PgPool;
use utoipa::ToSchema;

use super::{ClientLimits, Quota};
use crate::{AppState, auth::Caller, error::ApiError};

#[derive(Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct LimitsView {
    pub rate: RateView,
    pub queued: CountView,
    /// Running jobs; the limit is per capability, counting jobs handed to workers too.
    pub running: CountView,
    /// The client's share of the workers when they are busy, relative to other clients.
    pub weight: u32,
}

/// Job creations, a token bucket shared by every face.
#[derive(Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct RateView {
    /// Creations a second, sustained.
    pub per_second: f64,
    /// Creations at once from a full bucket (`RateLimit-Limit`).
    pub burst: u32,
    /// Creations available now (`RateLimit-Remaining`).
    pub remaining: u32,
    /// Seconds until the bucket is full again (`RateLimit-Reset`).
    pub reset_seconds: u64,
}

#[derive(Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct CountView {
    /// The most allowed at once; absent where there is no cap.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub limit: Option<u32>,
    pub current: i64,
    pub by_capability: BTreeMap<String, i64>,
}

/// The caller's create rate and queued cap, and its queued and running jobs by capability.
#[utoipa::path(get, path = "/api/v1/limits", tag = "limits",
    responses((status = 200, body = LimitsView),
              (status = 401, body = crate::error::ErrorBody)))]
pub async fn limits(
    State(state): State<AppState>,
    caller: Caller,
) -> Result<Json<LimitsView>, ApiError> {
    let limits = state.config.limits.of(&caller.client);
    Ok(Json(view(&state.pool, &caller.client, &limits).await?))
}

/// What `GET /api/v1/limits` answers, also in seed 000's `GET /openapi/v1/me`.
pub async fn view(
    pool: &PgPool,
    client: &ClientId,
    limits: &ClientLimits,
) -> sqlx::Result<LimitsView> {
    let bucket = limits.bucket;
    let level: Option<(f64, f64)> = sqlx::query_as(
        "SELECT tokens, extract(epoch FROM clock_timestamp() - refilled_at)::float8
         FROM admission_buckets WHERE client_id = $1",
    )
    .bind(client.as_str())
    .fetch_optional(pool)
    .await?;
    let level = level.map_or(f64::from(bucket.burst), |(tokens, elapsed)| {
        bucket.refill(tokens, elapsed)
    });
    let quota = Quota::of(&bucket, level);
    let counts: Vec<(String, String, i64)> = sqlx::query_as(
        "SELECT status, capability, count(*) FROM jobs
         WHERE client_id = $1 AND status IN ('queued', 'running')
         GROUP BY status, capability",
    )
    .bind(client.as_str())
    .fetch_all(pool)
    .await?;
    let count = |status: &str, limit: Option<u32>| {
        let by_capability: BTreeMap<String, i64> = counts
            .iter()
            .filter(|(s, _, _)| s == status)
            .map(|(_, capability, n)| (capability.clone(), *n))
            .collect();
        CountView {
            limit,
            current: by_capability.values().sum(),
            by_capability,
        }
    };
    Ok(LimitsView {
        rate: RateView {
            per_second: bucket.rate,
            burst: bucket.burst,
            remaining: quota.remaining,
            reset_seconds: quota.reset,
        },
        queued: count("queued", Some(limits.max_queued)),
        running: count("running", limits.max_running),
        weight: limits.weight,
    })
}
