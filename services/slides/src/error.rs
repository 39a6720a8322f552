//! Why a creation failed, with the machine code and retry class of each.
//!
//! The policy is the video engine's: what the job got wrong (its parameters, a voice that
//! cannot speak its text) is fatal, because it fails the same way anywhere. What the worker's
//! surroundings got wrong (espeak-ng or ffmpeg missing or crashing, the disk, the clock) is
//! retryable: another attempt, maybe on another replica, can succeed, and the attempt limit
//! bounds the cost.

use atelier_worker::EngineError;

#[derive(Debug, thiserror::Error)]
pub enum SlidesError {
    #[error("invalid parameters: {0}")]
    InvalidParams(String),
    /// espeak-ng ran and refused the text or the voice.
    #[error("narration failed: {0}")]
    Tts(String),
    /// espeak-ng could not be started at all.
    #[error("speech synthesis is not available ({0}); install espeak-ng or set ATELIER_ESPEAK")]
    TtsUnavailable(String),
    /// ffmpeg could not be started, exited with an error or was killed.
    #[error("assembling the video failed: {0}")]
    Encode(String),
    #[error("{0} did not finish in time")]
    TimedOut(&'static str),
    /// Local files: the temporary directory, an image encoder, a render thread.
    #[error("{0}")]
    Io(String),
    /// A chat model's outline broke the rules (another attempt asks again).
    #[error("the outline model's answer was unusable: {0}")]
    Outline(String),
    /// A provider call failed; its classification is kept as the provider engines made it.
    #[error("{0}")]
    Upstream(EngineError),
}

impl SlidesError {
    pub fn code(&self) -> &'static str {
        match self {
            Self::InvalidParams(_) => "invalid_request",
            Self::Tts(_) => "tts_failed",
            Self::TtsUnavailable(_) => "tts_unavailable",
            Self::Encode(_) => "encode_failed",
            Self::TimedOut(_) => "timed_out",
            Self::Io(_) => "internal_error",
            Self::Outline(_) => "outline_invalid",
            Self::Upstream(_) => "upstream_error",
        }
    }

    /// See the module documentation for the policy.
    pub fn is_retryable(&self) -> bool {
        match self {
            Self::InvalidParams(_) | Self::Tts(_) => false,
            Self::TtsUnavailable(_)
            | Self::Encode(_)
            | Self::TimedOut(_)
            | Self::Io(_)
            | Self::Outline(_) => true,
            Self::Upstream(err) => err.retryable,
        }
    }
}

impl From<SlidesError> for EngineError {
    fn from(err: SlidesError) -> Self {
        if let SlidesError::Upstream(inner) = err {
            return inner;
        }
        EngineError {
            code: err.code().to_owned(),
            message: err.to_string(),
            retryable: err.is_retryable(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_job_is_blamed_only_for_its_own_mistakes() {
        let fatal = EngineError::from(SlidesError::Tts("voice \"xx\"".into()));
        assert_eq!(
            (fatal.code.as_str(), fatal.retryable),
            ("tts_failed", false)
        );
        let env = EngineError::from(SlidesError::Encode("ffmpeg exited with 1".into()));
        assert_eq!((env.code.as_str(), env.retryable), ("encode_failed", true));
        assert!(EngineError::from(SlidesError::TtsUnavailable("x".into())).retryable);
        assert!(!EngineError::from(SlidesError::InvalidParams("x".into())).retryable);
    }
}
