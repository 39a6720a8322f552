//! image.inpaint: repaints the masked region of a PNG, JPEG or WebP image from its surroundings.
//! `engine` is the pure image work; `worker` plugs it into the worker runtime.
//!
//! # Inputs
//!
//! A job lists two images, in this order: `[original, mask]`. Each is taken as displayed (its
//! own EXIF orientation applied), and the two must then be the same size; a mismatch fails the
//! job with `mask_size_mismatch`, naming both sizes.
//!
//! # Mask convention
//!
//! - A mask whose alpha channel is not fully opaque follows the OpenAI convention: transparent
//!   pixels (alpha < 128) are repainted, whatever their colour.
//! - Any other mask (no alpha, or alpha 255 everywhere) is read by brightness: white pixels
//!   (luma >= 128) are repainted, black ones kept.
//!
//! A mask that selects no pixel fails the job with `empty_mask` rather than returning the image
//! unchanged: in practice it means an inverted mask or the other convention, and a job that
//! silently does nothing hides that. A mask that selects every pixel fails with
//! `mask_covers_image`, since there is nothing left to paint from.
//!
//! # What the local engine does
//!
//! It is a classical algorithm, not a generative model: the hole is filled by Telea's fast
//! marching method (A. Telea, "An Image Inpainting Technique Based on the Fast Marching Method",
//! 2004), its first-order estimates limited to the range of the pixels they come from so that
//! edges do not overshoot, then a few harmonic relaxation sweeps smooth the streaks the march
//! leaves (see `engine::telea` and `engine::relax`). It continues the surrounding colours and edges
//! into the hole; it cannot invent content. The job's `prompt` is recorded with the job but this
//! engine does not read it: it is for provider engines that generate.
//!
//! # Output
//!
//! Always PNG, in the original's colour type and bit depth (alpha kept): lossless, so every
//! pixel outside the mask comes back exactly as decoded, and a chain of edits does not pile up
//! JPEG loss. Inside the mask alpha is inpainted along with the colour, premultiplied, so the
//! hidden colour of transparent pixels never bleeds into the fill.

pub mod engine;
pub mod worker;

pub use worker::InpaintEngine;
