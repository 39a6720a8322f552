//! A short harmonic relaxation of the filled pixels: Gauss–Seidel sweeps of `Δ I = 0` over the
//! hole, the known pixels held fixed.
//!
//! The fast march extrapolates each pixel from a one-sided neighbourhood, which leaves streaks
//! along its arrival direction and a seam where fronts from opposite sides meet. A few sweeps
//! smooth those: thin strokes converge to the harmonic interpolant of their border (which is
//! what mean-squared error favours there), while in a large hole the few sweeps only soften
//! what the march propagated, keeping its edges. The sweep count is a measured trade-off; see
//! the bench in `src/bin/inpaint-bench.rs`.

use super::canvas::Canvas;

/// Runs `sweeps` Gauss–Seidel sweeps over the hole pixels, alternating direction so that no
/// side of the hole is favoured.
pub(crate) fn smooth(canvas: &mut Canvas, sweeps: usize) {
    let (w, h, c) = (canvas.width, canvas.height, canvas.channels);
    let cells: Vec<usize> = (0..w * h).filter(|&i| canvas.hole[i]).collect();
    let samples = &mut canvas.samples;
    let mut relax = |&i: &usize| {
        let (x, y) = (i % w, i / w);
        // Off-canvas neighbours (the image border) are left out of the mean: a zero-flux
        // boundary.
        let near = [
            (x > 0).then(|| i - 1),
            (x + 1 < w).then(|| i + 1),
            (y > 0).then(|| i - w),
            (y + 1 < h).then(|| i + w),
        ];
        let count = near.iter().flatten().count();
        let scale = 1.0 / count as f32;
        for ch in 0..c {
            let sum: f32 = near.iter().flatten().map(|&j| samples[j * c + ch]).sum();
            samples[i * c + ch] = sum * scale;
        }
    };
    for sweep in 0..sweeps {
        if sweep % 2 == 0 {
            cells.iter().for_each(&mut relax);
        } else {
            cells.iter().rev().for_each(&mut relax);
        }
    }
}

#[cfg(test)]
mod tests {
    use image::{DynamicImage, GrayImage, Luma};

    use super::*;
    use crate::engine::mask::{Mask, Rect};

    #[test]
    fn sweeps_converge_on_the_harmonic_fill_and_keep_the_border() {
        // A harmonic function (linear) with a wrong fill: enough sweeps restore it, and the
        // known pixels never move.
        let ramp = GrayImage::from_fn(16, 10, |x, y| Luma([(10 * x + 3 * y) as u8]));
        let hole = |x: u32, y: u32| (5..11).contains(&x) && (3..7).contains(&y);
        let flags = (0..10)
            .flat_map(|y| (0..16).map(move |x| hole(x, y)))
            .collect();
        let rect = Rect {
            x0: 0,
            y0: 0,
            x1: 16,
            y1: 10,
        };
        let mut canvas = Canvas::cut(
            &DynamicImage::ImageLuma8(ramp.clone()),
            &Mask::from_flags(16, 10, flags),
            rect,
        );
        for (v, _) in canvas
            .samples
            .iter_mut()
            .zip(&canvas.hole)
            .filter(|(_, h)| **h)
        {
            *v = 0.0;
        }
        smooth(&mut canvas, 200);
        for (i, &v) in canvas.samples.iter().enumerate() {
            let want = f32::from(ramp.as_raw()[i]);
            assert!((v - want).abs() < 0.01, "pixel {i}: {v} vs {want}");
        }
    }
}
