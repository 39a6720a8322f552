//! Ark's error codes, sorted into classes: a pure function of the status and body, and of a
//! failed task's `error.code` (providers.md §2.7).

use std::time::Duration;

use serde::Deserialize;

use crate::error::{ErrorClass, ProviderError, class_for_status};
use crate::provider::Provider;

#[derive(Deserialize, Default)]
struct Envelope {
    #[serde(default)]
    error: Option<Detail>,
}

#[derive(Deserialize, Default)]
pub(crate) struct Detail {
    #[serde(default)]
    pub code: String,
    #[serde(default)]
    pub message: String,
}

/// The class a code names on its own, if it names one.
pub(crate) fn class_for_code(code: &str, retry_after: Option<Duration>) -> Option<ErrorClass> {
    let base = code.split('.').next().unwrap_or(code);
    if code.contains("SensitiveContentDetected")
        || code.contains("RiskDetection")
        || code.ends_with(".PrivacyInformation")
    {
        Some(ErrorClass::ContentRejected)
    } else if matches!(
        base,
        "AccountOverdueError"
            | "AccessDenied"
            | "AuthenticationError"
            | "InvalidEndpointOrModel"
            | "ModelNotOpen"
            | "InvalidEndpoint"
    ) {
        Some(ErrorClass::ProviderUnavailable)
    } else if matches!(
        base,
        "RateLimitExceeded"
            | "ModelAccountTpmRateLimitExceeded"
            | "ModelAccountRpmRateLimitExceeded"
            | "QuotaExceeded"
            | "ServerOverloaded"
            | "InternalServiceError"
    ) {
        Some(ErrorClass::Retryable { retry_after })
    } else if matches!(base, "InvalidParameter" | "MissingParameter") {
        Some(ErrorClass::InvalidRequest)
    } else {
        None
    }
}

pub fn classify(status: u16, body: &[u8], retry_after: Option<Duration>) -> ProviderError {
    let detail = serde_json::from_slice::<Envelope>(body)
        .ok()
        .and_then(|e| e.error)
        .unwrap_or_default();
    let class = class_for_code(&detail.code, retry_after)
        .unwrap_or_else(|| class_for_status(status, retry_after));
    let message = if detail.message.is_empty() {
        String::from_utf8_lossy(&body[..body.len().min(300)]).into_owned()
    } else {
        detail.message
    };
    ProviderError::new(Provider::Ark, class, message)
        .with_status(status)
        .with_code(detail.code)
}

/// A task that ended `failed`: moderation after acceptance shows up here. An unknown code is
/// the provider's failure, not the partner's, and a new task may well succeed.
pub fn classify_task_failure(code: &str, message: &str) -> ProviderError {
    let class = class_for_code(code, None).unwrap_or(ErrorClass::Retryable { retry_after: None });
    ProviderError::new(Provider::Ark, class, message).with_code(code)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn class(status: u16, code: &str) -> ErrorClass {
        let body = format!(
            r#"{{"error":{{"code":"{code}","message":"… Request id: 0217","param":"","type":"x"}}}}"#
        );
        let err = classify(status, body.as_bytes(), Some(Duration::from_secs(5)));
        assert_eq!(err.code.as_deref(), Some(code));
        err.class
    }

    #[test]
    fn documented_codes() {
        let retry = ErrorClass::Retryable {
            retry_after: Some(Duration::from_secs(5)),
        };
        assert_eq!(
            class(403, "AccountOverdueError"),
            ErrorClass::ProviderUnavailable
        );
        assert_eq!(class(403, "AccessDenied"), ErrorClass::ProviderUnavailable);
        assert_eq!(
            class(401, "AuthenticationError"),
            ErrorClass::ProviderUnavailable
        );
        assert_eq!(
            class(404, "InvalidEndpointOrModel.NotFound"),
            ErrorClass::ProviderUnavailable
        );
        assert_eq!(class(404, "ModelNotOpen"), ErrorClass::ProviderUnavailable);
        assert_eq!(
            class(400, "InputTextSensitiveContentDetected"),
            ErrorClass::ContentRejected
        );
        assert_eq!(
            class(400, "SensitiveContentDetected.Violence"),
            ErrorClass::ContentRejected
        );
        assert_eq!(
            class(400, "InputImageSensitiveContentDetected.PrivacyInformation"),
            ErrorClass::ContentRejected
        );
        assert_eq!(
            class(400, "InputTextRiskDetection"),
            ErrorClass::ContentRejected
        );
        assert_eq!(
            class(400, "InvalidParameter.Ratio"),
            ErrorClass::InvalidRequest
        );
        assert_eq!(class(400, "MissingParameter"), ErrorClass::InvalidRequest);
        assert_eq!(class(429, "RateLimitExceeded.EndpointRPMExceeded"), retry);
        assert_eq!(class(429, "ServerOverloaded"), retry);
        assert_eq!(class(429, "QuotaExceeded"), retry);
        assert_eq!(class(503, "SomethingNew"), retry);
    }

    #[test]
    fn the_observed_balance_body() {
        let body = br#"{"error":{"code":"AccountOverdueError","message":"The request failed because your account has an overdue balance. Request id: 0217","param":"","type":"Forbidden"}}"#;
        let err = classify(403, body, None);
        assert_eq!(err.class, ErrorClass::ProviderUnavailable);
        assert!(err.message.starts_with("The request failed"));
    }

    #[test]
    fn failed_tasks() {
        let err = classify_task_failure("OutputVideoSensitiveContentDetected", "blocked");
        assert_eq!(err.class, ErrorClass::ContentRejected);
        assert!(classify_task_failure("InternalError", "boom").is_retryable());
    }
}
