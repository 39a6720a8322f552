//! A slides job's parameters, as the api stores them once validated and as the engine reads
//! them: the one shape both sides agree on.

use serde::{Deserialize, Serialize};

/// What a creation makes.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Kind {
    /// Slides shown for their narration, with subtitles: an MP4.
    SlidesVideo,
    /// The same slides, without narration: a PDF.
    SlideDeck,
}

impl Kind {
    pub fn as_str(self) -> &'static str {
        match self {
            Kind::SlidesVideo => "slides_video",
            Kind::SlideDeck => "slide_deck",
        }
    }

    pub fn narrated(self) -> bool {
        self == Kind::SlidesVideo
    }
}

/// One scene: a slide's title and bullets, and what is said over it.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Scene {
    pub title: String,
    #[serde(default)]
    pub bullets: Vec<String>,
    #[serde(default)]
    pub narration: String,
}

/// The validated request of a `video.slides` job; every default is filled in.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct SlidesParams {
    #[serde(rename = "type")]
    pub kind: Kind,
    pub prompt: String,
    pub language: String,
    pub aspect_ratio: String,
    pub quality: String,
    pub width: u32,
    pub height: u32,
    pub scene_count: u32,
    /// An espeak-ng voice id from the catalog; absent for a deck, which is not narrated.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub voice: Option<String>,
    pub style: String,
    /// The partner's own scenes, used instead of the outline step.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub script: Option<Vec<Scene>>,
    #[serde(
        rename = "webhookUrl",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub webhook_url: Option<String>,
}
