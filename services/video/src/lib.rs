//! video.generate, locally: animates the job's images (Ken Burns pan and zoom, crossfades) or,
//! with a prompt alone, a procedural animation drawn from the prompt, and encodes H.264 MP4
//! with an ffmpeg child fed raw frames. No generative model is involved.
//!
//! `settings`, `materials`, `timeline` and the renderers (`slideshow`, `procedural`) are pure;
//! `ffmpeg` owns the child process; `clip` runs one clip; `worker` plugs it into the runtime.

pub mod clip;
pub mod config;
mod error;
pub mod ffmpeg;
pub mod materials;
mod procedural;
mod scratch;
pub mod settings;
mod slideshow;
pub mod source;
mod timeline;
pub mod worker;

pub use clip::{Clip, VideoRequest, generate};
pub use config::VideoConfig;
pub use error::VideoError;
pub use ffmpeg::Encoder;
pub use worker::VideoEngine;
