//! image.upscale: enlarges a PNG, JPEG or WebP image to a 2K/4K long edge or by a factor.
//! `engine` is the pure image work; `worker` plugs it into the worker runtime.

pub mod engine;
pub mod worker;

pub use worker::UpscaleEngine;
