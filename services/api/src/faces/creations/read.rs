//! The reads of the creations face: a creation's job (`/creations/jobs/{job_id}`), the
//! creation with its artifacts and scenes (`/creations/{creation_id}`), the list, `/me` and
//! `/catalog`. All are views of the shared job row, its output assets and the engine's
//! `manifest.json`; nothing here is stored twice.

use atelier_kit::ids::ClientId;
use atelier_slides::manifest::{self, Manifest};
use axum::{
    Json,
    extract::{Path, Query, State},
    http::HeaderMap,
};
use chrono::{DateTime, Utc};
use serde::Deserialize;
use serde_json::{Value, json};
use sqlx::PgPool;

use super::error::CreationError;
use crate::{AppState, auth::Caller, credits, error::ApiError, jobs::store, jobs::view::JobRow};

/// A creation's own row.
#[derive(Clone, Debug, sqlx::FromRow)]
pub struct CreationRow {
    pub id: i64,
    pub job_id: String,
    #[sqlx(rename = "type")]
    pub kind: String,
    pub created_at: DateTime<Utc>,
}

impl CreationRow {
    pub async fn of_job(
        pool: &PgPool,
        client: &ClientId,
        job_id: &str,
    ) -> sqlx::Result<Option<Self>> {
        sqlx::query_as(
            "SELECT id, job_id, type, created_at FROM creations WHERE job_id = $1 AND client_id = $2",
        )
        .bind(job_id)
        .bind(client.as_str())
        .fetch_optional(pool)
        .await
    }

    async fn by_id(pool: &PgPool, client: &ClientId, id: i64) -> sqlx::Result<Option<Self>> {
        sqlx::query_as(
            "SELECT id, job_id, type, created_at FROM creations WHERE id = $1 AND client_id = $2",
        )
        .bind(id)
        .bind(client.as_str())
        .fetch_optional(pool)
        .await
    }
}

/// The job states this face shows: `expired` reads as `failed` (with its error code), as the
/// seed's poller stops on `failed` and `cancelled` only.
fn job_status(status: &str) -> &str {
    match status {
        "expired" => "failed",
        other => other,
    }
}

/// A creation's state: `queued`, `processing`, `ready`, `failed` or `cancelled`.
fn creation_status(job_status: &str) -> &'static str {
    match job_status {
        "queued" => "queued",
        "running" => "processing",
        "succeeded" => "ready",
        "cancelled" => "cancelled",
        _ => "failed",
    }
}

/// The job object of this face.
pub fn job_view(creation: &CreationRow, job: &JobRow) -> Value {
    let step = match job.status.as_str() {
        "queued" => "queued".to_owned(),
        "succeeded" => "done".to_owned(),
        "running" => job
            .current_step
            .clone()
            .unwrap_or_else(|| "starting".to_owned()),
        other => other.to_owned(),
    };
    let error = job
        .error_code
        .as_ref()
        .filter(|_| job.status != "succeeded")
        .map(
            |code| json!({"code": code, "message": job.error_message.clone().unwrap_or_default()}),
        );
    json!({
        "job_id": job.id,
        "creation_id": creation.id,
        "type": creation.kind,
        "kind": "create",
        "status": job_status(&job.status),
        "progress_pct": if job.status == "succeeded" { 100 } else { job.progress_pct },
        "current_step": step,
        "attempt": job.attempt,
        "error": error,
        "credits": job.credits,
        "created_at": job.created_at,
        "started_at": job.started_at,
        "finished_at": job.finished_at,
        "trace_id": job.trace_id,
        "poll_after_ms": if matches!(job.status.as_str(), "queued" | "running") { Some(2000) } else { None },
    })
}

/// `{"creation_id", "type", "status", "job": {...}}`: what a create answers and a list shows.
pub fn summary(creation: &CreationRow, job: &JobRow) -> Value {
    json!({
        "creation_id": creation.id,
        "type": creation.kind,
        "status": creation_status(&job.status),
        "title": job.params.get("prompt").and_then(Value::as_str).map(|p| p.chars().take(80).collect::<String>()),
        "created_at": creation.created_at,
        "job": job_view(creation, job),
    })
}

async fn job_of(
    state: &AppState,
    client: &ClientId,
    creation: &CreationRow,
) -> Result<JobRow, CreationError> {
    store::get(&state.pool, client, &creation.job_id)
        .await?
        .ok_or_else(|| CreationError::not_found("job"))
}

/// Poll a creation's job until `status` is `succeeded`, `failed` or `cancelled`.
#[utoipa::path(get, path = "/openapi/v1/creations/jobs/{job_id}", tag = "creations",
    params(("job_id" = String, Path, description = "the job id from the create answer")),
    responses((status = 200, description = "status, progress_pct (0–100, only forward), current_step, error", body = Object),
              (status = 401, body = super::error::ErrorBody), (status = 404, body = super::error::ErrorBody)))]
pub async fn job(
    State(state): State<AppState>,
    caller: Result<Caller, ApiError>,
    Path(job_id): Path<String>,
) -> Result<Json<Value>, CreationError> {
    let caller = caller?;
    let creation = CreationRow::of_job(&state.pool, &caller.client, &job_id)
        .await?
        .ok_or_else(|| CreationError::not_found("job"))?;
    let job = job_of(&state, &caller.client, &creation).await?;
    Ok(Json(job_view(&creation, &job)))
}

/// One output asset of a job.
#[derive(sqlx::FromRow)]
struct AssetRow {
    id: String,
    position: i32,
    s3_key: String,
    content_type: String,
    size_bytes: i64,
    width: Option<i32>,
    height: Option<i32>,
}

/// Absolute URLs, so a partner can fetch `main_url` as it is: the scheme and host the
/// request came to (`X-Forwarded-Proto`/`-Host` when behind a proxy).
fn base_url(headers: &HeaderMap) -> String {
    let header = |name: &str| headers.get(name).and_then(|v| v.to_str().ok());
    let host = header("x-forwarded-host")
        .or(header("host"))
        .unwrap_or("localhost");
    let scheme = header("x-forwarded-proto").unwrap_or("http");
    format!("{scheme}://{host}")
}

async fn read_manifest(state: &AppState, key: &str) -> Result<Manifest, CreationError> {
    let object = state
        .storage
        .client
        .get_object()
        .bucket(&state.storage.bucket)
        .key(key)
        .send()
        .await
        .map_err(|err| {
            anyhow::anyhow!(
                "reading {key}: {}",
                aws_sdk_s3::error::DisplayErrorContext(&err)
            )
        })?;
    let bytes = object
        .body
        .collect()
        .await
        .map_err(|err| anyhow::anyhow!("reading {key}: {err}"))?
        .into_bytes();
    Ok(serde_json::from_slice(&bytes)
        .map_err(|err| anyhow::anyhow!("{key} is not a manifest: {err}"))?)
}

/// A creation: `main_url`, `artifacts[]` and `scenes[]` once it is ready, with its settings
/// and its job before.
#[utoipa::path(get, path = "/openapi/v1/creations/{creation_id}", tag = "creations",
    params(("creation_id" = i64, Path, description = "the creation id from the create answer")),
    responses((status = 200, description = "main_url, artifacts, scenes; null and empty until ready", body = Object),
              (status = 401, body = super::error::ErrorBody), (status = 404, body = super::error::ErrorBody)))]
pub async fn detail(
    State(state): State<AppState>,
    caller: Result<Caller, ApiError>,
    headers: HeaderMap,
    Path(creation_id): Path<String>,
) -> Result<Json<Value>, CreationError> {
    let caller = caller?;
    let id: i64 = creation_id
        .parse()
        .map_err(|_| CreationError::not_found("creation"))?;
    let creation = CreationRow::by_id(&state.pool, &caller.client, id)
        .await?
        .ok_or_else(|| CreationError::not_found("creation"))?;
    let job = job_of(&state, &caller.client, &creation).await?;
    let mut answer = summary(&creation, &job);
    let params = &job.params;
    for key in [
        "prompt",
        "language",
        "aspect_ratio",
        "quality",
        "scene_count",
        "voice",
        "style",
        "width",
        "height",
    ] {
        answer[key] = params.get(key).cloned().unwrap_or(Value::Null);
    }
    answer["updated_at"] = json!(job.updated_at);
    answer["error"] = answer["job"]["error"].clone();
    answer["main_url"] = Value::Null;
    answer["cover_url"] = Value::Null;
    answer["artifacts"] = json!([]);
    answer["scenes"] = json!([]);
    if job.status != "succeeded" {
        return Ok(Json(answer));
    }
    let assets: Vec<AssetRow> = sqlx::query_as(
        "SELECT id, position, s3_key, content_type, size_bytes, width, height FROM assets
         WHERE job_id = $1 AND role = 'output' AND deleted_at IS NULL ORDER BY position",
    )
    .bind(&job.id)
    .fetch_all(&state.pool)
    .await?;
    let base = base_url(&headers);
    let url = |asset: &AssetRow| format!("{base}/api/v1/assets/{}/download", asset.id);
    let at = |position: usize| assets.iter().find(|a| a.position as usize == position);
    let artifact = |asset: &AssetRow, kind: &str, format: &str| {
        json!({
            "artifact_id": asset.id,
            "kind": kind,
            "format": format,
            "content_type": asset.content_type,
            "url": url(asset),
            "size_bytes": asset.size_bytes,
            "width": asset.width,
            "height": asset.height,
        })
    };
    let Some(manifest_asset) = assets
        .iter()
        .rev()
        .find(|a| a.content_type == manifest::CONTENT_TYPE)
    else {
        // An image creation: its one output is the result.
        let artifacts: Vec<Value> = assets.iter().map(|a| artifact(a, "image", "png")).collect();
        answer["main_url"] = json!(assets.first().map(url));
        answer["cover_url"] = answer["main_url"].clone();
        answer["artifacts"] = json!(artifacts);
        return Ok(Json(answer));
    };
    let manifest = read_manifest(&state, &manifest_asset.s3_key).await?;
    let mut artifacts = Vec::new();
    for entry in &manifest.artifacts {
        let Some(asset) = at(entry.position) else {
            continue;
        };
        let mut value = artifact(asset, &entry.kind, &entry.format);
        value["is_main"] = json!(entry.main);
        if let Some(language) = &entry.language {
            value["language"] = json!(language);
        }
        if entry.kind == "video" {
            value["duration_seconds"] = json!(manifest.duration_seconds);
        }
        if entry.main {
            answer["main_url"] = json!(url(asset));
        }
        if entry.kind == "cover" {
            answer["cover_url"] = json!(url(asset));
        }
        artifacts.push(value);
    }
    let scenes: Vec<Value> = manifest
        .scenes
        .iter()
        .map(|scene| {
            json!({
                "scene_id": format!("scn_{}", scene.index),
                "index": scene.index,
                "title": scene.title,
                "bullets": scene.bullets,
                "narration_text": scene.narration,
                "image_url": at(scene.image).map(url),
                "audio_url": scene.audio.and_then(at).map(url),
                "start_seconds": scene.start_seconds,
                "duration_seconds": scene.duration_seconds,
                "subtitles": scene.cues,
                "status": "ready",
            })
        })
        .collect();
    answer["artifacts"] = json!(artifacts);
    answer["scenes"] = json!(scenes);
    answer["title"] = json!(manifest.title);
    answer["generator"] = json!(manifest.generator);
    answer["duration_seconds"] = json!(manifest.duration_seconds);
    Ok(Json(answer))
}

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
    let mut items = Vec::with_capacity(rows.len());
    for creation in &rows {
        let job = job_of(&state, &caller.client, creation).await?;
        items.push(summary(creation, &job));
    }
    Ok(Json(
        json!({"items": items, "page": page, "page_size": page_size, "total": total}),
    ))
}

/// Who the key belongs to, that it can create, its credits and the limits in force.
#[utoipa::path(get, path = "/openapi/v1/me", tag = "creations",
    responses((status = 200, description = "client_id, api_key {kind, can_create}, credits, limits", body = Object),
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
            // Per-client rate limits and concurrency caps are not enforced yet.
            "requests_per_minute": null,
            "max_concurrent_jobs": null,
        },
    })))
}

/// Every content type and the options this server supports for it.
#[utoipa::path(get, path = "/openapi/v1/catalog", tag = "creations",
    responses((status = 200, description = "content_types with ratios, qualities, scene counts, languages, voices, styles, prices", body = Object),
              (status = 401, body = super::error::ErrorBody)))]
pub async fn catalog(
    State(state): State<AppState>,
    caller: Result<Caller, ApiError>,
) -> Result<Json<Value>, CreationError> {
    caller?;
    Ok(Json(super::catalog::document(&state.offer)))
}
