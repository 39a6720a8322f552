//! What a request may cost at the HTTP edge (issue #14, M6): requests in flight are bounded
//! and the excess is shed at once (503 with `Retry-After`, never a queue); an ordinary request
//! has a deadline; an upload has a cap of its own and a body that must keep moving. The
//! connection-level bound (the request head's deadline) is in `serve`.

use std::{sync::Arc, time::Duration};

use axum::{
    body::Body,
    extract::{Request, State},
    http::Method,
    middleware::Next,
    response::Response,
};
use futures::StreamExt;
use tokio::sync::Semaphore;

use crate::{config::HttpLimits, error::ApiError, faces};

/// The edge's budgets, shared by every request of one api.
#[derive(Clone)]
pub struct Edge {
    limits: HttpLimits,
    requests: Arc<Semaphore>,
    uploads: Arc<Semaphore>,
}

impl Edge {
    pub fn new(limits: HttpLimits) -> Self {
        Self {
            requests: Arc::new(Semaphore::new(limits.max_requests)),
            uploads: Arc::new(Semaphore::new(limits.max_uploads)),
            limits,
        }
    }
}

/// How the edge treats a request, by route.
#[derive(Debug, PartialEq, Eq)]
enum Kind {
    /// Liveness, readiness and metrics: never shed, so an api that is busy is not also
    /// restarted or taken out of its service by its probes.
    Probe,
    /// `POST /api/v1/assets`: a streamed upload or a URL registration. Its pace is the body's
    /// or the remote file's, so it has no total deadline, but a cap and a body-idle deadline.
    Upload,
    Ordinary,
}

fn kind(method: &Method, path: &str) -> Kind {
    match path {
        "/healthz" | "/readyz" | "/metrics" => Kind::Probe,
        "/api/v1/assets" if method == Method::POST => Kind::Upload,
        _ => Kind::Ordinary,
    }
}

/// The middleware: sheds beyond the budgets, bounds time. Its refusals are in the face's
/// shape, logged by the request log (503) and here (why).
pub async fn limit(State(edge): State<Edge>, request: Request, next: Next) -> Response {
    let path = request.uri().path().to_owned();
    let kind = kind(request.method(), &path);
    if kind == Kind::Probe {
        return next.run(request).await;
    }
    let Ok(_request_permit) = edge.requests.clone().try_acquire_owned() else {
        tracing::warn!(
            limit = edge.limits.max_requests,
            "request shed: too many requests in flight"
        );
        return faces::answer(&path, ApiError::Unavailable);
    };
    if kind == Kind::Upload {
        let Ok(_upload_permit) = edge.uploads.clone().try_acquire_owned() else {
            tracing::warn!(
                limit = edge.limits.max_uploads,
                "upload shed: too many uploads in flight"
            );
            return faces::answer(&path, ApiError::Unavailable);
        };
        let idle = edge.limits.body_idle_timeout;
        let request = request.map(|body| idle_deadline(body, idle));
        return next.run(request).await;
    }
    let deadline = edge.limits.request_timeout;
    match tokio::time::timeout(deadline, next.run(request)).await {
        Ok(response) => response,
        Err(_) => {
            // Dropping the handler is safe: a job's creation runs detached (store::create_detached).
            tracing::warn!(
                timeout_ms = deadline.as_millis() as u64,
                "request timed out"
            );
            faces::answer(&path, ApiError::Unavailable)
        }
    }
}

/// A body that sent nothing for this long: the upload is refused and its permit freed.
#[derive(Debug, thiserror::Error)]
#[error("the request body sent nothing for {0:?}")]
pub struct BodyIdle(Duration);

/// `body`, failing once no bytes have arrived for `idle`; a stalled client cannot hold an
/// upload slot (and its part buffer) longer than that.
fn idle_deadline(body: Body, idle: Duration) -> Body {
    let stream = body.into_data_stream();
    Body::from_stream(futures::stream::unfold(
        Some(stream),
        move |stream| async move {
            let mut stream = stream?;
            match tokio::time::timeout(idle, stream.next()).await {
                Ok(Some(chunk)) => Some((chunk, Some(stream))),
                Ok(None) => None,
                Err(_) => Some((Err(axum::Error::new(BodyIdle(idle))), None)),
            }
        },
    ))
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::{Router, http::StatusCode, middleware, routing::get};
    use tower::ServiceExt;

    /// `/api/v1/jobs` waits for a permit of `gate`; `/openapi/v1/catalog` answers at once.
    fn router(limits: HttpLimits, gate: Arc<Semaphore>) -> Router {
        let held = move || {
            let gate = gate.clone();
            async move {
                let _pass = gate.acquire().await;
                "done"
            }
        };
        Router::new()
            .route("/api/v1/jobs", get(held))
            .route("/openapi/v1/catalog", get(|| async { "catalog" }))
            .route("/healthz", get(|| async { "ok" }))
            .layer(middleware::from_fn_with_state(Edge::new(limits), limit))
    }

    fn get_req(path: &str) -> Request {
        Request::builder().uri(path).body(Body::empty()).unwrap()
    }

    #[test]
    fn routes_are_told_apart() {
        assert_eq!(kind(&Method::POST, "/api/v1/assets"), Kind::Upload);
        assert_eq!(kind(&Method::GET, "/api/v1/assets"), Kind::Ordinary);
        assert_eq!(kind(&Method::GET, "/healthz"), Kind::Probe);
        assert_eq!(kind(&Method::POST, "/api/v1/jobs"), Kind::Ordinary);
    }

    /// Beyond the budget a request is refused at once with `Retry-After`, in its face's
    /// shape; probes still answer; the budget frees when the held requests end.
    #[tokio::test]
    async fn requests_beyond_the_budget_are_shed_at_once() {
        let gate = Arc::new(Semaphore::new(0));
        let limits = HttpLimits {
            max_requests: 2,
            ..HttpLimits::default()
        };
        let app = router(limits, gate.clone());
        let held: Vec<_> = (0..2)
            .map(|_| tokio::spawn(app.clone().oneshot(get_req("/api/v1/jobs"))))
            .collect();
        // Once both held requests have their permits, the next one is refused.
        let shed = loop {
            let answer = app.clone().oneshot(get_req("/openapi/v1/catalog")).await;
            let answer = answer.unwrap();
            if answer.status() == StatusCode::SERVICE_UNAVAILABLE {
                break answer;
            }
            tokio::task::yield_now().await;
        };
        assert_eq!(shed.headers()["retry-after"], "5");
        let body = axum::body::to_bytes(shed.into_body(), 4096).await.unwrap();
        let body: serde_json::Value = serde_json::from_slice(&body).unwrap();
        assert_eq!(body["detail"]["code"], "unavailable", "{body}");
        let probe = app.clone().oneshot(get_req("/healthz")).await.unwrap();
        assert_eq!(probe.status(), StatusCode::OK);
        gate.add_permits(2);
        for answer in held {
            assert_eq!(answer.await.unwrap().unwrap().status(), StatusCode::OK);
        }
        let freed = app.oneshot(get_req("/openapi/v1/catalog")).await.unwrap();
        assert_eq!(freed.status(), StatusCode::OK);
    }

    /// An ordinary request that outlives its deadline is answered 503, and its permit freed.
    #[tokio::test]
    async fn an_ordinary_request_has_a_deadline() {
        let limits = HttpLimits {
            request_timeout: Duration::from_millis(100),
            max_requests: 1,
            ..HttpLimits::default()
        };
        let app = router(limits, Arc::new(Semaphore::new(0)));
        for _ in 0..2 {
            let started = std::time::Instant::now();
            let answer = app.clone().oneshot(get_req("/api/v1/jobs")).await.unwrap();
            assert_eq!(answer.status(), StatusCode::SERVICE_UNAVAILABLE);
            assert!(started.elapsed() < Duration::from_secs(2));
        }
    }

    #[tokio::test]
    async fn a_stalled_body_fails_after_its_idle_deadline() {
        let (tx, rx) = futures::channel::mpsc::channel::<Result<bytes::Bytes, std::io::Error>>(1);
        let mut tx = tx;
        futures::SinkExt::send(&mut tx, Ok(bytes::Bytes::from_static(b"part")))
            .await
            .unwrap();
        let body = idle_deadline(Body::from_stream(rx), Duration::from_millis(100));
        let mut stream = body.into_data_stream();
        assert_eq!(stream.next().await.unwrap().unwrap(), "part");
        let err = stream.next().await.unwrap().unwrap_err();
        assert!(err.to_string().contains("sent nothing"), "{err}");
        assert!(stream.next().await.is_none());
        drop(tx);
    }
}
