//! The separable filters behind the sharpening, on planes of `f32` rows `width` samples wide,
//! edges clamped (the first and last sample or row repeated outward).
//!
//! Each is written so that no output sample waits on its neighbour (shifted views of a row
//! zipped together, sums kept in registers across a kernel's taps), which lets the compiler
//! vectorise them: several times faster than running sums, whose every step waits for the last.

use std::ops::Range;

/// The tent kernel of radius `2r`: a box of `2r + 1` samples convolved with itself, as weights
/// for offsets `-2r..=2r`, summing to 1.
pub(super) fn tent(r: usize) -> Vec<f32> {
    let n = (2 * r + 1) as f32;
    (0..=4 * r)
        .map(|k| (n - (k as f32 - 2.0 * r as f32).abs()) / (n * n))
        .collect()
}

/// `kernel` (odd length, centred) along each row; `padded` is scratch.
pub(super) fn convolve_rows(
    src: &[f32],
    dst: &mut [f32],
    width: usize,
    kernel: &[f32],
    padded: &mut Vec<f32>,
) {
    let reach = kernel.len() / 2;
    for (s, d) in src.chunks_exact(width).zip(dst.chunks_exact_mut(width)) {
        padded.clear();
        padded.extend(std::iter::repeat_n(s[0], reach));
        padded.extend_from_slice(s);
        padded.extend(std::iter::repeat_n(s[width - 1], reach));
        let taps: Vec<&[f32]> = (0..kernel.len()).map(|k| &padded[k..k + width]).collect();
        weighted_sum(d, &taps, kernel);
    }
}

/// `kernel` (odd length, centred) down the columns, a whole row at a time.
pub(super) fn convolve_cols(src: &[f32], dst: &mut [f32], width: usize, kernel: &[f32]) {
    let rows = src.len() / width;
    let reach = kernel.len() / 2;
    for (y, d) in dst.chunks_exact_mut(width).enumerate() {
        let taps: Vec<&[f32]> = (0..kernel.len())
            .map(|k| {
                let from = (y + k).saturating_sub(reach).min(rows - 1);
                &src[from * width..][..width]
            })
            .collect();
        weighted_sum(d, &taps, kernel);
    }
}

/// `out[x] = Σ kernel[k] · taps[k][x]`, a chunk of samples at a time so that the sums stay in
/// registers across the taps instead of going to memory once per tap.
fn weighted_sum(out: &mut [f32], taps: &[&[f32]], kernel: &[f32]) {
    const CHUNK: usize = 32;
    let done = out.len() / CHUNK * CHUNK;
    let mut chunks = out.chunks_exact_mut(CHUNK);
    for (i, chunk) in chunks.by_ref().enumerate() {
        let at = i * CHUNK;
        let mut acc = [0.0f32; CHUNK];
        for (tap, &weight) in taps.iter().zip(kernel) {
            for (a, &v) in acc.iter_mut().zip(&tap[at..at + CHUNK]) {
                *a += weight * v;
            }
        }
        chunk.copy_from_slice(&acc);
    }
    for (x, o) in out.iter_mut().enumerate().skip(done) {
        *o = taps.iter().zip(kernel).map(|(tap, &w)| w * tap[x]).sum();
    }
}

/// The 3x3 minimum and maximum of `src` for the samples in `inner` (whole rows of the plane),
/// into `lo3` and `hi3`; `lo` and `hi` are plane-sized scratch for the 1x3 pass.
pub(super) fn extrema3(
    src: &[f32],
    lo: &mut [f32],
    hi: &mut [f32],
    lo3: &mut Vec<f32>,
    hi3: &mut Vec<f32>,
    width: usize,
    inner: Range<usize>,
) {
    let last = width - 1;
    for ((s, l), h) in src
        .chunks_exact(width)
        .zip(lo.chunks_exact_mut(width))
        .zip(hi.chunks_exact_mut(width))
    {
        l[0] = s[0].min(s[1.min(last)]);
        h[0] = s[0].max(s[1.min(last)]);
        l[last] = s[last].min(s[last.saturating_sub(1)]);
        h[last] = s[last].max(s[last.saturating_sub(1)]);
        if width > 2 {
            let shifted = s[..last - 1].iter().zip(&s[1..last]).zip(&s[2..]);
            let out = l[1..last].iter_mut().zip(&mut h[1..last]);
            for ((l, h), ((&a, &b), &c)) in out.zip(shifted) {
                *l = a.min(b).min(c);
                *h = a.max(b).max(c);
            }
        }
    }
    let rows = src.len() / width;
    lo3.clear();
    hi3.clear();
    for y in inner.start / width..inner.end / width {
        let (up, down) = (y.saturating_sub(1), (y + 1).min(rows - 1));
        let (a, b, c) = (
            &lo[up * width..][..width],
            &lo[y * width..][..width],
            &lo[down * width..][..width],
        );
        lo3.extend(a.iter().zip(b).zip(c).map(|((a, b), c)| a.min(*b).min(*c)));
        let (a, b, c) = (
            &hi[up * width..][..width],
            &hi[y * width..][..width],
            &hi[down * width..][..width],
        );
        hi3.extend(a.iter().zip(b).zip(c).map(|((a, b), c)| a.max(*b).max(*c)));
    }
}
