//! Converting our inpainting masks (white = repaint, black = keep, any image format) into each
//! provider's convention. CPU work: callers run these in `spawn_blocking`.

use std::io::Cursor;

use atelier_media::gate::{self, ImageLimits};
use image::{GrayImage, ImageFormat, Luma, Rgba, RgbaImage};

use crate::error::{ErrorClass, ProviderError};
use crate::provider::Provider;

/// A pixel at or above this grey level counts as "repaint".
const THRESHOLD: u8 = 128;

fn invalid(provider: Provider, message: String) -> ProviderError {
    ProviderError::new(provider, ErrorClass::InvalidRequest, message).with_code("invalid_mask")
}

fn decode_grey(
    provider: Provider,
    mask: &[u8],
    width: u32,
    height: u32,
) -> Result<GrayImage, ProviderError> {
    let limits = ImageLimits::default();
    let admitted =
        gate::admit_within(mask, &limits).map_err(|r| invalid(provider, format!("mask: {r}")))?;
    if (admitted.width, admitted.height) != (width, height) {
        return Err(invalid(
            provider,
            format!(
                "the mask is {}x{} but the image is {width}x{height}",
                admitted.width, admitted.height
            ),
        ));
    }
    let decoded = gate::decode(mask, &admitted, &limits)
        .map_err(|err| invalid(provider, format!("mask: {err}")))?;
    Ok(decoded.image.to_luma8())
}

fn encode_png(
    provider: Provider,
    image: impl FnOnce(&mut Cursor<Vec<u8>>) -> image::ImageResult<()>,
) -> Result<Vec<u8>, ProviderError> {
    let mut out = Cursor::new(Vec::new());
    image(&mut out).map_err(|err| {
        ProviderError::new(
            provider,
            ErrorClass::InvalidRequest,
            format!("encoding the mask: {err}"),
        )
    })?;
    Ok(out.into_inner())
}

/// OpenAI: an RGBA PNG the size of the image where alpha 0 marks the area to edit.
pub fn to_openai_alpha(mask: &[u8], width: u32, height: u32) -> Result<Vec<u8>, ProviderError> {
    let grey = decode_grey(Provider::OpenAi, mask, width, height)?;
    let rgba = RgbaImage::from_fn(width, height, |x, y| {
        let repaint = grey.get_pixel(x, y).0[0] >= THRESHOLD;
        Rgba([0, 0, 0, if repaint { 0 } else { 255 }])
    });
    encode_png(Provider::OpenAi, |out| rgba.write_to(out, ImageFormat::Png))
}

/// Jimeng: a single-channel PNG, 255 = redraw and 0 = keep (our convention, binarised).
pub fn to_jimeng_grey(mask: &[u8], width: u32, height: u32) -> Result<Vec<u8>, ProviderError> {
    let grey = decode_grey(Provider::Jimeng, mask, width, height)?;
    let binary = GrayImage::from_fn(width, height, |x, y| {
        Luma([if grey.get_pixel(x, y).0[0] >= THRESHOLD {
            255
        } else {
            0
        }])
    });
    encode_png(Provider::Jimeng, |out| {
        binary.write_to(out, ImageFormat::Png)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A 4x2 mask: the left half white (repaint), the right half black (keep).
    fn our_mask() -> Vec<u8> {
        let img = GrayImage::from_fn(4, 2, |x, _| Luma([if x < 2 { 255 } else { 0 }]));
        let mut out = Cursor::new(Vec::new());
        img.write_to(&mut out, ImageFormat::Png).unwrap();
        out.into_inner()
    }

    #[test]
    fn white_becomes_transparent_for_openai() {
        let png = to_openai_alpha(&our_mask(), 4, 2).unwrap();
        let img = image::load_from_memory(&png).unwrap().to_rgba8();
        assert_eq!(img.get_pixel(0, 0).0[3], 0);
        assert_eq!(img.get_pixel(3, 1).0[3], 255);
    }

    #[test]
    fn white_stays_255_for_jimeng() {
        let png = to_jimeng_grey(&our_mask(), 4, 2).unwrap();
        let img = image::load_from_memory(&png).unwrap();
        assert!(matches!(img, image::DynamicImage::ImageLuma8(_)));
        let img = img.to_luma8();
        assert_eq!(
            (img.get_pixel(1, 0).0[0], img.get_pixel(2, 0).0[0]),
            (255, 0)
        );
    }

    #[test]
    fn a_mask_of_another_size_is_refused() {
        let err = to_openai_alpha(&our_mask(), 8, 8).unwrap_err();
        assert_eq!(err.class, ErrorClass::InvalidRequest);
        assert_eq!(err.message, "the mask is 4x2 but the image is 8x8");
    }
}
