//! Jimeng on the Volcengine visual API: `CVSync2AsyncSubmitTask` and `CVSync2AsyncGetResult`,
//! every request signed with the access key pair (providers.md §5). Async, poll only.

mod classify;
pub mod sign;

pub use classify::{class_for_code, classify};

use base64::Engine as _;
use bytes::Bytes;
use reqwest::header::CONTENT_TYPE;
use serde_json::{Map, Value, json};
use tokio::sync::Notify;
use tokio::time::Instant;

use crate::config::JimengEndpoint;
use crate::error::{ErrorClass, ProviderError};
use crate::http::{Call, Reply, Transport, malformed};
use crate::output::{Artifact, Downloader, Images, admit_image, decode_base64};
use crate::poll::{Poll, PollError, PollPolicy, poll_until};
use crate::provider::Provider;
use crate::task::{TaskStatus, UpstreamTaskId};

const P: Provider = Provider::Jimeng;
pub const VERSION: &str = "2022-08-31";
pub const SUBMIT: &str = "CVSync2AsyncSubmitTask";
pub const GET_RESULT: &str = "CVSync2AsyncGetResult";

/// What to submit. `req_key` names the model (`jimeng_t2i_v40`, ...).
#[derive(Debug, Clone)]
pub enum JimengRequest {
    TextToImage {
        req_key: String,
        prompt: String,
        /// Reference images (0–10 URLs).
        image_urls: Vec<String>,
        width: Option<u32>,
        height: Option<u32>,
        /// How strongly the text drives the result, [0, 1] (the seed's `scale`).
        scale: Option<f64>,
        /// Without it the model may return (and bill) several images.
        force_single: bool,
    },
    /// Our mask (white = repaint) is sent as single-channel 255 = redraw.
    Inpaint {
        req_key: String,
        prompt: String,
        image: Bytes,
        mask: Bytes,
        seed: Option<i64>,
    },
    Upscale {
        req_key: String,
        image: Bytes,
        resolution: Option<String>,
        scale: Option<u32>,
    },
}

impl JimengRequest {
    pub fn req_key(&self) -> &str {
        match self {
            Self::TextToImage { req_key, .. }
            | Self::Inpaint { req_key, .. }
            | Self::Upscale { req_key, .. } => req_key,
        }
    }

    /// The submit body; converting an inpainting mask decodes it, so this blocks.
    pub fn body(&self) -> Result<Value, ProviderError> {
        let b64 = |bytes: &[u8]| base64::engine::general_purpose::STANDARD.encode(bytes);
        let mut body = Map::new();
        body.insert("req_key".into(), json!(self.req_key()));
        match self {
            Self::TextToImage {
                prompt,
                image_urls,
                width,
                height,
                scale,
                force_single,
                ..
            } => {
                body.insert("prompt".into(), json!(prompt));
                if !image_urls.is_empty() {
                    body.insert("image_urls".into(), json!(image_urls));
                }
                if let (Some(w), Some(h)) = (width, height) {
                    body.insert("width".into(), json!(w));
                    body.insert("height".into(), json!(h));
                }
                if let Some(scale) = scale {
                    body.insert("scale".into(), json!(scale));
                }
                body.insert("force_single".into(), json!(force_single));
            }
            Self::Inpaint {
                prompt,
                image,
                mask,
                seed,
                ..
            } => {
                let source = atelier_media::gate::admit_within(image, &Default::default())
                    .map_err(|r| {
                        ProviderError::new(P, ErrorClass::InvalidRequest, format!("image: {r}"))
                            .with_code(r.code())
                    })?;
                let mask = crate::mask::to_jimeng_grey(mask, source.width, source.height)?;
                body.insert("prompt".into(), json!(prompt));
                // The source first, then the mask.
                body.insert("binary_data_base64".into(), json!([b64(image), b64(&mask)]));
                if let Some(seed) = seed {
                    body.insert("seed".into(), json!(seed));
                }
            }
            Self::Upscale {
                image,
                resolution,
                scale,
                ..
            } => {
                body.insert("binary_data_base64".into(), json!([b64(image)]));
                if let Some(resolution) = resolution {
                    body.insert("resolution".into(), json!(resolution));
                }
                if let Some(scale) = scale {
                    body.insert("scale".into(), json!(scale));
                }
            }
        }
        Ok(Value::Object(body))
    }
}

/// A task as the last `GetResult` saw it.
#[derive(Debug, Clone)]
pub struct JimengResult {
    pub status: TaskStatus,
    pub raw_status: String,
    pub image_urls: Vec<String>,
    pub images_base64: Vec<String>,
}

/// `in_queue`, `generating`, `done` (success judged by the outer code), `not_found`, `expired`.
pub fn map_status(raw: &str) -> TaskStatus {
    match raw {
        "in_queue" => TaskStatus::Queued,
        "done" => TaskStatus::Succeeded,
        "not_found" | "expired" => TaskStatus::Expired,
        _ => TaskStatus::Running,
    }
}

#[derive(Debug, Clone)]
pub struct JimengClient {
    transport: Transport,
    downloader: Downloader,
    endpoint: JimengEndpoint,
}

impl JimengClient {
    pub(crate) fn new(
        transport: Transport,
        downloader: Downloader,
        endpoint: JimengEndpoint,
    ) -> Self {
        Self {
            transport,
            downloader,
            endpoint,
        }
    }

    /// Signs and sends one action; the signature covers the exact body bytes sent.
    async fn action(&self, action: &str, body: &Value, call: Call) -> Result<Value, ProviderError> {
        let body = serde_json::to_vec(body).map_err(|err| malformed(P, err))?;
        let mut url = self.endpoint.base_url.clone();
        url.query_pairs_mut()
            .clear()
            .append_pair("Action", action)
            .append_pair("Version", VERSION);
        let host = match url.port() {
            Some(port) => format!("{}:{port}", url.host_str().unwrap_or_default()),
            None => url.host_str().unwrap_or_default().to_owned(),
        };
        let query: Vec<(String, String)> = url
            .query_pairs()
            .map(|(k, v)| (k.into_owned(), v.into_owned()))
            .collect();
        let x_date = chrono::Utc::now().format("%Y%m%dT%H%M%SZ").to_string();
        let request = sign::SignedRequest {
            method: "POST",
            host: &host,
            path: url.path(),
            query: &query,
            content_type: "application/json",
            body: &body,
            x_date: &x_date,
        };
        let secrets = [
            self.endpoint.access_key.expose(),
            self.endpoint.secret_key.expose(),
        ];
        let signature = sign::sign(&request, secrets[0], secrets[1]);
        let builder = self
            .transport
            .client()
            .post(url.clone())
            .header(CONTENT_TYPE, "application/json")
            .header("X-Date", &x_date)
            .header("X-Content-Sha256", &signature.x_content_sha256)
            .header("Authorization", &signature.authorization)
            .body(body);
        let reply: Reply = self
            .transport
            .send(builder, call)
            .await
            .map_err(|e| e.redact(&secrets))?;
        let parsed: Value = serde_json::from_slice(&reply.body).unwrap_or(Value::Null);
        if !reply.status.is_success() || parsed["code"].as_i64() != Some(classify::OK) {
            let mut err = classify(reply.status.as_u16(), &reply.body);
            if let ErrorClass::Retryable { retry_after } = &mut err.class {
                *retry_after = reply.retry_after();
            }
            return Err(err.redact(&secrets));
        }
        Ok(parsed)
    }

    /// Submits a task. Record the id at once; on `OutcomeUnknown` do not submit again.
    #[tracing::instrument(skip_all, fields(otel.kind = "client", provider = "jimeng", req_key = %request.req_key(), upstream.id = tracing::field::Empty))]
    pub async fn submit(&self, request: &JimengRequest) -> Result<UpstreamTaskId, ProviderError> {
        let owned = request.clone();
        let body = tokio::task::spawn_blocking(move || owned.body())
            .await
            .map_err(|err| {
                ProviderError::retryable(P, format!("preparing the request: {err}"))
            })??;
        let answer = self.action(SUBMIT, &body, Call::Submit).await?;
        let id = answer["data"]["task_id"].as_str().ok_or_else(|| {
            ProviderError::new(
                P,
                ErrorClass::OutcomeUnknown,
                "submit answer without a task_id",
            )
        })?;
        tracing::Span::current().record("upstream.id", id);
        tracing::info!(upstream.id = %id, "jimeng task submitted");
        Ok(UpstreamTaskId(id.to_owned()))
    }

    /// One status read; a task that ended badly is an error classified by its code.
    #[tracing::instrument(skip_all, fields(otel.kind = "client", provider = "jimeng", upstream.id = %id))]
    pub async fn get_result(
        &self,
        req_key: &str,
        id: &UpstreamTaskId,
    ) -> Result<JimengResult, ProviderError> {
        // return_url false: the images come back inline, so nothing has to be downloaded.
        let req_json = json!({"return_url": false}).to_string();
        let body = json!({"req_key": req_key, "task_id": id.0, "req_json": req_json});
        let answer = self.action(GET_RESULT, &body, Call::Read).await?;
        let data = &answer["data"];
        let raw_status = data["status"].as_str().unwrap_or_default().to_owned();
        let strings = |v: &Value| -> Vec<String> {
            v.as_array()
                .into_iter()
                .flatten()
                .filter_map(|s| s.as_str().map(str::to_owned))
                .collect()
        };
        Ok(JimengResult {
            status: map_status(&raw_status),
            image_urls: strings(&data["image_urls"]),
            images_base64: strings(&data["binary_data_base64"]),
            raw_status,
        })
    }

    /// Polls until the task is done, then returns its images.
    pub async fn wait_images(
        &self,
        req_key: &str,
        id: &UpstreamTaskId,
        policy: &PollPolicy,
        deadline: Instant,
        wake: &Notify,
    ) -> Result<Images, PollError> {
        let result = poll_until(policy, deadline, wake, || async {
            let result = self.get_result(req_key, id).await?;
            match result.status {
                TaskStatus::Succeeded => Ok(Poll::Ready(result)),
                TaskStatus::Expired | TaskStatus::Cancelled | TaskStatus::Failed => {
                    Err(ProviderError::new(
                        P,
                        ErrorClass::ProviderUnavailable,
                        format!("the upstream task is {}", result.raw_status),
                    )
                    .with_code(result.raw_status.clone()))
                }
                TaskStatus::Queued | TaskStatus::Running => Ok(Poll::Pending),
            }
        })
        .await?;
        Ok(self.images(result).await?)
    }

    async fn images(&self, result: JimengResult) -> Result<Images, ProviderError> {
        let max = self.transport.limits.max_image_bytes;
        let mut images: Vec<Artifact> = Vec::new();
        for b64 in &result.images_base64 {
            images.push(admit_image(P, decode_base64(P, b64, max)?, max)?);
        }
        if images.is_empty() {
            for url in &result.image_urls {
                images.push(admit_image(
                    P,
                    self.downloader.fetch(P, url, max).await?,
                    max,
                )?);
            }
        }
        if images.is_empty() {
            return Err(malformed(P, "done without an image"));
        }
        Ok(Images {
            requested: images.len() as u32,
            images,
            usage: None,
        })
    }
}
