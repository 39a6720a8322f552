//! The format gate in front of the decoders, on top of the shared gate in `atelier-media`.
//!
//! A hostile file can declare any size, and the limits must refuse it before a decoder allocates
//! for it, so the format comes from the magic bytes and the size from the header, decoding
//! nothing. This module turns the shared gate's refusals into [`UpscaleError`]s and names the
//! format, which decides the output's encoding.

use atelier_media::{
    MediaType,
    gate::{self, Admitted, Refusal},
};

use super::UpscaleError;

/// The input formats this capability accepts: the images its `image` build can decode.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Format {
    Png,
    Jpeg,
    WebP,
}

impl Format {
    fn of(media: MediaType) -> Self {
        match media {
            MediaType::Jpeg => Self::Jpeg,
            MediaType::WebP => Self::WebP,
            _ => Self::Png,
        }
    }
}

/// The shared gate's first half: length, format from the magic bytes, size from the header
/// (decoding nothing). The size is judged by [`super::plan`], after the target.
pub(crate) fn admit(bytes: &[u8], max_bytes: usize) -> Result<(Format, Admitted), UpscaleError> {
    let admitted = gate::admit(bytes, max_bytes).map_err(|refusal| match refusal {
        Refusal::TooManyBytes { len, max } => UpscaleError::FileTooLarge { len, max },
        Refusal::Unsupported { seen } => UpscaleError::UnsupportedFormat { seen },
        other => UpscaleError::decode(other),
    })?;
    Ok((Format::of(admitted.media), admitted))
}

#[cfg(test)]
mod tests {
    use std::io::Cursor;

    use image::{DynamicImage, ImageFormat, RgbaImage};

    use super::*;

    fn sniff(bytes: &[u8]) -> Result<Format, UpscaleError> {
        admit(bytes, usize::MAX).map(|(format, _)| format)
    }

    #[test]
    fn text_is_not_an_image() {
        let err = sniff(b"hello, world\n").unwrap_err();
        assert_eq!(err.code(), "unsupported_format");
        assert_eq!(
            err.to_string(),
            "unsupported image format: unrecognised bytes 68 65 6c 6c 6f 2c 20 77"
        );
    }

    #[test]
    fn known_but_unsupported_formats_are_named() {
        let err = sniff(b"GIF89a\x01\x00\x01\x00").unwrap_err();
        assert_eq!(err.to_string(), "unsupported image format: gif");
        let err = sniff(b"").unwrap_err();
        assert_eq!(err.to_string(), "unsupported image format: empty input");
        // A cut-off signature is not a PNG to either sniffer.
        let err = sniff(b"\x89PNG\r\n").unwrap_err();
        assert_eq!(
            err.to_string(),
            "unsupported image format: unrecognised bytes 89 50 4e 47 0d 0a"
        );
    }

    #[test]
    fn media_the_platform_accepts_is_still_refused_here() {
        let mp4 = b"\0\0\0\x18ftypisom\0\0\x02\0isomavc1";
        let err = sniff(mp4).unwrap_err();
        assert_eq!(err.to_string(), "unsupported image format: mp4");
        let svg = b"<svg xmlns=\"http://www.w3.org/2000/svg\"/>";
        assert_eq!(
            sniff(svg).unwrap_err().to_string(),
            "unsupported image format: svg"
        );
    }

    #[test]
    fn malformed_headers_are_decode_failures_named_by_format() {
        let jpeg = [0xFF, 0xD8, 0xFF, 0xDA, 0x00, 0x02];
        let err = sniff(&jpeg).unwrap_err();
        assert_eq!(err.code(), "decode_failed");
        assert_eq!(
            err.to_string(),
            "cannot decode image: jpeg header is truncated or malformed"
        );
        assert_eq!(
            sniff(b"\x89PNG\r\n\x1a\n").unwrap_err().code(),
            "decode_failed"
        );
        assert_eq!(
            sniff(b"RIFF\0\0\0\0WEBPVP8L").unwrap_err().code(),
            "decode_failed"
        );
    }

    /// The shared parsers against files from the encoders this engine decodes with.
    #[test]
    fn headers_agree_with_the_image_encoders() {
        let image = DynamicImage::ImageRgba8(RgbaImage::new(37, 21));
        for (image_format, format) in [
            (ImageFormat::Png, Format::Png),
            (ImageFormat::Jpeg, Format::Jpeg),
            (ImageFormat::WebP, Format::WebP),
        ] {
            let image = if image_format == ImageFormat::Jpeg {
                DynamicImage::ImageRgb8(image.to_rgb8())
            } else {
                image.clone()
            };
            let mut bytes = Vec::new();
            image
                .write_to(&mut Cursor::new(&mut bytes), image_format)
                .unwrap();
            let (found, admitted) = admit(&bytes, usize::MAX).unwrap();
            assert_eq!(found, format);
            assert_eq!((admitted.width, admitted.height), (37, 21), "{format:?}");
        }
    }
}
