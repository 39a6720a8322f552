//! The slideshow's timing and camera: which images show at time `t`, with what weight, and
//! through which window of each. Pure arithmetic, so it is tested with numbers.
//!
//! Images share the clip equally and overlap by a crossfade; each moves on its own Ken Burns
//! path (a slow zoom with a pan), chosen from the prompt so that a job renders the same way on
//! every attempt.

use atelier_media::rng::Rng;

/// Images are prepared at this zoom, the deepest the camera goes, so every window is sampled
/// at one source pixel per output pixel or a little more, never magnified.
pub const MAX_ZOOM: f64 = 1.2;
/// The longest crossfade, in seconds.
const CROSSFADE: f64 = 1.0;

#[derive(Debug, Clone, PartialEq)]
pub struct Timeline {
    count: usize,
    /// Seconds each image is on screen, crossfades included.
    length: f64,
    /// Seconds between the starts of consecutive images.
    stride: f64,
    fade: f64,
}

/// What is on screen at one instant.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Visible {
    /// The image underneath and how far along its path it is (0 to 1).
    pub base: (usize, f64),
    /// The image fading in over it: index, path progress, weight (0 to 1).
    pub incoming: Option<(usize, f64, f64)>,
}

impl Timeline {
    pub fn new(count: usize, seconds: f64) -> Self {
        let count = count.max(1);
        let n = count as f64;
        // Short clips with many images get shorter fades, at most 40 % of each image's share.
        let fade = if count == 1 {
            0.0
        } else {
            CROSSFADE.min(0.4 * seconds / n)
        };
        let length = (seconds + (n - 1.0) * fade) / n;
        Self {
            count,
            length,
            stride: length - fade,
            fade,
        }
    }

    pub fn at(&self, t: f64) -> Visible {
        let progress = |i: usize| ((t - i as f64 * self.stride) / self.length).clamp(0.0, 1.0);
        let i = ((t / self.stride).floor().max(0.0) as usize).min(self.count - 1);
        let into = t - i as f64 * self.stride;
        if i > 0 && into < self.fade {
            let weight = smoothstep(into / self.fade);
            Visible {
                base: (i - 1, progress(i - 1)),
                incoming: Some((i, progress(i), weight)),
            }
        } else {
            Visible {
                base: (i, progress(i)),
                incoming: None,
            }
        }
    }

    /// A moment when the first image is alone on screen, for the poster.
    pub fn poster_time(&self) -> f64 {
        (self.length - self.fade) / 2.0
    }
}

fn smoothstep(x: f64) -> f64 {
    let x = x.clamp(0.0, 1.0);
    x * x * (3.0 - 2.0 * x)
}

/// One image's Ken Burns path: zoom and pan (each axis in -1..1 of the room there is to pan)
/// from start to end, linearly, so the motion never stops mid-clip.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Motion {
    zoom: (f64, f64),
    pan_from: (f64, f64),
    pan_to: (f64, f64),
}

impl Motion {
    /// The path of image `index`, from the prompt. Images alternate zooming in and out so
    /// consecutive ones do not move alike.
    pub fn for_image(prompt: &str, index: usize) -> Self {
        let mut rng = Rng::from_parts(&[prompt.as_bytes(), &(1000 + index as u64).to_le_bytes()]);
        let deep = rng.range_f64(1.12, MAX_ZOOM);
        let zoom_in = index.is_multiple_of(2) ^ (rng.unit_f64() < 0.5);
        let zoom = if zoom_in { (1.0, deep) } else { (deep, 1.0) };
        let angle = rng.range_f64(0.0, std::f64::consts::TAU);
        let reach = rng.range_f64(0.5, 0.9);
        let (dx, dy) = (angle.cos() * reach, angle.sin() * reach);
        Self {
            zoom,
            pan_from: (-dx, -dy),
            pan_to: (dx, dy),
        }
    }

    /// The source window for progress `u`: the top-left corner and the source pixels per
    /// output pixel, for an image of `image` size prepared by `source::cover` at [`MAX_ZOOM`].
    pub fn window(&self, u: f64, image: (u32, u32), frame: (u32, u32)) -> Window {
        let lerp = |a: f64, b: f64| a + (b - a) * u;
        let zoom = lerp(self.zoom.0, self.zoom.1);
        let (iw, ih) = (f64::from(image.0), f64::from(image.1));
        let (fw, fh) = (f64::from(frame.0), f64::from(frame.1));
        // At zoom 1 the window spans the image along its tighter side.
        let step = (iw / fw).min(ih / fh) / zoom;
        let (ww, wh) = (fw * step, fh * step);
        let pan = (
            lerp(self.pan_from.0, self.pan_to.0),
            lerp(self.pan_from.1, self.pan_to.1),
        );
        let cx = iw / 2.0 + pan.0 * (iw - ww).max(0.0) / 2.0;
        let cy = ih / 2.0 + pan.1 * (ih - wh).max(0.0) / 2.0;
        Window {
            left: cx - ww / 2.0,
            top: cy - wh / 2.0,
            step,
        }
    }
}

/// Which part of a source image one frame shows.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Window {
    pub left: f64,
    pub top: f64,
    /// Source pixels per output pixel.
    pub step: f64,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_image_fills_the_clip_alone() {
        let timeline = Timeline::new(1, 5.0);
        for t in [0.0, 2.5, 4.99] {
            let visible = timeline.at(t);
            assert_eq!(visible.incoming, None);
            assert_eq!(visible.base.0, 0);
            assert!((visible.base.1 - t / 5.0).abs() < 1e-9);
        }
    }

    #[test]
    fn two_images_in_five_seconds_crossfade_for_one_second() {
        let timeline = Timeline::new(2, 5.0);
        // Each image is on screen 3 s: the first 0-3 s, the second 2-5 s.
        assert_eq!(timeline.at(1.0).base.0, 0);
        assert_eq!(timeline.at(1.0).incoming, None);
        let mid = timeline.at(2.5);
        assert_eq!(mid.base.0, 0);
        let (index, progress, weight) = mid.incoming.unwrap();
        assert_eq!(index, 1);
        assert!((weight - 0.5).abs() < 1e-9);
        assert!((progress - 0.5 / 3.0).abs() < 1e-9);
        assert_eq!(timeline.at(3.5).base.0, 1);
        assert_eq!(timeline.at(3.5).incoming, None);
        assert!((timeline.at(5.0).base.1 - 1.0).abs() < 1e-9);
        assert!(timeline.poster_time() < 2.0);
    }

    #[test]
    fn weights_rise_monotonically_through_every_fade() {
        let timeline = Timeline::new(5, 7.0);
        let mut last: Option<(usize, f64)> = None;
        for frame in 0..(7 * 24) {
            let visible = timeline.at(f64::from(frame) / 24.0);
            if let Some((index, _, weight)) = visible.incoming {
                assert_eq!(visible.base.0 + 1, index);
                if let Some((last_index, last_weight)) = last
                    && last_index == index
                {
                    assert!(weight >= last_weight);
                }
                last = Some((index, weight));
            }
        }
        assert_eq!(timeline.at(6.99).base.0, 4);
    }

    #[test]
    fn windows_stay_inside_the_image_along_the_whole_path() {
        let frame = (1280, 720);
        for (index, image) in [(0, (1536, 864)), (1, (1536, 2048)), (2, (3000, 864))] {
            let motion = Motion::for_image("a prompt", index);
            for step in 0..=10 {
                let w = motion.window(f64::from(step) / 10.0, image, frame);
                assert!(w.left >= -1e-9 && w.top >= -1e-9, "{w:?}");
                assert!(w.step >= 1.0 - 1e-9 && w.step <= MAX_ZOOM + 1e-9, "{w:?}");
                assert!(
                    w.left + w.step * 1280.0 <= f64::from(image.0) + 1e-6,
                    "{w:?}"
                );
                assert!(w.top + w.step * 720.0 <= f64::from(image.1) + 1e-6, "{w:?}");
            }
        }
    }

    #[test]
    fn motion_comes_from_the_prompt() {
        assert_eq!(Motion::for_image("a", 0), Motion::for_image("a", 0));
        assert_ne!(Motion::for_image("a", 0), Motion::for_image("b", 0));
        assert_ne!(Motion::for_image("a", 0), Motion::for_image("a", 1));
    }
}
