//! The transactional outbox: messages are written in the same transaction as the state
//! they announce, and a relay publishes them to JetStream afterwards.
//!
//! The relay takes rows with `FOR UPDATE SKIP LOCKED` in a short transaction that only
//! stamps a lease (`locked_until`), publishes outside any transaction, then marks the rows
//! published. A relay that dies in between leaves rows whose lease runs out; they are
//! published again with the same `Nats-Msg-Id`, which JetStream deduplicates (and a
//! duplicate dispatch that slips past the window is absorbed by the claim).

use std::time::Duration;

use anyhow::Context;
use async_nats::jetstream;
use atelier_kit::telemetry;
use sqlx::AssertSqlSafe;
use sqlx::{PgPool, Postgres, Transaction, postgres::PgListener};
use tokio_util::sync::CancellationToken;
use tracing::Instrument;

/// PostgreSQL channel the relay listens on; notified at commit of every outbox insert.
const CHANNEL: &str = "atelier_outbox";
const BATCH: i64 = 64;
const LEASE: &str = "30 seconds";
/// A missed notification (listener reconnecting) costs at most this much delay.
const FALLBACK_TICK: Duration = Duration::from_secs(5);

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
    sqlx::query("SELECT pg_notify($1, '')")
        .bind(CHANNEL)
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
pub async fn relay(pool: PgPool, js: jetstream::Context, shutdown: CancellationToken) {
    let mut listener = match PgListener::connect_with(&pool).await {
        Ok(mut listener) => match listener.listen(CHANNEL).await {
            Ok(()) => Some(listener),
            Err(err) => {
                tracing::warn!(error = %err, "outbox listen failed, relying on the periodic tick");
                None
            }
        },
        Err(err) => {
            tracing::warn!(error = %err, "outbox listener unavailable, relying on the periodic tick");
            None
        }
    };
    loop {
        match relay_batch(&pool, &js).await {
            // A full batch means there may be more waiting: go again at once.
            Ok(n) if n == BATCH as usize => continue,
            Ok(_) => {}
            Err(err) => {
                tracing::warn!(error = format!("{err:#}"), "outbox relay batch failed");
                tokio::select! {
                    _ = shutdown.cancelled() => return,
                    _ = tokio::time::sleep(Duration::from_secs(1)) => {},
                }
            }
        }
        let notified = async {
            match listener.as_mut() {
                Some(listener) => {
                    let _ = listener.recv().await;
                }
                None => std::future::pending().await,
            }
        };
        let idle = next_due_in(&pool)
            .await
            .unwrap_or(FALLBACK_TICK)
            .min(FALLBACK_TICK);
        tokio::select! {
            _ = shutdown.cancelled() => return,
            _ = notified => {},
            _ = tokio::time::sleep(idle) => {},
        }
    }
}

/// How long until the earliest delayed row (a retry's dispatch) falls due; rows leased by a
/// relay count from the end of their lease.
async fn next_due_in(pool: &PgPool) -> Option<Duration> {
    let seconds: Option<f64> = sqlx::query_scalar(
        "SELECT extract(epoch FROM min(greatest(available_at, coalesce(locked_until, available_at)))
                                  - now())::float8
         FROM outbox WHERE published_at IS NULL",
    )
    .fetch_one(pool)
    .await
    .ok()
    .flatten();
    seconds.map(|s| Duration::from_secs_f64(s.max(0.01)))
}

/// Publishes one batch; returns how many rows it took.
async fn relay_batch(pool: &PgPool, js: &jetstream::Context) -> anyhow::Result<usize> {
    let rows: Vec<Pending> = sqlx::query_as(AssertSqlSafe(format!(
        "UPDATE outbox SET locked_until = now() + interval '{LEASE}'
         WHERE id IN (
             SELECT id FROM outbox
             WHERE published_at IS NULL AND available_at <= now()
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
    // after its previous one was acted upon), so a failed row need not hold the others.
    let mut sent = Vec::with_capacity(taken);
    let mut failure = None;
    for row in &rows {
        match send(js, row).await {
            Ok(ack) => sent.push((row.id, row.subject.as_str(), ack)),
            Err(err) => {
                // The rest wait for their lease to run out.
                failure = Some(err);
                break;
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
    // Marked even when a later row failed, so what went out is not sent again.
    sqlx::query("UPDATE outbox SET published_at = now() WHERE id = ANY($1)")
        .bind(&published)
        .execute(pool)
        .await
        .context("marking outbox rows published")?;
    failure.map_or(Ok(taken), Err)
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
