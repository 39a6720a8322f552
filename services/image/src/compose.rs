//! The composition: a background, a scatter of shapes, the prompt on a panel, and a small
//! "sandbox" mark, every choice drawn from the generator in a fixed order.
//!
//! `quality` sets the detail: how many shapes, whether gradients are dithered, whether the
//! text casts a shadow and a dot texture is laid over the scene. `scale` (text influence,
//! 0 to 100) sets how large and prominent the prompt's text is.

use std::f32::consts::TAU;

use image::RgbImage;

use crate::canvas;
use crate::palette::{Colour, Palette, luminance};
use crate::request::Quality;
use crate::text::{Block, Fonts, LINE_SPACING};
use atelier_media::rng::Rng;

/// Below this short side the sandbox mark would be an unreadable smudge, and is left out.
const MIN_SIDE_FOR_MARK: u32 = 256;

pub struct Scene<'a> {
    pub canvas: &'a mut RgbImage,
    pub palette: &'a Palette,
    pub rng: &'a mut Rng,
    pub quality: Quality,
}

impl Scene<'_> {
    fn size(&self) -> (f32, f32) {
        (self.canvas.width() as f32, self.canvas.height() as f32)
    }

    pub fn background(&mut self) {
        let (w, h) = self.size();
        let dither = self.quality == Quality::High;
        let c = self.palette.colours;
        match self.rng.below(3) {
            0 => {
                let angle = self.rng.range_f32(0.0, TAU);
                canvas::linear_gradient(self.canvas, &[c[0], c[1], c[2]], angle, dither);
            }
            1 => {
                let centre = (
                    self.rng.range_f32(0.2, 0.8) * w,
                    self.rng.range_f32(0.2, 0.8) * h,
                );
                let radius = w.hypot(h) * self.rng.range_f32(0.5, 0.9);
                canvas::radial_gradient(self.canvas, &[c[3], c[1], c[0]], centre, radius, dither);
            }
            _ => {
                let angle = self.rng.range_f32(0.0, TAU);
                canvas::linear_gradient(self.canvas, &[c[4], c[2], c[1]], angle, dither);
            }
        }
    }

    pub fn shapes(&mut self) {
        let (w, h) = self.size();
        let short = w.min(h);
        let count = match self.quality {
            Quality::Low => 6,
            Quality::Medium => 12,
            Quality::High => 20,
        };
        for _ in 0..count {
            let colour = self.palette.colours[1 + self.rng.below(4)];
            let alpha = self.rng.range_f32(0.12, 0.5);
            let centre = (
                self.rng.range_f32(-0.1, 1.1) * w,
                self.rng.range_f32(-0.1, 1.1) * h,
            );
            let size = short * self.rng.range_f32(0.04, 0.4);
            match self.rng.below(5) {
                0 => canvas::disc(self.canvas, centre, size, 1.0, colour, alpha),
                // A glow: the same disc with an edge as wide as itself.
                1 => canvas::disc(self.canvas, centre, size * 0.6, size * 0.8, colour, alpha),
                2 => {
                    let thickness = (size * self.rng.range_f32(0.05, 0.2)).max(1.0);
                    canvas::ring(self.canvas, centre, size, thickness, colour, alpha);
                }
                3 => {
                    let aspect = self.rng.range_f32(0.4, 2.5);
                    let (hw, hh) = (size * aspect.sqrt(), size / aspect.sqrt());
                    let rect = (centre.0 - hw, centre.1 - hh, centre.0 + hw, centre.1 + hh);
                    let corner = hw.min(hh) * self.rng.range_f32(0.0, 0.5);
                    canvas::rounded_rect(self.canvas, rect, corner, colour, alpha);
                }
                _ => {
                    let angle = self.rng.range_f32(0.0, TAU);
                    canvas::band(self.canvas, centre, angle, size * 0.3, colour, alpha * 0.6);
                }
            }
        }
        if self.quality == Quality::High {
            let spacing = (short / 48.0).max(4.0);
            let colour = self.palette.lightest();
            canvas::dots(
                self.canvas,
                (0.0, 0.0, w, h),
                spacing,
                spacing * 0.12,
                colour,
                0.18,
            );
        }
    }

    /// Draws `text` on a panel; `scale` is the text influence, 0 to 100.
    pub fn text(&mut self, fonts: &Fonts, text: &str, scale: f64) {
        let (w, h) = self.size();
        let short = w.min(h);
        let s = (scale / 100.0).clamp(0.0, 1.0) as f32;
        let largest = (short * (0.035 + 0.085 * s)).max(8.0);
        let smallest = (short * 0.02).max(6.0);
        let box_width = w * 0.82;
        let box_height = h * (0.25 + 0.45 * s);
        let block = fonts.fit(text, box_width, box_height, largest, smallest);
        // Drawn whether or not there is text, so the generator's sequence does not depend on
        // the fonts installed.
        let vertical = self.rng.below(3);
        let centred = self.rng.unit_f32() < 0.6;
        let dark_panel = self.rng.unit_f32() < 0.5;
        if block.lines.is_empty() {
            return;
        }
        let pad = block.size * 0.7;
        let top = match vertical {
            0 => h * 0.08,
            1 => (h - block.height) / 2.0,
            _ => h * 0.92 - block.height,
        };
        let left = (w - if centred { block.width } else { box_width }) / 2.0;
        let (panel, ink) = if dark_panel {
            (self.palette.darkest(), self.palette.lightest())
        } else {
            (self.palette.lightest(), self.palette.darkest())
        };
        let ink = legible(ink, panel);
        let panel_width = if centred {
            block.width
        } else {
            block.width.max(box_width * 0.3)
        };
        let panel_rect = (
            left - pad,
            top - pad,
            left + panel_width + pad,
            top + block.height + pad,
        );
        canvas::rounded_rect(self.canvas, panel_rect, pad, panel, 0.3 + 0.5 * s);
        self.lines(fonts, &block, (left, top), centred, ink, panel);
    }

    fn lines(
        &mut self,
        fonts: &Fonts,
        block: &Block,
        origin: (f32, f32),
        centred: bool,
        ink: Colour,
        panel: Colour,
    ) {
        let shadow = self.quality != Quality::Low;
        let offset = (block.size * 0.05).max(1.0);
        for (i, line) in block.lines.iter().enumerate() {
            let indent = if centred {
                (block.width - fonts.line_width(line, block.size)) / 2.0
            } else {
                0.0
            };
            let at = (
                origin.0 + indent,
                origin.1 + i as f32 * block.size * LINE_SPACING,
            );
            if shadow {
                fonts.draw_line(
                    self.canvas,
                    line,
                    (at.0 + offset, at.1 + offset),
                    block.size,
                    panel,
                    0.6,
                );
            }
            fonts.draw_line(self.canvas, line, at, block.size, ink, 1.0);
        }
    }

    /// A small mark in the corner saying what this is: sandbox output, and its seed.
    pub fn mark(&mut self, fonts: &Fonts, seed: u64) {
        let (w, h) = self.canvas.dimensions();
        if w.min(h) < MIN_SIDE_FOR_MARK || fonts.is_empty() {
            return;
        }
        let size = (w.min(h) as f32 * 0.016).max(9.0);
        let text = format!("ATELIER SANDBOX · seed {seed}");
        let width = fonts.line_width(&text, size);
        let margin = size;
        let at = (
            w as f32 - width - margin,
            h as f32 - size * LINE_SPACING - margin,
        );
        let ink = self.palette.lightest();
        let shade = self.palette.darkest();
        fonts.draw_line(
            self.canvas,
            &text,
            (at.0 + 1.0, at.1 + 1.0),
            size,
            shade,
            0.5,
        );
        fonts.draw_line(self.canvas, &text, at, size, ink, 0.7);
    }
}

/// `ink` when it stands out from `panel`, else white or black, whichever does.
fn legible(ink: Colour, panel: Colour) -> Colour {
    if (luminance(ink) - luminance(panel)).abs() >= 0.45 {
        ink
    } else if luminance(panel) < 0.5 {
        [255, 255, 255]
    } else {
        [0, 0, 0]
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn text_colour_always_contrasts_with_its_panel() {
        assert_eq!(legible([240, 240, 240], [10, 10, 10]), [240, 240, 240]);
        assert_eq!(legible([120, 120, 120], [100, 100, 100]), [255, 255, 255]);
        assert_eq!(legible([120, 120, 120], [200, 200, 200]), [0, 0, 0]);
    }
}
