//! `GET /openapi/v1/catalog`: every content type with the options this server really
//! supports — languages with a voice and a font, the voices espeak-ng lists, the slide
//! styles that exist, sizes, scene counts and prices. Built once at start-up from
//! `atelier_slides::catalog`, the same list the request validation and the engine use.

use std::collections::{BTreeMap, HashMap};

use atelier_slides::catalog::{self as slides, Installed};
use axum::{Json, extract::State};
use serde::Serialize;
use serde_json::{Value, json};

use super::error::CreationError;
use crate::{AppState, auth::Caller, error::ApiError};

/// Content types this face knows: the first three are built; the rest are KPainter's other
/// published types, listed as unavailable rather than left out.
pub const TYPES: [&str; 6] = [
    "slides_video",
    "slide_deck",
    "image",
    "explainer_video",
    "vector_animation",
    "interactive_lesson",
];

/// Accepted on input for KPainter's renamed types.
pub const TYPE_ALIASES: [(&str, &str); 2] = [
    ("knowledge_video", "explainer_video"),
    ("web_app", "interactive_lesson"),
];

/// What the face offers, fixed at start-up.
#[derive(Clone, Debug)]
pub struct Offer {
    pub installed: Installed,
    /// Credits per scene (slides types) or per creation (`image`).
    pub prices: HashMap<String, i64>,
    /// How prompts become scenes: the template outliner or the routed chat model.
    pub outliner: String,
}

impl Offer {
    /// Whether a type can be created here, and why not when it cannot.
    pub fn availability(&self, kind: &str) -> Result<(), String> {
        match kind {
            "slides_video" => match &self.installed.problem {
                Some(problem) => Err(format!("no speech synthesiser: {problem}")),
                None if self.installed.languages.is_empty() => {
                    Err("no language has both a voice and a font installed".to_owned())
                }
                None => self.price(kind).map(|_| ()),
            },
            "slide_deck" if self.installed.languages.is_empty() => {
                Err("no language has a font installed".to_owned())
            }
            "slide_deck" | "image" => self.price(kind).map(|_| ()),
            _ => Err("not built in Atelier yet".to_owned()),
        }
    }

    pub fn price(&self, kind: &str) -> Result<i64, String> {
        self.prices
            .get(kind)
            .copied()
            .ok_or_else(|| format!("no price configured for {kind} (ATELIER_CREATION_PRICES)"))
    }

    /// Languages a type can be made in: slides need a font and a voice for it (decks too, so
    /// a deck can always become a video); an image takes a prompt in any language.
    pub fn languages(&self, kind: &str) -> Vec<&'static str> {
        match kind {
            "slides_video" | "slide_deck" => {
                self.installed.languages.iter().map(|l| l.code).collect()
            }
            _ => slides::LANGUAGES.iter().map(|l| l.code).collect(),
        }
    }
}

#[derive(Serialize)]
struct Quality {
    value: &'static str,
    aliases: [&'static str; 1],
    /// Pixel size per aspect ratio.
    sizes: BTreeMap<&'static str, [u32; 2]>,
}

fn qualities() -> Vec<Quality> {
    slides::QUALITIES
        .iter()
        .map(|&value| Quality {
            value,
            aliases: [if value == "720p" { "1K" } else { "2K" }],
            sizes: slides::ASPECT_RATIOS
                .iter()
                .filter_map(|&r| slides::frame_size(r, value).map(|(w, h)| (r, [w, h])))
                .collect(),
        })
        .collect()
}

fn content_type(offer: &Offer, kind: &str) -> Value {
    let (name, description) = match kind {
        "slides_video" => (
            "课件视频 (slides video)",
            "Narrated slides: one slide per scene, spoken narration, subtitles, an H.264 MP4.",
        ),
        "slide_deck" => (
            "幻灯片 (slide deck)",
            "The same slides, without narration, as one PDF and an image per slide.",
        ),
        "image" => (
            "图片 (image)",
            "One image from the prompt, through image.generate.",
        ),
        "explainer_video" => ("讲解视频 (explainer video)", "A full explainer video."),
        "vector_animation" => ("矢量动画 (vector animation)", "An animated vector video."),
        _ => ("互动课 (interactive lesson)", "An interactive web lesson."),
    };
    let mut entry = json!({
        "type": kind,
        "name": name,
        "description": description,
        "available": offer.availability(kind).is_ok(),
    });
    if let Err(reason) = offer.availability(kind) {
        entry["unavailable_reason"] = json!(reason);
    }
    if !["slides_video", "slide_deck", "image"].contains(&kind) {
        return entry;
    }
    let slides_type = kind != "image";
    let languages = offer.languages(kind);
    let extra = json!({
        "required_fields": ["type", "prompt"],
        "optional_fields": if slides_type {
            json!(["language", "aspect_ratio", "scene_count", "quality", "style", "script", "webhookUrl"]
                .into_iter()
                .chain((kind == "slides_video").then_some("voice"))
                .collect::<Vec<_>>())
        } else {
            json!(["language", "aspect_ratio", "quality", "webhookUrl"])
        },
        "aspect_ratios": slides::ASPECT_RATIOS,
        "default_aspect_ratio": slides::DEFAULT_ASPECT_RATIO,
        "qualities": qualities(),
        "default_quality": slides::DEFAULT_QUALITY,
        "languages": languages,
        "default_language": languages.first(),
    });
    merge(&mut entry, extra);
    if slides_type {
        merge(
            &mut entry,
            json!({
                "scene_count": {
                    "min": slides::SCENE_COUNT_MIN,
                    "max": slides::SCENE_COUNT_MAX,
                    "default": slides::SCENE_COUNT_DEFAULT,
                },
                "styles": slides::STYLES.iter().map(|s| s.id).collect::<Vec<_>>(),
                "default_style": slides::DEFAULT_STYLE,
                "outline": offer.outliner,
                "price": {"credits_per_scene": offer.prices.get(kind)},
                "artifact_kinds": if kind == "slides_video" {
                    json!(["video", "cover", "subtitle", "slides_pdf", "scene_image", "scene_audio"])
                } else {
                    json!(["slides_pdf", "cover", "scene_image"])
                },
            }),
        );
    } else {
        entry["price"] = json!({"credits": offer.prices.get(kind)});
        entry["artifact_kinds"] = json!(["image"]);
    }
    if kind == "slides_video" {
        let voices: BTreeMap<&str, Vec<&str>> = languages
            .iter()
            .map(|&l| {
                let ids = offer.installed.voices.iter().filter(|v| v.language == l);
                (l, ids.map(|v| v.voice_id.as_str()).collect())
            })
            .collect();
        let defaults: BTreeMap<&str, Option<&str>> = languages
            .iter()
            .map(|&l| {
                (
                    l,
                    offer
                        .installed
                        .default_voice(l)
                        .map(|v| v.voice_id.as_str()),
                )
            })
            .collect();
        entry["voices"] = json!(voices);
        entry["default_voice"] = json!(defaults);
    }
    entry
}

fn merge(into: &mut Value, from: Value) {
    if let (Value::Object(into), Value::Object(from)) = (into, from) {
        into.extend(from);
    }
}

/// The whole catalog document.
pub fn document(offer: &Offer) -> Value {
    json!({
        "api_version": "v1",
        "content_types": TYPES.iter().map(|k| content_type(offer, k)).collect::<Vec<_>>(),
        "type_aliases": TYPE_ALIASES.iter().copied().collect::<BTreeMap<_, _>>(),
        "languages": slides::LANGUAGES
            .iter()
            .map(|l| json!({"code": l.code, "name": l.name}))
            .collect::<Vec<_>>(),
        "voices": offer.installed.voices,
        "styles": slides::STYLES,
        "limits": {
            "prompt_max_chars": slides::PROMPT_MAX_CHARS,
            "title_max_chars": slides::TITLE_MAX_CHARS,
            "bullets_max": slides::BULLETS_MAX,
            "bullet_max_chars": slides::BULLET_MAX_CHARS,
            "narration_max_chars": slides::NARRATION_MAX_CHARS,
        },
    })
}

/// Every content type and the options this server supports for it.
#[utoipa::path(get, path = "/openapi/v1/catalog", tag = "creations",
    responses((status = 200, description = "content_types with ratios, qualities, scene counts, languages, voices, styles, prices", body = Object),
              (status = 401, body = super::error::ErrorBody)))]
pub async fn get(
    State(state): State<AppState>,
    caller: Result<Caller, ApiError>,
) -> Result<Json<Value>, CreationError> {
    caller?;
    Ok(Json(document(&state.offer)))
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use atelier_slides::catalog::{Voice, language};

    pub fn offer() -> Offer {
        let voice = |id: &str, lang: &'static str| Voice {
            voice_id: id.to_owned(),
            language: lang,
            name: id.to_owned(),
            gender: "male",
            engine: "espeak-ng",
        };
        Offer {
            installed: Installed {
                voices: vec![
                    voice("cmn", "zh"),
                    voice("cmn+f3", "zh"),
                    voice("en-us", "en"),
                ],
                languages: vec![language("zh").unwrap(), language("en").unwrap()],
                problem: None,
            },
            prices: [("slides_video", 10), ("slide_deck", 4), ("image", 10)]
                .map(|(k, v)| (k.to_owned(), v))
                .into(),
            outliner: "template-v1".to_owned(),
        }
    }

    #[test]
    fn every_known_type_is_listed_and_unbuilt_ones_say_so() {
        let doc = document(&offer());
        let types = doc["content_types"].as_array().unwrap();
        assert_eq!(types.len(), 6);
        assert_eq!(types[0]["type"], "slides_video");
        assert_eq!(types[0]["available"], true);
        assert_eq!(types[0]["voices"]["zh"], json!(["cmn", "cmn+f3"]));
        assert_eq!(types[0]["default_voice"]["en"], "en-us");
        assert_eq!(types[0]["scene_count"]["default"], 6);
        assert_eq!(
            types[0]["qualities"][0]["sizes"]["16:9"],
            json!([1280, 720])
        );
        assert_eq!(types[3]["available"], false);
        assert_eq!(types[3]["unavailable_reason"], "not built in Atelier yet");
    }

    #[test]
    fn without_a_synthesiser_slides_are_unavailable_but_images_are_not() {
        let mut offer = offer();
        offer.installed = Installed {
            problem: Some("espeak-ng: No such file or directory".into()),
            ..Default::default()
        };
        let doc = document(&offer);
        assert_eq!(doc["content_types"][0]["available"], false);
        assert_eq!(
            doc["content_types"][2]["available"], true,
            "images need no voice"
        );
    }
}
