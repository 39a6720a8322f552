//! Anti-aliased drawing on an RGB canvas: gradients, discs, rings, rounded rectangles, bands
//! and dot grids. Edges are drawn from signed distances (coverage = how far inside the edge
//! a pixel centre is, over one pixel), so they are smooth without supersampling.
//!
//! Everything is plain `f32` arithmetic in a fixed order: the same calls give the same bytes.

use image::RgbImage;

use crate::palette::Colour;

/// `px = px + (colour - px) * alpha`, rounded.
pub fn blend(px: &mut [u8], colour: Colour, alpha: f32) {
    if alpha <= 0.0 {
        return;
    }
    let alpha = alpha.min(1.0);
    for c in 0..3 {
        let v = f32::from(px[c]);
        px[c] = (v + (f32::from(colour[c]) - v) * alpha + 0.5) as u8;
    }
}

/// Ordered-dither offsets (4x4 Bayer) in -0.5..0.5, which break gradient banding into a fine
/// regular texture instead of stripes.
const BAYER: [[f32; 4]; 4] = [
    [0.0, 8.0, 2.0, 10.0],
    [12.0, 4.0, 14.0, 6.0],
    [3.0, 11.0, 1.0, 9.0],
    [15.0, 7.0, 13.0, 5.0],
];

fn dither_at(x: u32, y: u32, dither: bool) -> f32 {
    if dither {
        (BAYER[(y % 4) as usize][(x % 4) as usize] + 0.5) / 16.0
    } else {
        0.5
    }
}

/// Evenly spaced stops, `t` from 0 to 1.
fn along(stops: &[Colour], t: f32) -> [f32; 3] {
    let segments = (stops.len() - 1) as f32;
    let position = t.clamp(0.0, 1.0) * segments;
    let i = (position as usize).min(stops.len() - 2);
    let f = position - i as f32;
    let (a, b) = (stops[i], stops[i + 1]);
    [0, 1, 2].map(|c| f32::from(a[c]) + (f32::from(b[c]) - f32::from(a[c])) * f)
}

/// Fills the canvas with a linear gradient through `stops` (two or more) along `angle`
/// (radians), spanning the canvas.
pub fn linear_gradient(canvas: &mut RgbImage, stops: &[Colour], angle: f32, dither: bool) {
    let (w, h) = (canvas.width() as f32, canvas.height() as f32);
    let (dx, dy) = (angle.cos(), angle.sin());
    let extent = w * dx.abs() + h * dy.abs();
    for (x, y, px) in canvas.enumerate_pixels_mut() {
        let p = (x as f32 + 0.5 - w / 2.0) * dx + (y as f32 + 0.5 - h / 2.0) * dy;
        let colour = along(stops, p / extent + 0.5);
        let d = dither_at(x, y, dither);
        px.0 = colour.map(|v| (v + d).clamp(0.0, 255.0) as u8);
    }
}

/// Fills the canvas with a radial gradient through `stops`, from `centre` out to `radius`.
pub fn radial_gradient(
    canvas: &mut RgbImage,
    stops: &[Colour],
    centre: (f32, f32),
    radius: f32,
    dither: bool,
) {
    for (x, y, px) in canvas.enumerate_pixels_mut() {
        let d = (x as f32 + 0.5 - centre.0).hypot(y as f32 + 0.5 - centre.1);
        let colour = along(stops, d / radius);
        let offset = dither_at(x, y, dither);
        px.0 = colour.map(|v| (v + offset).clamp(0.0, 255.0) as u8);
    }
}

/// Calls `coverage` for every pixel of the canvas within `bounds` (x0, y0, x1, y1, clipped)
/// and blends `colour` by what it returns times `alpha`.
fn shade(
    canvas: &mut RgbImage,
    bounds: (f32, f32, f32, f32),
    colour: Colour,
    alpha: f32,
    coverage: impl Fn(f32, f32) -> f32,
) {
    let (w, h) = canvas.dimensions();
    let clip = |v: f32, max: u32| (v.max(0.0) as u32).min(max);
    let (x0, x1) = (clip(bounds.0.floor(), w), clip(bounds.2.ceil(), w));
    let (y0, y1) = (clip(bounds.1.floor(), h), clip(bounds.3.ceil(), h));
    for y in y0..y1 {
        for x in x0..x1 {
            let cover = coverage(x as f32 + 0.5, y as f32 + 0.5);
            if cover > 0.0 {
                blend(&mut canvas.get_pixel_mut(x, y).0, colour, cover * alpha);
            }
        }
    }
}

/// The square of half-side `reach` centred on `centre`, as `shade` bounds.
fn around(centre: (f32, f32), reach: f32) -> (f32, f32, f32, f32) {
    (
        centre.0 - reach,
        centre.1 - reach,
        centre.0 + reach,
        centre.1 + reach,
    )
}

/// A disc whose edge fades over `softness` pixels (1 for a crisp anti-aliased edge).
pub fn disc(
    canvas: &mut RgbImage,
    centre: (f32, f32),
    radius: f32,
    softness: f32,
    colour: Colour,
    alpha: f32,
) {
    shade(
        canvas,
        around(centre, radius + softness),
        colour,
        alpha,
        |x, y| {
            let d = (x - centre.0).hypot(y - centre.1);
            ((radius - d) / softness + 0.5).clamp(0.0, 1.0)
        },
    );
}

pub fn ring(
    canvas: &mut RgbImage,
    centre: (f32, f32),
    radius: f32,
    thickness: f32,
    colour: Colour,
    alpha: f32,
) {
    shade(
        canvas,
        around(centre, radius + thickness),
        colour,
        alpha,
        |x, y| {
            let d = (x - centre.0).hypot(y - centre.1);
            (thickness / 2.0 - (d - radius).abs() + 0.5).clamp(0.0, 1.0)
        },
    );
}

/// An axis-aligned rectangle from (x0, y0) to (x1, y1) with rounded corners.
pub fn rounded_rect(
    canvas: &mut RgbImage,
    rect: (f32, f32, f32, f32),
    corner: f32,
    colour: Colour,
    alpha: f32,
) {
    let centre = ((rect.0 + rect.2) / 2.0, (rect.1 + rect.3) / 2.0);
    let half = ((rect.2 - rect.0) / 2.0, (rect.3 - rect.1) / 2.0);
    let corner = corner.min(half.0).min(half.1).max(0.0);
    shade(
        canvas,
        (rect.0 - 1.0, rect.1 - 1.0, rect.2 + 1.0, rect.3 + 1.0),
        colour,
        alpha,
        |x, y| {
            let qx = (x - centre.0).abs() - half.0 + corner;
            let qy = (y - centre.1).abs() - half.1 + corner;
            let outside = qx.max(0.0).hypot(qy.max(0.0));
            let d = outside + qx.max(qy).min(0.0) - corner;
            (0.5 - d).clamp(0.0, 1.0)
        },
    );
}

/// A straight band across the whole canvas: the points within `width / 2` of the line
/// through `through` at `angle` (radians).
pub fn band(
    canvas: &mut RgbImage,
    through: (f32, f32),
    angle: f32,
    width: f32,
    colour: Colour,
    alpha: f32,
) {
    let (w, h) = (canvas.width() as f32, canvas.height() as f32);
    let (nx, ny) = (-angle.sin(), angle.cos());
    shade(canvas, (0.0, 0.0, w, h), colour, alpha, |x, y| {
        let d = ((x - through.0) * nx + (y - through.1) * ny).abs();
        (width / 2.0 - d + 0.5).clamp(0.0, 1.0)
    });
}

/// A grid of small dots over `rect`.
pub fn dots(
    canvas: &mut RgbImage,
    rect: (f32, f32, f32, f32),
    spacing: f32,
    radius: f32,
    colour: Colour,
    alpha: f32,
) {
    let spacing = spacing.max(2.0 * radius + 1.0);
    shade(canvas, rect, colour, alpha, |x, y| {
        let gx = (x - rect.0).rem_euclid(spacing) - spacing / 2.0;
        let gy = (y - rect.1).rem_euclid(spacing) - spacing / 2.0;
        (radius - gx.hypot(gy) + 0.5).clamp(0.0, 1.0)
    });
}

#[cfg(test)]
mod tests {
    use image::Rgb;

    use super::*;

    #[test]
    fn blending_moves_towards_the_colour() {
        let mut px = [0, 100, 200];
        blend(&mut px, [200, 100, 0], 0.5);
        assert_eq!(px, [100, 100, 100]);
        blend(&mut px, [0, 0, 0], 0.0);
        assert_eq!(px, [100, 100, 100]);
        blend(&mut px, [7, 8, 9], 3.0);
        assert_eq!(px, [7, 8, 9]);
    }

    #[test]
    fn disc_edges_are_anti_aliased() {
        let mut canvas = RgbImage::from_pixel(21, 21, Rgb([0, 0, 0]));
        disc(&mut canvas, (10.5, 10.5), 5.0, 1.0, [255, 255, 255], 1.0);
        assert_eq!(canvas.get_pixel(10, 10).0, [255; 3]);
        assert_eq!(canvas.get_pixel(0, 0).0, [0; 3]);
        // The pixel whose centre lies on the edge is half covered.
        assert_eq!(canvas.get_pixel(15, 10).0, [128; 3]);
    }

    #[test]
    fn gradients_run_between_their_stops() {
        let mut canvas = RgbImage::new(256, 1);
        linear_gradient(&mut canvas, &[[0, 0, 0], [255, 255, 255]], 0.0, false);
        assert!(canvas.get_pixel(0, 0).0[0] < 2);
        assert!(canvas.get_pixel(255, 0).0[0] > 253);
        let row: Vec<u8> = canvas.pixels().map(|p| p.0[0]).collect();
        assert!(row.windows(2).all(|w| w[0] <= w[1]));
    }

    #[test]
    fn rounded_rects_fill_inside_and_round_corners() {
        let mut canvas = RgbImage::new(40, 40);
        rounded_rect(&mut canvas, (5.0, 5.0, 35.0, 35.0), 10.0, [255, 0, 0], 1.0);
        assert_eq!(canvas.get_pixel(20, 20).0, [255, 0, 0]);
        assert_eq!(canvas.get_pixel(20, 5).0, [255, 0, 0]);
        assert_eq!(canvas.get_pixel(5, 5).0, [0, 0, 0]);
        assert_eq!(canvas.get_pixel(36, 20).0, [0, 0, 0]);
    }
}
