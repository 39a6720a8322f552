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
    // Events are applied in LANES concurrent lanes; a job's events always take the same lane
    // (its subject decides), so they are applied in the order they were published.
    let mut lanes = Vec::with_capacity(LANES);
    let mut running = tokio::task::JoinSet::new();
    for _ in 0..LANES {
        let (tx, rx) = tokio::sync::mpsc::channel::<jetstream::Message>(LANE_DEPTH);
        lanes.push(tx);
        running.spawn(lane(state.clone(), rx));
    }
    let result = loop {
        // Only the wait is raced with shutdown: an event being applied is never dropped
        // half-way through its transaction (the lanes finish what they hold).
        let message = tokio::select! {
            _ = shutdown.cancelled() => break Ok(()),
            message = messages.next() => message,
        };
        let message = match message {
            Some(Ok(message)) => message,
            Some(Err(err)) => break Err(anyhow::anyhow!("event stream: {err}")),
            None => break Err(anyhow::anyhow!("event stream ended")),
        };
        let lane = lane_of(&message.subject);
        if lanes[lane].send(message).await.is_err() {
            break Err(anyhow::anyhow!("projector lane {lane} stopped"));
        }
    };
    drop(lanes);
    while running.join_next().await.is_some() {}
    result
}

/// Concurrent appliers.
const LANES: usize = 16;
/// Events waiting per lane; a full lane holds back the pull (and so `max_ack_pending`).
const LANE_DEPTH: usize = 16;

fn lane_of(subject: &str) -> usize {
    use std::hash::{Hash, Hasher};
    let mut hasher = std::collections::hash_map::DefaultHasher::new();
    subject.hash(&mut hasher);
    (hasher.finish() % LANES as u64) as usize
}

/// Applies a lane's events one after another, each acked once its transaction committed.
///
/// On error: the event is nak'd with a short delay and redelivered; the lane goes on (the
/// transitions are fenced, so a later event of the same job applied first is harmless).
async fn lane(state: AppState, mut events: tokio::sync::mpsc::Receiver<jetstream::Message>) {
    while let Some(message) = events.recv().await {
        match JobEvent::decode(message.payload.as_ref()) {
            Ok(event) => {
                let span = event_span(&event);
                telemetry::follow(&span, telemetry::extract_nats(message.headers.as_ref()));
                let (job, lease, terminal) = (
                    event.job_id.clone(),
                    event.lease_token.clone(),
                    matches!(event.kind, Some(Kind::Succeeded(_) | Kind::Failed(_))),
                );
                if let Err(err) = apply(&state, event).instrument(span.clone()).await {
                    if !rejected_for_good(&err) {
                        tracing::warn!(error = format!("{err:#}"), subject = %message.subject,
                            "event not applied, redelivering");
                        let delivered = message.info().map_or(1, |info| info.delivered);
                        let _ = message
                            .ack_with(AckKind::Nak(Some(redelivery_delay(delivered))))
                            .await;
                        continue;
                    }
                    // The database refuses what the event carries: no redelivery will change
                    // that. A result the job cannot record fails the job, with the reason.
                    span.in_scope(|| {
                        tracing::error!(error = format!("{err:#}"), subject = %message.subject,
                            "event rejected by the database, dropped")
                    });
                    if terminal {
                        reject_result(&state, &job, &lease, &err)
                            .instrument(span)
                            .await;
                    }
                    let _ = message.ack_with(AckKind::Term).await;
                    continue;
                }
            }
            Err(err) => {
                tracing::error!(error = %err, subject = %message.subject, "undecodable event dropped");
            }
        }
        // A plain ack, not a confirmed one: an ack that is lost only means the event is
        // redelivered after ack_wait, and the fenced transitions absorb it.
        if let Err(err) = message.ack().await {
            tracing::warn!(error = %err, "event ack not sent");
        }
    }
}

/// Whether applying an event failed on its contents rather than on the moment: a data
/// exception or an integrity violation (SQLSTATE classes 22 and 23) fails the same way on
/// every redelivery, while a lost connection, a full pool or a serialization failure may not.
fn rejected_for_good(err: &anyhow::Error) -> bool {
    err.chain().any(|cause| {
        cause
            .downcast_ref::<sqlx::Error>()
            .and_then(sqlx::Error::as_database_error)
            .and_then(|db| db.code())
            .is_some_and(|code| deterministic_sqlstate(&code))
    })
}

fn deterministic_sqlstate(code: &str) -> bool {
    code.starts_with("22") || code.starts_with("23")
}

/// Backs off as an event keeps failing (database down): 2 s, 4 s, … up to a minute.
fn redelivery_delay(delivered: i64) -> Duration {
    let doublings = delivered.clamp(1, 6) - 1;
    Duration::from_secs(2u64 << doublings).min(Duration::from_secs(60))
}

/// What the partner reads when a result is rejected. Fixed: the database's own text (table,
/// column and constraint names, values) stays in the log (issue #14, L10).
const RESULT_REJECTED: &str =
    "the worker's result could not be recorded (it holds a value the job store refuses)";

/// A worker's result that cannot be recorded ends its job as failed, so the partner learns
/// it (and gets the webhook) instead of waiting for the run deadline. The cause is logged by
/// the caller, in the event's span.
async fn reject_result(state: &AppState, job: &str, lease: &str, _err: &anyhow::Error) {
    let outcome = Outcome::Failed {
        code: "result_rejected".to_owned(),
        message: RESULT_REJECTED.to_owned(),
    };
    if let Err(err) = finish(state, job, lease, outcome, &[]).await {
        tracing::error!(
            error = format!("{err:#}"),
            "rejected result not recorded; the sweeper will end the job"
        );
    }
}

/// One span per applied event, in the trace of the attempt that sent it.
fn event_span(event: &JobEvent) -> tracing::Span {
    let kind = match &event.kind {
        Some(Kind::Progress(_)) => "progress",
        Some(Kind::Released(_)) => "released",
        Some(Kind::Succeeded(_)) => "succeeded",
        Some(Kind::Failed(_)) => "failed",
        Some(Kind::Upstream(_)) => "upstream",
        Some(Kind::WebhookAttempt(_)) => "webhook_attempt",
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
            let released =
                lifecycle::release(&mut tx, job, lease, &r.code, &r.message, retry_in).await?;
            tx.commit().await?;
            // Its slot in flight is free; the retry is released once its delay has passed.
            state.wake.now();
            released
        }
        Kind::Upstream(u) => lifecycle::record_upstream(&state.pool, job, lease, &u).await?,
        // Not a worker's: no lease. Recorded once for the event feed.
        Kind::WebhookAttempt(a) => crate::events::record_attempt(&state.pool, job, &a).await?,
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
        // A client's slot under its concurrency cap is free.
        state.wake.now();
        metrics().job_finished(&job.capability, &job.status);
        tracing::info!(status = %job.status, "job finished");
    }
    Ok(finished.is_some())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_data_and_integrity_errors_are_final() {
        assert!(deterministic_sqlstate("22021")); // invalid byte sequence (a NUL in text)
        assert!(deterministic_sqlstate("22001")); // value too long
        assert!(deterministic_sqlstate("23505")); // unique violation
        assert!(!deterministic_sqlstate("40001")); // serialization failure
        assert!(!deterministic_sqlstate("57P01")); // admin shutdown
        assert!(!deterministic_sqlstate("08006")); // connection failure
        let pool_timeout = anyhow::Error::new(sqlx::Error::PoolTimedOut).context("applying");
        assert!(!rejected_for_good(&pool_timeout));
    }

    #[test]
    fn redeliveries_back_off_to_a_minute() {
        let delays: Vec<u64> = (1..=8).map(|n| redelivery_delay(n).as_secs()).collect();
        assert_eq!(delays, [2, 4, 8, 16, 32, 60, 60, 60]);
    }

    #[test]
    fn a_jobs_events_keep_one_lane_and_jobs_spread_over_all() {
        let subject = |n: usize| format!("atelier.events.job_{n:026}");
        assert_eq!(lane_of(&subject(7)), lane_of(&subject(7)));
        let used: std::collections::HashSet<usize> =
            (0..1000).map(|n| lane_of(&subject(n))).collect();
        assert_eq!(used.len(), LANES, "1000 jobs reach every lane");
        assert!(used.iter().all(|&lane| lane < LANES));
    }
}
