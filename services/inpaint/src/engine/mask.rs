//! The mask convention: which pixels of a decoded mask image are to be repainted.

use image::DynamicImage;

/// Below this alpha (of 255) a pixel of an alpha mask is transparent, so repainted; at or above
/// this luma a pixel of any other mask is white, so repainted. Halfway, so a mask's own
/// antialiased edge splits evenly instead of growing or shrinking the hole.
const THRESHOLD: u8 = 128;

/// Which pixels to repaint, one flag per pixel, row-major.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Mask {
    width: u32,
    height: u32,
    hole: Vec<bool>,
}

/// A pixel rectangle, `x0..x1` by `y0..y1`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Rect {
    pub x0: u32,
    pub y0: u32,
    pub x1: u32,
    pub y1: u32,
}

impl Mask {
    /// Reads a mask image by the crate's convention: an alpha channel that is not fully opaque
    /// decides by transparency (alpha < 128 is repainted, the OpenAI convention); otherwise
    /// white (luma >= 128) is repainted. A fully opaque alpha channel carries no choice, which
    /// is why it falls through to brightness: a white-on-black mask saved as RGBA still works.
    pub fn from_image(image: &DynamicImage) -> Self {
        let (width, height) = (image.width(), image.height());
        let hole = if image.color().has_alpha() {
            let grey_alpha = image.to_luma_alpha8();
            let pixels = grey_alpha.pixels();
            if grey_alpha.pixels().any(|p| p.0[1] < u8::MAX) {
                pixels.map(|p| p.0[1] < THRESHOLD).collect()
            } else {
                pixels.map(|p| p.0[0] >= THRESHOLD).collect()
            }
        } else {
            image
                .to_luma8()
                .pixels()
                .map(|p| p.0[0] >= THRESHOLD)
                .collect()
        };
        Self {
            width,
            height,
            hole,
        }
    }

    /// A mask from flags, row-major; for callers that build masks in code.
    ///
    /// # Panics
    /// If `hole` does not hold exactly `width * height` flags.
    pub fn from_flags(width: u32, height: u32, hole: Vec<bool>) -> Self {
        assert_eq!(hole.len() as u64, u64::from(width) * u64::from(height));
        Self {
            width,
            height,
            hole,
        }
    }

    pub fn width(&self) -> u32 {
        self.width
    }

    pub fn height(&self) -> u32 {
        self.height
    }

    pub fn is_hole(&self, x: u32, y: u32) -> bool {
        self.hole[y as usize * self.width as usize + x as usize]
    }

    /// How many pixels are to be repainted.
    pub fn count(&self) -> usize {
        self.hole.iter().filter(|&&h| h).count()
    }

    /// The smallest rectangle holding every pixel to repaint, `None` when there is none.
    pub fn bounds(&self) -> Option<Rect> {
        let w = self.width as usize;
        let mut rect: Option<Rect> = None;
        for (y, row) in self.hole.chunks_exact(w.max(1)).enumerate() {
            let (Some(first), Some(last)) =
                (row.iter().position(|&h| h), row.iter().rposition(|&h| h))
            else {
                continue;
            };
            let (y, first, last) = (y as u32, first as u32, last as u32);
            rect = Some(match rect {
                None => Rect {
                    x0: first,
                    y0: y,
                    x1: last + 1,
                    y1: y + 1,
                },
                Some(r) => Rect {
                    x0: r.x0.min(first),
                    y0: r.y0,
                    x1: r.x1.max(last + 1),
                    y1: y + 1,
                },
            });
        }
        rect
    }
}

#[cfg(test)]
mod tests {
    use image::{GrayImage, ImageBuffer, Luma, LumaA, Rgb, Rgba, RgbaImage};

    use super::*;

    fn holes(mask: &Mask) -> Vec<(u32, u32)> {
        (0..mask.height())
            .flat_map(|y| (0..mask.width()).map(move |x| (x, y)))
            .filter(|&(x, y)| mask.is_hole(x, y))
            .collect()
    }

    #[test]
    fn white_is_repainted_in_a_mask_without_alpha() {
        let grey = GrayImage::from_fn(4, 2, |x, _| Luma([[0, 127, 128, 255][x as usize]]));
        let mask = Mask::from_image(&DynamicImage::ImageLuma8(grey));
        assert_eq!(holes(&mask), [(2, 0), (3, 0), (2, 1), (3, 1)]);

        // Colour masks go by luma: pure red is dark, pure white and light grey are not.
        let rgb = ImageBuffer::from_fn(3, 1, |x, _| {
            Rgb([[255, 0, 0], [255, 255, 255], [200, 200, 200]][x as usize])
        });
        let mask = Mask::from_image(&DynamicImage::ImageRgb8(rgb));
        assert_eq!(holes(&mask), [(1, 0), (2, 0)]);
    }

    #[test]
    fn transparent_is_repainted_in_a_mask_with_alpha() {
        // OpenAI convention: the colour under the alpha does not matter, white or black.
        let rgba = RgbaImage::from_fn(4, 1, |x, _| {
            Rgba(
                [
                    [255, 255, 255, 0],
                    [0, 0, 0, 0],
                    [0, 0, 0, 127],
                    [255, 255, 255, 255],
                ][x as usize],
            )
        });
        let mask = Mask::from_image(&DynamicImage::ImageRgba8(rgba));
        assert_eq!(holes(&mask), [(0, 0), (1, 0), (2, 0)]);

        let grey_alpha = ImageBuffer::from_fn(2, 1, |x, _| LumaA([0, [0, 200][x as usize]]));
        let mask = Mask::from_image(&DynamicImage::ImageLumaA8(grey_alpha));
        assert_eq!(holes(&mask), [(0, 0)]);
    }

    #[test]
    fn an_opaque_alpha_channel_falls_back_to_brightness() {
        let rgba = RgbaImage::from_fn(2, 1, |x, _| {
            Rgba([[0, 0, 0, 255], [255, 255, 255, 255]][x as usize])
        });
        let mask = Mask::from_image(&DynamicImage::ImageRgba8(rgba));
        assert_eq!(holes(&mask), [(1, 0)]);
    }

    #[test]
    fn sixteen_bit_masks_use_the_same_thresholds() {
        let grey = ImageBuffer::from_fn(2, 1, |x, _| Luma([[32_000u16, 33_000][x as usize]]));
        let mask = Mask::from_image(&DynamicImage::ImageLuma16(grey));
        assert_eq!(holes(&mask), [(1, 0)]);
    }

    #[test]
    fn bounds_enclose_every_hole() {
        let mut flags = vec![false; 6 * 5];
        flags[6 + 3] = true; // (3, 1)
        flags[3 * 6 + 1] = true; // (1, 3)
        let mask = Mask::from_flags(6, 5, flags);
        assert_eq!(mask.count(), 2);
        assert_eq!(
            mask.bounds(),
            Some(Rect {
                x0: 1,
                y0: 1,
                x1: 4,
                y1: 4
            })
        );
        assert_eq!(Mask::from_flags(3, 3, vec![false; 9]).bounds(), None);
    }
}
