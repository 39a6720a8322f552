//! `POST /openapi/v1/creations`: the seed's body (`type`, `prompt`, `language`,
//! `aspect_ratio`, `scene_count`, and optional `voice`, `style`, `quality`, `script`,
//! `webhookUrl`), checked against the catalog by a pure function, then accepted as one job
//! of the shared core — priced, charged and recorded as a creation in one transaction.

use atelier_netguard::NetPolicy;
use atelier_slides::catalog as slides;
use atelier_slides::params::{Kind, Scene, SlidesParams};
use axum::{
    Json,
    body::Bytes,
    extract::{Extension, State},
    http::{HeaderMap, StatusCode},
};
use serde::Deserialize;
use serde_json::Value;

use super::catalog::{Offer, TYPE_ALIASES, TYPES};
use super::error::CreationError;
use super::view::{self, CreationRow};
use crate::{
    AppState,
    auth::Caller,
    error::ApiError,
    http::RequestId,
    jobs::{
        request::{self, CreateJobRequest},
        routes::idempotency_key,
        store::{self, Created, NewJob},
    },
};

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CreateCreation {
    #[serde(rename = "type")]
    pub kind: String,
    #[serde(default)]
    pub prompt: Option<String>,
    #[serde(default)]
    pub language: Option<String>,
    #[serde(default)]
    pub aspect_ratio: Option<String>,
    #[serde(default, deserialize_with = "request::whole::option")]
    pub scene_count: Option<u32>,
    #[serde(default, alias = "voice_id")]
    pub voice: Option<String>,
    #[serde(default, alias = "style_id")]
    pub style: Option<String>,
    #[serde(default, alias = "output_quality")]
    pub quality: Option<String>,
    #[serde(default, rename = "webhookUrl", alias = "webhook_url")]
    pub webhook_url: Option<String>,
    #[serde(default)]
    pub script: Option<Vec<Scene>>,
}

/// A request that passed every rule: the job to run, its type and its price.
#[derive(Debug)]
pub struct Accepted {
    pub kind: &'static str,
    pub capability: &'static str,
    pub params: Value,
    pub webhook_url: Option<String>,
    pub price: i64,
}

fn strings(values: impl IntoIterator<Item = impl ToString>) -> Option<Vec<String>> {
    Some(values.into_iter().map(|v| v.to_string()).collect())
}

fn pick<'a>(
    field: &str,
    value: Option<&'a str>,
    default: &'a str,
    allowed: &[&str],
) -> Result<&'a str, CreationError> {
    let value = value.unwrap_or(default);
    if allowed.contains(&value) {
        Ok(value)
    } else {
        Err(CreationError::invalid(
            field,
            format!("{field}: {value:?} is not one of {}", allowed.join(", ")),
            strings(allowed),
        ))
    }
}

fn check_len(field: &str, text: &str, max: usize, required: bool) -> Result<(), CreationError> {
    if required && text.trim().is_empty() {
        return Err(CreationError::invalid(
            field,
            format!("{field}: must not be empty"),
            None,
        ));
    }
    if text.chars().count() > max {
        return Err(CreationError::invalid(
            field,
            format!("{field}: longer than {max} characters"),
            None,
        ));
    }
    Ok(())
}

fn check_script(script: &[Scene], narrated: bool) -> Result<(), CreationError> {
    for (i, scene) in script.iter().enumerate() {
        check_len(
            &format!("script[{i}].title"),
            &scene.title,
            slides::TITLE_MAX_CHARS,
            true,
        )?;
        if scene.bullets.len() > slides::BULLETS_MAX {
            return Err(CreationError::invalid(
                &format!("script[{i}].bullets"),
                format!("script[{i}].bullets: at most {}", slides::BULLETS_MAX),
                None,
            ));
        }
        for (j, bullet) in scene.bullets.iter().enumerate() {
            let field = format!("script[{i}].bullets[{j}]");
            check_len(&field, bullet, slides::BULLET_MAX_CHARS, true)?;
        }
        let field = format!("script[{i}].narration");
        check_len(
            &field,
            &scene.narration,
            slides::NARRATION_MAX_CHARS,
            narrated,
        )?;
    }
    Ok(())
}

/// Checks a request against the catalog and fills in its defaults. Pure.
pub fn validate(
    req: CreateCreation,
    offer: &Offer,
    policy: &NetPolicy,
) -> Result<Accepted, CreationError> {
    let kind_name = TYPE_ALIASES
        .iter()
        .find(|(alias, _)| *alias == req.kind)
        .map_or(req.kind.as_str(), |(_, name)| *name);
    let kind = *TYPES.iter().find(|t| **t == kind_name).ok_or_else(|| {
        CreationError::invalid(
            "type",
            format!("type: {:?} is not one of {}", req.kind, TYPES.join(", ")),
            strings(TYPES),
        )
    })?;
    offer.availability(kind).map_err(|reason| {
        CreationError::invalid(
            "type",
            format!("type: {kind} is not available: {reason}"),
            None,
        )
    })?;
    let prompt = req.prompt.clone().unwrap_or_default();
    check_len("prompt", &prompt, slides::PROMPT_MAX_CHARS, true)?;
    let languages = offer.languages(kind);
    let language = pick(
        "language",
        req.language.as_deref(),
        languages[0],
        &languages,
    )?;
    let ratio = pick(
        "aspect_ratio",
        req.aspect_ratio.as_deref(),
        slides::DEFAULT_ASPECT_RATIO,
        &slides::ASPECT_RATIOS,
    )?;
    let quality = match req.quality.as_deref() {
        None => slides::DEFAULT_QUALITY,
        Some(q) => slides::quality(q).ok_or_else(|| {
            CreationError::invalid(
                "quality",
                format!("quality: {q:?} is not one of 720p (1K), 1080p (2K)"),
                strings(slides::QUALITIES),
            )
        })?,
    };
    let (width, height) = slides::frame_size(ratio, quality).expect("catalog ratios and qualities");
    if let Some(url) = &req.webhook_url {
        request::check_url("webhookUrl", url, policy)
            .map_err(|e| CreationError::invalid("webhookUrl", e.0, None))?;
    }
    if kind == "image" {
        for (field, present) in [
            ("scene_count", req.scene_count.is_some()),
            ("voice", req.voice.is_some()),
            ("style", req.style.is_some()),
            ("script", req.script.is_some()),
        ] {
            if present {
                return Err(CreationError::invalid(
                    field,
                    format!("{field}: not supported for image"),
                    None,
                ));
            }
        }
        let native = request::validate(
            CreateJobRequest {
                capability: "image.generate".to_owned(),
                prompt: Some(prompt),
                width: Some(width),
                height: Some(height),
                webhook_url: req.webhook_url.clone(),
                ..Default::default()
            },
            policy,
        )
        .map_err(|e| CreationError::from(ApiError::BadRequest(e.0)))?;
        return Ok(Accepted {
            kind,
            capability: "image.generate",
            params: serde_json::to_value(&native).map_err(anyhow::Error::from)?,
            webhook_url: req.webhook_url,
            price: offer.price(kind).unwrap_or_default(),
        });
    }

    let slides_kind = if kind == "slides_video" {
        Kind::SlidesVideo
    } else {
        Kind::SlideDeck
    };
    let range = slides::SCENE_COUNT_MIN..=slides::SCENE_COUNT_MAX;
    let scene_count = req
        .scene_count
        .or(req.script.as_ref().map(|s| s.len() as u32))
        .unwrap_or(slides::SCENE_COUNT_DEFAULT);
    if !range.contains(&scene_count) {
        return Err(CreationError::invalid(
            "scene_count",
            format!(
                "scene_count: {scene_count} is not between {} and {}",
                range.start(),
                range.end()
            ),
            None,
        ));
    }
    if let Some(script) = &req.script {
        if script.len() as u32 != scene_count {
            return Err(CreationError::invalid(
                "script",
                format!(
                    "script: {} scenes given, scene_count is {scene_count}",
                    script.len()
                ),
                None,
            ));
        }
        check_script(script, slides_kind.narrated())?;
    }
    let voice = if slides_kind.narrated() {
        let voices: Vec<&str> = offer
            .installed
            .voices
            .iter()
            .filter(|v| v.language == language)
            .map(|v| v.voice_id.as_str())
            .collect();
        Some(pick("voice", req.voice.as_deref(), voices[0], &voices)?.to_owned())
    } else if req.voice.is_some() {
        return Err(CreationError::invalid(
            "voice",
            "voice: a slide deck is not narrated",
            None,
        ));
    } else {
        None
    };
    let styles: Vec<&str> = slides::STYLES.iter().map(|s| s.id).collect();
    let style = pick(
        "style",
        req.style.as_deref(),
        slides::DEFAULT_STYLE,
        &styles,
    )?;
    let params = SlidesParams {
        kind: slides_kind,
        prompt,
        language: language.to_owned(),
        aspect_ratio: ratio.to_owned(),
        quality: quality.to_owned(),
        width,
        height,
        scene_count,
        voice,
        style: style.to_owned(),
        script: req.script,
        webhook_url: req.webhook_url.clone(),
    };
    Ok(Accepted {
        kind,
        capability: "video.slides",
        params: serde_json::to_value(&params).map_err(anyhow::Error::from)?,
        webhook_url: req.webhook_url,
        price: offer.price(kind).unwrap_or_default() * i64::from(scene_count),
    })
}

/// Create a creation; its job is queued at once. Poll `GET /creations/jobs/{job_id}`.
#[utoipa::path(post, path = "/openapi/v1/creations", tag = "creations",
    request_body(content = Object, description = "`type`, `prompt`, and optionally `language`, `aspect_ratio`, `scene_count`, `voice`, `style`, `quality`, `script` `[{title, bullets, narration}]`, `webhookUrl`; values from /catalog"),
    params(("Idempotency-Key" = Option<String>, Header,
            description = "Same key and body returns the existing creation; another body is a 409")),
    responses((status = 201, description = "created", body = Object),
              (status = 200, description = "reused through Idempotency-Key", body = Object),
              (status = 400, description = "validation_failed: names the field and the allowed values", body = super::error::ErrorBody),
              (status = 401, description = "invalid_api_key", body = super::error::ErrorBody),
              (status = 402, description = "insufficient_credits", body = super::error::ErrorBody),
              (status = 409, description = "idempotency_conflict", body = super::error::ErrorBody)))]
pub async fn create(
    State(state): State<AppState>,
    caller: Result<Caller, ApiError>,
    Extension(request_id): Extension<RequestId>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<(StatusCode, HeaderMap, Json<Value>), CreationError> {
    let caller = caller?;
    let idempotency_key = idempotency_key(&headers)?;
    let value: Value = serde_json::from_slice(&body)
        .map_err(|err| CreationError::invalid("body", format!("request body: {err}"), None))?;
    let req: CreateCreation = serde_json::from_value(value.clone())
        .map_err(|err| CreationError::invalid("body", format!("request body: {err}"), None))?;
    let policy = NetPolicy {
        allow_private_networks: state.config.allow_private_networks,
    };
    let accepted = validate(req, &state.offer, &policy)?;
    let new = NewJob {
        client: caller.client.clone(),
        capability: accepted.capability.to_owned(),
        params: accepted.params,
        webhook_url: accepted.webhook_url,
        hash: store::request_hash(&value),
        idempotency_key,
        model_id: None,
        credits: accepted.price,
        request_id: request_id.0,
        creation: Some(accepted.kind.to_owned()),
    };
    let created = store::create_detached(state.clone(), new).await?;
    let quota = created.quota_headers();
    let (status, row) = match created {
        Created::New(row, _) => (StatusCode::CREATED, row),
        Created::Reused(row) => (StatusCode::OK, row),
    };
    let creation = CreationRow::of_job(&state.pool, &caller.client, &row.id)
        .await?
        .ok_or_else(|| CreationError::not_found("creation"))?;
    let mut answer = view::summary(&creation, &row);
    answer["reused"] = Value::Bool(status == StatusCode::OK);
    Ok((status, quota, Json(answer)))
}

#[cfg(test)]
mod tests;
