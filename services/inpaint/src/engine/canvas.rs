//! The working copy the fill runs on: the part of the image around the hole, as `f32` samples
//! with colour premultiplied by alpha, and the way back into the image's own pixel type.
//!
//! Working on a cut-out bounds the fill's memory and time by the mask's bounding box rather
//! than the image, and premultiplying means a transparent pixel contributes no colour, so the
//! hidden colour under transparency cannot bleed into the fill.

use image::DynamicImage;

use super::mask::{Mask, Rect};

/// A rectangle of the image in `f32`, interleaved, with a flag per pixel saying which to fill.
pub(crate) struct Canvas {
    pub width: usize,
    pub height: usize,
    pub channels: usize,
    pub samples: Vec<f32>,
    pub hole: Vec<bool>,
    /// The largest sample value: 255 or 65535; fills are clamped to `0..=max`.
    pub max: f32,
    /// Whether the last channel is alpha (and the others are premultiplied by it).
    alpha: bool,
}

impl Canvas {
    /// Copies `rect` of `image` out, with the mask's flags for it.
    ///
    /// # Panics
    /// If `image` is not one of the types [`is_workable`] accepts.
    pub fn cut(image: &DynamicImage, mask: &Mask, rect: Rect) -> Self {
        let (samples, max) = match image {
            DynamicImage::ImageLuma8(b) => (load(b.as_raw(), image, rect), 255.0),
            DynamicImage::ImageLumaA8(b) => (load(b.as_raw(), image, rect), 255.0),
            DynamicImage::ImageRgb8(b) => (load(b.as_raw(), image, rect), 255.0),
            DynamicImage::ImageRgba8(b) => (load(b.as_raw(), image, rect), 255.0),
            DynamicImage::ImageLuma16(b) => (load(b.as_raw(), image, rect), 65535.0),
            DynamicImage::ImageLumaA16(b) => (load(b.as_raw(), image, rect), 65535.0),
            DynamicImage::ImageRgb16(b) => (load(b.as_raw(), image, rect), 65535.0),
            DynamicImage::ImageRgba16(b) => (load(b.as_raw(), image, rect), 65535.0),
            other => panic!("canvas cut from unsupported {:?}", other.color()),
        };
        let hole = (rect.y0..rect.y1)
            .flat_map(|y| (rect.x0..rect.x1).map(move |x| mask.is_hole(x, y)))
            .collect();
        let mut canvas = Self {
            width: (rect.x1 - rect.x0) as usize,
            height: (rect.y1 - rect.y0) as usize,
            channels: usize::from(image.color().channel_count()),
            samples,
            hole,
            max,
            alpha: image.color().has_alpha(),
        };
        canvas.premultiply();
        canvas
    }

    /// Writes the filled pixels back into `rect` of `image`; every other pixel is left as is.
    pub fn paste(mut self, image: &mut DynamicImage, rect: Rect) {
        self.unpremultiply();
        let to_u8 = |v: f32| (v.clamp(0.0, 255.0) + 0.5) as u8;
        let to_u16 = |v: f32| (v.clamp(0.0, 65535.0) + 0.5) as u16;
        let width = image.width() as usize;
        match image {
            DynamicImage::ImageLuma8(b) => self.store(b.as_mut(), width, rect, to_u8),
            DynamicImage::ImageLumaA8(b) => self.store(b.as_mut(), width, rect, to_u8),
            DynamicImage::ImageRgb8(b) => self.store(b.as_mut(), width, rect, to_u8),
            DynamicImage::ImageRgba8(b) => self.store(b.as_mut(), width, rect, to_u8),
            DynamicImage::ImageLuma16(b) => self.store(b.as_mut(), width, rect, to_u16),
            DynamicImage::ImageLumaA16(b) => self.store(b.as_mut(), width, rect, to_u16),
            DynamicImage::ImageRgb16(b) => self.store(b.as_mut(), width, rect, to_u16),
            DynamicImage::ImageRgba16(b) => self.store(b.as_mut(), width, rect, to_u16),
            other => panic!("canvas pasted into unsupported {:?}", other.color()),
        }
    }

    fn premultiply(&mut self) {
        if !self.alpha {
            return;
        }
        let c = self.channels;
        for px in self.samples.chunks_exact_mut(c) {
            let a = px[c - 1] / self.max;
            px[..c - 1].iter_mut().for_each(|v| *v *= a);
        }
    }

    fn unpremultiply(&mut self) {
        if !self.alpha {
            return;
        }
        let c = self.channels;
        for (px, _) in self
            .samples
            .chunks_exact_mut(c)
            .zip(&self.hole)
            .filter(|(_, hole)| **hole)
        {
            let a = px[c - 1].clamp(0.0, self.max) / self.max;
            // A fully transparent fill has no colour; black is what the decoders give it too.
            let scale = if a > 0.0 { 1.0 / a } else { 0.0 };
            px[..c - 1].iter_mut().for_each(|v| *v *= scale);
        }
    }

    fn store<T: Copy>(&self, raw: &mut [T], image_width: usize, rect: Rect, to: impl Fn(f32) -> T) {
        let c = self.channels;
        for y in 0..self.height {
            let src_row = y * self.width;
            let dst_row = (rect.y0 as usize + y) * image_width + rect.x0 as usize;
            for x in (0..self.width).filter(|&x| self.hole[src_row + x]) {
                let src = &self.samples[(src_row + x) * c..][..c];
                let dst = &mut raw[(dst_row + x) * c..][..c];
                for (d, &s) in dst.iter_mut().zip(src) {
                    *d = to(s);
                }
            }
        }
    }
}

/// Whether [`Canvas`] handles the image's pixel type. The PNG, JPEG and WebP decoders only
/// produce these: 8- and 16-bit grey or RGB, with or without alpha.
pub(crate) fn is_workable(image: &DynamicImage) -> bool {
    matches!(
        image,
        DynamicImage::ImageLuma8(_)
            | DynamicImage::ImageLumaA8(_)
            | DynamicImage::ImageRgb8(_)
            | DynamicImage::ImageRgba8(_)
            | DynamicImage::ImageLuma16(_)
            | DynamicImage::ImageLumaA16(_)
            | DynamicImage::ImageRgb16(_)
            | DynamicImage::ImageRgba16(_)
    )
}

fn load<T: Copy + Into<f32>>(raw: &[T], image: &DynamicImage, rect: Rect) -> Vec<f32> {
    let c = usize::from(image.color().channel_count());
    let width = image.width() as usize;
    let mut samples =
        Vec::with_capacity((rect.x1 - rect.x0) as usize * (rect.y1 - rect.y0) as usize * c);
    for y in rect.y0 as usize..rect.y1 as usize {
        let row = &raw[(y * width + rect.x0 as usize) * c..(y * width + rect.x1 as usize) * c];
        samples.extend(row.iter().map(|&v| v.into()));
    }
    samples
}
