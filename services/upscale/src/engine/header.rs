//! The format gate in front of the decoders, on top of the shared sniffer in `atelier-media`.
//!
//! A hostile file can declare any size, and the limits must refuse it before a decoder allocates
//! for it, so the format comes from the magic bytes and the size from the header, decoding
//! nothing. This module only narrows the shared allow-list to what the engine decodes and turns
//! refusals into [`UpscaleError`]s.

use atelier_media::MediaType;

use super::UpscaleError;

/// The input formats this capability accepts: the images its `image` build can decode.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Format {
    Png,
    Jpeg,
    WebP,
}

impl Format {
    pub(crate) fn image_format(self) -> image::ImageFormat {
        match self {
            Self::Png => image::ImageFormat::Png,
            Self::Jpeg => image::ImageFormat::Jpeg,
            Self::WebP => image::ImageFormat::WebP,
        }
    }

    fn media(self) -> MediaType {
        match self {
            Self::Png => MediaType::Png,
            Self::Jpeg => MediaType::Jpeg,
            Self::WebP => MediaType::WebP,
        }
    }
}

/// The format named by the magic bytes; file names and declared content types are not trusted.
pub(crate) fn sniff(bytes: &[u8]) -> Result<Format, UpscaleError> {
    match atelier_media::sniff(bytes) {
        Some(MediaType::Png) => Ok(Format::Png),
        Some(MediaType::Jpeg) => Ok(Format::Jpeg),
        Some(MediaType::WebP) => Ok(Format::WebP),
        // Media the platform accepts but this engine does not decode (GIF, video, audio) is
        // refused like anything else, named so the job failure tells the user what they sent.
        _ => Err(UpscaleError::UnsupportedFormat {
            seen: atelier_media::describe(bytes),
        }),
    }
}

/// Width and height as the header declares them, before any EXIF orientation.
pub(crate) fn dimensions(format: Format, bytes: &[u8]) -> Result<(u32, u32), UpscaleError> {
    let media = format.media();
    atelier_media::image_dimensions(media, bytes).ok_or_else(|| {
        UpscaleError::decode(format!(
            "{} header is truncated or malformed",
            media.as_str()
        ))
    })
}

#[cfg(test)]
mod tests {
    use std::io::Cursor;

    use image::{DynamicImage, ImageFormat, RgbaImage};

    use super::*;

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
        let err = dimensions(Format::Jpeg, &jpeg).unwrap_err();
        assert_eq!(err.code(), "decode_failed");
        assert_eq!(
            err.to_string(),
            "cannot decode image: jpeg header is truncated or malformed"
        );
        assert!(dimensions(Format::Png, b"\x89PNG\r\n\x1a\n").is_err());
        assert!(dimensions(Format::WebP, b"RIFF\0\0\0\0WEBPVP8L").is_err());
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
            assert_eq!(sniff(&bytes).unwrap(), format);
            assert_eq!(dimensions(format, &bytes).unwrap(), (37, 21), "{format:?}");
        }
    }
}
