//! Assets: the files jobs read and write. Upload and registration live in `create`,
//! the streaming ingest in `ingest`; here are the reads (download streamed from S3 with
//! `Range` support, never buffered whole) and deletion; `retention` expires assets and runs
//! the `orphans` sweep.

mod bounded;
pub mod create;
pub mod ingest;
mod orphans;
mod retention;

pub use retention::retention;

use atelier_kit::ids::{AssetId, ClientId};
use axum::{
    Json,
    body::Body,
    extract::{Path, Query, State},
    http::{HeaderMap, HeaderValue, StatusCode, header},
    response::{IntoResponse, Response},
};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use sqlx::AssertSqlSafe;
use tokio_util::io::ReaderStream;
use utoipa::{IntoParams, ToSchema};

use crate::{AppState, auth::Caller, error::ApiError};

pub(crate) const COLUMNS: &str = "id, client_id, job_id, role, kind, name, s3_key, content_type, \
                       size_bytes, sha256, width, height, source_url, created_at, expires_at";

#[derive(sqlx::FromRow)]
pub(crate) struct AssetRow {
    id: String,
    #[allow(dead_code)]
    client_id: String,
    job_id: Option<String>,
    role: String,
    kind: String,
    name: String,
    s3_key: String,
    content_type: String,
    size_bytes: i64,
    sha256: String,
    width: Option<i32>,
    height: Option<i32>,
    source_url: Option<String>,
    created_at: DateTime<Utc>,
    expires_at: Option<DateTime<Utc>>,
}

#[derive(Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct Asset {
    pub id: String,
    /// `image`, `video` or `audio`.
    pub kind: String,
    /// `output` (made by a job) or `input`.
    pub role: String,
    pub name: String,
    pub content_type: String,
    pub size: i64,
    pub sha256: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub width: Option<i32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub height: Option<i32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub job_id: Option<String>,
    /// Where a registered asset was fetched from.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub source_url: Option<String>,
    /// Relative download URL (same authentication); usable in `inputUrls` / `imageUrls`
    /// as an absolute URL, or pass the id in `inputAssetIds`.
    pub url: String,
    pub created_at: DateTime<Utc>,
    /// When retention deletes it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub expires_at: Option<DateTime<Utc>>,
}

impl From<AssetRow> for Asset {
    fn from(row: AssetRow) -> Self {
        Asset {
            url: format!("/api/v1/assets/{}/download", row.id),
            id: row.id,
            kind: row.kind,
            role: row.role,
            name: row.name,
            content_type: row.content_type,
            size: row.size_bytes,
            sha256: row.sha256,
            width: row.width,
            height: row.height,
            job_id: row.job_id,
            source_url: row.source_url,
            created_at: row.created_at,
            expires_at: row.expires_at,
        }
    }
}

#[derive(Deserialize, IntoParams)]
pub struct AssetQuery {
    /// `image`, `video` or `audio`.
    kind: Option<String>,
    /// 1–200, default 50.
    limit: Option<String>,
    /// `nextBefore` of the previous page (an asset id), or an ISO time: only assets before it.
    before: Option<String>,
}

#[derive(Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct AssetList {
    pub assets: Vec<Asset>,
    /// Pass as `before` to get the next page (the last asset's id); absent on the last page.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub next_before: Option<String>,
}

async fn find(state: &AppState, client: &ClientId, id: &str) -> Result<AssetRow, ApiError> {
    if AssetId::parse(id).is_none() {
        return Err(ApiError::NotFound("Asset not found."));
    }
    sqlx::query_as(AssertSqlSafe(format!(
        "SELECT {COLUMNS} FROM assets WHERE id = $1 AND client_id = $2 AND deleted_at IS NULL"
    )))
    .bind(id)
    .bind(client.as_str())
    .fetch_optional(&state.pool)
    .await?
    .ok_or(ApiError::NotFound("Asset not found."))
}

/// The assets this API client can access, newest first.
#[utoipa::path(get, path = "/api/v1/assets", params(AssetQuery), tag = "assets",
    responses((status = 200, body = AssetList), (status = 400, body = crate::error::ErrorBody),
              (status = 401, body = crate::error::ErrorBody)))]
pub async fn list(
    State(state): State<AppState>,
    caller: Caller,
    Query(query): Query<AssetQuery>,
) -> Result<Json<AssetList>, ApiError> {
    let limit = crate::jobs::routes::check_limit(query.limit.as_deref())?;
    let before = crate::jobs::routes::check_before(query.before.as_deref(), |raw| {
        AssetId::parse(raw).is_some()
    })?;
    let (before_time, before_row) = crate::jobs::store::Before::binds(before.as_ref());
    if let Some(kind) = &query.kind
        && !["image", "video", "audio"].contains(&kind.as_str())
    {
        return Err(ApiError::BadRequest(format!(
            "kind: {kind:?} is not one of image, video, audio"
        )));
    }
    let rows: Vec<AssetRow> = sqlx::query_as(AssertSqlSafe(format!(
        "SELECT {COLUMNS} FROM assets
         WHERE client_id = $1 AND deleted_at IS NULL AND ($2::text IS NULL OR kind = $2)
           AND ($3::timestamptz IS NULL OR created_at < $3)
           AND ($5::text IS NULL OR (created_at, id) <
                (SELECT created_at, id FROM assets WHERE id = $5 AND client_id = $1))
         ORDER BY created_at DESC, id DESC LIMIT $4"
    )))
    .bind(caller.client.as_str())
    .bind(&query.kind)
    .bind(before_time)
    .bind(limit)
    .bind(before_row)
    .fetch_all(&state.pool)
    .await?;
    let next_before = (rows.len() as i64 == limit)
        .then(|| rows.last().map(|r| r.id.clone()))
        .flatten();
    Ok(Json(AssetList {
        assets: rows.into_iter().map(Asset::from).collect(),
        next_before,
    }))
}

/// One asset.
#[utoipa::path(get, path = "/api/v1/assets/{id}", tag = "assets",
    responses((status = 200, body = Asset), (status = 401, body = crate::error::ErrorBody),
              (status = 404, body = crate::error::ErrorBody)))]
pub async fn get(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
) -> Result<Json<Asset>, ApiError> {
    Ok(Json(find(&state, &caller.client, &id).await?.into()))
}

/// What a `Range` header asks of a file of a known size.
#[derive(Debug, PartialEq)]
pub enum Wanted {
    Whole,
    /// First and last byte, both inside the file.
    Part(u64, u64),
    Unsatisfiable,
}

/// A single `bytes=` range, resolved against the file's size so storage is only ever asked
/// for bytes that exist (a suffix longer than the file is the whole file, RFC 9110 14.1.2);
/// anything else (several ranges, junk, last before first) is ignored and the whole file
/// served, as RFC 9110 allows.
pub fn wanted_range(header: Option<&str>, size: u64) -> Wanted {
    let Some(spec) = header.and_then(|h| h.trim().strip_prefix("bytes=")) else {
        return Wanted::Whole;
    };
    let Some((first_text, last_text)) = spec.split_once('-') else {
        return Wanted::Whole;
    };
    let number = |s: &str| {
        (!s.is_empty() && s.chars().all(|c| c.is_ascii_digit()))
            .then(|| s.parse::<u64>().unwrap_or(u64::MAX))
    };
    match (number(first_text), number(last_text)) {
        // `bytes=first-last` and `bytes=first-`.
        (Some(first), last) if last.is_some() || last_text.is_empty() => {
            if last.is_some_and(|last| last < first) {
                Wanted::Whole
            } else if first >= size {
                Wanted::Unsatisfiable
            } else {
                Wanted::Part(first, last.map_or(size - 1, |last| last.min(size - 1)))
            }
        }
        // `bytes=-suffix`: the last `suffix` bytes.
        (None, Some(suffix)) if first_text.is_empty() => {
            if suffix == 0 || size == 0 {
                Wanted::Unsatisfiable
            } else {
                Wanted::Part(size.saturating_sub(suffix), size - 1)
            }
        }
        _ => Wanted::Whole,
    }
}

/// The asset's bytes, streamed from storage; `Range: bytes=a-b` answers 206.
#[utoipa::path(get, path = "/api/v1/assets/{id}/download", tag = "assets",
    responses((status = 200, description = "the file", content_type = "application/octet-stream"),
              (status = 206, description = "the requested range"),
              (status = 401, body = crate::error::ErrorBody),
              (status = 404, body = crate::error::ErrorBody),
              (status = 416, description = "no byte of the range is in the file",
               body = crate::error::ErrorBody)))]
pub async fn download(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    let asset = find(&state, &caller.client, &id).await?;
    let wanted = wanted_range(
        headers.get(header::RANGE).and_then(|v| v.to_str().ok()),
        u64::try_from(asset.size_bytes).unwrap_or(0),
    );
    let range = match wanted {
        Wanted::Whole => None,
        Wanted::Part(first, last) => Some(format!("bytes={first}-{last}")),
        Wanted::Unsatisfiable => return Ok(unsatisfiable(asset.size_bytes)),
    };
    let object = state
        .storage
        .client
        .get_object()
        .bucket(&state.storage.bucket)
        .key(&asset.s3_key)
        .set_range(range.clone())
        .send()
        .await;
    let object = match object {
        Ok(object) => object,
        Err(err)
            if err
                .raw_response()
                .is_some_and(|r| r.status().as_u16() == 416) =>
        {
            return Ok(unsatisfiable(asset.size_bytes));
        }
        // A live row whose object is gone (deleted behind the api's back, or a retention
        // race): for the partner the asset no longer exists.
        Err(err) if err.as_service_error().is_some_and(|e| e.is_no_such_key()) => {
            tracing::warn!(asset.id = %asset.id, key = %asset.s3_key, "the asset's object is missing");
            return Err(ApiError::NotFound("Asset not found."));
        }
        Err(err) => {
            return Err(ApiError::Internal(
                anyhow::Error::new(err).context(format!("reading {}", asset.s3_key)),
            ));
        }
    };
    let partial = range.is_some() && object.content_range().is_some();
    let length = object.content_length().unwrap_or(asset.size_bytes);
    let content_range = object.content_range().map(str::to_owned);
    let body = Body::from_stream(ReaderStream::new(object.body.into_async_read()));
    let mut response = body.into_response();
    if partial {
        *response.status_mut() = StatusCode::PARTIAL_CONTENT;
        if let Some(value) = content_range.and_then(|v| HeaderValue::from_str(&v).ok()) {
            response.headers_mut().insert(header::CONTENT_RANGE, value);
        }
    }
    let headers = response.headers_mut();
    let content_type = HeaderValue::from_str(&asset.content_type)
        .unwrap_or(HeaderValue::from_static("application/octet-stream"));
    headers.insert(header::CONTENT_TYPE, content_type);
    headers.insert(header::CONTENT_LENGTH, HeaderValue::from(length));
    headers.insert(header::ACCEPT_RANGES, HeaderValue::from_static("bytes"));
    headers.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    let name = create::clean_name(&asset.name);
    if let Ok(value) = HeaderValue::from_str(&format!("attachment; filename=\"{name}\"")) {
        headers.insert(header::CONTENT_DISPOSITION, value);
    }
    Ok(response)
}

fn unsatisfiable(size: i64) -> Response {
    let mut response = StatusCode::RANGE_NOT_SATISFIABLE.into_response();
    if let Ok(value) = HeaderValue::from_str(&format!("bytes */{size}")) {
        response.headers_mut().insert(header::CONTENT_RANGE, value);
    }
    response
}

/// Delete an asset: its object is removed and it disappears from every route.
#[utoipa::path(delete, path = "/api/v1/assets/{id}", tag = "assets",
    responses((status = 204, description = "deleted"), (status = 401, body = crate::error::ErrorBody),
              (status = 404, body = crate::error::ErrorBody)))]
pub async fn delete(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
) -> Result<StatusCode, ApiError> {
    if AssetId::parse(&id).is_none() {
        return Err(ApiError::NotFound("Asset not found."));
    }
    let key: Option<String> = sqlx::query_scalar(
        "UPDATE assets SET deleted_at = now()
         WHERE id = $1 AND client_id = $2 AND deleted_at IS NULL RETURNING s3_key",
    )
    .bind(&id)
    .bind(caller.client.as_str())
    .fetch_optional(&state.pool)
    .await?;
    let key = key.ok_or(ApiError::NotFound("Asset not found."))?;
    create::discard_keys(&state, &[key]).await;
    Ok(StatusCode::NO_CONTENT)
}

#[cfg(test)]
mod tests {
    use super::{Wanted, wanted_range};

    #[test]
    fn ranges_are_resolved_against_the_size() {
        let of_100 = |header: &str| wanted_range(Some(header), 100);
        assert_eq!(of_100("bytes=0-99"), Wanted::Part(0, 99));
        assert_eq!(of_100("bytes=10-1000"), Wanted::Part(10, 99));
        assert_eq!(of_100("bytes=90-"), Wanted::Part(90, 99));
        assert_eq!(of_100("bytes=-30"), Wanted::Part(70, 99));
        // A suffix longer than the file is the whole file, as a part (RFC 9110 14.1.2).
        assert_eq!(of_100("bytes=-1405"), Wanted::Part(0, 99));
        assert_eq!(of_100("bytes=100-"), Wanted::Unsatisfiable);
        assert_eq!(of_100("bytes=1105-2148"), Wanted::Unsatisfiable);
        assert_eq!(of_100("bytes=-0"), Wanted::Unsatisfiable);
        assert_eq!(wanted_range(Some("bytes=-5"), 0), Wanted::Unsatisfiable);
        for ignored in [
            "bytes=0-1,5-9",
            "bytes=-",
            "items=0-1",
            "bytes=a-b",
            "bytes=9-3",
        ] {
            assert_eq!(of_100(ignored), Wanted::Whole, "{ignored}");
        }
        assert_eq!(wanted_range(None, 100), Wanted::Whole);
    }
}
