//! The partner-facing faces that are folders of their own: each translates requests and
//! answers of one published API over the shared job core (store, lifecycle, credits).

pub mod console;
pub mod creations;

use axum::response::{IntoResponse, Response};

use crate::error::ApiError;

/// A core error in the shape of the face that owns `path`: the tasks envelope
/// `{code, msg, data}`, the creations `{"detail": {code, message}}`, or the native
/// `{"error"}`. For answers made before or outside a face's handler: extractor rejections,
/// unknown routes, load shedding and timeouts at the edge.
pub fn answer(path: &str, err: ApiError) -> Response {
    let under = |prefix: &str| {
        path.strip_prefix(prefix)
            .is_some_and(|rest| rest.is_empty() || rest.starts_with('/'))
    };
    if under("/api/v1/tasks") {
        crate::tasks::from_api_error(err)
    } else if under("/openapi/v1") {
        creations::error::CreationError::from(err).into_response()
    } else {
        err.into_response()
    }
}
