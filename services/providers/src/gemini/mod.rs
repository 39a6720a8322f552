//! Google Gemini image generation (`models/{model}:generateContent`, "Nano Banana"): reference
//! images as inline parts, `imageConfig`, images back as inline base64 (providers.md §3).
//! Synchronous, like OpenAI: a lost answer to a sent request is `OutcomeUnknown`.

mod classify;

pub use classify::{REFUSAL_FINISH_REASONS, classify};

use atelier_media::Kind;
use base64::Engine as _;
use bytes::Bytes;
use serde_json::{Value, json};

use crate::config::KeyedEndpoint;
use crate::error::{ErrorClass, ProviderError};
use crate::http::{Call, Transport, endpoint, malformed};
use crate::output::{Images, admit_image, decode_base64};
use crate::provider::Provider;

const P: Provider = Provider::Gemini;

#[derive(Debug, Clone, Default)]
pub struct GeminiImageRequest {
    pub model: String,
    pub prompt: String,
    /// Reference or source images, sent inline; there is no mask parameter.
    pub images: Vec<Bytes>,
    /// `1:1`, `2:3`, `3:2`, `3:4`, `4:3`, `9:16`, `16:9`, `21:9`.
    pub aspect_ratio: Option<String>,
    /// `1K`, `2K`, `4K` (not every model takes it).
    pub image_size: Option<String>,
}

impl GeminiImageRequest {
    pub fn body(&self) -> Result<Value, ProviderError> {
        let mut parts = vec![json!({"text": self.prompt})];
        for image in &self.images {
            let media = atelier_media::sniff(image)
                .filter(|m| m.kind() == Kind::Image)
                .ok_or_else(|| {
                    ProviderError::new(P, ErrorClass::InvalidRequest, "an input is not an image")
                        .with_code("unsupported_format")
                })?;
            let data = base64::engine::general_purpose::STANDARD.encode(image);
            parts.push(json!({"inlineData": {"mimeType": media.mime(), "data": data}}));
        }
        let mut image_config = serde_json::Map::new();
        if let Some(ratio) = &self.aspect_ratio {
            image_config.insert("aspectRatio".into(), json!(ratio));
        }
        if let Some(size) = &self.image_size {
            image_config.insert("imageSize".into(), json!(size));
        }
        let mut generation = json!({"responseModalities": ["TEXT", "IMAGE"]});
        if !image_config.is_empty() {
            generation["imageConfig"] = Value::Object(image_config);
        }
        Ok(json!({"contents": [{"role": "user", "parts": parts}], "generationConfig": generation}))
    }
}

#[derive(Debug, Clone)]
pub struct GeminiClient {
    transport: Transport,
    endpoint: KeyedEndpoint,
}

impl GeminiClient {
    pub(crate) fn new(transport: Transport, endpoint: KeyedEndpoint) -> Self {
        Self {
            transport,
            endpoint,
        }
    }

    #[tracing::instrument(skip_all, fields(otel.kind = "client", provider = "gemini", model = %request.model))]
    pub async fn generate_image(
        &self,
        request: &GeminiImageRequest,
    ) -> Result<Images, ProviderError> {
        let url = endpoint(
            &self.endpoint.base_url,
            &format!("models/{}:generateContent", request.model),
        );
        let key = self.endpoint.api_key.expose();
        // The header, not `?key=`: a URL ends up in logs and error messages.
        let builder = self
            .transport
            .client()
            .post(url)
            .header("x-goog-api-key", key)
            .json(&request.body()?);
        let reply = self
            .transport
            .send(builder, Call::Submit)
            .await
            .map_err(|e| e.redact(&[key]))?;
        if !reply.status.is_success() {
            return Err(
                classify(reply.status.as_u16(), &reply.body, reply.retry_after()).redact(&[key]),
            );
        }
        let parsed: Value = serde_json::from_slice(&reply.body).map_err(|err| malformed(P, err))?;
        self.images(&parsed)
    }

    /// The inline images of the first candidate, skipping text and "thought" parts. No image
    /// with a moderation reason is a refusal (HTTP 200 on this API).
    fn images(&self, parsed: &Value) -> Result<Images, ProviderError> {
        if let Some(reason) = parsed["promptFeedback"]["blockReason"].as_str() {
            return Err(refused(reason, "the prompt was blocked"));
        }
        let candidate = &parsed["candidates"][0];
        let max = self.transport.limits.max_image_bytes;
        let mut images = Vec::new();
        for part in candidate["content"]["parts"]
            .as_array()
            .into_iter()
            .flatten()
        {
            if part["thought"].as_bool() == Some(true) {
                continue;
            }
            let inline = if part["inlineData"].is_object() {
                &part["inlineData"]
            } else {
                &part["inline_data"]
            };
            if let Some(data) = inline["data"].as_str() {
                images.push(admit_image(P, decode_base64(P, data, max)?, max)?);
            }
        }
        if images.is_empty() {
            let reason = candidate["finishReason"].as_str().unwrap_or("NO_IMAGE");
            if REFUSAL_FINISH_REASONS.contains(&reason) || candidate.is_null() {
                return Err(refused(reason, "no image was generated"));
            }
            return Err(malformed(
                P,
                format!("no image in the answer (finishReason {reason})"),
            ));
        }
        Ok(Images {
            images,
            requested: 1,
            usage: parsed.get("usageMetadata").cloned(),
        })
    }
}

fn refused(reason: &str, message: &str) -> ProviderError {
    ProviderError::new(P, ErrorClass::ContentRejected, message).with_code(reason)
}
