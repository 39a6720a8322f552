//! Image capabilities on synchronous providers (OpenAI Images, Ark Seedream, Gemini): the
//! answer carries the images, so there is no task to record, only which provider served the
//! job and the usage it reported. An answer lost after the request was sent is
//! `upstream_outcome_unknown`, never resent.

use atelier_worker::{EngineError, OutputFile};

use super::{Call, missing};
use crate::ark::{ImageInput, SeedreamRequest};
use crate::gemini::GeminiImageRequest;
use crate::openai::{ImageEdit, ImageGeneration};
use crate::output::Images;
use crate::provider::{Capability, Provider};

pub(super) async fn run(
    call: Call<'_>,
    capability: Capability,
) -> Result<Vec<OutputFile>, EngineError> {
    call.submitting().await?;
    let images = call.settle(send(&call, capability).await).await?;
    finish(&call, images).await
}

/// The provider's call for the capability.
async fn send(call: &Call<'_>, capability: Capability) -> Result<Images, EngineError> {
    Ok(match (capability, call.provider) {
        (Capability::ImageGenerate, Provider::OpenAi) => {
            let openai = call
                .providers
                .openai
                .as_ref()
                .ok_or_else(|| missing(call.provider))?;
            openai
                .generate_images(&ImageGeneration {
                    model: call.model.clone(),
                    prompt: call.text("prompt").unwrap_or_default(),
                    size: Some(openai_size(call)),
                    quality: call.text("quality"),
                    ..Default::default()
                })
                .await?
        }
        (Capability::ImageInpaint, Provider::OpenAi) => {
            let openai = call
                .providers
                .openai
                .as_ref()
                .ok_or_else(|| missing(call.provider))?;
            let image = call
                .read_input(0, capability, "an image and a mask")
                .await?;
            let mask = match call.inputs.get(1) {
                Some(mask) => Some(mask.read().await?),
                None => None,
            };
            openai
                .edit_image(&ImageEdit {
                    model: call.model.clone(),
                    prompt: call.text("prompt").unwrap_or_default(),
                    image,
                    mask,
                    ..Default::default()
                })
                .await?
        }
        (Capability::ImageGenerate, Provider::Ark) => {
            let ark = call
                .providers
                .ark
                .as_ref()
                .ok_or_else(|| missing(call.provider))?;
            ark.generate_images(&SeedreamRequest {
                model: call.model.clone(),
                prompt: call.text("prompt").unwrap_or_default(),
                images: call
                    .read_inputs()
                    .await?
                    .into_iter()
                    .map(ImageInput::Bytes)
                    .collect(),
                size: size(call),
                seed: call.param("seed").and_then(|v| v.as_i64()),
                ..Default::default()
            })
            .await?
        }
        (Capability::ImageGenerate, Provider::Gemini) => {
            let gemini = call
                .providers
                .gemini
                .as_ref()
                .ok_or_else(|| missing(call.provider))?;
            gemini
                .generate_image(&GeminiImageRequest {
                    model: call.model.clone(),
                    prompt: call.text("prompt").unwrap_or_default(),
                    images: call.read_inputs().await?,
                    ..Default::default()
                })
                .await?
        }
        _ => return Err(missing(call.provider)),
    })
}

/// The images as output files; the usage, when the provider reported one, joins the record.
pub(super) async fn finish(
    call: &Call<'_>,
    images: Images,
) -> Result<Vec<OutputFile>, EngineError> {
    let delivered = images.images.len() as u32;
    let partial = delivered < images.requested;
    if partial {
        tracing::warn!(
            delivered,
            requested = images.requested,
            "partial success upstream"
        );
    }
    // The usage the provider reported and, for a partial success, how many images of how many
    // asked came back: the job JSON shows both under `engine.usage`.
    let mut usage = images.usage.clone();
    if partial {
        let mut with = usage
            .take()
            .filter(serde_json::Value::is_object)
            .unwrap_or_else(|| serde_json::json!({}));
        with["images_requested"] = images.requested.into();
        with["images_delivered"] = delivered.into();
        usage = Some(with);
    }
    if usage.is_some() {
        call.record(None, usage).await;
    }
    Ok(images
        .images
        .into_iter()
        .map(|a| a.into_output_file())
        .collect())
}

fn dims(call: &Call<'_>) -> Option<(u64, u64)> {
    Some((
        call.param("width")?.as_u64()?,
        call.param("height")?.as_u64()?,
    ))
}

/// The GPT image models take three sizes; the nearest by orientation.
fn openai_size(call: &Call<'_>) -> String {
    match dims(call) {
        Some((w, h)) if w > h => "1536x1024",
        Some((w, h)) if h > w => "1024x1536",
        _ => "1024x1024",
    }
    .to_owned()
}

fn size(call: &Call<'_>) -> Option<String> {
    dims(call).map(|(w, h)| format!("{w}x{h}"))
}
