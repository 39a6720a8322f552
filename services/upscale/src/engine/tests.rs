//! End-to-end checks of `upscale` on images built in memory.

use std::io::Cursor;

use image::{GenericImageView, ImageBuffer, ImageFormat, Rgb, Rgba};

use super::*;

/// Smooth in every channel, alpha included but never zero: where alpha is zero the colour is
/// meaningless, and a PSNR over it would measure nothing.
fn gradient_rgba(width: u32, height: u32) -> DynamicImage {
    DynamicImage::ImageRgba8(ImageBuffer::from_fn(width, height, |x, y| {
        let fx = x as f32 / (width - 1) as f32;
        let fy = y as f32 / (height - 1) as f32;
        Rgba([
            (255.0 * fx) as u8,
            (255.0 * fy) as u8,
            (255.0 * (1.0 - fx) * fy) as u8,
            (64.0 + 191.0 * fx) as u8,
        ])
    }))
}

fn gradient_rgb(width: u32, height: u32) -> DynamicImage {
    DynamicImage::ImageRgb8(ImageBuffer::from_fn(width, height, |x, y| {
        Rgb([(x * 4) as u8, (y * 4) as u8, 128])
    }))
}

fn encoded(image: &DynamicImage, format: ImageFormat) -> Vec<u8> {
    let mut bytes = Vec::new();
    image
        .write_to(&mut Cursor::new(&mut bytes), format)
        .unwrap();
    bytes
}

fn decoded(out: &Upscaled) -> DynamicImage {
    image::load_from_memory(&out.bytes).unwrap()
}

fn psnr(a: &DynamicImage, b: &DynamicImage) -> f64 {
    assert_eq!(a.dimensions(), b.dimensions());
    let (a, b) = (a.to_rgba8(), b.to_rgba8());
    let squared: f64 = a
        .as_raw()
        .iter()
        .zip(b.as_raw())
        .map(|(&x, &y)| (f64::from(x) - f64::from(y)).powi(2))
        .sum();
    let mse = squared / a.as_raw().len() as f64;
    10.0 * (255.0 * 255.0 / mse).log10()
}

/// A PNG of just the signature and an IHDR chunk, with a valid CRC: every check a decoder makes
/// on the header passes, and there are no pixels to decode behind it.
fn png_header_only(width: u32, height: u32) -> Vec<u8> {
    let mut chunk = b"IHDR".to_vec();
    chunk.extend_from_slice(&width.to_be_bytes());
    chunk.extend_from_slice(&height.to_be_bytes());
    // 8-bit RGBA, deflate, adaptive filtering, no interlace.
    chunk.extend_from_slice(&[8, 6, 0, 0, 0]);
    let mut png = b"\x89PNG\r\n\x1a\n".to_vec();
    png.extend_from_slice(&13u32.to_be_bytes());
    png.extend_from_slice(&chunk);
    png.extend_from_slice(&crc32(&chunk).to_be_bytes());
    png
}

/// CRC-32 (IEEE, reflected), bit by bit: slow and obviously right, which is all a test needs.
fn crc32(bytes: &[u8]) -> u32 {
    let mut crc = !0u32;
    for &byte in bytes {
        crc ^= u32::from(byte);
        for _ in 0..8 {
            crc = if crc & 1 == 1 {
                (crc >> 1) ^ 0xEDB8_8320
            } else {
                crc >> 1
            };
        }
    }
    !crc
}

#[test]
fn crc32_matches_the_standard_check_value() {
    assert_eq!(crc32(b"123456789"), 0xCBF4_3926);
}

#[test]
fn rgba_png_round_trips_through_a_4x_upscale() {
    let source = gradient_rgba(48, 32);
    let out = upscale(
        &encoded(&source, ImageFormat::Png),
        &Target::Scale(4.0),
        &Limits::default(),
    )
    .unwrap();

    assert_eq!((out.width, out.height), (192, 128));
    assert_eq!((out.content_type, out.extension), ("image/png", "png"));
    let big = decoded(&out);
    assert_eq!(big.dimensions(), (192, 128));
    assert_eq!(big.color(), ColorType::Rgba8);
    let alpha = |image: &DynamicImage, x, y| image.get_pixel(x, y).0[3];
    assert!(
        alpha(&big, 0, 64).abs_diff(64) <= 2,
        "left edge alpha {}",
        alpha(&big, 0, 64)
    );
    assert!(
        alpha(&big, 191, 64) >= 253,
        "right edge alpha {}",
        alpha(&big, 191, 64)
    );

    let back = big.resize_exact(48, 32, image::imageops::FilterType::Lanczos3);
    let quality = psnr(&source, &back);
    assert!(quality > 30.0, "psnr {quality:.1} dB");
}

#[test]
fn hidden_colour_under_transparency_does_not_bleed() {
    // Left half invisible red, right half opaque blue. Straight-alpha Lanczos would blend the
    // red into the blue edge; premultiplied, invisible pixels weigh nothing.
    let source = DynamicImage::ImageRgba8(ImageBuffer::from_fn(16, 8, |x, _| {
        if x < 8 {
            Rgba([255, 0, 0, 0])
        } else {
            Rgba([0, 0, 255, 255])
        }
    }));
    let out = upscale(
        &encoded(&source, ImageFormat::Png),
        &Target::Scale(4.0),
        &Limits::default(),
    )
    .unwrap();

    let big = decoded(&out).to_rgba8();
    for x in 0..64 {
        let [red, _, _, alpha] = big.get_pixel(x, 16).0;
        if alpha >= 64 {
            assert!(red < 8, "pixel {x} red {red} alpha {alpha}");
        }
    }
}

#[test]
fn opaque_jpeg_stays_jpeg() {
    let source = gradient_rgb(40, 30);
    let out = upscale(
        &encoded(&source, ImageFormat::Jpeg),
        &Target::Scale(2.0),
        &Limits::default(),
    )
    .unwrap();

    assert_eq!((out.content_type, out.extension), ("image/jpeg", "jpg"));
    assert_eq!(image::guess_format(&out.bytes).unwrap(), ImageFormat::Jpeg);
    assert_eq!(decoded(&out).dimensions(), (80, 60));
}

#[test]
fn webp_becomes_png_and_keeps_alpha() {
    let source = gradient_rgba(20, 10);
    let out = upscale(
        &encoded(&source, ImageFormat::WebP),
        &Target::Resolution(Preset::TwoK),
        &Limits::default(),
    )
    .unwrap();

    assert_eq!((out.width, out.height), (2048, 1024));
    assert_eq!(out.content_type, "image/png");
    assert!(decoded(&out).color().has_alpha());
}

#[test]
fn sixteen_bit_grey_stays_sixteen_bit() {
    let source = DynamicImage::ImageLuma16(ImageBuffer::from_fn(16, 16, |x, y| {
        image::Luma([(x * 4096 + y * 16) as u16])
    }));
    let out = upscale(
        &encoded(&source, ImageFormat::Png),
        &Target::Scale(2.0),
        &Limits::default(),
    )
    .unwrap();

    let big = decoded(&out);
    assert_eq!(big.color(), ColorType::L16);
    // Native-endian buffers must reach the PNG encoder unswapped: the far corner stays bright.
    let corner = big.as_luma16().unwrap().get_pixel(31, 31).0[0];
    assert!(corner > 60_000, "corner {corner}");
}

/// The documented contract: at or above the preset's long edge, same size, re-encoded.
#[test]
fn a_source_already_at_the_preset_comes_back_at_its_own_size() {
    let source = gradient_rgba(2048, 6);
    let input = encoded(&source, ImageFormat::Png);
    let out = upscale(
        &input,
        &Target::Resolution(Preset::TwoK),
        &Limits::default(),
    )
    .unwrap();

    assert_eq!((out.width, out.height), (2048, 6));
    assert_eq!(out.content_type, "image/png");
    assert_eq!(
        decoded(&out).to_rgba8(),
        source.to_rgba8(),
        "scale 1 must be lossless"
    );
}

#[test]
fn exif_orientation_is_applied_before_planning() {
    // A 40x30 JPEG whose EXIF says "rotate 90": it displays as 30x40.
    let mut jpeg = encoded(&gradient_rgb(40, 30), ImageFormat::Jpeg);
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

    let out = upscale(&jpeg, &Target::Scale(2.0), &Limits::default()).unwrap();
    assert_eq!((out.width, out.height), (60, 80));
}

#[test]
fn text_is_an_unsupported_format() {
    let err = upscale(
        b"not an image, just words",
        &Target::Scale(2.0),
        &Limits::default(),
    )
    .unwrap_err();
    assert!(
        matches!(err, UpscaleError::UnsupportedFormat { .. }),
        "{err:?}"
    );
    assert_eq!(err.code(), "unsupported_format");
}

#[test]
fn a_huge_declared_png_is_refused_from_its_header() {
    let png = png_header_only(60_000, 60_000);
    let err = upscale(&png, &Target::Scale(1.0), &Limits::default()).unwrap_err();
    // Had a decoder run, the missing pixel data would have been a decode failure instead.
    assert!(
        matches!(
            err,
            UpscaleError::ImageTooLarge {
                width: 60_000,
                height: 60_000,
                ..
            }
        ),
        "{err:?}"
    );
    assert_eq!(
        err.to_string(),
        "image is 60000x60000, over the 16384 pixel side limit"
    );
}

#[test]
fn a_header_only_png_within_limits_fails_in_the_decoder() {
    // The counterpart of the test above: the same file at a size the limits accept does reach
    // the decoder, which is what makes `image_too_large` proof of an early refusal.
    let err = upscale(
        &png_header_only(64, 64),
        &Target::Scale(1.0),
        &Limits::default(),
    )
    .unwrap_err();
    assert_eq!(err.code(), "decode_failed", "{err:?}");
}

#[test]
fn a_truncated_png_fails_to_decode() {
    let png = encoded(&gradient_rgba(64, 64), ImageFormat::Png);
    let err = upscale(
        &png[..png.len() / 2],
        &Target::Scale(2.0),
        &Limits::default(),
    )
    .unwrap_err();
    assert!(matches!(err, UpscaleError::DecodeFailed { .. }), "{err:?}");
}

#[test]
fn oversized_files_are_refused_before_sniffing() {
    let limits = Limits {
        max_input_bytes: 16,
        ..Limits::default()
    };
    let err = upscale(&[0; 17], &Target::Scale(2.0), &limits).unwrap_err();
    assert_eq!(err.to_string(), "input is 17 bytes, over the 16 byte limit");
    assert_eq!(err.code(), "file_too_large");
}

#[test]
fn output_over_the_limit_is_refused_before_decoding() {
    let limits = Limits {
        max_output_pixels: 100,
        ..Limits::default()
    };
    let err = upscale(&png_header_only(10, 10), &Target::Scale(2.0), &limits).unwrap_err();
    assert_eq!(err.code(), "output_too_large");
}

#[test]
fn no_failure_is_retryable() {
    let failures = [
        upscale(b"", &Target::Scale(2.0), &Limits::default()),
        upscale(
            &png_header_only(60_000, 60_000),
            &Target::Scale(2.0),
            &Limits::default(),
        ),
        upscale(
            &png_header_only(8, 8),
            &Target::Scale(2.0),
            &Limits::default(),
        ),
        upscale(
            &png_header_only(8, 8),
            &Target::Scale(0.5),
            &Limits::default(),
        ),
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
    assert!(!icc_fits(&[0; 10], ColorType::Rgb8));
}
