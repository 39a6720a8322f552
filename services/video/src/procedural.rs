//! Frames from a prompt alone: a slowly turning gradient with soft glowing shapes drifting
//! over it, every choice (palette, paths, sizes) drawn from the prompt's hash.
//!
//! No model is involved; this is the local engine's honest stand-in for text-to-video, and the
//! same prompt always animates the same way. Each frame costs one pass over the pixels for the
//! gradient (a lookup per pixel) plus the pixels under each shape.

use atelier_media::rng::Rng;

const LUT_SIZE: usize = 256;

pub struct Procedural {
    frame: (u32, u32),
    /// Three gradient stops as hue (degrees), saturation, value.
    stops: [(f64, f64, f64); 3],
    /// Degrees per second the gradient's hues turn.
    drift: f64,
    angle: f64,
    spin: f64,
    blobs: Vec<Blob>,
    seconds: f64,
    lut: Vec<[u8; 3]>,
}

struct Blob {
    centre: (f64, f64),
    reach: (f64, f64),
    /// Cycles over the whole clip, per axis.
    cycles: (f64, f64),
    phase: (f64, f64),
    /// Fraction of the frame's short side.
    radius: f64,
    colour: [f64; 3],
    opacity: f64,
}

impl Procedural {
    pub fn new(prompt: &str, frame: (u32, u32), seconds: f64) -> Self {
        let mut rng = Rng::from_parts(&[prompt.as_bytes(), &0u64.to_le_bytes()]);
        let hue = rng.range_f64(0.0, 360.0);
        // Analogous, triadic or complementary: which one is the prompt's too.
        let spread = [30.0, 120.0, 180.0][(rng.next_u64() % 3) as usize];
        let stops = [
            (hue, rng.range_f64(0.55, 0.8), rng.range_f64(0.18, 0.3)),
            (
                hue + spread * 0.5,
                rng.range_f64(0.5, 0.75),
                rng.range_f64(0.4, 0.55),
            ),
            (
                hue + spread,
                rng.range_f64(0.45, 0.7),
                rng.range_f64(0.65, 0.85),
            ),
        ];
        let count = 5 + (rng.next_u64() % 4) as usize;
        let blobs = (0..count)
            .map(|i| {
                let blob_hue = hue + spread * (i % 3) as f64 * 0.5 + rng.range_f64(-15.0, 15.0);
                Blob {
                    centre: (rng.range_f64(0.15, 0.85), rng.range_f64(0.15, 0.85)),
                    reach: (rng.range_f64(0.05, 0.3), rng.range_f64(0.05, 0.3)),
                    cycles: (rng.range_f64(0.3, 1.2), rng.range_f64(0.3, 1.2)),
                    phase: (
                        rng.range_f64(0.0, std::f64::consts::TAU),
                        rng.range_f64(0.0, std::f64::consts::TAU),
                    ),
                    radius: rng.range_f64(0.12, 0.38),
                    colour: hsv(blob_hue, rng.range_f64(0.35, 0.75), rng.range_f64(0.8, 1.0)),
                    opacity: rng.range_f64(0.25, 0.6),
                }
            })
            .collect();
        Self {
            frame,
            stops,
            drift: rng.range_f64(-12.0, 12.0),
            angle: rng.range_f64(0.0, std::f64::consts::TAU),
            spin: rng.range_f64(-0.25, 0.25),
            blobs,
            seconds,
            lut: vec![[0; 3]; LUT_SIZE],
        }
    }

    pub fn poster_time(&self) -> f64 {
        self.seconds / 2.0
    }

    /// Draws the frame at `t` seconds into `out` (RGB24 rows).
    pub fn render(&mut self, t: f64, out: &mut [u8]) {
        self.gradient(t, out);
        let (w, h) = (f64::from(self.frame.0), f64::from(self.frame.1));
        let short = w.min(h);
        let clip = t / self.seconds * std::f64::consts::TAU;
        for blob in &self.blobs {
            let cx =
                (blob.centre.0 + blob.reach.0 * (clip * blob.cycles.0 + blob.phase.0).sin()) * w;
            let cy =
                (blob.centre.1 + blob.reach.1 * (clip * blob.cycles.1 + blob.phase.1).cos()) * h;
            // Each shape breathes a little as it moves.
            let radius = blob.radius * short * (1.0 + 0.12 * (clip * 2.0 + blob.phase.0).sin());
            glow(out, self.frame, (cx, cy), radius, blob.colour, blob.opacity);
        }
    }

    fn gradient(&mut self, t: f64, out: &mut [u8]) {
        let turned = self.drift * t;
        let colours = self.stops.map(|(h, s, v)| hsv(h + turned, s, v));
        for (i, entry) in self.lut.iter_mut().enumerate() {
            let x = i as f64 / (LUT_SIZE - 1) as f64 * 2.0;
            let (a, b, f) = if x < 1.0 {
                (colours[0], colours[1], x)
            } else {
                (colours[1], colours[2], x - 1.0)
            };
            *entry = [0, 1, 2].map(|c| ((a[c] + (b[c] - a[c]) * f) * 255.0).round() as u8);
        }
        let (w, h) = (f64::from(self.frame.0), f64::from(self.frame.1));
        let angle = self.angle + self.spin * t;
        let (dx, dy) = (angle.cos(), angle.sin());
        // Position along the gradient axis, 0 to 1 across the frame's diagonal extent.
        let extent = w * dx.abs() + h * dy.abs();
        let scale = (LUT_SIZE - 1) as f64 / extent;
        let origin = -(w / 2.0 * dx + h / 2.0 * dy) * scale + (LUT_SIZE - 1) as f64 / 2.0;
        let (step_x, step_y) = (dx * scale, dy * scale);
        let last = (LUT_SIZE - 1) as f64;
        for (y, row) in out.chunks_exact_mut(self.frame.0 as usize * 3).enumerate() {
            let mut u = origin + step_y * y as f64;
            for px in row.chunks_exact_mut(3) {
                px.copy_from_slice(&self.lut[u.clamp(0.0, last) as usize]);
                u += step_x;
            }
        }
    }
}

/// A soft disc: opacity falls off as (1 - d²/r²)², blended over what is there.
fn glow(
    out: &mut [u8],
    frame: (u32, u32),
    centre: (f64, f64),
    radius: f64,
    colour: [f64; 3],
    opacity: f64,
) {
    if radius < 1.0 {
        return;
    }
    let (w, h) = (frame.0 as i64, frame.1 as i64);
    let x0 = ((centre.0 - radius).floor() as i64).clamp(0, w);
    let x1 = ((centre.0 + radius).ceil() as i64).clamp(0, w);
    let y0 = ((centre.1 - radius).floor() as i64).clamp(0, h);
    let y1 = ((centre.1 + radius).ceil() as i64).clamp(0, h);
    let inverse_r2 = 1.0 / (radius * radius);
    let colour = colour.map(|c| (c * 255.0) as f32);
    let opacity = opacity as f32;
    for y in y0..y1 {
        let dy = (y as f64 + 0.5 - centre.1) as f32;
        let row = &mut out[(y * w * 3) as usize..][..(w * 3) as usize];
        for x in x0..x1 {
            let dx = (x as f64 + 0.5 - centre.0) as f32;
            let d2 = (dx * dx + dy * dy) * inverse_r2 as f32;
            if d2 >= 1.0 {
                continue;
            }
            let falloff = 1.0 - d2;
            let alpha = falloff * falloff * opacity;
            let px = &mut row[x as usize * 3..][..3];
            for c in 0..3 {
                let v = f32::from(px[c]);
                px[c] = (v + (colour[c] - v) * alpha + 0.5) as u8;
            }
        }
    }
}

/// Hue in degrees (any value), saturation and value 0 to 1, to RGB 0 to 1.
fn hsv(hue: f64, saturation: f64, value: f64) -> [f64; 3] {
    let h = hue.rem_euclid(360.0) / 60.0;
    let c = value * saturation;
    let x = c * (1.0 - (h % 2.0 - 1.0).abs());
    let (r, g, b) = match h as u32 {
        0 => (c, x, 0.0),
        1 => (x, c, 0.0),
        2 => (0.0, c, x),
        3 => (0.0, x, c),
        4 => (x, 0.0, c),
        _ => (c, 0.0, x),
    };
    let m = value - c;
    [r + m, g + m, b + m]
}

#[cfg(test)]
mod tests {
    use super::*;

    fn frame(prompt: &str, t: f64) -> Vec<u8> {
        let mut scene = Procedural::new(prompt, (64, 36), 5.0);
        let mut out = vec![0; 64 * 36 * 3];
        scene.render(t, &mut out);
        out
    }

    #[test]
    fn the_prompt_decides_every_pixel() {
        assert_eq!(frame("品牌短视频", 1.0), frame("品牌短视频", 1.0));
        assert_ne!(frame("品牌短视频", 1.0), frame("节奏明快", 1.0));
    }

    #[test]
    fn frames_change_over_time() {
        let (a, b) = (frame("motion", 0.0), frame("motion", 1.0));
        let changed = a.iter().zip(&b).filter(|(x, y)| x != y).count();
        assert!(
            changed > a.len() / 4,
            "only {changed} of {} bytes changed",
            a.len()
        );
    }

    #[test]
    fn hsv_primaries() {
        assert_eq!(hsv(0.0, 1.0, 1.0), [1.0, 0.0, 0.0]);
        assert_eq!(hsv(120.0, 1.0, 1.0), [0.0, 1.0, 0.0]);
        assert_eq!(hsv(600.0, 1.0, 1.0), [0.0, 0.0, 1.0]);
        assert_eq!(hsv(42.0, 0.0, 0.5), [0.5, 0.5, 0.5]);
    }
}
