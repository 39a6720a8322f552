//! Intake: moves webhook requests from JetStream into the delivery table, acking each
//! message only once its row is committed.

use std::{sync::Arc, time::Duration};

use anyhow::Context;
use async_nats::jetstream::{
    self,
    consumer::{AckPolicy, pull},
};
use atelier_kit::{health::Readiness, nats::Names, telemetry};
use atelier_proto::{Message, jobs::v1::WebhookRequest};
use futures::StreamExt;
use sqlx::PgPool;
use tokio::sync::Notify;
use tokio_util::sync::CancellationToken;
use tracing::Instrument;

use crate::store;

/// Takes requests until cancelled.
///
/// On cancel: stops between messages. On error (NATS restart, deleted consumer,
/// database down): logs, pauses, recreates the consumer; unacked messages come back.
pub async fn run(
    pool: PgPool,
    js: jetstream::Context,
    names: Names,
    wake: Arc<Notify>,
    readiness: Readiness,
    shutdown: CancellationToken,
) {
    while !shutdown.is_cancelled() {
        if let Err(err) = consume(&pool, &js, &names, &wake, &readiness, &shutdown).await {
            tracing::warn!(error = format!("{err:#}"), "webhook intake restarting");
            tokio::select! {
                _ = shutdown.cancelled() => return,
                _ = tokio::time::sleep(Duration::from_secs(1)) => {},
            }
        }
    }
}

async fn consume(
    pool: &PgPool,
    js: &jetstream::Context,
    names: &Names,
    wake: &Notify,
    readiness: &Readiness,
    shutdown: &CancellationToken,
) -> anyhow::Result<()> {
    let stream = atelier_kit::nats::ensure_stream(js, names.webhooks_stream_config()).await?;
    let durable = names.durable("webhook-intake");
    let consumer: jetstream::consumer::PullConsumer = stream
        .get_or_create_consumer(
            &durable,
            pull::Config {
                durable_name: Some(durable.clone()),
                ack_policy: AckPolicy::Explicit,
                ack_wait: Duration::from_secs(30),
                ..Default::default()
            },
        )
        .await
        .context("creating the webhook intake consumer")?;
    let sampling = shutdown.child_token();
    tokio::spawn(atelier_kit::metrics::sample_consumer(
        consumer.clone(),
        sampling.clone(),
    ));
    let _stop_sampling = sampling.drop_guard();
    let mut messages = consumer
        .messages()
        .await
        .context("pulling webhook requests")?;
    readiness.set_ready();
    loop {
        let message = tokio::select! {
            _ = shutdown.cancelled() => return Ok(()),
            message = messages.next() => message,
        };
        let message = message
            .context("webhook stream ended")?
            .context("webhook stream")?;
        match WebhookRequest::decode(message.payload.as_ref()) {
            Ok(request) => {
                let span = tracing::info_span!(
                    "webhook.intake",
                    otel.kind = "consumer",
                    job.id = %request.job_id,
                    event.id = %request.event_id,
                    client.id = %request.client_id,
                    redeliver = request.redeliver,
                );
                telemetry::follow(&span, telemetry::extract_nats(message.headers.as_ref()));
                take(pool, wake, &request).instrument(span).await?;
            }
            Err(err) => tracing::error!(error = %err, "undecodable webhook request dropped"),
        }
        message
            .double_ack()
            .await
            .map_err(|err| anyhow::anyhow!("acking a webhook request: {err}"))?;
    }
}

/// Records one request: a new event to deliver, or a partner's ask to deliver a job's events
/// again.
async fn take(pool: &PgPool, wake: &Notify, request: &WebhookRequest) -> anyhow::Result<()> {
    if request.redeliver {
        let events = store::redeliver(pool, &request.job_id, &request.client_id).await?;
        tracing::info!(events, "webhook redelivery requested");
        wake.notify_one();
    } else if store::insert(pool, request).await? {
        tracing::info!("webhook queued");
        wake.notify_one();
    }
    Ok(())
}
