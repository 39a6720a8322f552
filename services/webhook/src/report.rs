//! The attempt reporter: announces every recorded delivery attempt on the job's event
//! subject, for the api's event feed (`webhook.attempt`, issue #17). The attempts table is its
//! own outbox: rows are leased, published with their publish acks awaited, then marked, so an
//! attempt is reported at least once whatever crashes; JetStream's `Nats-Msg-Id` and the
//! feed's dedup key make it appear once.

use std::{sync::Arc, time::Duration};

use async_nats::{HeaderMap, jetstream};
use atelier_kit::nats::Names;
use atelier_proto::{
    Message,
    jobs::v1::{JobEvent, WebhookAttempt, job_event::Kind},
};
use chrono::{DateTime, Utc};
use sqlx::PgPool;
use tokio::sync::Notify;
use tokio_util::sync::CancellationToken;

/// Rows taken per pass.
const BATCH: i64 = 100;
/// A reporter that took rows holds them this long; a crashed one's rows come back after it.
const LEASE: Duration = Duration::from_secs(30);
/// The pace when nothing wakes the reporter: rows left by a crash or a NATS outage.
const IDLE: Duration = Duration::from_secs(2);

type Row = (
    i64,
    String,
    String,
    i32,
    DateTime<Utc>,
    Option<i32>,
    i32,
    Option<String>,
    String,
);

/// Reports attempts until cancelled; `wake` is notified after each attempt is recorded.
pub async fn run(
    pool: PgPool,
    js: jetstream::Context,
    names: Names,
    wake: Arc<Notify>,
    shutdown: CancellationToken,
) {
    loop {
        let pass = report(&pool, &js, &names).await;
        let more = match pass {
            Ok(taken) => taken as i64 == BATCH,
            Err(err) => {
                tracing::warn!(
                    error = format!("{err:#}"),
                    "webhook attempts not reported yet"
                );
                false
            }
        };
        if more {
            continue;
        }
        tokio::select! {
            _ = shutdown.cancelled() => return,
            _ = wake.notified() => {},
            _ = tokio::time::sleep(IDLE) => {},
        }
    }
}

/// One pass: lease, publish, mark. Answers how many rows it took.
async fn report(pool: &PgPool, js: &jetstream::Context, names: &Names) -> anyhow::Result<usize> {
    let rows: Vec<Row> = sqlx::query_as(
        "WITH taken AS (
             SELECT id FROM webhook.attempts
             WHERE reported_at IS NULL AND (report_locked_until IS NULL OR report_locked_until < now())
             ORDER BY id LIMIT $1 FOR UPDATE SKIP LOCKED)
         UPDATE webhook.attempts a SET report_locked_until = now() + $2
         FROM taken, webhook.deliveries d
         WHERE a.id = taken.id AND d.event_id = a.event_id
         RETURNING a.id, a.event_id, d.job_id, a.attempt, a.started_at, a.status_code,
                   a.latency_ms, a.error,
                   CASE WHEN a.status_code BETWEEN 200 AND 299 THEN 'delivered'
                        WHEN a.next_attempt_at IS NOT NULL THEN 'pending'
                        ELSE 'failed' END",
    )
    .bind(BATCH)
    .bind(LEASE)
    .fetch_all(pool)
    .await?;
    if rows.is_empty() {
        return Ok(0);
    }
    let mut acks = Vec::with_capacity(rows.len());
    for (id, event_id, job_id, attempt, started, code, latency, error, outcome) in &rows {
        let event = JobEvent {
            job_id: job_id.clone(),
            kind: Some(Kind::WebhookAttempt(WebhookAttempt {
                event_id: event_id.clone(),
                attempt: *attempt as u32,
                started_unix_ms: started.timestamp_millis(),
                status_code: code.unwrap_or(0) as u32,
                latency_ms: *latency as u32,
                error: error.clone().unwrap_or_default(),
                outcome: outcome.clone(),
            })),
            ..Default::default()
        };
        let mut headers = HeaderMap::new();
        headers.insert("Nats-Msg-Id", format!("webhook-attempt:{id}").as_str());
        let ack = js
            .publish_with_headers(
                names.event_subject(job_id),
                headers,
                event.encode_to_vec().into(),
            )
            .await?;
        acks.push((*id, ack));
    }
    let mut reported = Vec::with_capacity(acks.len());
    for (id, ack) in acks {
        match ack.await {
            Ok(_) => reported.push(id),
            Err(err) => tracing::warn!(error = %err, "webhook attempt report not acknowledged"),
        }
    }
    sqlx::query("UPDATE webhook.attempts SET reported_at = now() WHERE id = ANY($1)")
        .bind(&reported)
        .execute(pool)
        .await?;
    Ok(rows.len())
}
