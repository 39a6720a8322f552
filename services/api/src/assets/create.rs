//! `POST /api/v1/assets`: multipart upload (`files=@...`, several files at once) or JSON
//! registration of an external URL (`{"url", "name", "kind"}`). Either way the bytes are
//! streamed into the bucket under `inputs/<client>/<asset>/<name>`, and the records are
//! written only once every file is stored: a refused request leaves nothing behind.

use atelier_kit::ids::AssetId;
use axum::{
    Json,
    extract::{FromRequest, Multipart, Request, State},
    http::{StatusCode, header},
};
use std::{sync::Arc, time::Duration};

use futures::{Stream, StreamExt};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::{
    Asset, AssetRow, COLUMNS,
    bounded::{self, Bounded, Crossed, Meter},
    ingest::{self, IngestError, IngestLimits, Stored},
};
use crate::{AppState, auth::Caller, error::ApiError};

/// Largest JSON registration body.
const MAX_REGISTRATION_JSON: usize = 16 * 1024;

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RegisterAsset {
    /// An http(s) URL; fetched once through the SSRF-guarded client.
    pub url: String,
    #[serde(default)]
    pub name: Option<String>,
    /// `image`, `video` or `audio`; checked against the content.
    #[serde(default)]
    pub kind: Option<String>,
}

#[derive(Serialize, ToSchema)]
pub struct CreatedAssets {
    pub assets: Vec<Asset>,
}

impl From<IngestError> for ApiError {
    fn from(err: IngestError) -> Self {
        match err {
            IngestError::Refused(message) => ApiError::BadRequest(message),
            IngestError::TooLarge(_) => ApiError::PayloadTooLarge(err.to_string()),
            IngestError::Source(message) => ApiError::BadRequest(message),
            IngestError::Storage(source) => ApiError::Internal(source),
        }
    }
}

/// A safe object name: the last path segment, limited to a plain character set.
pub fn clean_name(raw: &str) -> String {
    let last = raw.rsplit(['/', '\\']).next().unwrap_or_default();
    let cleaned: String = last
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || ".-_".contains(c) {
                c
            } else {
                '_'
            }
        })
        .take(100)
        .collect();
    let cleaned = cleaned.trim_start_matches('.').to_owned();
    if cleaned.is_empty() {
        "upload".to_owned()
    } else {
        cleaned
    }
}

fn limits(state: &AppState, max_bytes: u64) -> IngestLimits {
    IngestLimits {
        max_bytes,
        max_dimension: state.config.max_image_dimension,
        max_pixels: state.config.max_image_pixels,
    }
}

/// Upload files or register a URL; answers `201 {"assets": [...]}`.
#[utoipa::path(post, path = "/api/v1/assets", tag = "assets",
    request_body(content = RegisterAsset, description = "JSON registration, or multipart/form-data with one or more `files` fields"),
    responses((status = 201, body = CreatedAssets), (status = 400, body = crate::error::ErrorBody),
              (status = 401, body = crate::error::ErrorBody), (status = 413, body = crate::error::ErrorBody)))]
pub async fn create(
    State(state): State<AppState>,
    caller: Caller,
    request: Request,
) -> Result<(StatusCode, Json<CreatedAssets>), ApiError> {
    let content_type = request
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_ascii_lowercase();
    // Refuse an announced oversize body before reading any of it.
    let declared = request
        .headers()
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    if declared.is_some_and(|n| n > state.config.max_upload_bytes + 64 * 1024) {
        let refusal = ApiError::PayloadTooLarge(format!(
            "the request is larger than the {} byte upload limit",
            state.config.max_upload_bytes
        ));
        // A client that asked `Expect: 100-continue` has sent nothing yet and never will.
        if !request.headers().contains_key(header::EXPECT) {
            linger(request.into_body().into_data_stream()).await;
        }
        return Err(refusal);
    }
    let stored = if content_type.starts_with("multipart/form-data") {
        // The body is bounded before the parser sees it: whole, and what the parser buffers.
        let meter = Arc::new(Meter::default());
        let whole = state.config.max_upload_bytes + 64 * 1024;
        let (parts, body) = request.into_parts();
        let body = Bounded::new(body.into_data_stream(), meter.clone(), whole);
        let request = Request::from_parts(parts, axum::body::Body::from_stream(body));
        let mut multipart = Multipart::from_request(request, &state)
            .await
            .map_err(|err| ApiError::BadRequest(format!("multipart body: {err}")))?;
        match upload(&state, &caller, &mut multipart, &meter).await {
            Ok(stored) => stored,
            Err(err) => {
                let drained = meter.clone();
                linger(futures::stream::unfold(multipart, move |mut multipart| {
                    let meter = drained.clone();
                    async move {
                        let mut field = multipart.next_field().await.ok()??;
                        while let Ok(Some(chunk)) = field.chunk().await {
                            meter.handed_out(chunk.len());
                        }
                        drop(field);
                        Some((Ok::<_, axum::Error>(axum::body::Bytes::new()), multipart))
                    }
                }))
                .await;
                return Err(bound_refusal(&state, &meter).unwrap_or(err));
            }
        }
    } else if content_type.starts_with("application/json") {
        let body = axum::body::to_bytes(request.into_body(), MAX_REGISTRATION_JSON)
            .await
            .map_err(|_| ApiError::PayloadTooLarge("registration body too large".into()))?;
        let registration: RegisterAsset = serde_json::from_slice(&body)
            .map_err(|err| ApiError::BadRequest(format!("request body: {err}")))?;
        vec![register(&state, &caller, registration).await?]
    } else {
        return Err(ApiError::BadRequest(
            "Content-Type: use multipart/form-data (files=@...) or application/json ({\"url\": ...})"
                .into(),
        ));
    };
    let assets = record(&state, &caller, stored).await?;
    Ok((StatusCode::CREATED, Json(CreatedAssets { assets })))
}

/// One stored file waiting for its record.
pub struct Pending {
    id: AssetId,
    name: String,
    source_url: Option<String>,
    stored: Stored,
}

/// How long, and how much more of a refused body, is read before the connection closes.
const LINGER_TIME: Duration = Duration::from_secs(3);
const LINGER_BYTES: usize = 64 * 1024 * 1024;

/// Reads and discards what is left of a refused request body, within bounds, before answering.
///
/// Answering while the client is still writing makes the server close a connection with unread
/// data, which resets it: most clients then report a broken pipe and never see the 413 or 400.
/// Reading on for a while (nginx's lingering close) lets them read the answer.
async fn linger<S, E>(body: S)
where
    S: Stream<Item = Result<axum::body::Bytes, E>>,
{
    let drain = async {
        let mut body = std::pin::pin!(body);
        let mut read = 0;
        while let Some(Ok(chunk)) = body.next().await {
            read += chunk.len();
            if read > LINGER_BYTES {
                break;
            }
        }
    };
    let _ = tokio::time::timeout(LINGER_TIME, drain).await;
}

/// The refusal for a body that crossed one of its bounds, if it did.
fn bound_refusal(state: &AppState, meter: &Meter) -> Option<ApiError> {
    meter.crossed().map(|crossed| match crossed {
        Crossed::Whole => ApiError::PayloadTooLarge(format!(
            "the request is larger than the {} byte upload limit",
            state.config.max_upload_bytes
        )),
        Crossed::Framing => ApiError::BadRequest(format!(
            "multipart body: more than {} bytes of boundaries, part headers and non-file fields \
             (is the boundary missing?)",
            bounded::FRAMING_BUDGET
        )),
    })
}

/// Fields of any kind in one multipart body.
const MAX_FIELDS: usize = 64;

async fn upload(
    state: &AppState,
    caller: &Caller,
    multipart: &mut Multipart,
    meter: &Arc<Meter>,
) -> Result<Vec<Pending>, ApiError> {
    let mut done: Vec<Pending> = Vec::new();
    let mut budget = state.config.max_upload_bytes;
    let mut fields = 0;
    loop {
        let field = match multipart.next_field().await {
            Ok(Some(field)) => field,
            Ok(None) => break,
            Err(err) => {
                discard(state, &done).await;
                return Err(bound_refusal(state, meter)
                    .unwrap_or_else(|| ApiError::BadRequest(format!("multipart body: {err}"))));
            }
        };
        fields += 1;
        if fields > MAX_FIELDS {
            discard(state, &done).await;
            return Err(ApiError::BadRequest(format!(
                "multipart body: more than {MAX_FIELDS} fields"
            )));
        }
        // Like an unknown JSON field: a mistake the partner wants to hear about, not an
        // upload silently missing.
        if !matches!(field.name(), Some("files" | "file")) {
            discard(state, &done).await;
            return Err(ApiError::BadRequest(format!(
                "multipart body: field {:?} is not files",
                field.name().unwrap_or_default()
            )));
        }
        let id = AssetId::generate();
        let name = clean_name(field.file_name().unwrap_or("upload"));
        let key = format!("inputs/{}/{id}/{name}", caller.client);
        let counted = meter.clone();
        let chunks = field.map(move |chunk| {
            if let Ok(bytes) = &chunk {
                counted.handed_out(bytes.len());
            }
            chunk.map_err(|err| format!("reading the upload: {err}"))
        });
        let result = ingest::ingest(
            &state.storage,
            &key,
            Box::pin(chunks),
            &limits(state, budget),
        )
        .await;
        match result {
            Ok(stored) => {
                budget -= stored.size;
                done.push(Pending {
                    id,
                    name,
                    source_url: None,
                    stored,
                });
            }
            Err(err) => {
                discard(state, &done).await;
                let err = match err {
                    IngestError::Refused(message) => {
                        IngestError::Refused(format!("{name}: {message}"))
                    }
                    other => other,
                };
                return Err(err.into());
            }
        }
    }
    if done.is_empty() {
        return Err(ApiError::BadRequest(
            "files: no file in the multipart body".into(),
        ));
    }
    Ok(done)
}

async fn register(
    state: &AppState,
    caller: &Caller,
    registration: RegisterAsset,
) -> Result<Pending, ApiError> {
    let url = url::Url::parse(&registration.url)
        .map_err(|err| ApiError::BadRequest(format!("url: {err}")))?;
    if let Some(kind) = &registration.kind
        && !["image", "video", "audio"].contains(&kind.as_str())
    {
        return Err(ApiError::BadRequest(format!(
            "kind: {kind:?} is not one of image, video, audio"
        )));
    }
    state
        .guard
        .check_url(&url)
        .map_err(|err| ApiError::BadRequest(format!("url: {err}")))?;
    let fetch_error =
        |reason: String| ApiError::BadRequest(format!("url: fetching {url} failed: {reason}"));
    let response = state
        .guard
        .client()
        .get(url.clone())
        .send()
        .await
        .map_err(|err| fetch_error(atelier_netguard::FetchError::from_reqwest(&err).to_string()))?;
    let status = response.status();
    if !status.is_success() {
        let reason = if status.is_redirection() {
            format!("answered {} (redirects are not followed)", status.as_u16())
        } else {
            format!("answered {}", status.as_u16())
        };
        return Err(fetch_error(reason));
    }
    let max = state.config.max_register_bytes;
    if response.content_length().is_some_and(|n| n > max) {
        return Err(ApiError::PayloadTooLarge(format!(
            "url: the file is larger than the {max} byte limit"
        )));
    }
    let id = AssetId::generate();
    let name = clean_name(registration.name.as_deref().unwrap_or(url.path()));
    let key = format!("inputs/{}/{id}/{name}", caller.client);
    let chunks = response.bytes_stream().map(|chunk| {
        chunk.map_err(|err| {
            format!(
                "fetching failed: {}",
                atelier_netguard::FetchError::from_reqwest(&err)
            )
        })
    });
    let stored = ingest::ingest(&state.storage, &key, Box::pin(chunks), &limits(state, max))
        .await
        .map_err(|err| match err {
            IngestError::Refused(message) | IngestError::Source(message) => {
                ApiError::BadRequest(format!("url: {url}: {message}"))
            }
            other => other.into(),
        })?;
    if let Some(kind) = &registration.kind
        && kind != stored.media.kind().as_str()
    {
        discard_keys(state, std::slice::from_ref(&stored.key)).await;
        return Err(ApiError::BadRequest(format!(
            "kind: declared {kind} but the content is {}",
            stored.media.mime()
        )));
    }
    Ok(Pending {
        id,
        name,
        source_url: Some(url.to_string()),
        stored,
    })
}

/// Writes every record in one transaction; if that fails the objects are removed.
async fn record(
    state: &AppState,
    caller: &Caller,
    pending: Vec<Pending>,
) -> Result<Vec<Asset>, ApiError> {
    let keys: Vec<String> = pending.iter().map(|p| p.stored.key.clone()).collect();
    let state2 = state.clone();
    let client = caller.client.clone();
    // Its own task: a client hanging up now must not cut the transaction short.
    let written = tokio::spawn(async move {
        let mut tx = state2.pool.begin().await?;
        let mut rows = Vec::new();
        for p in pending {
            let row: AssetRow = sqlx::query_as(sqlx::AssertSqlSafe(format!(
                "INSERT INTO assets (id, client_id, role, kind, name, s3_key, content_type,
                                     size_bytes, sha256, width, height, source_url, expires_at)
                 VALUES ($1, $2, 'input', $3, $4, $5, $6, $7, $8, $9, $10, $11, now() + $12)
                 RETURNING {COLUMNS}"
            )))
            .bind(p.id.as_str())
            .bind(client.as_str())
            .bind(p.stored.media.kind().as_str())
            .bind(&p.name)
            .bind(&p.stored.key)
            .bind(p.stored.media.mime())
            .bind(p.stored.size as i64)
            .bind(&p.stored.sha256)
            .bind(p.stored.width.map(|w| w as i32))
            .bind(p.stored.height.map(|h| h as i32))
            .bind(&p.source_url)
            .bind(state2.config.asset_retention)
            .fetch_one(&mut *tx)
            .await?;
            rows.push(row);
        }
        tx.commit().await?;
        Ok::<_, sqlx::Error>(rows)
    })
    .await
    .map_err(|err| ApiError::Internal(err.into()))?;
    match written {
        Ok(rows) => Ok(rows.into_iter().map(Asset::from).collect()),
        Err(err) => {
            discard_keys(state, &keys).await;
            Err(err.into())
        }
    }
}

async fn discard(state: &AppState, done: &[Pending]) {
    let keys: Vec<String> = done.iter().map(|p| p.stored.key.clone()).collect();
    discard_keys(state, &keys).await;
}

/// Removes objects of a refused request; a failure is logged and left to retention.
pub async fn discard_keys(state: &AppState, keys: &[String]) {
    for key in keys {
        if let Err(err) = state
            .storage
            .client
            .delete_object()
            .bucket(&state.storage.bucket)
            .key(key)
            .send()
            .await
        {
            tracing::warn!(key, error = %aws_sdk_s3::error::DisplayErrorContext(&err), "orphan object not removed");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::clean_name;

    #[test]
    fn names_are_reduced_to_a_safe_last_segment() {
        assert_eq!(clean_name("./reference.png"), "reference.png");
        assert_eq!(clean_name("/a/b/../../etc/passwd"), "passwd");
        assert_eq!(clean_name("C:\\x\\产品 图.png"), "____.png");
        assert_eq!(clean_name(".."), "upload");
        assert_eq!(clean_name(""), "upload");
    }
}
