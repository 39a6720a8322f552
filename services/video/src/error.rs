//! Why a clip was refused or failed, with the machine code and retry class of each.
//!
//! The policy: what the job itself got wrong (its settings, its inputs) is fatal, because the
//! same job fails the same way on any worker. What the worker's surroundings got wrong (ffmpeg
//! missing or crashing, the disk, the clock) is retryable: another attempt, maybe on another
//! replica or after an operator's fix, can succeed, and the attempt limit bounds the cost.

/// Everything that can go wrong while making a clip.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum VideoError {
    #[error("invalid settings: {reason}")]
    InvalidSettings { reason: String },

    /// Neither a prompt nor an image to animate.
    #[error("video.generate needs a prompt or at least one image material")]
    NothingToAnimate,

    /// An input image was refused before or while decoding; `input` names where it came from.
    #[error("{input}: {reason}")]
    BadInput {
        input: String,
        code: &'static str,
        reason: String,
    },

    /// The ffmpeg executable could not be started at all: not installed, not on `PATH`, or
    /// not executable. The worker is misconfigured, not the job.
    #[error("ffmpeg is not available as {program:?} ({reason}); install it or set ATELIER_FFMPEG")]
    FfmpegMissing { program: String, reason: String },

    /// ffmpeg exited with an error or was killed; `stderr` is the end of what it printed.
    #[error("ffmpeg failed ({status}): {stderr}")]
    EncodeFailed { status: String, stderr: String },

    #[error("the clip was not finished within {seconds} s")]
    TimedOut { seconds: u64 },

    /// Local files: the temporary directory, the encoded output.
    #[error("{context}: {reason}")]
    Io {
        context: &'static str,
        reason: String,
    },

    /// The render thread panicked or was lost.
    #[error("the frame renderer stopped: {reason}")]
    RendererCrashed { reason: String },
}

impl VideoError {
    /// See the module documentation for the policy.
    pub fn is_retryable(&self) -> bool {
        // Exhaustive on purpose: a new variant must be classified here.
        match self {
            Self::InvalidSettings { .. } | Self::NothingToAnimate | Self::BadInput { .. } => false,
            Self::FfmpegMissing { .. }
            | Self::EncodeFailed { .. }
            | Self::TimedOut { .. }
            | Self::Io { .. }
            | Self::RendererCrashed { .. } => true,
        }
    }

    /// A short stable code for job records and API bodies.
    pub fn code(&self) -> &'static str {
        match self {
            Self::InvalidSettings { .. } => "invalid_settings",
            Self::NothingToAnimate => "bad_input",
            Self::BadInput { code, .. } => code,
            Self::FfmpegMissing { .. } => "encoder_unavailable",
            Self::EncodeFailed { .. } => "encode_failed",
            Self::TimedOut { .. } => "encode_timeout",
            Self::Io { .. } => "io_failed",
            Self::RendererCrashed { .. } => "engine_crashed",
        }
    }

    pub(crate) fn io(context: &'static str, err: impl std::fmt::Display) -> Self {
        Self::Io {
            context,
            reason: err.to_string(),
        }
    }
}
