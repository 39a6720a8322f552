//! One error for every provider call, sorted into the classes the worker acts on.
//!
//! Policy (DESIGN §6, providers.md §8.6):
//! - `Retryable`: the upstream did not do the work (429, 5xx, a connection that failed before
//!   the request body was sent, a malformed answer to an idempotent read). Retry with backoff.
//! - `ProviderUnavailable`: the operator's account or configuration (auth, balance, quota, model
//!   not found). Not the partner's fault: fail the job and alert.
//! - `ContentRejected`: the provider's moderation refused the prompt, an input or the output.
//! - `InvalidRequest`: the provider refused the parameters.
//! - `OutcomeUnknown`: a submit whose body was sent but whose answer never came. Resending it
//!   could bill twice, so it is never retried blindly.
//!
//! Messages come from the provider and are kept (truncated), with any credential scrubbed: a
//! key must never reach a log, a job's JSON or a metric label.

use std::time::Duration;

use atelier_worker::EngineError;

use crate::provider::Provider;

/// The longest provider message kept; bodies can be large and are not ours to store whole.
const MAX_MESSAGE_CHARS: usize = 500;

/// What to do about a failed provider call.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ErrorClass {
    Retryable { retry_after: Option<Duration> },
    ProviderUnavailable,
    ContentRejected,
    InvalidRequest,
    OutcomeUnknown,
}

impl ErrorClass {
    /// Stable, for logs and metric labels.
    pub fn as_str(&self) -> &'static str {
        match self {
            Self::Retryable { .. } => "retryable",
            Self::ProviderUnavailable => "provider_unavailable",
            Self::ContentRejected => "content_rejected",
            Self::InvalidRequest => "invalid_request",
            Self::OutcomeUnknown => "outcome_unknown",
        }
    }
}

/// A classified failure of one provider call.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{provider} {}{}: {message}", class.as_str(), CodeSuffix(code))]
pub struct ProviderError {
    pub provider: Provider,
    pub class: ErrorClass,
    /// The HTTP status, when the provider answered.
    pub status: Option<u16>,
    /// The provider's own code (`moderation_blocked`, `AccountOverdueError`, `50412`...).
    pub code: Option<String>,
    pub message: String,
}

impl ProviderError {
    pub fn new(provider: Provider, class: ErrorClass, message: impl Into<String>) -> Self {
        Self {
            provider,
            class,
            status: None,
            code: None,
            message: truncate(message.into()),
        }
    }

    pub fn with_status(mut self, status: u16) -> Self {
        self.status = Some(status);
        self
    }

    pub fn with_code(mut self, code: impl Into<String>) -> Self {
        let code = code.into();
        self.code = (!code.is_empty()).then_some(code);
        self
    }

    /// A network failure, a malformed answer or a provider overload: worth another try.
    pub fn retryable(provider: Provider, message: impl Into<String>) -> Self {
        Self::new(
            provider,
            ErrorClass::Retryable { retry_after: None },
            message,
        )
    }

    pub fn is_retryable(&self) -> bool {
        matches!(self.class, ErrorClass::Retryable { .. })
    }

    /// How long the provider asked us to wait, when it said.
    pub fn retry_after(&self) -> Option<Duration> {
        match self.class {
            ErrorClass::Retryable { retry_after } => retry_after,
            _ => None,
        }
    }

    /// Replaces every occurrence of a credential in the message. Providers sometimes echo the
    /// key they were given ("Incorrect API key provided: sk-..."), so each client passes its
    /// own secrets through here before an error leaves it.
    pub fn redact(mut self, secrets: &[&str]) -> Self {
        for secret in secrets.iter().filter(|s| s.len() >= 4) {
            if self.message.contains(secret) {
                self.message = self.message.replace(secret, "***");
            }
        }
        self
    }

    /// The job-level error code the worker records.
    pub fn engine_code(&self) -> &'static str {
        match self.class {
            // The provider said "later"; a transport failure or a garbled answer is ours to name.
            ErrorClass::Retryable { .. } if self.status.is_some() => "provider_retryable",
            ErrorClass::Retryable { .. } => "upstream_error",
            ErrorClass::ProviderUnavailable => "provider_unavailable",
            ErrorClass::ContentRejected => "content_rejected",
            ErrorClass::InvalidRequest => "invalid_request",
            ErrorClass::OutcomeUnknown => "upstream_outcome_unknown",
        }
    }
}

/// The worker's view: retryable classes are retried while attempts remain; an unknown outcome
/// is not, because a new attempt would submit (and bill) again.
impl From<ProviderError> for EngineError {
    fn from(err: ProviderError) -> Self {
        let code = err.engine_code();
        let message = match (&err.class, &err.code) {
            (ErrorClass::ProviderUnavailable, _) => format!(
                "the upstream provider {} is unavailable to this deployment: {}",
                err.provider, err.message
            ),
            (_, Some(upstream)) => format!("{} ({upstream}): {}", err.provider, err.message),
            (_, None) => format!("{}: {}", err.provider, err.message),
        };
        if err.is_retryable() {
            EngineError::retryable(code, message)
        } else {
            EngineError::fatal(code, message)
        }
    }
}

/// ` (code)` when there is a code, nothing otherwise.
struct CodeSuffix<'a>(&'a Option<String>);

impl std::fmt::Display for CodeSuffix<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self.0 {
            Some(code) => write!(f, " ({code})"),
            None => Ok(()),
        }
    }
}

fn truncate(mut message: String) -> String {
    if let Some((at, _)) = message.char_indices().nth(MAX_MESSAGE_CHARS) {
        message.truncate(at);
        message.push('…');
    }
    message
}

/// The class every provider gives a bare HTTP status when its body names nothing better.
pub(crate) fn class_for_status(status: u16, retry_after: Option<Duration>) -> ErrorClass {
    match status {
        408 | 409 | 425 | 429 | 500..=599 => ErrorClass::Retryable { retry_after },
        401..=404 => ErrorClass::ProviderUnavailable,
        _ => ErrorClass::InvalidRequest,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn engine_errors_carry_the_class_and_the_providers_code() {
        let err = ProviderError::new(
            Provider::OpenAi,
            ErrorClass::ContentRejected,
            "rejected by the safety system",
        )
        .with_status(400)
        .with_code("moderation_blocked");
        let engine = EngineError::from(err);
        assert_eq!(engine.code, "content_rejected");
        assert!(!engine.retryable);
        assert_eq!(
            engine.message,
            "openai (moderation_blocked): rejected by the safety system"
        );

        let limited = ProviderError::new(
            Provider::Ark,
            ErrorClass::Retryable {
                retry_after: Some(Duration::from_secs(3)),
            },
            "slow down",
        )
        .with_status(429);
        assert_eq!(limited.retry_after(), Some(Duration::from_secs(3)));
        let engine = EngineError::from(limited);
        assert_eq!(
            (engine.code.as_str(), engine.retryable),
            ("provider_retryable", true)
        );

        let network = ProviderError::retryable(Provider::Gemini, "connection refused");
        assert_eq!(EngineError::from(network).code, "upstream_error");

        let unknown = ProviderError::new(Provider::OpenAi, ErrorClass::OutcomeUnknown, "cut");
        let engine = EngineError::from(unknown);
        assert_eq!(
            (engine.code.as_str(), engine.retryable),
            ("upstream_outcome_unknown", false)
        );

        let balance = ProviderError::new(Provider::Ark, ErrorClass::ProviderUnavailable, "overdue");
        assert_eq!(EngineError::from(balance).code, "provider_unavailable");
    }

    #[test]
    fn secrets_are_scrubbed_and_messages_bounded() {
        let err = ProviderError::new(
            Provider::OpenAi,
            ErrorClass::ProviderUnavailable,
            "Incorrect API key provided: sk-live-123456",
        )
        .redact(&["sk-live-123456"]);
        assert!(!format!("{err} {err:?}").contains("sk-live-123456"));
        assert_eq!(
            err.with_code("invalid_api_key").to_string(),
            "openai provider_unavailable (invalid_api_key): Incorrect API key provided: ***"
        );
        let long = ProviderError::retryable(Provider::Ark, "x".repeat(2000));
        assert_eq!(long.message.chars().count(), MAX_MESSAGE_CHARS + 1);
        assert_eq!(
            long.to_string().len(),
            "ark retryable: ".len() + MAX_MESSAGE_CHARS + '…'.len_utf8()
        );
    }

    #[test]
    fn bare_statuses() {
        assert!(matches!(
            class_for_status(503, None),
            ErrorClass::Retryable { .. }
        ));
        assert_eq!(class_for_status(401, None), ErrorClass::ProviderUnavailable);
        assert_eq!(class_for_status(422, None), ErrorClass::InvalidRequest);
    }
}
