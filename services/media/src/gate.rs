//! The gate in front of every image decoder, shared by the engines.
//!
//! An input is untrusted and may declare any size, so it is refused before a decoder allocates
//! for it: first its length, then its format from the magic bytes (PNG, JPEG or WebP; names and
//! content types are never consulted), then its size from the header. [`decode`] (feature
//! `decode`) then holds the decoder to the same limits, as defence in depth in case a decoder
//! reads a size the header parse did not.
//!
//! Refusals are a [`Refusal`]: a stable `code()` and a message; each engine maps them into its
//! own error type, naming the input.

use std::fmt;

use crate::MediaType;

/// Bounds on one input image.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ImageLimits {
    pub max_bytes: usize,
    /// Longest accepted side, in pixels.
    pub max_dimension: u32,
    pub max_pixels: u64,
}

/// The platform's defaults; a role's `ATELIER_MAX_INPUT_BYTES` overrides the first.
impl Default for ImageLimits {
    fn default() -> Self {
        Self {
            max_bytes: 50 * 1024 * 1024,
            max_dimension: 16_384,
            max_pixels: 40_000_000,
        }
    }
}

/// An image that passed [`admit`]: a format the engines decode, and its declared size (before
/// any EXIF orientation).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Admitted {
    pub media: MediaType,
    pub width: u32,
    pub height: u32,
}

/// Why an input was refused.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Refusal {
    TooManyBytes {
        len: usize,
        max: usize,
    },
    /// Not an image the engines decode; `seen` names what it is (see [`crate::describe`]).
    Unsupported {
        seen: String,
    },
    MalformedHeader {
        media: MediaType,
    },
    NoPixels {
        width: u32,
        height: u32,
    },
    /// Over a side or pixel-count limit; `limit` says which, e.g. `16384 pixel side limit`.
    TooLarge {
        width: u32,
        height: u32,
        limit: String,
    },
}

impl Refusal {
    /// Stable, machine-readable: `file_too_large`, `unsupported_format`, `decode_failed` or
    /// `image_too_large`.
    pub fn code(&self) -> &'static str {
        match self {
            Self::TooManyBytes { .. } => "file_too_large",
            Self::Unsupported { .. } => "unsupported_format",
            Self::MalformedHeader { .. } | Self::NoPixels { .. } => "decode_failed",
            Self::TooLarge { .. } => "image_too_large",
        }
    }
}

impl fmt::Display for Refusal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::TooManyBytes { len, max } => {
                write!(f, "input is {len} bytes, over the {max} byte limit")
            }
            Self::Unsupported { seen } => write!(f, "unsupported image format: {seen}"),
            Self::MalformedHeader { media } => {
                write!(f, "{} header is truncated or malformed", media.as_str())
            }
            Self::NoPixels { width, height } => {
                write!(f, "image is {width}x{height}, with no pixels")
            }
            Self::TooLarge {
                width,
                height,
                limit,
            } => write!(f, "image is {width}x{height}, over the {limit}"),
        }
    }
}

impl std::error::Error for Refusal {}

/// Checks the length, the format and the header; decodes nothing. The declared size is not
/// held to the limits here (see [`check_size`]), so an engine can judge its request first.
pub fn admit(bytes: &[u8], max_bytes: usize) -> Result<Admitted, Refusal> {
    if bytes.len() > max_bytes {
        return Err(Refusal::TooManyBytes {
            len: bytes.len(),
            max: max_bytes,
        });
    }
    let media = match crate::sniff(bytes) {
        Some(media @ (MediaType::Png | MediaType::Jpeg | MediaType::WebP)) => media,
        // Media the platform accepts but no engine decodes (GIF, video, audio) is refused like
        // anything else, named so the failure tells the user what they sent.
        _ => {
            return Err(Refusal::Unsupported {
                seen: crate::describe(bytes),
            });
        }
    };
    let (width, height) =
        crate::image_dimensions(media, bytes).ok_or(Refusal::MalformedHeader { media })?;
    Ok(Admitted {
        media,
        width,
        height,
    })
}

/// Holds a size to the limits: at least one pixel, no side and no pixel count over them.
pub fn check_size(width: u32, height: u32, limits: &ImageLimits) -> Result<(), Refusal> {
    if width == 0 || height == 0 {
        return Err(Refusal::NoPixels { width, height });
    }
    let too_large = |limit: String| Refusal::TooLarge {
        width,
        height,
        limit,
    };
    if width.max(height) > limits.max_dimension {
        return Err(too_large(format!(
            "{} pixel side limit",
            limits.max_dimension
        )));
    }
    if u64::from(width) * u64::from(height) > limits.max_pixels {
        return Err(too_large(format!("{} pixel limit", limits.max_pixels)));
    }
    Ok(())
}

/// [`admit`], then [`check_size`] on the declared size.
pub fn admit_within(bytes: &[u8], limits: &ImageLimits) -> Result<Admitted, Refusal> {
    let admitted = admit(bytes, limits.max_bytes)?;
    check_size(admitted.width, admitted.height, limits)?;
    Ok(admitted)
}

#[cfg(feature = "decode")]
pub use decoding::{Decoded, decode};

#[cfg(feature = "decode")]
mod decoding {
    use std::io::Cursor;

    use image::{DynamicImage, ImageDecoder, ImageFormat, ImageReader};

    use super::{Admitted, ImageLimits};
    use crate::MediaType;

    /// Decoded pixels never take more than 8 bytes each (RGBA16); this covers ICC, EXIF and text.
    const METADATA_HEADROOM: u64 = 16 * 1024 * 1024;

    /// An image as displayed, with the colour profile it carried, if any.
    pub struct Decoded {
        pub image: DynamicImage,
        pub icc: Option<Vec<u8>>,
    }

    /// Decodes an admitted image with its EXIF orientation applied, the decoder held to the
    /// same limits as the gate. Damaged EXIF or a damaged colour profile is metadata, not
    /// pixels: it falls back to no rotation and no profile rather than failing.
    pub fn decode(
        bytes: &[u8],
        admitted: &Admitted,
        limits: &ImageLimits,
    ) -> Result<Decoded, image::ImageError> {
        let format = match admitted.media {
            MediaType::Jpeg => ImageFormat::Jpeg,
            MediaType::WebP => ImageFormat::WebP,
            _ => ImageFormat::Png,
        };
        let mut reader = ImageReader::with_format(Cursor::new(bytes), format);
        let mut decoder_limits = image::Limits::default();
        decoder_limits.max_image_width = Some(limits.max_dimension);
        decoder_limits.max_image_height = Some(limits.max_dimension);
        decoder_limits.max_alloc = Some(
            limits
                .max_pixels
                .saturating_mul(8)
                .saturating_add(METADATA_HEADROOM),
        );
        reader.limits(decoder_limits);
        let mut decoder = reader.into_decoder()?;
        let orientation = decoder
            .orientation()
            .unwrap_or(image::metadata::Orientation::NoTransforms);
        let icc = decoder.icc_profile().ok().flatten();
        let mut image = DynamicImage::from_decoder(decoder)?;
        image.apply_orientation(orientation);
        Ok(Decoded { image, icc })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const LIMITS: ImageLimits = ImageLimits {
        max_bytes: 1024,
        max_dimension: 100,
        max_pixels: 5_000,
    };

    /// A PNG signature and IHDR declaring `w`x`h`; no pixel data.
    fn png_header(w: u32, h: u32) -> Vec<u8> {
        let mut bytes = b"\x89PNG\r\n\x1a\n\x00\x00\x00\x0dIHDR".to_vec();
        bytes.extend_from_slice(&w.to_be_bytes());
        bytes.extend_from_slice(&h.to_be_bytes());
        bytes.extend_from_slice(&[8, 2, 0, 0, 0, 0, 0, 0, 0]);
        bytes
    }

    #[test]
    fn refusals_come_in_order_with_stable_codes() {
        let big = vec![0u8; 2048];
        assert_eq!(admit(&big, 1024).unwrap_err().code(), "file_too_large");
        let err = admit(b"<html></html>", 1024).unwrap_err();
        assert_eq!(err.code(), "unsupported_format");
        assert_eq!(err.to_string(), "unsupported image format: html");
        let err = admit(b"GIF89a\x01\x00\x01\x00", 1024).unwrap_err();
        assert_eq!(err.code(), "unsupported_format");
        let err = admit(&png_header(0, 0)[..20], 1024).unwrap_err();
        assert_eq!(err.to_string(), "png header is truncated or malformed");
    }

    #[test]
    fn sizes_are_held_to_the_limits_from_the_header_alone() {
        let admitted = admit_within(&png_header(50, 50), &LIMITS).unwrap();
        assert_eq!(
            (admitted.media, admitted.width, admitted.height),
            (MediaType::Png, 50, 50)
        );
        let err = admit_within(&png_header(101, 1), &LIMITS).unwrap_err();
        assert_eq!(
            err.to_string(),
            "image is 101x1, over the 100 pixel side limit"
        );
        let err = admit_within(&png_header(100, 100), &LIMITS).unwrap_err();
        assert_eq!(err.code(), "image_too_large");
        assert_eq!(
            err.to_string(),
            "image is 100x100, over the 5000 pixel limit"
        );
        assert_eq!(
            check_size(0, 7, &LIMITS).unwrap_err().code(),
            "decode_failed"
        );
    }
}
