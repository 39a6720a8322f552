//! `GET /openapi/v1/creations`: the caller's creations, newest first, a page at a time.

use std::collections::HashMap;

use axum::{
    Json,
    extract::{Query, State},
};
use serde::Deserialize;
use serde_json::{Value, json};
use sqlx::AssertSqlSafe;

use super::error::CreationError;
use super::view::{CreationRow, summary};
use crate::{
    AppState,
    auth::Caller,
    error::ApiError,
    jobs::view::{JOB_COLUMNS, JobRow},
};

#[derive(Deserialize)]
pub struct ListQuery {
    page: Option<String>,
    page_size: Option<String>,
    #[serde(rename = "type")]
    kind: Option<String>,
    status: Option<String>,
}

fn number(
    field: &str,
    raw: Option<&str>,
    default: i64,
    range: std::ops::RangeInclusive<i64>,
) -> Result<i64, CreationError> {
    let Some(raw) = raw else { return Ok(default) };
    raw.parse::<i64>()
        .ok()
        .filter(|n| range.contains(n))
        .ok_or_else(|| {
            CreationError::invalid(
                field,
                format!(
                    "{field}: must be a whole number from {} to {}",
                    range.start(),
                    range.end()
                ),
                None,
            )
        })
}

/// The caller's creations, newest first, a page at a time.
#[utoipa::path(get, path = "/openapi/v1/creations", tag = "creations",
    params(("page" = Option<i64>, Query, description = "1 or more (default 1)"),
           ("page_size" = Option<i64>, Query, description = "1–100 (default 20)"),
           ("type" = Option<String>, Query, description = "a content type"),
           ("status" = Option<String>, Query, description = "queued, processing, ready, failed or cancelled")),
    responses((status = 200, description = "{items, page, page_size, total}", body = Object),
              (status = 400, body = super::error::ErrorBody), (status = 401, body = super::error::ErrorBody)))]
pub async fn list(
    State(state): State<AppState>,
    caller: Result<Caller, ApiError>,
    Query(query): Query<ListQuery>,
) -> Result<Json<Value>, CreationError> {
    let caller = caller?;
    let page = number("page", query.page.as_deref(), 1, 1..=1_000_000)?;
    let page_size = number("page_size", query.page_size.as_deref(), 20, 1..=100)?;
    // Creation states map back to the job states they come from.
    let statuses: Option<Vec<&str>> = match query.status.as_deref() {
        None => None,
        Some("queued") => Some(vec!["queued"]),
        Some("processing") => Some(vec!["running"]),
        Some("ready") => Some(vec!["succeeded"]),
        Some("failed") => Some(vec!["failed", "expired"]),
        Some("cancelled") => Some(vec!["cancelled"]),
        Some(other) => {
            let allowed = ["queued", "processing", "ready", "failed", "cancelled"];
            return Err(CreationError::invalid(
                "status",
                format!("status: {other:?} is not one of {}", allowed.join(", ")),
                Some(allowed.map(String::from).to_vec()),
            ));
        }
    };
    let total: i64 = sqlx::query_scalar(
        "SELECT count(*) FROM creations c JOIN jobs j ON j.id = c.job_id
         WHERE c.client_id = $1 AND ($2::text IS NULL OR c.type = $2)
           AND ($3::text[] IS NULL OR j.status = ANY($3))",
    )
    .bind(caller.client.as_str())
    .bind(&query.kind)
    .bind(&statuses)
    .fetch_one(&state.pool)
    .await?;
    let rows: Vec<CreationRow> = sqlx::query_as(
        "SELECT c.id, c.job_id, c.type, c.created_at FROM creations c JOIN jobs j ON j.id = c.job_id
         WHERE c.client_id = $1 AND ($2::text IS NULL OR c.type = $2)
           AND ($3::text[] IS NULL OR j.status = ANY($3))
         ORDER BY c.id DESC LIMIT $4 OFFSET $5",
    )
    .bind(caller.client.as_str())
    .bind(&query.kind)
    .bind(&statuses)
    .bind(page_size)
    .bind((page - 1) * page_size)
    .fetch_all(&state.pool)
    .await?;
    // The page's jobs in one read.
    let ids: Vec<&str> = rows.iter().map(|c| c.job_id.as_str()).collect();
    let jobs: Vec<JobRow> = sqlx::query_as(AssertSqlSafe(format!(
        "SELECT {JOB_COLUMNS} FROM jobs WHERE id = ANY($1) AND client_id = $2"
    )))
    .bind(&ids)
    .bind(caller.client.as_str())
    .fetch_all(&state.pool)
    .await?;
    let jobs: HashMap<&str, &JobRow> = jobs.iter().map(|j| (j.id.as_str(), j)).collect();
    let items: Vec<Value> = rows
        .iter()
        .filter_map(|c| jobs.get(c.job_id.as_str()).map(|job| summary(c, job)))
        .collect();
    Ok(Json(
        json!({"items": items, "page": page, "page_size": page_size, "total": total}),
    ))
}
