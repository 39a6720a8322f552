//! Pixel sizes as image headers declare them, read from fixed fields without decoding.
//!
//! This is the gate in front of decoders: a hostile file can declare any size, and a caller's
//! limits must refuse it before a decoder allocates for it. The parsers read only the fields they
//! need and judge nothing: a zero or enormous side is reported as declared, for the caller's
//! policy to refuse. Everything else is left to the real decoders.

use crate::read::{be16, be32, le16, le24, le32};
use crate::{MediaType, sniff};

#[cfg(test)]
mod tests;

/// Width and height as the header of a `media` image declares them, before any EXIF rotation.
///
/// `None` for audio and video, for truncated or malformed headers, and when `bytes` do not sniff
/// as `media` at all, so a mix-up cannot read a size out of the wrong format's fields.
///
/// PNG, GIF and WebP need at most their first 30 bytes. JPEG needs every segment before the
/// frame header, and an EXIF block ahead of it can run to 64 KiB: pass the whole file.
pub fn image_dimensions(media: MediaType, bytes: &[u8]) -> Option<(u32, u32)> {
    if sniff(bytes) != Some(media) {
        return None;
    }
    match media {
        MediaType::Png => png(bytes),
        MediaType::Jpeg => jpeg(bytes),
        MediaType::WebP => webp(bytes),
        MediaType::Gif => gif(bytes),
        MediaType::Mp4
        | MediaType::QuickTime
        | MediaType::WebM
        | MediaType::Mp3
        | MediaType::Wav
        | MediaType::Ogg
        | MediaType::Flac
        | MediaType::M4a => None,
    }
}

fn png(bytes: &[u8]) -> Option<(u32, u32)> {
    // The spec requires IHDR first, 13 bytes long: signature, length, "IHDR", width, height.
    if be32(bytes, 8)? != 13 || bytes.get(12..16)? != b"IHDR" {
        return None;
    }
    Some((be32(bytes, 16)?, be32(bytes, 20)?))
}

fn jpeg(bytes: &[u8]) -> Option<(u32, u32)> {
    // Walk the marker segments up to the first start-of-frame. Segments carry their own length,
    // so an EXIF thumbnail (inside APP1) is skipped whole and cannot be mistaken for the frame.
    let mut pos = 2;
    loop {
        if *bytes.get(pos)? != 0xFF {
            return None;
        }
        while *bytes.get(pos)? == 0xFF {
            pos += 1;
        }
        let marker = *bytes.get(pos)?;
        pos += 1;
        match marker {
            // Standalone markers carry no length.
            0x01 | 0xD0..=0xD7 => continue,
            // Scan data or end of image before any frame header.
            0xD9 | 0xDA => return None,
            _ => {}
        }
        let length = usize::from(be16(bytes, pos)?);
        if length < 2 {
            return None;
        }
        // C4 (Huffman tables), C8 (reserved) and CC (arithmetic conditioning) share the range.
        let is_start_of_frame =
            matches!(marker, 0xC0..=0xCF) && !matches!(marker, 0xC4 | 0xC8 | 0xCC);
        if is_start_of_frame {
            // Segment: length (2), precision (1), height (2), width (2).
            let height = be16(bytes, pos + 3)?;
            let width = be16(bytes, pos + 5)?;
            return Some((u32::from(width), u32::from(height)));
        }
        pos += length;
    }
}

fn webp(bytes: &[u8]) -> Option<(u32, u32)> {
    // RIFF header (12 bytes), then the first chunk's fourcc and size; its payload starts at 20.
    match bytes.get(12..16)? {
        b"VP8X" => {
            // Flags (4 bytes), then 24-bit canvas width - 1 and height - 1.
            Some((le24(bytes, 24)? + 1, le24(bytes, 27)? + 1))
        }
        b"VP8L" => {
            // Signature byte, then 14-bit width - 1, 14-bit height - 1, alpha hint, and a 3-bit
            // version that must be 0.
            let bits = le32(bytes, 21)?;
            if *bytes.get(20)? != 0x2F || bits >> 29 != 0 {
                return None;
            }
            Some(((bits & 0x3FFF) + 1, ((bits >> 14) & 0x3FFF) + 1))
        }
        b"VP8 " => {
            // Frame tag (3 bytes), start code, then 14-bit sizes (the top 2 bits are scaling).
            if bytes.get(23..26)? != [0x9D, 0x01, 0x2A] {
                return None;
            }
            let width = u32::from(le16(bytes, 26)? & 0x3FFF);
            let height = u32::from(le16(bytes, 28)? & 0x3FFF);
            Some((width, height))
        }
        _ => None,
    }
}

fn gif(bytes: &[u8]) -> Option<(u32, u32)> {
    // The logical screen after the 6-byte signature. Frames declare their own sizes, which
    // decoders do not all clip to it, so a GIF decoder still needs limits of its own.
    Some((u32::from(le16(bytes, 6)?), u32::from(le16(bytes, 8)?)))
}
