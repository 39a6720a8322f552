//! image.generate, locally: a deterministic SANDBOX renderer. No model weights exist offline,
//! so this draws a composition from the prompt instead of generating a picture of it: a
//! palette and layout (gradients, shapes) from a hash of the prompt and seed, and the prompt
//! itself set in a real font (CJK and Latin). The same prompt, seed, size, quality, scale,
//! reference and fonts give byte-identical PNGs. Every image carries a small
//! "ATELIER SANDBOX" mark so it is never mistaken for a model's output.
//!
//! `request` parses the job, `palette` and `atelier_media::rng` make the choices, `canvas` draws, `text`
//! fits and sets the prompt, `compose` arranges it all, `render` encodes, and `worker` plugs
//! the renderer into the worker runtime.

pub mod canvas;
mod compose;
mod error;
mod palette;
pub mod reference;
pub mod render;
pub mod request;
pub mod text;
pub mod worker;

pub use error::ImageError;
pub use palette::Colour;
pub use render::{Generated, render};
pub use request::{GenerateRequest, Quality};
pub use text::Fonts;
pub use worker::ImageEngine;
