//! What an attempt publishes on the events stream: heartbeats (a Progress ack on the work
//! message and a progress event) and its results, each awaited until the stream has it.

use std::time::Duration;

use async_nats::jetstream::{AckKind, Message};
use atelier_kit::telemetry;
use atelier_proto::{
    Message as _,
    jobs::v1::{JobEvent, JobSpec, Progress, job_event::Kind},
};
use tokio::sync::watch;

use crate::{consumer::Runtime, engine::Engine};

/// Progress changes closer together than this are sent as one event (the latest value):
/// a fast engine's steps would otherwise cost the projector one transaction each. The first
/// is sent this long after the claim (which itself recorded the job as running), so an
/// attempt shorter than this sends none at all.
const PROGRESS_EVERY: Duration = Duration::from_secs(1);

/// Keeps the lease alive: a Progress ack (resets ack_wait) and a progress event (the
/// database heartbeat) every interval, plus an event when progress changes (at most one per
/// [`PROGRESS_EVERY`]).
pub(crate) async fn heartbeat<E: Engine>(
    runtime: &Runtime<E>,
    message: &Message,
    spec: &JobSpec,
    mut progress: watch::Receiver<(u32, String)>,
) -> std::convert::Infallible {
    let mut interval = tokio::time::interval(runtime.config.heartbeat_interval);
    interval.tick().await;
    let mut reporting = true;
    let mut last_sent = tokio::time::Instant::now();
    let mut unsent = false;
    loop {
        let next_allowed = last_sent + PROGRESS_EVERY;
        tokio::select! {
            _ = interval.tick() => {
                let _ = message.ack_with(AckKind::Progress).await;
            }
            changed = progress.changed(), if reporting => {
                // The engine dropped its reporter: keep beating on the interval alone.
                if changed.is_err() {
                    reporting = false;
                    continue;
                }
                if tokio::time::Instant::now() < next_allowed {
                    unsent = true;
                    continue;
                }
            }
            _ = tokio::time::sleep_until(next_allowed), if unsent => {}
        }
        unsent = false;
        last_sent = tokio::time::Instant::now();
        let (percent, step) = progress.borrow_and_update().clone();
        let event = JobEvent {
            job_id: spec.job_id.clone(),
            lease_token: spec.lease_token.clone(),
            attempt: spec.attempt,
            kind: Some(Kind::Progress(Progress { percent, step })),
        };
        // Progress is advisory: a lost one is replaced by the next.
        let _ = publish_once(runtime, &spec.job_id, &event).await;
    }
}

pub(crate) async fn publish_once<E: Engine>(
    runtime: &Runtime<E>,
    job_id: &str,
    event: &JobEvent,
) -> anyhow::Result<()> {
    let subject = runtime.names.event_subject(job_id);
    runtime
        .js
        .publish_with_headers(
            subject,
            telemetry::nats_headers(),
            event.encode_to_vec().into(),
        )
        .await?
        .await?;
    Ok(())
}

/// Publishes a result event and waits for the stream's ack, retrying briefly. `false`
/// means it could not be stored: the work message is left unacked, so it is redelivered
/// and the attempt recovered rather than its result lost.
pub(crate) async fn publish<E: Engine>(
    runtime: &Runtime<E>,
    spec: &JobSpec,
    event: JobEvent,
) -> bool {
    for attempt in 0..5u32 {
        match publish_once(runtime, &spec.job_id, &event).await {
            Ok(()) => return true,
            Err(err) => {
                tracing::warn!(error = %err, "result event not stored yet");
                tokio::time::sleep(Duration::from_millis(200 * 2u64.pow(attempt))).await;
            }
        }
    }
    tracing::error!("result event could not be stored; the message will be redelivered");
    false
}
