//! Names untrusted media from its first bytes, and reads image sizes from headers, decoding nothing.
//!
//! Shared by every role that takes media from users (the api-service checks uploads, the upscale
//! engine gates its decoders), because role crates may not depend on one another. The content
//! decides: file names and declared content types are never consulted, since a client controls
//! both.
//!
//! - [`sniff`] is the allow-list. Only the [`MediaType`]s below are accepted; markup (HTML, SVG,
//!   XML) never is, because a browser that renders it would run the scripts it carries.
//! - [`describe`] names what was sent, accepted or not, for the refusal message.
//! - [`image_dimensions`] reads the declared pixel size so callers can refuse a hostile size
//!   before a decoder allocates for it.
//!
//! - [`gate`] puts the three together in front of the engines' decoders; with the `decode`
//!   feature it also decodes, under the same limits.
//!
//! Everything here is a pure function of a byte slice: no I/O and, without the `decode`
//! feature, no decoding and no dependencies.
//! A container's type is named by its brand, not by its tracks, so an audio-only MP4 or WebM
//! still reports [`Kind::Video`]; telling them apart needs a demuxer, which is out of scope.

mod container;
mod dimensions;
pub mod gate;
mod read;
pub mod rng;
mod sniff;

pub use dimensions::image_dimensions;
pub use sniff::{SNIFF_LEN, describe, sniff};

/// The broad class of a [`MediaType`], for routing and per-class limits.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Kind {
    Image,
    Video,
    Audio,
}

impl Kind {
    /// `"image"`, `"video"` or `"audio"`: stable, for storage and API bodies.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Image => "image",
            Self::Video => "video",
            Self::Audio => "audio",
        }
    }
}

/// A media format that [`sniff`] accepts: common formats that browsers and the usual tools play,
/// none of which can carry script.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum MediaType {
    Png,
    Jpeg,
    WebP,
    /// GIF87a and GIF89a, animated or not.
    Gif,
    /// ISO base media with an MP4 brand (`isom`, `mp41`, `mp42`, `avc1`, `dash`, `M4V `...).
    Mp4,
    /// ISO base media with the `qt  ` brand. QuickTime files older than the `ftyp` box (before
    /// 2001) start with a bare `moov` or `mdat` and are not recognised.
    QuickTime,
    /// Matroska with the `webm` DocType. Other Matroska (`.mkv`) is refused: browsers do not
    /// reliably play it, so labelling it `video/webm` would be a lie.
    WebM,
    /// MPEG audio Layer III, or anything behind an ID3v2 tag (in practice always MP3).
    Mp3,
    /// RIFF WAVE. The 64-bit variants (RF64, BW64) are refused.
    Wav,
    /// Ogg whose first stream is Vorbis, Opus, FLAC or Speex. Theora (video) is refused.
    Ogg,
    /// Native FLAC (`fLaC`); FLAC in Ogg is [`MediaType::Ogg`].
    Flac,
    /// ISO base media with the `M4A ` or `M4B ` (audiobook) brand.
    M4a,
}

impl MediaType {
    /// Every accepted type, in declaration order.
    pub const ALL: [Self; 12] = [
        Self::Png,
        Self::Jpeg,
        Self::WebP,
        Self::Gif,
        Self::Mp4,
        Self::QuickTime,
        Self::WebM,
        Self::Mp3,
        Self::Wav,
        Self::Ogg,
        Self::Flac,
        Self::M4a,
    ];

    pub fn kind(self) -> Kind {
        match self {
            Self::Png | Self::Jpeg | Self::WebP | Self::Gif => Kind::Image,
            Self::Mp4 | Self::QuickTime | Self::WebM => Kind::Video,
            Self::Mp3 | Self::Wav | Self::Ogg | Self::Flac | Self::M4a => Kind::Audio,
        }
    }

    /// The content type to store and serve, never the one the client declared.
    pub fn mime(self) -> &'static str {
        match self {
            Self::Png => "image/png",
            Self::Jpeg => "image/jpeg",
            Self::WebP => "image/webp",
            Self::Gif => "image/gif",
            Self::Mp4 => "video/mp4",
            Self::QuickTime => "video/quicktime",
            Self::WebM => "video/webm",
            Self::Mp3 => "audio/mpeg",
            // `audio/vnd.wave` is the registered name, but browsers and tools send and expect this.
            Self::Wav => "audio/wav",
            Self::Ogg => "audio/ogg",
            Self::Flac => "audio/flac",
            // The registered type for MPEG-4 audio; `audio/x-m4a` is Apple's legacy alias.
            Self::M4a => "audio/mp4",
        }
    }

    /// The usual file extension, without the dot.
    pub fn extension(self) -> &'static str {
        match self {
            Self::Jpeg => "jpg",
            Self::QuickTime => "mov",
            other => other.as_str(),
        }
    }

    /// A short lowercase name (`"jpeg"`, `"quicktime"`, `"m4a"`...): stable, for storage, logs
    /// and messages; [`describe`] returns it for accepted input.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Png => "png",
            Self::Jpeg => "jpeg",
            Self::WebP => "webp",
            Self::Gif => "gif",
            Self::Mp4 => "mp4",
            Self::QuickTime => "quicktime",
            Self::WebM => "webm",
            Self::Mp3 => "mp3",
            Self::Wav => "wav",
            Self::Ogg => "ogg",
            Self::Flac => "flac",
            Self::M4a => "m4a",
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_distinct_and_consistent_with_kind() {
        for (i, a) in MediaType::ALL.iter().enumerate() {
            for b in &MediaType::ALL[i + 1..] {
                assert_ne!(a, b);
                assert_ne!(a.as_str(), b.as_str());
                assert_ne!(a.mime(), b.mime());
                assert_ne!(a.extension(), b.extension());
            }
            // The MIME top-level type is the kind, so routing by either agrees.
            let top = a.mime().split('/').next().unwrap();
            assert_eq!(top, a.kind().as_str(), "{a:?}");
        }
    }

    #[test]
    fn extensions_follow_convention() {
        assert_eq!(MediaType::Jpeg.extension(), "jpg");
        assert_eq!(MediaType::QuickTime.extension(), "mov");
        assert_eq!(MediaType::M4a.extension(), "m4a");
        assert_eq!(MediaType::Mp3.mime(), "audio/mpeg");
    }
}
