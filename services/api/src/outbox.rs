//! The transactional outbox: messages are written in the same transaction as the state
//! they announce, and a relay publishes them to JetStream afterwards.
//!
//! The relay takes rows with `FOR UPDATE SKIP LOCKED` in a short transaction that only
//! stamps a lease (`locked_until`), publishes outside any transaction, then marks the rows
//! published. A relay that dies in between leaves rows whose lease runs out; they are
//! published again with the same `Nats-Msg-Id`, which JetStream deduplicates (and a
//! duplicate dispatch that slips past the window is absorbed by the claim).

use std::{sync::Arc, time::Duration};

use anyhow::Context;
use async_nats::jetstream;
use atelier_kit::{nats::Names, telemetry};
use sqlx::AssertSqlSafe;
use sqlx::{PgPool, Postgres, Transaction, postgres::PgListener};
use tokio::sync::Notify;
use tokio_util::sync::CancellationToken;
use tracing::Instrument;

/// PostgreSQL channel the relay listens on; a trigger on `outbox` notifies it at the commit
/// of every transaction that queued a message (migration 0007).
const CHANNEL: &str = "atelier_outbox";
const BATCH: i64 = 64;
const LEASE: &str = "30 seconds";
/// A missed notification (listener reconnecting) costs at most this much delay.
const FALLBACK_TICK: Duration = Duration::from_secs(5);
/// How long a woken relay waits for more rows before taking its batch.
const LINGER: Duration = Duration::from_millis(3);

/// Queues one message; it is published only if the surrounding transaction commits.
pub async fn enqueue(
    tx: &mut Transaction<'_, Postgres>,
    subject: &str,
    msg_id: &str,
    payload: Vec<u8>,
) -> sqlx::Result<()> {
    enqueue_after(tx, subject, msg_id, payload, Duration::ZERO).await
}

/// Queues one message to be published no earlier than `delay` from now (retries); the
/// relay's periodic tick picks it up once due.
pub async fn enqueue_after(
    tx: &mut Transaction<'_, Postgres>,
    subject: &str,
    msg_id: &str,
    payload: Vec<u8>,
    delay: Duration,
) -> sqlx::Result<()> {
    sqlx::query(
        "INSERT INTO outbox (subject, msg_id, payload, available_at, traceparent)
         VALUES ($1, $2, $3, now() + $4, $5)",
    )
    .bind(subject)
    .bind(msg_id)
    .bind(payload)
    .bind(delay)
    .bind(telemetry::current_traceparent())
    .execute(&mut **tx)
    .await?;
    Ok(())
}

#[derive(sqlx::FromRow)]
struct Pending {
    id: i64,
    subject: String,
    msg_id: String,
    payload: Vec<u8>,
    /// The span that queued the row; the publish continues its trace.
    traceparent: Option<String>,
}

/// Publishes pending rows until cancelled.
///
/// On cancel: stops between batches (a half-published batch is simply republished).
/// On error: logs and retries after a pause; the relay never ends the process.
pub async fn relay(
    pool: PgPool,
    js: jetstream::Context,
    names: Names,
    shutdown: CancellationToken,
) {
    // Notifications arrive one per committing transaction; `Notify` keeps at most one
    // waiting, so however many land during a batch, the relay wakes once for them all.
    let wake = Arc::new(Notify::new());
    tokio::spawn(listen(pool.clone(), wake.clone(), shutdown.clone()));
    loop {
        let idle = match relay_batch(&pool, &js, &names).await {
            // A full batch means there may be more waiting: go again at once.
            Ok(batch) if batch.taken == BATCH as usize => continue,
            Ok(batch) => batch.next_due.unwrap_or(FALLBACK_TICK).min(FALLBACK_TICK),
            Err(err) => {
                tracing::warn!(error = format!("{err:#}"), "outbox relay batch failed");
                Duration::from_secs(1)
            }
        };
        tokio::select! {
            _ = shutdown.cancelled() => return,
            _ = wake.notified() => {
                // Let the transactions committing alongside this one land too, so one
                // batch carries them all: a few milliseconds of latency for far fewer
                // round trips under load.
                tokio::time::sleep(LINGER).await;
            },
            _ = tokio::time::sleep(idle) => {},
        }
    }
}

/// Turns the database's notifications into wake-ups until cancelled. Without a listener
/// the relay still runs on its periodic tick.
async fn listen(pool: PgPool, wake: Arc<Notify>, shutdown: CancellationToken) {
    let mut listener = match PgListener::connect_with(&pool).await {
        Ok(listener) => listener,
        Err(err) => {
            tracing::warn!(error = %err, "outbox listener unavailable, relying on the periodic tick");
            return;
        }
    };
    if let Err(err) = listener.listen(CHANNEL).await {
        tracing::warn!(error = %err, "outbox listen failed, relying on the periodic tick");
        return;
    }
    loop {
        tokio::select! {
            _ = shutdown.cancelled() => return,
            received = listener.recv() => match received {
                Ok(_) => wake.notify_one(),
                Err(err) => {
                    // The listener reconnects on the next call; meanwhile the tick covers.
                    tracing::warn!(error = %err, "outbox listener lost its connection");
                    tokio::select! {
                        _ = shutdown.cancelled() => return,
                        _ = tokio::time::sleep(Duration::from_secs(1)) => {},
                    }
                }
            },
        }
    }
}

/// When the earliest row still waiting falls due: a delayed row (a retry's dispatch) at its
/// time, a leased one when its lease runs out. The rows in `published` are left out (they
/// were just sent).
const NEXT_DUE: &str =
    "SELECT extract(epoch FROM min(greatest(available_at, coalesce(locked_until, available_at)))
                              - now())::float8
     FROM outbox WHERE published_at IS NULL AND parked_at IS NULL AND id <> ALL($1)";

async fn next_due_in(pool: &PgPool) -> Option<Duration> {
    let seconds: Option<f64> = sqlx::query_scalar(NEXT_DUE)
        .bind(Vec::<i64>::new())
        .fetch_one(pool)
        .await
        .ok()
        .flatten();
    seconds.map(until)
}

fn until(seconds: f64) -> Duration {
    Duration::from_secs_f64(seconds.max(0.01))
}

/// What one batch did.
struct Batch {
    taken: usize,
    /// How long until the next row falls due; `None` when nothing waits (or it is unknown).
    next_due: Option<Duration>,
}

/// Publishes one batch. Marking the sent rows published and looking up when the next row
/// falls due are one round trip.
async fn relay_batch(
    pool: &PgPool,
    js: &jetstream::Context,
    names: &Names,
) -> anyhow::Result<Batch> {
    let rows: Vec<Pending> = sqlx::query_as(AssertSqlSafe(format!(
        "UPDATE outbox SET locked_until = now() + interval '{LEASE}'
         WHERE id IN (
             SELECT id FROM outbox
             WHERE published_at IS NULL AND parked_at IS NULL AND available_at <= now()
               AND (locked_until IS NULL OR locked_until < now())
             ORDER BY id LIMIT {BATCH}
             FOR UPDATE SKIP LOCKED)
         RETURNING id, subject, msg_id, payload, traceparent"
    )))
    .fetch_all(pool)
    .await
    .context("taking outbox rows")?;
    let taken = rows.len();
    // Every row is sent first and the acks awaited after: one round trip per batch rather
    // than one per row. Rows are independent messages (each job's next one is only queued
    // after its previous one was acted upon), so a failed row never holds the others: it
    // waits for its lease to run out while the rest go.
    let mut sent = Vec::with_capacity(taken);
    let mut failure = None;
    let max_payload = js.client().server_info().max_payload;
    for row in &rows {
        // A message NATS will never take is parked, not retried forever (H2).
        let size = row.payload.len() + row.subject.len() + HEADROOM;
        if max_payload > 0 && size > max_payload {
            park(pool, names, row, size, max_payload).await;
            continue;
        }
        match send(js, row).await {
            Ok(ack) => sent.push((row.id, row.subject.as_str(), ack)),
            Err(err) => {
                failure.get_or_insert(err);
            }
        }
    }
    let mut published = Vec::with_capacity(sent.len());
    for (id, subject, ack) in sent {
        match ack.await {
            Ok(_) => published.push(id),
            Err(err) => {
                failure.get_or_insert(
                    anyhow::Error::new(err)
                        .context(format!("awaiting the publish ack for {subject}")),
                );
            }
        }
    }
    if published.is_empty() {
        failure.map_or(Ok(()), Err)?;
        let next_due = next_due_in(pool).await;
        return Ok(Batch { taken, next_due });
    }
    // Marked even when a later row failed, so what went out is not sent again.
    let seconds: Option<f64> = sqlx::query_scalar(AssertSqlSafe(format!(
        "WITH marked AS (UPDATE outbox SET published_at = now() WHERE id = ANY($1)) {NEXT_DUE}"
    )))
    .bind(&published)
    .fetch_one(pool)
    .await
    .context("marking outbox rows published")?;
    failure.map_or(Ok(()), Err)?;
    Ok(Batch {
        taken,
        next_due: seconds.map(until),
    })
}

/// Room kept for the headers (`Nats-Msg-Id`, `traceparent`) beside payload and subject.
const HEADROOM: usize = 1024;

/// Takes a row that can never be published out of the relay's queue, keeping it and the
/// reason for an operator. Rows are bounded by construction (request fields are capped), so
/// this is the safety net: it is an ERROR, an operator must look.
async fn park(pool: &PgPool, names: &Names, row: &Pending, size: usize, max_payload: usize) {
    let reason =
        format!("message of about {size} bytes exceeds the NATS max_payload of {max_payload}");
    tracing::error!(outbox.id = row.id, subject = %row.subject, msg_id = %row.msg_id, size, max_payload, "outbox row parked: it can never be published");
    atelier_kit::metrics::metrics().outbox_parked();
    let parked = sqlx::query("UPDATE outbox SET parked_at = now(), park_reason = $2 WHERE id = $1")
        .bind(row.id)
        .bind(&reason)
        .execute(pool)
        .await;
    if let Err(err) = parked {
        // Its lease runs out and it is parked on the next pass.
        tracing::warn!(error = %err, outbox.id = row.id, "parking an outbox row failed");
        return;
    }
    if let Err(err) = fail_undispatchable(pool, names, row, &reason).await {
        tracing::error!(
            error = format!("{err:#}"),
            outbox.id = row.id,
            "failing the job of a parked dispatch failed"
        );
    }
}

/// A parked dispatch would leave its job queued until it expires: the job fails now with the
/// reason, refund and webhook in the same transition as every terminal state.
async fn fail_undispatchable(
    pool: &PgPool,
    names: &Names,
    row: &Pending,
    reason: &str,
) -> anyhow::Result<()> {
    let is_dispatch = atelier_kit::nats::CAPABILITIES.iter().any(|c| {
        row.subject
            .starts_with(&format!("{}.", names.job_subject(c)))
    });
    let Some(job_id) = row.msg_id.split(':').next().filter(|_| is_dispatch) else {
        return Ok(());
    };
    let mut tx = pool.begin().await?;
    let outcome = crate::lifecycle::Outcome::Failed {
        code: "dispatch_unpublishable".to_owned(),
        message: reason.to_owned(),
    };
    let fence = crate::lifecycle::Fence::Queued;
    // No inputs are recorded, so their retention does not matter here.
    crate::lifecycle::finish(&mut tx, names, Duration::ZERO, job_id, fence, &outcome, &[]).await?;
    tx.commit().await?;
    Ok(())
}

/// Sends one row in a span of the trace that queued it; returns the ack to await.
async fn send(
    js: &jetstream::Context,
    row: &Pending,
) -> anyhow::Result<jetstream::context::PublishAckFuture> {
    let span = tracing::info_span!("outbox.publish", otel.kind = "producer", messaging.destination = %row.subject);
    telemetry::follow(
        &span,
        telemetry::context_from_traceparent(row.traceparent.as_deref()),
    );
    let headers = span.in_scope(|| {
        let mut headers = telemetry::nats_headers();
        headers.insert("Nats-Msg-Id", row.msg_id.as_str());
        headers
    });
    js.publish_with_headers(row.subject.clone(), headers, row.payload.clone().into())
        .instrument(span)
        .await
        .with_context(|| format!("publishing {}", row.subject))
}
