//! `manifest.json`, the last output of every slides job: what each other output is, and the
//! scenes with their text, files and timing. The creations API reads it to show a creation's
//! artifacts and scenes, so the engine and the api share this one definition.

use serde::{Deserialize, Serialize};

use crate::speech::Cue;

pub const CONTENT_TYPE: &str = "application/json";

/// One output file, by its position among the job's outputs.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Artifact {
    pub position: usize,
    /// `video`, `cover`, `subtitle`, `slides_pdf`.
    pub kind: String,
    /// `mp4`, `jpg`, `srt`, `vtt`, `pdf`.
    pub format: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub language: Option<String>,
    /// The primary result (`main_url`).
    #[serde(default)]
    pub main: bool,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct SceneRecord {
    /// 1-based, as people count slides.
    pub index: usize,
    pub title: String,
    pub bullets: Vec<String>,
    pub narration: String,
    /// Position of the slide image among the outputs.
    pub image: usize,
    /// Position of the scene's narration audio, when narrated.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub audio: Option<usize>,
    pub start_seconds: f64,
    pub duration_seconds: f64,
    /// Subtitles of this scene, timed from the start of the video.
    #[serde(default)]
    pub cues: Vec<Cue>,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Manifest {
    /// How the outline was made: `script` (the partner's own) or the outliner's name.
    pub generator: String,
    pub title: String,
    pub width: u32,
    pub height: u32,
    /// The video's length; absent for a deck.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub duration_seconds: Option<f64>,
    pub artifacts: Vec<Artifact>,
    pub scenes: Vec<SceneRecord>,
}
