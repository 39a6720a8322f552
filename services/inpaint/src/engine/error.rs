//! Why an inpaint was refused or failed, with the machine code and retry class for each.

use std::fmt;

/// Which of the job's two images a failure is about.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Which {
    Original,
    Mask,
}

impl fmt::Display for Which {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::Original => "original",
            Self::Mask => "mask",
        })
    }
}

/// Everything that can go wrong in [`inpaint`](super::inpaint).
///
/// Nothing here is retryable: the engine is a pure function of the two images and the limits,
/// with no I/O, clock or shared state, so running the same job again fails the same way. Memory
/// and time are bounded up front by [`Limits`](super::Limits), which refuse oversized input
/// before anything is decoded.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum InpaintError {
    /// The magic bytes are not PNG, JPEG or WebP; `seen` names what they are, if known.
    #[error("{input}: unsupported image format: {seen}")]
    UnsupportedFormat { input: Which, seen: String },

    #[error("{input}: {len} bytes, over the {max} byte limit")]
    FileTooLarge {
        input: Which,
        len: usize,
        max: usize,
    },

    /// The header declares a size over the limits; nothing was decoded.
    #[error("{input}: image is {width}x{height}, over the {limit}")]
    ImageTooLarge {
        input: Which,
        width: u32,
        height: u32,
        limit: String,
    },

    /// Malformed or truncated data, in the header or in the pixel stream.
    #[error("{input}: cannot decode image: {reason}")]
    DecodeFailed { input: Which, reason: String },

    /// Sizes as displayed, after each file's EXIF orientation.
    #[error(
        "mask is {}x{} but the original is {}x{}: they must be the same size",
        mask.0, mask.1, original.0, original.1
    )]
    MaskSizeMismatch {
        original: (u32, u32),
        mask: (u32, u32),
    },

    #[error(
        "mask selects no pixels: white marks the region to repaint, or transparent in a mask \
         with alpha"
    )]
    EmptyMask,

    #[error("mask selects every pixel, leaving nothing to paint the region from")]
    MaskCoversImage,

    #[error("cannot encode image: {reason}")]
    EncodeFailed { reason: String },
}

impl InpaintError {
    /// Always false; see the type's documentation for why.
    pub fn is_retryable(&self) -> bool {
        // Exhaustive on purpose: a new variant must be classified here, not default to fatal.
        match self {
            Self::UnsupportedFormat { .. }
            | Self::FileTooLarge { .. }
            | Self::ImageTooLarge { .. }
            | Self::DecodeFailed { .. }
            | Self::MaskSizeMismatch { .. }
            | Self::EmptyMask
            | Self::MaskCoversImage
            | Self::EncodeFailed { .. } => false,
        }
    }

    /// A short stable code for job records and API bodies.
    pub fn code(&self) -> &'static str {
        match self {
            Self::UnsupportedFormat { .. } => "unsupported_format",
            Self::FileTooLarge { .. } => "file_too_large",
            Self::ImageTooLarge { .. } => "image_too_large",
            Self::DecodeFailed { .. } => "decode_failed",
            Self::MaskSizeMismatch { .. } => "mask_size_mismatch",
            Self::EmptyMask => "empty_mask",
            Self::MaskCoversImage => "mask_covers_image",
            Self::EncodeFailed { .. } => "encode_failed",
        }
    }

    /// The input a failure is about, so the worker can name its URL; `None` when it is about
    /// the pair or the output.
    pub fn input(&self) -> Option<Which> {
        match self {
            Self::UnsupportedFormat { input, .. }
            | Self::FileTooLarge { input, .. }
            | Self::ImageTooLarge { input, .. }
            | Self::DecodeFailed { input, .. } => Some(*input),
            Self::MaskSizeMismatch { .. }
            | Self::EmptyMask
            | Self::MaskCoversImage
            | Self::EncodeFailed { .. } => None,
        }
    }

    pub(crate) fn decode(input: Which, reason: impl fmt::Display) -> Self {
        Self::DecodeFailed {
            input,
            reason: reason.to_string(),
        }
    }
}
