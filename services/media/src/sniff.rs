//! The allow-list check ([`sniff`]) and the name for a refusal ([`describe`]), from magic bytes.
//!
//! Both views come from one classification, [`identify`], so what is accepted and what a
//! refusal calls the content cannot drift apart. Refused formats are named only so the user
//! learns what they sent; nothing in the refused list is ever accepted.

use crate::MediaType;
use crate::container;

#[cfg(test)]
mod tests;

/// How many leading bytes [`sniff`] reads; later bytes never change its answer, so a caller
/// holding the start of a stream can decide after this many bytes. [`describe`] looks further
/// into text to tell HTML from SVG, but that only changes the name of a refusal.
pub const SNIFF_LEN: usize = 64;

/// How far [`describe`] looks for a telling tag in markup: past an XML declaration, comments
/// and a DOCTYPE, but not through a whole document.
const MARKUP_LEN: usize = 512;

/// What the magic bytes say the content is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Identity {
    Accepted(MediaType),
    /// Recognised and refused; the name is for messages only.
    Refused(&'static str),
}

use Identity::{Accepted, Refused};

/// Formats told apart by a fixed prefix. The containers (ISO base media, RIFF, EBML, Ogg, FLAC)
/// and MPEG audio need a look at their fields, and are in `container`.
const SIGNATURES: &[(&[u8], Identity)] = &[
    (b"\x89PNG\r\n\x1a\n", Accepted(MediaType::Png)),
    // SOI and the first byte of the next marker: FF D8 alone also opens other formats.
    (&[0xFF, 0xD8, 0xFF], Accepted(MediaType::Jpeg)),
    (b"GIF87a", Accepted(MediaType::Gif)),
    (b"GIF89a", Accepted(MediaType::Gif)),
    // Images the decoders here do not take.
    (b"II*\0", Refused("tiff")),
    (b"MM\0*", Refused("tiff")),
    (b"II+\0", Refused("tiff")),
    (b"MM\0+", Refused("tiff")),
    (&[0, 0, 1, 0], Refused("ico")),
    (b"8BPS", Refused("psd")),
    (b"qoif", Refused("qoi")),
    (&[0x76, 0x2F, 0x31, 0x01], Refused("openexr")),
    (b"#?RADIANCE", Refused("hdr")),
    (b"#?RGBE", Refused("hdr")),
    (b"farbfeld", Refused("farbfeld")),
    (b"DDS ", Refused("dds")),
    (&[0xFF, 0x0A], Refused("jpeg xl")),
    (b"\0\0\0\x0cJXL \r\n\x87\n", Refused("jpeg xl")),
    (b"\0\0\0\x0cjP  \r\n\x87\n", Refused("jpeg 2000")),
    // Audio and video outside the allow-list.
    (b"#!AMR", Refused("amr")),
    (b"MThd", Refused("midi")),
    (b"FLV\x01", Refused("flv")),
    (
        &[0x30, 0x26, 0xB2, 0x75, 0x8E, 0x66, 0xCF, 0x11],
        Refused("asf"),
    ),
    (&[0, 0, 1, 0xBA], Refused("mpeg program stream")),
    (&[0, 0, 1, 0xB3], Refused("mpeg video")),
    // Documents, archives and executables: the usual wrong files.
    (b"%PDF-", Refused("pdf")),
    (b"{\\rtf", Refused("rtf")),
    (
        &[0xD0, 0xCF, 0x11, 0xE0, 0xA1, 0xB1, 0x1A, 0xE1],
        Refused("ms office document"),
    ),
    (b"PK\x03\x04", Refused("zip")),
    (b"PK\x05\x06", Refused("zip")),
    (b"PK\x07\x08", Refused("zip")),
    (&[0x1F, 0x8B], Refused("gzip")),
    (&[0x37, 0x7A, 0xBC, 0xAF, 0x27, 0x1C], Refused("7z")),
    (&[0xFD, 0x37, 0x7A, 0x58, 0x5A, 0x00], Refused("xz")),
    (&[0x28, 0xB5, 0x2F, 0xFD], Refused("zstd")),
    (b"Rar!\x1a\x07", Refused("rar")),
    (b"SQLite format 3\0", Refused("sqlite")),
    (b"\x7fELF", Refused("elf executable")),
    (b"MZ", Refused("windows executable")),
    (&[0xFE, 0xED, 0xFA, 0xCE], Refused("mach-o executable")),
    (&[0xFE, 0xED, 0xFA, 0xCF], Refused("mach-o executable")),
    (&[0xCE, 0xFA, 0xED, 0xFE], Refused("mach-o executable")),
    (&[0xCF, 0xFA, 0xED, 0xFE], Refused("mach-o executable")),
    (b"\0asm", Refused("webassembly")),
    // After `#!AMR`, which shares the prefix.
    (b"#!", Refused("script")),
    // Byte-order marks. FF FE also matches the MPEG frame sync (as Layer I), so this must be
    // decided before `container::mpeg_audio` is asked.
    (&[0xFF, 0xFE], Refused("utf-16 text")),
    (&[0xFE, 0xFF], Refused("utf-16 text")),
];

/// The accepted media type named by the first [`SNIFF_LEN`] bytes, or `None` for anything else.
///
/// Markup (HTML, SVG, XML) is never accepted: it opens with `<`, perhaps after a byte-order mark
/// and whitespace, and no accepted signature does.
pub fn sniff(bytes: &[u8]) -> Option<MediaType> {
    match identify(head(bytes))? {
        Accepted(media) => Some(media),
        Refused(_) => None,
    }
}

/// A short lowercase name for what `bytes` are, for the message that refuses them.
///
/// Accepted types give [`MediaType::as_str`] (a caller with a narrower allow-list refuses those
/// too), recognised formats their common name (`"pdf"`, `"svg"`, `"elf executable"`), empty
/// input `"empty input"`, and anything else its first 8 bytes in hex
/// (`"unrecognised bytes 68 65 6c 6c 6f"`).
pub fn describe(bytes: &[u8]) -> String {
    if bytes.is_empty() {
        return "empty input".to_owned();
    }
    match identify(head(bytes)) {
        Some(Accepted(media)) => media.as_str().to_owned(),
        Some(Refused(name)) => name.to_owned(),
        None => match markup(bytes) {
            Some(name) => name.to_owned(),
            None => {
                let hex: Vec<String> = bytes.iter().take(8).map(|b| format!("{b:02x}")).collect();
                format!("unrecognised bytes {}", hex.join(" "))
            }
        },
    }
}

fn head(bytes: &[u8]) -> &[u8] {
    &bytes[..bytes.len().min(SNIFF_LEN)]
}

/// The one classification behind [`sniff`] and [`describe`].
///
/// Order matters where signatures overlap. ISO base media goes first because its leading box
/// size is arbitrary and can collide with a short prefix below (an `ftyp` of 256 bytes starts
/// like an icon). MPEG audio goes last because a frame sync is the weakest evidence.
pub(crate) fn identify(head: &[u8]) -> Option<Identity> {
    container::iso_bmff(head)
        .or_else(|| container::riff(head))
        .or_else(|| container::ebml(head))
        .or_else(|| container::ogg(head))
        .or_else(|| container::flac(head))
        .or_else(|| container::bmp(head))
        .or_else(|| {
            SIGNATURES
                .iter()
                .find(|(magic, _)| head.starts_with(magic))
                .map(|&(_, identity)| identity)
        })
        .or_else(|| container::mpeg_audio(head))
}

/// Names markup, which is never accepted: HTML and SVG can carry script. Used only to word
/// a refusal, so a loose match costs nothing.
fn markup(bytes: &[u8]) -> Option<&'static str> {
    let text = &bytes[..bytes.len().min(MARKUP_LEN)];
    let text = text.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(text);
    let start = text.iter().position(|b| !b.is_ascii_whitespace())?;
    let text = text[start..].to_ascii_lowercase();
    if !text.starts_with(b"<") {
        return None;
    }
    let has = |tag: &[u8]| text.windows(tag.len()).any(|window| window == tag);
    let name = if has(b"<svg") || has(b"<!doctype svg") {
        "svg"
    } else if [
        "<!doctype html",
        "<html",
        "<head",
        "<body",
        "<script",
        "<iframe",
    ]
    .iter()
    .any(|tag| has(tag.as_bytes()))
    {
        "html"
    } else if text.starts_with(b"<?xml") {
        "xml"
    } else {
        "markup"
    };
    Some(name)
}
