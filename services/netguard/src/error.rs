//! Error types for guarded requests, and the retry rule callers share.

use std::error::Error as StdError;

use reqwest::StatusCode;

use crate::classify::BlockReason;

/// A URL or destination the guard refuses. Never worth retrying: the same input fails the same
/// way.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum GuardError {
    #[error("invalid url: {0}")]
    InvalidUrl(#[from] url::ParseError),
    #[error("url scheme {0:?} is not allowed, only http and https are")]
    Scheme(String),
    #[error("urls with credentials are not allowed")]
    Credentials,
    #[error("url has no host")]
    NoHost,
    #[error("destination {host} is blocked: {reason}")]
    Blocked { host: String, reason: BlockReason },
}

impl GuardError {
    pub fn is_retryable(&self) -> bool {
        false
    }

    /// The refused address, when the refusal was about where the request would go.
    pub fn block_reason(&self) -> Option<&BlockReason> {
        match self {
            GuardError::Blocked { reason, .. } => Some(reason),
            _ => None,
        }
    }
}

/// Why a guarded request produced no usable response.
///
/// Messages carry the whole source chain flattened, because the interesting part of a reqwest
/// error ("connection refused", "dns error") sits several sources deep.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum FetchError {
    #[error(transparent)]
    Guard(#[from] GuardError),
    #[error("timed out: {0}")]
    Timeout(String),
    #[error("connection failed: {0}")]
    Connect(String),
    #[error("redirects are not followed (Location: {location})")]
    Redirect {
        status: StatusCode,
        location: String,
    },
    #[error("unexpected http status {status}")]
    Status { status: StatusCode },
    #[error("response body exceeds the {limit} byte limit")]
    TooLarge { limit: u64 },
    #[error("http error: {0}")]
    Http(String),
}

impl FetchError {
    /// Whether the same request might succeed later. Refusals, redirects, oversized bodies and
    /// client errors are final; timeouts, connection failures, 5xx, 408 and 429 are not.
    pub fn is_retryable(&self) -> bool {
        match self {
            FetchError::Guard(_) | FetchError::Redirect { .. } | FetchError::TooLarge { .. } => {
                false
            }
            FetchError::Status { status } => status_is_retryable(*status),
            FetchError::Timeout(_) | FetchError::Connect(_) | FetchError::Http(_) => true,
        }
    }

    /// True when the guard refused the destination (as opposed to it failing to answer).
    pub fn is_blocked(&self) -> bool {
        matches!(self, FetchError::Guard(GuardError::Blocked { .. }))
    }

    pub fn is_timeout(&self) -> bool {
        matches!(self, FetchError::Timeout(_))
    }

    /// The status that was answered, for errors that got as far as a response.
    pub fn status(&self) -> Option<StatusCode> {
        match self {
            FetchError::Redirect { status, .. } | FetchError::Status { status } => Some(*status),
            _ => None,
        }
    }

    /// Sorts a reqwest failure, recognising the resolver's refusal anywhere in its chain.
    pub fn from_reqwest(err: &reqwest::Error) -> Self {
        if let Some(guard) = guard_error(err) {
            return FetchError::Guard(guard.clone());
        }
        let chain = error_chain(err);
        if err.is_timeout() {
            FetchError::Timeout(chain)
        } else if err.is_connect() {
            FetchError::Connect(chain)
        } else {
            FetchError::Http(chain)
        }
    }
}

impl From<reqwest::Error> for FetchError {
    fn from(err: reqwest::Error) -> Self {
        FetchError::from_reqwest(&err)
    }
}

/// Whether a response status is worth retrying: server errors, 408 and 429.
pub fn status_is_retryable(status: StatusCode) -> bool {
    status.is_server_error()
        || status == StatusCode::REQUEST_TIMEOUT
        || status == StatusCode::TOO_MANY_REQUESTS
}

/// Finds the guard's refusal in an error's source chain. The resolver's error reaches callers
/// wrapped by hyper and reqwest, so a plain downcast of the outer error would miss it.
pub fn guard_error<'a>(err: &'a (dyn StdError + 'static)) -> Option<&'a GuardError> {
    let mut current = Some(err);
    while let Some(e) = current {
        if let Some(guard) = e.downcast_ref::<GuardError>() {
            return Some(guard);
        }
        current = e.source();
    }
    None
}

/// The guard's refusal message, when a reqwest error was caused by a blocked destination.
pub fn blocked_reason(err: &reqwest::Error) -> Option<String> {
    match guard_error(err)? {
        blocked @ GuardError::Blocked { .. } => Some(blocked.to_string()),
        _ => None,
    }
}

/// "outer: inner: innermost", skipping layers that only repeat the one below.
fn error_chain(err: &(dyn StdError + 'static)) -> String {
    let mut out = err.to_string();
    let mut current = err.source();
    while let Some(e) = current {
        let msg = e.to_string();
        if !out.ends_with(&msg) {
            out.push_str(": ");
            out.push_str(&msg);
        }
        current = e.source();
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::classify::AddressClass;

    #[test]
    fn retry_rules() {
        let blocked = FetchError::Guard(GuardError::Blocked {
            host: "localhost".into(),
            reason: BlockReason {
                ip: "127.0.0.1".parse().unwrap(),
                class: AddressClass::Loopback,
            },
        });
        assert!(blocked.is_blocked());
        let fatal = [
            blocked,
            FetchError::Guard(GuardError::Scheme("file".into())),
            FetchError::Guard(GuardError::Credentials),
            FetchError::Redirect {
                status: StatusCode::FOUND,
                location: "http://169.254.169.254/".into(),
            },
            FetchError::TooLarge { limit: 10 },
            FetchError::Status {
                status: StatusCode::NOT_FOUND,
            },
            FetchError::Status {
                status: StatusCode::GONE,
            },
        ];
        for err in fatal {
            assert!(!err.is_retryable(), "{err}");
        }
        let retryable = [
            FetchError::Timeout("x".into()),
            FetchError::Connect("x".into()),
            FetchError::Status {
                status: StatusCode::INTERNAL_SERVER_ERROR,
            },
            FetchError::Status {
                status: StatusCode::SERVICE_UNAVAILABLE,
            },
            FetchError::Status {
                status: StatusCode::REQUEST_TIMEOUT,
            },
            FetchError::Status {
                status: StatusCode::TOO_MANY_REQUESTS,
            },
        ];
        for err in retryable {
            assert!(err.is_retryable(), "{err}");
        }
    }

    #[test]
    fn messages() {
        let err = FetchError::Redirect {
            status: StatusCode::FOUND,
            location: "http://169.254.169.254/".into(),
        };
        assert_eq!(
            err.to_string(),
            "redirects are not followed (Location: http://169.254.169.254/)"
        );
        let err = FetchError::Guard(GuardError::Blocked {
            host: "metadata.internal".into(),
            reason: BlockReason {
                ip: "169.254.169.254".parse().unwrap(),
                class: AddressClass::LinkLocal,
            },
        });
        assert_eq!(
            err.to_string(),
            "destination metadata.internal is blocked: 169.254.169.254 is a link-local address"
        );
    }
}
