//! The body of `POST /api/v1/jobs` and its validation: a pure function from the parsed
//! body to a normalised request, or a message naming the offending field.

use atelier_kit::{ids::AssetId, nats::CAPABILITIES};
use atelier_netguard::NetPolicy;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

pub const VIDEO_RATIOS: [&str; 7] = ["16:9", "4:3", "1:1", "3:4", "9:16", "21:9", "adaptive"];
pub const VIDEO_RESOLUTIONS: [&str; 3] = ["480p", "720p", "1080p"];
pub const UPSCALE_RESOLUTIONS: [&str; 2] = ["2k", "4k"];
pub const QUALITIES: [&str; 3] = ["low", "medium", "high"];
pub const MAX_PROMPT_CHARS: usize = 4000;
const MAX_URLS: usize = 16;
const MAX_MATERIALS: usize = 9;
/// Input images of an `image.generate` job, all lists together. The local engine uses the
/// first; the routed ones send them all upstream, and the most any of them takes is 14 (Nano
/// Banana 2's reference images; Seedream takes up to 10). A worker fetches every input
/// before its engine starts, so more would only cost fetching (docs/hardening.md, M5).
pub const MAX_GENERATE_INPUTS: usize = 14;
/// Inputs of a `video.generate` job, all lists and `materials` together: the materials limit.
pub const MAX_VIDEO_INPUTS: usize = MAX_MATERIALS;
/// Every URL a request carries, in characters. With the other caps this bounds every message
/// a job makes (dispatch, claim reply, webhook) far below NATS' 1 MiB (docs/hardening.md, H2).
pub const MAX_URL_CHARS: usize = 2048;
const MAX_LABEL_CHARS: usize = 100;
const MIN_SIDE: u32 = 64;
const MAX_SIDE: u32 = 8192;

/// A job request, as partners send it and as it is stored once normalised.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateJobRequest {
    /// `image.generate`, `image.inpaint`, `image.upscale` or `video.generate`.
    pub capability: String,
    /// The model to run on, one of those `GET /api/v1/capabilities` lists for the
    /// capability; without it, the capability's default route (`ATELIER_ROUTES`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub model: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub prompt: Option<String>,
    /// Input images; for `image.inpaint`, `[original, mask]`.
    #[serde(rename = "imageUrls", default, skip_serializing_if = "Vec::is_empty")]
    pub image_urls: Vec<String>,
    /// Ids of assets uploaded or registered earlier.
    #[serde(
        rename = "inputAssetIds",
        default,
        skip_serializing_if = "Vec::is_empty"
    )]
    pub input_asset_ids: Vec<String>,
    #[serde(rename = "inputUrls", default, skip_serializing_if = "Vec::is_empty")]
    pub input_urls: Vec<String>,
    #[serde(
        default,
        deserialize_with = "whole::option",
        skip_serializing_if = "Option::is_none"
    )]
    pub width: Option<u32>,
    #[serde(
        default,
        deserialize_with = "whole::option",
        skip_serializing_if = "Option::is_none"
    )]
    pub height: Option<u32>,
    /// `image.generate`: text influence 0–100. `image.upscale`: factor 1–8.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub scale: Option<f64>,
    /// `low`, `medium` or `high`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub quality: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub force_single: Option<bool>,
    /// `image.upscale`: `2k` or `4k`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub resolution: Option<String>,
    /// `image.generate`: makes the sandbox renderer reproducible.
    #[serde(
        default,
        deserialize_with = "whole::option",
        skip_serializing_if = "Option::is_none"
    )]
    pub seed: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub settings: Option<VideoSettings>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub materials: Vec<Material>,
    #[serde(
        rename = "webhookUrl",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub webhook_url: Option<String>,
}

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct VideoSettings {
    /// One of `16:9`, `4:3`, `1:1`, `3:4`, `9:16`, `21:9`, `adaptive`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ratio: Option<String>,
    /// Seconds, 4–15.
    #[serde(
        default,
        deserialize_with = "whole::option",
        skip_serializing_if = "Option::is_none"
    )]
    pub duration: Option<u32>,
    /// `480p`, `720p` or `1080p`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub resolution: Option<String>,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Material {
    /// `image`, `video` or `audio`.
    #[serde(rename = "type")]
    pub kind: String,
    pub url: String,
    /// How the prompt refers to it, e.g. `@图片1`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub label: Option<String>,
}

/// A rule broken by a request; the message names the field.
#[derive(Debug, PartialEq, thiserror::Error)]
#[error("{0}")]
pub struct Invalid(pub String);

fn invalid(message: impl Into<String>) -> Invalid {
    Invalid(message.into())
}

fn one_of(field: &str, value: &str, allowed: &[&str]) -> Result<(), Invalid> {
    if allowed.contains(&value) {
        Ok(())
    } else {
        Err(invalid(format!(
            "{field}: {value:?} is not one of {}",
            allowed.join(", ")
        )))
    }
}

pub fn check_url(field: &str, raw: &str, policy: &NetPolicy) -> Result<(), Invalid> {
    if raw.len() > MAX_URL_CHARS {
        return Err(invalid(format!(
            "{field}: longer than {MAX_URL_CHARS} characters"
        )));
    }
    let url = url::Url::parse(raw).map_err(|err| invalid(format!("{field}: {err}")))?;
    atelier_netguard::check_url(policy, &url).map_err(|err| invalid(format!("{field}: {err}")))
}

fn check_urls(field: &str, urls: &[String], policy: &NetPolicy) -> Result<(), Invalid> {
    if urls.len() > MAX_URLS {
        return Err(invalid(format!("{field}: at most {MAX_URLS} urls")));
    }
    for (i, url) in urls.iter().enumerate() {
        check_url(&format!("{field}[{i}]"), url, policy)?;
    }
    Ok(())
}

/// Fields that only make sense for some capabilities; sending them elsewhere is a mistake
/// the partner wants to hear about rather than have silently ignored.
fn reject_foreign_fields(req: &CreateJobRequest) -> Result<(), Invalid> {
    let cap = req.capability.as_str();
    let image_generate = cap == "image.generate";
    let checks: [(&str, bool, bool); 7] = [
        ("width", req.width.is_some(), image_generate),
        ("height", req.height.is_some(), image_generate),
        ("quality", req.quality.is_some(), image_generate),
        ("force_single", req.force_single.is_some(), image_generate),
        ("seed", req.seed.is_some(), image_generate),
        ("settings", req.settings.is_some(), cap == "video.generate"),
        (
            "materials",
            !req.materials.is_empty(),
            cap == "video.generate",
        ),
    ];
    for (field, present, allowed) in checks {
        if present && !allowed {
            return Err(invalid(format!("{field}: not supported for {cap}")));
        }
    }
    if req.resolution.is_some() && cap != "image.upscale" {
        return Err(invalid(format!(
            "resolution: not supported for {cap} (video takes settings.resolution)"
        )));
    }
    if req.scale.is_some() && !(image_generate || cap == "image.upscale") {
        return Err(invalid(format!("scale: not supported for {cap}")));
    }
    Ok(())
}

/// Checks every documented limit and fills in defaults, so what is stored is exactly
/// what the worker will run.
pub fn validate(
    mut req: CreateJobRequest,
    policy: &NetPolicy,
) -> Result<CreateJobRequest, Invalid> {
    if req.capability == "video.slides" {
        return Err(invalid(
            "capability: video.slides jobs are created through POST /openapi/v1/creations",
        ));
    }
    if !CAPABILITIES.contains(&req.capability.as_str()) {
        return Err(invalid(format!(
            "capability: {:?} is not one of {}",
            req.capability,
            CAPABILITIES.join(", ")
        )));
    }
    reject_foreign_fields(&req)?;
    if let Some(prompt) = &req.prompt
        && prompt.chars().count() > MAX_PROMPT_CHARS
    {
        return Err(invalid(format!(
            "prompt: longer than {MAX_PROMPT_CHARS} characters"
        )));
    }
    check_urls("imageUrls", &req.image_urls, policy)?;
    check_urls("inputUrls", &req.input_urls, policy)?;
    if req.input_asset_ids.len() > MAX_URLS {
        return Err(invalid(format!("inputAssetIds: at most {MAX_URLS} ids")));
    }
    for (i, id) in req.input_asset_ids.iter().enumerate() {
        if AssetId::parse(id).is_none() {
            return Err(invalid(format!(
                "inputAssetIds[{i}]: {id:?} is not an asset id"
            )));
        }
    }
    if let Some(url) = &req.webhook_url {
        check_url("webhookUrl", url, policy)?;
    }
    let input_count = req.image_urls.len() + req.input_urls.len() + req.input_asset_ids.len();
    let has_prompt = req.prompt.as_deref().is_some_and(|p| !p.trim().is_empty());
    match req.capability.as_str() {
        "image.generate" => {
            if input_count > MAX_GENERATE_INPUTS {
                return Err(invalid(format!(
                    "imageUrls, inputUrls, inputAssetIds: image.generate takes at most \
                     {MAX_GENERATE_INPUTS} input images in all, got {input_count}"
                )));
            }
            validate_generate(&mut req, has_prompt)?
        }
        "image.inpaint" => {
            if input_count != 2 {
                return Err(invalid(
                    "imageUrls: image.inpaint needs exactly two images, [original, mask]",
                ));
            }
        }
        "image.upscale" => validate_upscale(&mut req, input_count)?,
        _ => validate_video(&mut req, has_prompt, input_count, policy)?,
    }
    Ok(req)
}

fn validate_generate(req: &mut CreateJobRequest, has_prompt: bool) -> Result<(), Invalid> {
    if !has_prompt {
        return Err(invalid("prompt: required for image.generate"));
    }
    let width = *req.width.get_or_insert(1024);
    let height = *req.height.get_or_insert(1024);
    for (field, side) in [("width", width), ("height", height)] {
        if !(MIN_SIDE..=MAX_SIDE).contains(&side) {
            return Err(invalid(format!(
                "{field}: must be between {MIN_SIDE} and {MAX_SIDE}"
            )));
        }
    }
    if u64::from(width) * u64::from(height) > 16_777_216 {
        return Err(invalid(
            "width, height: at most 16777216 pixels (e.g. 4096x4096)",
        ));
    }
    if let Some(scale) = req.scale
        && !(0.0..=100.0).contains(&scale)
    {
        return Err(invalid("scale: must be between 0 and 100"));
    }
    if let Some(quality) = &req.quality {
        one_of("quality", quality, &QUALITIES)?;
    }
    Ok(())
}

fn validate_upscale(req: &mut CreateJobRequest, input_count: usize) -> Result<(), Invalid> {
    if input_count != 1 {
        return Err(invalid(
            "imageUrls: image.upscale needs exactly one input image (imageUrls, inputUrls or inputAssetIds)",
        ));
    }
    match (&mut req.resolution, req.scale) {
        (Some(_), Some(_)) => Err(invalid("resolution, scale: give one or the other")),
        (Some(resolution), None) => {
            *resolution = resolution.to_ascii_lowercase();
            one_of("resolution", resolution, &UPSCALE_RESOLUTIONS)
        }
        (None, Some(scale)) if !(1.0..=8.0).contains(&scale) => {
            Err(invalid("scale: must be between 1 and 8 for image.upscale"))
        }
        (None, Some(_)) => Ok(()),
        (None, None) => {
            req.scale = Some(2.0);
            Ok(())
        }
    }
}

/// `listed` counts `imageUrls`, `inputUrls` and `inputAssetIds`.
fn validate_video(
    req: &mut CreateJobRequest,
    has_prompt: bool,
    listed: usize,
    policy: &NetPolicy,
) -> Result<(), Invalid> {
    if !has_prompt && req.materials.is_empty() {
        return Err(invalid(
            "prompt: video.generate needs a prompt or materials",
        ));
    }
    if req.materials.len() > MAX_MATERIALS {
        return Err(invalid(format!("materials: at most {MAX_MATERIALS}")));
    }
    let inputs = listed + req.materials.len();
    if inputs > MAX_VIDEO_INPUTS {
        return Err(invalid(format!(
            "imageUrls, inputUrls, inputAssetIds, materials: video.generate takes at most \
             {MAX_VIDEO_INPUTS} inputs in all, got {inputs}"
        )));
    }
    for (i, material) in req.materials.iter().enumerate() {
        one_of(
            &format!("materials[{i}].type"),
            &material.kind,
            &["image", "video", "audio"],
        )?;
        check_url(&format!("materials[{i}].url"), &material.url, policy)?;
        if material
            .label
            .as_ref()
            .is_some_and(|l| l.chars().count() > MAX_LABEL_CHARS)
        {
            return Err(invalid(format!(
                "materials[{i}].label: longer than {MAX_LABEL_CHARS} characters"
            )));
        }
    }
    let settings = req.settings.get_or_insert_with(VideoSettings::default);
    let ratio = settings.ratio.get_or_insert_with(|| "16:9".to_owned());
    one_of("settings.ratio", ratio, &VIDEO_RATIOS)?;
    let duration = *settings.duration.get_or_insert(5);
    if !(4..=15).contains(&duration) {
        return Err(invalid(
            "settings.duration: must be between 4 and 15 seconds",
        ));
    }
    let resolution = settings.resolution.get_or_insert_with(|| "720p".to_owned());
    one_of("settings.resolution", resolution, &VIDEO_RESOLUTIONS)
}

pub mod schema;
#[cfg(test)]
mod tests;
pub mod whole;
