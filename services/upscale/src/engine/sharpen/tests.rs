//! The sharpening's contract: bounded by the local extrema, alpha untouched, flat areas alone,
//! and strip-by-strip processing equal to a whole-image reference.

use image::{GrayImage, ImageBuffer, Luma, Rgb, RgbImage, Rgba, RgbaImage};

use super::*;

/// A smooth step across x, like a resampled edge, with a gentle slope down the rows.
fn soft_edge(width: u32, height: u32) -> RgbImage {
    ImageBuffer::from_fn(width, height, |x, y| {
        let t = 1.0 / (1.0 + (-(x as f32 - width as f32 / 2.0) / 3.0).exp());
        let v = 30.0 + 190.0 * t + y as f32 * 0.2;
        Rgb([v as u8, (v * 0.8) as u8, 255 - v as u8])
    })
}

fn strength(factor: f32) -> Sharpening {
    Sharpening::for_factor(factor).unwrap()
}

#[test]
fn strength_follows_the_factor() {
    assert_eq!(Sharpening::for_factor(1.0), None);
    assert_eq!(Sharpening::for_factor(f32::NAN), None);
    assert_eq!(
        Sharpening::for_factor(1.2),
        Some(Sharpening {
            radius: 1,
            amount: 0.3
        })
    );
    assert_eq!(
        strength(2.0),
        Sharpening {
            radius: 1,
            amount: 0.5
        }
    );
    assert_eq!(
        strength(4.0),
        Sharpening {
            radius: 2,
            amount: 1.0
        }
    );
    assert_eq!(
        strength(8.0),
        Sharpening {
            radius: 4,
            amount: 1.0
        }
    );
}

#[test]
fn nothing_rings_past_the_local_extrema() {
    let before = soft_edge(64, 40);
    let mut image = DynamicImage::ImageRgb8(before.clone());
    sharpen(&mut image, strength(4.0));
    let after = image.to_rgb8();
    let mut changed = 0;
    for (x, y, p) in after.enumerate_pixels() {
        for c in 0..3 {
            let mut lo = u8::MAX;
            let mut hi = u8::MIN;
            for ny in y.saturating_sub(1)..=(y + 1).min(39) {
                for nx in x.saturating_sub(1)..=(x + 1).min(63) {
                    let v = before.get_pixel(nx, ny).0[c];
                    lo = lo.min(v);
                    hi = hi.max(v);
                }
            }
            let v = p.0[c];
            assert!(
                (lo..=hi).contains(&v),
                "{x},{y} channel {c}: {v} outside {lo}..={hi}"
            );
            changed += usize::from(v != before.get_pixel(x, y).0[c]);
        }
    }
    assert!(
        changed > 100,
        "only {changed} samples changed: is it sharpening at all?"
    );
}

#[test]
fn an_edge_gets_steeper() {
    let before = soft_edge(64, 8);
    let mut image = DynamicImage::ImageRgb8(before.clone());
    sharpen(&mut image, strength(4.0));
    let slope = |img: &RgbImage| {
        (1..64)
            .map(|x| img.get_pixel(x, 4).0[0] as i32 - img.get_pixel(x - 1, 4).0[0] as i32)
            .max()
            .unwrap()
    };
    assert!(
        slope(&image.to_rgb8()) > slope(&before),
        "{} vs {}",
        slope(&image.to_rgb8()),
        slope(&before)
    );
}

#[test]
fn flat_areas_and_gentle_gradients_are_left_alone() {
    let ramp = GrayImage::from_fn(50, 50, |x, y| Luma([(x + y) as u8]));
    let mut image = DynamicImage::ImageLuma8(ramp.clone());
    sharpen(&mut image, strength(4.0));
    // A linear ramp has no detail: its blur is itself, away from the clamped edges.
    for (x, y, p) in image.to_luma8().enumerate_pixels() {
        if (5..45).contains(&x) && (5..45).contains(&y) {
            assert_eq!(p, ramp.get_pixel(x, y), "{x},{y}");
        }
    }
}

#[test]
fn alpha_is_untouched_and_transparency_gates_the_colour() {
    let before = RgbaImage::from_fn(48, 20, |x, y| {
        let v = if x < 24 { 40 } else { 210 };
        let alpha = if y < 10 { 255 } else { 0 };
        Rgba([v, v, v, alpha])
    });
    let mut image = DynamicImage::ImageRgba8(before.clone());
    sharpen(&mut image, strength(4.0));
    let after = image.to_rgba8();
    for (x, y, p) in after.enumerate_pixels() {
        let was = before.get_pixel(x, y);
        assert_eq!(p.0[3], was.0[3], "alpha at {x},{y}");
        if y >= 9 {
            // Transparent, or next to transparency: colour left as resampled.
            assert_eq!(p, was, "{x},{y}");
        }
    }
}

#[test]
fn sixteen_bit_is_sharpened_on_its_own_scale() {
    let before = ImageBuffer::from_fn(40, 4, |x, _| {
        Luma([if x < 20 { 10_000u16 } else { 50_000 }])
    });
    let mut image = DynamicImage::ImageLuma16(before.clone());
    // A hard step is its own extremes: nothing may move outside 10000..=50000.
    sharpen(&mut image, strength(4.0));
    for p in image.as_luma16().unwrap().pixels() {
        assert!((10_000..=50_000).contains(&p.0[0]), "{p:?}");
    }
}

/// The formula of the module documentation, computed directly on the whole image.
fn reference(image: &RgbImage, s: Sharpening) -> RgbImage {
    let (w, h) = (image.width() as i64, image.height() as i64);
    let sample = |plane: &[f32], x: i64, y: i64, c: usize| {
        plane[((y.clamp(0, h - 1) * w + x.clamp(0, w - 1)) * 3) as usize + c]
    };
    let mut plane: Vec<f32> = image.as_raw().iter().map(|&v| f32::from(v)).collect();
    let original = plane.clone();
    // The tent of radius 2r, weights (2r + 1 - |k|) / (2r + 1)^2, rows then columns.
    let r = s.radius as i64;
    let weight = |k: i64| (2 * r + 1 - k.abs()) as f32 / ((2 * r + 1) * (2 * r + 1)) as f32;
    for horizontal in [true, false] {
        let src = plane.clone();
        for y in 0..h {
            for x in 0..w {
                for c in 0..3 {
                    let sum: f32 = (-2 * r..=2 * r)
                        .map(|k| {
                            let (x, y) = if horizontal { (x + k, y) } else { (x, y + k) };
                            weight(k) * sample(&src, x, y, c)
                        })
                        .sum();
                    plane[((y * w + x) * 3) as usize + c] = sum;
                }
            }
        }
    }
    ImageBuffer::from_fn(image.width(), image.height(), |x, y| {
        let (x, y) = (i64::from(x), i64::from(y));
        let window = |c: usize| {
            let values = (-1..=1).flat_map(|dy| (-1..=1).map(move |dx| (dx, dy)));
            values.fold((f32::MAX, f32::MIN), |(lo, hi), (dx, dy)| {
                let v = sample(&original, x + dx, y + dy, c);
                (lo.min(v), hi.max(v))
            })
        };
        let range: f32 = (0..3).map(|c| window(c).1 - window(c).0).sum();
        let gain = s.amount * (range / 3.0 / GATE).min(1.0);
        Rgb(std::array::from_fn(|c| {
            let v = sample(&original, x, y, c);
            let (lo, hi) = window(c);
            ((v + gain * (v - sample(&plane, x, y, c))).clamp(lo, hi) + 0.5) as u8
        }))
    })
}

#[test]
fn strips_match_the_whole_image_reference() {
    // Taller than several strips, with detail crossing every strip boundary.
    let before = RgbImage::from_fn(37, 3 * STRIP as u32 + 11, |x, y| {
        let v = ((x * 37 + y * 11) % 97) as f32 + 60.0 * ((y as f32) / 5.0).sin();
        Rgb([(v + 80.0) as u8, (x * 6) as u8, ((y * 5) % 256) as u8])
    });
    for factor in [2.0, 4.0, 8.0] {
        let s = strength(factor);
        let want = reference(&before, s);
        let mut image = DynamicImage::ImageRgb8(before.clone());
        sharpen(&mut image, s);
        for (x, y, p) in image.to_rgb8().enumerate_pixels() {
            for c in 0..3 {
                let (got, want) = (p.0[c], want.get_pixel(x, y).0[c]);
                // Running sums and direct sums round differently in the last bit.
                assert!(
                    got.abs_diff(want) <= 1,
                    "factor {factor} at {x},{y}[{c}]: {got} vs {want}"
                );
            }
        }
    }
}
