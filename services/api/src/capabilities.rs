//! `GET /api/v1/capabilities`: what Atelier can do, and whether a worker serves it now.

use atelier_kit::nats::CAPABILITIES;
use axum::{Json, extract::State};
use serde::Serialize;
use utoipa::ToSchema;

use crate::{AppState, auth::Caller};

#[derive(Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct Capability {
    pub capability: &'static str,
    pub description: &'static str,
    /// True when at least one worker for it announced itself recently; jobs for a
    /// capability without a worker wait queued, and expire after their time-to-live.
    pub available: bool,
    pub workers: usize,
    /// The models a job may name in `model` (`ATELIER_ROUTES`); empty when the capability
    /// runs on its local engine only.
    pub models: Vec<Model>,
}

#[derive(Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct Model {
    pub model: String,
    /// `openai`, `ark`, `gemini`, `jimeng`, or `local`.
    pub provider: String,
    /// Served when the capability has a live worker (workers refuse to start when a route's
    /// provider has no credentials).
    pub available: bool,
}

#[derive(Serialize, ToSchema)]
pub struct CapabilityList {
    pub capabilities: Vec<Capability>,
}

fn describe(capability: &str) -> &'static str {
    match capability {
        "image.generate" => "图片生成 (image generation)",
        "image.inpaint" => "局部重绘 (inpainting over a mask)",
        "image.upscale" => "智能超清 (upscaling to 2k, 4k or by a factor)",
        "video.slides" => {
            "课件视频 (narrated slide videos and decks, through /openapi/v1/creations)"
        }
        _ => "视频生成 (video generation)",
    }
}

fn models(routes: &atelier_providers::RouteTable, capability: &str, available: bool) -> Vec<Model> {
    let Ok(parsed) = capability.parse::<atelier_providers::Capability>() else {
        return Vec::new();
    };
    crate::config::models_for(routes, capability)
        .into_iter()
        .map(|model| {
            let provider = match routes.resolve(parsed, Some(&model)) {
                atelier_providers::Route::Provider { provider, .. } => provider.to_string(),
                atelier_providers::Route::Local => "local".to_owned(),
            };
            Model {
                model,
                provider,
                available,
            }
        })
        .collect()
}

/// The four capabilities and which are served right now.
#[utoipa::path(get, path = "/api/v1/capabilities", tag = "capabilities",
    responses((status = 200, body = CapabilityList), (status = 401, body = crate::error::ErrorBody)))]
pub async fn list(State(state): State<AppState>, _caller: Caller) -> Json<CapabilityList> {
    Json(CapabilityList {
        capabilities: CAPABILITIES
            .iter()
            .map(|&capability| {
                let workers = state.presence.live_workers(capability);
                Capability {
                    capability,
                    description: describe(capability),
                    available: workers > 0,
                    workers,
                    models: models(&state.config.routes, capability, workers > 0),
                }
            })
            .collect(),
    })
}
