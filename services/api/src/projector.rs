//! The event projector: applies workers' progress and terminal events to PostgreSQL
//! through the fenced transitions of `lifecycle`, then acks. An event is acked only after
//! its effect is committed (or found to be stale), so a crash replays it harmlessly.

use std::time::Duration;

use anyhow::Context;
use async_nats::jetstream::{
    self, AckKind,
    consumer::{AckPolicy, DeliverPolicy, pull},
};
use atelier_kit::{metrics::metrics, telemetry};
use atelier_proto::{
    Message,
    jobs::v1::{JobEvent, job_event::Kind},
};
use futures::StreamExt;
use tokio_util::sync::CancellationToken;
use tracing::Instrument;

use crate::{
    AppState,
    lifecycle::{self, Fence, Outcome},
};

/// Projects events until cancelled.
///
/// On cancel: finishes the event in hand, then stops. On error (NATS restart, consumer
/// deleted, database down): logs, waits, recreates the consumer and carries on.
pub async fn run(state: AppState, shutdown: CancellationToken) {
    loop {
        match consume(&state, &shutdown).await {
            Ok(()) => return,
            Err(err) => tracing::warn!(error = format!("{err:#}"), "event projector restarting"),
        }
        tokio::select! {
            _ = shutdown.cancelled() => return,
            _ = tokio::time::sleep(Duration::from_secs(1)) => {},
        }
    }
}

async fn consume(state: &AppState, shutdown: &CancellationToken) -> anyhow::Result<()> {
    let stream =
        atelier_kit::nats::ensure_stream(&state.js, state.names.events_stream_config()).await?;
    let durable = state.names.durable("api-projector");
    let consumer: jetstream::consumer::PullConsumer = stream
        .get_or_create_consumer(
            &durable,
            pull::Config {
                durable_name: Some(durable.clone()),
                ack_policy: AckPolicy::Explicit,
                deliver_policy: DeliverPolicy::All,
                ack_wait: Duration::from_secs(30),
                max_ack_pending: 256,
                ..Default::default()
            },
        )
        .await
        .context("creating the projector consumer")?;
    let sampling = shutdown.child_token();
    tokio::spawn(atelier_kit::metrics::sample_consumer(
        consumer.clone(),
        sampling.clone(),
    ));
    let _stop_sampling = sampling.drop_guard();
    let mut messages = consumer.messages().await.context("pulling events")?;
    loop {
        // Only the wait is raced with shutdown: an event being applied is never dropped
        // half-way through its transaction.
        let message = tokio::select! {
            _ = shutdown.cancelled() => return Ok(()),
            message = messages.next() => message,
        };
        let Some(message) = message else {
            anyhow::bail!("event stream ended");
        };
        let message = message.context("event stream")?;
        match JobEvent::decode(message.payload.as_ref()) {
            Ok(event) => {
                let span = event_span(&event);
                telemetry::follow(&span, telemetry::extract_nats(message.headers.as_ref()));
                if let Err(err) = apply(state, event).instrument(span).await {
                    // Not acked: JetStream redelivers it after ack_wait.
                    let _ = message
                        .ack_with(AckKind::Nak(Some(Duration::from_secs(2))))
                        .await;
                    return Err(err);
                }
            }
            Err(err) => {
                tracing::error!(error = %err, subject = %message.subject, "undecodable event dropped");
            }
        }
        message
            .double_ack()
            .await
            .map_err(|err| anyhow::anyhow!("acking an event: {err}"))?;
    }
}

/// One span per applied event, in the trace of the attempt that sent it.
fn event_span(event: &JobEvent) -> tracing::Span {
    let kind = match &event.kind {
        Some(Kind::Progress(_)) => "progress",
        Some(Kind::Released(_)) => "released",
        Some(Kind::Succeeded(_)) => "succeeded",
        Some(Kind::Failed(_)) => "failed",
        None => "empty",
    };
    tracing::info_span!(
        "job.event",
        otel.name = %format!("job.event {kind}"),
        otel.kind = "consumer",
        job.id = %event.job_id,
        attempt = event.attempt,
        event = kind,
    )
}

async fn apply(state: &AppState, event: JobEvent) -> anyhow::Result<()> {
    let Some(kind) = event.kind else {
        return Ok(());
    };
    let (job, lease) = (event.job_id.as_str(), event.lease_token.as_str());
    let applied = match kind {
        Kind::Progress(p) => {
            lifecycle::progress(&state.pool, job, lease, p.percent, &p.step).await?
        }
        Kind::Released(r) => {
            let mut tx = state.pool.begin().await?;
            let retry_in = Duration::from_millis(u64::from(r.retry_in_ms));
            let released = lifecycle::release(
                &mut tx,
                &state.names,
                job,
                lease,
                &r.code,
                &r.message,
                retry_in,
            )
            .await?;
            tx.commit().await?;
            released
        }
        Kind::Succeeded(s) => {
            finish(state, job, lease, Outcome::Succeeded(s.outputs), &s.inputs).await?
        }
        Kind::Failed(f) => {
            let outcome = Outcome::Failed {
                code: f.code,
                message: f.message,
            };
            finish(state, job, lease, outcome, &f.inputs).await?
        }
    };
    if !applied {
        tracing::info!("stale event ignored");
    }
    Ok(())
}

async fn finish(
    state: &AppState,
    job: &str,
    lease: &str,
    outcome: Outcome,
    inputs: &[atelier_proto::jobs::v1::Output],
) -> anyhow::Result<bool> {
    let mut tx = state.pool.begin().await?;
    let finished = lifecycle::finish(
        &mut tx,
        &state.names,
        state.config.asset_retention,
        job,
        Fence::Lease(lease),
        &outcome,
        inputs,
    )
    .await?;
    tx.commit().await?;
    if let Some(job) = &finished {
        metrics().job_finished(&job.capability, &job.status);
        tracing::info!(status = %job.status, "job finished");
    }
    Ok(finished.is_some())
}
