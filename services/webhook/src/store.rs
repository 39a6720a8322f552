//! The delivery tables (schema `webhook`): taking due deliveries and recording attempts.

use std::{str::FromStr, time::Duration};

use anyhow::Context;
use chrono::{DateTime, Utc};
use sqlx::{
    PgPool,
    migrate::Migrator,
    postgres::{PgConnectOptions, PgPoolOptions},
};

/// Connections the webhook-service keeps to PostgreSQL.
pub const POOL_SIZE: u32 = 8;

/// The connection settings of `ATELIER_DATABASE_URL`; an error is a bad setting, not a
/// server that is down.
pub fn options(url: &str) -> anyhow::Result<PgConnectOptions> {
    Ok(PgConnectOptions::from_str(url)
        .context("ATELIER_DATABASE_URL is not a postgres url")?
        .options([("idle_in_transaction_session_timeout", "30s")]))
}

pub async fn connect(options: PgConnectOptions) -> anyhow::Result<PgPool> {
    PgPoolOptions::new()
        .max_connections(POOL_SIZE)
        .acquire_timeout(Duration::from_secs(5))
        .connect_with(options)
        .await
        .context("connecting to postgresql")
}

/// The webhook role's migrations live in its own schema with their own history table,
/// so they never collide with the api's.
pub async fn migrate(pool: &PgPool) -> anyhow::Result<()> {
    let mut migrator: Migrator = sqlx::migrate!("./migrations");
    migrator.dangerous_set_table_name("webhook._sqlx_migrations");
    migrator.create_schema("webhook");
    migrator
        .run(pool)
        .await
        .context("running webhook migrations")
}

/// Records new events, each with the `traceparent` its attempts continue; a redelivered
/// message for a known event changes nothing. Returns how many were new.
pub async fn insert(
    pool: &PgPool,
    events: &[(&atelier_proto::jobs::v1::WebhookRequest, Option<String>)],
) -> sqlx::Result<u64> {
    if events.is_empty() {
        return Ok(0);
    }
    let column = |field: fn(&atelier_proto::jobs::v1::WebhookRequest) -> &String| {
        events
            .iter()
            .map(|(request, _)| field(request).as_str())
            .collect::<Vec<&str>>()
    };
    let traceparents: Vec<Option<&str>> = events.iter().map(|(_, tp)| tp.as_deref()).collect();
    let done = sqlx::query(
        "INSERT INTO webhook.deliveries (event_id, job_id, client_id, url, payload, status,
                                         next_attempt_at, trace_id, traceparent)
         SELECT event_id, job_id, client_id, url, payload, 'pending', now(),
                NULLIF(trace_id, ''), traceparent
         FROM UNNEST($1::text[], $2::text[], $3::text[], $4::text[], $5::text[], $6::text[],
                     $7::text[])
              AS r(event_id, job_id, client_id, url, payload, trace_id, traceparent)
         ON CONFLICT (event_id) DO NOTHING",
    )
    .bind(column(|r| &r.event_id))
    .bind(column(|r| &r.job_id))
    .bind(column(|r| &r.client_id))
    .bind(column(|r| &r.url))
    .bind(column(|r| &r.payload_json))
    .bind(column(|r| &r.trace_id))
    .bind(traceparents)
    .execute(pool)
    .await?;
    Ok(done.rows_affected())
}

/// A partner asked for a job's events again: each gets one more attempt, now, or, when an
/// attempt is in flight (the row is leased), as soon as that attempt is recorded. Returns how
/// many deliveries the ask reached (due now or after the attempt in flight).
///
/// Each row is judged in its own SET, on the version the update writes over: an attempt's
/// record racing this either lands first (the row is free, and made due here) or waits and
/// then sees the mark.
pub async fn redeliver(pool: &PgPool, job_id: &str, client_id: &str) -> sqlx::Result<u64> {
    let done = sqlx::query(
        "UPDATE webhook.deliveries SET
                redeliver = coalesce(locked_until >= now(), false),
                status = CASE WHEN locked_until >= now() THEN status ELSE 'pending' END,
                next_attempt_at = CASE WHEN locked_until >= now() THEN next_attempt_at
                                       ELSE now() END,
                locked_until = CASE WHEN locked_until >= now() THEN locked_until END,
                updated_at = now()
         WHERE job_id = $1 AND client_id = $2",
    )
    .bind(job_id)
    .bind(client_id)
    .execute(pool)
    .await?;
    Ok(done.rows_affected())
}

#[derive(Clone, Debug, sqlx::FromRow)]
pub struct Due {
    pub event_id: String,
    pub job_id: String,
    pub client_id: String,
    pub url: String,
    pub payload: String,
    pub attempts: i32,
    pub trace_id: Option<String>,
    /// The span that queued the delivery; each attempt is its child.
    pub traceparent: Option<String>,
    /// The lease this sender holds; every later write is fenced by it.
    pub locked_until: DateTime<Utc>,
}

/// Hands back deliveries this sender took but cannot start (their host is at its share):
/// leased a little longer, so the next takes reach other hosts' deliveries, then due again.
pub async fn defer(pool: &PgPool, event_ids: &[String], for_: Duration) -> sqlx::Result<()> {
    sqlx::query(
        "UPDATE webhook.deliveries SET locked_until = now() + $2
         WHERE event_id = ANY($1) AND status = 'pending'",
    )
    .bind(event_ids)
    .bind(for_)
    .execute(pool)
    .await
    .map(|_| ())
}

/// Takes up to `limit` due deliveries, leasing them so no other sender takes them.
pub async fn take_due(pool: &PgPool, limit: i64, lease: Duration) -> sqlx::Result<Vec<Due>> {
    sqlx::query_as(
        // An attempt starting now answers any redelivery asked before it.
        "UPDATE webhook.deliveries SET locked_until = now() + $2, redeliver = false
         WHERE event_id IN (
             SELECT event_id FROM webhook.deliveries
             WHERE status = 'pending' AND next_attempt_at <= now()
               AND (locked_until IS NULL OR locked_until < now())
             ORDER BY next_attempt_at LIMIT $1
             FOR UPDATE SKIP LOCKED)
         RETURNING event_id, job_id, client_id, url, payload, attempts, trace_id,
                   traceparent, locked_until",
    )
    .bind(limit)
    .bind(lease)
    .fetch_all(pool)
    .await
}

/// When the next pending delivery falls due, if any.
pub async fn next_due(pool: &PgPool) -> sqlx::Result<Option<DateTime<Utc>>> {
    sqlx::query_scalar(
        "SELECT min(greatest(next_attempt_at, coalesce(locked_until, next_attempt_at)))
         FROM webhook.deliveries WHERE status = 'pending'",
    )
    .fetch_one(pool)
    .await
}

/// What one attempt did, for the log and the delivery's new state.
pub struct AttemptRecord<'a> {
    pub event_id: &'a str,
    /// The lease the attempt was made under; a record from a lost lease is dropped.
    pub lease: DateTime<Utc>,
    pub attempt: i32,
    pub started_at: DateTime<Utc>,
    pub status_code: Option<u16>,
    pub latency: Duration,
    pub error: Option<String>,
    /// `None` with `delivered == false` means the delivery has failed for good.
    pub next_attempt_at: Option<DateTime<Utc>>,
    pub delivered: bool,
}

/// Records an attempt and moves the delivery on, in one statement (atomic, one round trip).
/// A redelivery asked during the attempt makes the delivery due again at once, whatever the
/// attempt's outcome. Answers whether the delivery is pending now (a retry or that
/// redelivery), or `None` when the lease was lost (another sender owns the delivery now) and
/// nothing was written.
pub async fn record(pool: &PgPool, record: &AttemptRecord<'_>) -> sqlx::Result<Option<bool>> {
    let status = match (record.delivered, record.next_attempt_at) {
        (true, _) => "delivered",
        (false, Some(_)) => "pending",
        (false, None) => "failed",
    };
    sqlx::query_scalar(
        "WITH moved AS (
             UPDATE webhook.deliveries SET
                    status = CASE WHEN redeliver THEN 'pending' ELSE $2 END,
                    attempts = $3,
                    next_attempt_at = CASE WHEN redeliver THEN now() ELSE $4 END,
                    redeliver = false, locked_until = NULL, last_error = $5, updated_at = now()
             WHERE event_id = $1 AND locked_until = $6
             RETURNING event_id, status),
         logged AS (
             INSERT INTO webhook.attempts (event_id, attempt, started_at, status_code,
                                           latency_ms, error, next_attempt_at)
             SELECT event_id, $3, $7, $8, $9, $5, $4 FROM moved)
         SELECT status = 'pending' FROM moved",
    )
    .bind(record.event_id)
    .bind(status)
    .bind(record.attempt)
    .bind(record.next_attempt_at)
    .bind(&record.error)
    .bind(record.lease)
    .bind(record.started_at)
    .bind(record.status_code.map(i32::from))
    .bind(record.latency.as_millis().min(i32::MAX as u128) as i32)
    .fetch_optional(pool)
    .await
}
