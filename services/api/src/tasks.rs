//! The tasks API (seed 001): `POST /api/v1/tasks/create` and `GET /api/v1/tasks/{task_id}`
//! in the `{"code", "msg", "data"}` envelope. A task is a native job underneath: the model
//! maps to a capability by configuration, the request is translated and validated by the
//! same rules, and its price is charged in the transaction that accepts it.

use std::time::Duration;

use aws_sdk_s3::presigning::PresigningConfig;
use axum::{
    Json,
    extract::{Extension, Path, State},
    http::StatusCode,
    response::{IntoResponse, Response},
};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use crate::{
    AppState,
    auth::Caller,
    error::ApiError,
    http::RequestId,
    jobs::{
        request::{self, CreateJobRequest, Material, VideoSettings},
        store::{self, Created, NewJob},
        view::JobRow,
    },
};

/// How long the output links in a task answer stay valid.
const LINK_TTL: Duration = Duration::from_secs(3600);

/// The envelope every answer of this face uses.
#[derive(Serialize)]
struct Envelope {
    code: u16,
    msg: String,
    data: Value,
}

fn answer(status: StatusCode, code: u16, msg: impl Into<String>, data: Value) -> Response {
    (
        status,
        Json(Envelope {
            code,
            msg: msg.into(),
            data,
        }),
    )
        .into_response()
}

/// A business failure: HTTP 200, `code: 0`, the reason in `msg` (as the document says).
fn refused(msg: impl Into<String>) -> Response {
    answer(StatusCode::OK, 0, msg, Value::Null)
}

/// Errors of the shared machinery, in this face's envelope.
pub(crate) fn from_api_error(err: ApiError) -> Response {
    let status = err.status();
    match err {
        ApiError::BadRequest(msg)
        | ApiError::Conflict(msg)
        | ApiError::InsufficientCredits(msg) => refused(msg),
        other => {
            let message = other.to_string();
            let mut response =
                (other.headers(), answer(status, 0, message, Value::Null)).into_response();
            // Keep the cause for the request log, as the native face does.
            if let ApiError::Internal(source) = other {
                response
                    .extensions_mut()
                    .insert(crate::error::ErrorDetail(format!("{source:#}")));
            }
            response
        }
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CreateTask {
    pub model_id: String,
    #[serde(default)]
    pub prompt: Option<String>,
    #[serde(default)]
    pub image_urls: Vec<String>,
    #[serde(default)]
    pub aspect_ratio: Option<String>,
    /// Video models: seconds (4–15, default 5). An Atelier extension.
    #[serde(default, deserialize_with = "request::whole::option")]
    pub duration: Option<u32>,
    /// Video models: `480p`, `720p` (default) or `1080p`. An Atelier extension.
    #[serde(default)]
    pub resolution: Option<String>,
}

/// Output size for an image model at an aspect ratio: about a megapixel, sides multiples
/// of 64.
pub fn image_size(aspect_ratio: Option<&str>) -> Result<(u32, u32), String> {
    Ok(match aspect_ratio.unwrap_or("1:1") {
        "1:1" | "auto" => (1024, 1024),
        "16:9" => (1344, 768),
        "9:16" => (768, 1344),
        "4:3" => (1152, 896),
        "3:4" => (896, 1152),
        "3:2" => (1216, 832),
        "2:3" => (832, 1216),
        "21:9" => (1536, 640),
        other => return Err(format!("aspect_ratio: {other:?} is not supported")),
    })
}

/// Translates a task into the native request for `capability`.
pub fn translate(task: &CreateTask, capability: &str) -> Result<CreateJobRequest, String> {
    let mut request = CreateJobRequest {
        capability: capability.to_owned(),
        // The worker routes by this name (`ATELIER_ROUTES`), falling back to the
        // capability's default route when the table has no entry for it.
        model: Some(task.model_id.clone()),
        prompt: task.prompt.clone(),
        ..Default::default()
    };
    if capability == "video.generate" {
        request.materials = task
            .image_urls
            .iter()
            .enumerate()
            .map(|(i, url)| Material {
                kind: "image".to_owned(),
                url: url.clone(),
                label: Some(format!("@图片{}", i + 1)),
            })
            .collect();
        request.settings = Some(VideoSettings {
            ratio: task.aspect_ratio.clone(),
            duration: task.duration,
            resolution: task.resolution.clone(),
        });
    } else {
        if task.duration.is_some() || task.resolution.is_some() {
            return Err("duration, resolution: only for video models".to_owned());
        }
        if capability == "image.generate" {
            let (width, height) = image_size(task.aspect_ratio.as_deref())?;
            request.width = Some(width);
            request.height = Some(height);
        }
        // With image_urls given, the image models edit or compose from them.
        request.image_urls = task.image_urls.clone();
    }
    Ok(request)
}

/// Submit a task; the price is charged now and refunded if the task fails.
pub async fn create(
    State(state): State<AppState>,
    caller: Result<Caller, ApiError>,
    Extension(request_id): Extension<RequestId>,
    body: axum::body::Bytes,
) -> Response {
    let caller = match caller {
        Ok(caller) => caller,
        Err(err) => return from_api_error(err),
    };
    let task: CreateTask = match serde_json::from_slice(&body) {
        Ok(task) => task,
        Err(err) => return refused(format!("request body: {err}")),
    };
    let Some((_, capability)) = state
        .config
        .task_models
        .iter()
        .find(|(m, _)| *m == task.model_id)
    else {
        let known: Vec<&str> = state
            .config
            .task_models
            .iter()
            .map(|(m, _)| m.as_str())
            .collect();
        return refused(format!(
            "model_id: {:?} is not one of {}",
            task.model_id,
            known.join(", ")
        ));
    };
    let request = match translate(&task, capability) {
        Ok(request) => request,
        Err(msg) => return refused(msg),
    };
    let policy = atelier_netguard::NetPolicy {
        allow_private_networks: state.config.allow_private_networks,
    };
    let request = match request::validate(request, &policy) {
        Ok(request) => request,
        Err(invalid) => return refused(invalid.0),
    };
    let video = request
        .settings
        .as_ref()
        .filter(|_| request.capability == "video.generate")
        .and_then(|s| Some((s.duration?, s.resolution.clone()?)));
    let Some(price) = state.config.prices.price(
        &task.model_id,
        video.as_ref().map(|(d, r)| (*d, r.as_str())),
    ) else {
        return refused(format!(
            "model_id: {:?} has no price configured",
            task.model_id
        ));
    };
    let hash = store::request_hash(&serde_json::to_value(&request).unwrap_or_default());
    let new = match NewJob::native(caller.client, &request, hash, None, request_id.0.clone()) {
        Ok(new) => NewJob {
            model_id: Some(task.model_id),
            credits: price,
            ..new
        },
        Err(err) => return from_api_error(err),
    };
    match store::create_detached(state, new).await {
        Ok(created) => {
            let quota = created.quota_headers();
            let (Created::New(row, _) | Created::Reused(row)) = created;
            let data =
                json!({"task_id": row.id, "request_id": request_id.0, "credits": row.credits});
            (
                quota,
                answer(StatusCode::OK, 200, "提交成功,等待生成", data),
            )
                .into_response()
        }
        Err(err) => from_api_error(err),
    }
}

/// `task_status`: 1 queued, 2 running, 3 succeeded, 4 failed (also expired and cancelled).
pub fn task_status(status: &str) -> u8 {
    match status {
        "queued" => 1,
        "running" => 2,
        "succeeded" => 3,
        _ => 4,
    }
}

/// A short-lived link to a job's first output of `kind`, or `None`.
async fn output_link(
    state: &AppState,
    job: &JobRow,
    kind: &str,
) -> Result<Option<String>, ApiError> {
    let key: Option<String> = sqlx::query_scalar(
        "SELECT s3_key FROM assets WHERE job_id = $1 AND role = 'output' AND kind = $2
           AND deleted_at IS NULL ORDER BY position LIMIT 1",
    )
    .bind(&job.id)
    .bind(kind)
    .fetch_optional(&state.pool)
    .await?;
    let Some(key) = key else { return Ok(None) };
    let presigning = PresigningConfig::expires_in(LINK_TTL).map_err(anyhow::Error::from)?;
    let request = state
        .storage
        .client
        .get_object()
        .bucket(&state.storage.bucket)
        .key(key)
        .presigned(presigning)
        .await
        .map_err(|err| ApiError::Internal(anyhow::Error::new(err).context("presigning")))?;
    Ok(Some(request.uri().to_owned()))
}

/// Cancel a task: its credits come back in full, once. In this face's envelope: `code: 200`
/// with `task_status: 4` and `billing`; a task that already ended is HTTP 409, `code: 0`, with
/// its status, nothing refunded.
pub async fn cancel(
    State(state): State<AppState>,
    caller: Result<Caller, ApiError>,
    Path(task_id): Path<String>,
) -> Response {
    use crate::jobs::{cancel::Cancel, view::Billing};
    let caller = match caller {
        Ok(caller) => caller,
        Err(err) => return from_api_error(err),
    };
    let data = |job: &JobRow| {
        json!({"task_id": job.id, "task_status": task_status(&job.status), "status": job.status,
               "billing": Billing::of(job)})
    };
    match crate::jobs::cancel::cancel(&state, &caller.client, &task_id).await {
        Ok(None) => answer(StatusCode::NOT_FOUND, 0, "task not found", Value::Null),
        Ok(Some(Cancel::Now(job) | Cancel::Already(job))) => {
            answer(StatusCode::OK, 200, "cancelled", data(&job))
        }
        Ok(Some(Cancel::Finished(job))) => answer(
            StatusCode::CONFLICT,
            0,
            format!("the task already {}", job.status),
            data(&job),
        ),
        Err(err) => from_api_error(err),
    }
}

/// Poll a task until `task_status` is 3 or 4.
pub async fn get(
    State(state): State<AppState>,
    caller: Result<Caller, ApiError>,
    Path(task_id): Path<String>,
) -> Response {
    let caller = match caller {
        Ok(caller) => caller,
        Err(err) => return from_api_error(err),
    };
    let job = match store::get(&state.pool, &caller.client, &task_id).await {
        Ok(Some(job)) => job,
        Ok(None) => return answer(StatusCode::NOT_FOUND, 0, "task not found", Value::Null),
        Err(err) => return from_api_error(err.into()),
    };
    let mut links = Vec::new();
    for kind in ["image", "video", "audio"] {
        match output_link(&state, &job, kind).await {
            Ok(link) => links.push(link),
            Err(err) => return from_api_error(err),
        }
    }
    let mut data = json!({
        "task_id": job.id,
        "task_status": task_status(&job.status),
        "task_type": job.capability.split('.').next().unwrap_or_default(),
        "model_id": job.model_id.clone().unwrap_or_else(|| job.capability.clone()),
        "image_url": links[0],
        "video_url": links[1],
        "audio_url": links[2],
        "credits": job.credits,
        "created_at": job.created_at.timestamp(),
    });
    if let (Some(code), Some(message)) = (&job.error_code, &job.error_message) {
        data["error"] = json!({"code": code, "message": message});
    }
    answer(StatusCode::OK, 200, "ok", data)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn task(model: &str, urls: &[&str], ratio: Option<&str>) -> CreateTask {
        CreateTask {
            model_id: model.to_owned(),
            prompt: Some("a serene zen garden at sunrise".to_owned()),
            image_urls: urls.iter().map(|u| u.to_string()).collect(),
            aspect_ratio: ratio.map(str::to_owned),
            duration: None,
            resolution: None,
        }
    }

    #[test]
    fn image_tasks_become_image_jobs_with_a_size_for_the_ratio() {
        let req = translate(&task("gpt-image-2", &[], Some("16:9")), "image.generate").unwrap();
        assert_eq!((req.width, req.height), (Some(1344), Some(768)));
        let edit = translate(
            &task("nano-banana-2", &["https://example.com/a.png"], None),
            "image.generate",
        )
        .unwrap();
        assert_eq!(edit.image_urls, ["https://example.com/a.png"]);
        assert!(translate(&task("gpt-image-2", &[], Some("5:1")), "image.generate").is_err());
    }

    #[test]
    fn video_tasks_animate_their_images() {
        let req = translate(
            &task("seedance-2", &["https://example.com/a.png"], Some("9:16")),
            "video.generate",
        )
        .unwrap();
        assert_eq!(req.materials[0].label.as_deref(), Some("@图片1"));
        assert_eq!(req.settings.unwrap().ratio.as_deref(), Some("9:16"));
    }

    #[test]
    fn statuses_map_to_the_documented_numbers() {
        let mapped: Vec<u8> = crate::jobs::routes::STATUSES
            .iter()
            .map(|s| task_status(s))
            .collect();
        assert_eq!(mapped, [1, 2, 3, 4, 4, 4]);
    }
}
