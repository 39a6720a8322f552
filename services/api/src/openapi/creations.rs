//! The creations face's request body, built from what this server offers (the catalog:
//! types, languages, voices) with the rules of `faces::creations::create::validate`: one
//! branch per type that can be created here, and for narrated slides one per language, so a
//! voice is always one of its language's.
//!
//! One rule spans fields and is stated in words only: a `script` has `scene_count` scenes.

use atelier_slides::catalog as slides;
use serde_json::{Value, json};

use crate::faces::creations::{Offer, catalog::TYPES};
use crate::jobs::request::schema::{NON_BLANK_PATTERN, TEXT_PATTERN, nullable, url};

/// Not blank and at most `max` characters, like `check_len(.., required = true)`.
fn text(max: usize) -> Value {
    json!({"type": "string", "maxLength": max, "pattern": NON_BLANK_PATTERN})
}

/// `slides::quality` in any case: `720p`, `1080p`, or their aliases `1K`, `2K`.
const QUALITY_PATTERN: &str = "^(720[pP]|1080[pP]|[12][kK])$";

fn scene(narrated: bool) -> Value {
    let narration = if narrated {
        text(slides::NARRATION_MAX_CHARS)
    } else {
        json!({"type": "string", "maxLength": slides::NARRATION_MAX_CHARS, "pattern": TEXT_PATTERN})
    };
    let mut required = vec!["title"];
    if narrated {
        required.push("narration");
    }
    json!({
        "type": "object",
        "additionalProperties": false,
        "required": required,
        "properties": {
            "title": text(slides::TITLE_MAX_CHARS),
            "bullets": {"type": "array", "maxItems": slides::BULLETS_MAX,
                        "items": text(slides::BULLET_MAX_CHARS)},
            "narration": narration,
        },
    })
}

fn base(kind: &str, languages: &[&str], prompt_max: usize) -> Value {
    json!({
        "type": {"type": "string", "enum": [kind]},
        "prompt": text(prompt_max),
        "language": {"type": "string", "enum": languages, "default": languages.first()},
        "aspect_ratio": {"type": "string", "enum": slides::ASPECT_RATIOS,
                         "default": slides::DEFAULT_ASPECT_RATIO},
        "quality": {"type": "string", "pattern": QUALITY_PATTERN,
                    "description": "720p (1K) or 1080p (2K), any case"},
        "webhookUrl": url(),
    })
}

/// Every field but `type` and `prompt` is an `Option`: `null` is absence.
fn closed(description: &str, mut properties: Value) -> Value {
    for (name, schema) in properties.as_object_mut().into_iter().flatten() {
        if name != "type" && name != "prompt" {
            *schema = nullable(schema.take());
        }
    }
    json!({
        "type": "object",
        "description": description,
        "required": ["type", "prompt"],
        "additionalProperties": false,
        "properties": properties,
    })
}

/// A slides type; `voices` is `Some` for narrated ones.
fn slides_branch(kind: &str, languages: &[&str], voices: Option<&[String]>) -> Value {
    let mut properties = base(kind, languages, slides::PROMPT_MAX_CHARS);
    let scenes = (slides::SCENE_COUNT_MIN, slides::SCENE_COUNT_MAX);
    properties["scene_count"] = json!({"type": "integer", "minimum": scenes.0,
        "maximum": scenes.1, "default": slides::SCENE_COUNT_DEFAULT});
    let styles: Vec<&str> = slides::STYLES.iter().map(|s| s.id).collect();
    properties["style"] =
        json!({"type": "string", "enum": styles, "default": slides::DEFAULT_STYLE});
    properties["script"] = json!({"type": "array", "minItems": scenes.0, "maxItems": scenes.1,
        "items": scene(voices.is_some()),
        "description": "the partner's own scenes, as many as scene_count"});
    if let Some(voices) = voices {
        properties["voice"] = json!({"type": "string", "enum": voices});
    }
    closed(
        &format!("{kind}: values from GET /openapi/v1/catalog"),
        properties,
    )
}

fn request(offer: &Offer) -> Value {
    let mut branches = Vec::new();
    for kind in TYPES.iter().filter(|k| offer.availability(k).is_ok()) {
        let languages = offer.languages(kind);
        match *kind {
            "image" => branches.push(closed(
                "image: one image from the prompt, through image.generate",
                base(kind, &languages, crate::jobs::request::MAX_PROMPT_CHARS),
            )),
            "slide_deck" => branches.push(slides_branch(kind, &languages, None)),
            _ => {
                // One branch per language: its voices, and the language given or defaulted.
                for (i, language) in languages.iter().enumerate() {
                    let voices: Vec<String> = offer
                        .installed
                        .voices
                        .iter()
                        .filter(|v| v.language == *language)
                        .map(|v| v.voice_id.clone())
                        .collect();
                    let mut branch = slides_branch(kind, &[language], Some(&voices));
                    // The first language is the default: without `language` (or with
                    // `null`), that branch's voices apply.
                    if i > 0 {
                        branch["required"] = json!(["type", "prompt", "language"]);
                        branch["properties"]["language"] =
                            json!({"type": "string", "enum": [language]});
                    }
                    branches.push(branch);
                }
            }
        }
    }
    json!({"oneOf": branches})
}

/// The list's query, as `list::list` parses it.
fn list_parameter(name: &str) -> Option<Value> {
    Some(match name {
        "page" => json!({"type": "integer", "minimum": 1, "maximum": 1_000_000, "default": 1}),
        "page_size" => json!({"type": "integer", "minimum": 1, "maximum": 100, "default": 20}),
        "status" => json!({"type": "string",
            "enum": ["queued", "processing", "ready", "failed", "cancelled"]}),
        "type" => json!({"type": "string", "pattern": TEXT_PATTERN}),
        _ => return None,
    })
}

pub fn describe(doc: &mut Value, offer: &Offer) {
    doc["components"]["schemas"]["CreateCreation"] = request(offer);
    let create = &mut doc["paths"]["/openapi/v1/creations"]["post"];
    create["requestBody"] = json!({
        "required": true,
        "content": {"application/json": {"schema": {"$ref": "#/components/schemas/CreateCreation"}}},
    });
    super::native::declare_idempotency_key(create);
    let list = &mut doc["paths"]["/openapi/v1/creations"]["get"]["parameters"];
    for parameter in list.as_array_mut().into_iter().flatten() {
        let name = parameter["name"].as_str().unwrap_or_default().to_owned();
        if let Some(schema) = list_parameter(&name) {
            parameter["schema"] = schema;
        }
    }
}
