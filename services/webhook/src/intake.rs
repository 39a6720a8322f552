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
        .context("pulling webhook requests")?
        .ready_chunks(BATCH);
    readiness.set_ready();
    loop {
        let chunk = tokio::select! {
            _ = shutdown.cancelled() => return Ok(()),
            chunk = messages.next() => chunk.context("webhook stream ended")?,
        };
        let mut batch = Vec::with_capacity(chunk.len());
        for message in chunk {
            let message = message.map_err(|err| anyhow::anyhow!("webhook stream: {err}"))?;
            match WebhookRequest::decode(message.payload.as_ref()) {
                Ok(request) => batch.push((intake_span(&message, &request), request, message)),
                Err(err) => {
                    tracing::error!(error = %err, "undecodable webhook request dropped");
                    let _ = message.ack().await;
                }
            }
        }
        take(pool, wake, &batch).await?;
        // Plain acks: a lost one only brings the request back, and the insert absorbs it.
        for (_, _, message) in &batch {
            message
                .ack()
                .await
                .map_err(|err| anyhow::anyhow!("acking a webhook request: {err}"))?;
        }
    }
}

/// Requests taken from the stream at once, when that many are waiting: one insert for all.
const BATCH: usize = 64;

/// One span per request, in the trace of the job whose event it carries.
fn intake_span(message: &jetstream::Message, request: &WebhookRequest) -> tracing::Span {
    let span = tracing::info_span!(
        "webhook.intake",
        otel.kind = "consumer",
        job.id = %request.job_id,
        event.id = %request.event_id,
        client.id = %request.client_id,
        redeliver = request.redeliver,
    );
    telemetry::follow(&span, telemetry::extract_nats(message.headers.as_ref()));
    span
}

/// Records a batch: new events to deliver (one insert), and partners' asks to deliver a
/// job's events again.
async fn take(
    pool: &PgPool,
    wake: &Notify,
    batch: &[(tracing::Span, WebhookRequest, jetstream::Message)],
) -> anyhow::Result<()> {
    let mut events = Vec::with_capacity(batch.len());
    for (span, request, _) in batch {
        if request.redeliver {
            let events = store::redeliver(pool, &request.job_id, &request.client_id)
                .instrument(span.clone())
                .await?;
            span.in_scope(|| tracing::info!(events, "webhook redelivery requested"));
        } else {
            // Each delivery's attempts become children of its own intake span.
            let traceparent = span.in_scope(telemetry::current_traceparent);
            events.push((request, traceparent));
        }
    }
    let queued = store::insert(pool, &events).await?;
    if queued > 0 || events.len() < batch.len() {
        tracing::debug!(queued, "webhooks queued");
        wake.notify_one();
    }
    Ok(())
}
