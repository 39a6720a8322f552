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
                }
            })
            .collect(),
    })
}
