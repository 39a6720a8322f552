//! Formats that a fixed prefix cannot identify: ISO base media brands, RIFF forms, the EBML
//! DocType, the codec of an Ogg stream, MPEG audio frame headers, and BMP's short signature.
//!
//! Each function answers `None` when the bytes are not its container at all, so the caller can
//! try the next, and reads nothing past the slice it is given (the sniff window).

use crate::MediaType;
use crate::read::be32;
use crate::sniff::Identity::{self, Accepted, Refused};

/// ISO base media (MP4, QuickTime, M4A, HEIF...): an `ftyp` box first, whose brands name the
/// format. The major brand decides; only when it is unknown are the compatible brands
/// consulted, in order, so a file branded `XAVC` but compatible with `mp42` is still an MP4.
pub(crate) fn iso_bmff(head: &[u8]) -> Option<Identity> {
    if head.get(4..8)? != b"ftyp" {
        return None;
    }
    // Size, type, major brand, minor version, then whole 4-byte compatible brands. Real `ftyp`
    // boxes are tens of bytes; the bound keeps four bytes of text from passing for a size.
    let size = usize::try_from(be32(head, 0)?).ok()?;
    if !(16..=4096).contains(&size) || size % 4 != 0 {
        return None;
    }
    let major = head.get(8..12)?;
    let mut compatible = head.get(16..size.min(head.len()))?.chunks_exact(4);
    let identity = brand(major)
        .or_else(|| compatible.find_map(brand))
        .unwrap_or(Refused("iso media"));
    Some(identity)
}

fn brand(brand: &[u8]) -> Option<Identity> {
    let identity = match brand {
        b"isom" | b"iso2" | b"iso3" | b"iso4" | b"iso5" | b"iso6" | b"mp41" | b"mp42" | b"avc1"
        | b"dash" | b"M4V " | b"M4VH" | b"M4VP" | b"MSNV" | b"F4V " => Accepted(MediaType::Mp4),
        b"qt  " => Accepted(MediaType::QuickTime),
        b"M4A " | b"M4B " => Accepted(MediaType::M4a),
        // FairPlay-protected iTunes audio: it will not play anywhere it is served from here.
        b"M4P " => Refused("protected m4a"),
        b"heic" | b"heix" | b"hevc" | b"hevx" | b"heim" | b"heis" | b"hevm" | b"hevs" | b"mif1"
        | b"msf1" => Refused("heic"),
        b"avif" | b"avis" => Refused("avif"),
        b"crx " => Refused("cr3"),
        [b'3', b'g', ..] => Refused("3gp"),
        _ => return None,
    };
    Some(identity)
}

/// RIFF (WAV, WebP, AVI) and its big-endian sibling IFF (AIFF): a form type at offset 8.
pub(crate) fn riff(head: &[u8]) -> Option<Identity> {
    let form = head.get(8..12)?;
    match head.get(0..4)? {
        b"RIFF" => Some(match form {
            b"WAVE" => Accepted(MediaType::Wav),
            b"WEBP" => Accepted(MediaType::WebP),
            b"AVI " => Refused("avi"),
            b"RMID" => Refused("midi"),
            _ => Refused("riff"),
        }),
        // The 64-bit WAV variants, which many players do not open.
        b"RF64" | b"BW64" if form == b"WAVE" => Some(Refused("rf64 wav")),
        // `FORM` is also an English word, so only the AIFF forms are claimed.
        b"FORM" if form == b"AIFF" || form == b"AIFC" => Some(Refused("aiff")),
        _ => None,
    }
}

/// EBML (Matroska, WebM): the DocType element inside the EBML header says which. Muxers write
/// it within the first few dozen bytes; one written past the sniff window is not looked for.
pub(crate) fn ebml(head: &[u8]) -> Option<Identity> {
    if !head.starts_with(&[0x1A, 0x45, 0xDF, 0xA3]) {
        return None;
    }
    Some(match ebml_doc_type(head) {
        Some(b"webm") => Accepted(MediaType::WebM),
        Some(b"matroska") => Refused("mkv"),
        _ => Refused("ebml"),
    })
}

const EBML_DOC_TYPE: u32 = 0x4282;

fn ebml_doc_type(head: &[u8]) -> Option<&[u8]> {
    let (header_len, mut pos) = vint(head, 4)?;
    let end = pos.checked_add(header_len)?.min(head.len());
    while pos < end {
        let (id, after_id) = element_id(head, pos)?;
        let (len, data) = vint(head, after_id)?;
        let data_end = data.checked_add(len)?;
        if id == EBML_DOC_TYPE {
            return head.get(data..data_end);
        }
        pos = data_end;
    }
    None
}

/// An EBML variable-length integer at `at`, without its length marker: (value, next offset).
/// The reserved all-ones value ("unknown size") reads as `None`; a header never uses it.
fn vint(bytes: &[u8], at: usize) -> Option<(usize, usize)> {
    let first = *bytes.get(at)?;
    let len = first.leading_zeros() as usize + 1;
    if len > 8 {
        return None;
    }
    let rest = bytes.get(at + 1..at + len)?;
    let marker_free = u64::from(first) & (0xFF >> len);
    let value = rest
        .iter()
        .fold(marker_free, |value, &b| value << 8 | u64::from(b));
    if value == (1u64 << (7 * len)) - 1 {
        return None;
    }
    Some((usize::try_from(value).ok()?, at + len))
}

/// An EBML element ID at `at`, marker bits included, as the specification writes IDs.
fn element_id(bytes: &[u8], at: usize) -> Option<(u32, usize)> {
    let len = bytes.get(at)?.leading_zeros() as usize + 1;
    if len > 4 {
        return None;
    }
    let id = bytes
        .get(at..at + len)?
        .iter()
        .fold(0u32, |id, &b| id << 8 | u32::from(b));
    Some((id, at + len))
}

/// Ogg: the first page opens the first logical stream, and its first packet names the codec.
/// A file led by a Skeleton or video stream is refused rather than guessed at.
pub(crate) fn ogg(head: &[u8]) -> Option<Identity> {
    // Capture pattern, stream structure version 0, and the beginning-of-stream flag.
    if !head.starts_with(b"OggS") || *head.get(4)? != 0 || *head.get(5)? & 0x02 == 0 {
        return None;
    }
    // The segment table follows the 27-byte page header; the first packet follows the table.
    let segments = usize::from(*head.get(26)?);
    let packet = head.get(27 + segments..).unwrap_or_default();
    let identity = if [&b"\x01vorbis"[..], b"OpusHead", b"\x7fFLAC", b"Speex   "]
        .iter()
        .any(|id| packet.starts_with(id))
    {
        Accepted(MediaType::Ogg)
    } else if packet.starts_with(b"\x80theora") {
        Refused("ogg video")
    } else {
        Refused("ogg with an unrecognised codec")
    };
    Some(identity)
}

/// Native FLAC: the signature, then the STREAMINFO block that must come first (type 0, 34
/// bytes). Checking the block keeps a text file that happens to begin "fLaC" out.
pub(crate) fn flac(head: &[u8]) -> Option<Identity> {
    if !head.starts_with(b"fLaC") {
        return None;
    }
    let block = head.get(4..8)?;
    (block[0] & 0x7F == 0 && block[1..] == [0, 0, 34]).then_some(Accepted(MediaType::Flac))
}

/// MP3: an ID3v2 tag, or the header of a Layer III frame.
///
/// A frame header is only 11 sync bits and a few fields, so every reserved or unusable value is
/// refused to keep false positives down. Layers I and II are refused outright: a UTF-16 byte
/// order mark (FF FE) is a valid Layer I sync, and those layers are all but extinct.
pub(crate) fn mpeg_audio(head: &[u8]) -> Option<Identity> {
    if head.starts_with(b"ID3") {
        // Major version 2 to 4, a revision that is not FF, and a synchsafe size (7 bits a byte).
        let tag = head.get(3..10)?;
        let valid =
            (2..=4).contains(&tag[0]) && tag[1] != 0xFF && tag[3..].iter().all(|&b| b < 0x80);
        return valid.then_some(Accepted(MediaType::Mp3));
    }
    let frame = head.get(0..4)?;
    if frame[0] != 0xFF || frame[1] & 0xE0 != 0xE0 {
        return None;
    }
    // AAC in ADTS framing shares the sync and writes layer 00.
    if frame[1] & 0xF6 == 0xF0 {
        return Some(Refused("aac"));
    }
    let version = (frame[1] >> 3) & 0b11;
    let layer = (frame[1] >> 1) & 0b11;
    let bitrate = frame[2] >> 4;
    let sample_rate = (frame[2] >> 2) & 0b11;
    let emphasis = frame[3] & 0b11;
    // Reserved values everywhere, plus bitrate 0 ("free format": legal, unused in practice, and
    // the easiest value to hit by chance).
    let valid = version != 0b01
        && layer == 0b01
        && !matches!(bitrate, 0 | 0b1111)
        && sample_rate != 0b11
        && emphasis != 0b10;
    valid.then_some(Accepted(MediaType::Mp3))
}

/// BMP: "BM" alone starts plenty of text, so the two reserved fields must be zero as well.
pub(crate) fn bmp(head: &[u8]) -> Option<Identity> {
    (head.starts_with(b"BM") && head.get(6..10)? == [0; 4]).then_some(Refused("bmp"))
}
