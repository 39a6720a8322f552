//! Fair dispatch (issue #16): a queued job's dispatch goes to its work stream only when this
//! dispatcher releases it. The work stream of a capability holds at most
//! `ATELIER_DISPATCH_AHEAD` unclaimed dispatches, or as many as it has jobs running when that
//! is more (see [`ahead`]); everything else waits in PostgreSQL, where
//! the dispatcher can choose by client (`fair::pick`). So one partner's backlog of thousands
//! is never in the stream ahead of another partner's single job: that job waits for the next
//! free place in the stream, not for the backlog.
//!
//! Each release is one transaction per capability, under a transaction-scoped advisory lock
//! (another replica releasing the same capability at that moment skips it): count what is in
//! flight per client, walk the clients with waiting jobs (one index probe per client), pick,
//! mark the picked jobs released (`released_seq = dispatch_seq`) and write their dispatches to
//! the outbox, which the relay publishes as for any other message. A job is released at most
//! once per dispatch (the update's guard), so several replicas never double-dispatch.
//!
//! Per-client concurrency caps live here too: a client's jobs in flight (released or running)
//! never exceed its cap for the capability, so its running jobs cannot either.
//!
//! The dispatcher runs when woken — a job accepted, a claim granted, a job ended on this
//! replica — and on a short tick for what other replicas and retry delays make due.

mod fair;

use std::{collections::HashMap, sync::Arc, time::Duration};

use atelier_kit::{ids::JobId, metrics::metrics, telemetry};
use chrono::{DateTime, Utc};
use tokio::sync::Notify;
use tokio_util::sync::CancellationToken;
use tracing::Instrument;

use crate::{AppState, dispatch};
pub use fair::{Share, Waiting, pick};

/// What due work other replicas and retry delays make waits at most this long.
const TICK: Duration = Duration::from_millis(250);

/// Arbitrary but fixed: the advisory lock's first key; the second is the capability's hash.
const LOCK: i32 = 0x4154_4446; // "ATDF"

/// Wakes the dispatcher; cheap, and coalesced while it runs.
#[derive(Clone, Default)]
pub struct Wake(Arc<Notify>);

impl Wake {
    pub fn now(&self) {
        self.0.notify_one();
    }
}

/// Releases due work until cancelled. On error: logs and tries again at the next wake.
pub async fn run(state: AppState, shutdown: CancellationToken) {
    let mut tick = tokio::time::interval(TICK);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            _ = shutdown.cancelled() => return,
            _ = state.wake.0.notified() => {}
            _ = tick.tick() => {}
        }
        let waiting = match waiting_capabilities(&state).await {
            Ok(waiting) => waiting,
            Err(err) => {
                tracing::warn!(
                    error = format!("{err:#}"),
                    "dispatch: reading the queues failed"
                );
                continue;
            }
        };
        for capability in waiting {
            if let Err(err) = release(&state, &capability).await {
                tracing::warn!(
                    error = format!("{err:#}"),
                    capability,
                    "dispatch release failed"
                );
            }
        }
    }
}

/// How many unclaimed dispatches the work stream may hold: `ATELIER_DISPATCH_AHEAD`, or as
/// many as the capability has jobs running when that is more. Busy workers then always find
/// their next job in the stream (a shallower stream starves a large pool: each free slot
/// would wait for a release, a relay publish and a fetch), while a newcomer's job still waits
/// behind at most one round of the pool's jobs, never behind a backlog.
fn ahead(configured: u32, running: i64) -> i64 {
    i64::from(configured).max(running)
}

/// The capabilities with jobs waiting for a release: one index probe each, in one round
/// trip, so a wake with nothing to do costs one cheap query.
async fn waiting_capabilities(state: &AppState) -> sqlx::Result<Vec<String>> {
    sqlx::query_scalar(
        "SELECT c.name FROM unnest($1::text[]) AS c(name)
         WHERE EXISTS (SELECT 1 FROM jobs j WHERE j.capability = c.name
                       AND j.status = 'queued' AND j.released_seq < j.dispatch_seq)",
    )
    .bind(atelier_kit::nats::CAPABILITIES)
    .fetch_all(&state.pool)
    .await
}

/// One release for one capability; returns how many dispatches it wrote.
pub async fn release(state: &AppState, capability: &str) -> anyhow::Result<usize> {
    let mut tx = state.pool.begin().await?;
    let leader: bool = sqlx::query_scalar("SELECT pg_try_advisory_xact_lock($1, hashtext($2))")
        .bind(LOCK)
        .bind(capability)
        .fetch_one(&mut *tx)
        .await?;
    if !leader {
        return Ok(0);
    }
    // In flight per client: released and unclaimed (in the stream), or running.
    let flights: Vec<(String, i64, i64)> = sqlx::query_as(
        "SELECT client_id, count(*) FILTER (WHERE status = 'queued'), count(*)
         FROM jobs
         WHERE capability = $1
           AND (status = 'running' OR (status = 'queued' AND released_seq = dispatch_seq))
         GROUP BY client_id",
    )
    .bind(capability)
    .fetch_all(&mut *tx)
    .await?;
    let in_stream: i64 = flights.iter().map(|(_, queued, _)| queued).sum();
    let running: i64 = flights.iter().map(|(_, queued, all)| all - queued).sum();
    let budget = ahead(state.config.dispatch_ahead, running) - in_stream;
    if budget <= 0 {
        return Ok(0);
    }
    // The clients with jobs waiting, one index probe each (a loose index scan), then the
    // oldest due jobs of each, as many as could be released.
    let waiting: Vec<(String, String, DateTime<Utc>)> = sqlx::query_as(
        "WITH RECURSIVE clients(client_id) AS (
             (SELECT client_id FROM jobs
              WHERE capability = $1 AND status = 'queued' AND released_seq < dispatch_seq
              ORDER BY client_id LIMIT 1)
             UNION ALL
             SELECT (SELECT j.client_id FROM jobs j
                     WHERE j.capability = $1 AND j.status = 'queued'
                       AND j.released_seq < j.dispatch_seq AND j.client_id > c.client_id
                     ORDER BY j.client_id LIMIT 1)
             FROM clients c WHERE c.client_id IS NOT NULL
         )
         SELECT next.id, c.client_id, next.created_at
         FROM clients c
         CROSS JOIN LATERAL (
             SELECT id, created_at FROM jobs
             WHERE capability = $1 AND client_id = c.client_id AND status = 'queued'
               AND released_seq < dispatch_seq AND dispatched_at <= now()
             ORDER BY created_at, id LIMIT $2
         ) next
         WHERE c.client_id IS NOT NULL",
    )
    .bind(capability)
    .bind(budget)
    .fetch_all(&mut *tx)
    .await?;
    if waiting.is_empty() {
        return Ok(0);
    }
    let waiting: Vec<Waiting<(DateTime<Utc>, String)>> = waiting
        .into_iter()
        .map(|(id, client, created_at)| Waiting {
            order: (created_at, id.clone()),
            id,
            client,
        })
        .collect();
    let in_flight: HashMap<&str, u32> = flights
        .iter()
        .map(|(client, _, n)| (client.as_str(), u32::try_from(*n).unwrap_or(u32::MAX)))
        .collect();
    let limits = &state.config.limits;
    let picked = pick(budget as usize, &waiting, |client| {
        let limits = limits.of_name(client);
        Share {
            in_flight: in_flight.get(client).copied().unwrap_or(0),
            cap: limits.max_running,
            weight: limits.weight,
        }
    });
    // `dispatched_at` becomes the release: the claim and the re-dispatch of a lost message
    // count from it. The wait is measured from when the job was due.
    let released: Vec<(String, String, i32, Option<String>, f64)> = sqlx::query_as(
        "WITH due AS (
             SELECT id, greatest(created_at, dispatched_at) AS since FROM jobs
             WHERE id = ANY($1) AND status = 'queued' AND released_seq < dispatch_seq
             FOR UPDATE
         )
         UPDATE jobs j SET released_seq = j.dispatch_seq, dispatched_at = now()
         FROM due WHERE j.id = due.id
         RETURNING j.id, j.client_id, j.dispatch_seq, j.traceparent,
                   extract(epoch FROM now() - due.since)::float8",
    )
    .bind(&picked)
    .fetch_all(&mut *tx)
    .await?;
    for (id, client, seq, traceparent, waited) in &released {
        let span = tracing::info_span!("job.release", job.id = %id, client.id = %client);
        telemetry::follow(
            &span,
            telemetry::context_from_traceparent(traceparent.as_deref()),
        );
        let job = JobId::from_trusted(id.clone());
        dispatch::enqueue(&mut tx, &state.names, &job, capability, *seq)
            .instrument(span)
            .await?;
        metrics().dispatch_waited(client, capability, Duration::from_secs_f64(waited.max(0.0)));
    }
    tx.commit().await?;
    Ok(released.len())
}
