//! OpenAI and OpenAI-compatible relays: images (generate, edit with a mask), structured chat
//! completions and speech (providers.md §1). All calls are synchronous: the answer carries the
//! result, so a submit whose answer is lost is `OutcomeUnknown`, never resent.

mod classify;

pub use classify::classify;

use atelier_kit::config::Secret;
use atelier_media::Kind;
use bytes::Bytes;
use reqwest::header::{AUTHORIZATION, CONTENT_TYPE};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use crate::config::KeyedEndpoint;
use crate::error::{ErrorClass, ProviderError};
use crate::http::{Call, Reply, Transport, endpoint, malformed};
use crate::output::{Artifact, Downloader, Images, admit_image, admit_media, decode_base64};
use crate::provider::Provider;

const P: Provider = Provider::OpenAi;

/// `POST /images/generations`. Unset options are left to the provider's defaults.
#[derive(Debug, Clone, Default, Serialize)]
pub struct ImageGeneration {
    pub model: String,
    pub prompt: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub n: Option<u32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub size: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub quality: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub background: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub output_format: Option<String>,
}

/// `POST /images/edits`: the source image and our mask (white = repaint), which is converted to
/// OpenAI's alpha convention before sending.
#[derive(Debug, Clone, Default)]
pub struct ImageEdit {
    pub model: String,
    pub prompt: String,
    pub image: Bytes,
    pub mask: Option<Bytes>,
    pub n: Option<u32>,
    pub size: Option<String>,
    pub quality: Option<String>,
}

/// A chat completion constrained to a JSON schema; the answer is the parsed JSON.
#[derive(Debug, Clone)]
pub struct ChatJson {
    pub model: String,
    pub system: Option<String>,
    pub prompt: String,
    pub schema_name: String,
    pub schema: Value,
}

/// `POST /audio/speech`.
#[derive(Debug, Clone, Serialize)]
pub struct Speech {
    pub model: String,
    pub voice: String,
    pub input: String,
    /// `mp3` (the provider's default), `wav`, `flac`, `opus`, `aac`, `pcm`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub response_format: Option<String>,
}

/// Cheap to clone and small to hold (engines keep one in an enum beside lighter choices).
#[derive(Debug, Clone)]
pub struct OpenAiClient(std::sync::Arc<Parts>);

#[derive(Debug)]
struct Parts {
    transport: Transport,
    downloader: Downloader,
    endpoint: KeyedEndpoint,
}

#[derive(Deserialize)]
struct ImagesResponse {
    #[serde(default)]
    data: Vec<ImageDatum>,
    #[serde(default)]
    usage: Option<Value>,
}

#[derive(Deserialize)]
struct ImageDatum {
    #[serde(default)]
    b64_json: Option<String>,
    #[serde(default)]
    url: Option<String>,
}

impl OpenAiClient {
    pub(crate) fn new(
        transport: Transport,
        downloader: Downloader,
        endpoint: KeyedEndpoint,
    ) -> Self {
        Self(std::sync::Arc::new(Parts {
            transport,
            downloader,
            endpoint,
        }))
    }

    fn post(&self, path: &str) -> reqwest::RequestBuilder {
        self.0
            .transport
            .client()
            .post(endpoint(&self.0.endpoint.base_url, path))
            .header(
                AUTHORIZATION,
                format!("Bearer {}", self.0.endpoint.api_key.expose()),
            )
    }

    fn key(&self) -> &Secret {
        &self.0.endpoint.api_key
    }

    async fn call(&self, request: reqwest::RequestBuilder) -> Result<Reply, ProviderError> {
        let reply = self
            .0
            .transport
            .send(request, Call::Submit)
            .await
            .map_err(|e| e.redact(&[self.key().expose()]))?;
        if !reply.status.is_success() {
            return Err(
                classify(reply.status.as_u16(), &reply.body, reply.retry_after())
                    .redact(&[self.key().expose()]),
            );
        }
        Ok(reply)
    }

    #[tracing::instrument(skip_all, fields(otel.kind = "client", provider = "openai", model = %request.model))]
    pub async fn generate_images(
        &self,
        request: &ImageGeneration,
    ) -> Result<Images, ProviderError> {
        let reply = self
            .call(self.post("images/generations").json(request))
            .await?;
        self.images(&reply.body, request.n.unwrap_or(1)).await
    }

    #[tracing::instrument(skip_all, fields(otel.kind = "client", provider = "openai", model = %request.model))]
    pub async fn edit_image(&self, request: &ImageEdit) -> Result<Images, ProviderError> {
        let source = atelier_media::gate::admit_within(&request.image, &Default::default())
            .map_err(|r| {
                ProviderError::new(P, ErrorClass::InvalidRequest, format!("image: {r}"))
                    .with_code(r.code())
            })?;
        let mask = match request.mask.clone() {
            None => None,
            Some(mask) => {
                let (w, h) = (source.width, source.height);
                let converted =
                    tokio::task::spawn_blocking(move || crate::mask::to_openai_alpha(&mask, w, h))
                        .await
                        .map_err(|err| {
                            ProviderError::retryable(P, format!("mask conversion: {err}"))
                        })??;
                Some(converted)
            }
        };
        let mut form = crate::multipart::Multipart::new();
        form.text("model", &request.model);
        form.text("prompt", &request.prompt);
        for (name, value) in [("size", &request.size), ("quality", &request.quality)] {
            if let Some(value) = value {
                form.text(name, value);
            }
        }
        if let Some(n) = request.n {
            form.text("n", &n.to_string());
        }
        let ext = source.media.extension();
        form.file(
            "image",
            &format!("image.{ext}"),
            source.media.mime(),
            &request.image,
        );
        if let Some(mask) = &mask {
            form.file("mask", "mask.png", "image/png", mask);
        }
        let (content_type, body) = form.finish();
        let request_builder = self
            .post("images/edits")
            .header(CONTENT_TYPE, content_type)
            .body(body);
        let reply = self.call(request_builder).await?;
        self.images(&reply.body, request.n.unwrap_or(1)).await
    }

    /// Accepts `b64_json` (OpenAI's GPT image models) or `url` (dall-e and many relays).
    async fn images(&self, body: &[u8], requested: u32) -> Result<Images, ProviderError> {
        let parsed: ImagesResponse =
            serde_json::from_slice(body).map_err(|err| malformed(P, err))?;
        let max = self.0.transport.limits.max_image_bytes;
        let mut images = Vec::with_capacity(parsed.data.len());
        for datum in parsed.data {
            let bytes = match (datum.b64_json, datum.url) {
                (Some(b64), _) => decode_base64(P, &b64, max)?,
                (None, Some(url)) => self.0.downloader.fetch(P, &url, max).await?,
                (None, None) => continue,
            };
            images.push(admit_image(P, bytes, max)?);
        }
        if images.is_empty() {
            return Err(malformed(P, "no image in the answer"));
        }
        Ok(Images {
            images,
            requested,
            usage: parsed.usage,
        })
    }

    /// A chat completion whose `response_format` is the given JSON schema (strict), returning
    /// the parsed object. A refusal or a content filter stop is `ContentRejected`.
    #[tracing::instrument(skip_all, fields(otel.kind = "client", provider = "openai", model = %request.model))]
    pub async fn chat_json(&self, request: &ChatJson) -> Result<Value, ProviderError> {
        let mut messages = Vec::new();
        if let Some(system) = &request.system {
            messages.push(json!({"role": "system", "content": system}));
        }
        messages.push(json!({"role": "user", "content": request.prompt}));
        let body = json!({
            "model": request.model,
            "messages": messages,
            "response_format": {
                "type": "json_schema",
                "json_schema": {"name": request.schema_name, "schema": request.schema, "strict": true},
            },
        });
        let reply = self.call(self.post("chat/completions").json(&body)).await?;
        let parsed: Value = serde_json::from_slice(&reply.body).map_err(|err| malformed(P, err))?;
        let choice = &parsed["choices"][0];
        let message = &choice["message"];
        if let Some(refusal) = message["refusal"].as_str() {
            return Err(
                ProviderError::new(P, ErrorClass::ContentRejected, refusal).with_code("refusal")
            );
        }
        if choice["finish_reason"] == "content_filter" {
            return Err(ProviderError::new(
                P,
                ErrorClass::ContentRejected,
                "the completion was filtered",
            )
            .with_code("content_filter"));
        }
        let content = message["content"]
            .as_str()
            .ok_or_else(|| malformed(P, "no message content"))?;
        serde_json::from_str(content)
            .map_err(|err| malformed(P, format!("content is not json: {err}")))
    }

    /// Speech audio, checked to be audio by its magic bytes.
    #[tracing::instrument(skip_all, fields(otel.kind = "client", provider = "openai", model = %request.model))]
    pub async fn speech(&self, request: &Speech) -> Result<Artifact, ProviderError> {
        let reply = self.call(self.post("audio/speech").json(request)).await?;
        if reply.body.len() > self.0.transport.limits.max_audio_bytes {
            return Err(crate::http::too_large(
                P,
                self.0.transport.limits.max_audio_bytes,
            ));
        }
        admit_media(P, reply.body.to_vec(), Kind::Audio)
    }
}
