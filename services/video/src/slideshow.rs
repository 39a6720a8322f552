//! Frames from image materials: each image on its Ken Burns path, crossfading into the next.
//!
//! Images are decoded and prepared (scaled to cover the frame at the deepest zoom) only when
//! the clip reaches them, and dropped once it has passed them, so at most two prepared images
//! are held whatever the number of materials.

use image::RgbImage;

use crate::VideoError;
use crate::source::{self, Limits, SourceImage};
use crate::timeline::{MAX_ZOOM, Motion, Timeline, Window};

pub struct Slideshow {
    frame: (u32, u32),
    timeline: Timeline,
    sources: Vec<SourceImage>,
    motions: Vec<Motion>,
    limits: Limits,
    /// Prepared images by index, oldest first; never more than two.
    prepared: Vec<(usize, RgbImage)>,
    /// The incoming image's frame during a crossfade.
    scratch: Vec<u8>,
    columns: Vec<[u32; 3]>,
}

impl Slideshow {
    /// `first` is image 0 already decoded (the clip's size may have depended on it).
    pub fn new(
        frame: (u32, u32),
        seconds: f64,
        prompt: &str,
        sources: Vec<SourceImage>,
        first: Option<RgbImage>,
        limits: Limits,
    ) -> Self {
        let timeline = Timeline::new(sources.len(), seconds);
        let motions = (0..sources.len())
            .map(|i| Motion::for_image(prompt, i))
            .collect();
        let prepared = first
            .map(|image| vec![(0, prepare(&image, frame))])
            .unwrap_or_default();
        Self {
            frame,
            timeline,
            sources,
            motions,
            limits,
            prepared,
            scratch: Vec::new(),
            columns: Vec::with_capacity(frame.0 as usize),
        }
    }

    pub fn poster_time(&self) -> f64 {
        self.timeline.poster_time()
    }

    /// Draws the frame at `t` seconds into `out` (RGB24 rows).
    pub fn render(&mut self, t: f64, out: &mut [u8]) -> Result<(), VideoError> {
        let visible = self.timeline.at(t);
        let (base, base_u) = visible.base;
        // Time only moves forward: anything before the base image is done with.
        self.prepared.retain(|(index, _)| *index >= base);
        self.ensure(base)?;
        self.draw(base, base_u, out);
        if let Some((incoming, u, weight)) = visible.incoming {
            self.ensure(incoming)?;
            let mut scratch = std::mem::take(&mut self.scratch);
            scratch.resize(out.len(), 0);
            self.draw(incoming, u, &mut scratch);
            blend(out, &scratch, weight);
            self.scratch = scratch;
        }
        Ok(())
    }

    fn ensure(&mut self, index: usize) -> Result<(), VideoError> {
        if self.prepared.iter().any(|(i, _)| *i == index) {
            return Ok(());
        }
        let decoded = self.sources[index].decode(&self.limits)?;
        let image = prepare(&decoded, self.frame);
        drop(decoded);
        self.prepared.push((index, image));
        Ok(())
    }

    fn draw(&mut self, index: usize, u: f64, out: &mut [u8]) {
        let Some((_, image)) = self.prepared.iter().find(|(i, _)| *i == index) else {
            return;
        };
        let window = self.motions[index].window(u, image.dimensions(), self.frame);
        sample(image, &window, self.frame, &mut self.columns, out);
    }
}

/// Scales a decoded image to cover the frame at [`MAX_ZOOM`].
pub fn prepare(image: &RgbImage, frame: (u32, u32)) -> RgbImage {
    let zoomed = |side: u32| (f64::from(side) * MAX_ZOOM).ceil() as u32;
    source::cover(image, zoomed(frame.0), zoomed(frame.1))
}

/// Fills `out` with `image` seen through `window`, bilinearly, in 8-bit fixed point.
///
/// The step between output pixels is constant within a frame, so the horizontal source
/// positions and weights are worked out once per frame (`columns`), not once per pixel.
fn sample(
    image: &RgbImage,
    window: &Window,
    frame: (u32, u32),
    columns: &mut Vec<[u32; 3]>,
    out: &mut [u8],
) {
    let (iw, ih) = image.dimensions();
    let source = image.as_raw();
    let row_len = iw as usize * 3;
    // (left offset, right offset, right weight out of 256) per output column.
    let position = |origin: f64, i: u32, last: u32| {
        let s = (origin + (f64::from(i) + 0.5) * window.step - 0.5).clamp(0.0, f64::from(last));
        let p0 = s.floor() as u32;
        (p0, (p0 + 1).min(last), ((s - f64::from(p0)) * 256.0) as u32)
    };
    columns.clear();
    columns.extend((0..frame.0).map(|x| {
        let (x0, x1, fx) = position(window.left, x, iw - 1);
        [x0 * 3, x1 * 3, fx]
    }));
    for (y, row) in out.chunks_exact_mut(frame.0 as usize * 3).enumerate() {
        let (y0, y1, fy) = position(window.top, y as u32, ih - 1);
        let top = &source[y0 as usize * row_len..][..row_len];
        let bottom = &source[y1 as usize * row_len..][..row_len];
        for (px, &[a, b, fx]) in row.chunks_exact_mut(3).zip(columns.iter()) {
            let (a, b) = (a as usize, b as usize);
            let (t0, t1) = (&top[a..a + 3], &top[b..b + 3]);
            let (b0, b1) = (&bottom[a..a + 3], &bottom[b..b + 3]);
            for c in 0..3 {
                let upper = u32::from(t0[c]) * (256 - fx) + u32::from(t1[c]) * fx;
                let lower = u32::from(b0[c]) * (256 - fx) + u32::from(b1[c]) * fx;
                px[c] = ((upper * (256 - fy) + lower * fy + (1 << 15)) >> 16) as u8;
            }
        }
    }
}

/// `out = out * (1 - weight) + over * weight`.
fn blend(out: &mut [u8], over: &[u8], weight: f64) {
    let w = (weight.clamp(0.0, 1.0) * 256.0).round() as u32;
    for (o, &v) in out.iter_mut().zip(over) {
        *o = ((u32::from(*o) * (256 - w) + u32::from(v) * w + 128) >> 8) as u8;
    }
}

#[cfg(test)]
mod tests {
    use image::{ImageBuffer, Rgb};

    use super::*;

    #[test]
    fn an_identity_window_reproduces_the_image() {
        let image: RgbImage =
            ImageBuffer::from_fn(8, 4, |x, y| Rgb([(x * 30) as u8, (y * 60) as u8, 7]));
        let window = Window {
            left: 0.0,
            top: 0.0,
            step: 1.0,
        };
        let mut out = vec![0; 8 * 4 * 3];
        sample(&image, &window, (8, 4), &mut Vec::new(), &mut out);
        assert_eq!(out, image.as_raw().as_slice());
    }

    #[test]
    fn half_pixel_offsets_average_neighbours() {
        let image: RgbImage =
            ImageBuffer::from_fn(
                2,
                1,
                |x, _| if x == 0 { Rgb([0; 3]) } else { Rgb([200; 3]) },
            );
        let window = Window {
            left: 0.5,
            top: 0.0,
            step: 1.0,
        };
        let mut out = vec![0; 3];
        sample(&image, &window, (1, 1), &mut Vec::new(), &mut out);
        assert_eq!(out, [100, 100, 100]);
    }

    #[test]
    fn blending_weights_the_incoming_frame() {
        let mut out = vec![0, 100, 255];
        blend(&mut out, &[255, 100, 0], 0.5);
        assert_eq!(out, [128, 100, 128]);
        let mut out = vec![10, 20, 30];
        blend(&mut out, &[200, 200, 200], 0.0);
        assert_eq!(out, [10, 20, 30]);
    }
}
