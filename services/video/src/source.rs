//! Image materials: the format and size gate in front of the decoder, then decoding to RGB.
//!
//! Inputs are untrusted. The format comes from the magic bytes (names and content types are not
//! consulted) and the declared size from the header, both checked against [`Limits`] before a
//! decoder allocates; the decoder gets the same limits again as defence in depth. Checking is
//! cheap and done for every image before encoding starts; decoding happens one image at a time,
//! when the clip reaches it, so memory does not grow with the number of images. Nor do the
//! encoded files stay in memory: an image is read from its input when checked and again when
//! decoded, and dropped in between.

use atelier_media::gate::{self, Admitted};
use atelier_worker::Input;
use bytes::Bytes;
use image::{DynamicImage, RgbImage, imageops};

use crate::VideoError;

/// Bounds on each input image, checked before anything is decoded: the shared gate's.
pub use atelier_media::gate::ImageLimits as Limits;

/// An image that passed the gate, not yet decoded (nor held: its input is read again).
#[derive(Clone)]
pub struct SourceImage {
    /// Where it came from (URL or bucket key), for error messages.
    pub name: String,
    input: Input,
    admitted: Admitted,
    /// As the header declares it, before EXIF orientation.
    pub declared: (u32, u32),
}

impl std::fmt::Debug for SourceImage {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SourceImage")
            .field("name", &self.name)
            .field("bytes", &self.input.len())
            .field("format", &self.admitted.media)
            .field("declared", &self.declared)
            .finish()
    }
}

impl SourceImage {
    /// Checks the size, the magic bytes and the declared dimensions; decodes nothing.
    pub fn check(
        name: impl Into<String>,
        bytes: Bytes,
        limits: &Limits,
    ) -> Result<Self, VideoError> {
        Self::from_input(Input::from_bytes(name, bytes), limits)
    }

    /// [`SourceImage::check`] for a job's input, read here (on a blocking thread) and not kept.
    pub fn from_input(input: Input, limits: &Limits) -> Result<Self, VideoError> {
        let bytes = read(&input)?;
        let admitted =
            gate::admit_within(&bytes, limits).map_err(|refusal| VideoError::BadInput {
                input: input.source.clone(),
                code: refusal.code(),
                reason: refusal.to_string(),
            })?;
        Ok(Self {
            name: input.source.clone(),
            input,
            declared: (admitted.width, admitted.height),
            admitted,
        })
    }

    /// Decodes to RGB with the EXIF orientation applied and transparency flattened onto white
    /// (product shots with a transparent background are the common case, and white is what
    /// they are drawn on).
    pub fn decode(&self, limits: &Limits) -> Result<RgbImage, VideoError> {
        let bytes = read(&self.input)?;
        let decoded =
            gate::decode(&bytes, &self.admitted, limits).map_err(|err| VideoError::BadInput {
                input: self.name.clone(),
                code: "decode_failed",
                reason: format!("cannot decode image: {err}"),
            })?;
        Ok(flatten(decoded.image))
    }
}

/// The worker's disk, not the job: retryable.
fn read(input: &Input) -> Result<Bytes, VideoError> {
    input
        .read_blocking()
        .map_err(|err| VideoError::io("reading an input image", err.message))
}

fn flatten(image: DynamicImage) -> RgbImage {
    if !image.color().has_alpha() {
        return image.into_rgb8();
    }
    let rgba = image.into_rgba8();
    let mut rgb = RgbImage::new(rgba.width(), rgba.height());
    for (out, px) in rgb.pixels_mut().zip(rgba.pixels()) {
        let alpha = u32::from(px[3]);
        for c in 0..3 {
            // Over white: c * a + 255 * (1 - a), rounded.
            out[c] = ((u32::from(px[c]) * alpha + 255 * (255 - alpha) + 127) / 255) as u8;
        }
    }
    rgb
}

/// Scales `image` to the smallest size that covers `width` x `height`, keeping its aspect;
/// whatever sticks out is cropped later by the camera.
pub fn cover(image: &RgbImage, width: u32, height: u32) -> RgbImage {
    let (iw, ih) = (f64::from(image.width()), f64::from(image.height()));
    let scale = (f64::from(width) / iw).max(f64::from(height) / ih);
    let w = ((iw * scale).ceil() as u32).max(width);
    let h = ((ih * scale).ceil() as u32).max(height);
    if (w, h) == image.dimensions() {
        return image.clone();
    }
    // Triangle widens its support when shrinking, so large photos are averaged, not aliased,
    // and it is several times cheaper than Lanczos for a result that is only ever sampled.
    imageops::resize(image, w, h, imageops::FilterType::Triangle)
}

#[cfg(test)]
mod tests {
    use std::io::Cursor;

    use image::{ImageBuffer, ImageFormat, Rgba, RgbaImage};

    use super::*;

    fn encoded(image: DynamicImage, format: ImageFormat) -> Bytes {
        let mut bytes = Vec::new();
        image
            .write_to(&mut Cursor::new(&mut bytes), format)
            .unwrap();
        bytes.into()
    }

    #[test]
    fn the_gate_refuses_what_it_cannot_decode_and_names_it() {
        let limits = Limits::default();
        let err = SourceImage::check("a.txt", Bytes::from_static(b"hello"), &limits).unwrap_err();
        assert_eq!(err.code(), "unsupported_format");
        assert!(
            err.to_string()
                .starts_with("a.txt: unsupported image format")
        );
        let gif = Bytes::from_static(b"GIF89a\x01\x00\x01\x00\x00\x00\x00");
        let err = SourceImage::check("b.gif", gif, &limits).unwrap_err();
        assert_eq!(err.to_string(), "b.gif: unsupported image format: gif");
        assert!(!err.is_retryable());
    }

    #[test]
    fn declared_sizes_are_capped_before_decoding() {
        let png = encoded(
            DynamicImage::ImageRgb8(RgbImage::new(300, 200)),
            ImageFormat::Png,
        );
        let limits = Limits {
            max_pixels: 50_000,
            ..Limits::default()
        };
        let err = SourceImage::check("big.png", png.clone(), &limits).unwrap_err();
        assert_eq!(err.code(), "image_too_large");
        let small = SourceImage::check("ok.png", png, &Limits::default()).unwrap();
        assert_eq!(small.declared, (300, 200));
        assert_eq!(
            small.decode(&Limits::default()).unwrap().dimensions(),
            (300, 200)
        );
    }

    #[test]
    fn transparency_is_flattened_onto_white() {
        let image: RgbaImage = ImageBuffer::from_fn(4, 4, |x, _| {
            if x < 2 {
                Rgba([0, 0, 0, 0])
            } else {
                Rgba([10, 20, 30, 255])
            }
        });
        let png = encoded(DynamicImage::ImageRgba8(image), ImageFormat::Png);
        let limits = Limits::default();
        let rgb = SourceImage::check("t.png", png, &limits)
            .unwrap()
            .decode(&limits)
            .unwrap();
        assert_eq!(rgb.get_pixel(0, 0).0, [255, 255, 255]);
        assert_eq!(rgb.get_pixel(3, 3).0, [10, 20, 30]);
    }

    #[test]
    fn cover_fills_both_sides_and_keeps_the_aspect() {
        let image = RgbImage::new(400, 100);
        assert_eq!(cover(&image, 200, 200).dimensions(), (800, 200));
        let image = RgbImage::new(100, 400);
        assert_eq!(cover(&image, 300, 100).dimensions(), (300, 1200));
        let image = RgbImage::new(1600, 900);
        assert_eq!(cover(&image, 1280, 720).dimensions(), (1280, 720));
    }
}
