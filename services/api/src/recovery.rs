//! The reconciler and the sweeper: the database-driven safety net under JetStream.
//! Once per interval, one api replica (the holder of a transaction-scoped advisory
//! lock) expires jobs queued past their time-to-live, fails attempts past their
//! deadline or whose worker vanished on the last attempt, re-queues silent running jobs
//! with attempts left, and re-dispatches queued jobs whose dispatch was never claimed
//! (JetStream may lose acknowledged messages, so the database must be able to recover
//! every job on its own).

use anyhow::Context;
use atelier_kit::{ids::JobId, metrics::metrics, telemetry};
use sqlx::AssertSqlSafe;
use sqlx::{Postgres, Transaction};
use tokio_util::sync::CancellationToken;
use tracing::Instrument;

use crate::{
    AppState, dispatch,
    lifecycle::{self, Fence, Outcome},
};

/// Arbitrary but fixed: the advisory lock that elects this tick's leader.
const LEADER_LOCK: i64 = 0x4154_454c_4945_5201;
const BATCH: i64 = 200;

/// Runs a tick every `reconcile_interval` until cancelled.
///
/// On cancel: waits for the tick in progress (one transaction). On error: logs and tries
/// again next tick.
pub async fn run(state: AppState, shutdown: CancellationToken) {
    let mut interval = tokio::time::interval(state.config.reconcile_interval);
    interval.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut mark = None;
    loop {
        tokio::select! {
            _ = shutdown.cancelled() => return,
            _ = interval.tick() => {},
        }
        let cutoff = judgement(&state, &mut mark).await;
        match tick(&state, cutoff.as_ref()).await {
            Ok(expired) => purge_work(&state, &expired).await,
            Err(err) => tracing::warn!(error = format!("{err:#}"), "reconciler tick failed"),
        }
    }
}

/// A moment the reconciler noted: the events stream's last sequence then, and the instants
/// it may judge running jobs by once the projector has applied every event up to it.
#[derive(Debug)]
pub struct Mark {
    stream_seq: u64,
    judgement: Judgement,
}

/// PostgreSQL timestamps (as text) of the moment a mark was noted.
#[derive(Clone, Debug)]
pub struct Judgement {
    /// The heartbeat age that counts as silent then: `now() - 2 × lease_stale_after`.
    pub heartbeat_cutoff: String,
    /// `now()` then: an attempt whose deadline had passed by this instant and whose result is
    /// not applied by the time the projector has caught up with the mark did not finish in
    /// time. Judging deadlines by the clock alone failed jobs whose result was published before
    /// the deadline and still waiting in a projector slowed by its database (found by the
    /// chaos suite).
    pub noted_at: String,
}

/// The instants this tick may judge running jobs by, if any.
///
/// Heartbeats reach the database through the projector, so a heartbeat older than the cutoff
/// proves a silent worker only once every event published before the cutoff was taken has
/// been applied: the projector's ack floor (every event up to it acked, and an event is
/// acked only after its transaction committed) has reached the stream sequence noted then.
/// Counting undelivered events is not enough (M3): events already in the projector's lanes,
/// and events nak'd while PostgreSQL was away, are neither pending nor applied. A worker alive
/// at the mark sent a heartbeat within the window, published before the mark, so applied by
/// now with a later timestamp than the cutoff.
///
/// A mark is kept until the floor reaches it (a lagging projector delays the judgement, it
/// never skips it), then used once and replaced. Unknown counts as behind.
async fn judgement(state: &AppState, mark: &mut Option<Mark>) -> Option<Judgement> {
    let reached = match mark.as_ref() {
        Some(noted) => match applied_through(state).await {
            Ok(floor) => floor >= noted.stream_seq,
            Err(err) => {
                tracing::debug!(error = format!("{err:#}"), "projector progress unknown");
                return None;
            }
        },
        None => false,
    };
    if mark.is_some() && !reached {
        return None;
    }
    let used = mark.take().map(|noted| noted.judgement);
    match note(state).await {
        Ok(noted) => *mark = Some(noted),
        Err(err) => tracing::debug!(error = format!("{err:#}"), "reconciler mark not taken"),
    }
    used
}

/// The stream sequence up to which the projector has applied every event.
async fn applied_through(state: &AppState) -> anyhow::Result<u64> {
    let stream = state.js.get_stream(state.names.events_stream()).await?;
    let durable = state.names.durable("api-projector");
    let info = stream.consumer_info(&durable).await?;
    Ok(info.ack_floor.stream_sequence)
}

/// Notes the cutoff first and the stream's last sequence second, so every event published
/// before the cutoff's moment is at or below the noted sequence.
async fn note(state: &AppState) -> anyhow::Result<Mark> {
    let (heartbeat_cutoff, noted_at): (String, String) =
        sqlx::query_as("SELECT (now() - $1)::text, now()::text")
            .bind(state.config.lease_stale_after * 2)
            .fetch_one(&state.pool)
            .await?;
    let mut stream = state.js.get_stream(state.names.events_stream()).await?;
    let stream_seq = stream.info().await?.state.last_sequence;
    Ok(Mark {
        stream_seq,
        judgement: Judgement {
            heartbeat_cutoff,
            noted_at,
        },
    })
}

/// One pass; returns the jobs it expired, whose work messages can now be purged. Running
/// jobs (silent, or past their deadline) are judged only with a `judgement` (the projector
/// has caught up with the moment it stands for).
pub async fn tick(state: &AppState, judgement: Option<&Judgement>) -> anyhow::Result<Vec<Ended>> {
    let mut tx = state.pool.begin().await?;
    let leader: bool = sqlx::query_scalar("SELECT pg_try_advisory_xact_lock($1)")
        .bind(LEADER_LOCK)
        .fetch_one(&mut *tx)
        .await?;
    if !leader {
        return Ok(Vec::new());
    }
    let expired = end_all(state, &mut tx, Fence::QueuedPastTtl, &Outcome::Expired).await?;
    let mut ended = Vec::new();
    let deadline = Outcome::Failed {
        code: "deadline_exceeded".to_owned(),
        message: format!(
            "the attempt ran longer than {}s",
            state.config.run_timeout.as_secs()
        ),
    };
    let lost = Outcome::Failed {
        code: "worker_lost".to_owned(),
        message: "the worker stopped reporting during the last attempt".to_owned(),
    };
    if let Some(judgement) = judgement {
        let past_deadline = Fence::RunningPastDeadline(&judgement.noted_at);
        ended.extend(end_all(state, &mut tx, past_deadline, &deadline).await?);
        let cutoff = judgement.heartbeat_cutoff.as_str();
        ended.extend(end_all(state, &mut tx, Fence::StaleOnLastAttempt(cutoff), &lost).await?);
        requeue_silent(&mut tx, cutoff).await?;
    }
    redispatch_unclaimed(state, &mut tx).await?;
    tx.commit().await?;
    // Re-queued jobs wait for a release; ended ones free their clients' slots.
    state.wake.now();
    for job in expired.iter().chain(&ended) {
        metrics().job_finished(&job.capability, &job.status);
    }
    Ok(expired)
}

/// A job the sweeper ended.
pub struct Ended {
    pub id: String,
    pub capability: String,
    pub status: String,
}

/// Applies one terminal transition to every job its fence selects.
async fn end_all(
    state: &AppState,
    tx: &mut Transaction<'_, Postgres>,
    fence: Fence<'_>,
    outcome: &Outcome,
) -> anyhow::Result<Vec<Ended>> {
    if let Fence::Lease(_) = fence {
        anyhow::bail!("the sweeper never holds a lease");
    }
    // The same condition the transition itself is fenced by, so selection and update agree.
    let candidates: Vec<(String, String, Option<String>)> = sqlx::query_as(AssertSqlSafe(format!(
        "SELECT id, capability, traceparent FROM jobs WHERE {} ORDER BY id LIMIT {BATCH}
         FOR UPDATE SKIP LOCKED",
        fence.condition().replace("$5", "$1")
    )))
    .bind(fence.bind_value())
    .fetch_all(&mut **tx)
    .await?;
    let mut ended = Vec::new();
    for (id, capability, traceparent) in candidates {
        let span = in_job_trace("job.sweep", &id, traceparent.as_deref());
        let finished = lifecycle::finish(
            tx,
            &state.names,
            state.config.asset_retention,
            &id,
            fence,
            outcome,
            &[],
        )
        .instrument(span.clone())
        .await?;
        if let Some(job) = finished {
            span.in_scope(|| tracing::info!(status = %job.status, "job ended by the sweeper"));
            ended.push(Ended {
                id,
                capability,
                status: job.status,
            });
        }
    }
    Ok(ended)
}

/// A span for one recovery action, in the trace of the job it acts on.
fn in_job_trace(name: &'static str, job: &str, traceparent: Option<&str>) -> tracing::Span {
    let span = tracing::info_span!("job.recover", otel.name = name, job.id = %job);
    telemetry::follow(&span, telemetry::context_from_traceparent(traceparent));
    span
}

/// Running jobs whose worker went silent (killed, partitioned) go back to the queue with
/// a fresh dispatch, for the dispatcher to release, while attempts remain.
async fn requeue_silent(tx: &mut Transaction<'_, Postgres>, cutoff: &str) -> anyhow::Result<()> {
    let rows: Vec<(String, String, i32, Option<String>)> = sqlx::query_as(
        "UPDATE jobs SET status = 'queued', lease_token = NULL, heartbeat_at = NULL,
                dispatch_seq = dispatch_seq + 1, dispatched_at = now(),
                current_step = 'requeued', updated_at = now()
         WHERE status = 'running' AND attempt < max_attempts
           AND heartbeat_at < $1::text::timestamptz
         RETURNING id, capability, dispatch_seq, traceparent",
    )
    .bind(cutoff)
    .fetch_all(&mut **tx)
    .await?;
    for (id, _, _, traceparent) in rows {
        let span = in_job_trace("job.requeue", &id, traceparent.as_deref());
        span.in_scope(|| tracing::warn!("silent running job re-queued"));
    }
    Ok(())
}

/// Released jobs not claimed in time are dispatched again, backing off (doubling, capped at
/// 32x) so a capability with no worker running does not fill its stream. The new dispatch
/// takes the old one's place in flight (it is released at once): jobs still waiting for the
/// dispatcher are not this path's.
async fn redispatch_unclaimed(
    state: &AppState,
    tx: &mut Transaction<'_, Postgres>,
) -> anyhow::Result<()> {
    let rows: Vec<(String, String, i32, Option<String>)> = sqlx::query_as(AssertSqlSafe(format!(
        "UPDATE jobs SET dispatch_seq = dispatch_seq + 1, released_seq = dispatch_seq + 1,
                dispatched_at = now(), updated_at = now()
         WHERE id IN (
             SELECT id FROM jobs
             WHERE status = 'queued' AND released_seq = dispatch_seq
               AND dispatched_at < now() - $1 * power(2, least(dispatch_seq - 1, 5))
             ORDER BY id LIMIT {BATCH} FOR UPDATE SKIP LOCKED)
         RETURNING id, capability, dispatch_seq, traceparent"
    )))
    .bind(state.config.redispatch_after)
    .fetch_all(&mut **tx)
    .await?;
    for (id, capability, seq, traceparent) in rows {
        let span = in_job_trace("job.redispatch", &id, traceparent.as_deref());
        let id = JobId::from_trusted(id);
        async {
            tracing::info!(dispatch_seq = seq, "unclaimed job re-dispatched");
            dispatch::enqueue(tx, &state.names, &id, &capability, seq).await
        }
        .instrument(span)
        .await?;
    }
    Ok(())
}

/// Removes the work messages of jobs that ended without running, so nothing is left in
/// a work stream for a terminal job. Best effort: a message that survives is denied at
/// claim and dropped.
async fn purge_work(state: &AppState, ended: &[Ended]) {
    for Ended { id, capability, .. } in ended {
        let result = async {
            let stream = state
                .js
                .get_stream(state.names.job_stream(capability))
                .await
                .context("looking up the work stream")?;
            stream
                .purge()
                .filter(format!("{}.{id}", state.names.job_subject(capability)))
                .await
                .context("purging")?;
            anyhow::Ok(())
        }
        .await;
        if let Err(err) = result {
            tracing::debug!(job.id = %id, error = format!("{err:#}"), "work messages not purged");
        }
    }
}
