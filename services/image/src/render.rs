//! The sandbox renderer: a pure function from the request, the reference's colours and the
//! fonts to PNG bytes. Same inputs, same bytes.

use image::codecs::png::{CompressionType, FilterType, PngEncoder};
use image::{ExtendedColorType, ImageEncoder, RgbImage};

use crate::ImageError;
use crate::compose::Scene;
use crate::palette::{Colour, Palette};
use crate::request::{GenerateRequest, Quality};
use crate::text::{Fonts, display_text};
use atelier_media::rng::Rng;

/// An encoded result, ready to store.
#[derive(Clone)]
pub struct Generated {
    pub png: Vec<u8>,
    pub width: u32,
    pub height: u32,
}

impl std::fmt::Debug for Generated {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Generated")
            .field("png", &format_args!("<{} bytes>", self.png.len()))
            .field("width", &self.width)
            .field("height", &self.height)
            .finish()
    }
}

/// Renders the composition for `request`. `reference` is a thumbnail of the reference image,
/// whose dominant colours then make the palette.
pub fn render(
    request: &GenerateRequest,
    fonts: &Fonts,
    reference: Option<&[Colour]>,
) -> Result<Generated, ImageError> {
    let mut rng = Rng::from_parts(&[&request.seed.to_le_bytes(), request.prompt.as_bytes()]);
    // Drawn even when a reference replaces it, so the layout after it does not change with
    // the reference.
    let generated = Palette::from_rng(&mut rng);
    let palette = match reference {
        Some(pixels) if !pixels.is_empty() => Palette::from_pixels(pixels, &generated),
        _ => generated,
    };
    let mut canvas = RgbImage::new(request.width, request.height);
    let mut scene = Scene {
        canvas: &mut canvas,
        palette: &palette,
        rng: &mut rng,
        quality: request.quality,
    };
    scene.background();
    scene.shapes();
    scene.text(fonts, &display_text(&request.prompt), request.scale);
    scene.mark(fonts, request.seed);
    let png = encode(&canvas, request.quality)?;
    Ok(Generated {
        png,
        width: request.width,
        height: request.height,
    })
}

/// Quality also buys compression: `high` spends the time on the smallest file.
fn encode(canvas: &RgbImage, quality: Quality) -> Result<Vec<u8>, ImageError> {
    let compression = match quality {
        Quality::Low => CompressionType::Fast,
        Quality::Medium => CompressionType::Default,
        Quality::High => CompressionType::Best,
    };
    let mut png = Vec::new();
    PngEncoder::new_with_quality(&mut png, compression, FilterType::Adaptive)
        .write_image(
            canvas.as_raw(),
            canvas.width(),
            canvas.height(),
            ExtendedColorType::Rgb8,
        )
        .map_err(|err| ImageError::EncodeFailed {
            reason: err.to_string(),
        })?;
    Ok(png)
}

#[cfg(test)]
mod tests;
