//! The native API's error type: each variant maps to one status and a `{"error": "..."}`
//! body. Server errors carry no internals; they are logged where they happen.

use axum::{
    Json,
    http::{HeaderMap, HeaderValue, StatusCode, header},
    response::{IntoResponse, Response},
};

#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    #[error("{0}")]
    BadRequest(String),
    #[error("{0}")]
    Unauthorized(&'static str),
    #[error("{0}")]
    NotFound(&'static str),
    #[error("{0}")]
    Conflict(String),
    #[error("{0}")]
    PayloadTooLarge(String),
    #[error("{0}")]
    InsufficientCredits(String),
    /// Over the client's create rate or queued cap (issue #16): 429 with `Retry-After` and the
    /// `RateLimit-*` headers on every face.
    #[error("{}", .0.message)]
    RateLimited(Box<crate::limits::Refusal>),
    /// Too many of the client's long-lived requests at once (event streams): 429, retry in 5 s.
    #[error("{0}")]
    TooMany(String),
    /// The database is unreachable: the client should retry shortly.
    #[error("service temporarily unavailable")]
    Unavailable,
    #[error("internal server error")]
    Internal(#[source] anyhow::Error),
}

impl ApiError {
    pub fn status(&self) -> StatusCode {
        match self {
            Self::BadRequest(_) => StatusCode::BAD_REQUEST,
            Self::Unauthorized(_) => StatusCode::UNAUTHORIZED,
            Self::NotFound(_) => StatusCode::NOT_FOUND,
            Self::Conflict(_) => StatusCode::CONFLICT,
            Self::PayloadTooLarge(_) => StatusCode::PAYLOAD_TOO_LARGE,
            Self::InsufficientCredits(_) => StatusCode::PAYMENT_REQUIRED,
            Self::RateLimited(_) | Self::TooMany(_) => StatusCode::TOO_MANY_REQUESTS,
            Self::Unavailable => StatusCode::SERVICE_UNAVAILABLE,
            Self::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    /// The headers every face's answer to this error carries: when to retry, and the
    /// client's quota after a rate refusal.
    pub fn headers(&self) -> HeaderMap {
        let mut headers = HeaderMap::new();
        match self {
            Self::Unavailable | Self::TooMany(_) => {
                headers.insert(header::RETRY_AFTER, HeaderValue::from_static("5"));
            }
            Self::RateLimited(refusal) => {
                headers.insert(header::RETRY_AFTER, HeaderValue::from(refusal.retry_after));
                refusal.quota.write(&mut headers);
            }
            _ => {}
        }
        headers
    }
}

/// SQLSTATEs PostgreSQL raises for text it cannot store: a NUL byte in a `text` value
/// (22021) or a `\u0000` escape in `jsonb` (22P05). Only a request's own strings reach those
/// binds, so they are the request's fault, not the server's.
const UNSTORABLE_TEXT: [&str; 2] = ["22021", "22P05"];

impl From<sqlx::Error> for ApiError {
    fn from(err: sqlx::Error) -> Self {
        match err {
            sqlx::Error::PoolTimedOut | sqlx::Error::Io(_) | sqlx::Error::PoolClosed => {
                Self::Unavailable
            }
            sqlx::Error::Database(db)
                if db.code().is_some_and(|c| UNSTORABLE_TEXT.contains(&c.as_ref())) =>
            {
                Self::BadRequest(
                    "request: a text field contains a NUL character (\\u0000), which cannot be stored"
                        .to_owned(),
                )
            }
            other => Self::Internal(anyhow::Error::new(other).context("database error")),
        }
    }
}

impl From<anyhow::Error> for ApiError {
    fn from(err: anyhow::Error) -> Self {
        Self::Internal(err)
    }
}

/// The full cause of a server error, for the request log only.
#[derive(Clone, Debug)]
pub struct ErrorDetail(pub String);

#[derive(serde::Serialize, utoipa::ToSchema)]
pub struct ErrorBody {
    /// What went wrong, naming the offending field where there is one.
    pub error: String,
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let status = self.status();
        let mut response = (
            status,
            self.headers(),
            Json(ErrorBody {
                error: self.to_string(),
            }),
        )
            .into_response();
        // The cause travels to the logging middleware, never into the body.
        if let Self::Internal(err) = self {
            response
                .extensions_mut()
                .insert(ErrorDetail(format!("{err:#}")));
        }
        response
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn server_errors_hide_their_cause() {
        let err = ApiError::Internal(anyhow::anyhow!("password authentication failed for root"));
        assert_eq!(err.to_string(), "internal server error");
        assert_eq!(err.status(), StatusCode::INTERNAL_SERVER_ERROR);
    }
}
