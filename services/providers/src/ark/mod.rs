//! Volcengine Ark: Seedance video tasks (create, poll, cancel; async) and Seedream images
//! (sync), with bearer auth (providers.md §2).

mod classify;

pub use classify::{classify, classify_task_failure};

use atelier_media::Kind;
use base64::Engine as _;
use bytes::Bytes;
use reqwest::header::AUTHORIZATION;
use serde::Deserialize;
use serde_json::{Map, Value, json};
use tokio::sync::Notify;
use tokio::time::Instant;

use crate::config::KeyedEndpoint;
use crate::error::{ErrorClass, ProviderError};
use crate::http::{Call, Reply, Transport, endpoint, malformed};
use crate::output::{Artifact, Downloader, Images, admit_image, admit_media, decode_base64};
use crate::poll::{Poll, PollError, PollPolicy, poll_until};
use crate::provider::Provider;
use crate::task::{TaskStatus, UpstreamTaskId};

const P: Provider = Provider::Ark;
const TASKS: &str = "contents/generations/tasks";

/// An input image: a URL the provider fetches, or bytes sent inline as a `data:` URL (Ark caps
/// the whole body at 64 MB).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ImageInput {
    Url(String),
    Bytes(Bytes),
}

impl ImageInput {
    fn to_url(&self) -> Result<String, ProviderError> {
        match self {
            Self::Url(url) => Ok(url.clone()),
            Self::Bytes(bytes) => {
                let media = atelier_media::sniff(bytes)
                    .filter(|m| m.kind() == Kind::Image)
                    .ok_or_else(|| {
                        ProviderError::new(
                            P,
                            ErrorClass::InvalidRequest,
                            "an input is not an image",
                        )
                        .with_code("unsupported_format")
                    })?;
                let b64 = base64::engine::general_purpose::STANDARD.encode(bytes);
                Ok(format!("data:{};base64,{b64}", media.mime()))
            }
        }
    }
}

/// A Seedance task. Options left `None` keep the provider's defaults.
#[derive(Debug, Clone, Default)]
pub struct VideoRequest {
    pub model: String,
    pub prompt: String,
    pub first_frame: Option<ImageInput>,
    pub last_frame: Option<ImageInput>,
    pub reference_images: Vec<ImageInput>,
    /// `16:9`, `4:3`, `1:1`, `3:4`, `9:16`, `21:9`, `adaptive`.
    pub ratio: Option<String>,
    /// Whole seconds.
    pub duration: Option<i64>,
    /// `480p`, `720p`, `1080p`.
    pub resolution: Option<String>,
    pub seed: Option<i64>,
    pub camera_fixed: Option<bool>,
    pub watermark: Option<bool>,
    pub generate_audio: Option<bool>,
    /// Only a wake-up: the task's status is always read back with a GET.
    pub callback_url: Option<String>,
    /// Seconds; match it to our deadline so the provider stops (and stops billing) with us.
    pub execution_expires_after: Option<u64>,
}

impl VideoRequest {
    /// The documented body (`content` items with roles, strict parameter fields).
    pub fn body(&self) -> Result<Value, ProviderError> {
        let mut content = vec![json!({"type": "text", "text": self.prompt})];
        let frames = [
            ("first_frame", &self.first_frame),
            ("last_frame", &self.last_frame),
        ];
        for (role, image) in frames {
            if let Some(image) = image {
                content.push(json!({"type": "image_url", "image_url": {"url": image.to_url()?}, "role": role}));
            }
        }
        for image in &self.reference_images {
            content.push(json!({"type": "image_url", "image_url": {"url": image.to_url()?}, "role": "reference_image"}));
        }
        let mut body = Map::new();
        body.insert("model".into(), json!(self.model));
        body.insert("content".into(), Value::Array(content));
        let optional = [
            ("ratio", self.ratio.as_ref().map(|v| json!(v))),
            ("duration", self.duration.map(|v| json!(v))),
            ("resolution", self.resolution.as_ref().map(|v| json!(v))),
            ("seed", self.seed.map(|v| json!(v))),
            ("camera_fixed", self.camera_fixed.map(|v| json!(v))),
            ("watermark", self.watermark.map(|v| json!(v))),
            ("generate_audio", self.generate_audio.map(|v| json!(v))),
            ("callback_url", self.callback_url.as_ref().map(|v| json!(v))),
            (
                "execution_expires_after",
                self.execution_expires_after.map(|v| json!(v)),
            ),
        ];
        for (name, value) in optional {
            if let Some(value) = value {
                body.insert(name.into(), value);
            }
        }
        Ok(Value::Object(body))
    }
}

/// A task as the last GET saw it.
#[derive(Debug, Clone)]
pub struct VideoTask {
    pub id: UpstreamTaskId,
    pub status: TaskStatus,
    /// The provider's word, kept for logs when it is one we do not know.
    pub raw_status: String,
    pub video_url: Option<String>,
    /// Set when the task `failed`, classified by its code.
    pub error: Option<ProviderError>,
    pub usage: Option<Value>,
}

/// Ark's statuses; an unknown one counts as running, as relays do (providers.md §8.3).
pub fn map_status(raw: &str) -> TaskStatus {
    match raw {
        "queued" | "pending" => TaskStatus::Queued,
        "succeeded" => TaskStatus::Succeeded,
        "failed" => TaskStatus::Failed,
        "cancelled" => TaskStatus::Cancelled,
        "expired" => TaskStatus::Expired,
        _ => TaskStatus::Running,
    }
}

/// `POST /images/generations` (Seedream).
#[derive(Debug, Clone, Default)]
pub struct SeedreamRequest {
    pub model: String,
    pub prompt: String,
    pub images: Vec<ImageInput>,
    /// `1K`/`2K`/`4K` or `WxH`.
    pub size: Option<String>,
    pub seed: Option<i64>,
    /// The provider's default is `true`.
    pub watermark: Option<bool>,
}

#[derive(Debug, Clone)]
pub struct ArkClient {
    transport: Transport,
    downloader: Downloader,
    endpoint: KeyedEndpoint,
}

#[derive(Deserialize)]
struct Created {
    id: String,
}

#[derive(Deserialize)]
struct TaskBody {
    id: String,
    status: String,
    #[serde(default)]
    content: Option<TaskContent>,
    #[serde(default)]
    error: Option<classify::Detail>,
    #[serde(default)]
    usage: Option<Value>,
}

#[derive(Deserialize)]
struct TaskContent {
    #[serde(default)]
    video_url: Option<String>,
}

impl ArkClient {
    pub(crate) fn new(
        transport: Transport,
        downloader: Downloader,
        endpoint: KeyedEndpoint,
    ) -> Self {
        Self {
            transport,
            downloader,
            endpoint,
        }
    }

    fn request(&self, method: reqwest::Method, path: &str) -> reqwest::RequestBuilder {
        self.transport
            .client()
            .request(method, endpoint(&self.endpoint.base_url, path))
            .header(
                AUTHORIZATION,
                format!("Bearer {}", self.endpoint.api_key.expose()),
            )
    }

    async fn call(
        &self,
        request: reqwest::RequestBuilder,
        call: Call,
    ) -> Result<Reply, ProviderError> {
        let secret = [self.endpoint.api_key.expose()];
        let reply = self
            .transport
            .send(request, call)
            .await
            .map_err(|e| e.redact(&secret))?;
        if !reply.status.is_success() {
            return Err(
                classify(reply.status.as_u16(), &reply.body, reply.retry_after()).redact(&secret),
            );
        }
        Ok(reply)
    }

    /// Creates a Seedance task. Record the returned id before doing anything else; on
    /// `OutcomeUnknown` do not call this again for the same job.
    #[tracing::instrument(skip_all, fields(otel.kind = "client", provider = "ark", model = %request.model, upstream.id = tracing::field::Empty))]
    pub async fn create_video_task(
        &self,
        request: &VideoRequest,
    ) -> Result<UpstreamTaskId, ProviderError> {
        let body = request.body()?;
        let reply = self
            .call(
                self.request(reqwest::Method::POST, TASKS).json(&body),
                Call::Submit,
            )
            .await?;
        let created: Created = serde_json::from_slice(&reply.body).map_err(|err| {
            // The task exists upstream but we cannot name it: resending would create another.
            ProviderError::new(
                P,
                ErrorClass::OutcomeUnknown,
                format!("create answer without an id: {err}"),
            )
        })?;
        tracing::Span::current().record("upstream.id", created.id.as_str());
        tracing::info!(upstream.id = %created.id, "ark task created");
        Ok(UpstreamTaskId(created.id))
    }

    #[tracing::instrument(skip_all, fields(otel.kind = "client", provider = "ark", upstream.id = %id))]
    pub async fn get_video_task(&self, id: &UpstreamTaskId) -> Result<VideoTask, ProviderError> {
        let path = format!("{TASKS}/{}", id.0);
        let reply = self
            .call(self.request(reqwest::Method::GET, &path), Call::Read)
            .await?;
        let body: TaskBody =
            serde_json::from_slice(&reply.body).map_err(|err| malformed(P, err))?;
        let status = map_status(&body.status);
        let error = (status == TaskStatus::Failed).then(|| {
            let detail = body.error.unwrap_or_default();
            classify_task_failure(&detail.code, &detail.message)
        });
        Ok(VideoTask {
            id: UpstreamTaskId(body.id),
            status,
            raw_status: body.status,
            video_url: body.content.and_then(|c| c.video_url),
            error,
            usage: body.usage,
        })
    }

    /// Cancels a queued task (or deletes a finished one). A running task cannot be cancelled:
    /// the provider answers an error, returned as is.
    #[tracing::instrument(skip_all, fields(otel.kind = "client", provider = "ark", upstream.id = %id))]
    pub async fn cancel_video_task(&self, id: &UpstreamTaskId) -> Result<(), ProviderError> {
        let path = format!("{TASKS}/{}", id.0);
        self.call(self.request(reqwest::Method::DELETE, &path), Call::Read)
            .await?;
        Ok(())
    }

    /// Polls until the task ends, then copies the video (its URL lives about 24 h).
    pub async fn wait_video(
        &self,
        id: &UpstreamTaskId,
        policy: &PollPolicy,
        deadline: Instant,
        wake: &Notify,
    ) -> Result<(Artifact, VideoTask), PollError> {
        let task = poll_until(policy, deadline, wake, || async {
            let task = self.get_video_task(id).await?;
            match task.status {
                TaskStatus::Queued | TaskStatus::Running => Ok(Poll::Pending),
                TaskStatus::Succeeded => Ok(Poll::Ready(task)),
                TaskStatus::Failed => Err(task
                    .error
                    .clone()
                    .unwrap_or_else(|| classify_task_failure("", "failed"))),
                // Ended upstream without output; not the partner's doing.
                TaskStatus::Cancelled | TaskStatus::Expired => Err(ProviderError::new(
                    P,
                    ErrorClass::ProviderUnavailable,
                    format!("the upstream task ended {}", task.raw_status),
                )
                .with_code(task.raw_status.clone())),
            }
        })
        .await?;
        let url = task
            .video_url
            .clone()
            .ok_or_else(|| malformed(P, "succeeded without a video_url"))?;
        let bytes = self
            .downloader
            .fetch(P, &url, self.transport.limits.max_video_bytes)
            .await?;
        Ok((admit_media(P, bytes, Kind::Video)?, task))
    }

    /// Seedream: images in the answer, some of which may have failed one by one.
    #[tracing::instrument(skip_all, fields(otel.kind = "client", provider = "ark", model = %request.model))]
    pub async fn generate_images(
        &self,
        request: &SeedreamRequest,
    ) -> Result<Images, ProviderError> {
        let mut body = json!({"model": request.model, "prompt": request.prompt, "response_format": "b64_json"});
        if !request.images.is_empty() {
            let urls = request
                .images
                .iter()
                .map(ImageInput::to_url)
                .collect::<Result<Vec<_>, _>>()?;
            body["image"] = json!(urls);
        }
        if let Some(size) = &request.size {
            body["size"] = json!(size);
        }
        if let Some(seed) = request.seed {
            body["seed"] = json!(seed);
        }
        if let Some(watermark) = request.watermark {
            body["watermark"] = json!(watermark);
        }
        let reply = self
            .call(
                self.request(reqwest::Method::POST, "images/generations")
                    .json(&body),
                Call::Submit,
            )
            .await?;
        let parsed: Value = serde_json::from_slice(&reply.body).map_err(|err| malformed(P, err))?;
        let max = self.transport.limits.max_image_bytes;
        let items = parsed["data"].as_array().cloned().unwrap_or_default();
        let mut images = Vec::new();
        let mut first_error = None;
        for item in &items {
            if let Some(b64) = item["b64_json"].as_str() {
                images.push(admit_image(P, decode_base64(P, b64, max)?, max)?);
            } else if let Some(url) = item["url"].as_str() {
                images.push(admit_image(
                    P,
                    self.downloader.fetch(P, url, max).await?,
                    max,
                )?);
            } else if first_error.is_none() {
                let code = item["error"]["code"].as_str().unwrap_or_default();
                let message = item["error"]["message"].as_str().unwrap_or("image failed");
                first_error = Some(classify_task_failure(code, message));
            }
        }
        if images.is_empty() {
            return Err(first_error.unwrap_or_else(|| malformed(P, "no image in the answer")));
        }
        Ok(Images {
            requested: items.len() as u32,
            images,
            usage: parsed.get("usage").cloned(),
        })
    }
}
