//! The pure image engine behind `image.upscale`: image bytes in, resampled and re-encoded bytes out.
//!
//! Synchronous and free of I/O so the worker can run it in `spawn_blocking` and tests can drive it
//! with bytes built in memory. Input is untrusted: the format comes from the magic bytes, and the
//! declared size is checked against [`Limits`] before any decoder allocates (see `header`).
//!
//! Memory is bounded by [`Limits`]: at the peak an upscale holds the decoded source (up to
//! `max_input_pixels` at 8 bytes for RGBA16, less for 8-bit or fewer channels), the resampler's
//! intermediate (output width by source height), the output (up to `max_output_pixels`), the
//! sharpening's strip buffers (a few MiB; see `sharpen`) and the encoded file. For the default
//! limits and an 8-bit RGB photo that is at most about 0.5 GiB; measured figures are in
//! `deploy/bench/engines.sh`'s output.

mod error;
mod header;
mod policy;
mod sharpen;
#[cfg(test)]
mod tests;

use atelier_media::gate::{self, Decoded};
use fast_image_resize::{FilterType, ResizeAlg, ResizeOptions, Resizer};
use image::codecs::jpeg::JpegEncoder;
use image::codecs::png::PngEncoder;
use image::{ColorType, DynamicImage, ImageEncoder};

pub use error::UpscaleError;
use header::Format;
pub use policy::{Limits, Preset, SCALE_RANGE, Target, plan};

/// Quality for JPEG output: high enough that one more generation of loss is not visible.
const JPEG_QUALITY: u8 = 92;
/// JPEG stores each side in 16 bits; wider outputs fall back to PNG.
const JPEG_MAX_SIDE: u32 = u16::MAX as u32;

/// An encoded result, ready to store.
#[derive(Clone)]
pub struct Upscaled {
    pub bytes: Vec<u8>,
    pub width: u32,
    pub height: u32,
    /// `image/png` or `image/jpeg`.
    pub content_type: &'static str,
    /// `png` or `jpg`, without the dot.
    pub extension: &'static str,
}

impl std::fmt::Debug for Upscaled {
    // The encoded bytes are megabytes; a debug print should not dump them into a log line.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Upscaled")
            .field("bytes", &format_args!("<{} bytes>", self.bytes.len()))
            .field("width", &self.width)
            .field("height", &self.height)
            .field("content_type", &self.content_type)
            .field("extension", &self.extension)
            .finish()
    }
}

/// Enlarges a PNG, JPEG or WebP image to `target` with Lanczos3, then sharpens it.
///
/// - The output size comes from [`plan`]. A [`Target::Resolution`] whose long edge the source
///   already meets is not an error and not a downscale: the image comes back at its own size,
///   decoded and re-encoded, so the output is always a fresh encoding this engine produced.
/// - The resample is followed by an edge-aware unsharp mask clamped to each pixel's 3x3
///   neighbourhood, which restores some contrast without halos (see `sharpen`); alpha is not
///   sharpened.
/// - EXIF orientation is applied to the pixels, because re-encoding drops the EXIF that carried it.
/// - Alpha is kept and resampled premultiplied, so transparent pixels do not bleed their hidden
///   colour into visible edges.
/// - Output is JPEG (quality 92) for JPEG input, since JPEG never carries alpha, and PNG for
///   PNG and WebP input; a JPEG output wider or taller than 65535 pixels falls back to PNG.
/// - An embedded ICC profile is carried over when it matches the output's colour model.
pub fn upscale(input: &[u8], target: &Target, limits: &Limits) -> Result<Upscaled, UpscaleError> {
    let (format, admitted) = header::admit(input, limits.max_input_bytes)?;
    plan(admitted.width, admitted.height, target, limits)?;

    let Decoded { image, icc } =
        gate::decode(input, &admitted, &limits.input()).map_err(UpscaleError::decode)?;
    // Planned again on the oriented, decoded size: a quarter turn swaps the sides, and the
    // decoder's reading of the header is the one that produced these pixels.
    let (width, height) = plan(image.width(), image.height(), target, limits)?;
    let image = resample(image, width, height)?;
    encode(&image, format, icc)
}

/// The pixel work alone, for callers that hold decoded pixels (the bench): Lanczos3 to
/// `width`x`height`, alpha premultiplied, then the sharpening. The same size returns the image
/// untouched.
pub fn resample(
    image: DynamicImage,
    width: u32,
    height: u32,
) -> Result<DynamicImage, UpscaleError> {
    if (image.width(), image.height()) == (width, height) {
        // Lanczos3 at scale 1 reproduces the pixels, except that the premultiply round trip
        // would lose precision in faint pixels; skipping it is both exact and free.
        return Ok(image);
    }
    let image = resizable(image);
    let factor =
        (width as f32 / image.width() as f32 + height as f32 / image.height() as f32) / 2.0;
    let mut output = DynamicImage::new(width, height, image.color());
    let options = ResizeOptions::new()
        .resize_alg(ResizeAlg::Convolution(FilterType::Lanczos3))
        .use_alpha(true);
    Resizer::new()
        .resize(&image, &mut output, &options)
        .map_err(|err| UpscaleError::ResampleFailed {
            reason: err.to_string(),
        })?;
    drop(image);
    if let Some(strength) = sharpen::Sharpening::for_factor(factor) {
        sharpen::sharpen(&mut output, strength);
    }
    Ok(output)
}

/// The PNG, JPEG and WebP decoders only produce 8- and 16-bit grey or RGB, with or without
/// alpha, which the resizer and the encoders all take as is. Anything else (a future codec
/// version, say) is widened to RGBA8 rather than left to fail at encode time.
fn resizable(image: DynamicImage) -> DynamicImage {
    match image.color() {
        ColorType::L8
        | ColorType::La8
        | ColorType::Rgb8
        | ColorType::Rgba8
        | ColorType::L16
        | ColorType::La16
        | ColorType::Rgb16
        | ColorType::Rgba16 => image,
        _ => DynamicImage::ImageRgba8(image.to_rgba8()),
    }
}

fn encode(
    image: &DynamicImage,
    source: Format,
    icc: Option<Vec<u8>>,
) -> Result<Upscaled, UpscaleError> {
    let as_jpeg = source == Format::Jpeg
        && !image.color().has_alpha()
        && image.width().max(image.height()) <= JPEG_MAX_SIDE;
    let icc = icc.filter(|icc| icc_fits(icc, image.color()));
    let mut bytes = Vec::new();
    let written = if as_jpeg {
        let mut encoder = JpegEncoder::new_with_quality(&mut bytes, JPEG_QUALITY);
        attach_icc(&mut encoder, icc);
        image.write_with_encoder(encoder)
    } else {
        let mut encoder = PngEncoder::new(&mut bytes);
        attach_icc(&mut encoder, icc);
        image.write_with_encoder(encoder)
    };
    written.map_err(|err| UpscaleError::EncodeFailed {
        reason: err.to_string(),
    })?;
    let (content_type, extension) = if as_jpeg {
        ("image/jpeg", "jpg")
    } else {
        ("image/png", "png")
    };
    Ok(Upscaled {
        bytes,
        width: image.width(),
        height: image.height(),
        content_type,
        extension,
    })
}

fn attach_icc(encoder: &mut impl ImageEncoder, icc: Option<Vec<u8>>) {
    if let Some(icc) = icc {
        // Both encoders support profiles; should one stop, the image is still worth delivering.
        let _ = encoder.set_icc_profile(icc);
    }
}

/// Whether a profile describes the output's colour model. The JPEG decoder converts CMYK to RGB
/// but hands back the CMYK profile, which would make viewers misread every pixel.
fn icc_fits(icc: &[u8], color: ColorType) -> bool {
    // ICC header: the data colour space signature sits at bytes 16..20.
    let expected: &[u8] = if color.has_color() { b"RGB " } else { b"GRAY" };
    icc.get(16..20) == Some(expected)
}
