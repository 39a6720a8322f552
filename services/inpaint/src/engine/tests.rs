//! End-to-end checks of `inpaint` on images built in memory.

use std::io::Cursor;

use image::{
    GenericImageView, GrayImage, ImageBuffer, ImageFormat, Luma, Rgb, RgbImage, Rgba, RgbaImage,
};

use super::*;

fn encoded(image: &DynamicImage, format: ImageFormat) -> Vec<u8> {
    let mut bytes = Vec::new();
    image
        .write_to(&mut Cursor::new(&mut bytes), format)
        .unwrap();
    bytes
}

fn png(image: impl Into<DynamicImage>) -> Vec<u8> {
    encoded(&image.into(), ImageFormat::Png)
}

fn decoded(out: &Inpainted) -> DynamicImage {
    assert_eq!(image::guess_format(&out.bytes).unwrap(), ImageFormat::Png);
    image::load_from_memory(&out.bytes).unwrap()
}

/// White where `hole` says, black elsewhere: the brightness convention.
fn mask_png(width: u32, height: u32, hole: impl Fn(u32, u32) -> bool) -> Vec<u8> {
    png(GrayImage::from_fn(width, height, |x, y| {
        Luma([if hole(x, y) { 255 } else { 0 }])
    }))
}

fn disk(cx: f32, cy: f32, r: f32) -> impl Fn(u32, u32) -> bool {
    move |x, y| (x as f32 - cx).powi(2) + (y as f32 - cy).powi(2) <= r * r
}

/// The largest per-sample difference inside the hole.
fn max_error(a: &DynamicImage, b: &DynamicImage, hole: impl Fn(u32, u32) -> bool) -> u8 {
    let (a, b) = (a.to_rgba8(), b.to_rgba8());
    let mut worst = 0;
    for (x, y, pa) in a.enumerate_pixels() {
        if hole(x, y) {
            for (&va, &vb) in pa.0.iter().zip(&b.get_pixel(x, y).0) {
                worst = worst.max(va.abs_diff(vb));
            }
        }
    }
    worst
}

fn rgb_ramp(width: u32, height: u32) -> RgbImage {
    ImageBuffer::from_fn(width, height, |x, y| {
        Rgb([(x * 3) as u8, (y * 2) as u8, (60 + x + y) as u8])
    })
}

#[test]
fn a_linear_gradient_is_reconstructed_across_a_hole() {
    let source = rgb_ramp(64, 64);
    let hole = disk(30.0, 34.0, 9.0);
    // The hole is painted red in the input so that reading it at all would show.
    let mut input = source.clone();
    for (x, y, p) in input.enumerate_pixels_mut() {
        if hole(x, y) {
            *p = Rgb([255, 0, 0]);
        }
    }
    let out = inpaint(&png(input), &mask_png(64, 64, &hole), &Limits::default()).unwrap();
    let out = decoded(&out);
    assert_eq!(out.color(), ColorType::Rgb8);
    let error = max_error(&out, &DynamicImage::ImageRgb8(source), &hole);
    assert!(error <= 2, "max error {error} inside the hole");
}

#[test]
fn a_smooth_curved_field_is_reconstructed_closely() {
    let field = |x: u32, y: u32| {
        let (x, y) = (x as f32 / 80.0, y as f32 / 80.0);
        Luma([(128.0 + 90.0 * (2.0 * x).sin() * (1.5 * y).cos()) as u8])
    };
    let source = GrayImage::from_fn(80, 80, field);
    let hole = |x: u32, y: u32| (20..44).contains(&x) && (30..42).contains(&y);
    let out = inpaint(
        &png(source.clone()),
        &mask_png(80, 80, hole),
        &Limits::default(),
    )
    .unwrap();
    let error = max_error(&decoded(&out), &DynamicImage::ImageLuma8(source), hole);
    assert!(error <= 4, "max error {error} inside the hole");
}

#[test]
fn pixels_outside_the_mask_and_alpha_are_kept() {
    let source = RgbaImage::from_fn(40, 30, |x, y| {
        Rgba([(x * 6) as u8, (y * 8) as u8, 200, (100 + x * 3) as u8])
    });
    let hole = disk(20.0, 15.0, 6.0);
    let out = inpaint(
        &png(source.clone()),
        &mask_png(40, 30, &hole),
        &Limits::default(),
    )
    .unwrap();
    let out = decoded(&out);
    assert_eq!(out.color(), ColorType::Rgba8);
    for (x, y, p) in out.to_rgba8().enumerate_pixels() {
        let before = source.get_pixel(x, y);
        if hole(x, y) {
            // Alpha is a linear ramp: it is filled like any smooth channel.
            assert!(
                p.0[3].abs_diff(before.0[3]) <= 2,
                "alpha at {x},{y}: {p:?} vs {before:?}"
            );
        } else {
            assert_eq!(p, before, "pixel {x},{y} outside the mask changed");
        }
    }
}

#[test]
fn hidden_colour_under_transparency_does_not_bleed_into_the_fill() {
    // Left: invisible red. Right: opaque blue. The hole straddles the edge.
    let source = RgbaImage::from_fn(32, 16, |x, _| {
        if x < 16 {
            Rgba([255, 0, 0, 0])
        } else {
            Rgba([0, 0, 255, 255])
        }
    });
    let hole = |x: u32, y: u32| (12..20).contains(&x) && (4..12).contains(&y);
    let out = inpaint(&png(source), &mask_png(32, 16, hole), &Limits::default()).unwrap();
    for (x, y, p) in decoded(&out).to_rgba8().enumerate_pixels() {
        let [red, _, _, alpha] = p.0;
        if hole(x, y) && alpha > 0 {
            assert!(red <= 2, "pixel {x},{y} is {p:?}");
        }
    }
}

#[test]
fn an_alpha_mask_and_a_brightness_mask_select_the_same_pixels() {
    let source = rgb_ramp(24, 24);
    let hole = disk(12.0, 12.0, 4.0);
    let openai = png(RgbaImage::from_fn(24, 24, |x, y| {
        Rgba([0, 0, 0, if hole(x, y) { 0 } else { 255 }])
    }));
    let by_alpha = inpaint(&png(source.clone()), &openai, &Limits::default()).unwrap();
    let by_luma = inpaint(&png(source), &mask_png(24, 24, &hole), &Limits::default()).unwrap();
    assert_eq!(decoded(&by_alpha).to_rgb8(), decoded(&by_luma).to_rgb8());
}

#[test]
fn a_mask_of_another_size_is_refused_naming_both_sizes() {
    let err = inpaint(
        &png(rgb_ramp(20, 10)),
        &mask_png(10, 20, |_, _| true),
        &Limits::default(),
    )
    .unwrap_err();
    assert_eq!(err.code(), "mask_size_mismatch");
    assert!(!err.is_retryable());
    assert_eq!(
        err.to_string(),
        "mask is 10x20 but the original is 20x10: they must be the same size"
    );
}

#[test]
fn an_empty_mask_is_refused_with_the_convention() {
    let err = inpaint(
        &png(rgb_ramp(8, 8)),
        &mask_png(8, 8, |_, _| false),
        &Limits::default(),
    )
    .unwrap_err();
    assert_eq!(err.code(), "empty_mask");
    assert!(
        err.to_string()
            .contains("white marks the region to repaint")
    );
}

#[test]
fn a_mask_over_everything_is_refused() {
    let err = inpaint(
        &png(rgb_ramp(8, 8)),
        &mask_png(8, 8, |_, _| true),
        &Limits::default(),
    )
    .unwrap_err();
    assert_eq!(err.code(), "mask_covers_image");
}

#[test]
fn sixteen_bit_stays_sixteen_bit() {
    let source = ImageBuffer::from_fn(32, 32, |x, y| Luma([(x * 2000 + y * 10) as u16]));
    let hole = disk(16.0, 16.0, 5.0);
    let out = inpaint(
        &png(source.clone()),
        &mask_png(32, 32, &hole),
        &Limits::default(),
    )
    .unwrap();
    let out = decoded(&out);
    assert_eq!(out.color(), ColorType::L16);
    let got = out.as_luma16().unwrap().get_pixel(16, 16).0[0];
    let want = source.get_pixel(16, 16).0[0];
    assert!(got.abs_diff(want) <= 256, "centre {got}, want {want}");
}

#[test]
fn jpeg_in_png_out() {
    let source = DynamicImage::ImageRgb8(rgb_ramp(40, 30));
    let out = inpaint(
        &encoded(&source, ImageFormat::Jpeg),
        &encoded(
            &DynamicImage::ImageLuma8(GrayImage::from_fn(40, 30, |x, _| {
                Luma([if x < 5 { 255 } else { 0 }])
            })),
            ImageFormat::Jpeg,
        ),
        &Limits::default(),
    )
    .unwrap();
    assert_eq!((out.width, out.height), (40, 30));
    assert_eq!(decoded(&out).dimensions(), (40, 30));
}

#[test]
fn exif_orientation_is_applied_before_the_sizes_are_compared() {
    // A 40x30 JPEG whose EXIF says "rotate 90": it displays as 30x40, like its mask.
    let mut jpeg = encoded(
        &DynamicImage::ImageRgb8(rgb_ramp(40, 30)),
        ImageFormat::Jpeg,
    );
    let exif: &[u8] = &[
        b'E', b'x', b'i', b'f', 0, 0, b'M', b'M', 0, 42, 0, 0, 0,
        8, // TIFF header, big-endian
        0, 1, // one entry
        0x01, 0x12, 0, 3, 0, 0, 0, 1, 0, 6, 0, 0, // Orientation = 6 (rotate 90 clockwise)
        0, 0, 0, 0, // no next IFD
    ];
    let mut app1 = vec![0xFF, 0xE1];
    app1.extend_from_slice(&(exif.len() as u16 + 2).to_be_bytes());
    app1.extend_from_slice(exif);
    jpeg.splice(2..2, app1);

    let out = inpaint(
        &jpeg,
        &mask_png(30, 40, disk(15.0, 20.0, 3.0)),
        &Limits::default(),
    )
    .unwrap();
    assert_eq!((out.width, out.height), (30, 40));
}

#[test]
fn a_size_over_the_limits_is_refused_from_the_header_alone() {
    // The file stops right after IHDR: any decoder would fail on it. Refused as too large, it
    // proves the size was judged before decoding.
    let cut = png(rgb_ramp(20, 20))[..33].to_vec();
    let limits = Limits {
        max_pixels: 399,
        ..Limits::default()
    };
    let err = inpaint(&png(rgb_ramp(8, 8)), &cut, &limits).unwrap_err();
    assert_eq!(err.code(), "image_too_large");
    assert_eq!(err.input(), Some(Which::Mask));
    assert_eq!(
        err.to_string(),
        "mask: image is 20x20, over the 399 pixel limit"
    );
    let err = inpaint(&png(rgb_ramp(8, 8)), &cut, &Limits::default()).unwrap_err();
    assert_eq!(err.code(), "decode_failed");
}

#[test]
fn no_failure_is_retryable() {
    let ramp = png(rgb_ramp(8, 8));
    let failures = [
        inpaint(b"", &ramp, &Limits::default()),
        inpaint(&ramp, b"GIF89a", &Limits::default()),
        inpaint(&ramp, &mask_png(8, 4, |_, _| true), &Limits::default()),
        inpaint(&ramp, &mask_png(8, 8, |_, _| false), &Limits::default()),
        inpaint(&ramp, &mask_png(8, 8, |_, _| true), &Limits::default()),
    ];
    for failure in failures {
        let err = failure.unwrap_err();
        assert!(!err.is_retryable(), "{err:?}");
    }
}

#[test]
fn icc_profiles_travel_only_to_a_matching_colour_model() {
    let mut profile = vec![0; 128];
    profile[16..20].copy_from_slice(b"RGB ");
    assert!(icc_fits(&profile, ColorType::Rgba8));
    assert!(!icc_fits(&profile, ColorType::L8));
    profile[16..20].copy_from_slice(b"CMYK");
    assert!(!icc_fits(&profile, ColorType::Rgb8));
}
