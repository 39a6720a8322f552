//! video.slides, locally: narrated slide videos (and slide decks) from a prompt or a
//! partner's own script — the engine behind the creations API (seed 000).
//!
//! The pipeline, one module a step: `outline` (a template outliner, honest about being one,
//! unless the partner sends a script), `render` (one slide per scene in a real font, CJK
//! included, in a `catalog` style), `speech` (espeak-ng, phrase by phrase, so `subtitles`
//! are timed exactly), `assemble` (one ffmpeg child: crossfades, AAC narration, soft
//! subtitles, H.264 MP4), `pdf` (the deck), and `manifest` (what every output is, for the
//! api). `catalog` is the single list of what can be asked for; `engine` plugs it all into
//! the worker runtime.

pub mod assemble;
pub mod catalog;
mod config;
mod engine;
mod error;
pub mod manifest;
pub mod narrator;
pub mod outline;
pub mod outliner;
pub mod params;
pub mod pdf;
pub mod render;
pub mod speech;
pub mod subtitles;

pub use config::SlidesConfig;
pub use engine::SlidesEngine;
pub use error::SlidesError;
pub use narrator::Narrator;
pub use outliner::Outliner;
