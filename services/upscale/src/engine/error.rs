//! Why an upscale was refused or failed, with the machine code and retry class for each.

/// Everything that can go wrong in [`upscale`](super::upscale) or [`plan`](super::plan).
///
/// Nothing here is retryable: the engine is a pure function of the input bytes, the target and
/// the limits, with no I/O, clock or shared state, so running the same job again fails the same
/// way. Resource exhaustion that a retry could outlive (memory, time) is bounded up front by
/// [`Limits`](super::Limits) and surfaces as a refusal, not as a transient error.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum UpscaleError {
    /// The magic bytes are not PNG, JPEG or WebP; `seen` names what they are, if known.
    #[error("unsupported image format: {seen}")]
    UnsupportedFormat { seen: String },

    #[error("input is {len} bytes, over the {max} byte limit")]
    FileTooLarge { len: usize, max: usize },

    /// The header declares a size over the input limits; nothing was decoded.
    #[error("image is {width}x{height}, over the {limit}")]
    ImageTooLarge {
        width: u32,
        height: u32,
        limit: String,
    },

    #[error("output would be {width}x{height}, over the {max_pixels} pixel limit")]
    OutputTooLarge {
        width: u32,
        height: u32,
        max_pixels: u64,
    },

    #[error("invalid target: {reason}")]
    InvalidTarget { reason: String },

    /// Malformed or truncated data, in the header or in the pixel stream.
    #[error("cannot decode image: {reason}")]
    DecodeFailed { reason: String },

    /// The resampler refused its buffers; with buffers built here that means a bug.
    #[error("cannot resample image: {reason}")]
    ResampleFailed { reason: String },

    #[error("cannot encode image: {reason}")]
    EncodeFailed { reason: String },
}

impl UpscaleError {
    /// Always false; see the type's documentation for why.
    pub fn is_retryable(&self) -> bool {
        // Exhaustive on purpose: a new variant must be classified here, not default to fatal.
        match self {
            Self::UnsupportedFormat { .. }
            | Self::FileTooLarge { .. }
            | Self::ImageTooLarge { .. }
            | Self::OutputTooLarge { .. }
            | Self::InvalidTarget { .. }
            | Self::DecodeFailed { .. }
            | Self::ResampleFailed { .. }
            | Self::EncodeFailed { .. } => false,
        }
    }

    /// A short stable code for job records and API bodies.
    pub fn code(&self) -> &'static str {
        match self {
            Self::UnsupportedFormat { .. } => "unsupported_format",
            Self::FileTooLarge { .. } => "file_too_large",
            Self::ImageTooLarge { .. } => "image_too_large",
            Self::OutputTooLarge { .. } => "output_too_large",
            Self::InvalidTarget { .. } => "invalid_target",
            Self::DecodeFailed { .. } => "decode_failed",
            Self::ResampleFailed { .. } => "resample_failed",
            Self::EncodeFailed { .. } => "encode_failed",
        }
    }

    pub(crate) fn decode(reason: impl std::fmt::Display) -> Self {
        Self::DecodeFailed {
            reason: reason.to_string(),
        }
    }
}
