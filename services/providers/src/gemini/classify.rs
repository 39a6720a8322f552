//! Gemini's error bodies and its HTTP-200 refusals, sorted into classes (providers.md §3).

use std::time::Duration;

use serde_json::Value;

use crate::error::{ErrorClass, ProviderError, class_for_status};
use crate::provider::Provider;

/// `finishReason` values that mean moderation or recitation stopped the image.
pub const REFUSAL_FINISH_REASONS: &[&str] = &[
    "IMAGE_SAFETY",
    "IMAGE_PROHIBITED_CONTENT",
    "PROHIBITED_CONTENT",
    "SAFETY",
    "BLOCKLIST",
    "SPII",
    "IMAGE_RECITATION",
    "RECITATION",
    "IMAGE_OTHER",
    "NO_IMAGE",
];

/// `{"error":{"code","message","status","details"}}`: `RetryInfo.retryDelay` is honoured, and a
/// daily quota (`…PerDay…`) will not reset soon enough to retry.
pub fn classify(status: u16, body: &[u8], retry_after: Option<Duration>) -> ProviderError {
    let parsed: Value = serde_json::from_slice(body).unwrap_or(Value::Null);
    let error = &parsed["error"];
    let rpc_status = error["status"].as_str().unwrap_or_default();
    let message = error["message"]
        .as_str()
        .map(str::to_owned)
        .unwrap_or_else(|| String::from_utf8_lossy(&body[..body.len().min(300)]).into_owned());
    let details = error["details"].as_array().cloned().unwrap_or_default();
    let retry_delay = details
        .iter()
        .filter_map(|d| d["retryDelay"].as_str())
        .find_map(parse_duration)
        .or(retry_after);
    let daily = details.iter().any(|d| {
        d["violations"]
            .as_array()
            .into_iter()
            .flatten()
            .any(|v| v["quotaId"].as_str().is_some_and(|q| q.contains("PerDay")))
    });
    let class = match rpc_status {
        "RESOURCE_EXHAUSTED" if daily => ErrorClass::ProviderUnavailable,
        "RESOURCE_EXHAUSTED" | "UNAVAILABLE" | "INTERNAL" | "DEADLINE_EXCEEDED" => {
            ErrorClass::Retryable {
                retry_after: retry_delay,
            }
        }
        // Billing or region: the free tier is not available where we run.
        "FAILED_PRECONDITION" | "PERMISSION_DENIED" | "UNAUTHENTICATED" | "NOT_FOUND" => {
            ErrorClass::ProviderUnavailable
        }
        "INVALID_ARGUMENT" if message.contains("API key") => ErrorClass::ProviderUnavailable,
        "INVALID_ARGUMENT" => ErrorClass::InvalidRequest,
        _ => class_for_status(status, retry_delay),
    };
    ProviderError::new(Provider::Gemini, class, message)
        .with_status(status)
        .with_code(rpc_status)
}

/// Protobuf JSON durations: `"27s"`, `"1.5s"`.
fn parse_duration(text: &str) -> Option<Duration> {
    let secs: f64 = text.strip_suffix('s')?.parse().ok()?;
    (secs.is_finite() && secs >= 0.0).then(|| Duration::from_secs_f64(secs))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rate_limit_with_retry_info() {
        let body = br#"{"error":{"code":429,"message":"Resource has been exhausted","status":"RESOURCE_EXHAUSTED","details":[{"@type":"type.googleapis.com/google.rpc.QuotaFailure","violations":[{"quotaId":"GenerateRequestsPerMinutePerProjectPerModel"}]},{"@type":"type.googleapis.com/google.rpc.RetryInfo","retryDelay":"27s"}]}}"#;
        let err = classify(429, body, None);
        assert_eq!(
            err.class,
            ErrorClass::Retryable {
                retry_after: Some(Duration::from_secs(27))
            }
        );
        assert_eq!(err.code.as_deref(), Some("RESOURCE_EXHAUSTED"));
    }

    #[test]
    fn daily_quota_and_account_problems_are_the_operators() {
        let body = br#"{"error":{"code":429,"message":"Quota exceeded","status":"RESOURCE_EXHAUSTED","details":[{"@type":"type.googleapis.com/google.rpc.QuotaFailure","violations":[{"quotaId":"GenerateRequestsPerDayPerProjectPerModel-FreeTier"}]}]}}"#;
        assert_eq!(
            classify(429, body, None).class,
            ErrorClass::ProviderUnavailable
        );
        let body = br#"{"error":{"code":400,"message":"User location is not supported for the API use.","status":"FAILED_PRECONDITION"}}"#;
        assert_eq!(
            classify(400, body, None).class,
            ErrorClass::ProviderUnavailable
        );
        let body = br#"{"error":{"code":400,"message":"API key not valid. Please pass a valid API key.","status":"INVALID_ARGUMENT"}}"#;
        assert_eq!(
            classify(400, body, None).class,
            ErrorClass::ProviderUnavailable
        );
        let body =
            br#"{"error":{"code":404,"message":"models/x is not found","status":"NOT_FOUND"}}"#;
        assert_eq!(
            classify(404, body, None).class,
            ErrorClass::ProviderUnavailable
        );
    }

    #[test]
    fn bad_arguments_and_outages() {
        let body = br#"{"error":{"code":400,"message":"Invalid aspect ratio","status":"INVALID_ARGUMENT"}}"#;
        assert_eq!(classify(400, body, None).class, ErrorClass::InvalidRequest);
        let body = br#"{"error":{"code":503,"message":"The model is overloaded.","status":"UNAVAILABLE"}}"#;
        assert!(classify(503, body, None).is_retryable());
        assert_eq!(parse_duration("1.5s"), Some(Duration::from_millis(1500)));
    }
}
