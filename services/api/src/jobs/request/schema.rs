//! The JSON Schema of `POST /api/v1/jobs`, built from the same constants as [`super::validate`]
//! so the document and the rules cannot drift: one branch per capability, each closed
//! (`additionalProperties: false`), so a body the schema accepts is a body the api accepts.
//!
//! Two rules span several fields and JSON Schema cannot state them; the branches' descriptions
//! do, and the fuzz gate (tests/fuzz/hooks.py) leaves out the bodies that break them: the
//! number of inputs counted over `imageUrls`, `inputUrls`, `inputAssetIds` (and `materials`),
//! and `image.generate`'s pixel budget, `width × height ≤ 16777216`. An `inputAssetIds` entry
//! must also name an asset of the caller's that exists.

use serde_json::{Value, json};

use super::{
    MAX_GENERATE_INPUTS, MAX_LABEL_CHARS, MAX_MATERIALS, MAX_PROMPT_CHARS, MAX_SIDE, MAX_URL_CHARS,
    MAX_URLS, MAX_VIDEO_INPUTS, MIN_SIDE, QUALITIES, VIDEO_RATIOS, VIDEO_RESOLUTIONS,
};

/// An http(s) URL with a named host, as the api parses it (the `url` crate) and the SSRF
/// guard admits it: a host whose last label starts with a letter is never read as an IPv4
/// address. IP-literal hosts are refused by policy anyway unless private networks are allowed.
pub const URL_PATTERN: &str = r"^https?://([A-Za-z0-9-]+\.)*[A-Za-z][A-Za-z0-9-]*(:[1-9][0-9]{0,3})?(/[A-Za-z0-9._~!$&'()*+,;=:@%/-]*)?(\?[A-Za-z0-9._~!$&'()*+,;=:@%/?-]*)?$";

/// Text stored as given: PostgreSQL cannot hold a NUL character (a 400 names it).
pub const TEXT_PATTERN: &str = r"^[^\x00]*$";

/// Text that must say something: not only whitespace, and no NUL character.
pub const NON_BLANK_PATTERN: &str = r"^[^\x00]*[^\x00\s][^\x00]*$";

/// An optional field: serde reads `null` as absent, so the schema admits it too.
pub fn nullable(mut schema: Value) -> Value {
    if let Some(kind) = schema["type"].as_str() {
        schema["type"] = json!([kind, "null"]);
    }
    if let Some(values) = schema.get_mut("enum").and_then(Value::as_array_mut) {
        values.push(Value::Null);
    }
    schema
}

pub fn url() -> Value {
    json!({"type": "string", "format": "uri", "maxLength": MAX_URL_CHARS, "pattern": URL_PATTERN})
}

/// An asset id as `AssetId::parse` accepts it.
pub fn asset_id() -> Value {
    json!({"type": "string", "pattern": "^asset_[0-9A-Za-z]{26}$"})
}

fn list(items: Value, max: usize) -> Value {
    json!({"type": "array", "items": items, "maxItems": max})
}

/// A required prompt says something; an optional one may be `null`.
fn prompt(required: bool) -> Value {
    if required {
        json!({"type": "string", "maxLength": MAX_PROMPT_CHARS, "pattern": NON_BLANK_PATTERN})
    } else {
        nullable(json!({"type": "string", "maxLength": MAX_PROMPT_CHARS, "pattern": TEXT_PATTERN}))
    }
}

/// The fields every capability takes; `inputs` caps each input list.
fn common(capability: &str, models: &[String], inputs: usize, prompt_required: bool) -> Value {
    let mut properties = json!({
        "capability": {"type": "string", "enum": [capability]},
        "prompt": prompt(prompt_required),
        "imageUrls": list(url(), inputs.min(MAX_URLS)),
        "inputUrls": list(url(), inputs.min(MAX_URLS)),
        "inputAssetIds": list(asset_id(), inputs.min(MAX_URLS)),
        "webhookUrl": nullable(url()),
    });
    // Without routes for the capability there is no model to choose: `model` is refused.
    if !models.is_empty() {
        properties["model"] = nullable(json!({"type": "string", "enum": models,
            "description": "one of the models GET /api/v1/capabilities lists for the capability"}));
    }
    properties
}

fn branch(description: &str, properties: Value, required: &[&str]) -> Value {
    json!({
        "type": "object",
        "description": description,
        "properties": properties,
        "required": required,
        "additionalProperties": false,
    })
}

fn generate(models: &[String]) -> Value {
    let mut properties = common("image.generate", models, MAX_GENERATE_INPUTS, true);
    let side =
        json!({"type": "integer", "minimum": MIN_SIDE, "maximum": MAX_SIDE, "default": 1024});
    properties["width"] = nullable(side.clone());
    properties["height"] = nullable(side);
    properties["scale"] = nullable(json!({"type": "number", "minimum": 0, "maximum": 100,
        "description": "text influence"}));
    properties["quality"] = nullable(json!({"type": "string", "enum": QUALITIES}));
    properties["force_single"] = nullable(json!({"type": "boolean"}));
    properties["seed"] = nullable(json!({"type": "integer", "minimum": 0, "maximum": u64::MAX,
        "description": "makes the sandbox renderer reproducible"}));
    branch(
        &format!(
            "At most {MAX_GENERATE_INPUTS} input images in imageUrls, inputUrls and \
             inputAssetIds together; width × height at most 16777216 pixels."
        ),
        properties,
        &["capability", "prompt"],
    )
}

fn inpaint(models: &[String]) -> Value {
    branch(
        "Exactly two input images, [original, mask], from imageUrls, inputUrls and \
         inputAssetIds together.",
        common("image.inpaint", models, 2, false),
        &["capability"],
    )
}

fn upscale(models: &[String]) -> Value {
    let mut properties = common("image.upscale", models, 1, false);
    properties["resolution"] = nullable(json!({"type": "string", "pattern": "^[24][kK]$",
        "description": "2k or 4k (any case); give resolution or scale, not both"}));
    properties["scale"] = nullable(json!({"type": "number", "minimum": 1, "maximum": 8,
        "description": "factor; 2 when neither resolution nor scale is given"}));
    let mut schema = branch(
        "Exactly one input image, from imageUrls, inputUrls or inputAssetIds.",
        properties,
        &["capability"],
    );
    schema["not"] = json!({"required": ["resolution", "scale"], "properties": {
        "resolution": {"type": "string"}, "scale": {"type": "number"}}});
    schema
}

fn video(models: &[String]) -> Value {
    let mut properties = common("video.generate", models, MAX_VIDEO_INPUTS, false);
    properties["settings"] = nullable(json!({
        "type": "object",
        "additionalProperties": false,
        "properties": {
            "ratio": nullable(json!({"type": "string", "enum": VIDEO_RATIOS, "default": "16:9"})),
            "duration": nullable(json!({"type": "integer", "minimum": 4, "maximum": 15,
                                        "default": 5, "description": "seconds"})),
            "resolution": nullable(json!({"type": "string", "enum": VIDEO_RESOLUTIONS,
                                          "default": "720p"})),
        },
    }));
    properties["materials"] = json!({
        "type": "array",
        "maxItems": MAX_MATERIALS,
        "items": {
            "type": "object",
            "additionalProperties": false,
            "required": ["type", "url"],
            "properties": {
                "type": {"type": "string", "enum": ["image", "video", "audio"]},
                "url": url(),
                "label": nullable(json!({"type": "string", "maxLength": MAX_LABEL_CHARS,
                    "pattern": TEXT_PATTERN,
                    "description": "how the prompt refers to it, e.g. @图片1"})),
            },
        },
    });
    let mut schema = branch(
        &format!(
            "A prompt, materials, or both. At most {MAX_VIDEO_INPUTS} inputs in imageUrls, \
             inputUrls, inputAssetIds and materials together."
        ),
        properties,
        &["capability"],
    );
    schema["anyOf"] = json!([
        {"required": ["prompt"],
         "properties": {"prompt": {"type": "string", "pattern": NON_BLANK_PATTERN}}},
        {"required": ["materials"], "properties": {"materials": {"minItems": 1}}},
    ]);
    schema
}

/// The request schema, with the models each capability can be routed to (`models_for`).
/// It replaces the derived `CreateJobRequest` in the served document (crate::openapi), which
/// is JSON here because utoipa's types have no `not`.
pub fn create_job_request(models: impl Fn(&str) -> Vec<String>) -> Value {
    json!({
        "description": "A job request: one shape per capability (video.slides jobs are \
                        created through POST /openapi/v1/creations).",
        "oneOf": [
            generate(&models("image.generate")),
            inpaint(&models("image.inpaint")),
            upscale(&models("image.upscale")),
            video(&models("video.generate")),
        ],
    })
}
