//! Vectors for every accepted type, the near misses around each, and the refusal names.

use super::*;
use crate::container;

/// An `ftyp` box with the given brands, as the first box of an ISO base media file.
fn ftyp(major: &[u8; 4], compatible: &[&[u8; 4]]) -> Vec<u8> {
    let size = 16 + 4 * compatible.len() as u32;
    let mut bytes = size.to_be_bytes().to_vec();
    bytes.extend_from_slice(b"ftyp");
    bytes.extend_from_slice(major);
    bytes.extend_from_slice(&0x200u32.to_be_bytes());
    for brand in compatible {
        bytes.extend_from_slice(*brand);
    }
    // The next box, so the window holds more than the `ftyp`.
    bytes.extend_from_slice(b"\0\0\0\x08free");
    bytes
}

/// An EBML header as ffmpeg and browsers write it: versions, limits, then the DocType.
fn ebml(doc_type: &[u8]) -> Vec<u8> {
    let mut body = vec![0x42, 0x86, 0x81, 0x01, 0x42, 0xF7, 0x81, 0x01];
    body.extend_from_slice(&[0x42, 0xF2, 0x81, 0x04, 0x42, 0xF3, 0x81, 0x08]);
    body.extend_from_slice(&[0x42, 0x82, 0x80 | doc_type.len() as u8]);
    body.extend_from_slice(doc_type);
    body.extend_from_slice(&[0x42, 0x87, 0x81, 0x04, 0x42, 0x85, 0x81, 0x02]);
    let mut bytes = vec![0x1A, 0x45, 0xDF, 0xA3, 0x80 | body.len() as u8];
    bytes.extend_from_slice(&body);
    // Segment ID, as it follows in a real file.
    bytes.extend_from_slice(&[0x18, 0x53, 0x80, 0x67]);
    bytes
}

/// The first Ogg page of a stream whose first packet is `packet`.
fn ogg_page(packet: &[u8]) -> Vec<u8> {
    let mut bytes = b"OggS\0\x02".to_vec();
    bytes.extend_from_slice(&[0; 8]); // granule position
    bytes.extend_from_slice(&[0x2A, 0, 0, 0]); // serial
    bytes.extend_from_slice(&[0; 4]); // page sequence
    bytes.extend_from_slice(&[0; 4]); // CRC, not checked by a sniffer
    bytes.extend_from_slice(&[1, packet.len() as u8]);
    bytes.extend_from_slice(packet);
    bytes
}

/// One realistic start of a file per accepted type, the way common encoders write them.
fn vectors() -> Vec<(MediaType, Vec<u8>)> {
    let mut riff_wave = b"RIFF\x24\x08\0\0WAVEfmt \x10\0\0\0\x01\0\x02\0".to_vec();
    riff_wave.extend_from_slice(&44_100u32.to_le_bytes());
    vec![
        (
            MediaType::Png,
            b"\x89PNG\r\n\x1a\n\0\0\0\x0dIHDR\0\0\x01\0\0\0\0\x80\x08\x06\0\0\0".to_vec(),
        ),
        (
            MediaType::Jpeg,
            b"\xff\xd8\xff\xe0\0\x10JFIF\0\x01\x01\0\0\x01\0\x01\0\0".to_vec(),
        ),
        (
            MediaType::Jpeg,
            b"\xff\xd8\xff\xe1\x1c\x45Exif\0\0MM\0*".to_vec(),
        ),
        (
            MediaType::WebP,
            b"RIFF\x1a\0\0\0WEBPVP8L\x0d\0\0\0\x2f\x07\xc0\x03\0".to_vec(),
        ),
        (MediaType::Gif, b"GIF89a\x40\x01\xf0\0\xf7\0\0".to_vec()),
        (MediaType::Gif, b"GIF87a\x01\0\x01\0\x80\0\0".to_vec()),
        (
            MediaType::Mp4,
            ftyp(b"isom", &[b"isom", b"iso2", b"avc1", b"mp41"]),
        ),
        (MediaType::Mp4, ftyp(b"mp42", &[b"mp42", b"isom"])),
        (MediaType::Mp4, ftyp(b"dash", &[b"iso6", b"mp41"])),
        (
            MediaType::Mp4,
            ftyp(b"M4V ", &[b"M4V ", b"M4A ", b"mp42", b"isom"]),
        ),
        (MediaType::QuickTime, ftyp(b"qt  ", &[b"qt  "])),
        (
            MediaType::M4a,
            ftyp(b"M4A ", &[b"M4A ", b"mp42", b"isom", b"\0\0\0\0"]),
        ),
        (MediaType::M4a, ftyp(b"M4B ", &[b"M4B ", b"mp42", b"isom"])),
        (MediaType::WebM, ebml(b"webm")),
        (
            MediaType::Mp3,
            b"ID3\x04\0\0\0\0\x01\x23TSSE\0\0\0\x0f".to_vec(),
        ),
        // MPEG-1, 2 and 2.5 Layer III frame headers.
        (MediaType::Mp3, vec![0xFF, 0xFB, 0x90, 0x64, 0x00, 0x00]),
        (MediaType::Mp3, vec![0xFF, 0xF3, 0x48, 0xC4, 0x00, 0x00]),
        (MediaType::Mp3, vec![0xFF, 0xE3, 0x18, 0xC4, 0x00, 0x00]),
        (MediaType::Wav, riff_wave),
        (
            MediaType::Ogg,
            ogg_page(b"OpusHead\x01\x02\x38\x01\x80\xbb\0\0\0\0\0"),
        ),
        (
            MediaType::Ogg,
            ogg_page(b"\x01vorbis\0\0\0\0\x02\x44\xac\0\0"),
        ),
        (MediaType::Ogg, ogg_page(b"\x7fFLAC\x01\0\0\x01fLaC")),
        (
            MediaType::Flac,
            b"fLaC\x80\0\0\x22\x10\0\x10\0\0\0\x0e\0\x37".to_vec(),
        ),
    ]
}

#[test]
fn every_accepted_type_is_sniffed_and_described_by_its_name() {
    for (media, bytes) in vectors() {
        assert_eq!(sniff(&bytes), Some(media), "{bytes:02x?}");
        assert_eq!(describe(&bytes), media.as_str());
    }
    // Each type has at least one vector.
    for media in MediaType::ALL {
        assert!(vectors().iter().any(|(m, _)| *m == media), "{media:?}");
    }
}

#[test]
fn only_the_sniff_window_is_read() {
    for (media, mut bytes) in vectors() {
        bytes.resize(SNIFF_LEN, 0);
        let window = bytes.clone();
        // What follows the window cannot change the answer, whatever it is.
        bytes.extend_from_slice(b"<html><script>alert(1)</script>");
        assert_eq!(sniff(&bytes), Some(media));
        assert_eq!(sniff(&window), Some(media));
    }
}

#[test]
fn markup_is_never_accepted_and_is_named() {
    let cases: &[(&[u8], &str)] = &[
        (b"<!DOCTYPE html><html><body>", "html"),
        (b"  \r\n<HTML><script>alert(1)</script>", "html"),
        (b"\xEF\xBB\xBF<html>", "html"),
        (b"<script>fetch('/')</script>", "html"),
        (
            b"<svg xmlns=\"http://www.w3.org/2000/svg\" onload=\"alert(1)\"/>",
            "svg",
        ),
        (
            b"<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<!-- made by hand -->\n\
              <!DOCTYPE svg PUBLIC \"-//W3C//DTD SVG 1.1//EN\" \"x\">\n<svg>",
            "svg",
        ),
        (b"\xEF\xBB\xBF\n<svg></svg>", "svg"),
        (b"<?xml version=\"1.0\"?><feed></feed>", "xml"),
        (b"<p>hello</p>", "markup"),
    ];
    for (bytes, name) in cases {
        assert_eq!(sniff(bytes), None, "{name}");
        assert_eq!(describe(bytes), *name, "{}", String::from_utf8_lossy(bytes));
    }
}

#[test]
fn known_but_refused_formats_are_named() {
    let cases: &[(&[u8], &str)] = &[
        (b"%PDF-1.7\n%\xe2\xe3\xcf\xd3", "pdf"),
        (b"PK\x03\x04\x14\0\x06\0", "zip"),
        (b"BM\x36\x00\x0c\0\0\0\0\0\x36\0\0\0", "bmp"),
        (b"II*\0\x08\0\0\0", "tiff"),
        (b"MM\0*\0\0\0\x08", "tiff"),
        (b"\x7fELF\x02\x01\x01\0", "elf executable"),
        (b"MZ\x90\0\x03\0\0\0", "windows executable"),
        (
            b"BMW is a car maker",
            "unrecognised bytes 42 4d 57 20 69 73 20 61",
        ),
        (b"#!/bin/sh\necho hi\n", "script"),
        (b"#!AMR\n\x3c", "amr"),
        (b"\x1f\x8b\x08\0", "gzip"),
        (b"\0\0\x01\0\x01\0\x10\x10", "ico"),
        (b"\xff\x0a\xfa\x7f", "jpeg xl"),
        (b"\xff\xfeh\0i\0", "utf-16 text"),
        (b"RIFF\0\0\0\0AVI LIST", "avi"),
        (b"RIFF\0\0\0\0CDXAfmt ", "riff"),
        (b"RF64\xff\xff\xff\xffWAVEds64", "rf64 wav"),
        (b"FORM\0\0\0\0AIFFCOMM", "aiff"),
        // AAC in ADTS framing: the MPEG sync with layer 00.
        (&[0xFF, 0xF1, 0x50, 0x80, 0x2E, 0x7F, 0xFC], "aac"),
    ];
    for (bytes, name) in cases {
        assert_eq!(sniff(bytes), None, "{name}");
        assert_eq!(describe(bytes), *name, "{bytes:02x?}");
    }
}

#[test]
fn iso_media_brands_decide_the_type() {
    let cases: &[(Vec<u8>, &str)] = &[
        (ftyp(b"heic", &[b"mif1", b"heic"]), "heic"),
        (ftyp(b"mif1", &[b"mif1", b"heic"]), "heic"),
        (ftyp(b"avif", &[b"avif", b"mif1", b"miaf"]), "avif"),
        (ftyp(b"3gp5", &[b"3gp5", b"isom"]), "3gp"),
        (ftyp(b"M4P ", &[b"M4P ", b"mp42", b"isom"]), "protected m4a"),
        (ftyp(b"crx ", &[b"crx ", b"isom"]), "cr3"),
        (ftyp(b"zzzz", &[b"yyyy"]), "iso media"),
    ];
    for (bytes, name) in cases {
        assert_eq!(sniff(bytes), None, "{name}");
        assert_eq!(describe(bytes), *name);
    }
    // An unknown major brand defers to the first known compatible brand.
    assert_eq!(
        sniff(&ftyp(b"XAVC", &[b"XAVC", b"mp42", b"iso2"])),
        Some(MediaType::Mp4)
    );
    // The major brand wins over compatible ones, so M4A compatible with isom is still M4A.
    assert_eq!(sniff(&ftyp(b"M4A ", &[b"isom"])), Some(MediaType::M4a));
    // A box of 256 bytes starts like an icon; the `ftyp` must win.
    let mut big = ftyp(b"isom", &[b"isom"; 60]);
    assert_eq!(&big[..4], &[0, 0, 1, 0]);
    assert_eq!(sniff(&big), Some(MediaType::Mp4));
    // Sizes that no `ftyp` has: too short, not whole brands, or text read as a number.
    big[..4].copy_from_slice(&8u32.to_be_bytes());
    assert_eq!(sniff(&big), None);
    assert_eq!(
        sniff(&[&[0, 0, 0, 18][..], &ftyp(b"isom", &[])[4..]].concat()),
        None
    );
    assert_eq!(sniff(b"sizeftypisom text for you"), None);
}

#[test]
fn matroska_is_told_from_webm_by_its_doc_type() {
    assert_eq!(sniff(&ebml(b"matroska")), None);
    assert_eq!(describe(&ebml(b"matroska")), "mkv");
    // An eight-byte size vint, as some muxers write it.
    let mut long_size = ebml(b"webm");
    let len = long_size[4] & 0x7F;
    long_size.splice(4..5, [0x01, 0, 0, 0, 0, 0, 0, len]);
    assert_eq!(sniff(&long_size), Some(MediaType::WebM));
    // No DocType in the header, or a header cut short: EBML, but not known to be WebM.
    assert_eq!(
        describe(&[0x1A, 0x45, 0xDF, 0xA3, 0x84, 0x42, 0x86, 0x81, 0x01]),
        "ebml"
    );
    assert_eq!(describe(&ebml(b"webm")[..20]), "ebml");
    // The reserved unknown size and an invalid length byte.
    assert_eq!(
        describe(&[0x1A, 0x45, 0xDF, 0xA3, 0xFF, 0x42, 0x82]),
        "ebml"
    );
    assert_eq!(
        describe(&[0x1A, 0x45, 0xDF, 0xA3, 0x00, 0x42, 0x82]),
        "ebml"
    );
}

#[test]
fn ogg_is_accepted_only_for_audio_codecs() {
    assert_eq!(
        sniff(&ogg_page(b"Speex   1.2rc1\0\0")),
        Some(MediaType::Ogg)
    );
    assert_eq!(describe(&ogg_page(b"\x80theora\x03\x02\x01")), "ogg video");
    assert_eq!(
        describe(&ogg_page(b"fishead\0\x03\0")),
        "ogg with an unrecognised codec"
    );
    // A page that does not begin a stream, or an unknown structure version.
    let mut page = ogg_page(b"OpusHead\x01");
    page[5] = 0;
    assert_eq!(sniff(&page), None);
    let mut page = ogg_page(b"OpusHead\x01");
    page[4] = 1;
    assert_eq!(sniff(&page), None);
}

#[test]
fn flac_needs_its_stream_info_block() {
    assert_eq!(sniff(b"fLaC\0\0\0\x22\x10\0"), Some(MediaType::Flac));
    assert_eq!(sniff(b"fLaC is a nice format"), None);
    assert_eq!(sniff(b"fLaC"), None);
}

#[test]
fn mpeg_frame_sync_is_not_fooled_by_near_misses() {
    let refused: &[&[u8]] = &[
        // JPEG's start of image is not a frame sync.
        &[0xFF, 0xD8, 0xFF, 0xE0],
        // Layers I and II; FF FE is also a UTF-16 byte-order mark.
        &[0xFF, 0xFD, 0x90, 0x64],
        &[0xFF, 0xFF, 0x90, 0x64],
        // Reserved version, bitrate "free" and "bad", reserved sample rate, reserved emphasis.
        &[0xFF, 0xEB, 0x90, 0x64],
        &[0xFF, 0xFB, 0x00, 0x64],
        &[0xFF, 0xFB, 0xF0, 0x64],
        &[0xFF, 0xFB, 0x9C, 0x64],
        &[0xFF, 0xFB, 0x90, 0x66],
        // Only eleven sync bits.
        &[0xFF, 0xDB, 0x90, 0x64],
        // A frame header cut short.
        &[0xFF, 0xFB, 0x90],
        // ID3 with an impossible version or a size that is not synchsafe.
        b"ID3\x05\0\0\0\0\0\x10",
        b"ID3\x03\0\0\0\0\x80\x10",
        b"ID3 is a tag",
    ];
    for bytes in refused {
        assert_eq!(container::mpeg_audio(bytes), None, "{bytes:02x?}");
        assert_ne!(sniff(bytes), Some(MediaType::Mp3), "{bytes:02x?}");
    }
}

#[test]
fn cut_off_signatures_are_unrecognised() {
    assert_eq!(describe(b""), "empty input");
    assert_eq!(
        describe(b"hello, world\n"),
        "unrecognised bytes 68 65 6c 6c 6f 2c 20 77"
    );
    assert_eq!(
        describe(b"\x89PNG\r\n"),
        "unrecognised bytes 89 50 4e 47 0d 0a"
    );
    assert_eq!(sniff(b"GIF89"), None);
    assert_eq!(sniff(b"RIFF\0\0\0\0WAV"), None);
    assert_eq!(sniff(&[0xFF, 0xD8]), None);
}

#[test]
fn every_prefix_of_every_vector_is_handled() {
    for (_, bytes) in vectors() {
        for end in 0..=bytes.len() {
            let prefix = &bytes[..end];
            // Never panics, and a refusal of a prefix always has a name.
            assert!(!describe(prefix).is_empty());
            if let Some(media) = sniff(prefix) {
                assert_eq!(describe(prefix), media.as_str());
            }
        }
    }
}

/// xorshift64: deterministic, so a failure reproduces.
fn noise(state: &mut u64) -> u64 {
    *state ^= *state << 13;
    *state ^= *state >> 7;
    *state ^= *state << 17;
    *state
}

#[test]
fn random_text_is_never_accepted() {
    let mut state = 0x9E37_79B9_7F4A_7C15;
    for _ in 0..20_000 {
        let len = (noise(&mut state) % 80) as usize;
        let text: Vec<u8> = (0..len)
            .map(|_| b' ' + (noise(&mut state) % 95) as u8)
            .collect();
        assert_eq!(sniff(&text), None, "{}", String::from_utf8_lossy(&text));
    }
}

#[test]
fn mutated_vectors_never_panic_and_agree_with_describe() {
    let mut state = 0x2545_F491_4F6C_DD1D;
    let vectors = vectors();
    for _ in 0..20_000 {
        let (_, base) = &vectors[(noise(&mut state) % vectors.len() as u64) as usize];
        let mut bytes = base.clone();
        for _ in 0..1 + noise(&mut state) % 3 {
            let at = (noise(&mut state) % bytes.len() as u64) as usize;
            bytes[at] = noise(&mut state) as u8;
        }
        bytes.truncate((noise(&mut state) % (bytes.len() as u64 + 1)) as usize);
        match sniff(&bytes) {
            Some(media) => assert_eq!(describe(&bytes), media.as_str()),
            None => assert!(!describe(&bytes).is_empty()),
        }
    }
}
