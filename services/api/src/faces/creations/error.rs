//! This face's one error shape, `{"detail": {"code", "message", ...}}`: the FastAPI style that
//! KPainter's own clients read (`payload.detail.message`), with a stable machine-readable code.
//! Validation errors also name the field and, where there is a list, the allowed values.

use axum::{
    Json,
    http::{HeaderMap, HeaderValue, StatusCode, header},
    response::{IntoResponse, Response},
};
use serde::Serialize;
use utoipa::ToSchema;

use crate::error::{ApiError, ErrorDetail};

#[derive(Debug, Serialize, ToSchema)]
#[schema(as = CreationErrorDetail)]
pub struct Detail {
    /// `invalid_api_key`, `validation_failed`, `insufficient_credits`, `not_found`,
    /// `idempotency_conflict`, `job_not_cancellable`, `rate_limited`, `unavailable`, `internal`.
    pub code: &'static str,
    pub message: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub field: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub allowed: Option<Vec<String>>,
    /// For `job_not_cancellable`: the state the job is in.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub status: Option<String>,
}

/// Named apart from the native `ErrorBody`: both faces share one document.
#[derive(Debug, Serialize, ToSchema)]
#[schema(as = CreationErrorBody)]
pub struct ErrorBody {
    pub detail: Detail,
}

/// Boxed: errors travel through every `Result` of the face, and most of those are `Ok`.
#[derive(Debug)]
pub struct CreationError(Box<Inner>);

#[derive(Debug)]
struct Inner {
    status: StatusCode,
    detail: Detail,
    /// The cause of a server error, for the request log only.
    cause: Option<String>,
    /// `Retry-After` and the `RateLimit-*` headers of a refusal.
    headers: HeaderMap,
}

impl CreationError {
    fn new(status: StatusCode, code: &'static str, message: impl Into<String>) -> Self {
        Self(Box::new(Inner {
            status,
            detail: Detail {
                code,
                message: message.into(),
                field: None,
                allowed: None,
                status: None,
            },
            cause: None,
            headers: HeaderMap::new(),
        }))
    }

    /// A field that breaks a rule; `allowed` lists the values that would pass, if a list.
    pub fn invalid(field: &str, message: impl Into<String>, allowed: Option<Vec<String>>) -> Self {
        let mut err = Self::new(StatusCode::BAD_REQUEST, "validation_failed", message);
        err.0.detail.field = Some(field.to_owned());
        err.0.detail.allowed = allowed;
        err
    }

    pub fn code(&self) -> &'static str {
        self.0.detail.code
    }

    pub fn field(&self) -> Option<&str> {
        self.0.detail.field.as_deref()
    }

    pub fn not_found(what: &str) -> Self {
        Self::new(
            StatusCode::NOT_FOUND,
            "not_found",
            format!("{what} not found"),
        )
    }

    pub fn not_cancellable(status: &str) -> Self {
        let mut err = Self::new(
            StatusCode::CONFLICT,
            "job_not_cancellable",
            format!("the job already {status}; it can no longer be cancelled"),
        );
        err.0.detail.status = Some(status.to_owned());
        err
    }
}

impl From<ApiError> for CreationError {
    fn from(err: ApiError) -> Self {
        let status = err.status();
        let headers = err.headers();
        let mut answer = match err {
            ApiError::BadRequest(message) => {
                let field = message
                    .split(':')
                    .next()
                    .unwrap_or_default()
                    .trim()
                    .to_owned();
                Self::invalid(&field, message, None)
            }
            ApiError::Unauthorized(message) => Self::new(status, "invalid_api_key", message),
            ApiError::NotFound(message) => Self::new(status, "not_found", message),
            ApiError::Conflict(message) => Self::new(status, "idempotency_conflict", message),
            ApiError::PayloadTooLarge(message) => Self::invalid("body", message, None),
            ApiError::InsufficientCredits(message) => {
                Self::new(status, "insufficient_credits", message)
            }
            ApiError::Unavailable => {
                Self::new(status, "unavailable", "service temporarily unavailable")
            }
            ApiError::RateLimited(refusal) => Self::new(status, "rate_limited", refusal.message),
            ApiError::TooMany(message) => Self::new(status, "rate_limited", message),
            ApiError::Internal(cause) => {
                let mut err = Self::new(status, "internal", "internal server error");
                err.0.cause = Some(format!("{cause:#}"));
                err
            }
        };
        answer.0.headers = headers;
        answer
    }
}

impl From<sqlx::Error> for CreationError {
    fn from(err: sqlx::Error) -> Self {
        ApiError::from(err).into()
    }
}

impl From<anyhow::Error> for CreationError {
    fn from(err: anyhow::Error) -> Self {
        ApiError::Internal(err).into()
    }
}

impl IntoResponse for CreationError {
    fn into_response(self) -> Response {
        let Inner {
            status,
            detail,
            cause,
            headers,
        } = *self.0;
        let mut response = (status, headers, Json(ErrorBody { detail })).into_response();
        if status == StatusCode::UNAUTHORIZED {
            response.headers_mut().insert(
                header::WWW_AUTHENTICATE,
                HeaderValue::from_static("ApiKey header=\"X-KGP-Api-Key\""),
            );
        }
        if let Some(cause) = cause {
            response.extensions_mut().insert(ErrorDetail(cause));
        }
        response
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn core_errors_keep_their_status_and_get_a_code() {
        let err = CreationError::from(ApiError::BadRequest("webhookUrl: not allowed".into()));
        assert_eq!(err.0.status, StatusCode::BAD_REQUEST);
        assert_eq!(err.0.detail.field.as_deref(), Some("webhookUrl"));
        let err = CreationError::from(ApiError::Internal(anyhow::anyhow!("db password")));
        assert_eq!(err.0.detail.message, "internal server error");
        assert_eq!(err.0.cause.as_deref(), Some("db password"));
        let err = CreationError::from(ApiError::InsufficientCredits("x".into()));
        assert_eq!(
            (err.0.status.as_u16(), err.0.detail.code),
            (402, "insufficient_credits")
        );
    }
}
