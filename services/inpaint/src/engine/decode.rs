//! The gate in front of the decoders: format from the magic bytes, size from the header, both
//! checked against [`Limits`] before a decoder allocates, then decoding as displayed.
//!
//! Built on the shared sniffer in `atelier-media`; this module narrows its allow-list to what the
//! engine decodes and turns refusals into [`InpaintError`]s naming the input.

use atelier_media::gate::{self, ImageLimits, Refusal};

use super::{InpaintError, Limits, MAX_INDEXED_PIXELS, Which};

pub(crate) use atelier_media::gate::Decoded;

/// Checks `bytes` against the limits from its header alone, then decodes it with the file's
/// EXIF orientation applied.
pub(crate) fn decode(bytes: &[u8], input: Which, limits: &Limits) -> Result<Decoded, InpaintError> {
    let limits = gate_limits(limits);
    let admitted = gate::admit_within(bytes, &limits).map_err(|refusal| refused(input, refusal))?;
    gate::decode(bytes, &admitted, &limits).map_err(|err| InpaintError::decode(input, err))
}

/// The engine's limits as the gate's; pixels are capped where the engine's indices end.
fn gate_limits(limits: &Limits) -> ImageLimits {
    ImageLimits {
        max_bytes: limits.max_input_bytes,
        max_dimension: limits.max_dimension,
        max_pixels: limits.max_pixels.min(MAX_INDEXED_PIXELS),
    }
}

/// The gate's refusal as this engine's error, naming the input.
fn refused(input: Which, refusal: Refusal) -> InpaintError {
    match refusal {
        Refusal::TooManyBytes { len, max } => InpaintError::FileTooLarge { input, len, max },
        Refusal::Unsupported { seen } => InpaintError::UnsupportedFormat { input, seen },
        Refusal::TooLarge {
            width,
            height,
            limit,
        } => InpaintError::ImageTooLarge {
            input,
            width,
            height,
            limit,
        },
        other @ (Refusal::MalformedHeader { .. } | Refusal::NoPixels { .. }) => {
            InpaintError::decode(input, other)
        }
    }
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

    fn check_size(w: u32, h: u32, input: Which, limits: &Limits) -> Result<(), InpaintError> {
        gate::check_size(w, h, &gate_limits(limits)).map_err(|refusal| refused(input, refusal))
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
