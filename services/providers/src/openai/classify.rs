//! OpenAI's (and OpenAI-compatible relays') error bodies, sorted into classes: a pure function
//! of the status and body (providers.md §1.4, §1.5).

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
struct Detail {
    #[serde(default)]
    message: Option<String>,
    #[serde(default, rename = "type")]
    kind: Option<String>,
    /// A string on OpenAI, sometimes a number on relays.
    #[serde(default)]
    code: Option<serde_json::Value>,
}

/// Balance and quota codes: OpenAI's own, then new-api/one-api relays'.
const UNAVAILABLE_CODES: &[&str] = &[
    "insufficient_quota",
    "insufficient_user_quota",
    "pre_consume_token_quota_failed",
    "model_not_found",
    "invalid_api_key",
    "billing_hard_limit_reached",
];

const REJECTED_CODES: &[&str] = &[
    "moderation_blocked",
    "content_policy_violation",
    "content_filter",
];

pub fn classify(status: u16, body: &[u8], retry_after: Option<Duration>) -> ProviderError {
    let detail = serde_json::from_slice::<Envelope>(body)
        .ok()
        .and_then(|e| e.error)
        .unwrap_or_default();
    let code = match &detail.code {
        Some(serde_json::Value::String(s)) => s.clone(),
        Some(serde_json::Value::Number(n)) => n.to_string(),
        _ => String::new(),
    };
    let kind = detail.kind.unwrap_or_default();
    let message = detail
        .message
        .unwrap_or_else(|| String::from_utf8_lossy(&body[..body.len().min(300)]).into_owned());
    let is = |list: &[&str]| list.contains(&code.as_str()) || list.contains(&kind.as_str());
    let class = if is(UNAVAILABLE_CODES) {
        // Checked before 429: an exhausted quota answers 429 too, and waiting will not refill it.
        ErrorClass::ProviderUnavailable
    } else if is(REJECTED_CODES) || (status == 400 && message.contains("safety system")) {
        ErrorClass::ContentRejected
    } else {
        class_for_status(status, retry_after)
    };
    let code = if code.is_empty() { kind } else { code };
    ProviderError::new(Provider::OpenAi, class, message)
        .with_status(status)
        .with_code(code)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn class(status: u16, body: &str) -> (ErrorClass, Option<String>) {
        let err = classify(status, body.as_bytes(), Some(Duration::from_secs(2)));
        (err.class, err.code)
    }

    #[test]
    fn documented_bodies() {
        // Moderation, as observed through an Azure-backed relay (ZJT#480).
        let (c, code) = class(
            400,
            r#"{"error":{"message":"Your request was rejected by the safety system. safety_violations=[violence].","type":"image_generation_user_error","param":null,"code":"moderation_blocked"}}"#,
        );
        assert_eq!(
            (c, code.as_deref()),
            (ErrorClass::ContentRejected, Some("moderation_blocked"))
        );
        // Older dall-e refusal without a code.
        let (c, _) = class(
            400,
            r#"{"error":{"message":"Your request was rejected as a result of our safety system.","type":"invalid_request_error","param":null,"code":null}}"#,
        );
        assert_eq!(c, ErrorClass::ContentRejected);
        // Insufficient balance is a 429 that waiting will not fix.
        let (c, code) = class(
            429,
            r#"{"error":{"message":"You exceeded your current quota, please check your plan and billing details.","type":"insufficient_quota","param":null,"code":"insufficient_quota"}}"#,
        );
        assert_eq!(
            (c, code.as_deref()),
            (ErrorClass::ProviderUnavailable, Some("insufficient_quota"))
        );
        let (c, _) = class(
            429,
            r#"{"error":{"message":"Rate limit reached","type":"requests","param":null,"code":"rate_limit_exceeded"}}"#,
        );
        assert_eq!(
            c,
            ErrorClass::Retryable {
                retry_after: Some(Duration::from_secs(2))
            }
        );
        let (c, _) = class(
            401,
            r#"{"error":{"message":"Incorrect API key provided","type":"invalid_request_error","param":null,"code":"invalid_api_key"}}"#,
        );
        assert_eq!(c, ErrorClass::ProviderUnavailable);
        let (c, _) = class(
            400,
            r#"{"error":{"message":"Invalid size","type":"invalid_request_error","param":"size","code":"invalid_value"}}"#,
        );
        assert_eq!(c, ErrorClass::InvalidRequest);
        let (c, _) = class(500, "<html>bad gateway</html>");
        assert!(matches!(c, ErrorClass::Retryable { .. }));
    }

    #[test]
    fn relay_bodies() {
        let (c, code) = class(
            403,
            r#"{"error":{"message":"user quota is not enough (request id: 2025)","type":"new_api_error","code":"insufficient_user_quota"}}"#,
        );
        assert_eq!(
            (c, code.as_deref()),
            (
                ErrorClass::ProviderUnavailable,
                Some("insufficient_user_quota")
            )
        );
        let (c, _) = class(
            503,
            r#"{"error":{"message":"no available channel for model gpt-image-1","type":"new_api_error","code":"model_not_found"}}"#,
        );
        assert_eq!(c, ErrorClass::ProviderUnavailable);
        let (c, _) = class(
            401,
            r#"{"error":{"message":"无效的令牌","type":"new_api_error","code":""}}"#,
        );
        assert_eq!(c, ErrorClass::ProviderUnavailable);
    }
}
