//! The reads of one creation: its job (`/creations/jobs/{job_id}`) and the creation with its
//! artifacts and scenes (`/creations/{creation_id}`). Views of the shared job row, its output
//! assets and the engine's `manifest.json`; nothing here is stored twice.

use atelier_slides::manifest::{self, Manifest};
use axum::{
    Json,
    extract::{Path, State},
    http::HeaderMap,
};
use serde_json::{Value, json};

use super::error::CreationError;
use super::view::{CreationRow, job_of, job_view, summary};
use crate::{AppState, auth::Caller, error::ApiError};

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
        .await;
    let object = match object {
        Ok(object) => object,
        // Its row was live when read, its object is gone (retention between the two reads,
        // or a delete behind the api's back): the creation's files no longer exist.
        Err(err) if err.as_service_error().is_some_and(|e| e.is_no_such_key()) => {
            tracing::warn!(%key, "a creation's manifest object is missing");
            return Err(CreationError::not_found("creation files"));
        }
        Err(err) => {
            return Err(anyhow::anyhow!(
                "reading {key}: {}",
                aws_sdk_s3::error::DisplayErrorContext(&err)
            )
            .into());
        }
    };
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
