//! The api's router: routes, body limit, JSON fallbacks, and the request log (where
//! server errors' causes are written, since error conversions have no side effects).

use std::time::Instant;

use axum::{
    Json, Router,
    extract::Query,
    extract::{DefaultBodyLimit, MatchedPath, Request, State},
    http::{StatusCode, Uri, header},
    middleware::{self, Next},
    response::Response,
    routing::{get, post},
};

use atelier_kit::{metrics::metrics, telemetry};
use tracing::Instrument;

use crate::{
    AppState, assets,
    auth::Caller,
    capabilities, credits,
    error::{ApiError, ErrorDetail},
    jobs, openapi, tasks, webhooks,
};

pub fn router(state: AppState) -> Router {
    let limit = state.config.max_body_bytes;
    let edge = crate::edge::Edge::new(state.config.http.clone());
    Router::new()
        .route(
            "/api/v1/jobs",
            get(jobs::routes::list).post(jobs::routes::create),
        )
        .route("/api/v1/jobs/{id}", get(jobs::routes::get))
        .route("/api/v1/jobs/{id}/cancel", post(jobs::routes::cancel))
        .route("/api/v1/jobs/{id}/webhooks", get(webhooks::log))
        .route(
            "/api/v1/jobs/{id}/webhooks/redeliver",
            post(webhooks::redeliver),
        )
        .route("/api/v1/webhooks/secret", get(webhooks::read_secret))
        .route(
            "/api/v1/webhooks/secret/rotate",
            post(webhooks::rotate_secret),
        )
        .route("/api/v1/events", get(crate::events::routes::list))
        .route("/api/v1/events/stream", get(crate::events::routes::stream))
        .route("/api/v1/capabilities", get(capabilities::list))
        // Uploads are counted against their own cap while they stream, not buffered.
        .route(
            "/api/v1/assets",
            get(assets::list)
                .post(assets::create::create)
                .layer(DefaultBodyLimit::disable()),
        )
        .route(
            "/api/v1/assets/{id}",
            get(assets::get).delete(assets::delete),
        )
        .route("/api/v1/assets/{id}/download", get(assets::download))
        .route("/api/v1/credits", get(credits_statement))
        .route("/api/v1/limits", get(crate::limits::route::limits))
        .route("/api/v1/tasks/create", post(tasks::create))
        .route("/api/v1/tasks/{task_id}", get(tasks::get))
        .route("/api/v1/tasks/{task_id}/cancel", post(tasks::cancel))
        .route("/api/v1/openapi.json", get(openapi::document))
        .merge(crate::faces::creations::router())
        .merge(crate::faces::console::router())
        .route("/healthz", get(|| async { "ok" }))
        .route("/readyz", get(readyz))
        .route("/metrics", get(atelier_kit::metrics::handler))
        .fallback(|uri: Uri| async move {
            crate::faces::answer(uri.path(), ApiError::NotFound("Not found."))
        })
        .layer(DefaultBodyLimit::max(limit))
        .layer(middleware::from_fn_with_state(edge, crate::edge::limit))
        .layer(middleware::from_fn(json_rejections))
        .layer(middleware::from_fn(log_request))
        .layer(middleware::from_fn(request_id))
        .with_state(state)
}

#[derive(serde::Deserialize)]
pub struct CreditsQuery {
    limit: Option<String>,
}

/// The caller's balance and its most recent ledger entries.
#[utoipa::path(get, path = "/api/v1/credits", tag = "credits",
    params(("limit" = Option<i64>, Query, description = "entries, 1–200 (default 50)")),
    responses((status = 200, body = credits::Credits), (status = 401, body = crate::error::ErrorBody)))]
pub async fn credits_statement(
    State(state): State<AppState>,
    caller: Caller,
    Query(query): Query<CreditsQuery>,
) -> Result<Json<credits::Credits>, ApiError> {
    let limit = jobs::routes::check_limit(query.limit.as_deref())?;
    Ok(Json(
        credits::statement(&state.pool, caller.client.as_str(), limit).await?,
    ))
}

/// Ready when PostgreSQL answers and the NATS connection is up.
async fn readyz(State(state): State<AppState>) -> (StatusCode, &'static str) {
    let database = sqlx::query("SELECT 1").execute(&state.pool).await.is_ok();
    let nats = state.nats.connection_state() == async_nats::connection::State::Connected;
    match (database, nats) {
        (true, true) => (StatusCode::OK, "ready"),
        (false, _) => (StatusCode::SERVICE_UNAVAILABLE, "database unavailable"),
        (_, false) => (StatusCode::SERVICE_UNAVAILABLE, "nats unavailable"),
    }
}

/// axum answers its own rejections in plain text: a query or a path it cannot parse, a body
/// too large, a wrong method. Partners get their face's JSON shape on every 4xx instead, with
/// axum's status, its headers (`Allow`) and its reason (issue #14, L1).
async fn json_rejections(request: Request, next: Next) -> Response {
    let path = request.uri().path().to_owned();
    let response = next.run(request).await;
    let is_json = response
        .headers()
        .get(header::CONTENT_TYPE)
        .is_some_and(|v| v.as_bytes().starts_with(b"application/json"));
    let status = response.status();
    if is_json || !status.is_client_error() {
        return response;
    }
    let (mut parts, body) = response.into_parts();
    // A rejection's text is a line; anything longer is not one of axum's and is cut.
    let reason = axum::body::to_bytes(body, 4096)
        .await
        .map(|text| String::from_utf8_lossy(&text).trim().to_owned())
        .unwrap_or_default();
    let err = match status {
        StatusCode::PAYLOAD_TOO_LARGE => ApiError::PayloadTooLarge("request body too large".into()),
        StatusCode::METHOD_NOT_ALLOWED => ApiError::BadRequest("method not allowed".into()),
        _ if reason.is_empty() => ApiError::BadRequest(format!(
            "request: {}",
            status
                .canonical_reason()
                .unwrap_or("refused")
                .to_lowercase()
        )),
        _ => ApiError::BadRequest(format!("request: {reason}")),
    };
    let (answer, body) = crate::faces::answer(&path, err).into_parts();
    parts.headers.remove(header::CONTENT_LENGTH);
    if let Some(json) = answer.headers.get(header::CONTENT_TYPE) {
        parts.headers.insert(header::CONTENT_TYPE, json.clone());
    }
    Response::from_parts(parts, body)
}

/// The id of one API request: returned as `X-Request-Id` on every face, recorded on the
/// job it creates, and in the request log.
#[derive(Clone, Debug)]
pub struct RequestId(pub String);

async fn request_id(mut request: Request, next: Next) -> Response {
    let id = format!("req_{}", ulid::Ulid::new().to_string().to_lowercase());
    request.extensions_mut().insert(RequestId(id.clone()));
    let mut response = next.run(request).await;
    if let Ok(value) = axum::http::HeaderValue::from_str(&id) {
        response.headers_mut().insert("x-request-id", value);
    }
    response
}

/// One span per request (continuing a partner's `traceparent` when it sends one), the RED
/// metrics, and the request log.
async fn log_request(request: Request, next: Next) -> Response {
    let started = Instant::now();
    let method = request.method().clone();
    let request_id = request
        .extensions()
        .get::<RequestId>()
        .map(|r| r.0.clone())
        .unwrap_or_default();
    let path = request.uri().path().to_owned();
    let route = request
        .extensions()
        .get::<MatchedPath>()
        .map_or("unmatched", |m| m.as_str())
        .to_owned();
    let span = tracing::info_span!(
        "http.request",
        otel.name = %format!("{method} {route}"),
        otel.kind = "server",
        http.request.method = %method,
        http.route = %route,
        http.response.status_code = tracing::field::Empty,
        request_id = %request_id,
    );
    telemetry::follow(&span, telemetry::extract_http(request.headers()));
    let response = next.run(request).instrument(span.clone()).await;
    let status = response.status().as_u16();
    let elapsed = started.elapsed();
    metrics().http_request(method.as_str(), &route, status, elapsed);
    span.record("http.response.status_code", status);
    let _entered = span.enter();
    let elapsed_ms = elapsed.as_millis() as u64;
    if let Some(ErrorDetail(detail)) = response.extensions().get::<ErrorDetail>() {
        tracing::error!(%method, %path, status, elapsed_ms, %request_id, error = %detail, "request failed");
    } else if status >= 500 {
        tracing::warn!(%method, %path, status, elapsed_ms, %request_id, "request unavailable");
    } else {
        tracing::info!(%method, %path, status, elapsed_ms, %request_id, "request");
    }
    response
}
