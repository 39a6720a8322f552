//! The webhook routes of the native API: a job's delivery log, redelivery, and the client's
//! signing secret. Delivery state and secrets belong to the webhook-service; the api asks it
//! over NATS request/reply and never reads its tables.

use std::time::Duration;

use atelier_kit::ids::JobId;
use atelier_proto::{
    Message,
    jobs::v1::{DeliveryLogReply, DeliveryLogRequest, SecretReply, SecretRequest, WebhookRequest},
};
use axum::{
    Json,
    extract::{Path, State},
    http::StatusCode,
};
use chrono::{DateTime, TimeZone, Utc};
use serde::Serialize;
use utoipa::ToSchema;

use crate::{AppState, auth::Caller, error::ApiError, jobs::store, outbox};

const ASK_TIMEOUT: Duration = Duration::from_secs(5);

fn time(ms: i64) -> Option<DateTime<Utc>> {
    (ms > 0)
        .then(|| Utc.timestamp_millis_opt(ms).single())
        .flatten()
}

async fn ask<M: Message + Default>(
    state: &AppState,
    what: &str,
    request: impl Message,
) -> Result<M, ApiError> {
    let subject = state.names.webhook_service_subject(what);
    let reply = tokio::time::timeout(
        ASK_TIMEOUT,
        state.nats.request(subject, request.encode_to_vec().into()),
    )
    .await
    .map_err(|_| ApiError::Unavailable)?
    .map_err(|_| ApiError::Unavailable)?;
    M::decode(reply.payload.as_ref()).map_err(|err| ApiError::Internal(err.into()))
}

#[derive(Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct AttemptView {
    pub attempt: u32,
    pub at: Option<DateTime<Utc>>,
    /// Absent when no HTTP answer came (timeout, refused destination, connection error).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub status_code: Option<u32>,
    pub latency_ms: u32,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub next_attempt_at: Option<DateTime<Utc>>,
}

#[derive(Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct DeliveryView {
    /// The `webhook-id` header, stable across attempts.
    pub event_id: String,
    pub url: String,
    /// `pending`, `delivered` or `failed`.
    pub status: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub next_attempt_at: Option<DateTime<Utc>>,
    pub attempts: Vec<AttemptView>,
}

#[derive(Serialize, ToSchema)]
pub struct DeliveryLog {
    pub deliveries: Vec<DeliveryView>,
}

async fn own_job(
    state: &AppState,
    caller: &Caller,
    id: &str,
) -> Result<crate::jobs::view::JobRow, ApiError> {
    store::get(&state.pool, &caller.client, id)
        .await?
        .ok_or(ApiError::NotFound("Job not found."))
}

/// Every webhook event of a job and each delivery attempt.
#[utoipa::path(get, path = "/api/v1/jobs/{id}/webhooks", tag = "webhooks",
    responses((status = 200, body = DeliveryLog), (status = 401, body = crate::error::ErrorBody),
              (status = 404, body = crate::error::ErrorBody)))]
pub async fn log(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
) -> Result<Json<DeliveryLog>, ApiError> {
    let job = own_job(&state, &caller, &id).await?;
    let reply: DeliveryLogReply = ask(
        &state,
        "log",
        DeliveryLogRequest {
            client_id: job.client_id,
            job_id: job.id,
        },
    )
    .await?;
    if !reply.error.is_empty() {
        return Err(ApiError::Internal(anyhow::anyhow!(
            "delivery log: {}",
            reply.error
        )));
    }
    Ok(Json(DeliveryLog {
        deliveries: reply
            .deliveries
            .into_iter()
            .map(|d| DeliveryView {
                event_id: d.event_id,
                url: d.url,
                status: d.status,
                next_attempt_at: time(d.next_attempt_unix_ms),
                attempts: d
                    .attempts
                    .into_iter()
                    .map(|a| AttemptView {
                        attempt: a.attempt,
                        at: time(a.started_unix_ms),
                        status_code: (a.status_code > 0).then_some(a.status_code),
                        latency_ms: a.latency_ms,
                        error: (!a.error.is_empty()).then_some(a.error),
                        next_attempt_at: time(a.next_attempt_unix_ms),
                    })
                    .collect(),
            })
            .collect(),
    }))
}

#[derive(Serialize, ToSchema)]
pub struct Redelivery {
    /// The ask is recorded and will be carried out: each of the job's webhook events gets one
    /// more attempt, now, or right after an attempt in flight ends (whatever its outcome).
    pub redelivered: bool,
}

/// Deliver a finished job's webhook events again: one more attempt each, now, or right after
/// an attempt in flight, with the same `webhook-id`. The answer comes before the attempt
/// (`202`); `GET /api/v1/jobs/{id}/webhooks` shows it once made.
#[utoipa::path(post, path = "/api/v1/jobs/{id}/webhooks/redeliver", tag = "webhooks",
    responses((status = 202, body = Redelivery), (status = 401, body = crate::error::ErrorBody),
              (status = 404, body = crate::error::ErrorBody),
              (status = 409, description = "the job has no webhook, or has not ended yet",
               body = crate::error::ErrorBody)))]
pub async fn redeliver(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
) -> Result<(StatusCode, Json<Redelivery>), ApiError> {
    let job = own_job(&state, &caller, &id).await?;
    // The job's state, not the request, is what is wrong: a 409, as for a cancel too late.
    if job.webhook_url.is_none() {
        return Err(ApiError::Conflict(
            "webhookUrl: this job has no webhook".into(),
        ));
    }
    if matches!(job.status.as_str(), "queued" | "running") {
        return Err(ApiError::Conflict(format!(
            "status: the job is still {}",
            job.status
        )));
    }
    let request = WebhookRequest {
        job_id: job.id.clone(),
        client_id: job.client_id.clone(),
        redeliver: true,
        ..Default::default()
    };
    let msg_id = format!("{}:redeliver:{}", job.id, ulid::Ulid::new());
    let subject = state
        .names
        .webhook_subject(JobId::from_trusted(job.id).as_str());
    let state2 = state.clone();
    // Through the outbox, like every message the api sends: it survives a NATS outage.
    let enqueue = async move {
        let mut tx = state2.pool.begin().await?;
        outbox::enqueue(&mut tx, &subject, &msg_id, request.encode_to_vec()).await?;
        tx.commit().await
    };
    tokio::spawn(tracing::Instrument::instrument(
        enqueue,
        tracing::Span::current(),
    ))
    .await
    .map_err(|err| ApiError::Internal(err.into()))??;
    Ok((StatusCode::ACCEPTED, Json(Redelivery { redelivered: true })))
}

#[derive(Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct SigningSecret {
    /// `whsec_<base64>`: verify `X-Zhinian-Signature` with its decoded bytes, Standard
    /// Webhooks with the string as is.
    pub secret: String,
    /// During a rotation's overlap the previous secret still signs `webhook-signature` too.
    /// `X-Zhinian-Signature` holds one signature and is made with `secret` alone.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub previous_secret: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub previous_expires_at: Option<DateTime<Utc>>,
}

async fn secret_call(
    state: &AppState,
    caller: &Caller,
    rotate: bool,
) -> Result<SigningSecret, ApiError> {
    let reply: SecretReply = ask(
        state,
        "secret",
        SecretRequest {
            client_id: caller.client.to_string(),
            rotate,
        },
    )
    .await?;
    if !reply.error.is_empty() {
        return Err(ApiError::Internal(anyhow::anyhow!(
            "signing secret: {}",
            reply.error
        )));
    }
    Ok(SigningSecret {
        secret: reply.secret,
        previous_secret: (!reply.previous_secret.is_empty()).then_some(reply.previous_secret),
        previous_expires_at: time(reply.previous_expires_unix_ms),
    })
}

/// This client's own webhook signing secret. The first read creates it, and from then on
/// this client's webhooks are signed with it instead of the deployment's shared secret
/// (`ATELIER_WEBHOOK_SECRET`, which every client without a secret of its own shares, so any
/// of them could sign a webhook another would accept); update the receiver when reading it
/// the first time. Later reads answer the same secret.
#[utoipa::path(get, path = "/api/v1/webhooks/secret", tag = "webhooks",
    responses((status = 200, body = SigningSecret), (status = 401, body = crate::error::ErrorBody)))]
pub async fn read_secret(
    State(state): State<AppState>,
    caller: Caller,
) -> Result<Json<SigningSecret>, ApiError> {
    Ok(Json(secret_call(&state, &caller, false).await?))
}

/// Rotate the signing secret (or make the first). For the overlap
/// (`ATELIER_WEBHOOK_SECRET_OVERLAP`) the old one keeps signing `webhook-signature` beside
/// the new one; `X-Zhinian-Signature` switches to the new one at once. Concurrent rotations
/// run one after the other; the last one's secret is live.
#[utoipa::path(post, path = "/api/v1/webhooks/secret/rotate", tag = "webhooks",
    responses((status = 200, body = SigningSecret), (status = 401, body = crate::error::ErrorBody)))]
pub async fn rotate_secret(
    State(state): State<AppState>,
    caller: Caller,
) -> Result<Json<SigningSecret>, ApiError> {
    Ok(Json(secret_call(&state, &caller, true).await?))
}
