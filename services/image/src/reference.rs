//! The reference image (`imageUrls[0]`, or the first input however given): only its colours
//! are used, sampled from a small thumbnail into the palette. Further inputs are ignored.
//!
//! It is untrusted: the format comes from the magic bytes and the size from the header, both
//! checked against [`Limits`] before the decoder (which gets the same limits) allocates.

use std::io::Cursor;

use atelier_media::MediaType;
use image::{ImageFormat, ImageReader};

use crate::ImageError;
use crate::palette::Colour;

/// The thumbnail's longest side: enough pixels to find dominant colours, few enough to count.
const THUMBNAIL: u32 = 64;
const DECODER_METADATA_HEADROOM: u64 = 16 * 1024 * 1024;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Limits {
    pub max_input_bytes: usize,
    pub max_input_dimension: u32,
    pub max_input_pixels: u64,
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            max_input_bytes: 50 * 1024 * 1024,
            max_input_dimension: 16_384,
            max_input_pixels: 40_000_000,
        }
    }
}

/// The reference's pixels, as a thumbnail of at most 64 pixels a side.
pub fn sample(name: &str, bytes: &[u8], limits: &Limits) -> Result<Vec<Colour>, ImageError> {
    let refuse = |code: &'static str, reason: String| ImageError::BadInput {
        input: name.to_owned(),
        code,
        reason,
    };
    if bytes.len() > limits.max_input_bytes {
        return Err(refuse(
            "file_too_large",
            format!(
                "input is {} bytes, over the {} byte limit",
                bytes.len(),
                limits.max_input_bytes
            ),
        ));
    }
    let (media, format) = match atelier_media::sniff(bytes) {
        Some(MediaType::Png) => (MediaType::Png, ImageFormat::Png),
        Some(MediaType::Jpeg) => (MediaType::Jpeg, ImageFormat::Jpeg),
        Some(MediaType::WebP) => (MediaType::WebP, ImageFormat::WebP),
        _ => {
            return Err(refuse(
                "unsupported_format",
                format!(
                    "unsupported image format: {}",
                    atelier_media::describe(bytes)
                ),
            ));
        }
    };
    let (width, height) = atelier_media::image_dimensions(media, bytes).ok_or_else(|| {
        refuse(
            "decode_failed",
            format!("{} header is truncated or malformed", media.as_str()),
        )
    })?;
    if width == 0
        || height == 0
        || width.max(height) > limits.max_input_dimension
        || u64::from(width) * u64::from(height) > limits.max_input_pixels
    {
        return Err(refuse(
            "image_too_large",
            format!(
                "image is {width}x{height}; sides must be 1 to {} and pixels at most {}",
                limits.max_input_dimension, limits.max_input_pixels
            ),
        ));
    }
    let mut reader = ImageReader::with_format(Cursor::new(bytes), format);
    let mut decoder_limits = image::Limits::default();
    decoder_limits.max_image_width = Some(limits.max_input_dimension);
    decoder_limits.max_image_height = Some(limits.max_input_dimension);
    decoder_limits.max_alloc = Some(
        limits
            .max_input_pixels
            .saturating_mul(8)
            .saturating_add(DECODER_METADATA_HEADROOM),
    );
    reader.limits(decoder_limits);
    let image = reader
        .decode()
        .map_err(|err| refuse("decode_failed", format!("cannot decode image: {err}")))?;
    Ok(image
        .thumbnail(THUMBNAIL, THUMBNAIL)
        .into_rgb8()
        .pixels()
        .map(|p| p.0)
        .collect())
}

#[cfg(test)]
mod tests {
    use image::{DynamicImage, Rgb, RgbImage};

    use super::*;

    #[test]
    fn a_reference_is_sampled_small() {
        let image = RgbImage::from_pixel(640, 320, Rgb([10, 200, 30]));
        let mut png = Vec::new();
        DynamicImage::ImageRgb8(image)
            .write_to(&mut Cursor::new(&mut png), ImageFormat::Png)
            .unwrap();
        let pixels = sample("ref.png", &png, &Limits::default()).unwrap();
        assert_eq!(pixels.len(), 64 * 32);
        assert!(pixels.iter().all(|p| *p == [10, 200, 30]));
    }

    #[test]
    fn junk_is_refused_and_named() {
        let err = sample(
            "https://example.com/r.png",
            b"<html></html>",
            &Limits::default(),
        )
        .unwrap_err();
        assert_eq!(err.code(), "unsupported_format");
        assert_eq!(
            err.to_string(),
            "https://example.com/r.png: unsupported image format: html"
        );
    }
}
