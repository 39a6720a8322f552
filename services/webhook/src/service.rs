//! The webhook-service's request/reply face for the api: the delivery log of a job and a
//! client's signing secret (read or rotate). The api never reads these tables itself.

use std::{sync::Arc, time::Duration};

use anyhow::Context;
use atelier_kit::nats::Names;
use atelier_proto::{
    Message,
    jobs::v1::{
        Delivery, DeliveryAttempt, DeliveryLogReply, DeliveryLogRequest, SecretReply, SecretRequest,
    },
};
use chrono::{DateTime, Utc};
use futures::StreamExt;
use sqlx::PgPool;
use tokio_util::sync::CancellationToken;

use crate::{WebhookConfig, secrets};

fn ms(at: Option<DateTime<Utc>>) -> i64 {
    at.map(|t| t.timestamp_millis()).unwrap_or(0)
}

async fn delivery_log(pool: &PgPool, request: &DeliveryLogRequest) -> sqlx::Result<Vec<Delivery>> {
    let rows: Vec<(String, String, String, Option<DateTime<Utc>>)> = sqlx::query_as(
        "SELECT event_id, url, status, next_attempt_at FROM webhook.deliveries
         WHERE job_id = $1 AND client_id = $2 ORDER BY created_at",
    )
    .bind(&request.job_id)
    .bind(&request.client_id)
    .fetch_all(pool)
    .await?;
    let mut deliveries = Vec::with_capacity(rows.len());
    for (event_id, url, status, next) in rows {
        type Row = (
            i32,
            DateTime<Utc>,
            Option<i32>,
            i32,
            Option<String>,
            Option<DateTime<Utc>>,
        );
        let attempts: Vec<Row> = sqlx::query_as(
            "SELECT attempt, started_at, status_code, latency_ms, error, next_attempt_at
             FROM webhook.attempts WHERE event_id = $1 ORDER BY id",
        )
        .bind(&event_id)
        .fetch_all(pool)
        .await?;
        deliveries.push(Delivery {
            next_attempt_unix_ms: if status == "pending" { ms(next) } else { 0 },
            event_id,
            url,
            status,
            attempts: attempts
                .into_iter()
                .map(
                    |(attempt, started, code, latency, error, next)| DeliveryAttempt {
                        attempt: attempt as u32,
                        started_unix_ms: started.timestamp_millis(),
                        status_code: code.unwrap_or(0) as u32,
                        latency_ms: latency as u32,
                        error: error.unwrap_or_default(),
                        next_attempt_unix_ms: ms(next),
                    },
                )
                .collect(),
        });
    }
    Ok(deliveries)
}

async fn secret(
    pool: &PgPool,
    request: &SecretRequest,
    overlap: Duration,
) -> sqlx::Result<SecretReply> {
    let secrets = if request.rotate {
        secrets::rotate(pool, &request.client_id, overlap).await?
    } else {
        secrets::read(pool, &request.client_id).await?
    };
    let (previous, expires) = secrets
        .previous
        .map(|(secret, at)| (secret, at.timestamp_millis()))
        .unwrap_or_default();
    Ok(SecretReply {
        secret: secrets.current,
        previous_secret: previous,
        previous_expires_unix_ms: expires,
        error: String::new(),
    })
}

/// Answers the api until cancelled.
///
/// On cancel: stops taking requests. On error: a failed request is answered with an error
/// string and logged; the api reports it as a server error.
pub async fn respond(
    pool: PgPool,
    nats: async_nats::Client,
    names: Names,
    config: Arc<WebhookConfig>,
    shutdown: CancellationToken,
) -> anyhow::Result<()> {
    let log_subject = names.webhook_service_subject("log");
    let secret_subject = names.webhook_service_subject("secret");
    let group = names.webhook_service_subject("group");
    let mut logs = nats
        .queue_subscribe(log_subject, group.clone())
        .await
        .context("subscribing")?;
    let mut secrets = nats
        .queue_subscribe(secret_subject, group)
        .await
        .context("subscribing")?;
    loop {
        let (message, reply) = tokio::select! {
            _ = shutdown.cancelled() => return Ok(()),
            Some(message) = logs.next() => {
                let reply = match DeliveryLogRequest::decode(message.payload.as_ref()) {
                    Ok(request) => match delivery_log(&pool, &request).await {
                        Ok(deliveries) => DeliveryLogReply { deliveries, error: String::new() },
                        Err(err) => DeliveryLogReply { deliveries: Vec::new(), error: err.to_string() },
                    },
                    Err(err) => DeliveryLogReply { deliveries: Vec::new(), error: err.to_string() },
                };
                (message, reply.encode_to_vec())
            }
            Some(message) = secrets.next() => {
                let reply = match SecretRequest::decode(message.payload.as_ref()) {
                    Ok(request) => secret(&pool, &request, config.secret_overlap)
                        .await
                        .unwrap_or_else(|err| SecretReply { error: err.to_string(), ..Default::default() }),
                    Err(err) => SecretReply { error: err.to_string(), ..Default::default() },
                };
                (message, reply.encode_to_vec())
            }
            else => anyhow::bail!("webhook-service subscriptions ended"),
        };
        if let Some(to) = message.reply
            && let Err(err) = nats.publish(to, reply.into()).await
        {
            tracing::warn!(error = %err, "webhook-service reply not sent");
        }
    }
}
