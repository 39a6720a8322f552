//! The Volcengine visual API's two error layers, sorted into classes: the gateway's
//! `ResponseMetadata.Error` (signing, access, throttling) and the service's business `code`
//! (moderation, limits) (providers.md §5.1, §5.3).

use serde_json::Value;

use crate::error::{ErrorClass, ProviderError, class_for_status};
use crate::provider::Provider;

pub const OK: i64 = 10000;

/// The class of a business code, when it names one.
pub fn class_for_code(code: i64) -> Option<ErrorClass> {
    match code {
        // Input image, input text, sensitive words, output text; 50511 (output image) is
        // documented as retryable because a new generation may pass, but the task that hit it
        // is over: the engine may submit once more, keeping the code.
        50411 | 50412 | 50413 | 50511 | 50512 => Some(ErrorClass::ContentRejected),
        // QPS and concurrency limits.
        50429 | 50430 => Some(ErrorClass::Retryable { retry_after: None }),
        // Internal errors, which the doc does not call retryable; a later poll or attempt is
        // still the only sensible move.
        50500 | 50501 => Some(ErrorClass::Retryable { retry_after: None }),
        _ => None,
    }
}

pub fn classify(status: u16, body: &[u8]) -> ProviderError {
    let parsed: Value = serde_json::from_slice(body).unwrap_or(Value::Null);
    let gateway = &parsed["ResponseMetadata"]["Error"];
    if let Some(code) = gateway["Code"].as_str() {
        let class = if code.contains("LimitExceeded")
            || code == "ServiceUnavailable"
            || code == "InternalError"
        {
            ErrorClass::Retryable { retry_after: None }
        } else if status == 400 && code.starts_with("Invalid") && !code.contains("AccessKey") {
            ErrorClass::InvalidRequest
        } else {
            // SignatureDoesNotMatch, InvalidAccessKey, AccessDenied, an unpaid or unopened
            // service: the operator's credentials or account.
            ErrorClass::ProviderUnavailable
        };
        let message = gateway["Message"].as_str().unwrap_or(code);
        return ProviderError::new(Provider::Jimeng, class, message)
            .with_status(status)
            .with_code(code);
    }
    let code = parsed["code"].as_i64().unwrap_or_default();
    let message = parsed["message"]
        .as_str()
        .map(str::to_owned)
        .unwrap_or_else(|| String::from_utf8_lossy(&body[..body.len().min(300)]).into_owned());
    let class = class_for_code(code).unwrap_or_else(|| class_for_status(status, None));
    let error = ProviderError::new(Provider::Jimeng, class, message).with_status(status);
    if code == 0 {
        error
    } else {
        error.with_code(code.to_string())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn business(status: u16, code: i64, message: &str) -> ErrorClass {
        let body = format!(
            r#"{{"code":{code},"message":"{message}","request_id":"2024","status":{code},"data":null}}"#
        );
        let err = classify(status, body.as_bytes());
        assert_eq!(err.code, Some(code.to_string()));
        err.class
    }

    #[test]
    fn documented_business_codes() {
        assert_eq!(
            business(400, 50411, "Pre Img Risk Not Pass"),
            ErrorClass::ContentRejected
        );
        assert_eq!(
            business(400, 50412, "Text Risk Not Pass"),
            ErrorClass::ContentRejected
        );
        assert_eq!(
            business(400, 50413, "Post Text Risk Not Pass"),
            ErrorClass::ContentRejected
        );
        assert_eq!(
            business(400, 50511, "Post Img Risk Not Pass"),
            ErrorClass::ContentRejected
        );
        assert!(matches!(
            business(429, 50429, "Request Has Reached API Limit"),
            ErrorClass::Retryable { .. }
        ));
        assert!(matches!(
            business(429, 50430, "Request Has Reached API Concurrent Limit"),
            ErrorClass::Retryable { .. }
        ));
        assert!(matches!(
            business(500, 50500, "Internal Error"),
            ErrorClass::Retryable { .. }
        ));
        assert_eq!(
            business(400, 50200, "Invalid Param"),
            ErrorClass::InvalidRequest
        );
    }

    #[test]
    fn gateway_errors() {
        let body = br#"{"ResponseMetadata":{"RequestId":"2025","Action":"CVSync2AsyncSubmitTask","Version":"2022-08-31","Service":"cv","Region":"cn-north-1","Error":{"Code":"SignatureDoesNotMatch","Message":"The request signature we calculated does not match the signature you provided."}}}"#;
        let err = classify(401, body);
        assert_eq!(
            (err.class, err.code.as_deref()),
            (
                ErrorClass::ProviderUnavailable,
                Some("SignatureDoesNotMatch")
            )
        );
        let body =
            br#"{"ResponseMetadata":{"Error":{"Code":"AccessDenied","Message":"Access Denied"}}}"#;
        assert_eq!(classify(403, body).class, ErrorClass::ProviderUnavailable);
        let body =
            br#"{"ResponseMetadata":{"Error":{"Code":"FlowLimitExceeded","Message":"slow down"}}}"#;
        assert!(classify(429, body).is_retryable());
    }
}
