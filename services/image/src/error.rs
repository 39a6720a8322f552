//! Why an image was refused or failed, with the machine code and retry class of each.
//!
//! Nothing here is retryable: rendering is a pure function of the request, the reference
//! bytes and the fonts loaded at start-up, with no I/O, so the same job fails the same way on
//! every attempt. (A missing font is found at start-up, not per job.)

#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ImageError {
    #[error("invalid request: {reason}")]
    InvalidRequest { reason: String },

    /// The reference image was refused before or while decoding; `input` names its source.
    #[error("{input}: {reason}")]
    BadInput {
        input: String,
        code: &'static str,
        reason: String,
    },

    /// PNG encoding of a buffer this engine built; a bug if it ever happens.
    #[error("cannot encode image: {reason}")]
    EncodeFailed { reason: String },
}

impl ImageError {
    /// Always false; see the module documentation.
    pub fn is_retryable(&self) -> bool {
        match self {
            Self::InvalidRequest { .. } | Self::BadInput { .. } | Self::EncodeFailed { .. } => {
                false
            }
        }
    }

    /// A short stable code for job records and API bodies.
    pub fn code(&self) -> &'static str {
        match self {
            Self::InvalidRequest { .. } => "invalid_request",
            Self::BadInput { code, .. } => code,
            Self::EncodeFailed { .. } => "encode_failed",
        }
    }
}
