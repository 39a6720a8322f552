//! The gate in front of the decoders: format from the magic bytes, size from the header, both
//! checked against [`Limits`] before a decoder allocates, then decoding as displayed.
//!
//! Built on the shared sniffer in `atelier-media`; this module narrows its allow-list to what the
//! engine decodes and turns refusals into [`InpaintError`]s naming the input.

use std::io::Cursor;

use atelier_media::MediaType;
use image::{DynamicImage, ImageDecoder, ImageReader};

use super::{InpaintError, Limits, MAX_INDEXED_PIXELS, Which};

/// Decoded pixels never need more than RGBA16 (8 bytes each); this covers ICC, EXIF and text.
const DECODER_METADATA_HEADROOM: u64 = 16 * 1024 * 1024;

/// An image as displayed, with the colour profile it carried, if any.
pub(crate) struct Decoded {
    pub image: DynamicImage,
    pub icc: Option<Vec<u8>>,
}

/// Checks `bytes` against the limits from its header alone, then decodes it with the file's
/// EXIF orientation applied.
pub(crate) fn decode(bytes: &[u8], input: Which, limits: &Limits) -> Result<Decoded, InpaintError> {
    if bytes.len() > limits.max_input_bytes {
        return Err(InpaintError::FileTooLarge {
            input,
            len: bytes.len(),
            max: limits.max_input_bytes,
        });
    }
    let (media, format) = match atelier_media::sniff(bytes) {
        Some(MediaType::Png) => (MediaType::Png, image::ImageFormat::Png),
        Some(MediaType::Jpeg) => (MediaType::Jpeg, image::ImageFormat::Jpeg),
        Some(MediaType::WebP) => (MediaType::WebP, image::ImageFormat::WebP),
        // Media the platform accepts but this engine does not decode (GIF, video, audio) is
        // refused like anything else, named so the failure tells the user what they sent.
        _ => {
            return Err(InpaintError::UnsupportedFormat {
                input,
                seen: atelier_media::describe(bytes),
            });
        }
    };
    let (width, height) = atelier_media::image_dimensions(media, bytes).ok_or_else(|| {
        InpaintError::decode(
            input,
            format!("{} header is truncated or malformed", media.as_str()),
        )
    })?;
    check_size(width, height, input, limits)?;

    let mut reader = ImageReader::with_format(Cursor::new(bytes), format);
    reader.limits(decoder_limits(limits));
    let decode_error = |err: image::ImageError| InpaintError::decode(input, err);
    let mut decoder = reader.into_decoder().map_err(decode_error)?;
    // Damaged EXIF or a damaged colour profile is metadata, not pixels: fall back to no
    // rotation and no profile rather than fail the job.
    let orientation = decoder
        .orientation()
        .unwrap_or(image::metadata::Orientation::NoTransforms);
    let icc = decoder.icc_profile().ok().flatten();
    let mut image = DynamicImage::from_decoder(decoder).map_err(decode_error)?;
    image.apply_orientation(orientation);
    Ok(Decoded { image, icc })
}

fn check_size(w: u32, h: u32, input: Which, limits: &Limits) -> Result<(), InpaintError> {
    if w == 0 || h == 0 {
        return Err(InpaintError::decode(
            input,
            format!("image is {w}x{h}, with no pixels"),
        ));
    }
    let too_large = |limit: String| InpaintError::ImageTooLarge {
        input,
        width: w,
        height: h,
        limit,
    };
    if w.max(h) > limits.max_dimension {
        return Err(too_large(format!(
            "{} pixel side limit",
            limits.max_dimension
        )));
    }
    let max_pixels = limits.max_pixels.min(MAX_INDEXED_PIXELS);
    if u64::from(w) * u64::from(h) > max_pixels {
        return Err(too_large(format!("{max_pixels} pixel limit")));
    }
    Ok(())
}

/// Defence in depth behind the header check, in case a decoder reads a size the header parse
/// did not (or a codec upgrade changes what "the header" is).
fn decoder_limits(limits: &Limits) -> image::Limits {
    let mut decoder = image::Limits::default();
    decoder.max_image_width = Some(limits.max_dimension);
    decoder.max_image_height = Some(limits.max_dimension);
    decoder.max_alloc = Some(
        limits
            .max_pixels
            .saturating_mul(8)
            .saturating_add(DECODER_METADATA_HEADROOM),
    );
    decoder
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn text_and_unsupported_media_are_refused_by_name() {
        let err = decode(b"hello, world\n", Which::Mask, &Limits::default())
            .err()
            .unwrap();
        assert_eq!(err.code(), "unsupported_format");
        assert!(
            err.to_string()
                .starts_with("mask: unsupported image format: unrecognised bytes")
        );
        let err = decode(
            b"GIF89a\x01\x00\x01\x00",
            Which::Original,
            &Limits::default(),
        )
        .err()
        .unwrap();
        assert_eq!(err.to_string(), "original: unsupported image format: gif");
        assert_eq!(err.input(), Some(Which::Original));
    }

    #[test]
    fn oversized_files_are_refused_before_sniffing() {
        let limits = Limits {
            max_input_bytes: 16,
            ..Limits::default()
        };
        let err = decode(&[0; 17], Which::Original, &limits).err().unwrap();
        assert_eq!(err.code(), "file_too_large");
        assert_eq!(
            err.to_string(),
            "original: 17 bytes, over the 16 byte limit"
        );
    }

    #[test]
    fn sizes_over_the_limits_are_refused() {
        let limits = Limits::default();
        let err = check_size(limits.max_dimension + 1, 10, Which::Mask, &limits).unwrap_err();
        assert_eq!(err.code(), "image_too_large");
        let err = check_size(5000, 5000, Which::Mask, &limits).unwrap_err();
        assert_eq!(
            err.to_string(),
            "mask: image is 5000x5000, over the 16777216 pixel limit"
        );
        let err = check_size(0, 5, Which::Mask, &limits).unwrap_err();
        assert_eq!(err.code(), "decode_failed");
        assert!(check_size(4096, 4096, Which::Original, &limits).is_ok());
    }
}
