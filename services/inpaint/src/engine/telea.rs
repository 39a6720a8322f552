//! Telea's fast marching inpainting (A. Telea, "An Image Inpainting Technique Based on the Fast
//! Marching Method", J. Graphics Tools 9(1), 2004), written from the paper.
//!
//! The hole is filled from its boundary inwards, in order of distance `T` from the known region:
//! a narrow band of boundary pixels sits in a min-heap keyed by `T`; the nearest is frozen, its
//! value estimated from the known pixels within `radius`, and its neighbours' `T` updated by
//! solving the eikonal equation `|∇T| = 1` (first-order upwind). Each estimate is the paper's
//! weighted first-order extrapolation,
//!
//! ```text
//! I(p) = Σ w(p,q) [I(q) + ∇I(q)·(p − q)] / Σ w(p,q),   w = dir · dst · lev
//! dir = |(p − q)·N(p)| / |p − q|   (N = ∇T/|∇T|: trust pixels along the front's normal)
//! dst = 1 / |p − q|²               (trust near pixels)
//! lev = 1 / (1 + |T(q) − T(p)|)     (trust pixels on the same level set)
//! ```
//!
//! Three choices the paper leaves open, each measured on the bench (`inpaint-bench`):
//! - `T` is also computed outside the hole, as minus the distance to it, so `lev` prefers the
//!   known pixels nearest the boundary and `N` is smooth across it.
//! - A pixel is estimated when it leaves the band (its `T` final) rather than when first
//!   reached, so the estimate sees every neighbour that arrived before it.
//! - The estimate is clamped to the range of the samples it was extrapolated from. The gradient
//!   term continues a slope, which is right on smooth shading but overshoots at edges, where it
//!   would draw bright or dark streaks into the hole; a limiter (as in slope-limited numerical
//!   schemes) keeps the first order where it is safe and removes the overshoot.

use std::cmp::Reverse;
use std::collections::BinaryHeap;

use super::canvas::Canvas;

#[derive(Clone, Copy, PartialEq, Eq)]
enum State {
    /// `T` final. Inside the hole: filled, and a source for later estimates.
    Known,
    /// In the heap with a tentative `T`.
    Band,
    /// Not reached yet; `T` is infinite.
    Far,
}

/// A disk neighbour of `p`: offset, and `1 / |offset|` and `1 / |offset|²` precomputed.
struct Offset {
    dx: isize,
    dy: isize,
    inv_len: f32,
    inv_len2: f32,
}

/// Fills every hole pixel of `canvas` by fast marching with neighbourhood `radius` (in pixels,
/// at least 1). The canvas must hold `radius + 1` pixels of known margin around the hole, or
/// reach the image border there.
pub(crate) fn fill(canvas: &mut Canvas, radius: usize) {
    let (w, h) = (canvas.width, canvas.height);
    // The band both marches start from: the known pixels next to the hole, at T = 0.
    let boundary: Vec<usize> = (0..w * h)
        .filter(|&i| !canvas.hole[i] && neighbours(i, w, h).any(|n| canvas.hole[n]))
        .collect();
    let mut time = vec![f32::INFINITY; w * h];

    // Outwards first, through the known pixels, as far as any estimate will look.
    let mut state = vec![State::Far; w * h];
    let reach = radius as f32 + 1.0;
    march(&boundary, &mut time, &mut state, w, h, |i, t| {
        !canvas.hole[i] && t <= reach
    });
    for (t, &hole) in time.iter_mut().zip(&canvas.hole) {
        // Known pixels out of reach are farther than any estimate looks; one more will do.
        *t = if hole {
            f32::INFINITY
        } else {
            0.0 - t.min(reach + 1.0)
        };
    }

    // Then inwards, filling each hole pixel as it is frozen. Every known pixel is a source.
    for (s, &hole) in state.iter_mut().zip(&canvas.hole) {
        *s = if hole { State::Far } else { State::Known };
    }
    let disk = disk(radius);
    let mut estimate = vec![0.0; canvas.channels];
    // A hole pixel's known 4-neighbours are all on the boundary, at T = 0, so the outside's
    // negative T never reaches the hole's.
    let fringe =
        (0..w * h).filter(|&i| canvas.hole[i] && neighbours(i, w, h).any(|n| !canvas.hole[n]));
    let mut band = Band::default();
    for i in fringe {
        time[i] = arrival(i, w, h, &time, &state);
        state[i] = State::Band;
        band.push(time[i], i);
    }
    while let Some((bits, i)) = band.pop() {
        if state[i] != State::Band || time[i].to_bits() != bits {
            continue;
        }
        extrapolate(canvas, &time, &state, &disk, i, &mut estimate);
        let c = canvas.channels;
        canvas.samples[i * c..][..c].copy_from_slice(&estimate);
        state[i] = State::Known;
        for n in neighbours(i, w, h) {
            if state[n] == State::Known {
                continue;
            }
            let t = arrival(n, w, h, &time, &state);
            if t < time[n] {
                time[n] = t;
                state[n] = State::Band;
                band.push(t, n);
            }
        }
    }
}

/// A plain fast march of distances from `sources` (at 0) over the pixels `open` admits, given
/// their tentative distance.
fn march(
    sources: &[usize],
    time: &mut [f32],
    state: &mut [State],
    w: usize,
    h: usize,
    open: impl Fn(usize, f32) -> bool,
) {
    let mut band = Band::default();
    for &i in sources {
        time[i] = 0.0;
        state[i] = State::Band;
        band.push(0.0, i);
    }
    while let Some((bits, i)) = band.pop() {
        if state[i] != State::Band || time[i].to_bits() != bits {
            continue;
        }
        state[i] = State::Known;
        for n in neighbours(i, w, h) {
            if state[n] == State::Known {
                continue;
            }
            let t = arrival(n, w, h, time, state);
            if t < time[n] && open(n, t) {
                time[n] = t;
                state[n] = State::Band;
                band.push(t, n);
            }
        }
    }
}

/// The narrow band: a min-heap of `(T, pixel)` packed into one `u64`, `T`'s bits above the
/// pixel's index. Non-negative `f32`s order like their bit patterns, so entries compare as
/// plain integers and take 8 bytes; on large holes the heap is the march's hot spot. Entries
/// are never removed early: a stale one (its pixel since frozen, or given a smaller `T`) is
/// recognised by its `T` when popped and skipped by the caller.
#[derive(Default)]
struct Band(BinaryHeap<Reverse<u64>>);

impl Band {
    /// `t` must be non-negative and `i` below 2^32 (the engine's pixel limit guarantees it).
    fn push(&mut self, t: f32, i: usize) {
        debug_assert!(t >= 0.0 && u32::try_from(i).is_ok());
        self.0
            .push(Reverse((u64::from(t.to_bits()) << 32) | i as u64));
    }

    /// The entry with the smallest `T`, as `T`'s bits and the pixel.
    fn pop(&mut self) -> Option<(u32, usize)> {
        let Reverse(key) = self.0.pop()?;
        Some(((key >> 32) as u32, (key & u64::from(u32::MAX)) as usize))
    }
}

/// The 4-neighbours of pixel `i` that lie on the canvas.
fn neighbours(i: usize, w: usize, h: usize) -> impl Iterator<Item = usize> {
    let (x, y) = (i % w, i / w);
    [
        (x > 0).then(|| i - 1),
        (x + 1 < w).then(|| i + 1),
        (y > 0).then(|| i - w),
        (y + 1 < h).then(|| i + w),
    ]
    .into_iter()
    .flatten()
}

/// `T` at pixel `i` from its frozen neighbours: the first-order upwind solution of `|∇T| = 1`.
fn arrival(i: usize, w: usize, h: usize, time: &[f32], state: &[State]) -> f32 {
    let (x, y) = (i % w, i / w);
    let frozen = |ok: bool, j: usize| {
        if ok && state[j] == State::Known {
            time[j]
        } else {
            f32::INFINITY
        }
    };
    let tx = frozen(x > 0, i.wrapping_sub(1)).min(frozen(x + 1 < w, i + 1));
    let ty = frozen(y > 0, i.wrapping_sub(w)).min(frozen(y + 1 < h, i + w));
    let (lo, hi) = if tx <= ty { (tx, ty) } else { (ty, tx) };
    if hi - lo >= 1.0 {
        // Only one axis is upwind (or the other is unknown: infinite).
        lo + 1.0
    } else {
        (lo + hi + (2.0 - (hi - lo) * (hi - lo)).sqrt()) / 2.0
    }
}

fn disk(radius: usize) -> Vec<Offset> {
    let r = radius.max(1) as isize;
    let mut disk = Vec::new();
    for dy in -r..=r {
        for dx in -r..=r {
            let len2 = (dx * dx + dy * dy) as f32;
            if len2 == 0.0 || len2 > (r * r) as f32 {
                continue;
            }
            disk.push(Offset {
                dx,
                dy,
                inv_len: len2.sqrt().recip(),
                inv_len2: len2.recip(),
            });
        }
    }
    disk
}

/// The weighted, limited first-order estimate at pixel `p` from the known pixels in `disk`
/// around it, written to `out` (one value per channel).
fn extrapolate(
    canvas: &Canvas,
    time: &[f32],
    state: &[State],
    disk: &[Offset],
    p: usize,
    out: &mut [f32],
) {
    let (w, h, c) = (canvas.width, canvas.height, canvas.channels);
    let (px, py) = ((p % w) as isize, (p / w) as isize);
    let (nx, ny) = front_normal(p, w, h, time, state);
    let tp = time[p];
    let samples = &canvas.samples;
    let known = |x: isize, y: isize| {
        x >= 0 && y >= 0 && (x as usize) < w && (y as usize) < h && {
            state[y as usize * w + x as usize] == State::Known
        }
    };

    let mut lo = [f32::INFINITY; 4];
    let mut hi = [f32::NEG_INFINITY; 4];
    out.fill(0.0);
    let mut total = 0.0;
    for o in disk {
        let (qx, qy) = (px + o.dx, py + o.dy);
        if !known(qx, qy) {
            continue;
        }
        let q = qy as usize * w + qx as usize;
        // r = p - q points from the source towards the pixel being filled.
        let (rx, ry) = (-o.dx as f32, -o.dy as f32);
        let dir = if nx == 0.0 && ny == 0.0 {
            1.0
        } else {
            // Pixels beside `p` on the front would get no weight at all; a floor keeps a lone
            // such neighbour usable.
            ((rx * nx + ry * ny) * o.inv_len).abs().max(0.01)
        };
        let lev = 1.0 / (1.0 + (time[q] - tp).abs());
        let weight = dir * o.inv_len2 * lev;

        // Central differences where both sides are known, one-sided where one is, none else.
        let (left, right) = (known(qx - 1, qy), known(qx + 1, qy));
        let (up, down) = (known(qx, qy - 1), known(qx, qy + 1));
        for (ch, acc) in out.iter_mut().enumerate() {
            let at = |i: usize| samples[i * c + ch];
            let v = at(q);
            let gx = match (left, right) {
                (true, true) => (at(q + 1) - at(q - 1)) * 0.5,
                (false, true) => at(q + 1) - v,
                (true, false) => v - at(q - 1),
                (false, false) => 0.0,
            };
            let gy = match (up, down) {
                (true, true) => (at(q + w) - at(q - w)) * 0.5,
                (false, true) => at(q + w) - v,
                (true, false) => v - at(q - w),
                (false, false) => 0.0,
            };
            *acc += weight * (v + gx * rx + gy * ry);
            lo[ch] = lo[ch].min(v);
            hi[ch] = hi[ch].max(v);
        }
        total += weight;
    }
    // The pixel that put `p` in the band is known and within any radius, so `total` > 0 and
    // every channel saw at least one sample.
    for (ch, v) in out.iter_mut().enumerate() {
        *v = (*v / total).clamp(lo[ch], hi[ch]);
    }
}

/// `∇T / |∇T|` at `p`, from neighbours whose `T` is finite (frozen or tentative); zero where
/// `T` is flat.
fn front_normal(p: usize, w: usize, h: usize, time: &[f32], state: &[State]) -> (f32, f32) {
    let (x, y) = (p % w, p / w);
    let t = |ok: bool, j: usize| (ok && state[j] != State::Far).then(|| time[j]);
    let diff = |before: Option<f32>, after: Option<f32>| match (before, after) {
        (Some(b), Some(a)) => (a - b) * 0.5,
        (None, Some(a)) => a - time[p],
        (Some(b), None) => time[p] - b,
        (None, None) => 0.0,
    };
    let gx = diff(t(x > 0, p.wrapping_sub(1)), t(x + 1 < w, p + 1));
    let gy = diff(t(y > 0, p.wrapping_sub(w)), t(y + 1 < h, p + w));
    let len = (gx * gx + gy * gy).sqrt();
    if len > 0.0 {
        (gx / len, gy / len)
    } else {
        (0.0, 0.0)
    }
}

#[cfg(test)]
mod tests {
    use image::{DynamicImage, GrayImage, Luma};

    use super::*;
    use crate::engine::mask::{Mask, Rect};

    fn canvas(image: &GrayImage, hole: impl Fn(u32, u32) -> bool) -> Canvas {
        let (w, h) = image.dimensions();
        let flags = (0..h)
            .flat_map(|y| (0..w).map(move |x| (x, y)))
            .map(|(x, y)| hole(x, y))
            .collect();
        let rect = Rect {
            x0: 0,
            y0: 0,
            x1: w,
            y1: h,
        };
        Canvas::cut(
            &DynamicImage::ImageLuma8(image.clone()),
            &Mask::from_flags(w, h, flags),
            rect,
        )
    }

    #[test]
    fn the_first_order_term_continues_a_linear_ramp() {
        let ramp = GrayImage::from_fn(40, 40, |x, y| Luma([(3 * x + 2 * y) as u8]));
        let hole = |x: u32, y: u32| (14..26).contains(&x) && (15..24).contains(&y);
        let mut c = canvas(&ramp, hole);
        fill(&mut c, 3);
        for (i, &v) in c.samples.iter().enumerate() {
            let (x, y) = ((i % 40) as f32, (i / 40) as f32);
            let want = 3.0 * x + 2.0 * y;
            assert!((v - want).abs() < 0.5, "{x},{y}: {v} vs {want}");
        }
    }

    #[test]
    fn estimates_never_leave_the_range_of_their_sources() {
        // A hard vertical edge through a hole: the slope term pointing across the edge would
        // overshoot to below 20 or above 220 without the limiter.
        let edge = GrayImage::from_fn(30, 30, |x, _| Luma([if x < 15 { 20 } else { 220 }]));
        let mut c = canvas(&edge, |x, y| (10..20).contains(&x) && (8..22).contains(&y));
        fill(&mut c, 3);
        for &v in &c.samples {
            assert!((20.0..=220.0).contains(&v), "{v}");
        }
    }

    #[test]
    fn every_hole_pixel_is_reached_even_at_the_image_border() {
        // The hole touches three borders; only the right column is known.
        let grey = GrayImage::from_fn(12, 8, |x, _| Luma([if x == 11 { 200 } else { 0 }]));
        let mut c = canvas(&grey, |x, _| x < 11);
        fill(&mut c, 3);
        assert!(c.samples.iter().all(|&v| v == 200.0), "{:?}", c.samples);
    }
}
