//! Header vectors for each image format, and the truncated or malformed headers around them.

use super::*;

fn png(width: u32, height: u32) -> Vec<u8> {
    let mut png = b"\x89PNG\r\n\x1a\n\0\0\0\x0dIHDR".to_vec();
    png.extend_from_slice(&width.to_be_bytes());
    png.extend_from_slice(&height.to_be_bytes());
    // 8-bit RGBA, deflate, adaptive filtering, no interlace, then a CRC nobody here checks.
    png.extend_from_slice(&[8, 6, 0, 0, 0, 0, 0, 0, 0]);
    png
}

fn webp(chunk: &[u8; 4], payload: &[u8]) -> Vec<u8> {
    let mut webp = b"RIFF\0\0\0\0WEBP".to_vec();
    webp.extend_from_slice(chunk);
    webp.extend_from_slice(&(payload.len() as u32).to_le_bytes());
    webp.extend_from_slice(payload);
    webp
}

#[test]
fn png_reads_the_ihdr() {
    assert_eq!(
        image_dimensions(MediaType::Png, &png(256, 128)),
        Some((256, 128))
    );
    // Sizes are reported as declared, however hostile; refusing them is the caller's policy.
    assert_eq!(
        image_dimensions(MediaType::Png, &png(60_000, 60_000)),
        Some((60_000, 60_000))
    );
    assert_eq!(image_dimensions(MediaType::Png, &png(0, 5)), Some((0, 5)));
    // IHDR not first, or not 13 bytes long.
    let mut other_chunk = png(1, 1);
    other_chunk[12..16].copy_from_slice(b"tEXt");
    assert_eq!(image_dimensions(MediaType::Png, &other_chunk), None);
    let mut long_ihdr = png(1, 1);
    long_ihdr[11] = 14;
    assert_eq!(image_dimensions(MediaType::Png, &long_ihdr), None);
}

#[test]
fn jpeg_frame_header_is_found_past_other_segments() {
    let mut jpeg = vec![0xFF, 0xD8];
    // APP1 whose payload looks like a frame header, to prove segments are skipped whole.
    jpeg.extend_from_slice(&[
        0xFF, 0xE1, 0x00, 0x09, 0xFF, 0xC0, 0x00, 0x11, 0x08, 0x00, 0x01,
    ]);
    // Fill bytes before a marker are legal.
    jpeg.extend_from_slice(&[0xFF, 0xFF, 0xC2, 0x00, 0x11, 0x08, 0x01, 0xE0, 0x02, 0x80]);
    assert_eq!(image_dimensions(MediaType::Jpeg, &jpeg), Some((640, 480)));
}

#[test]
fn jpeg_skips_tables_and_restart_markers_but_not_the_scan() {
    let mut jpeg = vec![0xFF, 0xD8];
    // DQT, then DHT (C4, inside the SOF range but not a frame), then a stray restart marker.
    jpeg.extend_from_slice(&[0xFF, 0xDB, 0x00, 0x04, 0x00, 0x01]);
    jpeg.extend_from_slice(&[0xFF, 0xC4, 0x00, 0x07, 0x00, 0x10, 0x00, 0x20, 0x00]);
    jpeg.extend_from_slice(&[0xFF, 0xD0]);
    jpeg.extend_from_slice(&[0xFF, 0xC0, 0x00, 0x11, 0x08, 0x00, 0x30, 0x00, 0x40]);
    assert_eq!(image_dimensions(MediaType::Jpeg, &jpeg), Some((64, 48)));

    // A scan (or the end of the image) before any frame header means there is none.
    let jpeg = [0xFF, 0xD8, 0xFF, 0xDA, 0x00, 0x02];
    assert_eq!(image_dimensions(MediaType::Jpeg, &jpeg), None);
    let jpeg = [0xFF, 0xD8, 0xFF, 0xD9];
    assert_eq!(image_dimensions(MediaType::Jpeg, &jpeg), None);
    // A segment length under 2 would walk backwards or stand still.
    let jpeg = [0xFF, 0xD8, 0xFF, 0xE0, 0x00, 0x01, 0xFF, 0xC0];
    assert_eq!(image_dimensions(MediaType::Jpeg, &jpeg), None);
    // Garbage where a marker should start.
    let jpeg = [0xFF, 0xD8, 0xFF, 0xE0, 0x00, 0x02, 0x12, 0x34];
    assert_eq!(image_dimensions(MediaType::Jpeg, &jpeg), None);
}

#[test]
fn webp_extended_header_declares_a_24_bit_canvas() {
    let webp = webp(b"VP8X", &[0, 0, 0, 0, 0x5F, 0xEA, 0x00, 0x5F, 0xEA, 0x00]);
    assert_eq!(
        image_dimensions(MediaType::WebP, &webp),
        Some((60_000, 60_000))
    );
}

#[test]
fn webp_lossy_header_masks_the_scaling_bits() {
    let webp = webp(
        b"VP8 ",
        &[0, 0, 0, 0x9D, 0x01, 0x2A, 0x80, 0xC2, 0xE0, 0x01],
    );
    assert_eq!(image_dimensions(MediaType::WebP, &webp), Some((640, 480)));
    let mut no_start_code = webp.clone();
    no_start_code[24] = 0;
    assert_eq!(image_dimensions(MediaType::WebP, &no_start_code), None);
}

#[test]
fn webp_lossless_header_packs_14_bit_sizes() {
    // 640x480: width - 1 in bits 0..14, height - 1 in bits 14..28, version 0.
    let bits: u32 = 639 | (479 << 14);
    let mut payload = vec![0x2F];
    payload.extend_from_slice(&bits.to_le_bytes());
    let lossless = webp(b"VP8L", &payload);
    assert_eq!(
        image_dimensions(MediaType::WebP, &lossless),
        Some((640, 480))
    );

    let mut bad_signature = lossless.clone();
    bad_signature[20] = 0x2E;
    assert_eq!(image_dimensions(MediaType::WebP, &bad_signature), None);
    let mut future_version = lossless.clone();
    future_version[24] |= 0x20;
    assert_eq!(image_dimensions(MediaType::WebP, &future_version), None);
    // A WebP whose first chunk is none of the three image chunks.
    assert_eq!(
        image_dimensions(MediaType::WebP, &webp(b"ALPH", &[0; 10])),
        None
    );
}

#[test]
fn gif_reads_the_logical_screen() {
    assert_eq!(
        image_dimensions(MediaType::Gif, b"GIF89a\x40\x01\xf0\0\xf7\0\0"),
        Some((320, 240))
    );
    assert_eq!(
        image_dimensions(MediaType::Gif, b"GIF87a\xff\xff\x01\0"),
        Some((65_535, 1))
    );
}

#[test]
fn truncated_headers_are_malformed() {
    let whole: [(MediaType, Vec<u8>); 4] = [
        // Each cut right after the last field the parser needs.
        (MediaType::Png, png(3, 2)[..24].to_vec()),
        (
            MediaType::Jpeg,
            vec![
                0xFF, 0xD8, 0xFF, 0xC0, 0x00, 0x11, 0x08, 0x00, 0x02, 0x00, 0x03,
            ],
        ),
        (
            MediaType::WebP,
            webp(b"VP8X", &[0, 0, 0, 0, 2, 0, 0, 1, 0, 0]),
        ),
        (MediaType::Gif, b"GIF89a\x03\0\x02\0".to_vec()),
    ];
    for (media, bytes) in whole {
        assert_eq!(image_dimensions(media, &bytes), Some((3, 2)), "{media:?}");
        for end in 0..bytes.len() {
            assert_eq!(
                image_dimensions(media, &bytes[..end]),
                None,
                "{media:?} {end}"
            );
        }
    }
}

#[test]
fn only_images_of_the_named_type_have_dimensions() {
    // The bytes must be what the caller says they are.
    assert_eq!(image_dimensions(MediaType::Jpeg, &png(8, 8)), None);
    assert_eq!(image_dimensions(MediaType::Gif, &png(8, 8)), None);
    // Audio and video have no image header, even with an image's bytes behind them.
    let mp4 = b"\0\0\0\x14ftypisom\0\0\x02\0isom".to_vec();
    assert_eq!(crate::sniff(&mp4), Some(MediaType::Mp4));
    assert_eq!(image_dimensions(MediaType::Mp4, &mp4), None);
    for media in MediaType::ALL {
        if media.kind() != crate::Kind::Image {
            assert_eq!(image_dimensions(media, &png(8, 8)), None, "{media:?}");
        }
    }
}
