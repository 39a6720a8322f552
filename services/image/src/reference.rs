//! The reference image (`imageUrls[0]`, or the first input however given): only its colours
//! are used, sampled from a small thumbnail into the palette. Further inputs are ignored.
//!
//! It is untrusted: the format comes from the magic bytes and the size from the header, both
//! checked against [`Limits`] before the decoder (which gets the same limits) allocates.

use atelier_media::gate;
/// Bounds on the reference image: the shared gate's.
pub use atelier_media::gate::ImageLimits as Limits;

use crate::ImageError;
use crate::palette::Colour;

/// The thumbnail's longest side: enough pixels to find dominant colours, few enough to count.
const THUMBNAIL: u32 = 64;

/// The reference's pixels, as a thumbnail of at most 64 pixels a side.
pub fn sample(name: &str, bytes: &[u8], limits: &Limits) -> Result<Vec<Colour>, ImageError> {
    let refuse = |code: &'static str, reason: String| ImageError::BadInput {
        input: name.to_owned(),
        code,
        reason,
    };
    let admitted =
        gate::admit_within(bytes, limits).map_err(|r| refuse(r.code(), r.to_string()))?;
    let decoded = gate::decode(bytes, &admitted, limits)
        .map_err(|err| refuse("decode_failed", format!("cannot decode image: {err}")))?;
    Ok(decoded
        .image
        .thumbnail(THUMBNAIL, THUMBNAIL)
        .into_rgb8()
        .pixels()
        .map(|p| p.0)
        .collect())
}

#[cfg(test)]
mod tests {
    use std::io::Cursor;

    use image::{DynamicImage, ImageFormat, Rgb, RgbImage};

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
